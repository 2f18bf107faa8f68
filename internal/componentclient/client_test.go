package componentclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/component"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

const waitFor = 10 * time.Second

// recorder is a component that keeps what it is given.
type recorder struct {
	mu  sync.Mutex
	got []router.Stanza
}

func (r *recorder) HandleStanza(_ context.Context, s router.Stanza) {
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
}

func (r *recorder) all() []router.Stanza {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// wait waits until the recorder holds at least n stanzas and returns them.
func (r *recorder) wait(t *testing.T, n int) []router.Stanza {
	t.Helper()
	xmpptest.CheckFor(t, waitFor, func() error {
		if got := len(r.all()); got < n {
			return fmt.Errorf("%d stanzas, want %d", got, n)
		}
		return nil
	})
	return r.all()
}

// ids lists the 'id' of each stanza.
func ids(ss []router.Stanza) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.El.Attr("id")
	}
	return out
}

func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []string // "LEVEL msg k=v k=v"
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logWith{h: h, attrs: as}
}
func (h *logRecorder) WithGroup(string) slog.Handler { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	return h.add(r, nil)
}

func (h *logRecorder) add(r slog.Record, pre []slog.Attr) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range pre {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, b.String())
	h.mu.Unlock()
	return nil
}

// count returns how many records contain every one of parts.
func (h *logRecorder) count(parts ...string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(r, p)
		}
		if ok {
			n++
		}
	}
	return n
}

type logWith struct {
	h     *logRecorder
	attrs []slog.Attr
}

func (w *logWith) Enabled(context.Context, slog.Level) bool { return true }
func (w *logWith) WithAttrs(as []slog.Attr) slog.Handler {
	return &logWith{h: w.h, attrs: append(slices.Clone(w.attrs), as...)}
}
func (w *logWith) WithGroup(string) slog.Handler { return w }
func (w *logWith) Handle(_ context.Context, r slog.Record) error {
	return w.h.add(r, w.attrs)
}

// server is Ambrosia's component listener with a router whose users are
// a recorder at localhost.
type server struct {
	router *router.Router
	users  *recorder
	srv    *component.Server
	addr   string
}

func startServer(t *testing.T) *server {
	t.Helper()
	s := &server{router: router.New(xmpptest.Discard()), users: &recorder{}}
	if err := s.router.Register("localhost", s.users); err != nil {
		t.Fatal(err)
	}
	s.listen(t, "127.0.0.1:0")
	return s
}

