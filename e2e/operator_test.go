package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/adminsock"
	"github.com/ambrosia-xmpp/ambrosia/internal/datadir"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/sqlite"
)

// runAmbrosia runs a one-shot command and returns its exit code and
// combined output, whatever the code.
func runAmbrosia(t testing.TB, dir, stdin string, env []string, args ...string) (int, string) {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("building ./cmd/ambrosia failed: %v\n%s", buildErr, buildLog)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = dir
	cmd.Env = append(oneShotEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), string(out)
	}
	t.Fatalf("ambrosia %s: %v\n%s", strings.Join(args, " "), err, out)
	return -1, ""
}

// TestSecondServeRefused: a second server on the data directory of a
// running one refuses to start and names the process that holds it.
func TestSecondServeRefused(t *testing.T) {
	requireTools(t) // none: skipped in -short mode
	s := startServer(t, ServerOptions{})
	pid := strconv.Itoa(s.cmd.Process.Pid)
	code, out := runAmbrosia(t, "", "", []string{"AMBROSIA_UPLOAD_ADDR=127.0.0.1:" + strconv.Itoa(freePort(t))},
		"serve", "--data", s.DataDir, "--c2s-addr", "127.0.0.1:"+strconv.Itoa(freePort(t)), "--c2s-tls-addr", "")
	if code != 1 || !strings.Contains(out, "in use by process "+pid) {
		t.Fatalf("second serve: exit %d, want 1 and a message naming process %s:\n%s", code, pid, out)
	}
	// The first one still serves.
	waitListening(t, s.Addr, s.done, "ambrosia", nil)
}

// TestUserCommandsCreateNoDatabase: the user commands run from a
// directory without the server's data create no database there (a user
// added to it would never reach the server): they say where they looked.
func TestUserCommandsCreateNoDatabase(t *testing.T) {
	requireTools(t) // none: skipped in -short mode
	s := startServer(t, ServerOptions{})
	elsewhere := t.TempDir()
	want := filepath.Join(elsewhere, "data", "ambrosia.db")
	for _, args := range [][]string{
		{"user", "add", "alice@localhost", "--password", "pw"},
		{"user", "list"},
		{"user", "del", "alice@localhost"},
		{"user", "passwd", "alice@localhost", "--password", "pw"},
	} {
		code, out := runAmbrosia(t, elsewhere, "", nil, args...)
		if code != 1 || !strings.Contains(out, "no database at "+want) {
			t.Errorf("%s: exit %d, want 1 and a message naming %s:\n%s", strings.Join(args, " "), code, want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the user commands created %s/data: %v", elsewhere, err)
	}
	// Where the server runs, they work.
	addUser(t, s, "alice@localhost", "pw")
	if code, out := runAmbrosia(t, "", "", nil, "user", "list", "--data", s.DataDir); code != 0 || out != "alice@localhost\n" {
		t.Errorf("user list: exit %d:\n%s", code, out)
	}
}

// TestUserDelEndsSessions: ambrosia user del, run beside the server, ends
// the deleted user's live sessions with the stream error not-authorized;
// user passwd ends the sessions only when asked (--end-sessions), with
// reset, as Prosody does.
func TestUserDelEndsSessions(t *testing.T) {
	requireTools(t) // none: skipped in -short mode
	s := startServer(t, ServerOptions{})
	addUser(t, s, "alice@localhost", "alice-pw")
	addUser(t, s, "bob@localhost", "bob-pw")
	login := func(user, pw, resource string) *rawClient {
		c, err := dialRaw(s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.login(s, user, pw, resource); err != nil {
			t.Fatalf("login %s: %v", user, err)
		}
		return c
	}
	streamError := func(cond string) *regexp.Regexp {
		return regexp.MustCompile(`<(stream:)?error[^>]*>\s*<` + cond + `[\s/>]`)
	}
	ping := func(c *rawClient, id string) error {
		if err := c.send(`<iq type='get' id='` + id + `'><ping xmlns='urn:xmpp:ping'/></iq>`); err != nil {
			return err
		}
		_, err := c.expect(regexp.MustCompile(`<iq[^>]*id=['"]` + id + `['"]`))
		return err
	}

	a1, a2 := login("alice", "alice-pw", "phone"), login("alice", "alice-pw", "laptop")
	b := login("bob", "bob-pw", "desk")

	// A password change alone ends nothing.
	if code, out := runAmbrosia(t, "", "new-pw\n", nil, "user", "passwd", "alice@localhost", "--data", s.DataDir); code != 0 || strings.Contains(out, "ended") {
		t.Fatalf("user passwd: exit %d:\n%s", code, out)
	}
	if err := ping(a1, "p1"); err != nil {
		t.Fatalf("after a password change: %v", err)
	}
	// With --end-sessions, it ends them with reset.
	code, out := runAmbrosia(t, "", "newer-pw\n", nil, "user", "passwd", "alice@localhost", "--end-sessions", "--data", s.DataDir)
	if code != 0 || !strings.Contains(out, "ended the 2 sessions of alice@localhost") {
		t.Fatalf("user passwd --end-sessions: exit %d:\n%s", code, out)
	}
	for _, c := range []*rawClient{a1, a2} {
		if _, err := c.expect(streamError("reset")); err != nil {
			t.Fatalf("after passwd --end-sessions: %v", err)
		}
		if err := c.expectClosed(); err != nil {
			t.Fatal(err)
		}
	}

	// user del ends the sessions of the deleted user with not-authorized.
	a3 := login("alice", "newer-pw", "tablet")
	code, out = runAmbrosia(t, "", "", nil, "user", "del", "alice@localhost", "--data", s.DataDir)
	if code != 0 || !strings.Contains(out, "deleted alice@localhost") || !strings.Contains(out, "ended the session of alice@localhost") {
		t.Fatalf("user del: exit %d:\n%s", code, out)
	}
	if _, err := a3.expect(streamError("not-authorized")); err != nil {
		t.Fatalf("after user del: %v", err)
	}
	if err := a3.expectClosed(); err != nil {
		t.Fatal(err)
	}
	// Nobody else's.
	if err := ping(b, "p2"); err != nil {
		t.Fatalf("bob after alice's deletion: %v", err)
	}
	if !strings.Contains(s.Log(), `"msg":"sessions ended","user":"alice@localhost","sessions":1,"condition":"not-authorized"`) {
		t.Errorf("no log line for the ended sessions")
	}
}

// readmeFail2banRegexes returns the failregex lines of the README's
// fail2ban filter as Go regular expressions, <HOST> captured.
func readmeFail2banRegexes(t *testing.T) []*regexp.Regexp {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*regexp.Regexp
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "failregex = "):
			in = true
			line = strings.TrimPrefix(line, "failregex = ")
		case in && strings.HasPrefix(line, "            "):
		default:
			in = false
			continue
		}
		// fail2ban's <HOST> matches an address; Python's and Go's
		// syntax agree on the rest of these expressions.
		re := strings.ReplaceAll(strings.TrimSpace(line), "<HOST>", `(?P<host>[0-9A-Fa-f.:]+)`)
		out = append(out, regexp.MustCompile(re))
	}
	if len(out) == 0 {
		t.Fatal("no failregex in the README")
	}
	return out
}

