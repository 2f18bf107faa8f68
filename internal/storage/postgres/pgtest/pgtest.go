// Package pgtest runs a throwaway PostgreSQL server for tests: it finds the
// server binaries of the machine (Debian's /usr/lib/postgresql/*/bin, or
// PATH), creates a cluster in a temporary directory, serves it on a free
// loopback port and a unix socket inside that directory, hands out one
// fresh database per test, and removes everything when stopped.
//
// PostgreSQL refuses to run as root. When the tests run as root (as in CI),
// the cluster runs as the unprivileged "postgres" user that Debian's
// packages create, and its directory is handed over to that user.
//
// When no server is installed the tests that ask for one are skipped,
// unless AMBROSIA_E2E=1 is set, which turns the skip into a failure.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoServer reports that no PostgreSQL server binaries were found.
var ErrNoServer = errors.New("pgtest: PostgreSQL server binaries (initdb, postgres) not found; install the postgresql package")

// superuser is the cluster's bootstrap role, which the tests connect as.
const superuser = "ambrosia"

// startTimeout bounds initdb plus the server's start.
const startTimeout = 60 * time.Second

// Cluster is one running PostgreSQL server owned by the test process.
type Cluster struct {
	dir       string // temporary directory holding everything below
	socketDir string
	port      int
	cmd       *exec.Cmd
	done      chan struct{} // closed when the server process has exited
	waitErr   error         // set before done is closed
	log       string        // the server's log file
	dbSeq     atomic.Int64
	// bin, data and cred start the server again (Restart).
	bin, data string
	cred      *syscall.Credential
}

// findBinDir returns the directory of the newest installed server's
// binaries.
func findBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first; the names are plain numbers.
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	// Other distributions put the server on PATH.
	initdb, err1 := exec.LookPath("initdb")
	postgres, err2 := exec.LookPath("postgres")
	if err1 == nil && err2 == nil && filepath.Dir(initdb) == filepath.Dir(postgres) {
		return filepath.Dir(initdb), nil
	}
	return "", ErrNoServer
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// runAs is who the server processes run as: nil for the current user, or
// the credentials of the "postgres" user when the current user is root.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, and PostgreSQL refuses that: need the unprivileged postgres user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: postgres user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// Start creates and starts a cluster. It returns an error wrapping
// ErrNoServer when PostgreSQL is not installed. Stop removes it again.
func Start(ctx context.Context) (*Cluster, error) {
	bin, err := findBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "ambrosia-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{dir: dir, socketDir: filepath.Join(dir, "run"), log: filepath.Join(dir, "server.log"), done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if err := os.Mkdir(c.socketDir, 0o700); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if cred != nil {
		// The server user must reach the directory: MkdirTemp makes it
		// 0700 and root's.
		for _, d := range []string{dir, c.socketDir} {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("pgtest: %w", err)
			}
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"--pgdata", data, "--username", superuser, "--auth", "trust",
		"--encoding", "UTF8", "--locale", "C", "--no-sync")
	initdb.Dir = dir
	setupCmd(initdb, cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	// The port is free now; another process could take it before the
	// server binds, which shows as a start failure, and Start is retried.
	c.bin, c.data, c.cred = bin, data, cred
	var lastErr error
	for range 3 {
		c.port = 0
		if err := c.startServer(ctx, bin, data, cred); err != nil {
			lastErr = err
			continue
		}
		ok = true
		return c, nil
	}
	return nil, lastErr
}

// setupCmd runs cmd as cred (nil: as the current user) in a stable
// locale, killed with the test process should that die first.
func setupCmd(cmd *exec.Cmd, cred *syscall.Credential) {
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	cmd.SysProcAttr = sysProcAttr(cred)
}

// startServer starts the server on c.port, or on a free port if 0.
func (c *Cluster) startServer(ctx context.Context, bin, data string, cred *syscall.Credential) error {
	if c.port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("pgtest: free port: %w", err)
		}
		c.port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}

	logf, err := os.OpenFile(c.log, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close()
	// Durability is worth nothing in a throwaway cluster: without fsync the
	// tests run at memory speed.
	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", data,
		"-p", strconv.Itoa(c.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+c.socketDir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
		"-c", "shared_buffers=32MB",
		"-c", "log_min_messages=warning",
	)
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	setupCmd(cmd, cred)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	c.cmd = cmd
	c.done = make(chan struct{})
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	if err := c.waitReady(ctx); err != nil {
		c.kill()
		return fmt.Errorf("%w\n--- server log ---\n%s", err, c.logTail())
	}
	return nil
}

