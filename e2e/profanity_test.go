package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tmuxSession is a detached tmux session on a tmux server of the test's
// own, reached only through its socket in the test's temporary directory,
// so that neither the user's tmux servers nor their configuration are
// touched.
type tmuxSession struct {
	tmux   string   // the tmux binary
	socket string   // -S path of the test's own tmux server
	name   string   // session name, also the target of every command
	env    []string // the whole environment of tmux and the program in it
}

// run runs one tmux command against the test's server.
func (s *tmuxSession) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.tmux, append([]string{"-S", s.socket}, args...)...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// screen returns what the pane shows now.
func (s *tmuxSession) screen() string {
	out, err := s.run("capture-pane", "-p", "-J", "-t", s.name)
	if err != nil {
		return "(no screen: " + err.Error() + ")"
	}
	return out
}

// paneExit reports whether the program in the pane has exited and, if it
// has, how: "status N" or "signal N". remain-on-exit keeps the dead pane
// around for this.
func (s *tmuxSession) paneExit() (dead bool, how string, err error) {
	out, err := s.run("display-message", "-p", "-t", s.name, "#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}|#{pid}")
	if err != nil {
		return false, "", err
	}
	f := strings.Split(strings.TrimSpace(out), "|")
	if len(f) != 4 {
		return false, "", fmt.Errorf("tmux display-message: unexpected %q", out)
	}
	switch {
	case f[0] != "1":
		return false, "", nil
	case f[1] != "":
		return true, "status " + f[1], nil
	case f[2] != "":
		return true, "signal " + f[2], nil
	}
	// The terminal has closed but tmux has not reaped the program.
	// Debian's tmux records panes with libutempter, whose helper briefly
	// owns SIGCHLD while a pane closes; a child exiting then stays a zombie
	// until the server gets another SIGCHLD (tmux issues 311 and 4559).
	// Give it one: the server is this test's own.
	if pid, err := strconv.Atoi(f[3]); err == nil {
		_ = syscall.Kill(pid, syscall.SIGCHLD)
	}
	return false, "", nil
}

// typeLine types text into the pane as a user would and presses Enter.
// -l sends the text literally, so that words like "Enter" or "C-c" in it
// are not taken for key names.
func (s *tmuxSession) typeLine(t *testing.T, text string) {
	t.Helper()
	if _, err := s.run("send-keys", "-t", s.name, "-l", text); err != nil {
		t.Fatal(err)
	}
	if _, err := s.run("send-keys", "-t", s.name, "Enter"); err != nil {
		t.Fatal(err)
	}
}

// profanityRun is one profanity process in a tmux pane.
type profanityRun struct {
	tmux    *tmuxSession
	logFile string  // profanity's own log
	server  *Server // for failure messages
}

// diagnostics is what a failure message shows: the screen, profanity's log
// and the server's log.
func (p *profanityRun) diagnostics() string {
	logText := "(none)"
	if b, err := os.ReadFile(p.logFile); err == nil {
		logText = string(b)
		if len(logText) > 8000 {
			logText = "...\n" + logText[len(logText)-8000:]
		}
	}
	return fmt.Sprintf("--- screen ---\n%s--- profanity log ---\n%s\n--- server log ---\n%s--- end of server log ---",
		p.tmux.screen(), logText, p.server.Log())
}

