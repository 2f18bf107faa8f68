package c2s_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// wsLogin opens an XMPP WebSocket session and authenticates with mech.
func wsLogin(t *testing.T, s *xmpptest.Server, url, user, pass, mech, res string) (*xmpptest.Client, *xmpptest.WSConn) {
	t.Helper()
	ws, st, err := xmpptest.DialWebSocket(url, s.Roots, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := xmpptest.NewWebSocketClient(t, ws, st, "localhost")
	c.Open()
	if c.Features.Child("urn:ietf:params:xml:ns:xmpp-tls", "starttls") != nil {
		t.Fatalf("STARTTLS offered on a WebSocket: %s", c.Features)
	}
	if cond := c.AuthSCRAM(mech, user, pass, "tls-exporter"); cond != "" {
		t.Fatalf("%s: %s", mech, cond)
	}
	if res != "" {
		c.Bind(res)
	}
	return c, ws
}

func modesWS(t *testing.T, f func(*testing.T, func(*c2s.Config))) {
	t.Run("polled", func(t *testing.T) { f(t, nil) })
	t.Run("goroutine", func(t *testing.T) { f(t, func(c *c2s.Config) { c.DisablePoller = true }) })
}

// A WebSocket session is a c2s session: SCRAM-PLUS with tls-exporter over
// wss, SCRAM over ws from loopback, messages to and from a TCP session.
func TestWebSocketLoginAndMessage(t *testing.T) { modesWS(t, testWebSocketLoginAndMessage) }

func testWebSocketLoginAndMessage(t *testing.T, mode func(*c2s.Config)) {
	s := xmpptest.StartServer(t, mode)
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	b := s.Login(t, "bob", "builder", "tcp")
	for _, tc := range []struct{ name, url, mech string }{
		{"wss", s.WSURL, "SCRAM-SHA-256-PLUS"},
		{"ws", s.WSPlainURL, "SCRAM-SHA-256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := wsLogin(t, s, tc.url, "alice", "wonderland", tc.mech, "web")
			if a.JID != "alice@localhost/web" {
				t.Fatalf("bound %q", a.JID)
			}
			a.Send("<message to='bob@localhost/tcp' type='chat' id='w1'><body>from the web</body></message>")
			m := b.Expect("message from the web", func(e *xmlstream.Element) bool { return e.Attr("id") == "w1" })
			if m.Attr("from") != "alice@localhost/web" || m.Child(xmlstream.NSClient, "body").Text() != "from the web" {
				t.Fatalf("bob got %s", m)
			}
			b.Send("<message to='alice@localhost/web' type='chat' id='t1'><body>from &lt;tcp&gt;</body></message>")
			m = a.Expect("message from tcp", func(e *xmlstream.Element) bool { return e.Attr("id") == "t1" })
			if m.Space != xmlstream.NSClient || m.Child(xmlstream.NSClient, "body").Text() != "from <tcp>" {
				t.Fatalf("alice got %s", m)
			}
			ping(a, "p1")
			// <close/> is answered with <close/> and a normal closure.
			a.Send("</stream:stream>")
			if ev, err := a.Next(5 * time.Second); err != nil || ev.Kind != xmlstream.EventStreamEnd {
				t.Fatalf("after close: %v %v", ev.Kind, err)
			}
			_, _ = a.Next(5 * time.Second)
			if ws := a.Conn().(*xmpptest.WSConn); ws.Closed != 1000 {
				t.Fatalf("close frame %d, want 1000", ws.Closed)
			}
		})
	}
}

