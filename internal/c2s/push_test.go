package c2s_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// appServer stands for a XEP-0357 app server: a component that records the
// notifications it gets.
type appServer struct{ got chan *xmlstream.Element }

func (a *appServer) HandleStanza(_ context.Context, s router.Stanza) { a.got <- s.El }

// next returns the next notification, failing after a while.
func (a *appServer) next(t *testing.T) *xmlstream.Element {
	t.Helper()
	select {
	case el := <-a.got:
		return el
	case <-time.After(5 * time.Second):
		t.Fatal("no push notification")
		return nil
	}
}

// none checks that no notification is waiting; call it after a barrier.
func (a *appServer) none(t *testing.T) {
	t.Helper()
	select {
	case el := <-a.got:
		t.Fatalf("unexpected notification %s", el)
	default:
	}
}

func startPush(t *testing.T) (*xmpptest.Server, *appServer) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) { c.ResumeTimeout = 300 * time.Millisecond })
	app := &appServer{got: make(chan *xmlstream.Element, 16)}
	if err := s.Router.Register("push.localhost", app); err != nil {
		t.Fatal(err)
	}
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	return s, app
}

func checkNotification(t *testing.T, el *xmlstream.Element, node, sender string) {
	t.Helper()
	const ps = "http://jabber.org/protocol/pubsub"
	pub := el.Child(ps, "pubsub")
	if el.Local != "iq" || el.Attr("type") != "set" || el.Attr("from") != "alice@localhost" || pub == nil {
		t.Fatalf("notification %s", el)
	}
	p := pub.Child(ps, "publish")
	if p == nil || p.Attr("node") != node {
		t.Fatalf("notification %s: wrong node", el)
	}
	s := el.String()
	if !strings.Contains(s, "urn:xmpp:push:summary") || !strings.Contains(s, sender) || strings.Contains(s, "<body") {
		t.Fatalf("notification %s: want a summary naming %s and no body", el, sender)
	}
}

// archived counts, in alice's archive, the messages with each id.
func archived(t *testing.T, c *xmpptest.Client) map[string]int {
	t.Helper()
	c.Send("<iq type='set' id='mq'><query xmlns='urn:xmpp:mam:2' queryid='q'/></iq>")
	n := map[string]int{}
	for {
		el := c.Expect("archive", func(e *xmlstream.Element) bool {
			return e.Attr("id") == "mq" || e.Child("urn:xmpp:mam:2", "result") != nil
		})
		if el.Local == "iq" {
			if el.Attr("type") != "result" {
				t.Fatalf("mam %s", el)
			}
			return n
		}
		fw := el.Child("urn:xmpp:mam:2", "result").Child("urn:xmpp:forward:0", "forwarded")
		n[fw.Child(xmlstream.NSClient, "message").Attr("id")]++
	}
}

// A phone enables push and loses its connection: messages that reach its
// detached session are announced to the app server; when the session
// expires they go to offline storage (announced again, as offline
// messages are) and stay in the archive once.
func TestPushDetachedThenExpired(t *testing.T) {
	s, app := startPush(t)
	b := s.Login(t, "bob", "builder", "b")
	a := s.Login(t, "alice", "wonderland", "phone")
	a.EnableSM(true)
	a.Send("<presence/>")
	a.Send("<iq type='set' id='e1'><enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='n1'/></iq>")
	if r := a.Expect("enable", func(e *xmlstream.Element) bool { return e.Attr("id") == "e1" }); r.Attr("type") != "result" {
		t.Fatalf("enable: %s", r)
	}
	// Attached: no notification.
	send(b, "alice@localhost/phone", "m0")
	a.Expect("m0", func(e *xmlstream.Element) bool { return e.Attr("id") == "m0" })
	ping(b, "p0")
	app.none(t)

	a.Kill()
	// The server learns of the lost connection on its own time: the first
	// message it gives to the detached session is announced.
	var n *xmlstream.Element
	for i := 0; n == nil && i < 50; i++ {
		send(b, "alice@localhost/phone", "d"+string(rune('a'+i%26)))
		ping(b, "pd")
		select {
		case n = <-app.got:
		case <-time.After(100 * time.Millisecond):
		}
	}
	if n == nil {
		t.Fatal("no notification for the detached session")
	}
	checkNotification(t, n, "n1", "bob@localhost/b")

	// The session expires: its messages go to offline storage, and the
	// app server hears of them as offline messages.
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if len(app.got) == 0 {
			return errNoPush
		}
		return nil
	})
	for len(app.got) > 0 {
		checkNotification(t, <-app.got, "n1", "bob@localhost/b")
	}
	a2 := s.Login(t, "alice", "wonderland", "desk")
	a2.Send("<presence/>")
	got := msgIDs(a2, "op")
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("offline message %s twice: %v", id, got)
		}
		seen[id] = true
	}
	// The client acknowledged nothing: m0 too comes back.
	if len(got) < 2 || !seen["m0"] {
		t.Fatalf("offline messages %v: want every unacknowledged one", got)
	}
	for id, c := range archived(t, a2) {
		if c != 1 {
			t.Fatalf("message %s archived %d times", id, c)
		}
	}
}

