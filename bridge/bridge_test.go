package bridge_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/bridgetest"
	"github.com/ambrosia-xmpp/ambrosia/internal/xeps"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

const (
	gw    = "mem.example"
	alice = "alice@xmpp.example/phone"
)

// xmpp is bridgetest's XMPP side, its stanzas parsed for the tests.
type xmpp struct {
	t *testing.T
	x *bridgetest.XMPP
}

func (x *xmpp) send(from, to, s string) { x.t.Helper(); x.x.Send(from, to, s) }

// expect waits for a stanza the bridge sent that contains every sub.
func (x *xmpp) expect(what string, subs ...string) *xmlstream.Element {
	x.t.Helper()
	s := x.x.Expect(what, subs...)
	el, err := xmlstream.ParseStanza([]byte(s), xmlstream.NSClient)
	if err != nil {
		x.t.Fatalf("the bridge sent what does not parse: %v\n%s", err, s)
	}
	return el
}

func sent(t *testing.T, n *bridgetest.Network, what string) bridgetest.Sent {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case s := <-n.Sent:
			if s.What == what {
				return s
			}
		case <-deadline:
			t.Fatalf("the network got no %s", what)
		}
	}
}

// start serves a bridge for a network in memory; setup, if given, is
// applied to the bridge before it serves.
func start(t *testing.T, mode bridge.Mode, setup ...func(*bridge.Bridge)) (*bridge.Bridge, *bridgetest.Network, *xmpp) {
	t.Helper()
	n := bridgetest.New(mode)
	b, x := serve(t, n, setup...)
	return b, n, x
}

// serve serves a bridge for n.
func serve(t *testing.T, n bridge.Network, setup ...func(*bridge.Bridge)) (*bridge.Bridge, *xmpp) {
	t.Helper()
	cfg := bridge.DefaultConfig()
	cfg.Domain = gw
	cfg.Connect = bridge.Connect{Mode: "component", Server: "127.0.0.1:1", Secret: "s"}
	cfg.DataDir = t.TempDir()
	b, err := bridge.New(n, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(b)
	}
	return b, &xmpp{t: t, x: bridgetest.Attach(t, b)}
}

