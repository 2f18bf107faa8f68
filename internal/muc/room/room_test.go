package room

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

const roomJID = "coven@chat.example"

// out is one stanza a room sent, serialized with its recipient.
type out struct {
	to  string
	xml string
	el  *xmlstream.Element
}

type harness struct {
	t   *testing.T
	r   *Room
	now time.Time
	seq int
	res *Result
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	h.r = New(jid.MustParse(roomJID), State{}, nil, h.deps())
	return h
}

func (h *harness) deps() Deps {
	return Deps{
		Now: func() time.Time { return h.now },
		NewStanzaID: func() (string, time.Time) {
			h.seq++
			return fmt.Sprintf("sid%04d", h.seq), h.now
		},
		NewID: func() string {
			h.seq++
			return fmt.Sprintf("id%d", h.seq)
		},
		Archiving: true,
		Limits:    DefaultLimits(),
	}
}

func parse(t *testing.T, s string) *xmlstream.Element {
	t.Helper()
	el, err := xmlstream.ParseStanza([]byte(s), xmlstream.NSClient)
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return el
}

// send hands the room a stanza from a real JID to a room address and
// returns what it sent, one entry per recipient.
func (h *harness) send(from, to, xml string) []out {
	h.t.Helper()
	el := parse(h.t, xml)
	el.SetAttr("from", from)
	el.SetAttr("to", to)
	h.res = h.r.Handle(el, jid.MustParse(from), jid.MustParse(to))
	return h.collect(h.res)
}

func (h *harness) collect(res *Result) []out {
	var outs []out
	for _, d := range res.Out {
		for _, to := range d.To {
			c := d.El.ShallowCopy()
			c.SetAttr("to", to.String())
			outs = append(outs, out{to: to.String(), xml: c.String(), el: c})
		}
	}
	return outs
}

// to keeps the stanzas sent to one JID.
func to(outs []out, j string) []out {
	var r []out
	for _, o := range outs {
		if o.to == j {
			r = append(r, o)
		}
	}
	return r
}

func has(t *testing.T, o out, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(o.xml, s) {
			t.Errorf("stanza to %s lacks %q:\n%s", o.to, s, o.xml)
		}
	}
}

func lacks(t *testing.T, o out, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(o.xml, s) {
			t.Errorf("stanza to %s has %q:\n%s", o.to, s, o.xml)
		}
	}
}

func one(t *testing.T, outs []out, j string) out {
	t.Helper()
	got := to(outs, j)
	if len(got) != 1 {
		t.Fatalf("%d stanzas to %s, want 1: %v", len(got), j, got)
	}
	return got[0]
}

func errorCond(t *testing.T, outs []out, j, cond string) {
	t.Helper()
	o := one(t, outs, j)
	has(t, o, "type='error'", "<"+cond+" ")
}

const (
	crone = "crone@shakespeare.example/desktop"
	hag   = "hag@shakespeare.example/pda"
	witch = "witch@shakespeare.example/laptop"
)

func joinXML(extra string) string {
	return "<presence><x xmlns='http://jabber.org/protocol/muc'>" + extra + "</x></presence>"
}

// open creates the room as crone (owner, nick firstwitch) with an
// instant configuration, and has hag join as secondwitch.
func (h *harness) open(config string) {
	h.t.Helper()
	outs := h.send(crone, roomJID+"/firstwitch", joinXML(""))
	has(h.t, to(outs, crone)[0], "code='201'", "code='110'", "affiliation='owner'", "role='moderator'")
	if !h.res.Created || !h.r.Locked() {
		h.t.Fatal("the room was not created locked")
	}
	outs = h.send(crone, roomJID, "<iq type='set' id='c1'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>"+config+"</x></query></iq>")
	has(h.t, outs[0], "type='result'", "id='c1'")
	if h.r.Locked() {
		h.t.Fatal("the room is still locked after the instant configuration")
	}
	h.send(hag, roomJID+"/secondwitch", joinXML(""))
}

func field(v string, vals ...string) string {
	s := "<field var='" + v + "'>"
	for _, x := range vals {
		s += "<value>" + x + "</value>"
	}
	return s + "</field>"
}

func TestCreateLockedAndJoinOrder(t *testing.T) {
	h := newHarness(t)
	h.send(crone, roomJID+"/firstwitch", joinXML(""))
	// Nobody else may enter a locked room.
	outs := h.send(hag, roomJID+"/secondwitch", joinXML(""))
	errorCond(t, outs, hag, "item-not-found")
	h.send(crone, roomJID, "<iq type='set' id='c1'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>")

	outs = h.send(hag, roomJID+"/secondwitch", "<presence id='j1'><x xmlns='http://jabber.org/protocol/muc'/><show>away</show></presence>")
	mine := to(outs, hag)
	// Roster first, own presence (110) next, then the subject last.
	if len(mine) != 3 {
		t.Fatalf("newcomer got %d stanzas: %v", len(mine), mine)
	}
	has(t, mine[0], "from='"+roomJID+"/firstwitch'", "affiliation='owner'", "role='moderator'")
	lacks(t, mine[0], "jid=", "code='110'")
	has(t, mine[1], "from='"+roomJID+"/secondwitch'", "code='110'", "id='j1'", "<show>away</show>", "jid='"+hag+"'", "occupant-id")
	lacks(t, mine[1], "code='201'", "code='100'")
	has(t, mine[2], "<subject/>", "type='groupchat'")
	// The owner, a moderator, sees the newcomer's real JID.
	has(t, one(t, outs, crone), "from='"+roomJID+"/secondwitch'", "jid='"+hag+"'", "<show>away</show>")

	// A participant does not see real JIDs in a semi-anonymous room.
	outs = h.send(witch, roomJID+"/thirdwitch", joinXML(""))
	has(t, one(t, outs, hag), "from='"+roomJID+"/thirdwitch'", "role='participant'")
	lacks(t, one(t, outs, hag), "jid=")
	has(t, one(t, outs, crone), "jid='"+witch+"'")
}

