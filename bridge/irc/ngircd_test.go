package irc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/irc/internal/fakeircd"
)

// requireNgircd returns the path of Debian's ngircd; without it, the
// test is skipped, or fails under AMBROSIA_E2E=1.
func requireNgircd(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("a test with a real IRC server, skipped in -short mode")
	}
	path, err := exec.LookPath("ngircd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/ngircd"); serr == nil {
			path, err = "/usr/sbin/ngircd", nil
		}
	}
	if err != nil {
		msg := "ngircd is not installed (Debian: apt-get install ngircd)"
		if os.Getenv("AMBROSIA_E2E") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg + "; set AMBROSIA_E2E=1 to make this a failure")
	}
	return path
}

// lockedBuffer collects a program's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startNgircd runs ngircd on a free port of 127.0.0.1 until the test
// ends and returns its address.
func startNgircd(t *testing.T, password string) string {
	path := requireNgircd(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "ngircd.conf")
	pw := ""
	if password != "" {
		pw = "\tPassword = " + password + "\n"
	}
	err = os.WriteFile(conf, fmt.Appendf(nil, `[Global]
	Name = irc.test
	Info = Ambrosia IRC bridge test
	AdminInfo1 = test
	AdminInfo2 = test
	AdminEMail = test@localhost
	Listen = 127.0.0.1
	Ports = %d
	MotdPhrase = test
	PidFile = %s
%s[Limits]
	MaxConnectionsIP = 0
	MaxNickLength = 30
[Options]
	DNS = no
	Ident = no
	PAM = no
`, port, filepath.Join(dir, "ngircd.pid"), pw), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	cmd := exec.Command(path, "-n", "-f", conf)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("ngircd's output:\n%s", out.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-exited:
			t.Fatalf("ngircd exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ngircd does not listen on %s:\n%s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ngircdWait bounds every wait in the tests with ngircd, which handles
// three commands a second of each client and makes the others wait.
const ngircdWait = 30 * time.Second

func ctx30(t *testing.T) context.Context { return ctxFor(t, ngircdWait) }

// ngPeer is a raw client of ngircd.
func ngPeer(t *testing.T, addr, nick string) *fakeircd.Peer {
	p := fakeircd.Dial(t, addr, nick)
	p.Timeout = ngircdWait
	return p
}

// TestNgircd runs the bridge's sessions against Debian's ngircd: an XMPP
// user (alice) and plain IRC clients (bob, carol) in a channel and one
// to one.
func TestNgircd(t *testing.T) {
	addr := startNgircd(t, "")
	n := network(t, addr, "puppet", func(c *Config) { c.FloodRate, c.FloodBurst = 10, 20 })
	bob := ngPeer(t, addr, "bob")
	bob.Send("JOIN #test")
	bob.Expect(" 366 ")
	bob.Send("TOPIC #test :Testing the bridge")
	bob.Expect("TOPIC #test")

	s, rec := login(t, n, "alice@example.org", nil)
	rec.timeout = ngircdWait
	if s.c.Nick() != "alice" || !s.c.HasCap("multi-prefix") {
		t.Fatalf("nick %q, multi-prefix %v", s.c.Nick(), s.c.HasCap("multi-prefix"))
	}
	if err := s.JoinRoom(ctx30(t), "#test", "alice", ""); err != nil {
		t.Fatal(err)
	}
	e := rec.expect("RoomJoined", nil)
	if e.info.Subject != "Testing the bridge" || len(e.info.Participants) != 2 {
		t.Fatalf("%+v", e.info)
	}
	if p, _ := participant(e.info, "bob"); p.ID != "bob" || p.Role != bridge.RoleModerator {
		t.Fatalf("bob %+v", p)
	}

	// Channel messages both ways, an emote each way.
	bob.Send("PRIVMSG #test :hello alice")
	if e := rec.expect("RoomMessage", nil); e.from != "bob" || e.msg.Body != "hello alice" {
		t.Fatalf("%v", e)
	}
	if _, err := s.SendRoomMessage(ctx30(t), "#test", bridge.Message{Body: "hello bob"}); err != nil {
		t.Fatal(err)
	}
	bob.Expect(`^:alice!~?alice@127.0.0.1 PRIVMSG #test :hello bob$`)
	bob.Send("PRIVMSG #test :\x01ACTION waves\x01")
	if e := rec.expect("RoomMessage", nil); e.msg.Body != "waves" || !e.msg.Action {
		t.Fatalf("%v", e)
	}
	if _, err := s.SendRoomMessage(ctx30(t), "#test", bridge.Message{Body: "waves back", Action: true}); err != nil {
		t.Fatal(err)
	}
	bob.Expect("PRIVMSG #test :\x01ACTION waves back\x01")

	// One to one, and errors.
	bob.Send("PRIVMSG alice :psst")
	if e := rec.expect("Message", func(e event) bool { return e.from == "bob" }); e.msg.Body != "psst" {
		t.Fatalf("%v", e)
	}
	if _, err := s.SendMessage(ctx30(t), "bob", bridge.Message{Body: "yes?"}); err != nil {
		t.Fatal(err)
	}
	bob.Expect(`PRIVMSG bob :yes\?$`)
	if _, err := s.SendMessage(ctx30(t), "nobody", bridge.Message{Body: "x"}); !errors.Is(err, bridge.ErrNoSuchUser) {
		t.Fatalf("to nobody: %v", err)
	}
	if _, err := s.SendRoomMessage(ctx30(t), "#elsewhere", bridge.Message{Body: "x"}); !errors.Is(err, bridge.ErrNoSuchUser) && !errors.Is(err, bridge.ErrNotAllowed) {
		t.Fatalf("to a channel not joined: %v", err)
	}

	// Away both ways.
	if err := s.SetPresence(ctx30(t), bridge.Presence{Show: bridge.XA, Status: "asleep"}); err != nil {
		t.Fatal(err)
	}
	bob.Send("PRIVMSG alice :awake?")
	bob.Expect(` 301 bob alice :asleep$`)
	bob.Send("AWAY :out")
	bob.Expect(" 306 ")
	s.SendMessage(ctx30(t), "bob", bridge.Message{Body: "and you?"})
	if e := rec.expect("Presence", nil); e.from != "bob" || e.pres.Show != bridge.Away || e.pres.Status != "out" {
		t.Fatalf("%v", e)
	}

	// Others come, change nicks, get voice and operator status.
	carol := ngPeer(t, addr, "carol")
	carol.Send("JOIN #test")
	rec.expect("RoomPresence", func(e event) bool { return e.part.ID == "carol" })
	carol.Send("NICK caroline")
	rec.expect("RoomNick", func(e event) bool { return e.from == "carol" && e.text == "caroline" })
	carol.Send("PRIVMSG #test :renamed")
	rec.expect("RoomMessage", func(e event) bool { return e.from == "carol" && e.msg.Body == "renamed" })
	bob.Send("MODE #test +o caroline")
	if e := rec.expect("RoomPresence", func(e event) bool { return e.part.ID == "carol" }); e.part.Role != bridge.RoleModerator || e.part.Nick != "caroline" {
		t.Fatalf("%v", e)
	}

	// Topic and kicks, refused then allowed.
	bob.Send("MODE #test +t")
	bob.Expect(`MODE #test \+t`)
	if err := s.SetRoomSubject(ctx30(t), "#test", "mine"); !errors.Is(err, bridge.ErrNotAllowed) {
		t.Fatalf("topic without being an operator: %v", err)
	}
	if err := s.Kick(ctx30(t), "#test", "carol", "no"); !errors.Is(err, bridge.ErrNotAllowed) {
		t.Fatalf("kick without being an operator: %v", err)
	}
	bob.Send("MODE #test +o alice")
	bob.Expect(`MODE #test \+o alice`)
	// The user's own standing is told too.
	rec.expect("RoomPresence", func(e event) bool { return e.part.ID == selfID && e.part.Role == bridge.RoleModerator })
	if err := s.SetRoomSubject(ctx30(t), "#test", "Alice's topic"); err != nil {
		t.Fatal(err)
	}
	rec.expect("RoomSubject", func(e event) bool { return e.by == selfID && e.text == "Alice's topic" })
	bob.Expect("TOPIC #test :Alice's topic")
	if err := s.Kick(ctx30(t), "#test", "carol", "enough"); err != nil {
		t.Fatal(err)
	}
	rec.expect("RoomLeft", func(e event) bool { return e.from == "carol" && e.by == selfID && e.text == "enough" })

	// The user's own nick, then bob kicks the user.
	if err := s.SetRoomNick(ctx30(t), "#test", "bob"); !errors.Is(err, bridge.ErrConflict) {
		t.Fatalf("a nick in use: %v", err)
	}
	if err := s.SetRoomNick(ctx30(t), "#test", "alicia"); err != nil {
		t.Fatal(err)
	}
	rec.expect("RoomNick", func(e event) bool { return e.from == selfID && e.text == "alicia" })
	bob.Send("KICK #test alicia :bye")
	rec.expect("RoomLeft", func(e event) bool { return e.from == selfID && e.by == "bob" && e.text == "bye" })

	// Refused joins: a key, then a ban.
	bob.Send("JOIN #locked")
	bob.Expect("366 bob #locked")
	bob.Send("MODE #locked +k sesame")
	bob.Expect(`MODE #locked \+k`)
	s.JoinRoom(ctx30(t), "#locked", "alicia", "wrong")
	if e := rec.expect("RoomJoinFailed", nil); !errors.Is(e.err, bridge.ErrBadCredentials) {
		t.Fatalf("%v", e)
	}
	s.JoinRoom(ctx30(t), "#locked", "alicia", "sesame")
	rec.expect("RoomJoined", func(e event) bool { return e.room == "#locked" })
	bob.Send("MODE #test +b alicia!*@*")
	bob.Expect(`MODE #test \+b`)
	s.JoinRoom(ctx30(t), "#test", "alicia", "")
	if e := rec.expect("RoomJoinFailed", nil); !errors.Is(e.err, bridge.ErrNotAllowed) {
		t.Fatalf("%v", e)
	}

	// A long message arrives whole, in several lines.
	long := ""
	for i := range 120 {
		long += fmt.Sprintf("w%03d ", i)
	}
	if _, err := s.SendMessage(ctx30(t), "bob", bridge.Message{Body: long}); err != nil {
		t.Fatal(err)
	}
	bob.Expect(`PRIVMSG bob :w000 `)
	bob.Expect(`PRIVMSG bob :.*w119$`)

	bob.Send("QUIT :done")
	rec.expect("RoomLeft", func(e event) bool { return e.room == "#locked" && e.from == "bob" })
	if err := s.Logout(ctx30(t)); err != nil {
		t.Fatal(err)
	}
	rec.none("Disconnected")
}

// TestNgircdPasswords: ngircd refuses a wrong server password, which a
// transport registration reports as bad credentials.
func TestNgircdPasswords(t *testing.T) {
	addr := startNgircd(t, "letmein")
	n := network(t, addr, "transport", nil)
	if _, err := n.Login(ctx30(t), bridge.Account{JID: "alice@example.org", Credentials: map[string]string{"nick": "alice", "password": "nope"}}, newRecorder(t)); !errors.Is(err, bridge.ErrBadCredentials) {
		t.Fatalf("a wrong password: %v", err)
	}
	s, _ := login(t, n, "alice@example.org", map[string]string{"nick": "alice", "password": "letmein"})
	// Taken: the second gets another nick.
	s2, _ := login(t, n, "alice@example.com", map[string]string{"nick": "alice", "password": "letmein"})
	if s.c.Nick() != "alice" || s2.c.Nick() != "alice_" {
		t.Fatalf("nicks %q %q", s.c.Nick(), s2.c.Nick())
	}
}
