package c2s_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// limitMetrics counts the limits the edge reports crossed.
type limitMetrics struct {
	mu   sync.Mutex
	hits map[string]int
}

func (m *limitMetrics) ClientConnected()        {}
func (m *limitMetrics) ClientDisconnected()     {}
func (m *limitMetrics) SessionBound()           {}
func (m *limitMetrics) SessionEnded()           {}
func (m *limitMetrics) ClientAuth(string, bool) {}
func (m *limitMetrics) ClientStanza(string)     {}
func (m *limitMetrics) LimitHit(edge, lim string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hits == nil {
		m.hits = map[string]int{}
	}
	m.hits[edge+": "+lim]++
}

func (m *limitMetrics) count(lim string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hits["c2s: "+lim]
}

// logBuffer collects log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// limited is a test server with limits, its metrics and its log.
type limited struct {
	*xmpptest.Server
	auth *auth.Authenticator
}

func startLimited(t *testing.T, cfg func(*c2s.Config), conns *limit.Conns, failures *limit.Failures) (*limited, *limitMetrics, *logBuffer) {
	t.Helper()
	m := &limitMetrics{}
	logs := &logBuffer{}
	var a *auth.Authenticator
	s := xmpptest.StartServerWith(t, xmpptest.Options{C2S: cfg, C2SDeps: func(d *c2s.Deps) {
		a = d.Auth
		d.Conns, d.Failures, d.Metrics = conns, failures, m
		d.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}})
	s.AddUser(t, "alice@localhost", "wonderland")
	return &limited{Server: s, auth: a}, m, logs
}

func TestLimitUnauthenticatedConnections(t *testing.T) {
	conns := limit.NewConns(limit.ConnConfig{MaxUnauthenticated: 3, MaxUnauthenticatedPerAddr: 10})
	s, m, logs := startLimited(t, nil, conns, nil)
	// Two silent connections and one that logs in use the three places.
	for range 2 {
		nc, err := net.Dial("tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
	}
	c := xmpptest.Dial(t, s.Addr, "localhost")
	c.Open()
	c.StartTLS(s.Roots)
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if n := conns.Unauthenticated(); n != 3 {
			return fmt.Errorf("unauthenticated %d, want 3", n)
		}
		return nil
	})
	refused := xmpptest.Dial(t, s.Addr, "localhost")
	if cond, text := refused.StreamErrorText(); cond != "resource-constraint" || text != limit.TooManyUnauthenticated {
		t.Fatalf("fourth connection: %q %q", cond, text)
	}
	if n := m.count(limit.TooManyUnauthenticated); n != 1 {
		t.Fatalf("metric counted %d", n)
	}
	if !strings.Contains(logs.String(), "connection refused") || !strings.Contains(logs.String(), "remote=127.0.0.1") {
		t.Fatalf("no log line naming the address:\n%s", logs)
	}
	// Logging in frees a place: authenticated users are not counted.
	if cond := c.AuthPlain("alice", "wonderland"); cond != "" {
		t.Fatal(cond)
	}
	c.Bind("r")
	next := xmpptest.Dial(t, s.Addr, "localhost")
	next.Open()
	if next.Features == nil {
		t.Fatal("no features after a place was freed")
	}
}

func TestLimitConnectionsPerAddressExempt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exempt limit.Nets
		want   string
	}{
		{"limited", nil, limit.TooManyUnauthenticatedPerAddr},
		{"exempt", limit.Nets{netip.MustParsePrefix("127.0.0.0/8")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns := limit.NewConns(limit.ConnConfig{MaxUnauthenticatedPerAddr: 1, Exempt: tc.exempt})
			s, _, _ := startLimited(t, nil, conns, nil)
			first := xmpptest.Dial(t, s.Addr, "localhost")
			first.Open()
			second := xmpptest.Dial(t, s.Addr, "localhost")
			if tc.want != "" {
				if cond, text := second.StreamErrorText(); cond != "policy-violation" || text != tc.want {
					t.Fatalf("second connection: %q %q", cond, text)
				}
				return
			}
			second.Open()
			if second.Features == nil {
				t.Fatal("exempt address refused")
			}
		})
	}
}

// readFailure reads a SASL <failure/> and returns its condition and text.
func readFailure(t *testing.T, c *xmpptest.Client) (cond, text string) {
	t.Helper()
	el := c.Element()
	if el.Local != "failure" {
		t.Fatalf("want a failure, got %s", el)
	}
	for _, ch := range el.Children() {
		if ch.Local == "text" {
			text = ch.Text()
		} else {
			cond = ch.Local
		}
	}
	return cond, text
}

