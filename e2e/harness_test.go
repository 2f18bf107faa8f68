package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	domain = "localhost"
	// python is fixed because python3 on PATH may be a pyenv shim that
	// lacks the Debian packages slixmpp and aioxmpp.
	python = "/usr/bin/python3"
	// scriptTimeout bounds one client script; the scripts keep their own,
	// shorter deadline and report which step hung.
	scriptTimeout = 90 * time.Second
)

var (
	moduleRoot string
	binPath    string
	buildErr   error
	buildLog   string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if testing.Short() {
		return m.Run()
	}
	var err error
	moduleRoot, err = findModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "ambrosia-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "ambrosia")
	// A build failure is reported by every test that needs the server
	// rather than here, so the failure shows up in the test results.
	buildLog, buildErr = buildServer(binPath)
	return m.Run()
}

func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func buildServer(out string) (string, error) {
	args := []string{"build", "-o", out}
	if raceEnabled {
		// The tests run under -race, so the server does too: a data race
		// makes it exit non-zero at shutdown, which stopServer reports.
		args = append(args, "-race")
	}
	args = append(args, "./cmd/ambrosia")
	cmd := exec.Command("go", args...)
	cmd.Dir = moduleRoot
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// e2eRequired reports whether missing tools must fail the tests.
func e2eRequired() bool { return os.Getenv("AMBROSIA_E2E") == "1" }

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// daemon is a program a test runs beside the server (a peer server, an IRC
// server, a gateway).
type daemon struct {
	done    <-chan struct{} // closed when it has exited
	out     *syncBuffer     // its stdout and stderr
	logFile string          // where it logs besides, "" if nowhere
	pid     int             // the process started, or what it exec'd
}

// logs returns what the daemon wrote so far, its log file included.
func (d *daemon) logs() string {
	if d.logFile == "" {
		return d.out.String()
	}
	b, _ := os.ReadFile(d.logFile)
	return d.out.String() + string(b)
}

// runDaemon starts cmd and stops it when the test ends: SIGTERM, then
// SIGKILL after grace. afterStop, if not nil, runs once it has exited; a
// failed test shows its logs last.
func runDaemon(t testing.TB, name string, cmd *exec.Cmd, grace time.Duration, logFile string, afterStop func()) *daemon {
	t.Helper()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	d := &daemon{done: done, out: out, logFile: logFile, pid: cmd.Process.Pid}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			<-done
		}
		if afterStop != nil {
			afterStop()
		}
		if t.Failed() {
			t.Logf("--- %s log ---\n%s--- end of %s log ---", name, d.logs(), name)
		}
	})
	return d
}

