package bot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// counter counts the bodies the bot's message handler sees.
type counter struct {
	mu     sync.Mutex
	bodies map[string]int
}

func (c *counter) handler(_ context.Context, m *Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bodies == nil {
		c.bodies = make(map[string]int)
	}
	c.bodies[m.Body]++
}

// all waits until every body was seen, and fails if one was seen twice.
func (c *counter) all(t *testing.T, bodies []string) {
	t.Helper()
	xmpptest.CheckFor(t, 15*time.Second, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, b := range bodies {
			if c.bodies[b] == 0 {
				return fmt.Errorf("%q not received", b)
			}
		}
		return nil
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	for b, n := range c.bodies {
		if n != 1 {
			t.Errorf("the handler saw %q %d times", b, n)
		}
	}
}

func bodies(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, prefix+strconv.Itoa(i))
	}
	return out
}

// receiveAll reads what alice receives until every body arrived from the
// bot, and fails if one arrived twice.
func receiveAll(t *testing.T, alice *xmpptest.Client, want []string) {
	t.Helper()
	got := map[string]int{}
	missing := func() bool {
		for _, b := range want {
			if got[b] == 0 {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(15 * time.Second)
	for missing() {
		ev, err := alice.Next(time.Until(deadline))
		if err != nil {
			t.Fatalf("alice got %v, waiting for %v: %v", got, want, err)
		}
		if ev.Kind == xmlstream.EventElement && ev.Elem.Local == "message" && strings.HasPrefix(ev.Elem.Attr("from"), botJID) {
			if body := ev.Elem.Child(nsClient, "body"); body != nil {
				got[body.Text()]++
			}
		}
	}
	// Anything sent twice would have followed closely: the bot sends
	// everything again at once after a resumption.
	alice.Send("<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>")
	for {
		el := alice.Element()
		if el.Attr("id") == "sync" {
			break
		}
		if el.Local == "message" {
			if body := el.Child(nsClient, "body"); body != nil {
				got[body.Text()]++
			}
		}
	}
	for b, n := range got {
		if n != 1 {
			t.Errorf("alice received %q %d times", b, n)
		}
	}
}

// holdDialer makes dials fail while held, so that a test can act while
// the bot is disconnected.
func holdDialer(d *dialer) (hold, release func()) {
	var mu sync.Mutex
	held := false
	d.fail = func(int) error {
		mu.Lock()
		defer mu.Unlock()
		if held {
			return errors.New("held by the test")
		}
		return nil
	}
	return func() { mu.Lock(); held = true; mu.Unlock() }, func() { mu.Lock(); held = false; mu.Unlock() }
}

// TestResumeExactlyOnce breaks the bot's connection while messages flow
// both ways, and checks that each arrives exactly once after the session
// is resumed: those the bot wrote into a dead connection are sent again,
// and those it received but could not acknowledge are not delivered
// again.
func TestResumeExactlyOnce(t *testing.T) {
	s := startServer(t, nil)
	d := &dialer{}
	hold, release := holdDialer(d)
	cnt := &counter{}
	b := start(t, testConfig(s, d), func(b *Bot) { b.OnMessage(cnt.handler) })
	first := waitSession(t, b.Bot, "", nil)
	alice := user(t, s)
	ctx := context.Background()
	toBot := func(to string, ms []string) {
		for _, m := range ms {
			alice.Send("<message to='" + to + "' type='chat'><body>" + m + "</body></message>")
		}
	}
	fromBot := func(ms []string) {
		for _, m := range ms {
			if err := b.Send(ctx, "alice@localhost/phone", m); err != nil {
				t.Fatal(err)
			}
		}
	}

	toBot(botJID, bodies("in", 1, 10))
	cnt.all(t, bodies("in", 1, 10))
	// The network dies in one direction: what the bot writes is lost,
	// its acknowledgements too, while it still receives.
	d.blackhole()
	fromBot(bodies("out", 1, 10))
	toBot(first.JID, bodies("in", 11, 20))
	cnt.all(t, bodies("in", 1, 20))
	// Then the connection drops; both sides go on sending.
	hold()
	d.cut()
	xmpptest.CheckFor(t, 10*time.Second, func() error {
		if _, ok := b.Session(); ok {
			return errors.New("still connected")
		}
		return nil
	})
	toBot(first.JID, bodies("in", 21, 30))
	fromBot(bodies("out", 11, 20))
	release()
	second := waitSession(t, b.Bot, "resumed", func(s Session) bool { return s.Resumed })
	if second.JID != first.JID {
		t.Errorf("resumed as %s, want %s", second.JID, first.JID)
	}
	cnt.all(t, bodies("in", 1, 30))
	receiveAll(t, alice, bodies("out", 1, 20))
	if strings.Contains(b.log.String(), "delivered again") {
		t.Error("the server delivered messages again: the bot's count was wrong")
	}
}

// TestResumptionFails lets the server forget the bot's session before
// the bot comes back: the bot binds a new session, sends what the server
// never acknowledged, and receives what was sent to it meanwhile (stored
// offline by the server) once.
func TestResumptionFails(t *testing.T) {
	s := startServer(t, func(c *c2s.Config) { c.ResumeTimeout = 100 * time.Millisecond })
	d := &dialer{}
	hold, release := holdDialer(d)
	cnt := &counter{}
	var logins atomic.Int32
	b := start(t, testConfig(s, d), func(b *Bot) {
		b.OnMessage(cnt.handler)
		b.OnSession(func(context.Context, Session) { logins.Add(1) })
	})
	first := waitSession(t, b.Bot, "", nil)
	if !first.StreamManagement {
		t.Fatalf("session without Stream Management: %+v", first)
	}
	alice := user(t, s)
	for _, m := range bodies("in", 1, 5) {
		alice.Send("<message to='" + botJID + "' type='chat'><body>" + m + "</body></message>")
	}
	cnt.all(t, bodies("in", 1, 5))
	hold()
	d.cut()
	ctx := context.Background()
	for _, m := range bodies("out", 1, 5) {
		if err := b.Send(ctx, "alice@localhost/phone", m); err != nil {
			t.Fatal(err)
		}
	}
	// Once the server has dropped the session, messages to the bot's
	// bare JID are stored offline.
	// (A ping to the detached session waits there and is dropped with
	// it, so each probe waits only a little for its answer.)
	probe := 0
	xmpptest.CheckFor(t, 10*time.Second, func() error {
		probe++
		id := "probe" + strconv.Itoa(probe)
		alice.Send("<iq type='get' id='" + id + "' to='" + first.JID + "'><ping xmlns='urn:xmpp:ping'/></iq>")
		deadline := time.Now().Add(200 * time.Millisecond)
		for {
			ev, err := alice.Next(time.Until(deadline))
			if err != nil {
				return errors.New("the session is still there")
			}
			if ev.Kind == xmlstream.EventElement && ev.Elem.Attr("id") == id {
				if ev.Elem.Attr("type") != "error" {
					return errors.New("the session is still there")
				}
				return nil
			}
		}
	})
	for _, m := range bodies("in", 6, 10) {
		alice.Send("<message to='" + botJID + "' type='chat'><body>" + m + "</body></message>")
	}
	release()
	second := waitSession(t, b.Bot, "new", func(Session) bool { return logins.Load() == 2 })
	if second.Resumed {
		t.Errorf("resumed a session the server dropped: %+v", second)
	}
	cnt.all(t, bodies("in", 1, 10))
	receiveAll(t, alice, bodies("out", 1, 5))
}

// hideFeature hides part of the stream features from the bot, as a
// server without it would: it removes what feature matches from what the
// server sends on a plaintext stream.
type hideFeature struct {
	net.Conn
	feature *regexp.Regexp
	in, out []byte
}

func (c *hideFeature) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		buf := make([]byte, 4096)
		n, err := c.Conn.Read(buf)
		c.in = append(c.in, buf[:n]...)
		if i := bytes.Index(c.in, []byte("<stream:features")); i >= 0 && !bytes.Contains(c.in[i:], []byte("</stream:features>")) && err == nil {
			continue
		}
		c.out = c.feature.ReplaceAll(c.in, nil)
		c.in = nil
		if err != nil && len(c.out) == 0 {
			return 0, err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// TestLegacyLogin logs in to servers that offer less: without SASL2
// (ejabberd 23.01 and Prosody 0.12 have none), RFC 6120 SASL, resource
// binding, and Stream Management enabled after binding; with SASL2 but
// without Bind 2, SASL2 then RFC 6120 binding on the same stream. Either
// way the session is resumed after the connection is cut, and JSON
// answered.
func TestLegacyLogin(t *testing.T) {
	for _, tc := range []struct {
		name    string
		feature string
		check   func(s Session) bool
	}{
		{"no SASL2", `<authentication xmlns='urn:xmpp:sasl:2'>.*?</authentication>`, func(s Session) bool {
			return !s.SASL2 && !s.Offered.SASL2 && !s.Bind2 && !s.FAST && s.Mechanism == "SCRAM-SHA-512"
		}},
		{"no Bind 2", `<bind xmlns='urn:xmpp:bind:0'>.*?</bind>`, func(s Session) bool {
			return s.SASL2 && !s.Offered.Bind2 && !s.Bind2 && s.Mechanism == "SCRAM-SHA-512"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, func(c *c2s.Config) { c.AllowPlain = true })
			d := &dialer{}
			cfg := testConfig(s, d)
			cfg.Plaintext = true
			feature := regexp.MustCompile(tc.feature)
			cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := d.dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &hideFeature{Conn: c, feature: feature}, nil
			}
			b := start(t, cfg, adder)
			first := waitSession(t, b.Bot, "", nil)
			if !tc.check(first) || !first.StreamManagement || first.TLS != "" || first.JID != botJID+"/bot" {
				t.Errorf("login: %+v", first)
			}
			d.cut()
			second := waitSession(t, b.Bot, "resumed", func(s Session) bool { return s.Resumed })
			if second.JID != first.JID {
				t.Errorf("after the cut: %+v, want %s resumed", second, first.JID)
			}
			alice := user(t, s)
			alice.Send(`<message to='` + botJID + `/bot' type='chat' id='m1'><json xmlns='urn:xmpp:json:0'>{"op":"add","a":2,"b":2}</json></message>`)
			m := expectMessage(t, alice, "the JSON answer", func(el *xmlstream.Element) bool { return el.Child(nsJSON, "json") != nil })
			if got := m.Child(nsJSON, "json").Text(); got != `{"result":4}` {
				t.Errorf("answer %s, want {\"result\":4}", got)
			}
		})
	}
}

// TestWrongPassword: a refused password ends Run with an *AuthError at
// once, without trying again.
func TestWrongPassword(t *testing.T) {
	s := startServer(t, nil)
	d := &dialer{}
	cfg := testConfig(s, d)
	cfg.Password = "not the password"
	bt, err := New(cfg, xmpptest.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = bt.Run(ctx)
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Condition != "not-authorized" {
		t.Fatalf("Run with a wrong password returned %v, want an *AuthError not-authorized", err)
	}
	if n := d.count(); n != 1 {
		t.Errorf("dialed %d times, want 1", n)
	}
	if err := bt.Send(ctx, "alice@localhost", "hello"); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Run returned %v, want ErrClosed", err)
	}
}

// TestStaleToken: a FAST token the server does not know is refused; the
// bot logs in with its password on the same connection and keeps the
// new token it gets.
func TestStaleToken(t *testing.T) {
	s := startServer(t, nil)
	d := &dialer{}
	tokens := &MemoryTokens{}
	cfg := testConfig(s, d)
	cfg.Tokens = tokens
	bt, err := New(cfg, xmpptest.Discard())
	if err != nil {
		t.Fatal(err)
	}
	stale := &Token{Mechanism: "HT-SHA-256-EXPR", Secret: "forgotten", Expiry: time.Now().Add(time.Hour)}
	if err := tokens.StoreToken(context.Background(), bt.tokenKey(), stale); err != nil {
		t.Fatal(err)
	}
	b := start(t, cfg, nil)
	sess := waitSession(t, b.Bot, "", nil)
	if sess.FAST || !strings.HasPrefix(sess.Mechanism, "SCRAM-") {
		t.Errorf("logged in with %s (FAST %v), want the password after the token was refused", sess.Mechanism, sess.FAST)
	}
	if n := d.count(); n != 1 {
		t.Errorf("dialed %d times, want 1: the password login goes on the same stream", n)
	}
	tok, _ := tokens.LoadToken(context.Background(), b.tokenKey())
	if tok == nil || tok.Secret == "forgotten" {
		t.Errorf("token after the login: %+v, want a new one", tok)
	}
	if !strings.Contains(b.log.String(), "FAST token refused") {
		t.Error("the refused token is not logged")
	}
}

// TestBusyHandlers: with every handler busy and its queue full, the bot
// refuses more messages with resource-constraint instead of waiting,
// and goes on reading: its own requests are answered meanwhile.
func TestBusyHandlers(t *testing.T) {
	s := startServer(t, nil)
	cfg := testConfig(s, &dialer{})
	cfg.Workers, cfg.QueueLength = 1, 1
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	b := start(t, cfg, func(b *Bot) {
		b.OnMessage(func(ctx context.Context, m *Message) {
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
		})
	})
	defer close(release)
	sess := waitSession(t, b.Bot, "", nil)
	alice := user(t, s)
	alice.Send("<message to='" + sess.JID + "' type='chat' id='m1'><body>1</body></message>")
	<-started
	for i := 2; i <= 4; i++ {
		alice.Send("<message to='" + sess.JID + "' type='chat' id='m" + strconv.Itoa(i) + "'><body>" + strconv.Itoa(i) + "</body></message>")
	}
	// m2 waits in the queue; m3 and m4 are refused.
	var refused []string
	for len(refused) < 2 {
		el := expectMessage(t, alice, "a refusal", func(el *xmlstream.Element) bool { return el.Attr("type") == "error" })
		if parseError(el).Condition != "resource-constraint" {
			t.Errorf("refused with %s", el)
		}
		refused = append(refused, el.Attr("id"))
	}
	slices.Sort(refused)
	if !slices.Equal(refused, []string{"m3", "m4"}) {
		t.Errorf("refused %v, want m3 and m4", refused)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Roster(ctx); err != nil {
		t.Errorf("roster while the handlers are busy: %v", err)
	}
}

// TestStopGrace: when Run's context ends, a handler that is still
// running may finish, and its reply is sent before the stream closes.
func TestStopGrace(t *testing.T) {
	s := startServer(t, nil)
	cfg := testConfig(s, &dialer{})
	cfg.StopGrace = 10 * time.Second
	release := make(chan struct{})
	started := make(chan struct{})
	b := start(t, cfg, func(b *Bot) {
		b.OnMessage(func(ctx context.Context, m *Message) {
			close(started)
			<-release
			if err := b.Send(ctx, m.From, "done: "+m.Body); err != nil {
				t.Errorf("reply during the grace period: %v", err)
			}
		})
	})
	sess := waitSession(t, b.Bot, "", nil)
	alice := user(t, s)
	alice.Send("<message to='" + sess.JID + "' type='chat'><body>work</body></message>")
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- b.stop() }()
	// The bot must not close the stream while the handler runs.
	alice.Send("<iq type='get' id='p1' to='" + sess.JID + "'><ping xmlns='urn:xmpp:ping'/></iq>")
	close(release)
	expectMessage(t, alice, "the reply", func(el *xmlstream.Element) bool {
		body := el.Child(nsClient, "body")
		return body != nil && body.Text() == "done: work"
	})
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, ok := b.Session(); ok {
		t.Error("still connected after Run returned")
	}
}

// TestRunLeavesNothingRunning: once Run has returned, none of the
// goroutines it started is left, and the server saw the stream closed.
func TestRunLeavesNothingRunning(t *testing.T) {
	s := startServer(t, nil)
	before := runtime.NumGoroutine()
	b := start(t, testConfig(s, &dialer{}), adder)
	waitSession(t, b.Bot, "", nil)
	if err := b.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	xmpptest.CheckFor(t, 10*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before the bot started", n, before)
		}
		if n := s.Edge.ConnCount(); n != 0 {
			return fmt.Errorf("the server still has %d connections", n)
		}
		return nil
	})
}
