package c2s_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

func TestLoginEveryMechanism(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "wonderland")
	cases := []struct{ mech, cb string }{
		{"SCRAM-SHA-1", ""},
		{"SCRAM-SHA-256", ""},
		{"SCRAM-SHA-512", ""},
		{"SCRAM-SHA-1-PLUS", "tls-exporter"},
		{"SCRAM-SHA-256-PLUS", "tls-exporter"},
		{"SCRAM-SHA-512-PLUS", "tls-exporter"},
		{"SCRAM-SHA-256-PLUS", "tls-server-end-point"},
		{"PLAIN", ""},
	}
	for _, tc := range cases {
		t.Run(tc.mech+"/"+tc.cb, func(t *testing.T) {
			c := xmpptest.Dial(t, s.Addr, "localhost")
			c.Open()
			c.StartTLS(s.Roots)
			var cond string
			if tc.mech == "PLAIN" {
				cond = c.AuthPlain("alice", "wonderland")
			} else {
				cond = c.AuthSCRAM(tc.mech, "alice", "wonderland", tc.cb)
			}
			if cond != "" {
				t.Fatalf("auth failed: %s", cond)
			}
			if got := c.Bind("home"); got != "alice@localhost/home" {
				t.Fatalf("bound %q", got)
			}
			c.Close()
		})
	}
}

func TestWrongCredentials(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "wonderland")
	for _, tc := range []struct{ mech, user, pass string }{
		{"SCRAM-SHA-1", "alice", "nope"},
		{"SCRAM-SHA-256", "nobody", "nope"},
		{"PLAIN", "alice", "nope"},
		{"PLAIN", "nobody", "nope"},
	} {
		t.Run(tc.mech+"/"+tc.user, func(t *testing.T) {
			c := xmpptest.Dial(t, s.Addr, "localhost")
			c.Open()
			c.StartTLS(s.Roots)
			var cond string
			if tc.mech == "PLAIN" {
				cond = c.AuthPlain(tc.user, tc.pass)
			} else {
				cond = c.AuthSCRAM(tc.mech, tc.user, tc.pass, "")
			}
			if cond != "not-authorized" {
				t.Fatalf("got %q, want not-authorized", cond)
			}
		})
	}
}

func TestTooManyFailuresCloseStream(t *testing.T) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) { c.MaxAuthFailures = 1 })
	c := xmpptest.Dial(t, s.Addr, "localhost")
	c.Open()
	c.StartTLS(s.Roots)
	if cond := c.AuthPlain("x", "y"); cond != "not-authorized" {
		t.Fatalf("got %q", cond)
	}
	if cond := c.StreamError(); cond != "policy-violation" {
		t.Fatalf("stream error %q, want policy-violation", cond)
	}
}

func TestFeaturesBeforeAndAfterTLS(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	c := xmpptest.Dial(t, s.Addr, "localhost")
	c.Open()
	st := c.Features.Child("urn:ietf:params:xml:ns:xmpp-tls", "starttls")
	if st == nil || st.Child("urn:ietf:params:xml:ns:xmpp-tls", "required") == nil {
		t.Fatalf("want required starttls, got %s", c.Features)
	}
	if len(c.Mechanisms()) != 0 {
		t.Fatalf("mechanisms offered before TLS: %v", c.Mechanisms())
	}
	c.StartTLS(s.Roots)
	got := strings.Join(c.Mechanisms(), " ")
	want := "SCRAM-SHA-512-PLUS SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS SCRAM-SHA-512 SCRAM-SHA-256 SCRAM-SHA-1 PLAIN"
	if got != want {
		t.Fatalf("mechanisms %q, want %q", got, want)
	}
	cb := c.Features.Child("urn:xmpp:sasl-cb:0", "sasl-channel-binding")
	if cb == nil || len(cb.Children()) != 2 {
		t.Fatalf("channel binding types: %s", c.Features)
	}
}

