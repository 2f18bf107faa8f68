package sm_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/privilege"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

const bridge = "bridge.localhost"

// entity stands for a privileged component as the component listener
// presents it: a domain registered with the router, whose stanzas are
// routed with its grant. It records what is routed to it.
type entity struct {
	t     *testing.T
	r     *router.Router
	grant *privilege.Grant
	ch    chan *xmlstream.Element
}

func newEntity(t *testing.T, xs *xmpptest.Server, domain string, g *privilege.Grant) *entity {
	t.Helper()
	e := &entity{t: t, r: xs.Router, grant: g, ch: make(chan *xmlstream.Element, 1000)}
	if err := xs.Router.Register(domain, e); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { xs.Router.Unregister(domain, e) })
	return e
}

func (e *entity) HandleStanza(_ context.Context, s router.Stanza) {
	c, err := xmlstream.ParseStanza(s.El.AppendXML(nil, xmlstream.NSClient), xmlstream.NSClient)
	if err != nil {
		panic(err)
	}
	e.ch <- c
}

// send routes xml as the entity's edge would, with the entity's grant.
func (e *entity) send(xml string) {
	e.t.Helper()
	el, err := xmlstream.ParseStanza([]byte(xml), xmlstream.NSComponent)
	if err != nil {
		e.t.Fatal(err)
	}
	e.r.Route(context.Background(), router.Stanza{El: el, From: jid.MustParse(el.Attr("from")), To: jid.MustParse(el.Attr("to")), Grant: e.grant})
}

// announce is what the component listener sends the session manager when
// the component connects.
func (e *entity) announce(domain string) { e.send("<presence from='" + domain + "' to='localhost'/>") }

// expect waits for a stanza that satisfies match, skipping others.
func (e *entity) expect(what string, match func(*xmlstream.Element) bool) *xmlstream.Element {
	e.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case el := <-e.ch:
			if match(el) {
				return el
			}
		case <-timeout:
			e.t.Fatalf("waiting for %s: nothing came", what)
			return nil
		}
	}
}

// until returns what came before a stanza that satisfies sentinel.
func (e *entity) until(sentinel func(*xmlstream.Element) bool) []*xmlstream.Element {
	e.t.Helper()
	var got []*xmlstream.Element
	timeout := time.After(5 * time.Second)
	for {
		select {
		case el := <-e.ch:
			if sentinel(el) {
				return got
			}
			got = append(got, el)
		case <-timeout:
			e.t.Fatalf("no sentinel; got %v", got)
			return nil
		}
	}
}

// drained returns what came so far. Stanzas the entity sends are handled
// before send returns, so are their consequences.
func (e *entity) drained() []*xmlstream.Element {
	var got []*xmlstream.Element
	for {
		select {
		case el := <-e.ch:
			got = append(got, el)
		default:
			return got
		}
	}
}

func isError(cond string) func(*xmlstream.Element) bool {
	return func(e *xmlstream.Element) bool {
		return e.Attr("type") == "error" && strings.Contains(e.String(), "<"+cond+" ")
	}
}

func errorOf(id, cond string) func(*xmlstream.Element) bool {
	return func(e *xmlstream.Element) bool { return e.Attr("id") == id && isError(cond)(e) }
}

func rosterItem(el *xmlstream.Element, contact string) *xmlstream.Element {
	q := el.Child("jabber:iq:roster", "query")
	if q == nil {
		return nil
	}
	for _, it := range q.Children() {
		if it.Attr("jid") == contact {
			return it
		}
	}
	return nil
}