// waitListening waits until addr accepts connections. It fails the test
// if done, when not nil, is closed first (what, the program that should
// listen there, has exited) or after 30 s; logf, if not nil, gives the
// program's log for the message.
func waitListening(t testing.TB, addr string, done <-chan struct{}, what string, logf func() string) {
	t.Helper()
	if logf == nil {
		logf = func() string { return "" }
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited before listening on %s\n%s", what, addr, logf())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s after 30 s: %v\n%s", what, addr, err, logf())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a loopback port that was free a moment ago. It hands
// out ports below the kernel's ephemeral range (32768 and up on Linux),
// one after another from a place that depends on the process: a port the
// kernel picked for "port 0" could go to another test's outgoing
// connection or listener before the server binds it, which made servers
// fail to start with "address already in use" now and then. Another
// process may still take a port; that shows up as a start failure with
// the server's log, not as a silent misbehaviour.
func freePort(t testing.TB) int {
	t.Helper()
	for range portSpan {
		p := portLow + int(nextPort.Add(1)%portSpan)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	t.Fatalf("free port: none free in %d-%d", portLow, portLow+portSpan-1)
	return 0
}

// The e2e tests' ports: [portLow, portLow+portSpan), below the ephemeral
// range and apart from the ones cmd/ambrosia's tests use.
const (
	portLow  = 20000
	portSpan = 8000
)

// nextPort is the last port handed out, less portLow; its start is spread
// by the process id so that two runs side by side rarely meet.
var nextPort = func() *atomic.Int32 {
	var n atomic.Int32
	n.Store(int32(os.Getpid() % portSpan))
	return &n
}()

// ServerOptions selects optional server flags.
type ServerOptions struct {
	AllowPlain bool
	ExtraArgs  []string
	// DataDir reuses a data directory, e.g. one of a server stopped
	// before; empty means a fresh one.
	DataDir string
	// UploadPort is the loopback port of the HTTP upload service; 0 picks
	// a free one, so that no test server listens beyond loopback.
	UploadPort int
	// Env adds environment variables (AMBROSIA_HTTP_ADDR=...) to the
	// server's.
	Env []string
}

// Server is one running ambrosia process owned by a test.
type Server struct {
	Addr    string // STARTTLS listener, host:port
	TLSAddr string // direct TLS listener, host:port
	DataDir string
	CAFile  string // the self-signed certificate, the clients' only root
	Port    int
	TLSPort int

	log     *syncBuffer
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // set before done is closed
	stopped bool  // stopped by the test already
}

// Stop stops the server now, as the end of the test would, so that a test
// can start another one on the same data directory.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stop(t)
	s.stopped = true
}

// Log returns everything the server printed so far.
func (s *Server) Log() string { return s.log.String() }

// startServer starts ambrosia serve on fresh loopback ports and a fresh data
// directory, waits until both listeners accept connections and stops the
// server when the test ends. The server log is printed if the test failed.
func startServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("building ./cmd/ambrosia failed: %v\n%s", buildErr, buildLog)
	}
	dataDir := opts.DataDir
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	s := &Server{
		DataDir: dataDir,
		Port:    freePort(t),
		TLSPort: freePort(t),
		log:     &syncBuffer{},
		done:    make(chan struct{}),
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	s.TLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.TLSPort))
	s.CAFile = filepath.Join(s.DataDir, "tls", domain+".crt")

	args := []string{"serve",
		"--domain", domain,
		"--data", s.DataDir,
		"--c2s-addr", s.Addr,
		"--c2s-tls-addr", s.TLSAddr,
		"--log-format", "json",
		"--log-level", "debug",
	}
	if opts.AllowPlain {
		args = append(args, "--allow-plain")
	}
	args = append(args, opts.ExtraArgs...)
	s.cmd = exec.Command(binPath, args...)
	if opts.UploadPort == 0 {
		opts.UploadPort = freePort(t)
	}
	// oneShotEnv: a race-built server would sleep a second after its
	// last log line before exiting, which every test's stop waited for.
	s.cmd.Env = append(oneShotEnv(), "AMBROSIA_UPLOAD_ADDR="+net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.UploadPort)))
	s.cmd.Env = append(s.cmd.Env, opts.Env...)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start ambrosia: %v", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	// Registered before the stop so that it runs after it and shows the
	// complete log, shutdown included.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ambrosia %s\n--- server log ---\n%s--- end of server log ---", strings.Join(args, " "), s.Log())
		}
	})
	t.Cleanup(func() { s.stop(t) })

	// The server log shows at cleanup; the exit status is only here.
	exitErr := func() string {
		select {
		case <-s.done:
			return fmt.Sprint("exit: ", s.err)
		default:
			return ""
		}
	}
	for _, addr := range []string{s.Addr, s.TLSAddr} {
		waitListening(t, addr, s.done, "ambrosia", exitErr)
	}
	if _, err := os.Stat(s.CAFile); err != nil {
		t.Fatalf("server certificate: %v", err)
	}
	return s
}