func TestLegacyJoinIsInstant(t *testing.T) {
	h := newHarness(t)
	h.send(crone, roomJID+"/firstwitch", "<presence/>")
	if h.r.Locked() {
		t.Fatal("a groupchat 1.0 join left the room locked")
	}
	outs := h.send(hag, roomJID+"/secondwitch", "<presence/>")
	if len(to(outs, hag)) != 3 {
		t.Fatalf("join into an instant room: %v", outs)
	}
}

func TestCancelInitialConfigurationDestroys(t *testing.T) {
	h := newHarness(t)
	h.send(crone, roomJID+"/firstwitch", joinXML(""))
	outs := h.send(crone, roomJID, "<iq type='set' id='c1'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='cancel'/></query></iq>")
	if !h.res.Destroyed {
		t.Fatal("cancelling the initial configuration did not destroy the room")
	}
	has(t, outs[0], "type='unavailable'", "<destroy")
}

func TestJoinRefusals(t *testing.T) {
	tests := []struct {
		name   string
		config string
		setup  func(h *harness)
		from   string
		nick   string
		join   string
		cond   string
	}{
		{"NickInUse", "", nil, witch, "secondwitch", joinXML(""), "conflict"},
		{"NickInUseOtherCase", "", nil, witch, "SecondWitch", joinXML(""), "conflict"},
		{"NickOnlySpaces", "", nil, witch, "%20%20", joinXML(""), "jid-malformed"},
		{"Banned", "", func(h *harness) {
			h.send(crone, roomJID, "<iq type='set' id='b'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' jid='witch@shakespeare.example'/></query></iq>")
		}, witch, "thirdwitch", joinXML(""), "forbidden"},
		{"BannedDomain", "", func(h *harness) {
			h.send(crone, roomJID, "<iq type='set' id='b'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' jid='evil.example'/></query></iq>")
		}, "imp@evil.example/x", "imp", joinXML(""), "forbidden"},
		{"MembersOnly", field("muc#roomconfig_membersonly", "1"), nil, witch, "thirdwitch", joinXML(""), "registration-required"},
		{"NoPassword", field("muc#roomconfig_passwordprotectedroom", "1") + field("muc#roomconfig_roomsecret", "cauldron"), nil, witch, "thirdwitch", joinXML(""), "not-authorized"},
		{"WrongPassword", field("muc#roomconfig_passwordprotectedroom", "1") + field("muc#roomconfig_roomsecret", "cauldron"), nil, witch, "thirdwitch", joinXML("<password>pot</password>"), "not-authorized"},
		{"Full", field("muc#roomconfig_maxusers", "2"), nil, witch, "thirdwitch", joinXML(""), "service-unavailable"},
		{"ReservedNick", "", func(h *harness) {
			h.send(crone, roomJID, "<iq type='set' id='m'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='hecate@shakespeare.example'/></query></iq>")
			h.send("hecate@shakespeare.example/broom", roomJID, "<iq type='set' id='r'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>"+field("FORM_TYPE", "http://jabber.org/protocol/muc#register")+field("muc#register_roomnick", "Hecate")+"</x></query></iq>")
		}, witch, "hecate", joinXML(""), "conflict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.open(tt.config)
			if tt.setup != nil {
				tt.setup(h)
			}
			nick := strings.ReplaceAll(tt.nick, "%20", " ")
			el := parse(t, tt.join)
			res := h.r.Handle(el, jid.MustParse(tt.from), jid.JID{}.Bare())
			_ = res
			j, err := jid.New("coven", "chat.example", nick)
			if err != nil {
				t.Fatal(err)
			}
			el.SetAttr("from", tt.from)
			el.SetAttr("to", j.String())
			outs := h.collect(h.r.Handle(el, jid.MustParse(tt.from), j))
			errorCond(t, outs, tt.from, tt.cond)
		})
	}
}

func TestJoinWithPasswordAndAdminsInFullRoom(t *testing.T) {
	h := newHarness(t)
	h.open(field("muc#roomconfig_passwordprotectedroom", "1") + field("muc#roomconfig_roomsecret", "cauldron") + field("muc#roomconfig_maxusers", "10"))
	outs := h.send(witch, roomJID+"/thirdwitch", joinXML("<password>cauldron</password>"))
	has(t, to(outs, witch)[len(to(outs, witch))-2], "code='110'")

	h2 := newHarness(t)
	h2.open(field("muc#roomconfig_maxusers", "10"))
	h2.r.state.Config.MaxUsers = 2
	h2.send(crone, roomJID, "<iq type='set' id='a'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>")
	h2.send(crone, roomJID, "<iq type='set' id='a'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin' jid='witch@shakespeare.example'/></query></iq>")
	outs = h2.send(witch, roomJID+"/thirdwitch", joinXML(""))
	has(t, to(outs, witch)[2], "code='110'", "affiliation='admin'")
}

