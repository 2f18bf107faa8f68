package c2s_test

import (
	"bytes"
	"context"
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
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
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
	s, m, logs := startLimited(t, func(c *c2s.Config) {
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
			if tc.cond == "policy-violation" && m.count(tc.text) != 1 {
				t.Fatalf("limit %q counted %d times", tc.text, m.count(tc.text))
			}
		})
	}
	if !strings.Contains(logs.String(), "stream closed by a limit") {
		t.Fatalf("no log line:\n%s", logs)
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
	s := xmpptest.StartServer(t, func(c *c2s.Config) { c.AuthTimeout = 6 * time.Second })
	s.AddUser(t, "alice@localhost", "wonderland")
	// The server's own goroutines (the poller and its workers) start
	// with the first connection.
	warm := xmpptest.Dial(t, s.Addr, "localhost")
	warm.Open()
	warm.Close()
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
	// Counted once the normal client's connection is gone (and any
	// negotiator started for a wave of resumptions, negotiateExtra),
	// the silent ones all still open.
	xmpptest.CheckFor(t, 3*time.Second, func() error {
		switch got := s.Edge.ConnCount(); {
		case got < n:
			t.Fatalf("%d connections before the timeout, want %d", got, n)
		case got > n:
			return fmt.Errorf("%d connections: the normal client's not closed yet", got)
		}
		if g := runtime.NumGoroutine(); g > before+n/4 {
			return fmt.Errorf("%d goroutines for %d silent connections (%d before)", g, n, before)
		}
		return nil
	})
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
	if !strings.Contains(string(got), "connection-timeout") || !strings.Contains(string(got), c2s.AuthTimedOut) {
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

// TestLimitRegistrationFlood registers accounts from one address, one per
// connection as a flooder must: past the limit the attempts are refused
// before any work, with a metric and a log line; an exempt address is not
// limited.
func TestLimitRegistrationFlood(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exempt limit.Nets
	}{
		{"limited", nil},
		{"exempt", limit.Nets{netip.MustParsePrefix("127.0.0.0/8")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &limitMetrics{}
			logs := &logBuffer{}
			s := xmpptest.StartServerWith(t, xmpptest.Options{C2S: func(c *c2s.Config) { c.AllowRegistration = true }, C2SDeps: func(d *c2s.Deps) {
				d.Registrations = limit.NewEvents(3, time.Hour, tc.exempt)
				d.Metrics = m
				d.Log = slog.New(slog.NewTextHandler(logs, nil))
			}})
			for i := range 5 {
				c := xmpptest.Dial(t, s.Addr, "localhost")
				c.Open()
				c.StartTLS(s.Roots)
				c.Send(fmt.Sprintf("<iq type='set' id='r'><query xmlns='jabber:iq:register'><username>spam%d</username><password>pw</password></query></iq>", i))
				r := c.Expect("answer", isID("r"))
				refused := i >= 3 && tc.exempt == nil
				if got := strings.Contains(r.String(), "resource-constraint") && strings.Contains(r.String(), c2s.TooManyRegistrations); got != refused {
					t.Fatalf("registration %d: %s", i, r)
				}
				if !refused && r.Attr("type") != "result" {
					t.Fatalf("registration %d: %s", i, r)
				}
			}
			if tc.exempt != nil {
				return
			}
			if n := m.count(c2s.TooManyRegistrations); n != 2 {
				t.Fatalf("metric counted %d", n)
			}
			if _, err := s.Store.Credential(context.Background(), "spam3@localhost", "SHA-256"); err == nil {
				t.Fatal("a refused registration created its account")
			}
			if !strings.Contains(logs.String(), "registration refused") || !strings.Contains(logs.String(), "remote=127.0.0.1") {
				t.Fatalf("no log line:\n%s", logs)
			}
		})
	}
}

// TestRestartChangingDomain: after authentication (and after STARTTLS),
// a restarted stream naming another domain served here is refused; the
// authenticated user does not become a user of that domain.
func TestRestartChangingDomain(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "wonderland")
	other, err := sm.New(sm.Config{Domain: "other.test", Version: "test"}, sm.Deps{Router: s.Router, Accounts: s.Store, Roster: s.Store, Offline: s.Store, Blocklist: s.Store, Private: s.Store, Archive: s.Store, Log: xmpptest.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Router.Register("other.test", other); err != nil {
		t.Fatal(err)
	}
	for _, when := range []string{"after starttls", "after authentication"} {
		t.Run(when, func(t *testing.T) {
			c := xmpptest.Dial(t, s.Addr, "localhost")
			c.Open()
			c.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
			if el := c.Element(); el.Local != "proceed" {
				t.Fatalf("starttls: %s", el)
			}
			c.UseTLS(s.Roots)
			if when == "after authentication" {
				c.Open()
				c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wonderland")) + "</auth>")
				if el := c.Element(); el.Local != "success" {
					t.Fatalf("auth: %s", el)
				}
			}
			c.Restart("other.test")
			if cond, text := c.StreamErrorText(); cond != "host-unknown" || !strings.Contains(text, "localhost") {
				t.Fatalf("restart to another domain: %q %q", cond, text)
			}
		})
	}
}

// TestSASLDowngrade: a client cannot get the server to take a weaker
// exchange than it offers: PLAIN without TLS, or SCRAM with the channel
// binding flag contradicting the mechanism, are refused without checking
// a password. (SASL2's downgrade protection, XEP-0474, is
// TestSASL2SSDP.)
func TestSASLDowngrade(t *testing.T) {
	s, _, _ := startLimited(t, func(c *c2s.Config) { c.AllowPlain = true }, nil, nil)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, mech, initial, want string
		tls                       bool
	}{
		{"PLAIN without TLS", "PLAIN", "\x00alice\x00wonderland", "invalid-mechanism", false},
		{"PLUS without TLS", "SCRAM-SHA-256-PLUS", "p=tls-exporter,,n=alice,r=abcdefgh", "invalid-mechanism", false},
		{"unknown mechanism", "DIGEST-MD5", "", "invalid-mechanism", true},
		{"PLUS without binding", "SCRAM-SHA-256-PLUS", "n,,n=alice,r=abcdefgh", "not-authorized", true},
		{"binding without PLUS", "SCRAM-SHA-256", "p=tls-exporter,,n=alice,r=abcdefgh", "not-authorized", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := xmpptest.Dial(t, s.Addr, "localhost")
			c.Open()
			if tc.tls {
				c.StartTLS(s.Roots)
			}
			for _, m := range c.Mechanisms() {
				if !tc.tls && (m == "PLAIN" || strings.HasSuffix(m, "-PLUS")) {
					t.Fatalf("%s offered without TLS", m)
				}
			}
			lookups, _ := s.auth.Work()
			c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + tc.mech + "'>" + b64(tc.initial) + "</auth>")
			if cond, _ := readFailure(t, c); cond != tc.want {
				t.Fatalf("got %q, want %q", cond, tc.want)
			}
			if after, _ := s.auth.Work(); after != lookups {
				t.Fatal("a password was checked")
			}
		})
	}
}