func TestPuppetOneToOne(t *testing.T) {
	_, n, x := start(t, bridge.Puppet)
	n.AddUser("bob smith", false)
	n.AddUser("carol", true)
	bob := `bob\20smith@` + gw
	// XMPP -> network, with a receipt once the network took it.
	x.send(alice, bob, "<message type='chat' id='m1'><body>hello</body><request xmlns='urn:xmpp:receipts'/><x xmlns='urn:example:unknown' a='1'><y/></x></message>")
	got := sent(t, n, "message")
	if got.To != "bob smith" || got.Message.Body != "hello" || got.User != "alice@xmpp.example" {
		t.Fatalf("sent %+v", got)
	}
	if len(got.Message.Extensions) != 1 || !strings.Contains(got.Message.Extensions[0].XML, "urn:example:unknown") {
		t.Fatalf("extensions %+v", got.Message.Extensions)
	}
	x.expect("receipt", "<received xmlns='urn:xmpp:receipts' id='m1'/>", "from='"+bob+"'")
	// Network -> XMPP, the unknown extension back unchanged.
	s := n.Session("alice@xmpp.example")
	s.Events().Message("bob smith", bridge.Message{ID: "L9", Body: "hi alice", Extensions: got.Message.Extensions})
	m := x.expect("message", "<body>hi alice</body>", "from='"+bob+"'", "to='alice@xmpp.example'")
	if !strings.Contains(m.String(), "<x xmlns='urn:example:unknown' a='1'><y/></x>") {
		t.Fatalf("extension not carried back: %s", m)
	}
	// A correction of it points to the XMPP id it was given.
	s.Events().Message("bob smith", bridge.Message{ID: "L10", Body: "hi Alice", Replaces: "L9"})
	x.expect("correction", "<replace xmlns='urn:xmpp:message-correct:0' id='"+m.Attr("id")+"'/>")
	// The same network id again is not delivered twice.
	s.Events().Message("bob smith", bridge.Message{ID: "L9", Body: "hi alice"})
	// Errors of the network become XMPP errors.
	x.send(alice, "carol@"+gw, "<message type='chat' id='m2'><body>x</body></message>")
	x.expect("recipient-unavailable", "type='error'", "recipient-unavailable", "id='m2'")
	x.send(alice, "nobody@"+gw, "<message type='chat' id='m3'><body>x</body></message>")
	x.expect("item-not-found", "type='error'", "item-not-found", "id='m3'")
	// A reaction and a correction from XMPP name the network's id.
	x.send(alice, bob, "<message type='chat' id='r1'><reactions xmlns='urn:xmpp:reactions:0' id='"+m.Attr("id")+"'><reaction>👍</reaction></reactions></message>")
	if r := sent(t, n, "react"); r.ID != "L9" || r.Text != "[👍]" {
		t.Fatalf("reaction %+v", r)
	}
	x.send(alice, bob, "<message type='chat' id='m4'><body>helo</body></message>")
	first := sent(t, n, "message")
	x.send(alice, bob, "<message type='chat' id='m5'><body>hello!</body><replace xmlns='urn:xmpp:message-correct:0' id='m4'/></message>")
	if e := sent(t, n, "edit"); e.ID != first.ID || e.Message.Body != "hello!" {
		t.Fatalf("edit %+v, first %+v", e, first)
	}
	x.send(alice, bob, "<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	if st := sent(t, n, "state"); st.Text != "composing" {
		t.Fatalf("state %+v", st)
	}
}

func TestTransportRegistration(t *testing.T) {
	_, n, x := start(t, bridge.Transport)
	n.SetPassword("alice", "pw")
	n.AddUser("bob", false)
	n.SetContacts(bridge.Contact{ID: "bob", Name: "Bob", Presence: bridge.Presence{Show: bridge.Away}})
	x.send(alice, gw, "<iq type='get' id='g'><query xmlns='jabber:iq:register'/></iq>")
	x.expect("form", "type='result'", "var='username'", "var='password'", "type='text-private'")
	// Unregistered users are told to register.
	x.send(alice, "bob@"+gw, "<message type='chat' id='m0'><body>x</body></message>")
	x.expect("registration-required", "registration-required", "id='m0'")
	x.send(alice, gw, "<iq type='set' id='bad'><query xmlns='jabber:iq:register'><username>alice</username><password>wrong</password></query></iq>")
	if r := x.expect("refused", "id='bad'", "not-authorized"); strings.Contains(r.String(), "wrong") {
		t.Fatalf("the refusal carries the password back: %s", r)
	}
	x.send(alice, gw, "<presence/>")
	x.send(alice, gw, "<iq type='set' id='reg'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='username'><value>alice</value></field><field var='password'><value>pw</value></field></x></query></iq>")
	x.expect("registered", "id='reg'", "type='result'")
	x.expect("roster suggestion", "http://jabber.org/protocol/rosterx", "jid='bob@"+gw+"'")
	x.expect("bob's presence", "<presence", "from='bob@"+gw+"'", "<show>away</show>")
	x.send(alice, "bob@"+gw, "<message type='chat' id='m1'><body>hi</body></message>")
	if got := sent(t, n, "message"); got.To != "bob" {
		t.Fatalf("sent %+v", got)
	}
	// Going offline logs out; coming back logs in again.
	x.send(alice, gw, "<presence type='unavailable'/>")
	deadline := time.Now().Add(5 * time.Second)
	for n.Session("alice@xmpp.example") != nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n.Session("alice@xmpp.example") != nil {
		t.Fatal("still logged in after the user went offline")
	}
	x.send(alice, gw, "<presence/>")
	for n.Session("alice@xmpp.example") == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n.Session("alice@xmpp.example") == nil {
		t.Fatal("not logged in again")
	}
	// Unregistering removes the contacts and the credentials.
	x.send(alice, gw, "<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>")
	x.expect("unregistered", "id='rm'", "type='result'")
	x.send(alice, "bob@"+gw, "<message type='chat' id='m9'><body>x</body></message>")
	x.expect("registration-required again", "registration-required", "id='m9'")
}