func TestNickPreparation(t *testing.T) {
	h := newHarness(t)
	h.open("")
	j, _ := jid.New("coven", "chat.example", "  Third   Witch ")
	el := parse(t, joinXML(""))
	outs := h.collect(h.r.Handle(el, jid.MustParse(witch), j))
	self := to(outs, witch)
	has(t, self[len(self)-2], "from='"+roomJID+"/Third Witch'", "code='210'", "code='110'")
}

func TestGroupchat(t *testing.T) {
	h := newHarness(t)
	h.open("")
	outs := h.send(hag, roomJID, "<message type='groupchat' id='m1'><body>Harpier cries</body><stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='"+roomJID+"'/><occupant-id xmlns='urn:xmpp:occupant-id:0' id='forged'/></message>")
	if len(outs) != 2 {
		t.Fatalf("reflected to %d, want 2: %v", len(outs), outs)
	}
	for _, o := range outs {
		has(t, o, "from='"+roomJID+"/secondwitch'", "id='m1'", "type='groupchat'", "<body>Harpier cries</body>", "urn:xmpp:sid:0", "by='"+roomJID+"'", "urn:xmpp:occupant-id:0")
		lacks(t, o, "forged")
		if !o.el.HasRaw() {
			t.Error("a reflected message is serialized again for each recipient")
		}
	}
	if len(h.res.Archive) != 1 || h.res.Archive[0].Occupant.String() != roomJID+"/secondwitch" {
		t.Fatalf("archive: %+v", h.res.Archive)
	}
	// Chat states are reflected but not archived.
	h.send(hag, roomJID, "<message type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	if len(h.res.Archive) != 0 {
		t.Fatal("a chat state was archived")
	}
	// Strangers may not speak.
	errorCond(t, h.send(witch, roomJID, "<message type='groupchat'><body>hi</body></message>"), witch, "not-acceptable")
	// Nor may a message to everyone be of another type.
	errorCond(t, h.send(hag, roomJID, "<message type='chat'><body>hi</body></message>"), hag, "bad-request")
}

func TestModeratedRoomAndVoice(t *testing.T) {
	h := newHarness(t)
	h.open(field("muc#roomconfig_moderatedroom", "1") + field("muc#roomconfig_allowvoicerequests", "1"))
	outs := h.send(hag, roomJID, "<message type='groupchat'><body>hi</body></message>")
	errorCond(t, outs, hag, "forbidden")
	// The visitor asks for voice; the moderator gets the approval form.
	outs = h.send(hag, roomJID, "<message><x xmlns='jabber:x:data' type='submit'>"+field("FORM_TYPE", "http://jabber.org/protocol/muc#request")+field("muc#role", "participant")+"</x></message>")
	has(t, one(t, outs, crone), "muc#request_allow", "secondwitch")
	outs = h.send(crone, roomJID, "<message><x xmlns='jabber:x:data' type='submit'>"+field("FORM_TYPE", "http://jabber.org/protocol/muc#request")+field("muc#role", "participant")+field("muc#roomnick", "secondwitch")+field("muc#request_allow", "true")+"</x></message>")
	has(t, one(t, outs, hag), "role='participant'", "code='110'")
	if len(h.send(hag, roomJID, "<message type='groupchat'><body>hi</body></message>")) != 2 {
		t.Fatal("a participant's message was not reflected")
	}
	// Revoke voice through the admin namespace.
	outs = h.send(crone, roomJID, "<iq type='set' id='v'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='secondwitch' role='visitor'><reason>noise</reason></item></query></iq>")
	has(t, one(t, outs, hag), "role='visitor'", "<reason>noise</reason>", "<actor nick='firstwitch'/>")
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t)
	h.open("")
	h.r.deps.Limits.MessageBurst = 3
	h.r.deps.Limits.MessageRate = 1
	h.r.bySess[hag].tokens = 3
	for i := range 3 {
		if outs := h.send(hag, roomJID, "<message type='groupchat'><body>x</body></message>"); len(outs) != 2 {
			t.Fatalf("message %d: %v", i, outs)
		}
	}
	errorCond(t, h.send(hag, roomJID, "<message type='groupchat'><body>x</body></message>"), hag, "resource-constraint")
	h.now = h.now.Add(time.Second)
	if outs := h.send(hag, roomJID, "<message type='groupchat'><body>x</body></message>"); len(outs) != 2 {
		t.Fatalf("after a second: %v", outs)
	}
}

func TestSubject(t *testing.T) {
	h := newHarness(t)
	h.open("")
	errorCond(t, h.send(hag, roomJID, "<message type='groupchat'><subject>mine</subject></message>"), hag, "forbidden")
	outs := h.send(crone, roomJID, "<message type='groupchat'><subject>Fire Burn</subject></message>")
	has(t, one(t, outs, hag), "<subject>Fire Burn</subject>", "from='"+roomJID+"/firstwitch'")
	if !h.res.StateChanged || h.r.State().Subject.Text != "Fire Burn" {
		t.Fatal("subject not saved")
	}
	mine := to(h.send(witch, roomJID+"/thirdwitch", joinXML("")), witch)
	has(t, mine[len(mine)-1], "<subject>Fire Burn</subject>", "urn:xmpp:delay")
}

