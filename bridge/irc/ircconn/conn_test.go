package ircconn

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge/irc/internal/fakeircd"
)

func dial(t *testing.T, cfg Config) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serve runs c.Serve, sending what it reads to the returned channel.
func serve(t *testing.T, c *Conn) (<-chan *Message, <-chan error) {
	ms := make(chan *Message, 1000)
	errc := make(chan error, 1)
	go func() { errc <- c.Serve(func(m *Message) { ms <- m }) }()
	return ms, errc
}

func next(t *testing.T, ms <-chan *Message, command string) *Message {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-ms:
			if m.Command == command {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s", command)
		}
	}
}

func TestRegistration(t *testing.T) {
	srv := fakeircd.Start(t, fakeircd.Options{})
	c := dial(t, Config{Addr: srv.Addr(), Nick: "alice", Realname: "Alice A", Caps: []string{"away-notify", "multi-prefix", "sasl"}})
	if c.Nick() != "alice" || c.Server() != "irc.test" {
		t.Fatalf("nick %q server %q", c.Nick(), c.Server())
	}
	if !c.HasCap("away-notify") || !c.HasCap("multi-prefix") || c.HasCap("sasl") {
		t.Fatalf("caps %v", c.caps)
	}
	if v, _ := c.Support().Get("NETWORK"); v != "Fake" {
		t.Fatalf("ISUPPORT %v", c.Support().Tokens)
	}
	if !c.IsChannel("#go") || c.IsChannel("bob") || c.Fold("ALICE") != "alice" {
		t.Fatal("IsChannel, Fold")
	}
	srv.Expect(t, `^\*: CAP LS 302$`)
	srv.Expect(t, `^alice: USER alice 0 \* :Alice A$`)
	srv.Expect(t, `^alice: CAP REQ :away-notify multi-prefix$`)
	// The notice after the welcome is kept for Serve.
	ms, _ := serve(t, c)
	if m := next(t, ms, "NOTICE"); m.Last() != "*** Welcome aboard" {
		t.Fatalf("notice %v", m)
	}
}

func TestNickFallback(t *testing.T) {
	srv := fakeircd.Start(t, fakeircd.Options{NickLen: 9})
	fakeircd.Dial(t, srv.Addr(), "alice")
	c := dial(t, Config{Addr: srv.Addr(), Nick: "alice"})
	if c.Nick() != "alice_" {
		t.Fatalf("nick %q", c.Nick())
	}
	// Too long for the server: cut to 9, then underscores within 9.
	fakeircd.Dial(t, srv.Addr(), "alexandra")
	c = dial(t, Config{Addr: srv.Addr(), Nick: "alexandra.long"})
	if c.Nick() != "alexandr_" {
		t.Fatalf("nick %q", c.Nick())
	}
	_, err := Dial(context.Background(), Config{Addr: srv.Addr(), Nick: "9lives"})
	if !errors.Is(err, ErrBadNick) {
		t.Fatalf("erroneous nick: %v", err)
	}
	for i := range maxNickTries {
		fakeircd.Dial(t, srv.Addr(), "bob"+strings.Repeat("_", i))
	}
	if _, err := Dial(context.Background(), Config{Addr: srv.Addr(), Nick: "bob"}); !errors.Is(err, ErrNickInUse) {
		t.Fatalf("every nick taken: %v", err)
	}
}

func TestPassword(t *testing.T) {
	srv := fakeircd.Start(t, fakeircd.Options{Password: "sesame", NoCAP: true})
	if _, err := Dial(context.Background(), Config{Addr: srv.Addr(), Nick: "alice", Password: "wrong"}); !errors.Is(err, ErrPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := Dial(context.Background(), Config{Addr: srv.Addr(), Nick: "alice", Password: "x\r\nQUIT"}); !errors.Is(err, ErrBadParam) {
		t.Fatalf("a line break in the password: %v", err)
	}
	c := dial(t, Config{Addr: srv.Addr(), Nick: "alice", Password: "sesame", Caps: []string{"away-notify"}})
	if c.HasCap("away-notify") {
		t.Fatal("a server without CAP enabled a capability")
	}
	srv.Expect(t, `^\*: PASS sesame$`)
}

func TestDialCancelled(t *testing.T) {
	// A server that accepts and says nothing.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, Config{Addr: l.Addr().String(), Nick: "alice"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent server: %v", err)
	}
}