// TestHalfOpenTLSHandshakes: TLS connections (direct, or after STARTTLS)
// that send part of a ClientHello and stop wait without a goroutine each,
// and the handshake timeout closes them.
func TestHalfOpenTLSHandshakes(t *testing.T) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) { c.AuthTimeout, c.TLSHandshakeTimeout = time.Minute, 8*time.Second })
	s.AddUser(t, "alice@localhost", "wonderland")
	warm := xmpptest.Dial(t, s.Addr, "localhost")
	warm.Open()
	warm.Close()
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if n := s.Edge.ConnCount(); n != 0 {
			return fmt.Errorf("%d connections", n)
		}
		return nil
	})
	before := runtime.NumGoroutine()
	const n = 200
	for i := range n {
		nc, err := net.Dial("tcp", s.TLSAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		// A handshake record header announcing 512 bytes, and 10 of them;
		// a few send only part of the header.
		half := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0, 0, 0, 0}
		if i%10 == 0 {
			half = half[:3]
		}
		if _, err := nc.Write(half); err != nil {
			t.Fatal(err)
		}
	}
	// And as many after STARTTLS's <proceed/>.
	for range n {
		c := xmpptest.Dial(t, s.Addr, "localhost")
		c.Open()
		c.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
		if el := c.Element(); el.Local != "proceed" {
			t.Fatalf("starttls: %s", el)
		}
		if _, err := c.Conn().Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}); err != nil {
			t.Fatal(err)
		}
	}
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if got := s.Edge.ConnCount(); got != 2*n {
			return fmt.Errorf("%d connections, want %d", got, 2*n)
		}
		return nil
	})
	// A normal client over direct TLS meanwhile.
	c := xmpptest.Dial(t, s.TLSAddr, "localhost")
	c.UseTLS(s.Roots, "xmpp-client")
	c.Open()
	if cond := c.AuthPlain("alice", "wonderland"); cond != "" {
		t.Fatal(cond)
	}
	c.Close()
	// The first bytes woke every connection, each resumption on a
	// negotiator, some started for the wave, which end soon after it
	// (negotiateExtra): counted once they have, all connections open.
	xmpptest.CheckFor(t, 4*time.Second, func() error {
		switch got := s.Edge.ConnCount(); {
		case got < 2*n:
			t.Fatalf("%d connections before the handshake timeout, want %d", got, 2*n)
		case got > 2*n:
			return fmt.Errorf("%d connections: the normal client's not closed yet", got)
		}
		if g := runtime.NumGoroutine(); g > before+n/4 {
			return fmt.Errorf("%d goroutines for %d half-open handshakes (%d before)", g, 2*n, before)
		}
		return nil
	})
	xmpptest.CheckFor(t, 15*time.Second, func() error {
		if got := s.Edge.ConnCount(); got != 0 {
			return fmt.Errorf("%d connections left", got)
		}
		return nil
	})
}