// Every server message is one element, fully qualified (RFC 7395 §3.3.3).
func TestWebSocketFraming(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	ws, _, err := xmpptest.DialWebSocket(s.WSURL, s.Roots, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Write([]byte("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>")); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	op, open, err := ws.ReadFrame()
	if err != nil || op != 1 || !strings.HasPrefix(string(open), "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'") || !strings.Contains(string(open), "from='localhost'") {
		t.Fatalf("open: %d %q %v", op, open, err)
	}
	_, feat, err := ws.ReadFrame()
	if err != nil || !strings.HasPrefix(string(feat), "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>") {
		t.Fatalf("features: %q %v", feat, err)
	}
	if err := ws.WriteFrame(0x9, true, true, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if op, p, err := ws.ReadFrame(); err != nil || op != 0xA || string(p) != "hi" {
		t.Fatalf("pong: %d %q %v", op, p, err)
	}
	// A message split over frames is one message.
	_ = ws.WriteFrame(0x1, false, true, []byte("<iq xmlns='jabber:client' type='get' id='x'>"))
	_ = ws.WriteFrame(0x0, true, true, []byte("<ping xmlns='urn:xmpp:ping'/></iq>"))
	_, p, err := ws.ReadFrame()
	if err != nil || !strings.Contains(string(p), "stream:error") || !strings.Contains(string(p), "xmlns:stream=") {
		t.Fatalf("want a stream error before authentication, got %q %v", p, err)
	}
}

// Bad input ends the stream with a stream error, <close/> and a close
// frame with the matching code; some is refused at the upgrade already.
func TestWebSocketBadInput(t *testing.T) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) { c.Limits.MaxStanzaBytes = 4096 })
	big := "<message xmlns='jabber:client'><body>" + strings.Repeat("x", 5000) + "</body></message>"
	for _, tc := range []struct {
		name      string
		op        byte
		masked    bool
		payload   string
		condition string
		code      uint16
	}{
		{"oversized", 0x1, true, big, "policy-violation", 1009},
		{"binary", 0x2, true, "<presence/>", "unsupported-encoding", 1003},
		{"unmasked", 0x1, false, "<presence/>", "bad-format", 1002},
		{"bad framing namespace", 0x1, true, "<open xmlns='jabber:client' to='localhost'/>", "invalid-namespace", 1008},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws, _, err := xmpptest.DialWebSocket(s.WSURL, s.Roots, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := xmpptest.NewWebSocketClient(t, ws, nil, "localhost")
			c.Open()
			if err := ws.WriteFrame(tc.op, true, tc.masked, []byte(tc.payload)); err != nil {
				t.Fatal(err)
			}
			if cond := c.StreamError(); cond != tc.condition {
				t.Fatalf("stream error %q, want %q", cond, tc.condition)
			}
			for ws.Closed == 0 {
				if _, err := c.Next(5 * time.Second); err != nil {
					break
				}
			}
			if ws.Closed != tc.code {
				t.Fatalf("close code %d, want %d", ws.Closed, tc.code)
			}
		})
	}
	for _, tc := range []struct {
		name string
		url  string
		hdr  http.Header
		want string
	}{
		{"origin", s.WSURL, http.Header{"Origin": {"https://evil.example"}}, "403 origin https://evil.example is not allowed"},
		{"subprotocol", s.WSURL, http.Header{"Sec-WebSocket-Protocol": {"chat"}}, "400 the WebSocket subprotocol xmpp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := xmpptest.DialWebSocket(tc.url, s.Roots, tc.hdr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, _, err := xmpptest.DialWebSocket(s.WSURL, s.Roots, http.Header{"Origin": {"https://allowed.example"}}); err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
}

// A WebSocket session with Stream Management survives its socket: the
// client resumes it on a new WebSocket and gets what was sent meanwhile.
func TestWebSocketResume(t *testing.T) { modesWS(t, testWebSocketResume) }

func testWebSocketResume(t *testing.T, mode func(*c2s.Config)) {
	s := xmpptest.StartServer(t, mode)
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	b := s.Login(t, "bob", "builder", "b")
	a, ws := wsLogin(t, s, s.WSURL, "alice", "wonderland", "SCRAM-SHA-256-PLUS", "web")
	id := a.EnableSM(true).Attr("id")
	send(b, "alice@localhost/web", "m1")
	a.Expect("m1", func(e *xmlstream.Element) bool { return e.Attr("id") == "m1" })
	handled := a.Handled
	ws.Conn.Close() // the network goes, no <close/>, no close frame
	send(b, "alice@localhost/web", "m2", "m3")
	ping(b, "bp1")

	a2, _ := wsLogin(t, s, s.WSURL, "alice", "wonderland", "SCRAM-SHA-256-PLUS", "")
	if r := a2.Resume(id, handled); r.Local != "resumed" {
		t.Fatalf("got %s", r)
	}
	if got := msgIDs(a2, "ap1"); strings.Join(got, ",") != "m2,m3" {
		t.Fatalf("after resume got %v", got)
	}
	// And across transports: the same session resumed over TCP.
	ws2 := a2.Conn()
	h := a2.Handled
	ws2.(*xmpptest.WSConn).Conn.Close()
	send(b, "alice@localhost/web", "m4")
	ping(b, "bp2")
	a3 := s.Authenticate(t, "alice", "wonderland")
	if r := a3.Resume(id, h); r.Local != "resumed" {
		t.Fatalf("tcp resume: %s", r)
	}
	if got := msgIDs(a3, "ap2"); strings.Join(got, ",") != "m4" {
		t.Fatalf("after tcp resume got %v", got)
	}
}

// SASL2 with Bind 2 and a FAST token over WebSocket, the token then used
// on a second WebSocket; and CSI holds presence for an inactive web
// client as for a TCP one.
func TestWebSocketSASL2FASTAndCSI(t *testing.T) {
	s := startSASL2(t, nil)
	open := func() *xmpptest.Client {
		ws, st, err := xmpptest.DialWebSocket(s.WSURL, s.Roots, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := xmpptest.NewWebSocketClient(t, ws, st, "localhost")
		c.Open()
		return c
	}
	c := open()
	r := c.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256-PLUS", CBType: "tls-exporter", User: "alice", Password: alicePW, Agent: phoneID,
		Inline: "<bind xmlns='urn:xmpp:bind:0'><tag>web</tag></bind>" + requestToken})
	tok := r.Final.Child(xmpptest.NSFAST, "token")
	if r.Condition() != "" || tok == nil {
		t.Fatalf("sasl2 over websocket: %s", r.Final)
	}
	c.Close()
	c2 := open()
	if el := c2.AuthFAST("HT-SHA-256-NONE", "alice", tok.Attr("token"), phoneID, 1, "", "<bind xmlns='urn:xmpp:bind:0'><tag>web</tag></bind>", nil); el.Local != "success" {
		t.Fatalf("fast over websocket: %s", el)
	}
	c2.Send("<inactive xmlns='urn:xmpp:csi:0'/>")
	ping(c2, "after-inactive") // the server has read <inactive/> once this is answered
	b := s.Login(t, "bob", "builder", "b")
	// Held while inactive, a newer presence of the same sender replaces an
	// older one; the message, which cannot wait, sends what was held first.
	b.Send("<presence to='" + c2.JID + "'><status>one</status></presence>")
	b.Send("<presence to='" + c2.JID + "'><status>two</status></presence>")
	b.Send("<message to='" + c2.JID + "' type='chat' id='csi1'><body>now</body></message>")
	p := c2.Expect("held presence", func(e *xmlstream.Element) bool { return e.Local == "message" || e.Local == "presence" })
	if p.Local != "presence" || p.Child(xmlstream.NSClient, "status").Text() != "two" {
		t.Fatalf("inactive web client got %s first, want the second presence only", p)
	}
	if m := c2.Element(); m.Attr("id") != "csi1" {
		t.Fatalf("then %s", m)
	}
}