func TestAuthWithoutTLSRefused(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	c := xmpptest.Dial(t, s.Addr, "localhost")
	c.Open()
	c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHdvbmRlcmxhbmQ=</auth>")
	if cond := c.StreamError(); cond != "policy-violation" {
		t.Fatalf("got %q, want policy-violation", cond)
	}
}

func TestPlainConnectionsWhenAllowed(t *testing.T) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) { c.AllowPlain = true })
	s.AddUser(t, "alice@localhost", "wonderland")
	c := xmpptest.Dial(t, s.Addr, "localhost")
	c.Open()
	got := strings.Join(c.Mechanisms(), " ")
	if got != "SCRAM-SHA-512 SCRAM-SHA-256 SCRAM-SHA-1" {
		t.Fatalf("mechanisms without TLS: %q", got)
	}
	if cond := c.AuthSCRAM("SCRAM-SHA-1", "alice", "wonderland", ""); cond != "" {
		t.Fatal(cond)
	}
	c.Bind("r")
}

func TestDirectTLSWithALPN(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "wonderland")
	c := xmpptest.Dial(t, s.TLSAddr, "localhost")
	st := c.UseTLS(s.Roots, "xmpp-client")
	if st.NegotiatedProtocol != "xmpp-client" {
		t.Fatalf("ALPN %q", st.NegotiatedProtocol)
	}
	c.Open()
	if cond := c.AuthSCRAM("SCRAM-SHA-256-PLUS", "alice", "wonderland", "tls-exporter"); cond != "" {
		t.Fatal(cond)
	}
	c.Bind("tls")
	c.Send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	c.Expect("ping result", func(e *xmlstream.Element) bool { return e.Attr("id") == "p1" && e.Attr("type") == "result" })
}

func TestBadInputStreamErrors(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	header := "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
	cases := []struct{ name, send, want string }{
		{"malformed", header + "<message><body>x</bodyy></message>", "not-well-formed"},
		{"doctype", "<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY x 'y'>]>" + header, "restricted-xml"},
		{"entity", header + "<message><body>&xxe;</body></message>", "restricted-xml"},
		{"comment", header + "<!-- hi -->", "restricted-xml"},
		{"pi", header + "<?evil?>", "restricted-xml"},
		{"oversized", header + "<message><body>" + strings.Repeat("a", 300<<10) + "</body></message>", "policy-violation"},
		{"unknown host", strings.Replace(header, "to='localhost'", "to='elsewhere.example'", 1), "host-unknown"},
		{"bad namespace", strings.Replace(header, "http://etherx.jabber.org/streams", "urn:wrong", 1), "invalid-namespace"},
		{"stanza before auth", header + "<message to='bob@localhost'><body>x</body></message>", "not-authorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := xmpptest.Dial(t, s.Addr, "localhost")
			c.Send(tc.send)
			if got := c.StreamError(); got != tc.want {
				t.Fatalf("stream error %q, want %q", got, tc.want)
			}
		})
	}
	// The server still serves others.
	s.AddUser(t, "alice@localhost", "wonderland")
	c := s.Login(t, "alice", "wonderland", "after")
	c.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	c.Expect("ping result", func(e *xmlstream.Element) bool { return e.Attr("id") == "p1" && e.Attr("type") == "result" })
}

func TestDisconnectMidStanza(t *testing.T) { modes(t, testDisconnectMidStanza) }

func testDisconnectMidStanza(t *testing.T, mode func(*c2s.Config)) {
	s := xmpptest.StartServer(t, mode)
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	a := s.Login(t, "alice", "wonderland", "a")
	a.Send("<message to='bob@localhost'><body>half a sta")
	a.Conn().(*tls.Conn).NetConn().Close()
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if n := s.Edge.ConnCount(); n != 0 {
			return fmt.Errorf("%d connections open", n)
		}
		return nil
	})
	b := s.Login(t, "bob", "builder", "b")
	b.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	b.Expect("ping result", func(e *xmlstream.Element) bool { return e.Attr("id") == "p1" })
}

