package room

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Deps are what a room takes from its user.
type Deps struct {
	// Now is the clock, for history stamps and rate limits.
	Now func() time.Time
	// NewStanzaID returns the id of a message the room reflects
	// (XEP-0359), which is also its archive id; ids must sort in the order
	// they are handed out.
	NewStanzaID func() (string, time.Time)
	// NewID returns a random id for stanzas the room generates.
	NewID func() string
	// Archiving reports whether the room's user keeps an archive; without
	// one, the logging option is neither offered nor announced.
	Archiving bool
	// Archived returns an archived message of the room by its stanza id,
	// reflected form without 'to', for moderation beyond the history kept
	// in memory; nil looks in the history only.
	Archived func(id string) (*xmlstream.Element, bool)
	Limits   Limits
	// Report asks for Result.Events: who came, went and spoke.
	Report bool
}

// Event is something that happened in the room, reported when Deps.Report
// asks for it.
type Event struct {
	Kind EventKind
	Nick string
	JID  jid.JID            // the occupant's real JID
	El   *xmlstream.Element // Message: the message as reflected, without 'to'
}

// EventKind says what an Event is.
type EventKind int

// The kinds of Event.
const (
	Joined EventKind = iota + 1
	Left
	Said
)

// Delivery is one stanza to send to every JID of To. El is complete but
// for its 'to' attribute, which the room's user sets for each recipient
// on a copy (El may be shared by several recipients and results).
type Delivery struct {
	El *xmlstream.Element
	To []jid.JID
}

// Archived is a message the room reflected, for its archive.
type Archived struct {
	ID    string
	Stamp time.Time
	// Occupant is the sender's occupant JID.
	Occupant jid.JID
	// El is the reflected message, without 'to'.
	El *xmlstream.Element
}

// Retraction asks the room's user to replace an archived message by a
// tombstone (XEP-0425).
type Retraction struct {
	ID        string
	Tombstone *xmlstream.Element
}

// Result is what one call of a room produced. It stays valid until the
// next call on the same room.
type Result struct {
	// Out are the stanzas to send, in order.
	Out []Delivery
	// Archive are the messages to archive, in order.
	Archive []Archived
	// Retract are archived messages to replace.
	Retract []Retraction
	// Affiliations are the affiliation records that changed (None: removed).
	Affiliations []Record
	// StateChanged reports that State() changed and should be saved.
	StateChanged bool
	// VCard is set when the room's vCard changed; VCardSet distinguishes
	// a removed vCard (nil) from no change.
	VCard    *xmlstream.Element
	VCardSet bool
	// Destroyed reports that the room was destroyed: its user removes it
	// and what it stored.
	Destroyed bool
	// Created reports that the call created the room (a first join).
	Created bool
	// Events are what happened, with Deps.Report.
	Events []Event
}

// Release drops what the result holds once its user has taken it (the
// room reuses it at the next call), so that a quiet room keeps alive none
// of the stanzas it last sent.
func (res *Result) Release() { res.reset() }

func (res *Result) reset() {
	clear(res.Out)
	clear(res.Archive)
	clear(res.Retract)
	clear(res.Events)
	*res = Result{Out: res.Out[:0], Archive: res.Archive[:0], Retract: res.Retract[:0], Affiliations: res.Affiliations[:0], Events: res.Events[:0]}
}

// report records an event when the room's user asked for them.
func (r *Room) report(k EventKind, o *occupant, real jid.JID, el *xmlstream.Element) {
	if r.deps.Report {
		r.res.Events = append(r.res.Events, Event{Kind: k, Nick: o.nick, JID: real, El: el})
	}
}

func (res *Result) send(el *xmlstream.Element, to ...jid.JID) {
	if len(to) == 0 {
		return
	}
	res.Out = append(res.Out, Delivery{El: el, To: to})
}

// session is one client resource in the room.
type session struct {
	jid  jid.JID
	pres *xmlstream.Element // its last presence, without MUC extensions
}

// occupant is one nickname in the room with its sessions: several when a
// user joins under the same nick from several resources.
type occupant struct {
	nick     string // as shown
	key      string // as compared
	bare     jid.JID
	role     Role
	id       string // occupant id (XEP-0421)
	oid      *xmlstream.Element
	sessions []*session // the last one is the one whose presence shows
	// Message rate limit: a token bucket.
	tokens float64
	filled time.Time
	// shown caches the presence most others see (with the real JID in a
	// non-anonymous room, without it otherwise; shownJID says which),
	// serialized once: every newcomer receives it, which makes seating n
	// occupants n² presences. The few moderators of a semi-anonymous room
	// get theirs built anew, which keeps one copy per occupant. Any
	// change goes through broadcastPresence, which drops it.
	shown    *xmlstream.Element
	shownJID bool
}

