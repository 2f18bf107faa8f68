package sm_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

func isIQ(id string) func(*xmlstream.Element) bool {
	return func(e *xmlstream.Element) bool { return e.Local == "iq" && e.Attr("id") == id }
}

func isPresence(from, typ string) func(*xmlstream.Element) bool {
	return func(e *xmlstream.Element) bool {
		return e.Local == "presence" && e.Attr("from") == from && e.Attr("type") == typ
	}
}

func rosterPush(jid, sub, ask string) func(*xmlstream.Element) bool {
	return func(e *xmlstream.Element) bool {
		q := e.Child("jabber:iq:roster", "query")
		if e.Local != "iq" || e.Attr("type") != "set" || q == nil {
			return false
		}
		it := q.Child("jabber:iq:roster", "item")
		return it != nil && it.Attr("jid") == jid && it.Attr("subscription") == sub && it.Attr("ask") == ask
	}
}

func twoUsers(t *testing.T) (*xmpptest.Server, *xmpptest.Client, *xmpptest.Client) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	a := s.Login(t, "alice", "wonderland", "a")
	b := s.Login(t, "bob", "builder", "b")
	for _, c := range []*xmpptest.Client{a, b} {
		c.Send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>")
		c.Expect("roster", isIQ("r0"))
		c.Send("<presence/>")
		c.Expect("own presence", isPresence(c.JID, ""))
	}
	return s, a, b
}

func TestSubscriptionFlowAndPresence(t *testing.T) {
	_, a, b := twoUsers(t)
	a.Send("<presence to='bob@localhost' type='subscribe'/>")
	a.Expect("push ask", rosterPush("bob@localhost", "none", "subscribe"))
	b.Expect("subscribe request", isPresence("alice@localhost", "subscribe"))
	b.Send("<presence to='alice@localhost' type='subscribed'/>")
	b.Expect("push from", rosterPush("alice@localhost", "from", ""))
	a.Expect("push to", rosterPush("bob@localhost", "to", ""))
	a.Expect("subscribed", isPresence("bob@localhost", "subscribed"))
	a.Expect("bob's presence", isPresence("bob@localhost/b", ""))

	// Bob's later presence changes reach alice.
	b.Send("<presence><show>away</show></presence>")
	p := a.Expect("away", isPresence("bob@localhost/b", ""))
	if p.Child(xmlstream.NSClient, "show").Text() != "away" {
		t.Fatalf("got %s", p)
	}
	// Bob going offline is seen by alice.
	b.Close()
	a.Expect("unavailable", isPresence("bob@localhost/b", "unavailable"))

	// Alice's roster shows the subscription.
	a.Send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
	r := a.Expect("roster", isIQ("r1"))
	if !strings.Contains(r.String(), "subscription='to'") && !strings.Contains(r.String(), `subscription="to"`) {
		t.Fatalf("roster %s", r)
	}
}

func TestRosterSetPushGetRemove(t *testing.T) {
	_, a, _ := twoUsers(t)
	a.Send("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='Carol@LocalHost' name='Carol'><group>Friends</group></item></query></iq>")
	push := a.Expect("push", rosterPush("carol@localhost", "none", ""))
	it := push.Child("jabber:iq:roster", "query").Child("jabber:iq:roster", "item")
	if it.Attr("name") != "Carol" || it.Child("jabber:iq:roster", "group").Text() != "Friends" {
		t.Fatalf("push %s", push)
	}
	if push.Attr("from") != "" {
		t.Fatalf("push must not carry from: %s", push)
	}
	a.Expect("result", isIQ("s1"))
	a.Send("<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>")
	g := a.Expect("roster", isIQ("g1"))
	if n := len(g.Child("jabber:iq:roster", "query").Children()); n != 1 {
		t.Fatalf("roster has %d items: %s", n, g)
	}
	a.Send("<iq type='set' id='s2'><query xmlns='jabber:iq:roster'><item jid='carol@localhost' subscription='remove'/></query></iq>")
	a.Expect("remove push", rosterPush("carol@localhost", "remove", ""))
	a.Expect("result", isIQ("s2"))
	a.Send("<iq type='set' id='s3'><query xmlns='jabber:iq:roster'><item jid='carol@localhost' subscription='remove'/></query></iq>")
	if e := a.Expect("error", isIQ("s3")); e.Attr("type") != "error" || !strings.Contains(e.String(), "item-not-found") {
		t.Fatalf("got %s", e)
	}
	for _, bad := range []string{
		"<item jid='x@localhost'><group>g</group><group>g</group></item>",
		"<item jid='x@localhost'/><item jid='y@localhost'/>",
	} {
		a.Send("<iq type='set' id='bad'><query xmlns='jabber:iq:roster'>" + bad + "</query></iq>")
		if e := a.Expect("error", isIQ("bad")); e.Attr("type") != "error" || !strings.Contains(e.String(), "bad-request") {
			t.Fatalf("got %s", e)
		}
	}
}