func TestHistory(t *testing.T) {
	h := newHarness(t)
	h.open("")
	for i := range 5 {
		h.now = h.now.Add(time.Minute)
		h.send(hag, roomJID, fmt.Sprintf("<message type='groupchat'><body>m%d</body></message>", i))
	}
	h.now = h.now.Add(time.Minute)
	bodies := func(outs []out) string {
		var b []string
		for _, o := range to(outs, witch) {
			if i := strings.Index(o.xml, "<body>"); i >= 0 {
				b = append(b, o.xml[i+6:i+8])
			}
		}
		return strings.Join(b, ",")
	}
	tests := []struct{ hist, want string }{
		{"", "m0,m1,m2,m3,m4"},
		{"<history maxstanzas='2'/>", "m3,m4"},
		{"<history maxstanzas='0'/>", ""},
		{"<history seconds='150'/>", "m3,m4"},
		{"<history since='2026-12-01T12:04:30Z'/>", "m4"},
		{"<history maxchars='0'/>", ""},
	}
	for _, tt := range tests {
		outs := h.send(witch, roomJID+"/thirdwitch", joinXML(tt.hist))
		if got := bodies(outs); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.hist, got, tt.want)
		}
		for _, o := range to(outs, witch) {
			if strings.Contains(o.xml, "<body>") {
				has(t, o, "urn:xmpp:delay", "from='"+roomJID+"'")
			}
		}
		h.send(witch, roomJID+"/thirdwitch", "<presence type='unavailable'/>")
	}
	// maxchars counts whole stanzas: room for exactly one.
	n := h.r.ordered()[4].chars
	if got := bodies(h.send(witch, roomJID+"/thirdwitch", joinXML(fmt.Sprintf("<history maxchars='%d'/>", n+1)))); got != "m4" {
		t.Errorf("maxchars: %s", got)
	}
}

func TestNickChange(t *testing.T) {
	h := newHarness(t)
	h.open("")
	outs := h.send(hag, roomJID+"/thirdwitch", "<presence/>")
	mine := to(outs, hag)
	has(t, mine[0], "type='unavailable'", "code='303'", "nick='thirdwitch'", "code='110'", "from='"+roomJID+"/secondwitch'")
	has(t, mine[1], "from='"+roomJID+"/thirdwitch'", "code='110'")
	theirs := to(outs, crone)
	has(t, theirs[0], "code='303'", "nick='thirdwitch'")
	lacks(t, theirs[0], "code='110'")
	errorCond(t, h.send(hag, roomJID+"/FirstWitch", "<presence/>"), hag, "conflict")
}

func TestPrivateMessages(t *testing.T) {
	h := newHarness(t)
	h.open("")
	h.send("hag@shakespeare.example/phone", roomJID+"/secondwitch", joinXML(""))
	outs := h.send(crone, roomJID+"/secondwitch", "<message type='chat'><body>psst</body></message>")
	if len(outs) != 2 {
		t.Fatalf("private message went to %d sessions, want both of hag's: %v", len(outs), outs)
	}
	for _, o := range outs {
		has(t, o, "from='"+roomJID+"/firstwitch'", "<x xmlns='http://jabber.org/protocol/muc#user'/>", "<body>psst</body>")
	}
	errorCond(t, h.send(crone, roomJID+"/nobody", "<message type='chat'><body>x</body></message>"), crone, "item-not-found")
	errorCond(t, h.send(witch, roomJID+"/secondwitch", "<message type='chat'><body>x</body></message>"), witch, "not-acceptable")
	errorCond(t, h.send(crone, roomJID+"/secondwitch", "<message type='groupchat'><body>x</body></message>"), crone, "bad-request")
	h.r.state.Config.AllowPM = PMModerators
	errorCond(t, h.send(hag, roomJID+"/firstwitch", "<message type='chat'><body>x</body></message>"), hag, "not-allowed")
}

func TestMultiSession(t *testing.T) {
	h := newHarness(t)
	h.open("")
	phone := "hag@shakespeare.example/phone"
	outs := h.send(phone, roomJID+"/secondwitch", joinXML(""))
	if got := to(outs, crone); len(got) != 1 {
		t.Fatalf("the owner got %d presences for a second session: %v", len(got), got)
	}
	msg := h.send(crone, roomJID, "<message type='groupchat'><body>all</body></message>")
	if len(msg) != 3 {
		t.Fatalf("groupchat to %d sessions, want 3", len(msg))
	}
	// One session leaves: the occupant stays.
	outs = h.send(hag, roomJID+"/secondwitch", "<presence type='unavailable'/>")
	has(t, one(t, outs, hag), "type='unavailable'", "code='110'")
	lacks(t, one(t, outs, crone), "unavailable")
	if h.r.Occupants() != 2 {
		t.Fatalf("%d occupants", h.r.Occupants())
	}
	outs = h.send(phone, roomJID+"/secondwitch", "<presence type='unavailable'/>")
	has(t, one(t, outs, crone), "type='unavailable'", "role='none'")
}