// listen starts the component listener on addr, stopped when the test
// ends.
func (s *server) listen(t *testing.T, addr string) {
	t.Helper()
	cfg := component.DefaultConfig()
	cfg.Components = []component.External{{Domain: testDomain, Secret: testSecret}}
	srv, err := component.New(cfg, component.Deps{Router: s.router, Log: xmpptest.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go srv.Serve(ctx, l)
	t.Cleanup(func() {
		cancel()
		srv.Shutdown()
	})
	s.srv, s.addr = srv, l.Addr().String()
}

// bridge is the program side: a private router with the component's
// logic (a recorder) at echo.localhost and the client as its fallback.
type bridge struct {
	router *router.Router
	bot    *recorder
	client *Client
	log    *logRecorder
	cancel context.CancelFunc
	done   chan error
}

func startBridge(t *testing.T, addr string, adjust func(*Config)) *bridge {
	t.Helper()
	b := newBridge(t, addr, adjust)
	b.run(t)
	return b
}

func newBridge(t *testing.T, addr string, adjust func(*Config)) *bridge {
	t.Helper()
	b := &bridge{bot: &recorder{}, log: &logRecorder{}}
	b.router = router.New(xmpptest.Discard())
	if err := b.router.Register(testDomain, b.bot); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Addr, cfg.Domain, cfg.Secret = addr, testDomain, testSecret
	cfg.ReconnectMin, cfg.ReconnectMax = 10*time.Millisecond, 50*time.Millisecond
	if adjust != nil {
		adjust(&cfg)
	}
	c, err := New(cfg, Deps{Router: b.router, Log: slog.New(b.log)})
	if err != nil {
		t.Fatal(err)
	}
	b.client = c
	b.router.SetFallback(c.Forwarder())
	return b
}

// run starts Run, stopped when the test ends.
func (b *bridge) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.done = cancel, make(chan error, 1)
	go func() { b.done <- b.client.Run(ctx) }()
	t.Cleanup(func() {
		if err := b.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// stop cancels Run and returns its result; it may be called more than
// once.
func (b *bridge) stop() error {
	b.cancel()
	select {
	case err, ok := <-b.done:
		if ok {
			close(b.done)
		}
		return err
	case <-time.After(waitFor):
		return errors.New("Run did not return")
	}
}

func (b *bridge) waitConnected(t *testing.T) {
	t.Helper()
	xmpptest.CheckFor(t, waitFor, func() error {
		if !b.client.Connected() {
			return fmt.Errorf("not connected: %v", b.client.LastError())
		}
		return nil
	})
}

func message(from, to, id string) router.Stanza {
	el := xmlstream.NewElement(xmlstream.NSClient, "message")
	el.SetAttr("from", from)
	el.SetAttr("to", to)
	el.SetAttr("id", id)
	el.SetAttr("type", "chat")
	el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body")).AddText("body of " + id + " <&>")
	return router.Stanza{El: el, From: jid.MustParse(from), To: jid.MustParse(to)}
}

// fromUser sends a message from alice, a user of the server, to the
// component.
func (s *server) fromUser(to, id string) {
	s.router.Route(context.Background(), message("alice@localhost/res", to, id))
}

// toUser sends a message from the bridge to alice.
func (b *bridge) toUser(id string) {
	b.router.Route(context.Background(), message("bot@"+testDomain+"/x", "alice@localhost", id))
}

func TestConnect(t *testing.T) {
	s := startServer(t)
	b := startBridge(t, s.addr, nil)
	b.waitConnected(t)
	if got := s.srv.Connected(); len(got) != 1 || got[0] != testDomain {
		t.Fatalf("server lists %v", got)
	}
	if err := b.client.LastError(); err != nil {
		t.Fatalf("LastError %v while connected", err)
	}
	if n := b.log.count("INFO component connected"); n != 1 {
		t.Fatalf("%d connected logs", n)
	}
}

func TestRefused(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct {
		name, domain, secret, cond string
	}{
		{"wrong secret", testDomain, "not-" + testSecret, "not-authorized"},
		{"unknown domain", "nobody.localhost", testSecret, "host-unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("stop", func(t *testing.T) {
				b := newBridge(t, s.addr, func(c *Config) {
					c.Domain, c.Secret, c.StopWhenRefused = tc.domain, tc.secret, true
				})
				err := b.client.Run(context.Background())
				var se *StreamError
				if !errors.As(err, &se) || se.Condition != tc.cond || !se.Handshake {
					t.Fatalf("Run returned %v, want a refused handshake with %s", err, tc.cond)
				}
				if !strings.Contains(err.Error(), tc.cond) {
					t.Fatalf("the error %q does not name %s", err, tc.cond)
				}
			})
			t.Run("retry", func(t *testing.T) {
				b := newBridge(t, s.addr, func(c *Config) { c.Domain, c.Secret = tc.domain, tc.secret })
				b.run(t)
				// It keeps trying, and says why each time, at error level.
				xmpptest.CheckFor(t, waitFor, func() error {
					if n := b.log.count("ERROR server refused the component", "condition="+tc.cond); n < 3 {
						return fmt.Errorf("%d refusals logged", n)
					}
					return nil
				})
				var se *StreamError
				if err := b.client.LastError(); !errors.As(err, &se) || se.Condition != tc.cond {
					t.Fatalf("LastError %v", err)
				}
				if b.client.Connected() {
					t.Fatal("connected")
				}
				if err := b.stop(); err != nil {
					t.Fatalf("Run returned %v after cancel", err)
				}
			})
		})
	}
}

func TestStanzasBothWays(t *testing.T) {
	s := startServer(t)
	b := startBridge(t, s.addr, nil)
	b.waitConnected(t)
	const n = 300
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			s.fromUser("bot@"+testDomain, fmt.Sprint("in", i))
		}
	})
	wg.Go(func() {
		for i := range n {
			b.toUser(fmt.Sprint("out", i))
		}
	})
	wg.Wait()
	in := b.bot.wait(t, n)
	if got := ids(in); !slices.Equal(got, seq("in", 0, n)) {
		t.Fatalf("the bridge got %v", got)
	}
	out := s.users.wait(t, n)
	if got := ids(out); !slices.Equal(got, seq("out", 0, n)) {
		t.Fatalf("the server's users got %v", got)
	}
	// Addresses parsed, payload intact.
	m := in[0]
	if m.From.String() != "alice@localhost/res" || m.To.String() != "bot@"+testDomain ||
		m.El.Child(xmlstream.NSComponent, "body").Text() != "body of in0 <&>" {
		t.Fatalf("the bridge got %s from %s to %s", m.El, m.From, m.To)
	}
	o := out[0]
	if o.From.String() != "bot@"+testDomain+"/x" || o.To.String() != "alice@localhost" ||
		o.El.Child(xmlstream.NSComponent, "body").Text() != "body of out0 <&>" {
		t.Fatalf("the server got %s from %s to %s", o.El, o.From, o.To)
	}

	// An IQ to the domain itself, answered by the bridge.
	iq := xmlstream.NewElement(xmlstream.NSClient, "iq")
	iq.SetAttr("type", "get")
	iq.SetAttr("id", "v1")
	iq.SetAttr("from", "alice@localhost/res")
	iq.SetAttr("to", testDomain)
	iq.AddChild(xmlstream.NewElement(stanza.NSVersion, "query"))
	s.router.Route(context.Background(), router.Stanza{El: iq, From: jid.MustParse("alice@localhost/res"), To: jid.MustParse(testDomain)})
	got := b.bot.wait(t, n+1)[n]
	if got.El.Local != "iq" || got.To.String() != testDomain || got.El.Child(stanza.NSVersion, "query") == nil {
		t.Fatalf("the bridge got %s", got.El)
	}
	b.router.Route(context.Background(), router.Stanza{El: stanza.Result(got.El), From: got.To, To: got.From})
	r := s.users.wait(t, n+1)[n]
	if r.El.Attr("type") != "result" || r.El.Attr("id") != "v1" || r.From.String() != testDomain {
		t.Fatalf("the server got %s", r.El)
	}
}

