package component

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

const (
	echoDomain = "echo.localhost"
	echoSecret = "s3cret"
)

type fixture struct {
	xs      *xmpptest.Server
	srv     *Server
	addr    string
	metrics *countMetrics
}

// countMetrics counts the limits crossed.
type countMetrics struct {
	mu   sync.Mutex
	hits map[string]int
}

func (m *countMetrics) ComponentUp()   {}
func (m *countMetrics) ComponentDown() {}
func (m *countMetrics) LimitHit(edge, limit string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hits[edge+": "+limit]++
}

func (m *countMetrics) count(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hits[key]
}

// start runs the in-process server for localhost and a component listener
// on the same router, stopped when the test ends.
func start(t *testing.T, adjust func(*Config)) *fixture {
	t.Helper()
	xs := xmpptest.StartServer(t, nil)
	cfg := DefaultConfig()
	cfg.Components = []External{{Domain: echoDomain, Secret: echoSecret}, {Domain: "other.localhost", Secret: "x"}}
	if adjust != nil {
		adjust(&cfg)
	}
	m := &countMetrics{hits: map[string]int{}}
	srv, err := New(cfg, Deps{Router: xs.Router, Log: xmpptest.Discard(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go srv.Serve(ctx, l)
	t.Cleanup(func() {
		cancel()
		srv.Shutdown()
	})
	return &fixture{xs: xs, srv: srv, addr: l.Addr().String(), metrics: m}
}

// open connects and opens a component stream for domain, returning the
// stream id.
func (f *fixture) open(t *testing.T, domain string) (*xmpptest.Client, string) {
	t.Helper()
	c := xmpptest.Dial(t, f.addr, domain)
	c.Send("<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='" + domain + "'>")
	ev, err := c.Next(5 * time.Second)
	if err != nil || ev.Kind != xmlstream.EventStreamStart {
		t.Fatalf("want a stream header, got %v %v", ev.Kind, err)
	}
	return c, ev.Elem.Attr("id")
}

func proof(id, secret string) string {
	sum := sha1.Sum([]byte(id + secret))
	return hex.EncodeToString(sum[:])
}

// connect completes the handshake for echo.localhost.
func (f *fixture) connect(t *testing.T) *xmpptest.Client {
	t.Helper()
	c, id := f.open(t, echoDomain)
	c.Send("<handshake>" + proof(id, echoSecret) + "</handshake>")
	if el := c.Element(); el.Local != "handshake" || len(el.Nodes) != 0 {
		t.Fatalf("want <handshake/>, got %s", el)
	}
	return c
}

func TestStreamErrors(t *testing.T) {
	f := start(t, nil)
	bound := f.connect(t)
	defer bound.Close()
	cases := []struct {
		name string
		run  func(t *testing.T) *xmpptest.Client
		want string
	}{
		{"wrong secret", func(t *testing.T) *xmpptest.Client {
			c, id := f.open(t, "other.localhost")
			c.Send("<handshake>" + proof(id, "wrong") + "</handshake>")
			return c
		}, "not-authorized"},
		{"unknown domain", func(t *testing.T) *xmpptest.Client {
			c, _ := f.open(t, "nobody.localhost")
			return c
		}, "host-unknown"},
		{"served by the session manager", func(t *testing.T) *xmpptest.Client {
			c, _ := f.open(t, "localhost")
			return c
		}, "host-unknown"},
		{"second connection for a bound domain", func(t *testing.T) *xmpptest.Client {
			c, id := f.open(t, echoDomain)
			c.Send("<handshake>" + proof(id, echoSecret) + "</handshake>")
			return c
		}, "conflict"},
		{"stanza before the handshake", func(t *testing.T) *xmpptest.Client {
			c, _ := f.open(t, "other.localhost")
			c.Send("<message from='other.localhost' to='alice@localhost'/>")
			return c
		}, "not-authorized"},
		{"client namespace", func(t *testing.T) *xmpptest.Client {
			c := xmpptest.Dial(t, f.addr, "other.localhost")
			c.Send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='other.localhost'>")
			return c
		}, "invalid-namespace"},
		{"spoofed from", func(t *testing.T) *xmpptest.Client {
			c := f.connectOther(t)
			c.Send("<message from='admin@localhost' to='alice@localhost'><body>x</body></message>")
			return c
		}, "invalid-from"},
		{"from a subdomain", func(t *testing.T) *xmpptest.Client {
			c := f.connectOther(t)
			c.Send("<message from='a.other.localhost' to='alice@localhost'/>")
			return c
		}, "invalid-from"},
		{"no from", func(t *testing.T) *xmpptest.Client {
			c := f.connectOther(t)
			c.Send("<message to='alice@localhost'/>")
			return c
		}, "improper-addressing"},
		{"no to", func(t *testing.T) *xmpptest.Client {
			c := f.connectOther(t)
			c.Send("<presence from='other.localhost'/>")
			return c
		}, "improper-addressing"},
		{"not a stanza", func(t *testing.T) *xmpptest.Client {
			c := f.connectOther(t)
			c.Send("<db:result xmlns:db='jabber:server:dialback' from='other.localhost' to='localhost'/>")
			return c
		}, "unsupported-stanza-type"},
		{"not well-formed", func(t *testing.T) *xmpptest.Client {
			c := f.connectOther(t)
			c.Send("<message from='other.localhost' to='x@localhost'></presence>")
			return c
		}, "not-well-formed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.run(t)
			if got := c.StreamError(); got != tc.want {
				t.Fatalf("stream error %q, want %q", got, tc.want)
			}
			// The stream error ends the stream and the connection.
			xmpptest.CheckFor(t, 5*time.Second, func() error {
				if _, ok := f.xs.Router.Lookup("other.localhost"); ok {
					return errors.New("other.localhost still registered")
				}
				return nil
			})
		})
	}
	// A limit crossed is named in the stream error.
	c := f.connectOther(t)
	c.Send("<message from='other.localhost' to='x@localhost'>" + strings.Repeat("<a>", 100) + "</message>")
	if cond, text := c.StreamErrorText(); cond != "policy-violation" || text != "element nesting too deep" {
		t.Fatalf("deep nesting: %q %q", cond, text)
	}
	if n := f.metrics.count("component: element nesting too deep"); n != 1 {
		t.Fatalf("limit counted %d times", n)
	}
	// The first connection is untouched by all of this.
	if _, ok := f.xs.Router.Lookup(echoDomain); !ok {
		t.Fatal("echo.localhost no longer registered")
	}
}

// connectOther completes the handshake for other.localhost.
func (f *fixture) connectOther(t *testing.T) *xmpptest.Client {
	t.Helper()
	c, id := f.open(t, "other.localhost")
	c.Send("<handshake>" + strings.ToUpper(proof(id, "x")) + "</handshake>")
	if el := c.Element(); el.Local != "handshake" {
		t.Fatalf("want <handshake/>, got %s", el)
	}
	return c
}

func TestStanzasBothWays(t *testing.T) {
	f := start(t, nil)
	f.xs.AddUser(t, "alice@localhost", "pw")
	alice := f.xs.Login(t, "alice", "pw", "res")
	alice.Send("<presence/>")
	comp := f.connect(t)

	// Whitespace keepalives are fine.
	comp.Send("  \n ")

	// Component to user, to the bare JID: the session manager delivers it.
	comp.Send("<message from='bot@echo.localhost/x' to='alice@localhost' type='chat' id='m1'><body>hi alice</body></message>")
	m := alice.Expect("message from the component", func(e *xmlstream.Element) bool { return e.Local == "message" })
	if m.Attr("from") != "bot@echo.localhost/x" || m.Attr("id") != "m1" || m.Child(xmlstream.NSClient, "body").Text() != "hi alice" {
		t.Fatalf("alice got %s", m)
	}

	// User to component: any address at its domain, 'from' stamped.
	alice.Send("<message to='bot@echo.localhost' type='chat' id='m2'><body>hi bot</body><x xmlns='urn:example:unknown'><y/></x></message>")
	m = comp.Expect("message from alice", func(e *xmlstream.Element) bool { return e.Local == "message" })
	if m.Attr("from") != "alice@localhost/res" || m.Attr("to") != "bot@echo.localhost" || m.Child("urn:example:unknown", "x") == nil {
		t.Fatalf("component got %s", m)
	}

	// An IQ from the user, answered by the component.
	alice.Send("<iq type='get' to='echo.localhost' id='q1'><query xmlns='jabber:iq:version'/></iq>")
	iq := comp.Expect("iq from alice", func(e *xmlstream.Element) bool { return e.Local == "iq" })
	comp.Send("<iq type='result' from='echo.localhost' to='" + iq.Attr("from") + "' id='q1'/>")
	r := alice.Expect("iq result", func(e *xmlstream.Element) bool { return e.Attr("id") == "q1" })
	if r.Attr("type") != "result" || r.Attr("from") != echoDomain {
		t.Fatalf("alice got %s", r)
	}

	// A malformed 'to' is answered with a stanza error, not the stream's end.
	comp.Send("<message from='echo.localhost' to='a@b@c' id='bad'/>")
	e := comp.Expect("error", func(e *xmlstream.Element) bool { return e.Attr("id") == "bad" })
	if e.Attr("type") != "error" || !strings.Contains(e.String(), "jid-malformed") {
		t.Fatalf("component got %s", e)
	}

	// The server lists the component in disco#items.
	alice.Send("<iq type='get' to='localhost' id='d1'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	d := alice.Expect("disco#items", func(e *xmlstream.Element) bool { return e.Attr("id") == "d1" })
	if !strings.Contains(d.String(), "jid='echo.localhost'") {
		t.Fatalf("disco#items: %s", d)
	}
	if got := f.srv.Connected(); len(got) != 1 || got[0] != echoDomain {
		t.Fatalf("connected %v", got)
	}

	// The component leaves: its domain is no longer routed to it.
	comp.Close()
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if _, ok := f.xs.Router.Lookup(echoDomain); ok {
			return errors.New("still registered")
		}
		return nil
	})
	alice.Send("<message to='bot@echo.localhost' type='chat' id='m3'><body>anyone?</body></message>")
	e = alice.Expect("bounce", func(e *xmlstream.Element) bool { return e.Attr("id") == "m3" })
	if e.Attr("type") != "error" {
		t.Fatalf("alice got %s", e)
	}
	// And it may connect again.
	f.connect(t).Close()
}

// TestReadRate sends more than the burst: the component is held back,
// which is counted once, and nothing is lost.
func TestReadRate(t *testing.T) {
	f := start(t, func(c *Config) { c.ReadRate = limit.Rate{Bytes: 64 << 10, Burst: 16 << 10} })
	f.xs.AddUser(t, "alice@localhost", "pw")
	alice := f.xs.Login(t, "alice", "pw", "res")
	comp := f.connect(t)
	body := strings.Repeat("x", 4<<10)
	const n = 25
	go func() {
		for i := range n {
			comp.Send(fmt.Sprintf("<message from='bot@echo.localhost' to='alice@localhost/res' id='m%d'><body>%s</body></message>", i, body))
		}
	}()
	for i := range n {
		m := alice.Expect("message", func(e *xmlstream.Element) bool { return e.Local == "message" })
		if m.Attr("id") != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %d: %s", i, m.Attr("id"))
		}
	}
	if got := f.metrics.count("component: read rate"); got != 1 {
		t.Fatalf("read rate hits %d, want 1", got)
	}
}