func (o *occupant) current() *session { return o.sessions[len(o.sessions)-1] }

// occupantIDEl is the occupant's XEP-0421 element, made once: it goes in
// every presence and message of the occupant.
func (o *occupant) occupantIDEl() *xmlstream.Element {
	if o.oid == nil {
		o.oid = xmlstream.NewElement(NSOccupant, "occupant-id")
		o.oid.SetAttr("id", o.id)
		o.oid.Freeze()
	}
	return o.oid
}

func (o *occupant) jid(room jid.JID) jid.JID {
	j, _ := room.WithResource(o.nick)
	return j
}

func (o *occupant) session(full jid.JID) *session {
	for _, s := range o.sessions {
		if s.jid.Equal(full) {
			return s
		}
	}
	return nil
}

// histItem is one message of the discussion history.
type histItem struct {
	el    *xmlstream.Element // reflected, without 'to' and delay
	stamp time.Time
	chars int // length of its serialization, for maxchars
	id    string
}

// pendingIQ is an IQ forwarded from one occupant to another, awaiting its
// answer.
type pendingIQ struct {
	from   jid.JID // the asker's real JID
	origID string
	to     string // the answering occupant's key
}

// Room is one multi-user chat room.
type Room struct {
	jid   jid.JID
	deps  Deps
	state State

	affs     map[string]*Record   // by bare JID or domain
	reserved map[string]string    // registered nick key -> bare JID
	occ      map[string]*occupant // by nick key
	bySess   map[string]*occupant // by real full JID
	count    int                  // sessions

	history []histItem // ring, oldest first after rotation
	histPos int

	vcard   *xmlstream.Element
	pending map[string]pendingIQ
	parts   map[string]*xmlstream.Element // shared pieces of presences (presence.go)

	res Result
}

// New returns a room with the given persisted state and affiliations; a
// zero Created in st makes it a new room, which its first occupant
// creates.
func New(room jid.JID, st State, affs []Record, d Deps) *Room {
	r := &Room{
		jid:      room.Bare(),
		deps:     d,
		state:    st,
		affs:     make(map[string]*Record, len(affs)),
		reserved: map[string]string{},
		occ:      map[string]*occupant{},
		bySess:   map[string]*occupant{},
	}
	if r.state.Config.Whois == "" {
		r.state.Config = DefaultConfig()
	}
	if !d.Archiving {
		r.state.Config.Logging = false
	}
	for _, a := range affs {
		r.setRecord(a)
	}
	return r
}

// JID returns the room's bare JID.
func (r *Room) JID() jid.JID { return r.jid }

// State returns what a persistent room saves.
func (r *Room) State() State { return r.state }

// Config returns the room's configuration.
func (r *Room) Config() Config { return r.state.Config }

// Affiliations returns the affiliation records.
func (r *Room) Affiliations() []Record {
	out := make([]Record, 0, len(r.affs))
	for _, a := range r.affs {
		out = append(out, *a)
	}
	return out
}

// Occupants returns how many nicks are in the room.
func (r *Room) Occupants() int { return len(r.occ) }

// Empty reports that nobody is in the room.
func (r *Room) Empty() bool { return len(r.occ) == 0 }

// Locked reports that the room awaits its initial configuration.
func (r *Room) Locked() bool { return r.state.Locked }

// Exists reports whether the room has been created.
func (r *Room) Exists() bool { return !r.state.Created.IsZero() }

// MayReadArchive reports whether a user may query the room's archive
// (XEP-0313 §5.2): anyone not banned from an open, public room without a
// password; occupants and members otherwise.
func (r *Room) MayReadArchive(from jid.JID) bool {
	if !r.Exists() || r.state.Locked || !r.state.Config.Logging {
		return false
	}
	aff := r.affiliation(from.Bare())
	switch {
	case aff == Outcast:
		return false
	case aff >= Member || r.bySess[from.String()] != nil:
		return true
	}
	c := r.state.Config
	return c.Public && !c.MembersOnly && c.Password == ""
}

