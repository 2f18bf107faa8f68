package c2s_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

const nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

func failedCondition(el *xmlstream.Element) string {
	if el.Local != "failed" {
		return "(" + el.Local + ")"
	}
	for _, ch := range el.Children() {
		if ch.Space == nsStanzas {
			return ch.Local
		}
	}
	return ""
}

// ping sends an IQ ping and waits for its result: once it arrives, the
// server has handled everything c sent before.
func ping(c *xmpptest.Client, id string) {
	c.Send("<iq type='get' id='" + id + "'><ping xmlns='urn:xmpp:ping'/></iq>")
	c.Expect("ping "+id, func(e *xmlstream.Element) bool { return e.Attr("id") == id && e.Local == "iq" })
}

func send(c *xmpptest.Client, to string, ids ...string) {
	for _, id := range ids {
		c.Send("<message to='" + to + "' type='chat' id='" + id + "'><body>" + id + "</body></message>")
	}
}

func TestSMEnable(t *testing.T) { modes(t, testSMEnable) }

func testSMEnable(t *testing.T, mode func(*c2s.Config)) {
	s := xmpptest.StartServer(t, mode)
	s.AddUser(t, "alice@localhost", "wonderland")
	c := s.Authenticate(t, "alice", "wonderland")
	if c.Features.Child(xmpptest.NSSM, "sm") == nil {
		t.Fatalf("no sm feature: %s", c.Features)
	}
	if got := failedCondition(c.EnableSM(true)); got != "unexpected-request" {
		t.Fatalf("enable before bind: %q", got)
	}
	c.Bind("a")
	en := c.EnableSM(true)
	if en.Local != "enabled" || en.Attr("resume") != "true" || len(en.Attr("id")) < 16 || en.Attr("max") != "300" {
		t.Fatalf("got %s", en)
	}
	if got := failedCondition(c.EnableSM(true)); got != "unexpected-request" {
		t.Fatalf("second enable: %q", got)
	}
	for i := range 3 {
		ping(c, "p"+strconv.Itoa(i))
	}
	// Nonzas are not counted; the three pings are.
	if h := c.RequestAck(); h != 3 {
		t.Fatalf("h=%d, want 3", h)
	}
	if c.Handled != 3 {
		t.Fatalf("client counted %d results", c.Handled)
	}

	// Without resume: counting, but no resumption id.
	d := s.Login(t, "alice", "wonderland", "b")
	en = d.EnableSM(false)
	if en.Local != "enabled" || en.HasAttr("id") || en.HasAttr("resume") {
		t.Fatalf("got %s", en)
	}
}

// The server asks for acknowledgements as stanzas pile up; the client's
// count must match the server's, which an h one too high proves.
func TestSMAcksAndCountTooHigh(t *testing.T) { modes(t, testSMAcks) }

func testSMAcks(t *testing.T, mode func(*c2s.Config)) {
	s := xmpptest.StartServer(t, mode)
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	a := s.Login(t, "alice", "wonderland", "a")
	a.EnableSM(false)
	b := s.Login(t, "bob", "builder", "b")
	send(b, "alice@localhost/a", "m1", "m2", "m3", "m4", "m5", "m6")
	a.Expect("ack request", func(e *xmlstream.Element) bool { return e.Space == xmpptest.NSSM && e.Local == "r" })
	a.Expect("m6", func(e *xmlstream.Element) bool { return e.Attr("id") == "m6" })
	if a.Handled != 6 {
		t.Fatalf("handled %d", a.Handled)
	}
	a.Ack()
	ping(a, "p1")
	a.Send("<a xmlns='urn:xmpp:sm:3' h='" + strconv.Itoa(int(a.Handled)+1) + "'/>")
	for {
		ev, err := a.Next(5 * time.Second)
		if err != nil || ev.Kind == xmlstream.EventStreamEnd {
			t.Fatalf("no stream error: %v", err)
		}
		if ev.Kind != xmlstream.EventElement || ev.Elem.Local != "error" {
			continue
		}
		if ev.Elem.Child("urn:ietf:params:xml:ns:xmpp-streams", "undefined-condition") == nil {
			t.Fatalf("got %s", ev.Elem)
		}
		hc := ev.Elem.Child(xmpptest.NSSM, "handled-count-too-high")
		if hc == nil || hc.Attr("h") != "8" || hc.Attr("send-count") != "7" {
			t.Fatalf("got %s", ev.Elem)
		}
		return
	}
}

// msgIDs reads until the ping id arrives and returns the ids of the
// messages that came before it.
func msgIDs(c *xmpptest.Client, pingID string) []string {
	c.Send("<iq type='get' id='" + pingID + "'><ping xmlns='urn:xmpp:ping'/></iq>")
	var ids []string
	c.Expect("ping "+pingID, func(e *xmlstream.Element) bool {
		if e.Local == "message" {
			ids = append(ids, e.Attr("id"))
		}
		return e.Attr("id") == pingID
	})
	return ids
}