// TestTransportRegistrationKeepsItsSession: a user who registers before
// the gateway knows their presence keeps the session the registration
// opened: their presence, which follows, uses it instead of logging in
// again (on IRC, a second login at once would find the first one still
// holding the nick), and what came meanwhile is delivered then.
func TestTransportRegistrationKeepsItsSession(t *testing.T) {
	_, n, x := start(t, bridge.Transport)
	n.SetPassword("alice", "pw")
	n.AddUser("bob", false)
	x.send(alice, gw, "<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>alice</username><password>pw</password></query></iq>")
	x.expect("registered", "id='reg'", "type='result'")
	x.expect("the gateway's subscription request", "<presence", "type='subscribe'", "from='"+gw+"'")
	s := n.Session("alice@xmpp.example")
	if s == nil || s.Closed() {
		t.Fatal("the session of the registration was closed")
	}
	s.Events().Message("bob", bridge.Message{ID: "L1", Body: "are you there?"})
	x.send(alice, gw, "<presence/>")
	x.expect("what came before the user was online", "<body>are you there?</body>", "from='bob@"+gw+"'")
	x.send(alice, "bob@"+gw, "<message type='chat' id='m1'><body>now I am</body></message>")
	if got := sent(t, n, "message"); got.To != "bob" || got.Message.Body != "now I am" {
		t.Fatalf("sent %+v", got)
	}
	if l := n.Logins(); l != 1 || n.Session("alice@xmpp.example") != s || s.Closed() {
		t.Fatalf("%d logins, the registration's session closed %v or replaced", l, s.Closed())
	}
}