// TestPrivilegedRoster: a component granted roster = both reads and writes
// a user's roster as the user would (with subscriptions, which a gateway
// knows), online or not; the user's interested clients and the component
// get the roster pushes.
func TestPrivilegedRoster(t *testing.T) {
	xs, a, _ := twoUsers(t)
	xs.AddUser(t, "carol@localhost", "pw")
	e := newEntity(t, xs, bridge, &privilege.Grant{Roster: privilege.Both, RosterPush: true})
	e.announce(bridge)

	e.send("<iq type='set' from='" + bridge + "' to='alice@localhost' id='s1'><query xmlns='jabber:iq:roster'><item jid='12345@" + bridge + "' name='Legacy Friend' subscription='both'><group>Bridge</group></item></query></iq>")
	r := e.expect("result", isIQ("s1"))
	if r.Attr("type") != "result" || r.Attr("from") != "alice@localhost" || r.Attr("to") != bridge {
		t.Fatalf("result %s", r)
	}
	push := a.Expect("alice's push", rosterPush("12345@"+bridge, "both", ""))
	if it := rosterItem(push, "12345@"+bridge); it.Attr("name") != "Legacy Friend" || it.Child("jabber:iq:roster", "group").Text() != "Bridge" {
		t.Fatalf("push %s", push)
	}
	ep := e.expect("the entity's push", func(el *xmlstream.Element) bool { return el.Local == "iq" && el.Attr("type") == "set" })
	if ep.Attr("from") != "alice@localhost" || ep.Attr("to") != bridge || rosterItem(ep, "12345@"+bridge).Attr("subscription") != "both" {
		t.Fatalf("entity push %s", ep)
	}

	e.send("<iq type='get' from='" + bridge + "' to='alice@localhost' id='g1'><query xmlns='jabber:iq:roster'/></iq>")
	g := e.expect("roster", isIQ("g1"))
	if g.Attr("type") != "result" || g.Attr("from") != "alice@localhost" || rosterItem(g, "12345@"+bridge) == nil {
		t.Fatalf("roster %s", g)
	}
	a.Send("<iq type='get' id='g2'><query xmlns='jabber:iq:roster'/></iq>")
	if it := rosterItem(a.Expect("alice's roster", isIQ("g2")), "12345@"+bridge); it == nil || it.Attr("subscription") != "both" {
		t.Fatal("the item is not in alice's roster")
	}

	// A user offline: stored, and there when she comes.
	e.send("<iq type='set' from='" + bridge + "' to='carol@localhost' id='s2'><query xmlns='jabber:iq:roster'><item jid='678@" + bridge + "' subscription='to'/></query></iq>")
	if r := e.expect("result for carol", isIQ("s2")); r.Attr("type") != "result" {
		t.Fatalf("got %s", r)
	}
	c := xs.Login(t, "carol", "pw", "c")
	c.Send("<iq type='get' id='g3'><query xmlns='jabber:iq:roster'/></iq>")
	if it := rosterItem(c.Expect("carol's roster", isIQ("g3")), "678@"+bridge); it == nil || it.Attr("subscription") != "to" {
		t.Fatal("the item is not in carol's roster")
	}

	// Removal, as the user would.
	e.send("<iq type='set' from='" + bridge + "' to='alice@localhost' id='s3'><query xmlns='jabber:iq:roster'><item jid='12345@" + bridge + "' subscription='remove'/></query></iq>")
	e.expect("removed", isIQ("s3"))
	a.Expect("alice's removal push", rosterPush("12345@"+bridge, "remove", ""))

	// Bad requests are answered as the user's would be.
	e.send("<iq type='set' from='" + bridge + "' to='alice@localhost' id='s4'><query xmlns='jabber:iq:roster'><item jid='x@" + bridge + "' subscription='sideways'/></query></iq>")
	e.expect("bad subscription", errorOf("s4", "bad-request"))
	e.send("<iq type='get' from='" + bridge + "' to='nobody@localhost' id='g4'><query xmlns='jabber:iq:roster'/></iq>")
	e.expect("no such user", errorOf("g4", "service-unavailable"))

	// The user's own roster changes reach the entity too.
	a.Send("<iq type='set' id='s5'><query xmlns='jabber:iq:roster'><item jid='dave@localhost'/></query></iq>")
	e.expect("push of alice's own change", func(el *xmlstream.Element) bool {
		return el.Attr("type") == "set" && rosterItem(el, "dave@localhost") != nil && el.Attr("from") == "alice@localhost"
	})
	// Once gone, it gets no more pushes.
	e.send("<presence type='unavailable' from='" + bridge + "' to='localhost'/>")
	e.drained()
	a.Send("<iq type='set' id='s6'><query xmlns='jabber:iq:roster'><item jid='erin@localhost'/></query></iq>")
	a.Expect("result", isIQ("s6"))
	for _, el := range e.drained() {
		t.Fatalf("a push after the entity left: %s", el)
	}
}