// TestLoginLog: at the default level, a login, a logout and a failed
// login each give a log line with the client's address, and the README's
// fail2ban filter finds the address of the failed one only, in both log
// formats.
func TestLoginLog(t *testing.T) {
	requireTools(t) // none: skipped in -short mode
	regexes := readmeFail2banRegexes(t)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			s := startServer(t, ServerOptions{ExtraArgs: []string{"--log-format", format, "--log-level", "info"}})
			addUser(t, s, "alice@localhost", "alice-pw")
			c, err := dialRaw(s.Addr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.login(s, "alice", "alice-pw", "phone"); err != nil {
				t.Fatal(err)
			}
			local := c.conn.LocalAddr().String()
			_ = c.send("</stream:stream>")
			_ = c.expectClosed()
			c.Close()
			bad, res, err := dialTLSAuth(s, "alice", "wrong")
			if err != nil {
				t.Fatal(err)
			}
			if !reNotAuth.MatchString(res) {
				t.Fatalf("wrong password: %s", res)
			}
			badAddr := bad.conn.LocalAddr().String()
			bad.Close()

			want := map[string][]string{
				"login":        {"alice@localhost", local},
				"logout":       {"alice@localhost/phone", local},
				"login failed": {badAddr},
			}
			deadline := time.Now().Add(20 * time.Second)
			var lines []string
			for {
				lines = nil
				found := 0
				for _, l := range strings.Split(s.Log(), "\n") {
					for msg, parts := range want {
						m := `msg="` + msg + `"`
						if format == "json" {
							m = `"msg":"` + msg + `"`
						} else if !strings.Contains(msg, " ") {
							m = "msg=" + msg + " "
						}
						if !strings.Contains(l, m) || !strings.Contains(l, "INFO") {
							continue
						}
						ok := true
						for _, p := range parts {
							ok = ok && strings.Contains(l, p)
						}
						if ok {
							found++
							lines = append(lines, l)
						}
					}
				}
				if found >= len(want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("want a line for each of login, logout and login failed with the address; have %q", lines)
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("%s", strings.Join(lines, "\n"))
			host, _, _ := net.SplitHostPort(badAddr)
			var banned []string
			for _, l := range strings.Split(s.Log(), "\n") {
				for _, re := range regexes {
					if m := re.FindStringSubmatch(l); m != nil {
						banned = append(banned, m[re.SubexpIndex("host")])
					}
				}
			}
			if len(banned) != 1 || banned[0] != host {
				t.Fatalf("the README's fail2ban filter finds %q, want only %s", banned, host)
			}
		})
	}
}

