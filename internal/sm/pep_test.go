package sm

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// fakeSession records what the session manager delivers.
type fakeSession struct {
	jid jid.JID
	mu  sync.Mutex
	got []*xmlstream.Element
}

func (f *fakeSession) JID() jid.JID { return f.jid }
func (f *fakeSession) Close(string) {}
func (f *fakeSession) Deliver(el *xmlstream.Element) {
	// Deliver serializes before returning: keep a copy.
	c, err := xmlstream.ParseStanza(el.AppendXML(nil, xmlstream.NSClient), xmlstream.NSClient)
	if err != nil {
		panic(err)
	}
	f.mu.Lock()
	f.got = append(f.got, c)
	f.mu.Unlock()
}

// take returns and forgets what was delivered.
func (f *fakeSession) take() []*xmlstream.Element {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.got
	f.got = nil
	return g
}

// remote stands for another server: it records what is routed to it.
type remote struct{ fakeSession }

func (r *remote) HandleStanza(_ context.Context, s router.Stanza) { r.Deliver(s.El) }

type pepEnv struct {
	t      *testing.T
	m      *SM
	r      *router.Router
	store  *memory.Store
	remote *remote
}

func newPEPEnv(t *testing.T) *pepEnv {
	t.Helper()
	store := memory.New()
	for _, u := range []string{"alice@localhost", "bob@localhost", "carol@localhost"} {
		// userExists looks for a SHA-256 credential.
		c := storage.Credential{Hash: "SHA-256", Salt: []byte{1}, Iterations: 1, StoredKey: []byte{1}, ServerKey: []byte{1}}
		if err := store.CreateAccount(t.Context(), u, []storage.Credential{c}); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.DiscardHandler)
	r := router.New(log)
	m, err := New(Config{Domain: "localhost"}, Deps{Router: r, Accounts: store, Roster: store, Private: store, PEP: store, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	rem := &remote{}
	if err := r.Register("localhost", m); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("remote.example", rem); err != nil {
		t.Fatal(err)
	}
	return &pepEnv{t: t, m: m, r: r, store: store, remote: rem}
}

func (e *pepEnv) befriend(a, b string) {
	for _, p := range [][2]string{{a, b}, {b, a}} {
		if _, err := e.store.PutRosterItem(e.t.Context(), p[0], storage.RosterItem{Contact: p[1], Subscription: storage.SubscriptionBoth}); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *pepEnv) login(full string) *fakeSession {
	s := &fakeSession{jid: jid.MustParse(full)}
	if err := e.m.Bind(e.t.Context(), s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// send handles xml as sent by the client of s, stamped as the edge does.
func (e *pepEnv) send(s *fakeSession, xml string) {
	e.t.Helper()
	el := mustParse(e.t, xml)
	el.SetAttr("from", s.jid.String())
	var to jid.JID
	if v := el.Attr("to"); v != "" {
		to = jid.MustParse(v)
	}
	e.m.HandleFromSession(e.t.Context(), s, router.Stanza{El: el, From: s.jid, To: to})
}

// iq sends an IQ and returns the answer with its id.
func (e *pepEnv) iq(s *fakeSession, id, xml string) *xmlstream.Element {
	e.t.Helper()
	e.send(s, xml)
	for _, el := range s.take() {
		if el.Local == "iq" && el.Attr("id") == id {
			return el
		}
	}
	e.t.Fatalf("no answer to %s", id)
	return nil
}

// capsPresence is a presence announcing a client with features feats.
func capsPresence(t *testing.T, to string, feats ...string) (presence, disco string) {
	var b strings.Builder
	b.WriteString("<query xmlns='http://jabber.org/protocol/disco#info' node='https://example.org#VER'><identity category='client' type='pc' name='Test'/>")
	for _, f := range feats {
		b.WriteString("<feature var='" + f + "'/>")
	}
	b.WriteString("</query>")
	ver, err := capsVer(mustParse(t, b.String()))
	if err != nil {
		t.Fatal(err)
	}
	toAttr := ""
	if to != "" {
		toAttr = " to='" + to + "'"
	}
	return "<presence" + toAttr + "><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org' ver='" + ver + "'/></presence>",
		strings.Replace(b.String(), "#VER", "#"+ver, 1)
}

// capsQueryTo finds the server's disco#info query among els.
func capsQueryTo(els []*xmlstream.Element) *xmlstream.Element {
	for _, el := range els {
		if el.Local == "iq" && el.Attr("type") == "get" && el.Child("http://jabber.org/protocol/disco#info", "query") != nil {
			return el
		}
	}
	return nil
}

func events(els []*xmlstream.Element, node string) []*xmlstream.Element {
	var out []*xmlstream.Element
	for _, el := range els {
		if el.Local != "message" || el.Attr("type") != "headline" {
			continue
		}
		ev := el.Child(nsPubSubEvent, "event")
		if ev == nil {
			continue
		}
		for c := range ev.ChildElements {
			if c.Attr("node") == node {
				out = append(out, el)
			}
		}
	}
	return out
}

const (
	avatarMeta  = "urn:xmpp:avatar:metadata"
	publishMeta = "<iq type='set' id='pub'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:avatar:metadata'><item id='abc'><metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='3' id='abc' type='image/png'/></metadata></item></publish></pubsub></iq>"
)

// answerCaps answers the server's query as the client of s would.
func (e *pepEnv) answerCaps(s *fakeSession, q *xmlstream.Element, disco string) {
	e.send(s, "<iq type='result' to='"+q.Attr("from")+"' id='"+q.Attr("id")+"'>"+disco+"</iq>")
}

// TestPEPNotifyThroughCaps: a contact whose capabilities ask for the
// avatar metadata gets notifications and, on a new session, the last item;
// the server learns the capabilities by asking the session itself.
func TestPEPNotifyThroughCaps(t *testing.T) {
	e := newPEPEnv(t)
	e.befriend("alice@localhost", "bob@localhost")
	a := e.login("alice@localhost/a")
	b := e.login("bob@localhost/b")
	e.send(a, "<presence/>")
	pres, disco := capsPresence(t, "", avatarMeta+"+notify")
	e.send(b, pres)
	q := capsQueryTo(b.take())
	if q == nil || q.Attr("from") != "localhost" || q.Attr("to") != "bob@localhost/b" {
		t.Fatalf("no capabilities query to bob: %v", q)
	}
	e.answerCaps(b, q, disco)

	if r := e.iq(a, "pub", publishMeta); r.Attr("type") != "result" {
		t.Fatalf("publish: %s", r)
	}
	got := events(b.take(), avatarMeta)
	if len(got) != 1 || got[0].Attr("from") != "alice@localhost" || !strings.Contains(got[0].String(), "image/png") {
		t.Fatalf("bob's notifications: %v", got)
	}
	if n := events(a.take(), avatarMeta); len(n) != 0 {
		t.Fatalf("alice's session without +notify was notified: %v", n)
	}

	// A second session with the same capabilities: no query (cached), and
	// the last item at once.
	b2 := e.login("bob@localhost/b2")
	e.send(b2, pres)
	els := b2.take()
	if capsQueryTo(els) != nil {
		t.Fatal("cached capabilities asked again")
	}
	if n := events(els, avatarMeta); len(n) != 1 || !strings.Contains(n[0].String(), "id='abc'") && !strings.Contains(n[0].String(), `id="abc"`) {
		t.Fatalf("last item on presence: %v", els)
	}
	// A change of status does not send it again.
	e.send(b2, strings.Replace(pres, "</presence>", "<show>away</show></presence>", 1))
	if n := events(b2.take(), avatarMeta); len(n) != 0 {
		t.Fatalf("last item resent on status change: %v", n)
	}

	// Retract with notify.
	e.iq(a, "r", "<iq type='set' id='r'><pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='urn:xmpp:avatar:metadata' notify='true'><item id='abc'/></retract></pubsub></iq>")
	n := events(b.take(), avatarMeta)
	if len(n) != 1 || n[0].Child(nsPubSubEvent, "event").Child(nsPubSubEvent, "items").Child(nsPubSubEvent, "retract") == nil {
		t.Fatalf("retract notification: %v", n)
	}

	// Gone unavailable, bob is no longer notified.
	e.send(b, "<presence type='unavailable'/>")
	e.send(b2, "<presence type='unavailable'/>")
	b.take()
	b2.take()
	e.iq(a, "pub", publishMeta)
	if n := append(events(b.take(), avatarMeta), events(b2.take(), avatarMeta)...); len(n) != 0 {
		t.Fatalf("unavailable session notified: %v", n)
	}
}

// TestCapsAnswerOnlyFromAskedJID: an answer with the query's id from
// another JID, or of another type, is not taken as the answer; a wrong
// hash is refused. Only the right answer turns notifications on.
func TestCapsAnswerOnlyFromAskedJID(t *testing.T) {
	e := newPEPEnv(t)
	e.befriend("alice@localhost", "bob@localhost")
	a := e.login("alice@localhost/a")
	b := e.login("bob@localhost/b")
	c := e.login("carol@localhost/c")
	pres, disco := capsPresence(t, "", avatarMeta+"+notify")
	e.send(b, pres)
	q := capsQueryTo(b.take())
	if q == nil {
		t.Fatal("no query")
	}
	publish := func() int {
		e.iq(a, "pub", publishMeta)
		return len(events(b.take(), avatarMeta))
	}
	// Carol answers with the right id and content.
	e.answerCaps(c, q, disco)
	c.take()
	if publish() != 0 {
		t.Fatal("an answer from another JID was accepted")
	}
	// Bob sends the right content with the id but type set.
	e.send(b, "<iq type='set' to='localhost' id='"+q.Attr("id")+"'>"+disco+"</iq>")
	b.take()
	if publish() != 0 {
		t.Fatal("an answer of type set was accepted")
	}
	// A remote entity tries too.
	e.m.HandleStanza(t.Context(), router.Stanza{El: mustParse(t, "<iq type='result' from='bob@remote.example/b' to='localhost' id='"+q.Attr("id")+"'>"+disco+"</iq>"),
		From: jid.MustParse("bob@remote.example/b"), To: jid.MustParse("localhost")})
	if publish() != 0 {
		t.Fatal("an answer from a remote JID was accepted")
	}
	// The real answer still counts: the last item follows it.
	e.answerCaps(b, q, disco)
	if n := events(b.take(), avatarMeta); len(n) != 1 {
		t.Fatalf("last item after the real answer: %v", n)
	}
	if publish() != 1 {
		t.Fatal("the real answer was not accepted")
	}

	// A session whose answer does not match its hash gets nothing.
	b2 := e.login("bob@localhost/b2")
	pres2, _ := capsPresence(t, "", avatarMeta+"+notify", "urn:example:other")
	e.send(b2, pres2)
	q2 := capsQueryTo(b2.take())
	if q2 == nil {
		t.Fatal("no query for the second hash")
	}
	_, lie := capsPresence(t, "", avatarMeta+"+notify")
	e.answerCaps(b2, q2, lie)
	e.iq(a, "pub", publishMeta)
	if n := events(b2.take(), avatarMeta); len(n) != 0 {
		t.Fatal("an answer that does not match the hash was accepted")
	}
}

// TestPEPRemoteContact: a contact on another server is notified through
// the router, and its capabilities are asked through it.
func TestPEPRemoteContact(t *testing.T) {
	e := newPEPEnv(t)
	e.befriend("alice@localhost", "dave@remote.example")
	a := e.login("alice@localhost/a")
	e.iq(a, "pub", publishMeta)
	pres, disco := capsPresence(t, "alice@localhost", avatarMeta+"+notify")
	dave := jid.MustParse("dave@remote.example/x")
	el := mustParse(t, pres)
	el.SetAttr("from", dave.String())
	e.m.HandleStanza(t.Context(), router.Stanza{El: el, From: dave, To: jid.MustParse("alice@localhost")})
	q := capsQueryTo(e.remote.take())
	if q == nil || q.Attr("to") != dave.String() {
		t.Fatalf("no query to the remote contact: %v", q)
	}
	ans := mustParse(t, "<iq type='result' from='"+dave.String()+"' to='localhost' id='"+q.Attr("id")+"'>"+disco+"</iq>")
	e.r.Route(t.Context(), router.Stanza{El: ans, From: dave, To: jid.MustParse("localhost")})
	if n := events(e.remote.take(), avatarMeta); len(n) != 1 || n[0].Attr("to") != dave.String() {
		t.Fatalf("last item to the remote contact: %v", n)
	}
	e.iq(a, "pub", publishMeta)
	if n := events(e.remote.take(), avatarMeta); len(n) != 1 {
		t.Fatalf("notification to the remote contact: %v", n)
	}
}

func errorOf(el *xmlstream.Element) (cond, app string) {
	er := el.Child(el.Space, "error")
	if el.Attr("type") != "error" || er == nil {
		return "", ""
	}
	for c := range er.ChildElements {
		switch c.Space {
		case "urn:ietf:params:xml:ns:xmpp-stanzas":
			if c.Local != "text" {
				cond = c.Local
			}
		case nsPubSubErrors:
			app = c.Local
			if f := c.Attr("feature"); f != "" {
				app += ":" + f
			}
		}
	}
	return cond, app
}

const bookmarkOptions = `<publish-options><x xmlns='jabber:x:data' type='submit'>
<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>
<field var='pubsub#persist_items'><value>true</value></field>
<field var='pubsub#max_items'><value>max</value></field>
<field var='pubsub#send_last_published_item'><value>never</value></field>
<field var='pubsub#access_model'><value>whitelist</value></field></x></publish-options>`

func publishXML(id, node, itemID, payload, options string) string {
	idAttr := ""
	if itemID != "" {
		idAttr = " id='" + itemID + "'"
	}
	return "<iq type='set' id='" + id + "'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='" + node + "'><item" + idAttr + ">" + payload + "</item></publish>" + options + "</pubsub></iq>"
}

// TestPEPRequests drives the pubsub requests and their errors.
func TestPEPRequests(t *testing.T) {
	e := newPEPEnv(t)
	e.befriend("alice@localhost", "bob@localhost")
	a := e.login("alice@localhost/a")
	b := e.login("bob@localhost/b")
	c := e.login("carol@localhost/c")
	nick := func(n string) string { return "<nick xmlns='http://jabber.org/protocol/nick'>" + n + "</nick>" }
	conference := func(n string) string { return "<conference xmlns='urn:xmpp:bookmarks:1' name='" + n + "'/>" }
	optsOpen := strings.Replace(bookmarkOptions, "<value>whitelist</value>", "<value>open</value>", 1)
	twoItems := "<iq type='set' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item>" + nick("a") + "</item><item>" + nick("b") + "</item></publish></pubsub></iq>"
	tests := []struct {
		name     string
		who      *fakeSession
		xml      string
		cond     string // "" for a result
		app      string
		contains string // in the answer
	}{
		{"publish nick", a, publishXML("x", "http://jabber.org/protocol/nick", "n1", nick("Alice"), ""), "", "", "n1"},
		{"publish generates an id", a, publishXML("x", "http://jabber.org/protocol/tune", "", "<tune xmlns='http://jabber.org/protocol/tune'/>", ""), "", "", "<item id="},
		{"bookmark with options", a, publishXML("x", "urn:xmpp:bookmarks:1", "room1@muc", conference("one"), bookmarkOptions), "", "", ""},
		{"bookmark again, same options", a, publishXML("x", "urn:xmpp:bookmarks:1", "room2@muc", conference("two"), bookmarkOptions), "", "", ""},
		{"bookmark with other options", a, publishXML("x", "urn:xmpp:bookmarks:1", "room3@muc", conference("three"), optsOpen), "conflict", "precondition-not-met", ""},
		{"options with a bad value", a, publishXML("x", "urn:xmpp:omemo:2:devices", "current", "<devices xmlns='urn:xmpp:omemo:2'/>", strings.Replace(bookmarkOptions, "<value>max</value>", "<value>-1</value>", 1)), "conflict", "precondition-not-met", ""},
		{"options of the wrong form type", a, publishXML("x", "n", "1", nick("x"), strings.Replace(bookmarkOptions, "#publish-options", "#node_config", 1)), "bad-request", "invalid-options", ""},
		{"publish without node", a, publishXML("x", "", "1", nick("x"), ""), "bad-request", "nodeid-required", ""},
		{"publish without payload", a, publishXML("x", "n", "1", "", ""), "bad-request", "payload-required", ""},
		{"publish two payloads", a, publishXML("x", "n", "1", nick("a")+nick("b"), ""), "bad-request", "invalid-payload", ""},
		{"publish two items", a, twoItems, "bad-request", "invalid-payload", ""},
		{"publish to another's PEP", b, strings.Replace(publishXML("x", "n", "1", nick("x"), ""), "<iq ", "<iq to='alice@localhost' ", 1), "forbidden", "", ""},
		// OMEMO (XEP-0384): bundles are published open, so that anybody
		// may start an encrypted session; the device list too.
		{"publish OMEMO bundle", a, publishXML("x", "eu.siacs.conversations.axolotl.bundles:1234", "current", "<bundle xmlns='eu.siacs.conversations.axolotl'><signedPreKeyPublic signedPreKeyId='1'>AAAA</signedPreKeyPublic><identityKey>BBBB</identityKey></bundle>", optsOpen), "", "", ""},
		{"publish OMEMO device list", a, publishXML("x", "eu.siacs.conversations.axolotl.devicelist", "current", "<list xmlns='eu.siacs.conversations.axolotl'><device id='1234'/></list>", optsOpen), "", "", ""},
		{"stranger fetches OMEMO bundle", c, "<iq type='get' id='x' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='eu.siacs.conversations.axolotl.bundles:1234'/></pubsub></iq>", "", "", "<identityKey>BBBB</identityKey>"},
		{"stranger fetches OMEMO device list", c, "<iq type='get' id='x' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='eu.siacs.conversations.axolotl.devicelist'/></pubsub></iq>", "", "", "<device id='1234'/>"},
		{"publish OMEMO 2 devices", a, publishXML("x", "urn:xmpp:omemo:2:devices", "current", "<devices xmlns='urn:xmpp:omemo:2'><device id='1234'/></devices>", optsOpen), "", "", ""},
		{"publish mood", a, publishXML("x", "http://jabber.org/protocol/mood", "", "<mood xmlns='http://jabber.org/protocol/mood'><happy/></mood>", ""), "", "", ""},
		{"contact reads mood", b, "<iq type='get' id='x' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='http://jabber.org/protocol/mood'/></pubsub></iq>", "", "", "<happy/>"},
		{"contact reads nick", b, "<iq type='get' id='x' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='http://jabber.org/protocol/nick'/></pubsub></iq>", "", "", "Alice"},
		{"stranger reads nick", c, "<iq type='get' id='x' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='http://jabber.org/protocol/nick'/></pubsub></iq>", "not-authorized", "presence-subscription-required", ""},
		{"contact reads whitelist node", b, "<iq type='get' id='x' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>", "not-allowed", "closed-node", ""},
		{"owner reads bookmarks", a, "<iq type='get' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>", "", "", "two"},
		{"owner reads one bookmark", a, "<iq type='get' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'><item id='room1@muc'/></items></pubsub></iq>", "", "", "one"},
		{"unknown item", a, "<iq type='get' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'><item id='nope'/></items></pubsub></iq>", "item-not-found", "", ""},
		{"unknown node", b, "<iq type='get' id='x' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:example:none'/></pubsub></iq>", "item-not-found", "", ""},
		{"bad max_items", a, "<iq type='get' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1' max_items='zero'/></pubsub></iq>", "bad-request", "", ""},
		{"subscribe", b, "<iq type='set' id='x' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='n' jid='bob@localhost'/></pubsub></iq>", "feature-not-implemented", "unsupported:subscribe", ""},
		{"affiliations", a, "<iq type='get' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='n'/></pubsub></iq>", "feature-not-implemented", "unsupported:modify-affiliations", ""},
		{"retract unknown item", a, "<iq type='set' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='urn:xmpp:bookmarks:1'><item id='nope'/></retract></pubsub></iq>", "item-not-found", "", ""},
		{"retract by a contact", b, "<iq type='set' id='x' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='urn:xmpp:bookmarks:1'><item id='room1@muc'/></retract></pubsub></iq>", "forbidden", "", ""},
		{"retract", a, "<iq type='set' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='urn:xmpp:bookmarks:1'><item id='room1@muc'/></retract></pubsub></iq>", "", "", ""},
		{"create", a, "<iq type='set' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='urn:example:new'/><configure><x xmlns='jabber:x:data' type='submit'><field var='pubsub#access_model'><value>open</value></field><field var='pubsub#max_items'><value>2</value></field></x></configure></pubsub></iq>", "", "", ""},
		{"create again", a, "<iq type='set' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='urn:example:new'/></pubsub></iq>", "conflict", "", ""},
		{"instant node", a, "<iq type='set' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create/></pubsub></iq>", "not-acceptable", "nodeid-required", ""},
		{"open node for a stranger", a, publishXML("x", "urn:example:new", "1", nick("1"), ""), "", "", ""},
		{"trim 1", a, publishXML("x", "urn:example:new", "2", nick("2"), ""), "", "", ""},
		{"trim 2", a, publishXML("x", "urn:example:new", "3", nick("3"), ""), "", "", ""},
		{"stranger reads open node, two kept", c, "<iq type='get' id='x' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:example:new'/></pubsub></iq>", "", "", "<item id='2'><nick xmlns='http://jabber.org/protocol/nick'>2</nick></item><item id='3'>"},
		{"max_items 1", c, "<iq type='get' id='x' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:example:new' max_items='1'/></pubsub></iq>", "", "", "<items node='urn:example:new'><item id='3'>"},
		{"configure get", a, "<iq type='get' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='urn:xmpp:bookmarks:1'/></pubsub></iq>", "", "", "<field var='pubsub#max_items' type='text-single' label='Max number of items to persist'><value>max</value>"},
		{"configure set", a, "<iq type='set' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='urn:example:new'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field><field var='pubsub#access_model'><value>whitelist</value></field></x></configure></pubsub></iq>", "", "", ""},
		{"configure set bad value", a, "<iq type='set' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='urn:example:new'><x xmlns='jabber:x:data' type='submit'><field var='pubsub#access_model'><value>roster</value></field></x></configure></pubsub></iq>", "not-acceptable", "", ""},
		{"configure by a contact", b, "<iq type='get' id='x' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='urn:example:new'/></pubsub></iq>", "forbidden", "", ""},
		{"stranger reads reconfigured node", c, "<iq type='get' id='x' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:example:new'/></pubsub></iq>", "not-allowed", "closed-node", ""},
		{"contact lists nodes", b, "<iq type='get' id='x' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>", "", "", "node='http://jabber.org/protocol/nick'"},
		{"purge", a, "<iq type='set' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><purge node='urn:example:new'/></pubsub></iq>", "", "", ""},
		{"purged", a, "<iq type='get' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:example:new'/></pubsub></iq>", "", "", "<items node='urn:example:new'/>"},
		{"delete", a, "<iq type='set' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete node='urn:example:new'/></pubsub></iq>", "", "", ""},
		{"deleted", a, "<iq type='set' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete node='urn:example:new'/></pubsub></iq>", "item-not-found", "", ""},
		{"account disco", b, "<iq type='get' id='x' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", "", "", "<identity category='pubsub' type='pep'/>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.iq(tt.who, "x", tt.xml)
			cond, app := errorOf(r)
			if cond != tt.cond || app != tt.app {
				t.Fatalf("answer %s: condition %q/%q, want %q/%q", r, cond, app, tt.cond, tt.app)
			}
			if tt.contains != "" && !strings.Contains(strings.ReplaceAll(r.String(), `"`, "'"), tt.contains) {
				t.Fatalf("answer %s does not contain %s", r, tt.contains)
			}
		})
	}
	// The stranger sees alice's open nodes in disco#items, no other.
	r := e.iq(c, "x", "<iq type='get' id='x' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	if got := r.String(); strings.Contains(got, "nick") || strings.Contains(got, "mood") || strings.Contains(got, "bookmarks") || !strings.Contains(got, "axolotl.devicelist") {
		t.Fatalf("stranger must see the open nodes only: %s", r)
	}
}

// FuzzPEPForm feeds arbitrary forms to the option parser.
func FuzzPEPForm(f *testing.F) {
	f.Add([]byte(strings.TrimSuffix(strings.TrimPrefix(bookmarkOptions, "<publish-options>"), "</publish-options>")))
	f.Fuzz(func(t *testing.T, b []byte) {
		el, err := xmlstream.ParseStanza(b, xmlstream.NSClient)
		if err != nil {
			return
		}
		fields, err := parseForm(el, nsPubSubOptions)
		if err != nil {
			return
		}
		n := pepDefault("n")
		if applyForm(&n, fields) != nil {
			return
		}
		// What the form gives is a configuration the server reports back
		// and accepts again unchanged.
		again := pepDefault("n")
		back, err := parseForm(configForm(n), nsPubSubNodeConf)
		if err != nil || applyForm(&again, back) != nil || again != n {
			t.Fatalf("configuration %+v does not round-trip: %+v, %v", n, again, err)
		}
	})
}