// TestPrivilegedRosterRefused: without the permission for the type of the
// request, or without any grant, the answer is forbidden (XEP-0356 §4.3),
// for a component as for a user asking for someone else's roster.
func TestPrivilegedRosterRefused(t *testing.T) {
	xs, a, _ := twoUsers(t)
	getOnly := newEntity(t, xs, bridge, &privilege.Grant{Roster: privilege.Get})
	getOnly.send("<iq type='set' from='" + bridge + "' to='alice@localhost' id='s1'><query xmlns='jabber:iq:roster'><item jid='x@" + bridge + "'/></query></iq>")
	if e := getOnly.expect("refused set", isIQ("s1")); !isError("forbidden")(e) || !strings.Contains(e.String(), "type='auth'") {
		t.Fatalf("got %s", e)
	}
	getOnly.send("<iq type='get' from='" + bridge + "' to='alice@localhost' id='g1'><query xmlns='jabber:iq:roster'/></iq>")
	if e := getOnly.expect("allowed get", isIQ("g1")); e.Attr("type") != "result" {
		t.Fatalf("got %s", e)
	}

	plain := newEntity(t, xs, "plain.localhost", nil)
	plain.send("<iq type='get' from='plain.localhost' to='alice@localhost' id='g2'><query xmlns='jabber:iq:roster'/></iq>")
	plain.expect("no grant", errorOf("g2", "forbidden"))
	setOnly := newEntity(t, xs, "other.localhost", &privilege.Grant{Roster: privilege.Set})
	setOnly.send("<iq type='get' from='other.localhost' to='alice@localhost' id='g3'><query xmlns='jabber:iq:roster'/></iq>")
	setOnly.expect("set only", errorOf("g3", "forbidden"))

	a.Send("<iq type='get' to='bob@localhost' id='g4'><query xmlns='jabber:iq:roster'/></iq>")
	a.Expect("another user's roster", errorOf("g4", "forbidden"))
}