func TestLoginFailuresAcrossConnections(t *testing.T) {
	failures := limit.NewFailures(limit.FailureConfig{PerAddr: 3, PerAccount: 100, Window: time.Minute})
	s, m, logs := startLimited(t, nil, nil, failures)
	// One guess per connection, as a guesser dodging per-stream limits does.
	for range 3 {
		c := xmpptest.Dial(t, s.Addr, "localhost")
		c.Open()
		c.StartTLS(s.Roots)
		if cond := c.AuthPlain("alice", "guess"); cond != "not-authorized" {
			t.Fatalf("wrong password: %q", cond)
		}
	}
	// Now even the right password is refused, without being checked.
	lookups, _ := s.auth.Work()
	c := xmpptest.Dial(t, s.Addr, "localhost")
	c.Open()
	c.StartTLS(s.Roots)
	c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wonderland")) + "</auth>")
	if cond, text := readFailure(t, c); cond != "not-authorized" || text != limit.LoginsFromAddr {
		t.Fatalf("refusal: %q %q", cond, text)
	}
	if cond, text := c.StreamErrorText(); cond != "policy-violation" || text != limit.LoginsFromAddr {
		t.Fatalf("stream error: %q %q", cond, text)
	}
	if after, _ := s.auth.Work(); after != lookups {
		t.Fatalf("a refused attempt was checked: %d lookups, before %d", after, lookups)
	}
	if n := m.count(limit.LoginsFromAddr); n != 1 {
		t.Fatalf("metric counted %d", n)
	}
	l := logs.String()
	if !strings.Contains(l, "login failed") || !strings.Contains(l, "user=alice@localhost") || !strings.Contains(l, "login refused") || !strings.Contains(l, "remote=127.0.0.1") {
		t.Fatalf("log lines do not name the address and account:\n%s", l)
	}
}

func TestLoginFailuresExempt(t *testing.T) {
	failures := limit.NewFailures(limit.FailureConfig{PerAddr: 1, PerAccount: 1, Window: time.Minute, Exempt: limit.Nets{netip.MustParsePrefix("127.0.0.1/32")}})
	s, _, _ := startLimited(t, nil, nil, failures)
	for range 3 {
		c := xmpptest.Dial(t, s.Addr, "localhost")
		c.Open()
		c.StartTLS(s.Roots)
		if cond := c.AuthPlain("alice", "guess"); cond != "not-authorized" {
			t.Fatalf("wrong password: %q", cond)
		}
	}
	c := xmpptest.Dial(t, s.Addr, "localhost")
	c.Open()
	c.StartTLS(s.Roots)
	if cond := c.AuthPlain("alice", "wonderland"); cond != "" {
		t.Fatalf("exempt address refused: %q", cond)
	}
}

func TestStreamErrorsNameTheLimit(t *testing.T) {
	s, _, _ := startLimited(t, func(c *c2s.Config) {
		c.AllowPlain = true
		c.PreAuthMaxStanzaBytes = 1024
	}, nil, nil)
	big := "<iq type='get' id='1'><query xmlns='jabber:iq:version'>" + strings.Repeat("x", 2048) + "</query></iq>"
	for _, tc := range []struct {
		name, input, cond, text string
		login                   bool
	}{
		{"too large before authentication", big, "policy-violation", "stanza too large", false},
		{"too deep", "<message>" + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + "</message>", "policy-violation", "element nesting too deep", true},
		{"entity", "<message>&foo;</message>", "restricted-xml", "entity references are not allowed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := xmpptest.Dial(t, s.Addr, "localhost")
			c.Open()
			if tc.login {
				if cond := c.AuthSCRAM("SCRAM-SHA-256", "alice", "wonderland", ""); cond != "" {
					t.Fatal(cond)
				}
				c.Bind("r")
			}
			c.Send(tc.input)
			if cond, text := c.StreamErrorText(); cond != tc.cond || text != tc.text {
				t.Fatalf("got %q %q, want %q %q", cond, text, tc.cond, tc.text)
			}
		})
	}
	// After authentication, the full size applies.
	c := xmpptest.Dial(t, s.Addr, "localhost")
	c.Open()
	if cond := c.AuthSCRAM("SCRAM-SHA-256", "alice", "wonderland", ""); cond != "" {
		t.Fatal(cond)
	}
	c.Bind("r")
	c.Send(big)
	if el := c.Element(); el.Local != "iq" {
		t.Fatalf("after authentication, a 2 KiB stanza got %s", el)
	}
}

// TestSilentConnectionsHoldNoGoroutine opens many connections that say
// nothing, on both ports: they wait in the poller, not each on a
// goroutine, and the negotiation deadline still closes them.
func TestSilentConnectionsHoldNoGoroutine(t *testing.T) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) { c.AuthTimeout = 2 * time.Second })
	s.AddUser(t, "alice@localhost", "wonderland")
	// The server's own goroutines (the poller and its workers) start
	// with the first connection.
	xmpptest.Dial(t, s.Addr, "localhost").Open()
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if n := s.Edge.ConnCount(); n != 0 {
			return fmt.Errorf("%d connections", n)
		}
		return nil
	})
	before := runtime.NumGoroutine()
	const n = 200
	var silent []net.Conn
	for i := range n {
		addr := s.Addr
		if i%2 == 1 {
			addr = s.TLSAddr
		}
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		silent = append(silent, nc)
	}
	// One that sent half a stream header waits too.
	if _, err := silent[0].Write([]byte("<?xml version='1.0'?><stream:stream to='local")); err != nil {
		t.Fatal(err)
	}
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if got := s.Edge.ConnCount(); got != n {
			return fmt.Errorf("%d connections, want %d", got, n)
		}
		return nil
	})
	// A normal client logs in meanwhile.
	c := s.Login(t, "alice", "wonderland", "r")
	c.Close()
	if g := runtime.NumGoroutine(); g > before+n/4 {
		t.Fatalf("%d goroutines for %d silent connections (%d before)", g, n, before)
	}
	// The deadline closes them all, with connection-timeout.
	buf := make([]byte, 4096)
	_ = silent[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	for {
		k, err := silent[0].Read(buf)
		got = append(got, buf[:k]...)
		if err != nil {
			break
		}
	}
	if !strings.Contains(string(got), "connection-timeout") {
		t.Fatalf("half-open stream got %q", got)
	}
	xmpptest.CheckFor(t, 10*time.Second, func() error {
		if got := s.Edge.ConnCount(); got != 0 {
			return fmt.Errorf("%d connections left", got)
		}
		return nil
	})
}