func TestKickAndBan(t *testing.T) {
	h := newHarness(t)
	h.open("")
	h.send(witch, roomJID+"/thirdwitch", joinXML(""))
	// A moderator who is not an admin may not kick the owner.
	h.send(crone, roomJID, "<iq type='set' id='m'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='secondwitch' role='moderator'/></query></iq>")
	errorCond(t, h.send(hag, roomJID, "<iq type='set' id='k'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='firstwitch' role='none'/></query></iq>"), hag, "not-allowed")
	// Kick.
	outs := h.send(hag, roomJID, "<iq type='set' id='k'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='thirdwitch' role='none'><reason>Avaunt</reason></item></query></iq>")
	has(t, one(t, outs, witch), "type='unavailable'", "code='307'", "code='110'", "<reason>Avaunt</reason>")
	has(t, one(t, to(outs, crone), crone), "code='307'")
	if h.r.Occupants() != 2 {
		t.Fatal("the kicked occupant is still there")
	}
	// Ban, with the reason kept on the list.
	h.send(witch, roomJID+"/thirdwitch", joinXML(""))
	errorCond(t, h.send(hag, roomJID, "<iq type='set' id='b'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' jid='witch@shakespeare.example'/></query></iq>"), hag, "forbidden")
	outs = h.send(crone, roomJID, "<iq type='set' id='b'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' jid='witch@shakespeare.example'><reason>Treason</reason></item></query></iq>")
	has(t, one(t, outs, witch), "code='301'", "affiliation='outcast'", "<reason>Treason</reason>")
	outs = h.send(crone, roomJID, "<iq type='get' id='l'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast'/></query></iq>")
	has(t, one(t, outs, crone), "jid='witch@shakespeare.example'", "<reason>Treason</reason>")
	if len(h.res.Affiliations) != 0 {
		t.Fatal("a list request changed affiliations")
	}
	errorCond(t, h.send(crone, roomJID, "<iq type='set' id='b'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' jid='crone@shakespeare.example'/></query></iq>"), crone, "conflict")
	errorCond(t, h.send(crone, roomJID, "<iq type='set' id='b'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='none' jid='crone@shakespeare.example'/></query></iq>"), crone, "conflict")
	errorCond(t, h.send(crone, roomJID, "<iq type='set' id='b'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='none' role='none' jid='hag@shakespeare.example'/></query></iq>"), crone, "bad-request")
}

func TestAdminCannotTouchOwners(t *testing.T) {
	h := newHarness(t)
	h.open("")
	h.send(crone, roomJID, "<iq type='set' id='a'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='admin' jid='hag@shakespeare.example'/></query></iq>")
	errorCond(t, h.send(hag, roomJID, "<iq type='set' id='b'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' jid='crone@shakespeare.example'/></query></iq>"), hag, "not-allowed")
	errorCond(t, h.send(hag, roomJID, "<iq type='set' id='b'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='owner' jid='witch@shakespeare.example'/></query></iq>"), hag, "forbidden")
	// A request is refused whole when one item is.
	errorCond(t, h.send(hag, roomJID, "<iq type='set' id='b'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='witch@shakespeare.example'/><item affiliation='outcast' jid='crone@shakespeare.example'/></query></iq>"), hag, "not-allowed")
	if h.r.affiliation(jid.MustParse("witch@shakespeare.example")) != None {
		t.Fatal("part of a refused request was applied")
	}
	errorCond(t, h.send(hag, roomJID, "<iq type='get' id='o'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>"), hag, "forbidden")
}

func TestMembersOnly(t *testing.T) {
	h := newHarness(t)
	h.open("")
	h.send(crone, roomJID, "<iq type='set' id='m'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='witch@shakespeare.example'/></query></iq>")
	h.send(witch, roomJID+"/thirdwitch", joinXML(""))
	// Becoming members-only removes the non-members (322).
	outs := h.send(crone, roomJID, "<iq type='set' id='c'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>"+field("muc#roomconfig_membersonly", "1")+"</x></query></iq>")
	has(t, to(outs, hag)[0], "code='322'", "type='unavailable'")
	if h.r.Occupants() != 2 {
		t.Fatalf("%d occupants", h.r.Occupants())
	}
	// Losing membership removes a member (321).
	outs = h.send(crone, roomJID, "<iq type='set' id='n'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='none' jid='witch@shakespeare.example'/></query></iq>")
	has(t, one(t, outs, witch), "code='321'")
	// An admin's invitation makes the invitee a member.
	outs = h.send(crone, roomJID, "<message><x xmlns='http://jabber.org/protocol/muc#user'><invite to='hecate@shakespeare.example'><reason>Come</reason></invite></x></message>")
	inv := one(t, outs, "hecate@shakespeare.example")
	has(t, inv, "<invite from='"+roomJID+"/firstwitch'>", "<reason>Come</reason>", "jabber:x:conference")
	if h.r.affiliation(jid.MustParse("hecate@shakespeare.example")) != Member {
		t.Fatal("the invitee did not become a member")
	}
	// The invitee declines.
	outs = h.send("hecate@shakespeare.example/broom", roomJID, "<message><x xmlns='http://jabber.org/protocol/muc#user'><decline to='"+roomJID+"/firstwitch'><reason>Busy</reason></decline></x></message>")
	has(t, one(t, outs, crone), "<decline from='hecate@shakespeare.example'>", "<reason>Busy</reason>")
}

func TestInvitePrivilege(t *testing.T) {
	h := newHarness(t)
	h.open(field("muc#roomconfig_membersonly", "1"))
	h.send(crone, roomJID, "<iq type='set' id='m'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='witch@shakespeare.example'/></query></iq>")
	h.send(witch, roomJID+"/thirdwitch", joinXML(""))
	errorCond(t, h.send(witch, roomJID, "<message><x xmlns='http://jabber.org/protocol/muc#user'><invite to='hecate@shakespeare.example'/></x></message>"), witch, "forbidden")
}