func TestServe(t *testing.T) {
	srv := fakeircd.Start(t, fakeircd.Options{})
	c := dial(t, Config{Addr: srv.Addr(), Nick: "alice", Caps: []string{"message-tags", "server-time"}})
	ms, errc := serve(t, c)
	bob := fakeircd.Dial(t, srv.Addr(), "bob")
	bob.Send("JOIN #x")
	if err := c.Send(context.Background(), "JOIN", "#x"); err != nil {
		t.Fatal(err)
	}
	next(t, ms, "366")
	bob.Send("PRIVMSG alice :\x01ACTION waves\x01")
	m := next(t, ms, "PRIVMSG")
	if m.Nick() != "bob" || m.Tags["msgid"] == "" || m.Tags["time"] == "" {
		t.Fatalf("%v", m)
	}
	if cmd, arg, _ := CTCP(m.Last()); cmd != "ACTION" || arg != "waves" {
		t.Fatalf("%q", m.Last())
	}
	// The connection follows its own nick.
	ctx := context.Background()
	if err := c.Send(ctx, "NICK", "alicia"); err != nil {
		t.Fatal(err)
	}
	next(t, ms, "NICK")
	if c.Nick() != "alicia" {
		t.Fatalf("nick %q", c.Nick())
	}
	if err := c.Action(ctx, "bob", "smiles"); err != nil {
		t.Fatal(err)
	}
	bob.Expect(`^:alicia!alice@127.0.0.1 PRIVMSG bob :\x01ACTION smiles\x01$`)
	if err := c.Send(ctx, "PRIVMSG", "bad target", "x"); !errors.Is(err, ErrBadParam) {
		t.Fatalf("a space in a middle parameter: %v", err)
	}
	if err := c.Send(ctx, "PRIVMSG", "bob", "a\r\nQUIT"); !errors.Is(err, ErrBadParam) {
		t.Fatalf("a line break: %v", err)
	}
	if err := c.Quit(ctx, "see you"); err != nil {
		t.Fatal(err)
	}
	srv.Expect(t, `^alicia: QUIT :see you$`)
	bob.Expect(`:alicia!alice@127.0.0.1 QUIT :Quit: see you`)
	if err := <-errc; err != nil {
		t.Fatalf("Serve after Quit: %v", err)
	}
	if err := c.Serve(func(*Message) {}); err == nil {
		t.Fatal("Serve ran twice")
	}
}

func TestServeEnds(t *testing.T) {
	srv := fakeircd.Start(t, fakeircd.Options{})
	c := dial(t, Config{Addr: srv.Addr(), Nick: "alice"})
	_, errc := serve(t, c)
	srv.Drop("alice")
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("a dropped connection ended Serve without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not end")
	}
}

// TestKeepAlive: a server that stops answering is pinged, then left.
func TestKeepAlive(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 100)
	go func() {
		defer close(got)
		nc, err := l.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			got <- strings.TrimSpace(line)
			if strings.HasPrefix(line, "USER") {
				io.WriteString(nc, ":srv 001 alice :hi\r\n:srv 422 alice :no MOTD\r\n")
			}
		}
	}()
	c := dial(t, Config{Addr: l.Addr().String(), Nick: "alice", KeepAlive: 50 * time.Millisecond})
	_, errc := serve(t, c)
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "no answer") {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a silent server was not left")
	}
	pinged := false
	for line := range got {
		pinged = pinged || line == "PING keepalive"
	}
	if !pinged {
		t.Fatal("no PING before leaving")
	}
}

// TestSplitLines: a long message goes in several PRIVMSGs, each of which,
// as the server relays it with the sender's address, fits in 512 bytes.
func TestSplitLines(t *testing.T) {
	srv := fakeircd.Start(t, fakeircd.Options{})
	c := dial(t, Config{Addr: srv.Addr(), Nick: "alice"})
	serve(t, c)
	bob := fakeircd.Dial(t, srv.Addr(), "bob")
	words := strings.Repeat("lorem ipsum dolor sit amet ", 60)
	if err := c.Privmsg(context.Background(), "bob", words+"\nsecond line"); err != nil {
		t.Fatal(err)
	}
	var text []string
	for {
		line := bob.Expect(`PRIVMSG bob :`)
		if len(line)+2 > MaxLine {
			t.Fatalf("relayed line of %d bytes", len(line)+2)
		}
		_, piece, _ := strings.Cut(line, "PRIVMSG bob :")
		text = append(text, piece)
		if piece == "second line" {
			break
		}
	}
	if len(text) < 4 || strings.Join(strings.Fields(strings.Join(text[:len(text)-1], " ")), " ") != strings.TrimSpace(words) {
		t.Fatalf("%d pieces: %q", len(text), text)
	}
}

func TestFloodControl(t *testing.T) {
	b := bucket{rate: 100, burst: 3, tokens: 3, last: time.Now()}
	ctx := context.Background()
	start := time.Now()
	for range 3 {
		b.take(ctx)
	}
	if time.Since(start) > 20*time.Millisecond {
		t.Fatal("the burst waited")
	}
	for range 5 {
		b.take(ctx)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("5 lines past the burst at 100/s took %v", d)
	}
	// Takers waiting together are let through one after the other.
	b = bucket{rate: 50, burst: 1, tokens: 0, last: time.Now()}
	var wg sync.WaitGroup
	start = time.Now()
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); b.take(ctx) }()
	}
	wg.Wait()
	if d := time.Since(start); d < 70*time.Millisecond {
		t.Fatalf("4 lines at 50/s took %v", d)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	b = bucket{rate: 1, burst: 1, tokens: 0, last: time.Now()}
	if err := b.take(cctx); err == nil {
		t.Fatal("a cancelled wait succeeded")
	}
	if (&bucket{}).take(cctx) != nil {
		t.Fatal("no limit waits")
	}
}

func TestNickTry(t *testing.T) {
	for _, tc := range []struct {
		nick       string
		try, limit int
		want       string
	}{
		{"alice", 0, 0, "alice"},
		{"alice", 2, 0, "alice__"},
		{"alexandra.x", 1, 9, "alexandr_"},
		{"al ice!", 0, 0, "alice"},
		{"abc", 5, 4, "a_____"},
	} {
		if got := nickTry(tc.nick, tc.try, tc.limit); got != tc.want {
			t.Errorf("nickTry(%q, %d, %d) = %q, want %q", tc.nick, tc.try, tc.limit, got, tc.want)
		}
	}
	if userName("Al-ice_99xxxxxxx") != "alice99xxx" || userName("[]") != "irc" {
		t.Fatal("userName")
	}
}