// TestPrivilegedMessage: a component granted message = outgoing sends a
// message on a user's behalf, which leaves as if the user had sent it
// (carbon-copied to the user's clients); a message from anyone else, or
// from an address that is not the bare JID of a user of the domain it is
// sent to, is refused with forbidden (XEP-0356 §5).
func TestPrivilegedMessage(t *testing.T) {
	xs, a, b := twoUsers(t)
	a.Send("<iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
	a.Expect("carbons", isIQ("c1"))
	e := newEntity(t, xs, bridge, &privilege.Grant{Message: true})
	fwd := func(id, outerTo, from, to string) string {
		return "<message from='" + bridge + "' to='" + outerTo + "' id='" + id + "'><privilege xmlns='urn:xmpp:privilege:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
			"<message xmlns='jabber:client' from='" + from + "' to='" + to + "' type='chat' id='in-" + id + "'><body>sent elsewhere</body></message></forwarded></privilege></message>"
	}
	e.send(fwd("m1", "localhost", "alice@localhost", "bob@localhost"))
	m := b.Expect("the message", func(el *xmlstream.Element) bool { return el.Attr("id") == "in-m1" })
	if m.Attr("from") != "alice@localhost" || m.Child(xmlstream.NSClient, "body").Text() != "sent elsewhere" {
		t.Fatalf("bob got %s", m)
	}
	c := a.Expect("sent carbon", func(el *xmlstream.Element) bool { return el.Child("urn:xmpp:carbons:2", "sent") != nil })
	if !strings.Contains(c.String(), "in-m1") {
		t.Fatalf("carbon %s", c)
	}
	// On behalf of the server itself.
	e.send(fwd("m2", "localhost", "localhost", "bob@localhost"))
	if m := b.Expect("from the server", func(el *xmlstream.Element) bool { return el.Attr("id") == "in-m2" }); m.Attr("from") != "localhost" {
		t.Fatalf("bob got %s", m)
	}
	// Version 1 wraps it the same way.
	e.send(strings.ReplaceAll(fwd("m3", "localhost", "alice@localhost", "bob@localhost"), "privilege:2", "privilege:1"))
	b.Expect("version 1", func(el *xmlstream.Element) bool { return el.Attr("id") == "in-m3" })
	for _, el := range e.drained() {
		t.Fatalf("the entity got %s", el)
	}

	refused := []struct{ name, xml, cond string }{
		{"full JID", fwd("x1", "localhost", "alice@localhost/a", "bob@localhost"), "forbidden"},
		{"user of another domain", fwd("x2", "localhost", "alice@example.org", "bob@localhost"), "forbidden"},
		{"another domain", fwd("x3", "localhost", "example.org", "bob@localhost"), "forbidden"},
		{"no such user", fwd("x4", "localhost", "nobody@localhost", "bob@localhost"), "forbidden"},
		{"no from", strings.Replace(fwd("x5", "localhost", "", "bob@localhost"), "from='' ", "", 1), "forbidden"},
		{"nothing forwarded", "<message from='" + bridge + "' to='localhost' id='x6'><privilege xmlns='urn:xmpp:privilege:2'/></message>", "bad-request"},
		{"forged carbon", "<message from='" + bridge + "' to='localhost' id='x7'><privilege xmlns='urn:xmpp:privilege:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='alice@localhost' to='bob@localhost'><sent xmlns='urn:xmpp:carbons:2'/></message></forwarded></privilege></message>", "bad-request"},
	}
	for _, tc := range refused {
		e.send(tc.xml)
		id := xmlID(t, tc.xml)
		if r := e.expect(tc.name, func(el *xmlstream.Element) bool { return el.Attr("id") == id }); !isError(tc.cond)(r) {
			t.Fatalf("%s: got %s", tc.name, r)
		}
	}

	noGrant := newEntity(t, xs, "plain.localhost", &privilege.Grant{Roster: privilege.Both})
	noGrant.send(strings.ReplaceAll(fwd("y1", "localhost", "alice@localhost", "bob@localhost"), bridge, "plain.localhost"))
	noGrant.expect("without the message permission", errorOf("y1", "forbidden"))
	plain := newEntity(t, xs, "nogrant.localhost", nil)
	plain.send(strings.ReplaceAll(fwd("y2", "localhost", "alice@localhost", "bob@localhost"), bridge, "nogrant.localhost"))
	plain.expect("without any grant", errorOf("y2", "forbidden"))

	// Nothing of the refused ones reached bob.
	b.Send("<message to='" + bridge + "' id='sentinel'/>")
	e.expect("sentinel", func(el *xmlstream.Element) bool { return el.Attr("id") == "sentinel" })
	a.Send("<message to='bob@localhost' id='sentinel2'><body>last</body></message>")
	m = b.Expect("sentinel", func(el *xmlstream.Element) bool { return el.Local == "message" && el.Attr("id") != "in-m3" })
	if m.Attr("id") != "sentinel2" {
		t.Fatalf("bob got %s", m)
	}
}

func xmlID(t *testing.T, xml string) string {
	el, err := xmlstream.ParseStanza([]byte(xml), xmlstream.NSComponent)
	if err != nil {
		t.Fatal(err)
	}
	return el.Attr("id")
}

// TestPrivilegedPresence: managed_entity sends the component the users'
// available and unavailable presence, what there is when it comes first
// (XEP-0356 §7.1 and rule 1); roster adds the users' contacts' presence,
// once however many users have the contact (§7.2 and rule 2).
func TestPrivilegedPresence(t *testing.T) {
	xs := xmpptest.StartServer(t, nil)
	xs.AddUser(t, "alice@localhost", "wonderland")
	xs.AddUser(t, "bob@localhost", "builder")
	xs.Befriend(t, "alice@localhost", "romeo@remote.example")
	xs.Befriend(t, "bob@localhost", "romeo@remote.example")
	remote := newEntity(t, xs, "remote.example", nil)
	a := xs.Login(t, "alice", "wonderland", "a")
	b := xs.Login(t, "bob", "builder", "b")
	for _, c := range []*xmpptest.Client{a, b} {
		c.Send("<presence/>")
		c.Expect("own presence", isPresence(c.JID, ""))
	}
	// Both probed romeo: take those, in either order (each user's
	// presence is handled on its own, so bob's probe may come first).
	probed := map[string]bool{}
	for len(probed) < 2 {
		p := remote.expect("alice's and bob's probes", func(el *xmlstream.Element) bool {
			return el.Attr("type") == "probe"
		})
		probed[p.Attr("from")] = true
	}
	if !probed["alice@localhost"] || !probed["bob@localhost"] {
		t.Fatalf("probes came from %v", probed)
	}
	remote.drained()

	users := newEntity(t, xs, bridge, &privilege.Grant{Presence: privilege.PresenceManaged})
	users.announce(bridge)
	got := map[string]bool{}
	for _, el := range users.drained() {
		if el.Local == "presence" && el.Attr("type") == "" && el.Attr("to") == bridge {
			got[el.Attr("from")] = true
		}
	}
	if !got[a.JID] || !got[b.JID] || len(got) != 2 {
		t.Fatalf("the presence there was: %v", got)
	}

	a.Send("<presence><show>away</show></presence>")
	p := users.expect("alice's change", isPresence(a.JID, ""))
	if p.Child(xmlstream.NSClient, "show").Text() != "away" || p.Attr("to") != bridge {
		t.Fatalf("got %s", p)
	}
	a.Send("<presence type='unavailable'/>")
	users.expect("alice unavailable", isPresence(a.JID, "unavailable"))

	// Roster presence.
	contacts := newEntity(t, xs, "pep.localhost", &privilege.Grant{Roster: privilege.Get, Presence: privilege.PresenceRoster})
	contacts.announce("pep.localhost")
	// Bob is online with romeo in his roster: romeo is probed for it.
	probe := remote.expect("probe", func(el *xmlstream.Element) bool { return el.Attr("type") == "probe" })
	if probe.Attr("from") != "bob@localhost" || probe.Attr("to") != "romeo@remote.example" {
		t.Fatalf("probe %s", probe)
	}
	contacts.expect("bob's presence", isPresence(b.JID, ""))
	romeo := func(to, show string) {
		remote.send("<presence from='romeo@remote.example/orchard' to='" + to + "'><show>" + show + "</show></presence>")
	}
	romeo("bob@localhost", "chat")
	romeo("alice@localhost", "chat") // alice is offline: still seen
	romeo("alice@localhost", "dnd")
	var shows []string
	for _, el := range contacts.drained() {
		if el.Attr("from") == "romeo@remote.example/orchard" {
			shows = append(shows, el.Child(xmlstream.NSClient, "show").Text())
		}
	}
	if strings.Join(shows, ",") != "chat,dnd" {
		t.Fatalf("romeo's presence came as %v, want chat then dnd, once each", shows)
	}
	// A managed_entity grant does not see contacts.
	for _, el := range users.drained() {
		if el.Attr("from") == "romeo@remote.example/orchard" {
			t.Fatalf("managed_entity got a contact's presence: %s", el)
		}
	}
	// Presence directed at a session (a room's, say) is not a contact's.
	remote.send("<presence from='room@remote.example/nick' to='" + b.JID + "'/>")
	for _, el := range contacts.drained() {
		t.Fatalf("roster presence got %s", el)
	}

	// Without a presence grant, nothing.
	none := newEntity(t, xs, "none.localhost", &privilege.Grant{Roster: privilege.Both})
	none.announce("none.localhost")
	b.Send("<presence><show>xa</show></presence>")
	users.expect("bob's change", isPresence(b.JID, ""))
	b.Send("<message to='none.localhost' id='sentinel'/>")
	for _, el := range none.until(func(el *xmlstream.Element) bool { return el.Attr("id") == "sentinel" }) {
		t.Fatalf("an entity without presence permission got %s", el)
	}
	// An announcement without a grant is ignored.
	plain := newEntity(t, xs, "plain.localhost", nil)
	plain.announce("plain.localhost")
	for _, el := range plain.drained() {
		t.Fatalf("an entity without a grant got %s", el)
	}
}

// TestPrivilegedIQ: a component granted an IQ namespace sends IQs of that
// namespace on a user's behalf (XEP-0356 §6): to others, their answer is
// forwarded back wrapped; to the user's own account, the server answers
// as it would the user. Anything else is forbidden.
func TestPrivilegedIQ(t *testing.T) {
	xs, a, _ := twoUsers(t)
	remote := newEntity(t, xs, "remote.example", nil)
	e := newEntity(t, xs, bridge, &privilege.Grant{IQ: map[string]privilege.Access{
		"http://jabber.org/protocol/pubsub": privilege.Set, "jabber:iq:private": privilege.Both}})
	wrap := func(id, typ, inner string) string {
		return "<iq type='" + typ + "' from='" + bridge + "' to='alice@localhost' id='" + id + "'><privileged_iq xmlns='urn:xmpp:privilege:2'>" + inner + "</privileged_iq></iq>"
	}
	e.send(wrap("p1", "set", "<iq xmlns='jabber:client' type='set' to='romeo@remote.example' id='sub_1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='urn:xmpp:microblog:0' jid='alice@localhost'/></pubsub></iq>"))
	out := remote.expect("the encapsulated IQ", func(el *xmlstream.Element) bool { return el.Local == "iq" })
	if out.Attr("from") != "alice@localhost" || out.Attr("to") != "romeo@remote.example" || out.Attr("type") != "set" ||
		out.Child("http://jabber.org/protocol/pubsub", "pubsub") == nil {
		t.Fatalf("sent %s", out)
	}
	// An answer from someone else, or a second one, is not forwarded.
	xs.Router.Route(context.Background(), router.Stanza{El: mustParse(t, "<iq type='result' from='juliet@remote.example' to='alice@localhost' id='"+out.Attr("id")+"'/>"),
		From: jid.MustParse("juliet@remote.example"), To: jid.MustParse("alice@localhost")})
	remote.send("<iq type='result' from='romeo@remote.example' to='alice@localhost' id='" + out.Attr("id") + "'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscription node='urn:xmpp:microblog:0' jid='alice@localhost' subscription='subscribed'/></pubsub></iq>")
	r := e.expect("the forwarded answer", isIQ("p1"))
	fw := r.Child(privilege.NS2, "privilege").Child(privilege.NSForward, "forwarded").Child(xmlstream.NSClient, "iq")
	if r.Attr("type") != "result" || r.Attr("from") != "alice@localhost" || fw == nil || fw.Attr("id") != "sub_1" ||
		fw.Attr("from") != "romeo@remote.example" || fw.Child("http://jabber.org/protocol/pubsub", "pubsub") == nil {
		t.Fatalf("got %s", r)
	}
	remote.send("<iq type='result' from='romeo@remote.example' to='alice@localhost' id='" + out.Attr("id") + "'/>")
	for _, el := range e.drained() {
		t.Fatalf("forwarded twice: %s", el)
	}

	// The user's own account.
	e.send(wrap("p2", "set", "<iq xmlns='jabber:client' type='set' id='priv1'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:bridge'>on</prefs></query></iq>"))
	r = e.expect("private storage set", isIQ("p2"))
	if fw := r.Child(privilege.NS2, "privilege").Child(privilege.NSForward, "forwarded").Child(xmlstream.NSClient, "iq"); fw == nil || fw.Attr("type") != "result" || fw.Attr("id") != "priv1" {
		t.Fatalf("got %s", r)
	}
	a.Send("<iq type='get' id='pg'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:bridge'/></query></iq>")
	if g := a.Expect("alice reads it", isIQ("pg")); !strings.Contains(g.String(), ">on</prefs>") {
		t.Fatalf("got %s", g)
	}

	refused := []struct{ name, xml string }{
		{"namespace not granted", wrap("x1", "get", "<iq xmlns='jabber:client' type='get' to='romeo@remote.example' id='i'><query xmlns='jabber:iq:version'/></iq>")},
		{"type not granted", wrap("x2", "get", "<iq xmlns='jabber:client' type='get' to='romeo@remote.example' id='i'><pubsub xmlns='http://jabber.org/protocol/pubsub'/></iq>")},
		{"types differ", wrap("x3", "set", "<iq xmlns='jabber:client' type='get' id='i'><query xmlns='jabber:iq:private'/></iq>")},
		{"from another user", wrap("x4", "get", "<iq xmlns='jabber:client' type='get' from='bob@localhost' id='i'><query xmlns='jabber:iq:private'/></iq>")},
		{"not jabber:client", wrap("x5", "get", "<iq type='get' id='i'><query xmlns='jabber:iq:private'/></iq>")},
		{"no id", wrap("x6", "get", "<iq xmlns='jabber:client' type='get'><query xmlns='jabber:iq:private'/></iq>")},
		{"two payloads", wrap("x7", "get", "<iq xmlns='jabber:client' type='get' id='i'><query xmlns='jabber:iq:private'/><query xmlns='jabber:iq:private'/></iq>")},
		{"no such user", strings.Replace(wrap("x8", "get", "<iq xmlns='jabber:client' type='get' id='i'><query xmlns='jabber:iq:private'/></iq>"), "alice@", "nobody@", 1)},
	}
	for _, tc := range refused {
		e.send(tc.xml)
		if r := e.expect(tc.name, isIQ(xmlID(t, tc.xml))); !isError("forbidden")(r) {
			t.Fatalf("%s: got %s", tc.name, r)
		}
	}
	v1 := newEntity(t, xs, "old.localhost", &privilege.Grant{Namespace: privilege.NS1, Roster: privilege.Both})
	v1.send(strings.ReplaceAll(wrap("x9", "get", "<iq xmlns='jabber:client' type='get' id='i'><query xmlns='jabber:iq:private'/></iq>"), bridge, "old.localhost"))
	v1.expect("version 1 has no iq permission", errorOf("x9", "forbidden"))
	for _, el := range remote.drained() {
		t.Fatalf("a refused IQ went out: %s", el)
	}
}

func mustParse(t *testing.T, xml string) *xmlstream.Element {
	t.Helper()
	el, err := xmlstream.ParseStanza([]byte(xml), xmlstream.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	return el
}