// TestReconnect stops the server while the bridge is connected: the
// bridge queues what it sends meanwhile and, once the server is back on
// the same address, reconnects and delivers it once, in order.
func TestReconnect(t *testing.T) {
	s := startServer(t)
	b := startBridge(t, s.addr, nil)
	b.waitConnected(t)
	b.toUser("before")
	s.users.wait(t, 1)

	s.srv.Shutdown()
	xmpptest.CheckFor(t, waitFor, func() error {
		var se *StreamError
		if err := b.client.LastError(); !errors.As(err, &se) || se.Condition != "system-shutdown" || se.Handshake {
			return fmt.Errorf("LastError %v", err)
		}
		return nil
	})
	if b.client.Connected() {
		t.Fatal("still connected")
	}
	for i := range 20 {
		b.toUser(fmt.Sprint("queued", i))
	}
	s.listen(t, s.addr)
	b.waitConnected(t)
	b.toUser("after")
	// Everything on the new connection comes in order, so once "after"
	// is there a duplicate would be too.
	xmpptest.CheckFor(t, waitFor, func() error {
		if !slices.Contains(ids(s.users.all()), "after") {
			return errors.New(`no "after" yet`)
		}
		return nil
	})
	got := s.users.all()
	want := slices.Concat([]string{"before"}, seq("queued", 0, 20), []string{"after"})
	if !slices.Equal(ids(got), want) {
		t.Fatalf("the server's users got %v\nwant %v", ids(got), want)
	}
	// And the other way on the new connection.
	s.fromUser("bot@"+testDomain, "in")
	if got := b.bot.wait(t, 1); got[0].El.Attr("id") != "in" {
		t.Fatalf("the bridge got %v", ids(got))
	}
}