var errNoPush = errors.New("no notification yet")

// Messages for a user with no session go to offline storage and are
// announced to every registration; an app server's error disables its
// registration, an answer from anybody else does not; disable removes one.
func TestPushOfflineAndErrors(t *testing.T) {
	s, app := startPush(t)
	a := s.Login(t, "alice", "wonderland", "phone")
	for _, bad := range []string{
		"<iq type='set' id='x'><enable xmlns='urn:xmpp:push:0' node='n'/></iq>",
		"<iq type='set' id='x'><enable xmlns='urn:xmpp:push:0' jid='@@' node='n'/></iq>",
		"<iq type='get' id='x'><enable xmlns='urn:xmpp:push:0' jid='push.localhost'/></iq>",
		"<iq type='set' id='x'><enable xmlns='urn:xmpp:push:0' jid='push.localhost'><x xmlns='jabber:x:data' type='form'/></enable></iq>",
	} {
		a.Send(bad)
		if r := a.Expect("bad enable", func(e *xmlstream.Element) bool { return e.Attr("id") == "x" }); !strings.Contains(r.String(), "bad-request") {
			t.Fatalf("%s: got %s", bad, r)
		}
	}
	a.Send("<iq type='get' id='d' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if r := a.Expect("disco", func(e *xmlstream.Element) bool { return e.Attr("id") == "d" }); !strings.Contains(r.String(), "urn:xmpp:push:0") {
		t.Fatalf("push not announced on the account: %s", r)
	}
	opts := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>s3</value></field></x>"
	for _, node := range []string{"n1", "n2"} {
		a.Send("<iq type='set' id='e" + node + "'><enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='" + node + "'>" + opts + "</enable></iq>")
		a.Expect("enable", func(e *xmlstream.Element) bool { return e.Attr("id") == "e"+node && e.Attr("type") == "result" })
	}
	a.Close()

	b := s.Login(t, "bob", "builder", "b")
	send(b, "alice@localhost", "o1")
	ping(b, "p1")
	nodes := map[string]*xmlstream.Element{}
	for range 2 {
		n := app.next(t)
		nodes[n.Child("http://jabber.org/protocol/pubsub", "pubsub").Child("http://jabber.org/protocol/pubsub", "publish").Attr("node")] = n
		if !strings.Contains(n.String(), "s3") {
			t.Fatalf("publish-options missing: %s", n)
		}
	}
	if nodes["n1"] == nil || nodes["n2"] == nil {
		t.Fatalf("notified %v", nodes)
	}
	// A chat state alone is not worth a notification.
	b.Send("<message to='alice@localhost' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	ping(b, "p2")
	app.none(t)

	// An error answer with n1's id from another address is not the answer.
	bare := jid.MustParse("alice@localhost")
	answer := func(from, id, body string) {
		f := jid.MustParse(from)
		el := xmlstream.NewElement(xmlstream.NSClient, "iq")
		el.SetAttr("type", "error")
		el.SetAttr("id", id)
		el.SetAttr("from", from)
		el.SetAttr("to", "alice@localhost")
		e := el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "error"))
		e.SetAttr("type", body)
		e.AddChild(xmlstream.NewElement("urn:ietf:params:xml:ns:xmpp-stanzas", "item-not-found"))
		s.Router.Route(context.Background(), router.Stanza{El: el, From: f, To: bare})
	}
	answer("mallory@localhost/x", nodes["n1"].Attr("id"), "cancel")
	answer("push.localhost", nodes["n2"].Attr("id"), "wait") // temporary: kept
	answer("push.localhost", nodes["n1"].Attr("id"), "cancel")
	send(b, "alice@localhost", "o2")
	ping(b, "p3")
	n := app.next(t)
	if got := n.Child("http://jabber.org/protocol/pubsub", "pubsub").Child("http://jabber.org/protocol/pubsub", "publish").Attr("node"); got != "n2" {
		t.Fatalf("notified %s after n1 was refused", got)
	}
	app.none(t)

	a = s.Login(t, "alice", "wonderland", "phone")
	a.Send("<iq type='set' id='dis'><disable xmlns='urn:xmpp:push:0' jid='push.localhost'/></iq>")
	a.Expect("disable", func(e *xmlstream.Element) bool { return e.Attr("id") == "dis" && e.Attr("type") == "result" })
	a.Close()
	send(b, "alice@localhost", "o3")
	ping(b, "p4")
	app.none(t)
}