func TestDestroy(t *testing.T) {
	h := newHarness(t)
	h.open(field("muc#roomconfig_persistentroom", "1"))
	errorCond(t, h.send(hag, roomJID, "<iq type='set' id='d'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query></iq>"), hag, "forbidden")
	outs := h.send(crone, roomJID, "<iq type='set' id='d'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy jid='heath@chat.example'><reason>Macbeth doth come.</reason></destroy></query></iq>")
	has(t, one(t, outs, hag), "type='unavailable'", "<destroy jid='heath@chat.example'><reason>Macbeth doth come.</reason></destroy>", "role='none'")
	if !h.res.Destroyed {
		t.Fatal("not destroyed")
	}
}

func TestTemporaryRoomEndsWhenEmpty(t *testing.T) {
	h := newHarness(t)
	h.open("")
	h.send(hag, roomJID+"/secondwitch", "<presence type='unavailable'/>")
	if h.res.Destroyed {
		t.Fatal("destroyed with an occupant left")
	}
	h.send(crone, roomJID+"/firstwitch", "<presence type='unavailable'><status>bye</status></presence>")
	if !h.res.Destroyed {
		t.Fatal("an empty temporary room was not destroyed")
	}

	p := newHarness(t)
	p.open(field("muc#roomconfig_persistentroom", "1"))
	p.send(hag, roomJID+"/secondwitch", "<presence type='unavailable'/>")
	p.send(crone, roomJID+"/firstwitch", "<presence type='unavailable'/>")
	if p.res.Destroyed {
		t.Fatal("an empty persistent room was destroyed")
	}
}

func TestConfigForm(t *testing.T) {
	h := newHarness(t)
	h.open("")
	outs := h.send(crone, roomJID, "<iq type='get' id='g'><query xmlns='http://jabber.org/protocol/muc#owner'/></iq>")
	has(t, one(t, outs, crone), "muc#roomconfig_whois", "muc#roomconfig_persistentroom", "muc#roomconfig_enablelogging", "type='form'")
	errorCond(t, h.send(crone, roomJID, "<iq type='set' id='s'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>"+field("muc#roomconfig_frobnicate", "1")+"</x></query></iq>"), crone, "not-acceptable")
	errorCond(t, h.send(crone, roomJID, "<iq type='set' id='s'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>"+field("muc#roomconfig_whois", "everybody")+"</x></query></iq>"), crone, "bad-request")
	errorCond(t, h.send(crone, roomJID, "<iq type='set' id='s'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>"+field("muc#roomconfig_maxusers", "-3")+"</x></query></iq>"), crone, "bad-request")
	errorCond(t, h.send(crone, roomJID, "<iq type='set' id='s'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>"+field("muc#roomconfig_passwordprotectedroom", "1")+"</x></query></iq>"), crone, "not-acceptable")
	errorCond(t, h.send(crone, roomJID, "<iq type='set' id='s'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>"+field("muc#roomconfig_roomowners")+"</x></query></iq>"), crone, "conflict")
	if h.r.Config().Whois != WhoisModerators {
		t.Fatal("a refused form changed the configuration")
	}
	// Becoming non-anonymous is announced with 172 and shows JIDs to all.
	outs = h.send(crone, roomJID, "<iq type='set' id='s'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>"+field("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig")+field("muc#roomconfig_whois", "anyone")+field("muc#roomconfig_roomname", "The Coven")+"</x></query></iq>")
	has(t, one(t, outs, hag), "code='172'")
	outs = h.send(witch, roomJID+"/thirdwitch", joinXML(""))
	has(t, to(outs, witch)[2], "code='100'", "code='110'")
	has(t, one(t, outs, hag), "jid='"+witch+"'")
	// Owners and admins set through the form.
	h.send(crone, roomJID, "<iq type='set' id='s'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>"+field("muc#roomconfig_roomadmins", "hag@shakespeare.example")+"</x></query></iq>")
	if h.r.affiliation(jid.MustParse("hag@shakespeare.example")) != Admin || h.r.bySess[hag].role != RoleModerator {
		t.Fatal("the admin list of the form was not applied")
	}
}

func TestRegistration(t *testing.T) {
	h := newHarness(t)
	h.open("")
	outs := h.send(witch, roomJID, "<iq type='get' id='r'><query xmlns='jabber:iq:register'/></iq>")
	has(t, one(t, outs, witch), "muc#register_roomnick")
	outs = h.send(witch, roomJID, "<iq type='set' id='r'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>"+field("FORM_TYPE", "http://jabber.org/protocol/muc#register")+field("muc#register_roomnick", "secondwitch")+"</x></query></iq>")
	errorCond(t, outs, witch, "conflict")
	outs = h.send(witch, roomJID, "<iq type='set' id='r'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>"+field("FORM_TYPE", "http://jabber.org/protocol/muc#register")+field("muc#register_roomnick", "Thirdwitch")+"</x></query></iq>")
	has(t, one(t, outs, witch), "type='result'")
	if len(h.res.Affiliations) != 1 || h.res.Affiliations[0].Nick != "Thirdwitch" || h.res.Affiliations[0].Affiliation != Member {
		t.Fatalf("registration recorded %+v", h.res.Affiliations)
	}
	outs = h.send(witch, roomJID, "<iq type='get' id='n'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/></iq>")
	has(t, one(t, outs, witch), "name='Thirdwitch'")
	outs = h.send(witch, roomJID, "<iq type='get' id='r'><query xmlns='jabber:iq:register'/></iq>")
	has(t, one(t, outs, witch), "<registered/>", "<username>Thirdwitch</username>")
	errorCond(t, h.send(witch, roomJID, "<iq type='set' id='r'><query xmlns='jabber:iq:register'/></iq>"), witch, "bad-request")
	h.send(witch, roomJID, "<iq type='set' id='r'><query xmlns='jabber:iq:register'><remove/></query></iq>")
	if h.r.affiliation(jid.MustParse(witch)) != None || h.r.reserved["thirdwitch"] != "" {
		t.Fatal("unregistering kept the membership or the nick")
	}
}