// TestForeignDomain has the server send the component a stanza for
// another domain, which no server should: it is dropped and logged, and
// the stream goes on.
func TestForeignDomain(t *testing.T) {
	s := startServer(t)
	b := startBridge(t, s.addr, nil)
	b.waitConnected(t)
	comp, ok := s.router.Lookup(testDomain)
	if !ok {
		t.Fatal("not registered")
	}
	ctx := context.Background()
	comp.HandleStanza(ctx, message("alice@localhost/res", "bob@other.localhost", "foreign"))
	comp.HandleStanza(ctx, message("alice@localhost/res", "bot@sub."+testDomain, "subdomain"))
	comp.HandleStanza(ctx, message("alice@localhost/res", "bot@"+testDomain, "mine"))
	got := b.bot.wait(t, 1)
	if !slices.Equal(ids(got), []string{"mine"}) {
		t.Fatalf("the bridge got %v", ids(got))
	}
	for _, id := range []string{"foreign", "subdomain"} {
		if b.log.count("WARN dropped a stanza from the server", "why=not for this component's domain", "id="+id) != 1 {
			t.Errorf("no log of dropping %s", id)
		}
	}
	// The bridge did not route it anywhere either, and kept its stream.
	if len(s.users.all()) != 0 || b.log.count("component connected") != 1 || !b.client.Connected() {
		t.Fatal("the stream was disturbed")
	}
}