func TestRooms(t *testing.T) {
	_, n, x := start(t, bridge.Puppet)
	n.SetRoom("#go", "Gophers", bridge.Participant{ID: "bob", Nick: "bob", Role: bridge.RoleModerator}, bridge.Participant{ID: "carol", Nick: "carol"})
	room := "#go@" + gw
	x.send(alice, room+"/alice", "<presence><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	if j := sent(t, n, "join"); j.Room != "#go" || j.Text != "alice" {
		t.Fatalf("join %+v", j)
	}
	x.expect("bob's presence", "from='"+room+"/bob'", "role='moderator'")
	x.expect("carol's presence", "from='"+room+"/carol'")
	x.expect("self-presence", "from='"+room+"/alice'", "code='110'")
	x.expect("subject", "<subject>Gophers</subject>")
	// Once: the user has no role to show after that, nor carol (the
	// self-ping's answer comes after anything the room sent before).
	x.send(alice, room+"/alice", "<iq type='get' id='sp0'><ping xmlns='urn:xmpp:ping'/></iq>")
	if next := x.x.Next(5 * time.Second); !strings.Contains(next, "id='sp0'") {
		t.Fatalf("after the subject, want the self-ping's answer; got %s", next)
	}
	// Network -> XMPP.
	s := n.Session("alice@xmpp.example")
	s.Events().RoomMessage("#go", "bob", bridge.Message{ID: "g1", Body: "welcome"})
	x.expect("bob's message", "from='"+room+"/bob'", "<body>welcome</body>", "type='groupchat'")
	// XMPP -> network, reflected once the network took it.
	x.send(alice, room, "<message type='groupchat' id='a1'><body>thanks</body></message>")
	if r := sent(t, n, "room"); r.Message.Body != "thanks" {
		t.Fatalf("room message %+v", r)
	}
	x.expect("reflection", "from='"+room+"/alice'", "<body>thanks</body>", "id='a1'")
	// The user's own standing on the network is their role in the room;
	// the room's lists and settings are the network's, not to change here.
	s.Events().RoomPresence("#go", bridge.Participant{ID: "alice@xmpp.example", Nick: "alice", Role: bridge.RoleModerator})
	x.expect("own role", "from='"+room+"/alice'", "role='moderator'", "code='110'")
	x.send(alice, room, "<iq type='set' id='v1'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='carol' role='visitor'/></query></iq>")
	x.expect("a change of role refused", "id='v1'", "type='error'", "feature-not-implemented")
	// Kicks both ways, nick changes, leaving.
	s.Events().RoomNick("#go", "carol", "caroline")
	x.expect("nick change", "from='"+room+"/carol'", "code='303'", "nick='caroline'")
	s.Events().RoomLeft("#go", "caroline", "spam", "bob")
	s.Events().RoomLeft("#go", "carol", "spam", "bob")
	x.expect("kick", "from='"+room+"/caroline'", "code='307'", "<actor nick='bob'/>")
	x.send(alice, room, "<message type='groupchat'><subject>Go!</subject></message>")
	x.expect("subject change", "<subject>Go!</subject>", "from='"+room+"/alice'")
	x.send(alice, room+"/alice", "<iq type='get' id='sp'><ping xmlns='urn:xmpp:ping'/></iq>")
	x.expect("self-ping answered", "id='sp'", "type='result'")
	x.send(alice, room+"/alice", "<presence type='unavailable'/>")
	if l := sent(t, n, "leave"); l.Room != "#go" {
		t.Fatalf("leave %+v", l)
	}
	// A room the network does not have.
	x.send(alice, "#nope@"+gw+"/alice", "<presence><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	x.expect("refusal", "type='error'", "item-not-found", "from='#nope@"+gw+"/alice'")
}

func TestDiscoAnnouncesWhatTheNetworkDoes(t *testing.T) {
	_, _, x := start(t, bridge.Transport)
	x.send(alice, gw, "<iq type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	x.expect("gateway identity", "category='gateway'", "type='test'", "var='jabber:iq:register'", "var='http://jabber.org/protocol/muc'", "var='http://jabber.org/protocol/commands'")
	x.send(alice, "bob@"+gw, "<iq type='get' id='c'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	x.expect("contact features", "var='urn:xmpp:reactions:0'", "var='urn:xmpp:message-correct:0'", "var='http://jabber.org/protocol/chatstates'")
	// A network whose logins take one step has no commands.
	_, y := serve(t, struct{ bridge.Network }{bridgetest.New(bridge.Transport)})
	y.send(alice, gw, "<iq type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if d := y.expect("gateway features", "id='d'", "var='jabber:iq:register'"); strings.Contains(d.String(), "commands") {
		t.Fatalf("commands announced by a network with no logins in steps: %s", d)
	}
	y.send(alice, gw, "<iq type='get' id='i'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>")
	if d := y.expect("no commands", "id='i'", "type='result'"); strings.Contains(d.String(), "<item") {
		t.Fatalf("commands listed by a network with no logins in steps: %s", d)
	}
	y.send(alice, gw, "<iq type='set' id='e'><command xmlns='http://jabber.org/protocol/commands' node='jabber:iq:register' action='execute'/></iq>")
	y.expect("no login command", "id='e'", "service-unavailable")
}

// TestBadInput: what a network or a user sends wrong is refused with the
// right error or dropped with a log line, never passed on broken.
func TestBadInput(t *testing.T) {
	_, n, x := start(t, bridge.Puppet)
	n.AddUser("bob", false)
	x.send(alice, "bob@"+gw, "<message type='chat' id='m1'><body>hi</body></message>")
	sent(t, n, "message")
	s := n.Session("alice@xmpp.example")
	// An id no address can hold: the event goes nowhere.
	s.Events().Message(bridge.UserID(strings.Repeat("x", 2000)), bridge.Message{Body: "too long an id"})
	s.Events().Message("nul\x00byte", bridge.Message{Body: "a NUL in an id"})
	// A broken extension is dropped, the message delivered; controls and
	// broken UTF-8 in the text come out as well-formed XML.
	s.Events().Message("bob", bridge.Message{ID: "x1", Body: "ctl\x01 bad\xff end", Extensions: []bridge.Extension{{XML: "<broken"}}})
	m := x.expect("the message with the broken extension dropped", "from='bob@"+gw+"'", "end</body>")
	if strings.Contains(m.String(), "broken") {
		t.Fatalf("a broken extension went through: %s", m)
	}
	if _, err := xmlstream.ParseStanza(m.AppendXML(nil, xmlstream.NSClient), xmlstream.NSClient); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, m)
	}
	// Too long for the network.
	x.send(alice, "bob@"+gw, "<message type='chat' id='big'><body>"+strings.Repeat("a", 70000)+"</body></message>")
	x.expect("policy-violation", "id='big'", "policy-violation")
	// A message to the gateway itself, a groupchat to a user, a JID-less
	// sender.
	x.send(alice, "bob@"+gw, "<message type='groupchat' id='gc'><body>x</body></message>")
	x.expect("an error for groupchat outside a room", "id='gc'", "type='error'", "item-not-found")
	x.send("xmpp.example", "bob@"+gw, "<message type='chat' id='srv'><body>x</body></message>")
	x.expect("not-allowed", "id='srv'", "not-allowed")
	// Nothing of the invalid ids came out.
	for s := x.x.Next(100 * time.Millisecond); s != ""; s = x.x.Next(100 * time.Millisecond) {
		if strings.Contains(s, "an id") {
			t.Fatalf("an event with an unusable id came out: %s", s)
		}
	}
}

// TestRelogin: a session that ends on its own is logged in again, waiting
// longer after each failure.
func TestRelogin(t *testing.T) {
	_, n, x := start(t, bridge.Puppet)
	n.AddUser("bob", false)
	x.send(alice, "bob@"+gw, "<message type='chat'><body>hi</body></message>")
	sent(t, n, "message")
	first := n.Session("alice@xmpp.example")
	first.Events().Disconnected(errors.New("connection reset"))
	deadline := time.Now().Add(5 * time.Second)
	for n.Logins() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n.Logins() < 2 {
		t.Fatal("no login again after the session ended")
	}
}

// A probe of a user of the network is answered with the presence the
// network last reported to the prober, unavailable if none; when the
// session ends, whoever was seen online goes offline.
func TestProbeAnsweredWithLastPresence(t *testing.T) {
	_, n, x := start(t, bridge.Puppet)
	n.AddUser("bob", false)
	n.AddUser("carol", false)
	bob, carol := "bob@"+gw, "carol@"+gw
	// Any stanza logs alice in; a message to bob will do.
	x.send(alice, bob, "<message type='chat' id='m1'><body>hi</body></message>")
	sent(t, n, "message")
	x.send(alice, carol, "<presence type='probe'/>")
	x.expect("carol unknown: unavailable", "from='"+carol+"'", "type='unavailable'")
	s := n.Session("alice@xmpp.example")
	s.Events().Presence("bob", bridge.Presence{Show: bridge.Away, Status: "lunch"})
	x.expect("bob's presence", "from='"+bob+"'", "<show>away</show>")
	x.send(alice, bob, "<presence type='probe'/>")
	p := x.expect("bob's presence again", "from='"+bob+"'", "<show>away</show>", "<status>lunch</status>")
	if strings.Contains(p.String(), "unavailable") {
		t.Fatalf("probe answered %s", p)
	}
	s.Events().Presence("bob", bridge.Presence{Offline: true})
	x.expect("bob gone", "from='"+bob+"'", "type='unavailable'")
	x.send(alice, bob, "<presence type='probe'/>")
	x.expect("bob offline", "from='"+bob+"'", "type='unavailable'")
	s.Events().Presence("carol", bridge.Presence{})
	x.expect("carol's presence", "from='"+carol+"'")
	s.Events().Disconnected(errors.New("network restarts"))
	x.expect("carol offline with the session", "from='"+carol+"'", "type='unavailable'")
}

// TestRichMessages: markers, retractions, replies, attachments, chat
// states and avatars cross both ways, each as the model names it.
func TestRichMessages(t *testing.T) {
	_, n, x := start(t, bridge.Puppet)
	n.AddUser("bob", false)
	bob := "bob@" + gw
	// XMPP -> network.
	x.send(alice, bob, "<message type='chat' id='a1'><body>see https://files.example/cat.png</body>"+
		"<x xmlns='jabber:x:oob'><url>https://files.example/cat.png</url></x>"+
		"<file-sharing xmlns='urn:xmpp:sfs:0'><file xmlns='urn:xmpp:file:metadata:0'><media-type>image/png</media-type><name>cat.png</name><size>1234</size></file>"+
		"<sources><url-data xmlns='http://jabber.org/protocol/url-data' target='https://files.example/cat.png'/></sources></file-sharing></message>")
	m := sent(t, n, "message")
	if len(m.Message.Attachments) != 1 {
		t.Fatalf("attachments %+v", m.Message.Attachments)
	}
	if a := m.Message.Attachments[0]; a.URL != "https://files.example/cat.png" || a.Name != "cat.png" || a.MediaType != "image/png" || a.Size != 1234 {
		t.Fatalf("attachment %+v", a)
	}
	if len(m.Message.Extensions) != 0 {
		t.Fatalf("known payloads kept as extensions: %+v", m.Message.Extensions)
	}
	s := n.Session("alice@xmpp.example")
	s.Events().Message("bob", bridge.Message{ID: "L1", Body: "nice"})
	in := x.expect("bob's message", "from='"+bob+"'", "<body>nice</body>", "<markable xmlns='urn:xmpp:chat-markers:0'/>")
	x.send(alice, bob, "<message type='chat' id='a2'><body>thanks</body><reply xmlns='urn:xmpp:reply:0' id='"+in.Attr("id")+"' to='"+bob+"'/></message>")
	if r := sent(t, n, "message"); r.Message.ReplyTo != "L1" {
		t.Fatalf("reply to %q, want L1", r.Message.ReplyTo)
	}
	x.send(alice, bob, "<message type='chat' id='a3'><displayed xmlns='urn:xmpp:chat-markers:0' id='"+in.Attr("id")+"'/></message>")
	if d := sent(t, n, "displayed"); d.ID != "L1" {
		t.Fatalf("displayed %+v", d)
	}
	x.send(alice, bob, "<message type='chat' id='a4'><retract xmlns='urn:xmpp:message-retract:1' id='a2'/></message>")
	if r := sent(t, n, "retract"); r.ID == "" {
		t.Fatalf("retraction of an unknown id %+v", r)
	}
	// Network -> XMPP.
	s.Events().Message("bob", bridge.Message{ID: "L2", Body: "and this", ReplyTo: "L1",
		Attachments: []bridge.Attachment{{URL: "https://legacy.example/f/1", Name: "dog.jpg", MediaType: "image/jpeg", Size: 99}}})
	x.expect("reply with an attachment", "<reply xmlns='urn:xmpp:reply:0' id='"+in.Attr("id")+"'", "<url>https://legacy.example/f/1</url>",
		"<file-sharing xmlns='urn:xmpp:sfs:0'", "<name>dog.jpg</name>", "<size>99</size>", "target='https://legacy.example/f/1'")
	s.Events().Displayed("bob", m.ID)
	x.expect("displayed marker", "from='"+bob+"'", "<displayed xmlns='urn:xmpp:chat-markers:0' id='a1'/>")
	s.Events().Retraction("bob", "L2")
	x.expect("retraction", "from='"+bob+"'", "<retract xmlns='urn:xmpp:message-retract:1'")
	s.Events().Reaction("bob", bridge.Reaction{To: m.ID, Emojis: []string{"🐈"}})
	x.expect("reaction", "<reactions xmlns='urn:xmpp:reactions:0' id='a1'>", "<reaction>🐈</reaction>")
	s.Events().ChatState("bob", bridge.Composing)
	x.expect("chat state", "<composing xmlns='http://jabber.org/protocol/chatstates'/>")
	s.Events().Presence("bob", bridge.Presence{Avatar: &bridge.Avatar{Type: "image/png", Data: []byte("\x89PNG fake")}})
	p := x.expect("presence with the avatar's hash", "from='"+bob+"'", "vcard-temp:x:update", "<photo>")
	hash := p.Child("vcard-temp:x:update", "x").Child("vcard-temp:x:update", "photo").Text()
	x.send(alice, bob, "<iq type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>")
	v := x.expect("the vCard", "id='v1'", "<TYPE>image/png</TYPE>", "<BINVAL>")
	if hash == "" || !strings.Contains(v.String(), "iVBORyBmYWtl") {
		t.Fatalf("hash %q, vCard %s", hash, v)
	}
}

// TestDiscoMatchesCatalogue: a bridge whose network does everything
// announces every feature the catalogue lists for bridges, and nothing
// else.
func TestDiscoMatchesCatalogue(t *testing.T) {
	_, _, x := start(t, bridge.Transport)
	got := map[string]bool{}
	for i, to := range []string{gw, "bob@" + gw} {
		id := fmt.Sprint("d", i)
		x.send(alice, to, "<iq type='get' id='"+id+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
		r := x.expect("disco#info of "+to, "id='"+id+"'", "type='result'")
		for f := range r.Child("http://jabber.org/protocol/disco#info", "query").ChildElements {
			if f.Local == "feature" {
				got[f.Attr("var")] = true
			}
		}
	}
	want := map[string]bool{}
	for _, f := range xeps.BridgeFeatures() {
		want[f] = true
		if !got[f] {
			t.Errorf("the catalogue lists %s for bridges; not announced", f)
		}
	}
	for f := range got {
		if !want[f] {
			t.Errorf("announced %s, not in the catalogue", f)
		}
	}
}

// next returns the next stanza the bridge sends, failing without one.
func (x *xmpp) next(what string) *xmlstream.Element {
	x.t.Helper()
	s := x.x.Next(5 * time.Second)
	if s == "" {
		x.t.Fatalf("no %s", what)
	}
	el, err := xmlstream.ParseStanza([]byte(s), xmlstream.NSClient)
	if err != nil {
		x.t.Fatalf("the bridge sent what does not parse: %v\n%s", err, s)
	}
	return el
}

// TestContactsInRoster: with the server's roster privilege (XEP-0356), a
// contact the network reports is put in the user's roster with a roster
// set, once: reported again as it is, only its presence goes out; with
// another name, it is set again. Refused by the server, it is suggested
// instead (XEP-0144, and a subscription), as without the privilege. The
// user removing the contact (a roster push of the server's) forgets it,
// so that the next report puts it back. The next login is told the
// contacts in the roster (Account.Contacts).
func TestContactsInRoster(t *testing.T) {
	_, n, x := start(t, bridge.Puppet)
	n.AddUser("bob", false)
	const user, bob = "alice@xmpp.example", "bob@" + gw
	x.send("xmpp.example", gw, "<message><privilege xmlns='urn:xmpp:privilege:2'><perm access='roster' type='both'/></privilege></message>")
	x.send(alice, bob, "<message type='chat'><body>hi</body></message>")
	sent(t, n, "message")
	if cs := n.Session(user).Account().Contacts; len(cs) != 0 {
		t.Fatalf("first login told contacts %v", cs)
	}
	ev := n.Session(user).Events()
	set := func(what string, name string) string {
		t.Helper()
		el := x.next(what)
		s := el.String()
		for _, sub := range []string{"<iq", "type='set'", "to='" + user + "'", "from='" + gw + "'", "<query xmlns='jabber:iq:roster'>",
			"jid='" + bob + "'", "subscription='both'", "name='" + name + "'", "<group>Memory</group>"} {
			if !strings.Contains(s, sub) {
				t.Fatalf("%s: %s has no %s", what, s, sub)
			}
		}
		if p := x.next("bob's presence after " + what); p.Local != "presence" || p.Attr("from") != bob {
			t.Fatalf("after %s: %s, want bob's presence", what, p)
		}
		return el.Attr("id")
	}
	presenceOnly := func(what string) {
		t.Helper()
		if p := x.next(what); p.Local != "presence" || p.Attr("from") != bob {
			t.Fatalf("%s: %s, want bob's presence and no roster set", what, p)
		}
	}

	ev.Contact(bridge.Contact{ID: "bob", Name: "Bob"})
	id := set("the roster set", "Bob")
	x.send(user, gw, "<iq type='result' id='"+id+"'/>")
	ev.Contact(bridge.Contact{ID: "bob", Name: "Bob", Presence: bridge.Presence{Show: bridge.Away}})
	presenceOnly("the same contact again")
	ev.Contact(bridge.Contact{ID: "bob", Name: "Bobby"})
	id = set("the roster set of the new name", "Bobby")

	// An answer from someone else is not the answer.
	refuse := "<iq type='error' id='" + id + "'><error type='wait'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
	x.send("mallory@xmpp.example", gw, refuse)
	ev.Contact(bridge.Contact{ID: "bob", Name: "Bobby"})
	presenceOnly("the contact after someone else's refusal")
	// Refused: suggested, and asked for.
	x.send(user, gw, refuse)
	if m := x.next("the suggestion after a refusal").String(); !strings.Contains(m, "<x xmlns='http://jabber.org/protocol/rosterx'><item action='add' jid='"+bob+"' name='Bobby'><group>Memory</group>") ||
		!strings.Contains(m, "to='"+user+"'") {
		t.Fatalf("after a refusal: %s, want a suggestion of bob", m)
	}
	if p := x.next("the subscription after a refusal"); p.Local != "presence" || p.Attr("type") != "subscribe" || p.Attr("from") != bob {
		t.Fatalf("after a refusal: %s, want bob's subscription request", p)
	}
	ev.Contact(bridge.Contact{ID: "bob", Name: "Bobby"})
	presenceOnly("the contact after the suggestion")

	// Removed by the user: the push is answered, and the next report
	// puts the contact back.
	x.send(user, gw, "<iq type='set' id='push1'><query xmlns='jabber:iq:roster'><item jid='"+bob+"' subscription='remove'/></query></iq>")
	if r := x.next("the answer to the push"); r.Attr("type") != "result" || r.Attr("id") != "push1" {
		t.Fatalf("push answered %s", r)
	}
	ev.Contact(bridge.Contact{ID: "bob", Name: "Bobby"})
	set("the roster set after a removal", "Bobby")

	// The next login is told bob.
	ev.Disconnected(errors.New("connection reset"))
	deadline := time.Now().Add(10 * time.Second)
	for n.Logins() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s := n.Session(user)
	if n.Logins() < 2 || s == nil {
		t.Fatal("no login again after the session ended")
	}
	if cs := s.Account().Contacts; len(cs) != 1 || cs[0] != "bob" {
		t.Fatalf("the next login was told contacts %v, want [bob]", cs)
	}
}