func TestSpoofedFromIsReplaced(t *testing.T) { modes(t, testSpoofedFrom) }

func testSpoofedFrom(t *testing.T, mode func(*c2s.Config)) {
	s := xmpptest.StartServer(t, mode)
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	a := s.Login(t, "alice", "wonderland", "a")
	b := s.Login(t, "bob", "builder", "b")
	b.Send("<presence/>")
	b.Expect("own presence", func(e *xmlstream.Element) bool { return e.Local == "presence" })
	a.Send("<message from='carol@localhost/x' to='bob@localhost/b' id='m1'><body>trust me</body></message>")
	m := b.Expect("message", func(e *xmlstream.Element) bool { return e.Local == "message" })
	if m.Attr("from") != "alice@localhost/a" || m.Attr("id") != "m1" || m.Child(xmlstream.NSClient, "body").Text() != "trust me" {
		t.Fatalf("got %s", m)
	}
}

func TestResourceConflictReplacesOldSession(t *testing.T) { modes(t, testConflict) }

func testConflict(t *testing.T, mode func(*c2s.Config)) {
	s := xmpptest.StartServer(t, mode)
	s.AddUser(t, "alice@localhost", "wonderland")
	old := s.Login(t, "alice", "wonderland", "phone")
	s.Login(t, "alice", "wonderland", "phone")
	if cond := old.StreamError(); cond != "conflict" {
		t.Fatalf("old session got %q, want conflict", cond)
	}
}

func TestServerGeneratedResource(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "wonderland")
	c := s.Login(t, "alice", "wonderland", "")
	if !strings.HasPrefix(c.JID, "alice@localhost/") || len(c.JID) <= len("alice@localhost/") {
		t.Fatalf("bound %q", c.JID)
	}
	// The legacy session element is accepted.
	c.Send("<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
	c.Expect("session result", func(e *xmlstream.Element) bool { return e.Attr("id") == "s1" && e.Attr("type") == "result" })
}

// modes runs f with idle sessions handed to the poller (the default on
// Linux) and with a goroutine kept per connection.
func modes(t *testing.T, f func(t *testing.T, mode func(*c2s.Config))) {
	t.Run("poller", func(t *testing.T) { f(t, func(*c2s.Config) {}) })
	t.Run("goroutine", func(t *testing.T) { f(t, func(c *c2s.Config) { c.DisablePoller = true }) })
}

func TestWhitespaceKeepaliveAndIdlePing(t *testing.T) { modes(t, testIdlePing) }

func testIdlePing(t *testing.T, mode func(*c2s.Config)) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) {
		mode(c)
		c.IdleTimeout = 1500 * time.Millisecond
		c.PingTimeout = 500 * time.Millisecond
	})
	s.AddUser(t, "alice@localhost", "wonderland")
	c := s.Login(t, "alice", "wonderland", "a")
	c.Send(" \n ")
	ping := c.Expect("idle ping", func(e *xmlstream.Element) bool {
		return e.Local == "iq" && e.Child("urn:xmpp:ping", "ping") != nil
	})
	c.Send("<iq type='result' id='" + ping.Attr("id") + "' to='localhost'/>")
	ping2 := c.Expect("second idle ping", func(e *xmlstream.Element) bool {
		return e.Local == "iq" && e.Child("urn:xmpp:ping", "ping") != nil
	})
	_ = ping2 // left unanswered
	if cond := c.StreamError(); cond != "connection-timeout" {
		t.Fatalf("got %q, want connection-timeout", cond)
	}
}

func TestShutdownSendsSystemShutdown(t *testing.T) { modes(t, testShutdown) }

func testShutdown(t *testing.T, mode func(*c2s.Config)) {
	s := xmpptest.StartServer(t, mode)
	s.AddUser(t, "alice@localhost", "wonderland")
	c := s.Login(t, "alice", "wonderland", "a")
	go s.Stop()
	if cond := c.StreamError(); cond != "system-shutdown" {
		t.Fatalf("got %q, want system-shutdown", cond)
	}
}