// waitScreen polls the pane until it shows want. It fails at once if the
// pane shows one of the failure texts or profanity has exited.
func (p *profanityRun) waitScreen(t *testing.T, want, what string, timeout time.Duration, failures ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		screen := p.tmux.screen()
		if strings.Contains(screen, want) {
			return
		}
		for _, f := range failures {
			if strings.Contains(screen, f) {
				t.Fatalf("profanity shows %q while waiting for %s\n%s", f, what, p.diagnostics())
			}
		}
		if dead, how, err := p.tmux.paneExit(); err != nil || dead {
			t.Fatalf("profanity exited (%s, %v) while waiting for %s\n%s", how, err, what, p.diagnostics())
		}
		if time.Now().After(deadline) {
			t.Fatalf("profanity did not show %q (%s) within %v\n%s", want, what, timeout, p.diagnostics())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenShows polls the pane until it shows want or timeout passes.
func (p *profanityRun) screenShows(want string, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		if strings.Contains(p.tmux.screen(), want) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// screenLine reports whether one line of screen contains all of parts, in
// order.
func screenLine(screen string, parts ...string) bool {
	for _, line := range strings.Split(screen, "\n") {
		rest, ok := line, true
		for _, part := range parts {
			i := strings.Index(rest, part)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(part):]
		}
		if ok {
			return true
		}
	}
	return false
}

// waitExit waits for profanity to exit and fails unless it exited with 0.
func (p *profanityRun) waitExit(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		dead, how, err := p.tmux.paneExit()
		if err != nil {
			t.Fatalf("profanity pane: %v\n%s", err, p.diagnostics())
		}
		if dead {
			if how != "status 0" {
				t.Fatalf("profanity exited with %s after /quit\n%s", how, p.diagnostics())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("profanity still running %v after /quit\n%s", timeout, p.diagnostics())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// profanityTools are the programs the profanity tests drive.
type profanityTools struct{ profanity, tmux string }

// requireProfanity skips the test, or fails it under AMBROSIA_E2E=1, when
// profanity or tmux is missing; tests call it before starting anything.
func requireProfanity(t *testing.T) profanityTools {
	t.Helper()
	requireTools(t, "slixmpp", "profanity", "tmux")
	profanity, _ := findProgram("profanity")
	tmux, _ := findProgram("tmux")
	return profanityTools{profanity: profanity, tmux: tmux}
}

// startProfanity runs profanity for jid in a detached tmux session with a
// fixed 160x48 terminal and a home directory of its own, logging in through
// the server's STARTTLS port. roots, a PEM file, is its only trust anchor:
// OpenSSL, under libstrophe, reads it from SSL_CERT_FILE and verifies the
// chain and the host name, and the certificate directory (profanity's
// tls.certpath and SSL_CERT_DIR) is empty. A certificate that does not
// verify stops at profanity's "TLS certificate verification failed" prompt
// instead of being accepted.
func startProfanity(t *testing.T, tools profanityTools, s *Server, jid, password, roots string) *profanityRun {
	t.Helper()

	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	configHome := filepath.Join(home, ".config")
	dataHome := filepath.Join(home, ".local", "share")
	trustDir := filepath.Join(dir, "no-system-roots")
	for _, d := range []string{filepath.Join(configHome, "profanity"), filepath.Join(dataHome, "profanity"), trustDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// What /prefs and /account would store; written beforehand so that the
	// test does not depend on how profanity echoes those commands.
	writeFile(t, filepath.Join(configHome, "profanity", "profrc"), fmt.Sprintf(`[connection]
tls.certpath=%s

[ui]
splash=false

[notifications]
message=false
room=false
invite=false
sub=false
`, trustDir))
	writeFile(t, filepath.Join(dataHome, "profanity", "accounts"), fmt.Sprintf(`[%[1]s]
enabled=true
jid=%[1]s
server=127.0.0.1
port=%[2]d
resource=profanity
password=%[3]s
tls.policy=force
`, jid, s.Port, password))

	ts := &tmuxSession{
		tmux:   tools.tmux,
		socket: filepath.Join(dir, "tmux.sock"),
		name:   "profanity",
		env: []string{
			"PATH=" + os.Getenv("PATH"),
			"HOME=" + home,
			"XDG_CONFIG_HOME=" + configHome,
			"XDG_DATA_HOME=" + dataHome,
			"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
			"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
			"LANG=C.UTF-8",
			"TERM=screen",
			"SSL_CERT_FILE=" + roots,
			"SSL_CERT_DIR=" + trustDir,
		},
	}
	conf := filepath.Join(moduleRoot, "e2e", "testdata", "profanity", "tmux.conf")
	// Registered before the start, so that a half-started server goes too;
	// kill-server reaches only the server on this socket.
	t.Cleanup(func() {
		if _, err := os.Stat(ts.socket); err == nil {
			_, _ = ts.run("kill-server")
		}
	})
	if _, err := ts.run("-f", conf, "new-session", "-d", "-s", ts.name, "-x", "160", "-y", "48",
		tools.profanity, "-a", jid, "-l", "DEBUG"); err != nil {
		t.Fatalf("start profanity in tmux: %v", err)
	}
	return &profanityRun{
		tmux:    ts,
		logFile: filepath.Join(dataHome, "profanity", "logs", "profanity.log"),
		server:  s,
	}
}

// TestProfanity drives the profanity terminal client through tmux as a user
// would: it logs in as alice over STARTTLS, verifying the server's
// certificate, sends a chat message that a slixmpp client logged in as bob
// receives, shows bob's answer and quits cleanly.
func TestProfanity(t *testing.T) {
	tools := requireProfanity(t)
	s := startWithUsers(t)
	const (
		toBob   = "hello from profanity"
		toAlice = "hello back from bob"
	)
	peer := startPython(t, "profanity_peer", append(s.clientArgs(false),
		"--jid", bob, "--password", bobPass,
		"--body", toBob, "--expect-from", alice, "--reply", toAlice)...)
	p := startProfanity(t, tools, s, alice, alicePass, s.CAFile)

	p.waitScreen(t, alice+"/profanity logged in successfully", "the login", 20*time.Second,
		"TLS certificate verification failed", "Login failed")
	peer.waitLine(t, "READY", 20*time.Second)

	p.tmux.typeLine(t, "/msg "+bob+" "+toBob)
	peer.waitLine(t, "REPLIED", 20*time.Second)
	// /msg switched profanity to the chat window with bob, where his answer
	// shows up.
	p.waitScreen(t, toAlice, "bob's answer", 20*time.Second)
	if !screenLine(p.tmux.screen(), bob+"/", ": "+toAlice) {
		t.Errorf("bob's answer is not shown as coming from %s/<resource>\n%s", bob, p.diagnostics())
	}
	peer.wait(t)

	p.tmux.typeLine(t, "/quit")
	p.waitExit(t, 10*time.Second)
}

// TestProfanityUnknownCertificate checks that the trust set up for
// TestProfanity is real: without the server's certificate among its roots,
// profanity stops at the certificate prompt and never logs in.
func TestProfanityUnknownCertificate(t *testing.T) {
	tools := requireProfanity(t)
	s := startWithUsers(t)
	noRoots := filepath.Join(t.TempDir(), "empty.pem")
	writeFile(t, noRoots, "")
	p := startProfanity(t, tools, s, alice, alicePass, noRoots)

	p.waitScreen(t, "TLS certificate verification failed", "the certificate prompt", 20*time.Second,
		"logged in successfully")
	p.tmux.typeLine(t, "/tls deny")
	p.tmux.typeLine(t, "/quit")
	p.waitExit(t, 10*time.Second)
	if strings.Contains(s.Log(), `"user":"`+alice+`"`) {
		t.Errorf("alice authenticated although profanity did not trust the certificate\n%s", s.Log())
	}
}