// stop sends SIGTERM and expects a clean exit within 10 s; after that the
// process is killed and the test fails.
func (s *Server) stop(t testing.TB) {
	if s.stopped {
		return
	}
	select {
	case <-s.done:
		t.Errorf("ambrosia exited on its own: %v", s.err)
		return
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	select {
	case <-s.done:
		if s.err != nil {
			t.Errorf("ambrosia did not exit cleanly after SIGTERM: %v", s.err)
		}
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("ambrosia still running 10 s after SIGTERM; killed")
	}
}

// ambrosia runs a one-shot subcommand (user add, version, ...) and returns
// its combined output, failing the test if it exits non-zero.
func ambrosia(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("building ./cmd/ambrosia failed: %v\n%s", buildErr, buildLog)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = oneShotEnv()
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ambrosia %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// oneShotEnv is the environment of a one-shot subcommand, and of a
// server. Built with -race, the binary would otherwise sleep a second
// before exiting (the race detector's atexit_sleep_ms), which adds up over
// the many `user add` runs and server stops; a race it finds still makes
// it exit non-zero.
func oneShotEnv() []string {
	gorace := "atexit_sleep_ms=0"
	if v := os.Getenv("GORACE"); v != "" {
		gorace = v + " " + gorace
	}
	return append(os.Environ(), "GORACE="+gorace)
}

// addUser creates an account, handing the password over stdin as an
// operator would.
func addUser(t testing.TB, s *Server, jid, password string) {
	t.Helper()
	ambrosia(t, password+"\n", "user", "add", jid, "--data", s.DataDir)
}

// clientArgs are the connection arguments every client script takes.
func (s *Server) clientArgs(directTLS bool) []string {
	if directTLS {
		return []string{"--port", strconv.Itoa(s.TLSPort), "--ca", s.CAFile, "--direct-tls"}
	}
	return []string{"--port", strconv.Itoa(s.Port), "--ca", s.CAFile}
}

func scriptCommand(ctx context.Context, script string, args ...string) *exec.Cmd {
	path := filepath.Join(moduleRoot, "e2e", "testdata", script+".py")
	// -B keeps testdata free of __pycache__ directories.
	return exec.CommandContext(ctx, python, append([]string{"-B", path}, args...)...)
}

// runPython runs testdata/<script>.py and returns its exit code and output.
// Only a failure to run the interpreter at all fails the test here.
func runPython(t testing.TB, script string, args ...string) (int, string) {
	t.Helper()
	requireTools(t, "slixmpp")
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	out, err := scriptCommand(ctx, script, args...).CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case ctx.Err() != nil:
		t.Fatalf("%s.py still running after %v; killed\n%s", script, scriptTimeout, out)
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), string(out)
	default:
		t.Fatalf("%s.py: %v\n%s", script, err, out)
	}
	return -1, ""
}

// mustPython runs a script that is expected to succeed.
func mustPython(t testing.TB, script string, args ...string) string {
	t.Helper()
	code, out := runPython(t, script, args...)
	if code != 0 {
		t.Fatalf("%s.py %s: exit code %d\n%s", script, strings.Join(args, " "), code, out)
	}
	t.Logf("%s.py:\n%s", script, out)
	return out
}

// bgScript is a client script running alongside the test.
type bgScript struct {
	name  string
	out   *syncBuffer
	lines chan string
	done  chan struct{}
	err   error
}

// startPython starts a script in the background; it is killed when the test
// ends if it is still running.
func startPython(t testing.TB, script string, args ...string) *bgScript {
	t.Helper()
	requireTools(t, "slixmpp")
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	cmd := scriptCommand(ctx, script, args...)
	pr, pw := io.Pipe()
	b := &bgScript{name: script, out: &syncBuffer{}, lines: make(chan string, 100), done: make(chan struct{})}
	cmd.Stdout = io.MultiWriter(b.out, pw)
	cmd.Stderr = b.out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s.py: %v", script, err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case b.lines <- sc.Text():
			default: // nobody is waiting for more lines
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		b.err = cmd.Wait()
		pw.Close()
		close(b.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-b.done
		if t.Failed() {
			t.Logf("%s.py output:\n%s", script, b.out.String())
		}
	})
	return b
}

// waitLine waits until the script prints want on a line of its own.
func (b *bgScript) waitLine(t testing.TB, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-b.lines:
			if strings.TrimSpace(l) == want {
				return
			}
		case <-b.done:
			t.Fatalf("%s.py exited before printing %s: %v\n%s", b.name, want, b.err, b.out.String())
		case <-deadline:
			t.Fatalf("%s.py did not print %s within %v\n%s", b.name, want, timeout, b.out.String())
		}
	}
}

// waitPrefix waits until the script prints a line that starts with
// prefix, and returns the rest of it.
func (b *bgScript) waitPrefix(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-b.lines:
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest
			}
		case <-b.done:
			t.Fatalf("%s.py exited before printing %s…: %v\n%s", b.name, prefix, b.err, b.out.String())
		case <-deadline:
			t.Fatalf("%s.py did not print %s… within %v\n%s", b.name, prefix, timeout, b.out.String())
		}
	}
}

// wait waits for the script to finish and fails the test unless it succeeded.
func (b *bgScript) wait(t testing.TB) string {
	t.Helper()
	<-b.done
	if b.err != nil {
		t.Fatalf("%s.py: %v\n%s", b.name, b.err, b.out.String())
	}
	return b.out.String()
}