// SetVCard sets the room's vCard as loaded from storage.
func (r *Room) SetVCard(v *xmlstream.Element) { r.vcard = v }

// SeedHistory puts archived messages (oldest first, reflected form
// without 'to') into the discussion history, as after a restart.
func (r *Room) SeedHistory(els []*xmlstream.Element, stamps []time.Time, ids []string) {
	for i, el := range els {
		r.remember(el, stamps[i], ids[i])
	}
}

func (r *Room) setRecord(a Record) {
	if old := r.affs[a.JID]; old != nil && old.Nick != "" {
		delete(r.reserved, nickKey(old.Nick))
	}
	if a.Affiliation == None {
		delete(r.affs, a.JID)
		return
	}
	rec := a
	r.affs[a.JID] = &rec
	if a.Nick != "" {
		if k := nickKey(a.Nick); k != "" {
			r.reserved[k] = a.JID
		}
	}
}

// affiliation returns the affiliation of a user's bare JID, or of its
// domain.
func (r *Room) affiliation(bare jid.JID) Affiliation {
	if a := r.affs[bare.BareString()]; a != nil {
		return a.Affiliation
	}
	if a := r.affs[bare.Domain()]; a != nil {
		return a.Affiliation
	}
	return None
}

// occupantID derives the stable occupant id of a user (XEP-0421): an HMAC
// of the bare JID under the room's secret, so that it reveals nothing.
func (r *Room) occupantID(bare jid.JID) string {
	m := hmac.New(sha256.New, []byte(r.state.Secret))
	m.Write([]byte(bare.BareString()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// Handle processes one stanza sent to the room's JID or an occupant JID;
// from is its sender's real JID, which the caller has verified. The result
// is valid until the next call.
func (r *Room) Handle(el *xmlstream.Element, from, to jid.JID) *Result {
	r.res.reset()
	if !to.Bare().Equal(r.jid) {
		return &r.res
	}
	join := el.Local == stanza.Presence && el.Attr("type") == "" && to.Resource() != ""
	if !join && (!r.Exists() || r.state.Locked && r.affiliation(from.Bare()) != Owner) {
		// XEP-0045 §17.2: a room that does not exist, or is not unlocked
		// yet, answers item-not-found.
		if el.Local != stanza.Presence || el.Attr("type") != "unavailable" {
			r.errorReply(el, from, to, stanza.ItemNotFound, "No such room.")
		}
		return &r.res
	}
	switch el.Local {
	case stanza.Presence:
		r.presence(el, from, to)
	case stanza.Message:
		r.message(el, from, to)
	case stanza.IQ:
		r.iq(el, from, to)
	}
	return &r.res
}

// Shutdown removes every occupant with status 332, as when the service
// stops.
func (r *Room) Shutdown() *Result {
	r.res.reset()
	for _, o := range r.sortedOccupants() {
		r.removeOccupant(o, removal{codes: []string{"332"}})
	}
	return &r.res
}

// errorReply answers el from the address it was sent to.
func (r *Room) errorReply(el *xmlstream.Element, from, to jid.JID, cond, text string) {
	if !stanza.MayBounce(el) {
		return
	}
	e := stanza.ErrorReply(el, cond, text)
	e.SetAttr("from", to.String())
	e.RemoveAttr("to")
	r.res.send(e, from)
}

// reply sends an IQ answer from the address the request was sent to.
func (r *Room) reply(iq *xmlstream.Element, from, to jid.JID, res *xmlstream.Element) {
	res.SetAttr("from", to.String())
	res.RemoveAttr("to")
	r.res.send(res, from)
}

// recipients returns the real JIDs of every session in the room.
func (r *Room) recipients() []jid.JID {
	out := make([]jid.JID, 0, r.count)
	for _, o := range r.occ {
		for _, s := range o.sessions {
			out = append(out, s.jid)
		}
	}
	return out
}

// sortedOccupants returns the occupants in a stable order (by nick key),
// so that every newcomer sees the room roster in the same order.
func (r *Room) sortedOccupants() []*occupant {
	out := make([]*occupant, 0, len(r.occ))
	for _, o := range r.occ {
		out = append(out, o)
	}
	sortOccupants(out)
	return out
}

// canSeeJIDs reports whether o may learn other occupants' real JIDs.
func (r *Room) canSeeJIDs(o *occupant) bool {
	return r.state.Config.Whois == WhoisAnyone || o.role == RoleModerator
}
