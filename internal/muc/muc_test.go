package muc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/muc/room"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xeps"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

const service = "conference.localhost"

func startService(t *testing.T, s *xmpptest.Server, adjust func(*Config)) *Service {
	t.Helper()
	return startServiceOn(t, s, s.Store, adjust)
}

// startServiceOn is startService keeping its rooms in store.
func startServiceOn(t *testing.T, s *xmpptest.Server, store Store, adjust func(*Config)) *Service {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Services = map[string]string{service: "localhost"}
	if adjust != nil {
		adjust(&cfg)
	}
	m, err := New(cfg, Deps{Router: s.Router, Store: store, Log: xmpptest.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Register(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, d := range m.Domains() {
			s.Router.Unregister(d, m)
		}
		m.Stop()
	})
	return m
}

// restart replaces the service by a new one on the same store, as after
// a restart of the process.
func restart(t *testing.T, s *xmpptest.Server, m *Service) *Service {
	t.Helper()
	for _, d := range m.Domains() {
		s.Router.Unregister(d, m)
	}
	m.Stop()
	return startService(t, s, nil)
}

func users(t *testing.T, names ...string) (*xmpptest.Server, map[string]*xmpptest.Client) {
	s := xmpptest.StartServer(t, nil)
	cs := map[string]*xmpptest.Client{}
	for _, n := range names {
		s.AddUser(t, n+"@localhost", "pw-"+n)
		cs[n] = s.Login(t, n, "pw-"+n, "r")
		cs[n].Send("<presence/>")
		cs[n].Expect("own presence", func(el *xmlstream.Element) bool { return el.Local == "presence" })
	}
	return s, cs
}

func is(local, from, typ string) func(*xmlstream.Element) bool {
	return func(el *xmlstream.Element) bool {
		return el.Local == local && (from == "" || el.Attr("from") == from) && el.Attr("type") == typ
	}
}

func contains(el *xmlstream.Element, subs ...string) error {
	s := el.String()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return fmt.Errorf("%s lacks %s", s, sub)
		}
	}
	return nil
}

// join enters room as nick and reads up to the subject.
func join(t *testing.T, c *xmpptest.Client, room, nick string) *xmlstream.Element {
	t.Helper()
	c.Send("<presence to='" + room + "/" + nick + "'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	self := c.Expect("self-presence", func(el *xmlstream.Element) bool {
		return el.Local == "presence" && strings.Contains(el.String(), "code='110'")
	})
	c.Expect("subject", func(el *xmlstream.Element) bool {
		return el.Local == "message" && el.Child(xmlstream.NSClient, "subject") != nil
	})
	return self
}

func configure(t *testing.T, c *xmpptest.Client, room, fields string) {
	t.Helper()
	c.Send("<iq type='set' id='cfg' to='" + room + "'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>" + fields + "</x></query></iq>")
	if r := c.Expect("config result", is("iq", room, "result")); r.Attr("id") != "cfg" {
		t.Fatalf("config: %s", r)
	}
}

func boolField(v string) string {
	return "<field var='" + v + "'><value>1</value></field>"
}

func TestRoomOverSessions(t *testing.T) {
	s, c := users(t, "alice", "bob")
	m := startService(t, s, nil)
	const room = "tea@" + service
	self := join(t, c["alice"], room, "Alice")
	if err := contains(self, "code='201'", "affiliation='owner'"); err != nil {
		t.Fatal(err)
	}
	configure(t, c["alice"], room, boolField("muc#roomconfig_persistentroom"))
	join(t, c["bob"], room, "Bob")
	c["alice"].Expect("bob's presence", is("presence", room+"/Bob", ""))

	c["bob"].Send("<message to='" + room + "' type='groupchat' id='m1'><body>hello</body></message>")
	for _, n := range []string{"alice", "bob"} {
		got := c[n].Expect("reflection", is("message", room+"/Bob", "groupchat"))
		if err := contains(got, "<body>hello</body>", "urn:xmpp:sid:0", "id='m1'"); err != nil {
			t.Fatal(err)
		}
	}
	// The room's archive has it.
	c["alice"].Send("<iq type='set' id='q' to='" + room + "'><query xmlns='urn:xmpp:mam:2' queryid='x'/></iq>")
	res := c["alice"].Expect("archive result", is("message", room, ""))
	if err := contains(res, "queryid='x'", "<body>hello</body>", "from='"+room+"/Bob'"); err != nil {
		t.Fatal(err)
	}
	c["alice"].Expect("fin", is("iq", room, "result"))

	// The directory lists it, and the server lists the service.
	c["bob"].Send("<iq type='get' id='d' to='" + service + "'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	if err := contains(c["bob"].Expect("directory", is("iq", service, "result")), "jid='"+room+"'"); err != nil {
		t.Fatal(err)
	}
	c["bob"].Send("<iq type='get' id='s' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	if err := contains(c["bob"].Expect("services", is("iq", "localhost", "result")), "jid='"+service+"'"); err != nil {
		t.Fatal(err)
	}

	// Bob's connection drops: alice sees him leave (his server sends the
	// unavailable presence of his directed presence).
	c["bob"].Close()
	c["alice"].Expect("bob left", is("presence", room+"/Bob", "unavailable"))

	// After a restart the persistent room is back with its owner and its
	// history.
	m = restart(t, s, m)
	c["alice"].Send("<presence to='" + room + "/Alice' type='unavailable'/>")
	b2 := s.Login(t, "bob", "pw-bob", "again")
	b2.Send("<presence to='" + room + "/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	b2.Expect("history", func(el *xmlstream.Element) bool {
		return el.Local == "message" && strings.Contains(el.String(), "<body>hello</body>") && strings.Contains(el.String(), "urn:xmpp:delay")
	})
	b2.Send("<iq type='get' id='o' to='" + room + "'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='owner'/></query></iq>")
	if err := contains(b2.Expect("owner list", func(el *xmlstream.Element) bool { return el.Local == "iq" && el.Attr("id") == "o" }), "forbidden"); err != nil {
		t.Fatal(err)
	}
	_ = m
}