func TestParallelWrongPasswords(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "wonderland")
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", s.Addr)
			if err != nil {
				errs <- err.Error()
				return
			}
			conn.Close()
		}()
	}
	wg.Wait()
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := xmpptest.Dial(t, s.Addr, "localhost")
			c.Open()
			c.StartTLS(s.Roots)
			if cond := c.AuthPlain("alice", "wrong"); cond != "not-authorized" {
				errs <- cond
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	s.Login(t, "alice", "wonderland", "ok")
}

// A client that stops reading gets its stanzas later, all of them and in
// order, while the sender is never held up.
func TestBacklogKeepsOrder(t *testing.T) { modes(t, testBacklogKeepsOrder) }

func testBacklogKeepsOrder(t *testing.T, mode func(*c2s.Config)) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) { mode(c); c.MaxQueuedBytes = 64 << 20 })
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	a := s.Login(t, "alice", "wonderland", "a")
	b := s.Login(t, "bob", "builder", "b")
	body := strings.Repeat("x", 8000)
	const n = 1000 // 8 MB: more than the socket buffers hold
	for i := 0; i < n; i++ {
		a.Send(fmt.Sprintf("<message to='bob@localhost/b' id='m%d'><body>%s</body></message>", i, body))
	}
	// Alice is still served while bob reads nothing.
	a.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Expect("ping result", func(e *xmlstream.Element) bool { return e.Attr("id") == "p1" })
	for i := 0; i < n; i++ {
		m := b.Expect("message", func(e *xmlstream.Element) bool { return e.Local == "message" })
		if m.Attr("id") != fmt.Sprintf("m%d", i) {
			t.Fatalf("got %s, want m%d", m.Attr("id"), i)
		}
	}
}

// A client whose unread output passes MaxQueuedBytes is disconnected.
func TestBacklogLimitClosesSlowReader(t *testing.T) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) { c.MaxQueuedBytes = 256 << 10 })
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	a := s.Login(t, "alice", "wonderland", "a")
	s.Login(t, "bob", "builder", "b")
	body := strings.Repeat("x", 8000)
	for i := 0; i < 1000 && s.Edge.ConnCount() == 2; i++ {
		a.Send(fmt.Sprintf("<message to='bob@localhost/b' id='m%d'><body>%s</body></message>", i, body))
		if i%50 == 49 {
			a.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
			a.Expect("ping", func(e *xmlstream.Element) bool { return e.Attr("id") == "p" })
		}
	}
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if n := s.Edge.ConnCount(); n != 1 {
			return fmt.Errorf("%d connections", n)
		}
		return nil
	})
	a.Send("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Expect("ping", func(e *xmlstream.Element) bool { return e.Attr("id") == "p2" })
}