// waitReady polls until the server accepts connections, it exits, or ctx
// ends.
func (c *Cluster) waitReady(ctx context.Context) error {
	for {
		conn, err := pgx.Connect(ctx, c.dsn("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-c.done:
			return fmt.Errorf("pgtest: postgres exited during start: %v", c.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not ready: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) logTail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// kill stops the server immediately.
func (c *Cluster) kill() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// Crash ends the server at once, as a crash would: SIGKILL for the
// postmaster, whose backends then exit on their own; no checkpoint, so
// the next start recovers from the write-ahead log.
func (c *Cluster) Crash() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// Restart starts the server again after Crash, on the same port, with the
// same databases. It waits for the crashed server's backends to be gone.
func (c *Cluster) Restart(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		if err = c.startServer(ctx, c.bin, c.data, c.cred); err == nil {
			return nil
		}
		// The old shared memory or port is still held: try again.
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return err
}

// Stop shuts the server down (PostgreSQL's fast shutdown: sessions are
// disconnected) and removes the cluster's directory.
func (c *Cluster) Stop() error {
	var err error
	if c.cmd != nil {
		_ = c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.done:
		case <-time.After(20 * time.Second):
			err = errors.New("pgtest: postgres still running 20 s after SIGINT; killed")
			c.kill()
		}
	}
	return errors.Join(err, os.RemoveAll(c.dir))
}

// Port is the server's loopback TCP port.
func (c *Cluster) Port() int { return c.port }

// SocketDir is the directory of the server's unix socket.
func (c *Cluster) SocketDir() string { return c.socketDir }

// dsn is the URL of database db over TCP.
func (c *Cluster) dsn(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// SocketDSN is the keyword/value DSN of database db over the unix socket.
func (c *Cluster) SocketDSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s", c.socketDir, c.port, superuser, db)
}

// DatabaseOptions select how a database is created.
type DatabaseOptions struct {
	// ICULocale, when set, makes the database's default collation that
	// ICU locale (e.g. "en"): text then sorts linguistically, as on many
	// production servers, rather than by bytes.
	ICULocale string
	// Durable turns synchronous_commit on for the database (the cluster
	// has it off for speed): a commit is then in the write-ahead log when
	// it returns, and survives Crash.
	Durable bool
}

// CreateDatabase creates a new, empty database and returns its name and
// its DSN (a postgres:// URL over TCP).
func (c *Cluster) CreateDatabase(ctx context.Context, opts DatabaseOptions) (name, dsn string, err error) {
	name = fmt.Sprintf("test_%d", c.dbSeq.Add(1))
	conn, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		return "", "", fmt.Errorf("pgtest: create database: %w", err)
	}
	defer conn.Close(ctx)
	q := "CREATE DATABASE " + name
	if opts.ICULocale != "" {
		q += " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE " + quoteLiteral(opts.ICULocale) + " LOCALE 'C'"
	}
	if _, err := conn.Exec(ctx, q); err != nil {
		return "", "", fmt.Errorf("pgtest: %s: %w", q, err)
	}
	if opts.Durable {
		q = "ALTER DATABASE " + name + " SET synchronous_commit TO on"
		if _, err := conn.Exec(ctx, q); err != nil {
			return "", "", fmt.Errorf("pgtest: %s: %w", q, err)
		}
	}
	return name, c.dsn(name), nil
}

// DropDatabase removes database name, disconnecting its sessions.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: drop database: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Database creates a fresh database for t, dropped when t ends, and
// returns its DSN.
func (c *Cluster) Database(t testing.TB, opts DatabaseOptions) string {
	t.Helper()
	name, dsn, err := c.CreateDatabase(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context is done by now.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.DropDatabase(ctx, name); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// required reports whether a missing server fails the tests instead of
// skipping them.
func required() bool { return os.Getenv("AMBROSIA_E2E") == "1" }

// unavailable skips t, or fails it under AMBROSIA_E2E=1, because err kept
// the cluster from starting. Errors other than a missing installation
// always fail.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoServer) && !required() {
		t.Skipf("%v; set AMBROSIA_E2E=1 to make this a failure", err)
		return
	}
	t.Fatal(err)
}

// New starts a cluster for t alone and stops it when t ends. It skips t
// when PostgreSQL is not installed, unless AMBROSIA_E2E=1.
func New(t testing.TB) *Cluster {
	t.Helper()
	c, err := Start(t.Context())
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// Shared is one cluster for a whole test binary, started by the first
// test that asks for it and stopped by Run when the tests are done:
//
//	var pg pgtest.Shared
//
//	func TestMain(m *testing.M) { os.Exit(pg.Run(m)) }
//
// The zero value is ready to use.
type Shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
}

// Run runs the tests and stops the cluster if one was started; it returns
// the exit code for os.Exit.
func (s *Shared) Run(m *testing.M) int {
	code := m.Run()
	if s.cluster != nil {
		if err := s.cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Cluster returns the shared cluster, starting it on first use. It skips
// t when PostgreSQL is not installed, unless AMBROSIA_E2E=1.
func (s *Shared) Cluster(t testing.TB) *Cluster {
	t.Helper()
	s.once.Do(func() {
		// Not t's context: the cluster outlives t.
		s.cluster, s.err = Start(context.Background())
	})
	if s.err != nil {
		unavailable(t, s.err)
	}
	return s.cluster
}

// Database creates a fresh database in the shared cluster for t, dropped
// when t ends, and returns its DSN.
func (s *Shared) Database(t testing.TB, opts DatabaseOptions) string {
	t.Helper()
	return s.Cluster(t).Database(t, opts)
}