func TestTemporaryRoomGone(t *testing.T) {
	s, c := users(t, "alice")
	startService(t, s, nil)
	const room = "brief@" + service
	join(t, c["alice"], room, "A")
	configure(t, c["alice"], room, "")
	c["alice"].Send("<presence to='" + room + "/A' type='unavailable'/>")
	c["alice"].Expect("left", is("presence", room+"/A", "unavailable"))
	if _, err := s.Store.MUCRoom(context.Background(), room); err == nil {
		t.Fatal("an empty temporary room is still stored")
	}
	c["alice"].Send("<message to='" + room + "' type='groupchat'><body>x</body></message>")
	if err := contains(c["alice"].Expect("error", is("message", room, "error")), "item-not-found"); err != nil {
		t.Fatal(err)
	}
}

func TestCreationPolicy(t *testing.T) {
	s, c := users(t, "alice", "root")
	startService(t, s, func(cfg *Config) { cfg.Create = CreateAdmins; cfg.Admins = []string{"root@localhost"} })
	c["alice"].Send("<presence to='new@" + service + "/A'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	if err := contains(c["alice"].Expect("refusal", is("presence", "new@"+service+"/A", "error")), "not-allowed"); err != nil {
		t.Fatal(err)
	}
	join(t, c["root"], "new@"+service, "R")

	m := &Service{cfg: Config{Create: CreateLocal, Services: map[string]string{service: "localhost"}, MaxRoomsPerUser: 1}, creators: map[string]int{}}
	if cond, _ := m.mayCreate(jid.MustParse("eve@remote.example/x"), service); cond != "not-allowed" {
		t.Errorf("a remote user may create rooms under the local policy: %q", cond)
	}
	m.creators["bob@localhost"] = 1
	if cond, _ := m.mayCreate(jid.MustParse("bob@localhost/x"), service); cond != "not-allowed" {
		t.Errorf("the room limit did not apply: %q", cond)
	}
	if cond, _ := m.mayCreate(jid.MustParse("carol@localhost/x"), service); cond != "" {
		t.Errorf("a local user may not create: %q", cond)
	}
}