func TestClientStateIndication(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	a := s.Login(t, "alice", "wonderland", "a")
	b := s.Login(t, "bob", "builder", "b")
	if b.Features.Child("urn:xmpp:csi:0", "csi") == nil {
		// Features of the last stream (after SASL) advertise CSI.
		t.Fatalf("no csi feature: %s", b.Features)
	}
	b.Send("<presence/>")
	b.Expect("own presence", func(e *xmlstream.Element) bool { return e.Local == "presence" })
	b.Send("<inactive xmlns='urn:xmpp:csi:0'/>")
	// The answer to a later ping tells the server has seen the state.
	b.Send("<iq type='get' id='bp'><ping xmlns='urn:xmpp:ping'/></iq>")
	b.Expect("ping", func(e *xmlstream.Element) bool { return e.Attr("id") == "bp" })
	// Held back: a directed presence and a chat state.
	a.Send("<presence to='bob@localhost/b'><show>away</show></presence>")
	a.Send("<message to='bob@localhost/b' type='chat' id='cs'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	a.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Expect("ping", func(e *xmlstream.Element) bool { return e.Attr("id") == "p" })
	// The server has handled both; bob must not have got them yet.
	if ev, err := b.Next(300 * time.Millisecond); err == nil {
		t.Fatalf("inactive client got %v %s", ev.Kind, ev.Elem)
	}
	// A message with a body goes at once, after what was held.
	a.Send("<message to='bob@localhost/b' type='chat' id='m1'><body>wake up</body></message>")
	var order []string
	for len(order) < 3 {
		el := b.Element()
		switch {
		case el.Local == "presence":
			order = append(order, "presence")
		case el.Attr("id") == "cs":
			order = append(order, "chatstate")
		case el.Attr("id") == "m1":
			order = append(order, "message")
		}
	}
	if strings.Join(order, ",") != "presence,chatstate,message" {
		t.Fatalf("order %v", order)
	}
	// Held presence is flushed when the client becomes active.
	a.Send("<presence to='bob@localhost/b'><show>xa</show></presence>")
	a.Send("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Expect("ping", func(e *xmlstream.Element) bool { return e.Attr("id") == "p2" })
	b.Send("<active xmlns='urn:xmpp:csi:0'/>")
	p := b.Expect("presence", func(e *xmlstream.Element) bool { return e.Local == "presence" })
	if p.Child(xmlstream.NSClient, "show").Text() != "xa" {
		t.Fatalf("got %s", p)
	}
}

// A client that fell behind once, and caught up, keeps its session: the
// bound on the writes that drained its backlog does not outlive them.
func TestCaughtUpClientOutlivesWriteTimeout(t *testing.T) {
	modes(t, func(t *testing.T, mode func(*c2s.Config)) {
		s := xmpptest.StartServer(t, func(c *c2s.Config) {
			mode(c)
			// Long enough that a reader starved of CPU on a loaded
			// machine still reads a chunk in time.
			c.WriteTimeout = 2 * time.Second
			c.MaxQueuedBytes = 64 << 20
		})
		s.AddUser(t, "alice@localhost", "wonderland")
		s.AddUser(t, "bob@localhost", "builder")
		a := s.Login(t, "alice", "wonderland", "a")
		b := s.Login(t, "bob", "builder", "b")
		body := strings.Repeat("x", 8000)
		const n = 1500 // 12 MB: more than the socket buffers hold
		// Bob starts reading a moment after alice starts sending, so
		// that his backlog fills, and then reads while she sends: a
		// client that did not read while the test sent 12 MB would
		// rightly be cut off by the write timeout on a slow machine.
		read := make(chan error, 1)
		go func() {
			time.Sleep(500 * time.Millisecond)
			for got := 0; got < n; {
				ev, err := b.Next(30 * time.Second)
				if err != nil {
					read <- fmt.Errorf("after %d messages: %w", got, err)
					return
				}
				if ev.Kind == xmlstream.EventElement && ev.Elem.Local == "message" {
					got++
				}
			}
			read <- nil
		}()
		for i := 0; i < n; i++ {
			a.Send(fmt.Sprintf("<message to='bob@localhost/b' id='m%d'><body>%s</body></message>", i, body))
		}
		if err := <-read; err != nil {
			t.Fatalf("bob reading: %v", err)
		}
		time.Sleep(2500 * time.Millisecond) // past the write timeout
		a.Send("<message to='bob@localhost/b' id='late'><body>still there?</body></message>")
		b.Expect("the late message", func(e *xmlstream.Element) bool { return e.Attr("id") == "late" })
	})
}

// TestStopRightAfterStart: a server stopped before its listeners'
// goroutines have started the poller stops cleanly (no race on the
// poller, none started after the stop).
func TestStopRightAfterStart(t *testing.T) {
	for i := range 20 {
		t.Run(fmt.Sprint(i), func(t *testing.T) { xmpptest.StartServer(t, nil) })
	}
}