// TestStopIsTheEnd: after SIGTERM the server ends its sessions, closes
// its database, releases its data directory and logs "stopped" as its
// last line, then exits at once with status 0 (Stop fails the test
// otherwise).
func TestStopIsTheEnd(t *testing.T) {
	requireTools(t) // none: skipped in -short mode
	s := startServer(t, ServerOptions{})
	addUser(t, s, "alice@localhost", "alice-pw")
	c, err := dialRaw(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.login(s, "alice", "alice-pw", "phone"); err != nil {
		t.Fatal(err)
	}
	s.Stop(t)
	lines := strings.Split(strings.TrimSpace(s.Log()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, `"msg":"stopped"`) {
		t.Errorf("last log line %q, want stopped", last)
	}
	if _, held, err := datadir.Holder(s.DataDir); held || err != nil {
		t.Errorf("data directory still held after the server exited: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.DataDir, adminsock.SocketName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin socket left behind: %v", err)
	}
	// What SQLite writes at close is done: no write-ahead log is left.
	if _, err := os.Stat(filepath.Join(s.DataDir, "ambrosia.db-wal")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("write-ahead log left behind: %v", err)
	}
}

// TestBackupRestore: a backup taken while messages are being stored
// restores, on a server started from it, every message acknowledged
// before the backup began, and of those sent meanwhile a prefix, no gaps;
// restore refuses while a server runs on the data directory.
func TestBackupRestore(t *testing.T) {
	requireTools(t) // none: skipped in -short mode
	s := startServer(t, ServerOptions{})
	addUser(t, s, "alice@localhost", "alice-pw")
	addUser(t, s, "bob@localhost", "bob-pw")
	c, err := dialRaw(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.login(s, "alice", "alice-pw", "phone"); err != nil {
		t.Fatal(err)
	}
	// send sends n messages to bob, who is offline, then a ping whose
	// answer says they were all handled: stored for bob and archived.
	send := func(prefix string, n int) error {
		for i := range n {
			if err := c.send(fmt.Sprintf(`<message to='bob@localhost' type='chat' id='%s-%d'><body>%s-%d</body></message>`, prefix, i, prefix, i)); err != nil {
				return err
			}
		}
		if err := c.send(`<iq type='get' id='ping-` + prefix + `'><ping xmlns='urn:xmpp:ping'/></iq>`); err != nil {
			return err
		}
		_, err := c.expect(regexp.MustCompile(`<iq[^>]*id=['"]ping-` + prefix + `['"]`))
		return err
	}
	if err := send("before", 100); err != nil {
		t.Fatal(err)
	}

	backup := filepath.Join(t.TempDir(), "backup")
	during := make(chan error, 1)
	go func() { during <- send("during", 100) }()
	code, out := runAmbrosia(t, "", "", nil, "backup", backup, "--data", s.DataDir)
	if code != 0 {
		t.Fatalf("backup: exit %d:\n%s", code, out)
	}
	if err := <-during; err != nil {
		t.Fatal(err)
	}

	// Not over a running server's data.
	code, out = runAmbrosia(t, "", "", nil, "restore", backup, "--data", s.DataDir, "--force")
	if code != 1 || !strings.Contains(out, "process "+strconv.Itoa(s.cmd.Process.Pid)) || !strings.Contains(out, "stop it first") {
		t.Fatalf("restore over a running server: exit %d:\n%s", code, out)
	}

	restored := t.TempDir()
	if code, out := runAmbrosia(t, "", "", nil, "restore", backup, "--data", restored); code != 0 {
		t.Fatalf("restore: exit %d:\n%s", code, out)
	}
	if code, out := runAmbrosia(t, "", "", nil, "restore", backup, "--data", restored); code != 1 || !strings.Contains(out, "--force") {
		t.Fatalf("restore over a database: exit %d:\n%s", code, out)
	}
	// A server starts on it, with the same certificate, and knows bob.
	r := startServer(t, ServerOptions{DataDir: restored})
	if a, b := mustRead(t, s.CAFile), mustRead(t, r.CAFile); a != b {
		t.Error("the restored server has another certificate")
	}
	bc, err := dialRaw(r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	if _, err := bc.login(r, "bob", "bob-pw", "desk"); err != nil {
		t.Fatalf("bob on the restored server: %v", err)
	}
	r.Stop(t)

	store, err := sqlite.Open(context.Background(), filepath.Join(restored, "ambrosia.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	msgs, err := store.OfflineMessages(context.Background(), "bob@localhost")
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range msgs {
		if b := regexp.MustCompile(`<body>([^<]*)</body>`).FindSubmatch(m.Stanza); b != nil {
			bodies = append(bodies, string(b[1]))
		}
	}
	for i := range 100 {
		if i >= len(bodies) || bodies[i] != fmt.Sprintf("before-%d", i) {
			t.Fatalf("acknowledged message before-%d missing from the restored store: %q", i, bodies)
		}
	}
	for i, b := range bodies[100:] {
		if b != fmt.Sprintf("during-%d", i) {
			t.Fatalf("the messages sent during the backup are not a prefix: %q", bodies[100:])
		}
	}
	t.Logf("restored: 100 messages before the backup, %d of the 100 sent during it", len(bodies)-100)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