func TestDirectoryPaging(t *testing.T) {
	s, c := users(t, "alice")
	m := startService(t, s, func(cfg *Config) { cfg.MaxRoomsPerUser = 0 })
	for i := range 5 {
		room := fmt.Sprintf("r%d@%s", i, service)
		join(t, c["alice"], room, "A")
		configure(t, c["alice"], room, boolField("muc#roomconfig_persistentroom"))
	}
	hidden := "zhidden@" + service
	join(t, c["alice"], hidden, "A")
	configure(t, c["alice"], hidden, boolField("muc#roomconfig_persistentroom")+"<field var='muc#roomconfig_publicroom'><value>0</value></field>")
	page := func(set string) string {
		c["alice"].Send("<iq type='get' id='d' to='" + service + "'><query xmlns='http://jabber.org/protocol/disco#items'>" + set + "</query></iq>")
		return c["alice"].Expect("items", func(el *xmlstream.Element) bool { return el.Local == "iq" && el.Attr("id") == "d" }).String()
	}
	// The directory is cached briefly; a new service reads it afresh.
	restart(t, s, m)
	all := page("")
	if strings.Count(all, "<item ") != 5 || strings.Contains(all, "zhidden") {
		t.Fatalf("directory: %s", all)
	}
	p1 := page("<set xmlns='http://jabber.org/protocol/rsm'><max>2</max></set>")
	if !strings.Contains(p1, "r0@") || !strings.Contains(p1, "r1@") || strings.Contains(p1, "r2@") || !strings.Contains(p1, "<count>5</count>") {
		t.Fatalf("first page: %s", p1)
	}
	p2 := page("<set xmlns='http://jabber.org/protocol/rsm'><max>2</max><after>r1@" + service + "</after></set>")
	if !strings.Contains(p2, "r2@") || !strings.Contains(p2, "r3@") || strings.Contains(p2, "r1@") {
		t.Fatalf("second page: %s", p2)
	}
	last := page("<set xmlns='http://jabber.org/protocol/rsm'><max>2</max><before/></set>")
	if !strings.Contains(last, "r3@") || !strings.Contains(last, "r4@") || strings.Contains(last, "r2@") {
		t.Fatalf("last page: %s", last)
	}
}

func TestModerationTombstone(t *testing.T) {
	s, c := users(t, "alice", "bob")
	startService(t, s, nil)
	const room = "mod@" + service
	join(t, c["alice"], room, "A")
	configure(t, c["alice"], room, boolField("muc#roomconfig_persistentroom"))
	join(t, c["bob"], room, "B")
	c["bob"].Send("<message to='" + room + "' type='groupchat'><body>spam spam</body></message>")
	got := c["alice"].Expect("spam", is("message", room+"/B", "groupchat"))
	sid := got.Child("urn:xmpp:sid:0", "stanza-id").Attr("id")
	c["alice"].Send("<iq type='set' id='mod' to='" + room + "'><moderate id='" + sid + "' xmlns='urn:xmpp:message-moderate:1'><retract xmlns='urn:xmpp:message-retract:1'/></moderate></iq>")
	c["bob"].Expect("retraction", func(el *xmlstream.Element) bool {
		return el.Local == "message" && el.Child("urn:xmpp:message-retract:1", "retract") != nil
	})
	c["alice"].Send("<iq type='set' id='q' to='" + room + "'><query xmlns='urn:xmpp:mam:2'/></iq>")
	r := c["alice"].Expect("archived", is("message", room, ""))
	if strings.Contains(r.String(), "spam") || !strings.Contains(r.String(), "retracted") {
		t.Fatalf("archive after moderation: %s", r)
	}
}

// TestFeaturesMatchCatalogue: the service announces exactly what the
// catalogue lists for it, and the features rooms announce in every
// configuration are exactly those the catalogue lists for rooms.
func TestFeaturesMatchCatalogue(t *testing.T) {
	same := func(what string, have, want []string) {
		t.Helper()
		have, want = slices.Sorted(slices.Values(have)), slices.Sorted(slices.Values(want))
		if !slices.Equal(slices.Compact(have), slices.Compact(want)) {
			t.Errorf("%s announces %v, the catalogue lists %v", what, have, want)
		}
	}
	same("the service", ServiceFeatures(), xeps.MUCFeatures())
	seen := map[string]bool{}
	for bits := range 1 << 7 {
		c := room.DefaultConfig()
		c.Persistent, c.Public, c.MembersOnly, c.Moderated = bits&1 != 0, bits&2 != 0, bits&4 != 0, bits&8 != 0
		if bits&16 != 0 {
			c.Password = "pw"
		}
		if bits&32 != 0 {
			c.Whois = room.WhoisAnyone
		}
		c.VoiceRequests = bits&64 != 0
		r := room.New(jid.MustParse("r@"+service), room.State{Config: c}, nil, room.Deps{Archiving: true})
		for _, f := range r.Features() {
			seen[f] = true
		}
	}
	same("rooms", slices.Collect(maps.Keys(seen)), xeps.RoomFeatures())
}

// remoteServer stands for federation: it takes what the router sends to
// a remote domain.
type remoteServer struct{ got chan *xmlstream.Element }

func (r remoteServer) HandleStanza(_ context.Context, st router.Stanza) { r.got <- st.El }