// TestLimitWebSocketAtTheDoor: a WebSocket is admitted by the connection
// limits as its client before the upgrade, and refused there with 503.
func TestLimitWebSocketAtTheDoor(t *testing.T) {
	conns := limit.NewConns(limit.ConnConfig{MaxUnauthenticatedPerAddr: 1})
	s, m, logs := startLimited(t, nil, conns, nil)
	first, _, err := xmpptest.DialWebSocket(s.WSURL, s.Roots, nil)
	if err != nil {
		t.Fatalf("first WebSocket: %v", err)
	}
	defer first.Close()
	_, _, err = xmpptest.DialWebSocket(s.WSURL, s.Roots, nil)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), limit.TooManyUnauthenticatedPerAddr) {
		t.Fatalf("second WebSocket: %v, want 503 naming the limit", err)
	}
	if m.count(limit.TooManyUnauthenticatedPerAddr) == 0 || !strings.Contains(logs.String(), "127.0.0.1") {
		t.Errorf("the refusal is not counted or logged: %s", logs.String())
	}
	// The first one's place comes back when it goes.
	first.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ws, _, err := xmpptest.DialWebSocket(s.WSURL, s.Roots, nil)
		if err == nil {
			ws.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the place of a closed WebSocket did not come back: %v", err)
		}
	}
}

// TestLimitVirtualConnections: a BOSH session counts as a connection of
// the client address its transport gives, and is refused past the limit.
func TestLimitVirtualConnections(t *testing.T) {
	conns := limit.NewConns(limit.ConnConfig{MaxUnauthenticatedPerAddr: 1})
	s, m, _ := startLimited(t, nil, conns, nil)
	from := func(ip string) c2s.VirtualInfo {
		return c2s.VirtualInfo{Secure: true, Remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 0}}
	}
	first, err := s.Edge.OpenVirtual(context.Background(), &recSink{}, from("203.0.113.7"))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close("")
	if _, err := s.Edge.OpenVirtual(context.Background(), &recSink{}, from("203.0.113.7")); err == nil || !strings.Contains(err.Error(), limit.TooManyUnauthenticatedPerAddr) {
		t.Fatalf("second session of the address: %v", err)
	}
	other, err := s.Edge.OpenVirtual(context.Background(), &recSink{}, from("198.51.100.9"))
	if err != nil {
		t.Fatalf("another address: %v", err)
	}
	other.Close("")
	if m.count(limit.TooManyUnauthenticatedPerAddr) != 1 {
		t.Errorf("refusals counted: %d", m.count(limit.TooManyUnauthenticatedPerAddr))
	}
}

// TestLimitSessionsSetLive: a bound on sessions lowered while sessions
// run (a reload) refuses the next bind, and ends none of the sessions
// bound before it.
func TestLimitSessionsSetLive(t *testing.T) {
	conns := limit.NewConns(limit.ConnConfig{})
	s, m, _ := startLimited(t, func(c *c2s.Config) { c.MaxSessionsPerAccount = 10 }, conns, nil)
	a := s.Login(t, "alice", "wonderland", "one")
	defer a.Close()
	b := s.Login(t, "alice", "wonderland", "two")
	defer b.Close()
	l := s.Edge.Limits()
	l.MaxSessionsPerAccount = 1
	s.Edge.SetLimits(l)
	if got := s.Edge.Limits().MaxSessionsPerAccount; got != 1 {
		t.Fatalf("Limits().MaxSessionsPerAccount = %d", got)
	}
	c := s.Authenticate(t, "alice", "wonderland")
	defer c.Close()
	c.Send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>three</resource></bind></iq>")
	if el := c.Element(); el.Attr("type") != "error" || !strings.Contains(el.String(), c2s.TooManySessions) {
		t.Fatalf("a bind past the lowered bound: %s", el)
	}
	if n := m.count(c2s.TooManySessions); n != 1 {
		t.Fatalf("metric counted %d", n)
	}
	// The two sessions bound before still work.
	for _, x := range []*xmpptest.Client{a, b} {
		x.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
		if el := x.Expect("ping", func(e *xmlstream.Element) bool { return e.Attr("id") == "p" }); el.Attr("type") != "result" {
			t.Fatalf("ping: %s", el)
		}
	}
}