// An idle WebSocket session is pinged like a TCP one and closed with
// connection-timeout when it does not answer; a server shutdown ends
// WebSocket sessions with system-shutdown, <close/> and a close frame.
func TestWebSocketIdlePingAndShutdown(t *testing.T) { modesWS(t, testWebSocketIdlePingAndShutdown) }

func testWebSocketIdlePingAndShutdown(t *testing.T, mode func(*c2s.Config)) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) {
		if mode != nil {
			mode(c)
		}
		c.IdleTimeout = 1500 * time.Millisecond
		c.PingTimeout = 500 * time.Millisecond
	})
	s.AddUser(t, "alice@localhost", "wonderland")
	c, _ := wsLogin(t, s, s.WSURL, "alice", "wonderland", "SCRAM-SHA-256-PLUS", "web")
	ping := c.Expect("idle ping", func(e *xmlstream.Element) bool {
		return e.Local == "iq" && e.Child("urn:xmpp:ping", "ping") != nil
	})
	c.Send("<iq xmlns='jabber:client' type='result' id='" + ping.Attr("id") + "' to='localhost'/>")
	c.Expect("second idle ping", func(e *xmlstream.Element) bool {
		return e.Local == "iq" && e.Child("urn:xmpp:ping", "ping") != nil
	})
	if cond := c.StreamError(); cond != "connection-timeout" {
		t.Fatalf("got %q, want connection-timeout", cond)
	}

	d, ws := wsLogin(t, s, s.WSURL, "alice", "wonderland", "SCRAM-SHA-256-PLUS", "other")
	go s.Stop()
	if cond := d.StreamError(); cond != "system-shutdown" {
		t.Fatalf("got %q, want system-shutdown", cond)
	}
	for ws.Closed == 0 {
		if _, err := d.Next(5 * time.Second); err != nil {
			break
		}
	}
	if ws.Closed != 1000 {
		t.Fatalf("close frame %d, want 1000", ws.Closed)
	}
}