// TestLimitEvictsFlooder fills the unauthenticated places from one
// address; a client from another still gets in, in the place of the
// flood's oldest connection, which ends with a stream error.
func TestLimitEvictsFlooder(t *testing.T) {
	conns := limit.NewConns(limit.ConnConfig{MaxUnauthenticated: 3})
	s, m, _ := startLimited(t, nil, conns, nil)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	var flood []net.Conn
	for range 3 {
		nc, err := d.Dial("tcp", s.Addr)
		if err != nil {
			t.Skipf("no second loopback address: %v", err)
		}
		defer nc.Close()
		flood = append(flood, nc)
	}
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if n := conns.Unauthenticated(); n != 3 {
			return fmt.Errorf("unauthenticated %d, want 3", n)
		}
		return nil
	})
	c := s.Login(t, "alice", "wonderland", "r")
	defer c.Close()
	_ = flood[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(flood[0])
	if !strings.Contains(string(b), limit.TooManyUnauthenticated) {
		t.Fatalf("oldest flood connection got %q", b)
	}
	if n := m.count(limit.TooManyUnauthenticated); n != 1 {
		t.Fatalf("metric counted %d", n)
	}
}

func TestLimitSessionsPerAccount(t *testing.T) {
	conns := limit.NewConns(limit.ConnConfig{})
	s, m, logs := startLimited(t, func(c *c2s.Config) { c.MaxSessionsPerAccount = 2 }, conns, nil)
	a := s.Login(t, "alice", "wonderland", "one")
	defer a.Close()
	b := s.Login(t, "alice", "wonderland", "two")
	defer b.Close()
	c := s.Authenticate(t, "alice", "wonderland")
	c.Send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>three</resource></bind></iq>")
	el := c.Element()
	e := el.Child("jabber:client", "error")
	if el.Attr("type") != "error" || e == nil || e.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "resource-constraint") == nil ||
		e.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "text").Text() != c2s.TooManySessions {
		t.Fatalf("third session: %s", el)
	}
	if n := m.count(c2s.TooManySessions); n != 1 {
		t.Fatalf("metric counted %d", n)
	}
	if !strings.Contains(logs.String(), "session refused") {
		t.Fatalf("no log line:\n%s", logs)
	}
	// Taking over a resource of its own is not one more session.
	if got := c.Bind("two"); got != "alice@localhost/two" {
		t.Fatalf("rebind: %q", got)
	}
	// Once one ends, there is room again.
	a.Close()
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		d := s.Authenticate(t, "alice", "wonderland")
		defer d.Close()
		d.Send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>four</resource></bind></iq>")
		if el := d.Element(); el.Attr("type") != "result" {
			return fmt.Errorf("after a logout: %s", el)
		}
		return nil
	})
}

// TestLimitReadRate sends far more than the burst: the connection is held
// back (counted, logged) but nothing is lost, in both reading modes.
func TestLimitReadRate(t *testing.T) {
	for _, poller := range []bool{true, false} {
		t.Run(fmt.Sprintf("poller=%v", poller), func(t *testing.T) {
			s, m, logs := startLimited(t, func(c *c2s.Config) {
				c.ReadRate = limit.Rate{Bytes: 64 << 10, Burst: 16 << 10}
				c.DisablePoller = !poller
			}, nil, nil)
			s.AddUser(t, "bob@localhost", "builder")
			a := s.Login(t, "alice", "wonderland", "r")
			b := s.Login(t, "bob", "builder", "r")
			body := strings.Repeat("x", 4<<10)
			const n = 30
			go func() {
				for i := range n {
					a.Send(fmt.Sprintf("<message to='bob@localhost/r' id='m%d'><body>%s</body></message>", i, body))
				}
			}()
			for i := range n {
				el := b.Expect("message", xmpptest.IsStanza)
				if el.Attr("id") != fmt.Sprintf("m%d", i) {
					t.Fatalf("message %d: %s", i, el.Attr("id"))
				}
			}
			if m.count("read rate") != 1 {
				t.Fatalf("read rate hits %d, want 1 (once per connection)", m.count("read rate"))
			}
			if !strings.Contains(logs.String(), "read rate limited") {
				t.Fatalf("no log line:\n%s", logs)
			}
		})
	}
}