func TestSMResume(t *testing.T) { modes(t, testSMResume) }

func testSMResume(t *testing.T, mode func(*c2s.Config)) {
	s := xmpptest.StartServer(t, mode)
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	s.Befriend(t, "alice@localhost", "bob@localhost")
	b := s.Login(t, "bob", "builder", "b")
	b.Send("<presence/>")
	b.Expect("own presence", func(e *xmlstream.Element) bool { return e.Local == "presence" && e.Attr("from") == "bob@localhost/b" })

	a := s.Login(t, "alice", "wonderland", "phone")
	id := a.EnableSM(true).Attr("id")
	a.Send("<presence/>")
	a.Expect("own presence", func(e *xmlstream.Element) bool {
		return e.Local == "presence" && e.Attr("from") == "alice@localhost/phone"
	})
	b.Expect("alice online", func(e *xmlstream.Element) bool {
		return e.Local == "presence" && e.Attr("from") == "alice@localhost/phone"
	})
	send(b, "alice@localhost/phone", "m1", "m2")
	a.Expect("m2", func(e *xmlstream.Element) bool { return e.Attr("id") == "m2" })
	a.Ack()
	send(b, "alice@localhost/phone", "m3")
	a.Expect("m3", func(e *xmlstream.Element) bool { return e.Attr("id") == "m3" })
	// m3 is received but not acknowledged when the network goes.
	handled := a.Handled
	a.Kill()
	send(b, "alice@localhost/phone", "m4", "m5")
	b.Send("<message to='alice@localhost' type='chat' id='m6'><body>to the bare JID</body></message>")
	ping(b, "bp1")

	a2 := s.Authenticate(t, "alice", "wonderland")
	r := a2.Resume(id, handled)
	// Alice sent her presence and an ack, one stanza.
	if r.Local != "resumed" || r.Attr("previd") != id || r.Attr("h") != "1" {
		t.Fatalf("got %s", r)
	}
	send(b, "alice@localhost/phone", "m7")
	ping(b, "bp2")
	got := msgIDs(a2, "ap1")
	if strings.Join(got, ",") != "m4,m5,m6,m7" {
		t.Fatalf("after resume got %v", got)
	}
	if h := a2.RequestAck(); h != 2 {
		t.Fatalf("server handled %d, want 2 (presence, ping)", h)
	}
	a2.Ack()
	// Bob never saw alice go away.
	b.Send("<iq type='get' id='bp3'><ping xmlns='urn:xmpp:ping'/></iq>")
	b.Expect("ping", func(e *xmlstream.Element) bool {
		if e.Local == "presence" && e.Attr("type") == "unavailable" {
			t.Fatalf("bob saw %s", e)
		}
		return e.Attr("id") == "bp3"
	})
	// The session goes on with its full JID; a clean close ends it.
	a2.Send("<iq type='get' id='j' to='alice@localhost/phone'><ping xmlns='urn:xmpp:ping'/></iq>")
	a2.Expect("own ping", func(e *xmlstream.Element) bool { return e.Attr("id") == "j" })
	a2.Close()
	b.Expect("alice offline", func(e *xmlstream.Element) bool {
		return e.Local == "presence" && e.Attr("type") == "unavailable" && e.Attr("from") == "alice@localhost/phone"
	})
}

// A resumption while the old connection still looks alive takes the
// session over from it.
func TestSMResumeTakesOver(t *testing.T) { modes(t, testSMResumeTakesOver) }

func testSMResumeTakesOver(t *testing.T, mode func(*c2s.Config)) {
	s := xmpptest.StartServer(t, mode)
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	b := s.Login(t, "bob", "builder", "b")
	a := s.Login(t, "alice", "wonderland", "phone")
	id := a.EnableSM(true).Attr("id")
	send(b, "alice@localhost/phone", "m1", "m2")
	a.Expect("m1", func(e *xmlstream.Element) bool { return e.Attr("id") == "m1" })
	a2 := s.Authenticate(t, "alice", "wonderland")
	if r := a2.Resume(id, a.Handled); r.Local != "resumed" {
		t.Fatalf("got %s", r)
	}
	if cond := a.StreamError(); cond != "conflict" {
		t.Fatalf("old connection got %q", cond)
	}
	if got := msgIDs(a2, "p"); strings.Join(got, ",") != "m2" {
		t.Fatalf("got %v", got)
	}
}

func TestSMResumeUnknown(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	b := s.Login(t, "bob", "builder", "b")
	bobID := b.EnableSM(true).Attr("id")

	a := s.Authenticate(t, "alice", "wonderland")
	for _, id := range []string{"nonsense", bobID} {
		if got := failedCondition(a.Resume(id, 0)); got != "item-not-found" {
			t.Fatalf("resume %s: %q", id, got)
		}
	}
	if got := a.Bind("a"); got != "alice@localhost/a" {
		t.Fatalf("bound %q", got)
	}
	ping(a, "p")
	// Bob's session was not disturbed.
	ping(b, "p")
}

