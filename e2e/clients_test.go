package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	alice     = "alice@localhost"
	bob       = "bob@localhost"
	alicePass = "alice-Secret-1"
	bobPass   = "bob-Secret-2"
)

// startWithUsers starts a server with alice and bob registered.
func startWithUsers(t *testing.T) *Server {
	t.Helper()
	requireTools(t, "slixmpp")
	s := startServer(t, ServerOptions{})
	addUser(t, s, alice, alicePass)
	addUser(t, s, bob, bobPass)
	return s
}

func loginArgs(s *Server, directTLS bool, jid, password, mech string) []string {
	args := append(s.clientArgs(directTLS), "--jid", jid, "--password", password)
	if mech != "" {
		args = append(args, "--mech", mech)
	}
	return args
}

func testLogin(t *testing.T, mech string) {
	s := startWithUsers(t)
	out := mustPython(t, "login", loginArgs(s, false, alice, alicePass, mech)...)
	if !strings.Contains(out, "(mechanism "+mech+")") {
		t.Errorf("login did not report mechanism %s:\n%s", mech, out)
	}
}

// TestLoginClientChoice lets slixmpp pick as it would for a user: it tries
// SCRAM-*-PLUS with tls-unique first, which the server refuses without
// counting it as a failed password, and then logs in with plain SCRAM.
func TestLoginClientChoice(t *testing.T) {
	s := startWithUsers(t)
	out := mustPython(t, "login", loginArgs(s, false, alice, alicePass, "")...)
	if !strings.Contains(out, "(mechanism SCRAM-SHA-") {
		t.Errorf("login did not use SCRAM:\n%s", out)
	}
}

func TestLoginSCRAMSHA1(t *testing.T)   { testLogin(t, "SCRAM-SHA-1") }
func TestLoginSCRAMSHA256(t *testing.T) { testLogin(t, "SCRAM-SHA-256") }
func TestLoginSCRAMSHA512(t *testing.T) { testLogin(t, "SCRAM-SHA-512") }
func TestLoginPLAIN(t *testing.T)       { testLogin(t, "PLAIN") }

func TestWrongPasswordRefused(t *testing.T) {
	s := startWithUsers(t)
	for _, mech := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			code, out := runPython(t, "login", loginArgs(s, false, alice, "not-"+alicePass, mech)...)
			if code != 3 || !strings.Contains(out, "AUTH_FAILED condition=not-authorized") {
				t.Errorf("want exit code 3 and condition not-authorized, got exit code %d:\n%s", code, out)
			}
		})
	}
	t.Run("unknown-user", func(t *testing.T) {
		code, out := runPython(t, "login", loginArgs(s, false, "mallory@localhost", alicePass, "SCRAM-SHA-256")...)
		if code != 3 || !strings.Contains(out, "AUTH_FAILED condition=not-authorized") {
			t.Errorf("want exit code 3 and condition not-authorized, got exit code %d:\n%s", code, out)
		}
	})
}

func messageArgs(s *Server, id, body, spoofFrom string) []string {
	args := append(s.clientArgs(false),
		"--from-jid", alice, "--from-password", alicePass,
		"--to-jid", bob, "--to-password", bobPass,
		"--id", id, "--body", body)
	if spoofFrom != "" {
		args = append(args, "--spoof-from", spoofFrom)
	}
	return args
}

func TestMessageDelivered(t *testing.T) {
	s := startWithUsers(t)
	// Markup-like characters and non-ASCII text must survive the trip.
	mustPython(t, "message", messageArgs(s, "msg-e2e-1", "Hello Bob <3 & café ☕", "")...)
}

func TestRosterPush(t *testing.T) {
	s := startWithUsers(t)
	mustPython(t, "roster", loginArgs(s, false, alice, alicePass, "")...)
}

func TestPingAndDisco(t *testing.T) {
	s := startWithUsers(t)
	mustPython(t, "ping_disco", loginArgs(s, false, alice, alicePass, "")...)
}

func TestDirectTLS(t *testing.T) {
	s := startWithUsers(t)
	mustPython(t, "login", loginArgs(s, true, bob, bobPass, "SCRAM-SHA-256")...)
}

func TestVersionCommand(t *testing.T) {
	requireTools(t)
	out := ambrosia(t, "", "version")
	if strings.TrimSpace(out) == "" {
		t.Fatal("ambrosia version printed nothing")
	}
}

func TestUserCommands(t *testing.T) {
	requireTools(t, "slixmpp")
	s := startServer(t, ServerOptions{})
	addUser(t, s, alice, alicePass)
	ambrosia(t, "", "user", "add", "carol@localhost", "--password", "carol-pw-1", "--data", s.DataDir)
	list := strings.Fields(ambrosia(t, "", "user", "list", "--data", s.DataDir))
	if strings.Join(list, " ") != alice+" carol@localhost" && strings.Join(list, " ") != "carol@localhost "+alice {
		t.Fatalf("user list = %q, want alice and carol", list)
	}
	mustPython(t, "login", loginArgs(s, false, "carol@localhost", "carol-pw-1", "SCRAM-SHA-256")...)

	ambrosia(t, "carol-pw-2\n", "user", "passwd", "carol@localhost", "--data", s.DataDir)
	if code, out := runPython(t, "login", loginArgs(s, false, "carol@localhost", "carol-pw-1", "SCRAM-SHA-256")...); code != 3 {
		t.Errorf("old password after passwd: want exit code 3, got %d:\n%s", code, out)
	}
	mustPython(t, "login", loginArgs(s, false, "carol@localhost", "carol-pw-2", "SCRAM-SHA-256")...)

	ambrosia(t, "", "user", "del", "carol@localhost", "--data", s.DataDir)
	list = strings.Fields(ambrosia(t, "", "user", "list", "--data", s.DataDir))
	if strings.Join(list, " ") != alice {
		t.Errorf("user list after del = %q, want only %s", list, alice)
	}
	if code, out := runPython(t, "login", loginArgs(s, false, "carol@localhost", "carol-pw-2", "SCRAM-SHA-256")...); code != 3 {
		t.Errorf("login of a deleted user: want exit code 3, got %d:\n%s", code, out)
	}
}

func TestGoSendxmpp(t *testing.T) {
	requireTools(t, "slixmpp", "go-sendxmpp")
	s := startWithUsers(t)
	body := "sent by go-sendxmpp " + strconv.FormatInt(time.Now().UnixNano(), 36)
	recv := startPython(t, "receive", append(s.clientArgs(false),
		"--jid", bob, "--password", bobPass, "--body", body, "--expect-from", alice)...)
	recv.waitLine(t, "READY", 60*time.Second)

	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go-sendxmpp", "--debug",
		"-u", alice, "-p", alicePass, "-j", s.Addr, "--timeout", "20", bob)
	cmd.Stdin = strings.NewReader(body + "\n")
	// go-sendxmpp has no option for a CA file, but it is a Go program and
	// Go reads its roots from SSL_CERT_FILE/SSL_CERT_DIR, so the server's
	// certificate becomes its only root and verification stays on.
	emptyDir := filepath.Join(home, "no-certs")
	if err := os.Mkdir(emptyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "HOME="+home, "SSL_CERT_FILE="+s.CAFile, "SSL_CERT_DIR="+emptyDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go-sendxmpp: %v\n%s", err, out)
	}
	t.Logf("go-sendxmpp:\n%s", out)
	t.Logf("receive.py:\n%s", recv.wait(t))
}