// TestQueueBounds fills the queue while the server cannot be reached:
// past MaxQueued, stanzas are bounced to their senders with
// remote-server-timeout.
func TestQueueBounds(t *testing.T) {
	addr := deadAddr(t)
	for _, tc := range []struct {
		name   string
		adjust func(*Config)
	}{
		{"count", func(c *Config) { c.MaxQueued = 3 }},
		{"bytes", func(c *Config) {
			c.MaxQueuedBytes = 3*len(message("bot@"+testDomain+"/x", "alice@localhost", "q0").El.AppendXML(nil, xmlstream.NSComponent)) + 5
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBridge(t, addr, tc.adjust)
			for i := range 5 {
				b.toUser(fmt.Sprint("q", i))
			}
			got := b.bot.wait(t, 2)
			if !slices.Equal(ids(got), []string{"q3", "q4"}) {
				t.Fatalf("bounced %v", ids(got))
			}
			for _, e := range got {
				if e.El.Attr("type") != "error" || stanza.ErrorCondition(e.El) != stanza.RemoteServerTimeout ||
					e.To.String() != "bot@"+testDomain+"/x" || e.From.String() != "alice@localhost" {
					t.Fatalf("bounce %s from %s to %s", e.El, e.From, e.To)
				}
			}
			if b.log.count("WARN outgoing queue full") != 1 {
				t.Error("the overflow was not logged once")
			}
			// What is still queued when Run returns goes back too.
			if err := b.stop(); err != nil {
				t.Fatal(err)
			}
			got = b.bot.wait(t, 5)
			if !slices.Equal(ids(got), []string{"q3", "q4", "q0", "q1", "q2"}) {
				t.Fatalf("bounced %v", ids(got))
			}
			// And anything routed afterwards.
			b.toUser("late")
			if got := b.bot.wait(t, 6)[5]; got.El.Attr("id") != "late" || stanza.ErrorCondition(got.El) != stanza.RemoteServerTimeout {
				t.Fatalf("bounced %s", got.El)
			}
		})
	}
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestForwarderChecks(t *testing.T) {
	b := newBridge(t, deadAddr(t), nil)
	ctx := context.Background()
	// Not from the domain: the server would close the stream for it.
	b.client.Forwarder().HandleStanza(ctx, message("mallory@localhost", "alice@localhost", "spoof"))
	if n := b.log.count("WARN not sent", "from=mallory@localhost"); n != 1 {
		t.Fatalf("%d logs of the refusal", n)
	}
	// No recipient.
	st := message("bot@"+testDomain, "alice@localhost", "nowhere")
	st.To = jid.JID{}
	st.El.RemoveAttr("to")
	b.client.Forwarder().HandleStanza(ctx, st)
	got := b.bot.wait(t, 1)
	if stanza.ErrorCondition(got[0].El) != stanza.BadRequest {
		t.Fatalf("bounce %s", got[0].El)
	}
	// The 'from' the router vouches for wins over the attribute.
	st = message("bot@"+testDomain, "alice@localhost", "stamped")
	st.El.SetAttr("from", "someone@else")
	b.client.Forwarder().HandleStanza(ctx, st)
	b.client.mu.Lock()
	queued := string(b.client.q[b.client.head])
	b.client.mu.Unlock()
	if !strings.Contains(queued, "from='bot@"+testDomain+"'") {
		t.Fatalf("queued %s", queued)
	}
}

// TestShutdown cancels Run right after queueing: what was queued is
// written before the stream end.
func TestShutdown(t *testing.T) {
	s := startServer(t)
	b := startBridge(t, s.addr, nil)
	b.waitConnected(t)
	const n = 200
	for i := range n {
		b.toUser(fmt.Sprint("m", i))
	}
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	if got := ids(s.users.wait(t, n)); !slices.Equal(got, seq("m", 0, n)) {
		t.Fatalf("the server's users got %v", got)
	}
	xmpptest.CheckFor(t, waitFor, func() error {
		if got := s.srv.Connected(); len(got) != 0 {
			return fmt.Errorf("server still lists %v", got)
		}
		return nil
	})
	if b.client.Connected() {
		t.Fatal("still connected")
	}
}

func TestRunTwice(t *testing.T) {
	b := startBridge(t, deadAddr(t), nil)
	xmpptest.CheckFor(t, waitFor, func() error {
		if b.log.count("cannot connect") == 0 {
			return errors.New("not running yet")
		}
		return nil
	})
	if err := b.client.Run(context.Background()); err == nil {
		t.Fatal("second Run accepted")
	}
}

func TestNewRejects(t *testing.T) {
	d := Deps{Router: router.New(xmpptest.Discard()), Log: xmpptest.Discard()}
	for _, tc := range []struct {
		name string
		cfg  Config
		deps Deps
	}{
		{"no deps", Config{Domain: "a.example", Secret: "s"}, Deps{}},
		{"no domain", Config{Secret: "s"}, d},
		{"not a domain", Config{Domain: "a@b.example", Secret: "s"}, d},
		{"no secret", Config{Domain: "a.example"}, d},
		{"bad address", Config{Domain: "a.example", Secret: "s", Addr: "localhost"}, d},
		{"backoff upside down", Config{Domain: "a.example", Secret: "s", ReconnectMin: time.Minute, ReconnectMax: time.Second}, d},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, tc.deps); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	c, err := New(Config{Domain: "A.Example", Secret: "s"}, d)
	if err != nil {
		t.Fatal(err)
	}
	if c.domain != "a.example" || c.cfg.Addr != "127.0.0.1:5347" || c.cfg.ReconnectMax != time.Minute {
		t.Fatalf("domain %q, config %+v", c.domain, c.cfg)
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 10*time.Second
	for n := range 40 {
		for range 50 {
			d := backoff(n, lo, hi)
			if d < lo || d > hi {
				t.Fatalf("attempt %d: %v outside [%v, %v]", n, d, lo, hi)
			}
			// Exponential: at least half of min·2ⁿ, up to the cap.
			if floor := min(lo<<min(n, 20), hi) / 2; d < floor {
				t.Fatalf("attempt %d: %v below %v", n, d, floor)
			}
		}
	}
	if d := backoff(0, lo, hi); d != lo {
		t.Fatalf("first delay %v, want %v", d, lo)
	}
}