func TestDiscoInfo(t *testing.T) {
	h := newHarness(t)
	h.open(field("muc#roomconfig_persistentroom", "1") + field("muc#roomconfig_roomdesc", "Witches only"))
	outs := h.send(witch, roomJID, "<iq type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	has(t, one(t, outs, witch), "category='conference'", "var='muc_persistent'", "var='muc_semianonymous'", "var='muc_open'", "var='urn:xmpp:mam:2'",
		"var='urn:xmpp:occupant-id:0'", "muc#roominfo", "<value>Witches only</value>", "muc#roominfo_occupants")
	errorCond(t, h.send(witch, roomJID, "<iq type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info' node='http://jabber.org/protocol/muc#traffic'/></iq>"), witch, "service-unavailable")
	// Occupants are listed to occupants only.
	outs = h.send(witch, roomJID, "<iq type='get' id='i'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	lacks(t, one(t, outs, witch), "<item")
	outs = h.send(hag, roomJID, "<iq type='get' id='i'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	has(t, one(t, outs, hag), "jid='"+roomJID+"/firstwitch'")
	errorCond(t, h.send(witch, roomJID+"/firstwitch", "<iq type='get' id='i'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"), witch, "bad-request")
}

func TestSelfPingAndForwardedIQ(t *testing.T) {
	h := newHarness(t)
	h.open("")
	has(t, one(t, h.send(hag, roomJID+"/secondwitch", "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>"), hag), "type='result'", "id='p'")
	errorCond(t, h.send(witch, roomJID+"/secondwitch", "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>"), witch, "not-acceptable")
	// A version query to another occupant reaches its real JID under the
	// asker's occupant JID, and the answer comes back.
	outs := h.send(hag, roomJID+"/firstwitch", "<iq type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>")
	fw := one(t, outs, crone)
	has(t, fw, "from='"+roomJID+"/secondwitch'")
	lacks(t, fw, hag, "id='v1'")
	back := h.send(crone, roomJID+"/secondwitch", "<iq type='result' id='"+fw.el.Attr("id")+"'><query xmlns='jabber:iq:version'><name>x</name></query></iq>")
	has(t, one(t, back, hag), "id='v1'", "from='"+roomJID+"/firstwitch'", "<name>x</name>")
	// A vCard request goes to the account.
	has(t, one(t, h.send(hag, roomJID+"/firstwitch", "<iq type='get' id='v2'><vCard xmlns='vcard-temp'/></iq>"), "crone@shakespeare.example"), "vcard-temp")
	// Forged answers from someone else are dropped.
	outs = h.send(hag, roomJID+"/firstwitch", "<iq type='get' id='v3'><query xmlns='jabber:iq:version'/></iq>")
	id := one(t, outs, crone).el.Attr("id")
	if got := h.send(witch, roomJID+"/secondwitch", "<iq type='result' id='"+id+"'/>"); len(got) != 0 {
		t.Fatalf("a forged answer was relayed: %v", got)
	}
}

func TestModeration(t *testing.T) {
	h := newHarness(t)
	h.open("")
	h.send(hag, roomJID, "<message type='groupchat' id='bad'><body>DM me for potions</body></message>")
	sid := h.res.Archive[0].ID
	errorCond(t, h.send(hag, roomJID, "<iq type='set' id='r'><moderate id='"+sid+"' xmlns='urn:xmpp:message-moderate:1'><retract xmlns='urn:xmpp:message-retract:1'/></moderate></iq>"), hag, "forbidden")
	errorCond(t, h.send(crone, roomJID, "<iq type='set' id='r'><moderate id='nope' xmlns='urn:xmpp:message-moderate:1'><retract xmlns='urn:xmpp:message-retract:1'/></moderate></iq>"), crone, "item-not-found")
	outs := h.send(crone, roomJID, "<iq type='set' id='r'><moderate id='"+sid+"' xmlns='urn:xmpp:message-moderate:1'><retract xmlns='urn:xmpp:message-retract:1'/><reason>spam</reason></moderate></iq>")
	has(t, one(t, outs, hag), "<retract xmlns='urn:xmpp:message-retract:1' id='"+sid+"'>", "by='"+roomJID+"/firstwitch'", "<reason>spam</reason>")
	if len(h.res.Retract) != 1 || strings.Contains(h.res.Retract[0].Tombstone.String(), "potions") {
		t.Fatalf("tombstone: %+v", h.res.Retract)
	}
	mine := to(h.send(witch, roomJID+"/thirdwitch", joinXML("")), witch)
	for _, o := range mine {
		lacks(t, o, "potions")
	}
}

func TestAvatar(t *testing.T) {
	h := newHarness(t)
	h.open("")
	errorCond(t, h.send(hag, roomJID, "<iq type='set' id='a'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>aGVsbG8=</BINVAL></PHOTO></vCard></iq>"), hag, "forbidden")
	outs := h.send(crone, roomJID, "<iq type='set' id='a'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>aGVsbG8=</BINVAL></PHOTO></vCard></iq>")
	const sha1hello = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
	got := to(outs, hag)
	has(t, got[0], "code='104'")
	has(t, got[1], "<photo>"+sha1hello+"</photo>")
	if !h.res.VCardSet || h.r.State().AvatarHash != sha1hello {
		t.Fatal("avatar not recorded")
	}
	has(t, one(t, h.send(witch, roomJID, "<iq type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"), witch), sha1hello)
	has(t, one(t, h.send(witch, roomJID, "<iq type='get' id='v'><vCard xmlns='vcard-temp'/></iq>"), witch), "aGVsbG8=")
}

func TestGhostRemoval(t *testing.T) {
	h := newHarness(t)
	h.open("")
	outs := h.send(hag, roomJID+"/firstwitch", "<message type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
	has(t, one(t, outs, crone), "code='333'", "type='unavailable'")
	if h.r.Occupants() != 1 {
		t.Fatal("the ghost stayed")
	}
}

func TestShutdown(t *testing.T) {
	h := newHarness(t)
	h.open("")
	outs := h.collect(h.r.Shutdown())
	has(t, to(outs, hag)[0], "code='332'", "type='unavailable'")
}

func TestMissingRoom(t *testing.T) {
	h := newHarness(t)
	errorCond(t, h.send(hag, roomJID, "<message type='groupchat'><body>x</body></message>"), hag, "item-not-found")
	errorCond(t, h.send(hag, roomJID, "<iq type='get' id='x'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"), hag, "item-not-found")
	errorCond(t, h.send(hag, roomJID, "<presence/>"), hag, "item-not-found")
	h.open("")
	errorCond(t, h.send(witch, roomJID, "<presence/>"), witch, "jid-malformed")
}

// TestHostActions: a bridge's room seats a user under the nick its
// network chose, removes and re-titles as the network reports.
func TestHostActions(t *testing.T) {
	h := newHarness(t)
	h.open("")
	occ, _ := jid.MustParse(roomJID).WithResource("witch")
	outs := h.collect(h.r.Enter(parse(t, joinXML("")), jid.MustParse(witch), occ, "witch_"))
	self := to(outs, witch)
	has(t, self[len(self)-2], "from='"+roomJID+"/witch_'", "code='210'", "code='110'")
	outs = h.collect(h.r.SetSubject("Tonight", "witch_", h.now))
	has(t, one(t, outs, hag), "<subject>Tonight</subject>", "from='"+roomJID+"/witch_'")
	if h.r.Occupant(jid.MustParse(witch)) != "witch_" || len(h.r.Sessions("witch_")) != 1 {
		t.Fatal("occupant lookup")
	}
	outs = h.collect(h.r.Remove("witch_", "firstwitch", "flood"))
	has(t, one(t, outs, witch), "code='307'", "<actor nick='firstwitch'/>", "<reason>flood</reason>")
	outs = h.collect(h.r.SetAffiliation(Record{JID: "hag@shakespeare.example", Affiliation: Admin}))
	has(t, one(t, outs, crone), "affiliation='admin'", "role='moderator'")
	has(t, one(t, h.collect(h.r.Notice("server restarting")), hag), "<body>server restarting</body>", "from='"+roomJID+"'")
}

// Occupants who send the same capabilities and show share their copies;
// one changing its presence, or its role, changes nothing in what the
// others' presences say, and a newcomer sees each as it is now.
func TestSharedPresencePartsStayApart(t *testing.T) {
	h := newHarness(t)
	caps := "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org' ver='abc='/>"
	h.send(crone, roomJID+"/firstwitch", joinXML("")+"")
	h.send(crone, roomJID, "<iq type='set' id='c1'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>")
	h.send(hag, roomJID+"/secondwitch", "<presence><x xmlns='http://jabber.org/protocol/muc'/><show>away</show>"+caps+"</presence>")
	h.send(witch, roomJID+"/thirdwitch", "<presence><x xmlns='http://jabber.org/protocol/muc'/><show>away</show>"+caps+"</presence>")
	// hag comes back and gets voice taken.
	h.send(hag, roomJID+"/secondwitch", "<presence><status>back</status>"+caps+"</presence>")
	h.send(crone, roomJID, "<iq type='set' id='v1'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='secondwitch' role='visitor'/></query></iq>")
	outs := h.send("newt@shakespeare.example/x", roomJID+"/fourthwitch", joinXML(""))
	var hagP, witchP out
	for _, o := range to(outs, "newt@shakespeare.example/x") {
		switch {
		case strings.Contains(o.xml, "from='"+roomJID+"/secondwitch'"):
			hagP = o
		case strings.Contains(o.xml, "from='"+roomJID+"/thirdwitch'"):
			witchP = o
		}
	}
	has(t, hagP, "<status>back</status>", caps, "role='visitor'")
	lacks(t, hagP, "<show>away</show>")
	has(t, witchP, "<show>away</show>", caps, "role='participant'")
	lacks(t, witchP, "<status>", "role='visitor'")
	// The owner, a moderator, sees real JIDs; the newcomer does not.
	lacks(t, hagP, "jid=")
	outs = h.send(witch, roomJID+"/thirdwitch", "<presence><show>dnd</show>"+caps+"</presence>")
	has(t, one(t, outs, crone), "jid='"+witch+"'", "<show>dnd</show>")
	lacks(t, one(t, outs, hag), "jid=")
}