// TestRemoteOccupant: a user of another server, whose stanzas arrive in
// the server namespace (jabber:server), joins and talks; local occupants
// get their presence and messages as a client's, with no trace of the
// server namespace, and the remote user gets theirs.
func TestRemoteOccupant(t *testing.T) {
	s, c := users(t, "alice")
	startService(t, s, nil)
	remote := remoteServer{got: make(chan *xmlstream.Element, 100)}
	if err := s.Router.Register("remote.example", remote); err != nil {
		t.Fatal(err)
	}
	const room = "fed@" + service
	join(t, c["alice"], room, "A")
	configure(t, c["alice"], room, "")
	route := func(xml string) {
		t.Helper()
		el, err := xmlstream.ParseStanza([]byte(xml), xmlstream.NSServer)
		if err != nil {
			t.Fatal(err)
		}
		s.Router.Route(context.Background(), router.Stanza{El: el, From: jid.MustParse(el.Attr("from")), To: jid.MustParse(el.Attr("to"))})
	}
	const bob = "bob@remote.example/r"
	route("<presence from='" + bob + "' to='" + room + "/B'><x xmlns='http://jabber.org/protocol/muc'/><show>away</show><status>out</status></presence>")
	p := c["alice"].Expect("bob's presence", is("presence", room+"/B", ""))
	if err := contains(p, "<show>away</show>", "<status>out</status>", "role='participant'", "jid='"+bob+"'"); err != nil {
		t.Fatal(err)
	}
	route("<message from='" + bob + "' to='" + room + "' type='groupchat' id='r1'><body>hi from afar</body></message>")
	m := c["alice"].Expect("bob's message", is("message", room+"/B", "groupchat"))
	if err := contains(m, "<body>hi from afar</body>"); err != nil {
		t.Fatal(err)
	}
	for _, el := range []*xmlstream.Element{p, m} {
		if strings.Contains(el.String(), xmlstream.NSServer) {
			t.Errorf("a local occupant got the server namespace: %s", el)
		}
	}
	// Bob got the room's presences and his own message back.
	for {
		select {
		case el := <-remote.got:
			if el.Local == "message" && el.Attr("from") == room+"/B" {
				if err := contains(el, "<body>hi from afar</body>"); err != nil {
					t.Fatal(err)
				}
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("bob's message did not come back to him")
		}
	}
}

// TestInvitationToARoom: an invitation addressed to a room, the room
// itself or another one, is routed without holding the room's lock, which
// would deadlock (the room waiting for itself, or two rooms for each
// other).
func TestInvitationToARoom(t *testing.T) {
	s, c := users(t, "alice", "bob")
	startService(t, s, nil)
	const a, b = "a@" + service, "b@" + service
	join(t, c["alice"], a, "A")
	configure(t, c["alice"], a, "")
	join(t, c["bob"], b, "B")
	configure(t, c["bob"], b, "")
	for range 20 {
		c["alice"].Send("<message to='" + a + "'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='" + b + "'/></x></message>")
		c["bob"].Send("<message to='" + b + "'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='" + a + "'/></x></message>")
		c["alice"].Send("<message to='" + a + "'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='" + a + "'/></x></message>")
	}
	// Both rooms still answer.
	for _, p := range [][2]string{{"alice", a}, {"bob", b}} {
		c[p[0]].Send("<iq type='get' id='alive' to='" + p[1] + "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
		c[p[0]].Expect("the room answers", func(el *xmlstream.Element) bool { return el.Local == "iq" && el.Attr("id") == "alive" })
	}
}

// roomLog is an Observer and a Hook that records, and refuses messages
// with "spam" in them.
type roomLog struct {
	mu     sync.Mutex
	events []string
}

func (l *roomLog) Watches(r jid.JID) bool { return r.Local() == "watched" }
func (l *roomLog) RoomEvent(r jid.JID, ev room.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf("%s %d %s %s", r, ev.Kind, ev.Nick, ev.JID.Bare()))
}
func (l *roomLog) Decide(_ context.Context, kind string, s router.Stanza) router.Decision {
	if kind == "room_message" && strings.Contains(s.El.String(), "spam") {
		return router.Decision{Deny: true, Condition: "policy-violation", Text: "No spam."}
	}
	return router.Decision{}
}
func (l *roomLog) got() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// An administrator creates a room with its configuration and sets
// affiliations without joining; an observer hears of joins, messages and
// leaves of the rooms it watches only, and a hook refuses a message.
func TestAdministratorAndObserver(t *testing.T) {
	s, c := users(t, "alice", "bob")
	log := &roomLog{}
	cfg := DefaultConfig()
	cfg.Services = map[string]string{service: "localhost"}
	m, err := New(cfg, Deps{Router: s.Router, Store: s.Store, Log: xmpptest.Discard(), Observer: log, Hook: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Register(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	ctx := context.Background()
	watched := jid.MustParse("watched@" + service)
	if err := m.CreateRoom(ctx, watched, jid.MustParse("carol@localhost"), map[string][]string{"muc#roomconfig_roomname": {"Watched"}, "muc#roomconfig_membersonly": {"1"}}); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateRoom(ctx, watched, jid.MustParse("carol@localhost"), nil); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if err := m.CreateRoom(ctx, jid.MustParse("bad@"+service), jid.MustParse("carol@localhost"), map[string][]string{"no-such-field": {"x"}}); err == nil {
		t.Fatal("an unknown field was accepted")
	}
	// Members only: bob is refused until made a member.
	c["bob"].Send("<presence to='watched@" + service + "/Bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	c["bob"].Expect("registration-required", func(el *xmlstream.Element) bool {
		return el.Local == "presence" && strings.Contains(el.String(), "registration-required")
	})
	if err := m.SetAffiliation(ctx, watched, jid.MustParse("bob@localhost"), "member", "welcome"); err != nil {
		t.Fatal(err)
	}
	if err := m.SetAffiliation(ctx, jid.MustParse("nowhere@"+service), jid.MustParse("bob@localhost"), "member", ""); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("affiliation in a room that does not exist: %v", err)
	}
	join(t, c["bob"], watched.String(), "Bob")
	c["bob"].Send("<message type='groupchat' to='" + watched.String() + "'><body>hello</body></message>")
	c["bob"].Expect("reflection", is("message", watched.String()+"/Bob", "groupchat"))
	c["bob"].Send("<message type='groupchat' to='" + watched.String() + "' id='s1'><body>buy spam</body></message>")
	e := c["bob"].Expect("refusal", is("message", watched.String(), "error"))
	if err := contains(e, "policy-violation", "No spam."); err != nil {
		t.Fatal(err)
	}
	c["bob"].Send("<presence type='unavailable' to='" + watched.String() + "/Bob'/>")
	c["bob"].Expect("left", is("presence", watched.String()+"/Bob", "unavailable"))
	join(t, c["alice"], "other@"+service, "Alice")
	rooms, err := m.Rooms(ctx, service)
	if err != nil || len(rooms) != 2 || rooms[0].Occupants != 1 || rooms[1].Name != "Watched" || rooms[1].Occupants != 0 {
		t.Fatalf("rooms %+v %v", rooms, err)
	}
	want := []string{
		"watched@" + service + " 1 Bob bob@localhost",
		"watched@" + service + " 3 Bob bob@localhost",
		"watched@" + service + " 2 Bob bob@localhost",
	}
	if got := log.got(); !slices.Equal(got, want) {
		t.Fatalf("events\n%v\nwant\n%v", got, want)
	}
}

// gatedArchive holds archive batches until open is closed.
type gatedArchive struct {
	Store
	open chan struct{}
}

func (g gatedArchive) AppendArchiveBatch(ctx context.Context, entries []storage.ArchiveEntry) error {
	<-g.open
	return g.Store.AppendArchiveBatch(ctx, entries)
}

// TestRoomMessageAcknowledgedOnceArchived: the occupants get a room
// message at once, and what acknowledges it to its sender (router.Accept:
// the Stream Management counter; in a split server the event's
// acknowledgement goes the same way) waits for its archive entry, as a
// chat message's does.
func TestRoomMessageAcknowledgedOnceArchived(t *testing.T) {
	s, c := users(t, "alice")
	open := make(chan struct{})
	var opened sync.Once
	openGate := func() { opened.Do(func() { close(open) }) }
	m := startServiceOn(t, s, gatedArchive{Store: s.Store, open: open}, nil)
	t.Cleanup(openGate) // before the service stops, which flushes the archive
	const room = "logged@" + service
	join(t, c["alice"], room, "A")

	accepted := make(chan struct{})
	holds := 0
	ctx := router.WithAccept(context.Background(), func() func() {
		holds++
		return func() { close(accepted) }
	})
	msg, err := xmlstream.ParseStanza([]byte("<message xmlns='jabber:client' to='"+room+"' type='groupchat' id='g1'><body>kept</body></message>"), xmlstream.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	m.HandleStanza(ctx, router.Stanza{El: msg, From: jid.MustParse(c["alice"].JID), To: jid.MustParse(room)})
	c["alice"].Expect("the room's copy", is("message", room+"/A", "groupchat"))
	if holds != 1 {
		t.Fatalf("the acknowledgement was held %d times, want once", holds)
	}
	select {
	case <-accepted:
		t.Fatal("acknowledged before the archive wrote the message")
	default:
	}
	openGate()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("not acknowledged once the archive could write")
	}
}