func TestShutdown(t *testing.T) {
	f := start(t, nil)
	c := f.connect(t)
	f.srv.Shutdown()
	if got := c.StreamError(); got != "system-shutdown" {
		t.Fatalf("stream error %q", got)
	}
	if _, ok := f.xs.Router.Lookup(echoDomain); ok {
		t.Fatal("still registered after shutdown")
	}
}

func TestHandshakeTimeout(t *testing.T) {
	f := start(t, func(c *Config) { c.HandshakeTimeout = 50 * time.Millisecond })
	c, _ := f.open(t, echoDomain)
	if got := c.StreamError(); got != "connection-timeout" {
		t.Fatalf("stream error %q", got)
	}
}

// TestSlowComponent fills the queue of a component that does not read: it
// is closed with policy-violation and the router's callers never wait.
func TestSlowComponent(t *testing.T) {
	f := start(t, func(c *Config) {
		c.MaxQueuedBytes = 1 << 20
		c.CloseGrace = 30 * time.Second // the test reads the backlog first
	})
	c := f.connect(t)
	comp, ok := f.xs.Router.Lookup(echoDomain)
	if !ok {
		t.Fatal("not registered")
	}
	body := strings.Repeat("x", 64<<10)
	ctx := context.Background()
	for i := 0; ; i++ {
		if _, ok := f.xs.Router.Lookup(echoDomain); !ok {
			break
		}
		if i > 100000 {
			t.Fatal("queue never overflowed")
		}
		el := xmlstream.NewElement(xmlstream.NSClient, "message")
		el.SetAttr("to", echoDomain)
		el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body")).AddText(body)
		comp.HandleStanza(ctx, router.Stanza{El: el})
	}
	if got := c.StreamError(); got != "policy-violation" {
		t.Fatalf("stream error %q", got)
	}
}

func TestNewRejects(t *testing.T) {
	d := Deps{Router: router.New(xmpptest.Discard()), Log: xmpptest.Discard()}
	cases := []struct {
		name string
		cs   []External
	}{
		{"bad domain", []External{{Domain: "a@b", Secret: "s"}}},
		{"empty secret", []External{{Domain: "a.example"}}},
		{"twice", []External{{Domain: "a.example", Secret: "s"}, {Domain: "A.example", Secret: "t"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(Config{Components: tc.cs}, d); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := New(Config{}, Deps{}); err == nil {
		t.Fatal("accepted missing deps")
	}
}