func TestMessageRouting(t *testing.T) {
	s, a, b := twoUsers(t)
	// Bare JID: to the available resource.
	a.Send("<message to='bob@localhost' type='chat' id='m1'><body>hi</body><x xmlns='urn:example:unknown'><y a='1'>kept</y></x></message>")
	m := b.Expect("message", func(e *xmlstream.Element) bool { return e.Attr("id") == "m1" })
	if m.Attr("from") != a.JID || m.Child("urn:example:unknown", "x") == nil {
		t.Fatalf("got %s", m)
	}
	// Unknown full JID of an existing user: treated as bare.
	a.Send("<message to='bob@localhost/nowhere' type='chat' id='m2'><body>hi</body></message>")
	b.Expect("message", func(e *xmlstream.Element) bool { return e.Attr("id") == "m2" })
	// Unknown user: service-unavailable.
	a.Send("<message to='nobody@localhost' type='chat' id='m3'><body>hi</body></message>")
	e := a.Expect("error", func(e *xmlstream.Element) bool { return e.Attr("id") == "m3" })
	if e.Attr("type") != "error" || !strings.Contains(e.String(), "service-unavailable") || e.Attr("from") != "nobody@localhost" {
		t.Fatalf("got %s", e)
	}
	// Unknown domain: remote-server-not-found.
	a.Send("<message to='x@elsewhere.example' id='m4'><body>hi</body></message>")
	e = a.Expect("error", func(e *xmlstream.Element) bool { return e.Attr("id") == "m4" })
	if !strings.Contains(e.String(), "remote-server-not-found") {
		t.Fatalf("got %s", e)
	}
	// IQ to a full JID that is not connected.
	a.Send("<iq type='get' to='bob@localhost/gone' id='q1'><query xmlns='jabber:iq:version'/></iq>")
	e = a.Expect("error", isIQ("q1"))
	if !strings.Contains(e.String(), "service-unavailable") {
		t.Fatalf("got %s", e)
	}
	// IQ between full JIDs is delivered, and the answer comes back.
	a.Send("<iq type='get' to='" + b.JID + "' id='q2'><query xmlns='jabber:iq:version'/></iq>")
	q := b.Expect("iq", isIQ("q2"))
	b.Send("<iq type='result' to='" + q.Attr("from") + "' id='q2'/>")
	if r := a.Expect("result", isIQ("q2")); r.Attr("type") != "result" || r.Attr("from") != b.JID {
		t.Fatalf("got %s", r)
	}
	// Negative priority: no bare-JID delivery; the message waits in
	// offline storage for a resource that takes messages.
	b.Send("<presence><priority>-1</priority></presence>")
	// Its own broadcast tells that the server has taken the change.
	b.Expect("own presence", func(e *xmlstream.Element) bool {
		return e.Local == "presence" && e.Child(xmlstream.NSClient, "priority") != nil
	})
	a.Send("<message to='bob@localhost' type='chat' id='m5'><body>hi</body></message>")
	// The ping's answer tells that the message was stored before b2 exists.
	a.Send("<iq type='get' id='p5'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Expect("ping", isIQ("p5"))
	b2 := s.Login(t, "bob", "builder", "b2")
	b2.Send("<presence/>")
	m = b2.Expect("stored message", func(e *xmlstream.Element) bool { return e.Attr("id") == "m5" })
	if m.Child("urn:xmpp:delay", "delay") == nil {
		t.Fatalf("no delay: %s", m)
	}
}

func TestOfflineMessages(t *testing.T) {
	s := xmpptest.StartServerWith(t, xmpptest.Options{SM: func(c *sm.Config) { c.OfflineQuota = 2 }})
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	a := s.Login(t, "alice", "wonderland", "a")
	a.Send("<message to='bob@localhost' type='chat' id='o1'><body>first</body></message>")
	a.Send("<message to='bob@localhost' id='o2'><body>second</body><x xmlns='urn:example:kept'/></message>")
	a.Send("<message to='bob@localhost' type='chat' id='cs'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	a.Send("<message to='bob@localhost' type='headline' id='h'><body>news</body></message>")
	a.Send("<message to='bob@localhost' type='chat' id='o3'><body>third</body></message>")
	e := a.Expect("quota error", func(e *xmlstream.Element) bool { return e.Attr("id") == "o3" })
	if e.Attr("type") != "error" || !strings.Contains(e.String(), "resource-constraint") {
		t.Fatalf("over quota: %s", e)
	}
	b := s.Login(t, "bob", "builder", "b")
	// Nothing comes before the initial presence.
	b.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	if r := b.Element(); r.Attr("id") != "p" {
		t.Fatalf("before presence: %s", r)
	}
	b.Send("<presence/>")
	var got []string
	for len(got) < 2 {
		m := b.Expect("stored", func(e *xmlstream.Element) bool { return e.Local == "message" })
		d := m.Child("urn:xmpp:delay", "delay")
		if d == nil || d.Attr("from") != "localhost" || d.Attr("stamp") == "" || m.Attr("from") != "alice@localhost/a" {
			t.Fatalf("stored message: %s", m)
		}
		got = append(got, m.Attr("id"))
	}
	if strings.Join(got, ",") != "o1,o2" {
		t.Fatalf("got %v", got)
	}
	// Delivered once: a second resource gets nothing more.
	b2 := s.Login(t, "bob", "builder", "b2")
	b2.Send("<presence/>")
	b2.Send("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>")
	for {
		el := b2.Element()
		if el.Local == "message" {
			t.Fatalf("delivered twice: %s", el)
		}
		if el.Attr("id") == "p2" {
			break
		}
	}
	// A user that does not exist still gets service-unavailable.
	a.Send("<message to='ghost@localhost' type='chat' id='g'><body>x</body></message>")
	if e := a.Expect("error", func(e *xmlstream.Element) bool { return e.Attr("id") == "g" }); !strings.Contains(e.String(), "service-unavailable") {
		t.Fatalf("got %s", e)
	}
}

func TestServerIQs(t *testing.T) {
	_, a, _ := twoUsers(t)
	a.Send("<iq type='get' to='localhost' id='v'><query xmlns='jabber:iq:version'/></iq>")
	v := a.Expect("version", isIQ("v"))
	if !strings.Contains(v.String(), "Ambrosia") {
		t.Fatalf("got %s", v)
	}
	a.Send("<iq type='get' to='localhost' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	d := a.Expect("disco", isIQ("d"))
	for _, f := range []string{"urn:xmpp:ping", "jabber:iq:version", "http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items"} {
		if !strings.Contains(d.String(), f) {
			t.Fatalf("disco lacks %s: %s", f, d)
		}
	}
	a.Send("<iq type='get' to='localhost' id='i'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	a.Expect("items", isIQ("i"))
	a.Send("<iq type='get' to='localhost' id='u'><query xmlns='urn:example:nothing'/></iq>")
	if u := a.Expect("error", isIQ("u")); !strings.Contains(u.String(), "service-unavailable") {
		t.Fatalf("got %s", u)
	}
	a.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Expect("ping", isIQ("p"))
	a.Send("<iq type='get' to='bob@localhost' id='bd'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if bd := a.Expect("account disco", isIQ("bd")); !strings.Contains(bd.String(), "registered") {
		t.Fatalf("got %s", bd)
	}
}

func TestCarbons(t *testing.T) {
	s, a, b := twoUsers(t)
	a2 := s.Login(t, "alice", "wonderland", "a2")
	a2.Send("<presence/>")
	a2.Expect("own presence", isPresence(a2.JID, ""))
	for i, c := range []*xmpptest.Client{a, a2} {
		id := fmt.Sprintf("c%d", i)
		c.Send("<iq type='set' id='" + id + "'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
		if r := c.Expect("enable", isIQ(id)); r.Attr("type") != "result" {
			t.Fatalf("enable: %s", r)
		}
	}
	isCarbon := func(kind, id string) func(*xmlstream.Element) bool {
		return func(e *xmlstream.Element) bool {
			w := e.Child("urn:xmpp:carbons:2", kind)
			if e.Local != "message" || w == nil || e.Attr("from") != "alice@localhost" {
				return false
			}
			f := w.Child("urn:xmpp:forward:0", "forwarded")
			return f != nil && f.Child(xmlstream.NSClient, "message") != nil && f.Child(xmlstream.NSClient, "message").Attr("id") == id
		}
	}
	// Sent from a: a2 gets a sent carbon.
	a.Send("<message to='bob@localhost' type='chat' id='s1'><body>hi bob</body></message>")
	b.Expect("message", func(e *xmlstream.Element) bool { return e.Attr("id") == "s1" })
	c := a2.Expect("sent carbon", isCarbon("sent", "s1"))
	if inner := c.Child("urn:xmpp:carbons:2", "sent").Child("urn:xmpp:forward:0", "forwarded").Child(xmlstream.NSClient, "message"); inner.Attr("from") != a.JID || inner.Attr("to") != "bob@localhost" {
		t.Fatalf("forwarded: %s", inner)
	}
	// Received by a: a2 gets a received carbon.
	b.Send("<message to='" + a.JID + "' type='chat' id='r1'><body>hi alice</body></message>")
	a.Expect("message", func(e *xmlstream.Element) bool { return e.Attr("id") == "r1" })
	a2.Expect("received carbon", isCarbon("received", "r1"))
	// Private messages are not copied.
	b.Send("<message to='" + a.JID + "' type='chat' id='r2'><body>secret</body><private xmlns='urn:xmpp:carbons:2'/></message>")
	a.Expect("message", func(e *xmlstream.Element) bool { return e.Attr("id") == "r2" })
	a2.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	for {
		el := a2.Element()
		if el.Attr("id") == "p" {
			break
		}
		if strings.Contains(el.String(), "r2") {
			t.Fatalf("private message copied: %s", el)
		}
	}
	// A forged carbon from bob never reaches alice.
	b.Send("<message to='alice@localhost' id='f1'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='carol@localhost/x' to='alice@localhost/a' type='chat'><body>trust me</body></message></forwarded></received></message>")
	if e := b.Expect("error", func(e *xmlstream.Element) bool { return e.Attr("id") == "f1" }); !strings.Contains(e.String(), "bad-request") {
		t.Fatalf("forged carbon: %s", e)
	}
	a.Send("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>")
	for {
		el := a.Element()
		if el.Attr("id") == "p2" {
			break
		}
		if el.Attr("id") == "f1" {
			t.Fatalf("forged carbon delivered: %s", el)
		}
	}
}

func TestBlocking(t *testing.T) {
	_, a, b := twoUsers(t)
	a.Send("<iq type='get' id='bl'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
	if r := a.Expect("blocklist", isIQ("bl")); r.Attr("type") != "result" || len(r.Child("urn:xmpp:blocking", "blocklist").Children()) != 0 {
		t.Fatalf("empty blocklist: %s", r)
	}
	a.Send("<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></block></iq>")
	a.Expect("block push", func(e *xmlstream.Element) bool {
		blk := e.Child("urn:xmpp:blocking", "block")
		return e.Attr("type") == "set" && blk != nil && strings.Contains(blk.String(), "bob@localhost")
	})
	a.Expect("block result", isIQ("b1"))
	b.Expect("alice gone", isPresence(a.JID, "unavailable"))

	b.Send("<message to='alice@localhost' type='chat' id='m1'><body>hello?</body></message>")
	if e := b.Expect("error", func(e *xmlstream.Element) bool { return e.Attr("id") == "m1" }); !strings.Contains(e.String(), "service-unavailable") {
		t.Fatalf("blocked sender: %s", e)
	}
	a.Send("<message to='bob@localhost/b' type='chat' id='m2'><body>hi</body></message>")
	e := a.Expect("error", func(e *xmlstream.Element) bool { return e.Attr("id") == "m2" })
	if !strings.Contains(e.String(), "not-acceptable") || !strings.Contains(e.String(), "urn:xmpp:blocking:errors") {
		t.Fatalf("to a blocked contact: %s", e)
	}
	a.Send("<iq type='get' id='bl2'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
	if r := a.Expect("blocklist", isIQ("bl2")); !strings.Contains(r.String(), "bob@localhost") {
		t.Fatalf("blocklist: %s", r)
	}
	// Unblocking everything restores delivery.
	a.Send("<iq type='set' id='u1'><unblock xmlns='urn:xmpp:blocking'/></iq>")
	a.Expect("unblock result", isIQ("u1"))
	b.Send("<message to='alice@localhost/a' type='chat' id='m3'><body>back?</body></message>")
	if m := a.Expect("message", func(e *xmlstream.Element) bool { return e.Attr("id") == "m3" }); m.Attr("type") == "error" {
		t.Fatalf("after unblock: %s", m)
	}
	// Domains block everyone there; a block without items is refused.
	a.Send("<iq type='set' id='b2'><block xmlns='urn:xmpp:blocking'/></iq>")
	if r := a.Expect("bad block", isIQ("b2")); !strings.Contains(r.String(), "bad-request") {
		t.Fatalf("empty block: %s", r)
	}
	a.Send("<iq type='set' id='b3'><block xmlns='urn:xmpp:blocking'><item jid='localhost'/></block></iq>")
	a.Expect("block result", isIQ("b3"))
	b.Send("<message to='alice@localhost/a' type='chat' id='m4'><body>domain?</body></message>")
	if e := b.Expect("error", func(e *xmlstream.Element) bool { return e.Attr("id") == "m4" }); !strings.Contains(e.String(), "service-unavailable") {
		t.Fatalf("domain block: %s", e)
	}
}

func TestBlockMatching(t *testing.T) {
	for _, tc := range []struct {
		item, from string
		want       bool
	}{
		{"bob@x", "bob@x/phone", true},
		{"bob@x", "bob@x", true},
		{"bob@x/phone", "bob@x/laptop", false},
		{"bob@x/phone", "bob@x/phone", true},
		{"x", "anyone@x/r", true},
		{"x", "x", true},
		{"x", "bob@y", false},
		{"x/r", "x/r", true},
		{"x/r", "bob@x/r", true},
		{"x/r", "x/s", false},
	} {
		if got := sm.BlockMatch(jid.MustParse(tc.item), jid.MustParse(tc.from)); got != tc.want {
			t.Errorf("%s blocks %s: %v, want %v", tc.item, tc.from, got, tc.want)
		}
	}
}

func TestPrivateXMLAndVCard(t *testing.T) {
	_, a, b := twoUsers(t)
	a.Send("<iq type='get' id='g0'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>")
	if r := a.Expect("empty", isIQ("g0")); r.Attr("type") != "result" || !strings.Contains(r.String(), "storage:bookmarks") {
		t.Fatalf("empty private: %s", r)
	}
	a.Send("<iq type='set' id='s1'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='room@muc.example' autojoin='true'><nick>al</nick></conference></storage></query></iq>")
	a.Expect("set", isIQ("s1"))
	a.Send("<iq type='get' id='g1'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>")
	if r := a.Expect("stored", isIQ("g1")); !strings.Contains(r.String(), "room@muc.example") || !strings.Contains(r.String(), "<nick>al</nick>") {
		t.Fatalf("private: %s", r)
	}
	a.Send("<iq type='set' id='s2'><query xmlns='jabber:iq:private'><x xmlns='jabber:client'/></query></iq>")
	if r := a.Expect("refused", isIQ("s2")); !strings.Contains(r.String(), "not-acceptable") {
		t.Fatalf("jabber: namespace: %s", r)
	}
	// Bob cannot read alice's private data.
	b.Send("<iq type='get' to='alice@localhost' id='g2'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>")
	if r := b.Expect("refused", isIQ("g2")); r.Attr("type") != "error" {
		t.Fatalf("other user's private data: %s", r)
	}
	// vCard: set own, read by another user.
	a.Send("<iq type='set' id='v1'><vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>al</NICKNAME></vCard></iq>")
	a.Expect("vcard set", isIQ("v1"))
	b.Send("<iq type='get' to='alice@localhost' id='v2'><vCard xmlns='vcard-temp'/></iq>")
	if r := b.Expect("vcard", isIQ("v2")); r.Attr("type") != "result" || !strings.Contains(r.String(), "Alice Liddell") || r.Attr("from") != "alice@localhost" {
		t.Fatalf("vcard: %s", r)
	}
	b.Send("<iq type='get' id='v3'><vCard xmlns='vcard-temp'/></iq>")
	if r := b.Expect("own empty vcard", isIQ("v3")); r.Attr("type") != "result" || r.Child("vcard-temp", "vCard") == nil {
		t.Fatalf("empty vcard: %s", r)
	}
}

func TestEntityTimeAndUptime(t *testing.T) {
	_, a, _ := twoUsers(t)
	a.Send("<iq type='get' to='localhost' id='t'><time xmlns='urn:xmpp:time'/></iq>")
	r := a.Expect("time", isIQ("t"))
	tm := r.Child("urn:xmpp:time", "time")
	if tm == nil || tm.Child("urn:xmpp:time", "tzo").Text() != "+00:00" || !strings.HasSuffix(tm.Child("urn:xmpp:time", "utc").Text(), "Z") {
		t.Fatalf("time: %s", r)
	}
	a.Send("<iq type='get' to='localhost' id='l'><query xmlns='jabber:iq:last'/></iq>")
	if r := a.Expect("uptime", isIQ("l")); r.Child("jabber:iq:last", "query") == nil || r.Child("jabber:iq:last", "query").Attr("seconds") == "" {
		t.Fatalf("uptime: %s", r)
	}
}

func TestRosterVersioning(t *testing.T) {
	_, a, _ := twoUsers(t)
	a.Send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster' ver=''/></iq>")
	r := a.Expect("roster", isIQ("r1"))
	v0 := r.Child("jabber:iq:roster", "query").Attr("ver")
	a.Send("<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='carol@localhost'/></query></iq>")
	push := a.Expect("push", rosterPush("carol@localhost", "none", ""))
	v1 := push.Child("jabber:iq:roster", "query").Attr("ver")
	if v1 == "" || v1 == v0 {
		t.Fatalf("versions %q then %q", v0, v1)
	}
	a.Expect("result", isIQ("s1"))
	// Up to date: an empty result.
	a.Send("<iq type='get' id='r2'><query xmlns='jabber:iq:roster' ver='" + v1 + "'/></iq>")
	if r := a.Expect("roster", isIQ("r2")); r.Attr("type") != "result" || r.Child("jabber:iq:roster", "query") != nil {
		t.Fatalf("current version: %s", r)
	}
	// Stale: the whole roster with the current version.
	a.Send("<iq type='get' id='r3'><query xmlns='jabber:iq:roster' ver='" + v0 + "'/></iq>")
	r = a.Expect("roster", isIQ("r3"))
	if q := r.Child("jabber:iq:roster", "query"); q == nil || q.Attr("ver") != v1 || len(q.Children()) != 1 {
		t.Fatalf("stale version: %s", r)
	}
}

func TestContactAddresses(t *testing.T) {
	s := xmpptest.StartServerWith(t, xmpptest.Options{SM: func(c *sm.Config) {
		c.ContactAddresses = map[string][]string{"abuse": {"mailto:abuse@example.org"}, "admin": {"xmpp:admin@localhost", "mailto:root@example.org"}}
	}})
	s.AddUser(t, "alice@localhost", "wonderland")
	a := s.Login(t, "alice", "wonderland", "a")
	a.Send("<iq type='get' to='localhost' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	r := a.Expect("disco", isIQ("d"))
	x := r.Child("http://jabber.org/protocol/disco#info", "query").Child("jabber:x:data", "x")
	if x == nil {
		t.Fatalf("no form: %s", r)
	}
	got := map[string][]string{}
	for _, f := range x.Children() {
		for _, v := range f.Children() {
			got[f.Attr("var")] = append(got[f.Attr("var")], v.Text())
		}
	}
	if got["FORM_TYPE"][0] != "http://jabber.org/network/serverinfo" || len(got["admin-addresses"]) != 2 || got["abuse-addresses"][0] != "mailto:abuse@example.org" {
		t.Fatalf("form %v", got)
	}
	if _, ok := got["sales-addresses"]; ok {
		t.Fatalf("unconfigured kind listed: %v", got)
	}
}

func TestLastActivity(t *testing.T) {
	s, a, b := twoUsers(t)
	s.AddUser(t, "carol@localhost", "c")
	// Bob lets alice see his presence.
	a.Send("<presence to='bob@localhost' type='subscribe'/>")
	b.Expect("request", isPresence("alice@localhost", "subscribe"))
	b.Send("<presence to='alice@localhost' type='subscribed'/>")
	a.Expect("bob's presence", isPresence(b.JID, ""))
	a.Send("<iq type='get' to='bob@localhost' id='l1'><query xmlns='jabber:iq:last'/></iq>")
	if r := a.Expect("online", isIQ("l1")); r.Child("jabber:iq:last", "query") == nil || r.Child("jabber:iq:last", "query").Attr("seconds") != "0" {
		t.Fatalf("online user: %s", r)
	}
	b.Send("<presence type='unavailable'><status>gone fishing</status></presence>")
	a.Expect("bob away", isPresence(b.JID, "unavailable"))
	b.Close()
	var r *xmlstream.Element
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		a.Send("<iq type='get' to='bob@localhost' id='l2'><query xmlns='jabber:iq:last'/></iq>")
		r = a.Expect("last", isIQ("l2"))
		if r.Attr("type") != "result" {
			return fmt.Errorf("got %s", r)
		}
		return nil
	})
	if q := r.Child("jabber:iq:last", "query"); q.Text() != "gone fishing" || q.Attr("seconds") == "" {
		t.Fatalf("offline user: %s", r)
	}
	// A session that never became available shows no activity, as in
	// ejabberd and Prosody: its end leaves bob's record (and status) as
	// it was, and costs no write.
	record := func() string {
		b, err := s.Store.PrivateXML(context.Background(), "bob@localhost", "urn:xmpp:ambrosia:last")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	before := record()
	quiet := s.Login(t, "bob", "builder", "quiet")
	quiet.Close()
	bob := jid.MustParse("bob@localhost")
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if n := len(s.SM.Sessions(bob)); n != 0 {
			return fmt.Errorf("%d sessions", n)
		}
		return nil
	})
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if got := record(); got != before {
			t.Fatalf("a session without presence rewrote the last activity: %s, was %s", got, before)
		}
	}
	// Carol is not subscribed: forbidden.
	c := s.Login(t, "carol", "c", "c")
	c.Send("<iq type='get' to='bob@localhost' id='l3'><query xmlns='jabber:iq:last'/></iq>")
	if r := c.Expect("refused", isIQ("l3")); !strings.Contains(r.String(), "forbidden") {
		t.Fatalf("stranger: %s", r)
	}
	// Nobody can plant the record through private storage.
	a.Send("<iq type='set' id='p'><query xmlns='jabber:iq:private'><last xmlns='urn:xmpp:ambrosia:last' stamp='2000-01-01T00:00:00Z'/></query></iq>")
	if r := a.Expect("refused", isIQ("p")); !strings.Contains(r.String(), "not-acceptable") {
		t.Fatalf("forged record: %s", r)
	}
}

// TestDirectedPresence checks RFC 6121 §4.6: an entity that got directed
// presence from a session (a room the user joined, say) learns when the
// session goes away, even when it is not a contact.
func TestDirectedPresence(t *testing.T) {
	s, a, b := twoUsers(t)
	a.Send("<presence to='bob@localhost/b'><show>chat</show></presence>")
	b.Expect("directed presence", isPresence("alice@localhost/a", ""))
	a.Close()
	b.Expect("unavailable after the session ended", isPresence("alice@localhost/a", "unavailable"))

	// Directed unavailable takes the entity off the list: it is not told
	// twice.
	c := s.Login(t, "alice", "wonderland", "c")
	c.Send("<presence to='bob@localhost/b'/>")
	b.Expect("directed presence", isPresence("alice@localhost/c", ""))
	c.Send("<presence to='bob@localhost/b' type='unavailable'/>")
	b.Expect("directed unavailable", isPresence("alice@localhost/c", "unavailable"))
	c.Close()
	b.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	if got := b.Expect("ping answer", func(el *xmlstream.Element) bool { return el.Local == "presence" || isIQ("p")(el) }); got.Local == "presence" {
		t.Fatalf("a second unavailable arrived: %s", got)
	}
}

// TestCarbonsMUC applies the multi-user chat rules of XEP-0280 §6: a
// private message to a room occupant is copied only to the clients joined
// to that room, one received from an occupant is not copied (the room
// sends it to every joined client), group chat is never copied and
// invitations are.
func TestCarbonsMUC(t *testing.T) {
	s, a, _ := twoUsers(t)
	a2 := s.Login(t, "alice", "wonderland", "a2")
	a2.Send("<presence/>")
	a2.Expect("own presence", isPresence(a2.JID, ""))
	for i, c := range []*xmpptest.Client{a, a2} {
		id := fmt.Sprintf("c%d", i)
		c.Send("<iq type='set' id='" + id + "'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
		c.Expect("enable", isIQ(id))
	}
	// Only a has joined the room (its server knows from the directed
	// presence; the room itself is on a server that does not answer).
	const room = "tea@conference.example"
	a.Send("<presence to='" + room + "/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	// nothingFor checks, by a ping, that nothing but the answer came.
	nothingFor := func(c *xmpptest.Client, what string) {
		t.Helper()
		c.Send("<iq type='get' id='np'><ping xmlns='urn:xmpp:ping'/></iq>")
		for {
			el := c.Element()
			if el.Attr("id") == "np" {
				return
			}
			if el.Local == "message" && el.Child("urn:xmpp:carbons:2", "sent") != nil || el.Child("urn:xmpp:carbons:2", "received") != nil {
				t.Fatalf("%s: a carbon came: %s", what, el)
			}
		}
	}
	a.Send("<message to='" + room + "/Bob' type='chat' id='pm1'><body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>")
	nothingFor(a2, "PM to an occupant of a room a2 is not in")
	a2.Send("<presence to='" + room + "/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	// The bounce from the unreachable room comes once the server noted the
	// directed presence; a's message must not overtake it.
	a2.Expect("the room's bounce", isPresence(room+"/Alice", "error"))
	a.Send("<message to='" + room + "/Bob' type='chat' id='pm2'><body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>")
	a2.Expect("sent carbon of a PM in a joined room", func(e *xmlstream.Element) bool {
		return e.Child("urn:xmpp:carbons:2", "sent") != nil && strings.Contains(e.String(), "pm2")
	})

	route := func(xml string) {
		el, err := xmlstream.ParseStanza([]byte(xml), xmlstream.NSClient)
		if err != nil {
			t.Fatal(err)
		}
		from, to := jid.MustParse(el.Attr("from")), jid.MustParse(el.Attr("to"))
		s.Router.Route(context.Background(), router.Stanza{El: el, From: from, To: to})
	}
	route("<message from='" + room + "/Bob' to='" + a.JID + "' type='chat' id='pm3'><body>back</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>")
	a.Expect("PM from an occupant", func(e *xmlstream.Element) bool { return e.Attr("id") == "pm3" })
	nothingFor(a2, "PM from an occupant")
	route("<message from='" + room + "/Bob' to='" + a.JID + "' type='groupchat' id='g1'><body>all</body></message>")
	a.Expect("group chat", func(e *xmlstream.Element) bool { return e.Attr("id") == "g1" })
	nothingFor(a2, "group chat")
	route("<message from='" + room + "' to='" + a.JID + "' id='inv'><x xmlns='http://jabber.org/protocol/muc#user'><invite from='bob@example'/></x></message>")
	a.Expect("invitation", func(e *xmlstream.Element) bool { return e.Attr("id") == "inv" })
	a2.Expect("received carbon of an invitation", func(e *xmlstream.Element) bool {
		return e.Child("urn:xmpp:carbons:2", "received") != nil && strings.Contains(e.String(), "inv")
	})
}

// TestEndSessions: an administrator ends one session with a reason, which
// the client reads as the stream error's text, or all of a user's.
func TestEndSessions(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "wonderland")
	phone := s.Login(t, "alice", "wonderland", "phone")
	laptop := s.Login(t, "alice", "wonderland", "laptop")
	if n := s.SM.EndSessions(jid.MustParse("alice@localhost/phone"), "policy-violation", "Maintenance at noon."); n != 1 {
		t.Fatalf("ended %d sessions, want 1", n)
	}
	e := phone.Expect("the stream error", func(e *xmlstream.Element) bool { return e.Local == "error" && e.Space == xmlstream.NSStream })
	if e.Child("urn:ietf:params:xml:ns:xmpp-streams", "policy-violation") == nil || e.Child("urn:ietf:params:xml:ns:xmpp-streams", "text").Text() != "Maintenance at noon." {
		t.Fatalf("stream error %s, want policy-violation with the reason", e)
	}
	laptop.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	laptop.Expect("the other session's ping", isIQ("p1"))
	for deadline := time.Now().Add(5 * time.Second); len(s.SM.Sessions(jid.MustParse("alice@localhost"))) != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("sessions after ending the phone's: %+v", s.SM.Sessions(jid.MustParse("alice@localhost")))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.SM.EndSessions(jid.MustParse("alice@localhost"), "not-authorized", ""); n != 1 {
		t.Fatalf("ended %d sessions, want the laptop's", n)
	}
	if cond := laptop.StreamError(); cond != "not-authorized" {
		t.Fatalf("laptop: %q, want not-authorized", cond)
	}
	if n := s.SM.EndSessions(jid.MustParse("bob@localhost"), "not-authorized", ""); n != 0 {
		t.Fatalf("ended %d sessions of nobody", n)
	}
}

// TestResendDropped: a message sent again with the same origin-id (a
// client whose resumption failed sends what was not acknowledged) is
// dropped; another origin-id, or another addressee, is a new message.
func TestResendDropped(t *testing.T) {
	_, a, b := twoUsers(t)
	tests := []struct {
		id, to, origin string
		want           bool
	}{
		{"o1", "bob@localhost", "x1", true},
		{"o2", "bob@localhost", "x1", false}, // the resend
		{"o3", "bob@localhost", "x2", true},
		{"o4", "bob@localhost", "", true},
		{"o5", "bob@localhost", "", true}, // no origin-id: never a resend
		{"o6", "alice@localhost", "x1", true},
	}
	for _, tt := range tests {
		oid := ""
		if tt.origin != "" {
			oid = "<origin-id xmlns='urn:xmpp:sid:0' id='" + tt.origin + "'/>"
		}
		a.Send("<message to='" + tt.to + "' type='chat' id='" + tt.id + "'><body>b</body>" + oid + "</message>")
	}
	// Whatever was delivered arrives before the answers to these pings.
	a.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Expect("ping", isIQ("p1"))
	b.Send("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>")
	got := map[string]bool{}
	for {
		e := b.Expect("message or ping", func(e *xmlstream.Element) bool { return e.Local == "message" || e.Attr("id") == "p2" })
		if e.Local != "message" {
			break
		}
		got[e.Attr("id")] = true
	}
	for _, tt := range tests {
		if tt.to == "bob@localhost" && got[tt.id] != tt.want {
			t.Errorf("message %s (origin-id %q): delivered %v, want %v", tt.id, tt.origin, got[tt.id], tt.want)
		}
	}
}