// offlineLogin logs in afresh with initial presence and returns the ids of
// the messages that arrive.
func offlineLogin(t *testing.T, s *xmpptest.Server, resource string) []string {
	c := s.Login(t, "alice", "wonderland", resource)
	c.Send("<presence/>")
	return msgIDs(c, "op")
}

// A bogus h on resumption fails it; the unacknowledged messages are kept
// for the user once, in offline storage.
func TestSMResumeCountTooHigh(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	b := s.Login(t, "bob", "builder", "b")
	a := s.Login(t, "alice", "wonderland", "phone")
	id := a.EnableSM(true).Attr("id")
	send(b, "alice@localhost/phone", "m1", "m2")
	a.Expect("m2", func(e *xmlstream.Element) bool { return e.Attr("id") == "m2" })
	a.Kill()
	// Once the server has seen the connection go, the session is detached.
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if n := s.Edge.ConnCount(); n != 1 {
			return fmt.Errorf("%d connections", n)
		}
		return nil
	})

	a2 := s.Authenticate(t, "alice", "wonderland")
	f := a2.Resume(id, 10)
	if failedCondition(f) != "undefined-condition" {
		t.Fatalf("got %s", f)
	}
	if hc := f.Child(xmpptest.NSSM, "handled-count-too-high"); hc == nil || hc.Attr("h") != "10" || hc.Attr("send-count") != "2" {
		t.Fatalf("got %s", f)
	}
	if got := failedCondition(a2.Resume(id, 2)); got != "item-not-found" {
		t.Fatalf("second resume: %q", got)
	}
	a2.Bind("phone")
	a2.Send("<presence/>")
	if got := msgIDs(a2, "op"); strings.Join(got, ",") != "m1,m2" {
		t.Fatalf("got %v", got)
	}
	if got := offlineLogin(t, s, "again"); len(got) != 0 {
		t.Fatalf("delivered twice: %v", got)
	}
}

func TestSMResumeTimeout(t *testing.T) { modes(t, testSMResumeTimeout) }

func testSMResumeTimeout(t *testing.T, mode func(*c2s.Config)) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) { mode(c); c.ResumeTimeout = 300 * time.Millisecond })
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	s.Befriend(t, "alice@localhost", "bob@localhost")
	b := s.Login(t, "bob", "builder", "b")
	b.Send("<presence/>")
	b.Expect("own presence", func(e *xmlstream.Element) bool { return e.Local == "presence" && e.Attr("from") == "bob@localhost/b" })

	a := s.Login(t, "alice", "wonderland", "phone")
	id := a.EnableSM(true).Attr("id")
	a.Send("<presence/>")
	b.Expect("alice online", func(e *xmlstream.Element) bool {
		return e.Local == "presence" && e.Attr("from") == "alice@localhost/phone"
	})
	send(b, "alice@localhost/phone", "m1", "m2")
	a.Expect("m1", func(e *xmlstream.Element) bool { return e.Attr("id") == "m1" })
	a.Kill()
	send(b, "alice@localhost/phone", "m3")
	b.Expect("alice offline", func(e *xmlstream.Element) bool {
		return e.Local == "presence" && e.Attr("type") == "unavailable" && e.Attr("from") == "alice@localhost/phone"
	})
	// Unbound before the messages were re-routed: they are all stored.
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		ms, err := s.Store.OfflineMessages(context.Background(), "alice@localhost")
		if err != nil || len(ms) != 3 {
			return fmt.Errorf("%d offline messages, %v", len(ms), err)
		}
		return nil
	})
	a2 := s.Authenticate(t, "alice", "wonderland")
	if got := failedCondition(a2.Resume(id, 1)); got != "item-not-found" {
		t.Fatalf("resume after expiry: %q", got)
	}
	if got := offlineLogin(t, s, "desk"); strings.Join(got, ",") != "m1,m2,m3" {
		t.Fatalf("got %v", got)
	}
	if got := offlineLogin(t, s, "desk2"); len(got) != 0 {
		t.Fatalf("delivered twice: %v", got)
	}
}

// Shutdown ends detached sessions: their messages go to offline storage.
func TestSMShutdownStoresUnacked(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	b := s.Login(t, "bob", "builder", "b")
	a := s.Login(t, "alice", "wonderland", "phone")
	a.EnableSM(true)
	a.Kill()
	send(b, "alice@localhost/phone", "m1")
	ping(b, "p")
	s.Stop()
	ms, err := s.Store.OfflineMessages(context.Background(), "alice@localhost")
	if err != nil || len(ms) != 1 || !strings.Contains(string(ms[0].Stanza), "m1") {
		t.Fatalf("offline %v %v", ms, err)
	}
}
