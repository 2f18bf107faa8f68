package room

import (
	"slices"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"golang.org/x/text/secure/precis"
)

// nickKey is a nickname's comparison form (RFC 8266 §2.4: the Nickname
// profile's enforcement, then case folding), "" if it is not a valid
// nickname.
func nickKey(nick string) string {
	k, err := precis.Nickname.CompareKey(nick)
	if err != nil {
		return ""
	}
	return k
}

// prepareNick enforces the Nickname profile (RFC 8266 §2.3), which
// trims and collapses spaces and normalizes the rest; ok is false for a
// nickname the profile refuses, such as one made only of spaces.
func prepareNick(nick string) (string, bool) {
	n, err := precis.Nickname.String(nick)
	if err != nil || n == "" {
		return "", false
	}
	// The nickname is an occupant JID's resource: it must still be one.
	if _, err := jid.New("x", "x", n); err != nil {
		return "", false
	}
	return n, true
}

func sortOccupants(os []*occupant) {
	slices.SortFunc(os, func(a, b *occupant) int { return strings.Compare(a.key, b.key) })
}

// presence handles a presence to the room or one of its occupants.
func (r *Room) presence(el *xmlstream.Element, from, to jid.JID) {
	o := r.bySess[from.String()]
	switch el.Attr("type") {
	case "":
		switch {
		case to.Resource() == "":
			// XEP-0045 §7.2.1: a join needs a nickname.
			r.errorReply(el, from, to, stanza.JIDMalformed, "A nickname is required to enter the room.")
		case o == nil:
			r.join(el, from, to, "")
		case nickKey(to.Resource()) == o.key:
			r.update(o, el, from, to)
		default:
			r.changeNick(o, el, from, to)
		}
	case "unavailable":
		// §17.3: unavailable presence from a non-occupant is ignored.
		if o != nil {
			r.leave(o, o.session(from), el)
		}
	case "error":
		if o != nil && ghostError(el) {
			r.leave(o, o.session(from), nil, "333")
		}
	}
}

// ghostError reports an error that tells the room its recipient is gone
// (XEP-0045 §17.3.2): the room then removes the occupant.
func ghostError(el *xmlstream.Element) bool {
	switch stanza.ErrorCondition(el) {
	case "gone", stanza.ItemNotFound, stanza.RecipientUnavailable, "redirect", stanza.RemoteServerNotFound, stanza.RemoteServerTimeout, stanza.ServiceUnavailable:
		return true
	}
	return false
}

// cleanPresence is the client's presence as the room keeps it: its
// children without MUC extensions and ids only the room may add, each
// copied out of the client's stanza (whose whole parse it would keep
// alive) or shared with other occupants who sent the same (see part).
func (r *Room) cleanPresence(el *xmlstream.Element) *xmlstream.Element {
	p := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
	for c := range el.ChildElements {
		switch {
		case c.Space == NS && c.Local == "x", c.Space == NSUser, c.Space == NSOccupant:
			continue
		case c.Space == xmlstream.NSClient && c.Local == "error":
			continue
		}
		p.Nodes = append(p.Nodes, xmlstream.Node{Elem: r.partOf(c)})
	}
	return p
}

// maxParts bounds the elements a room shares between its occupants'
// presences; past it each occupant keeps its own copies.
const maxParts = 256

// partOf returns a compact, frozen copy of c, shared with every occupant
// whose presence carries the same element: clients of one kind send the
// same capabilities, shows and often statuses.
func (r *Room) partOf(c *xmlstream.Element) *xmlstream.Element {
	key := string(c.AppendXML(nil, xmlstream.NSClient))
	if p := r.parts[key]; p != nil {
		return p
	}
	p, err := xmlstream.ParseStanza([]byte(key), xmlstream.NSClient)
	if err != nil {
		return c
	}
	if len(r.parts) < maxParts {
		if r.parts == nil {
			r.parts = map[string]*xmlstream.Element{}
		}
		r.parts[key] = p
	}
	return p
}

// anonymousX is the muc#user extension of a plain presence without the
// real JID: one of a few, shared by every occupant with the same
// affiliation and role.
func (r *Room) anonymousX(o *occupant) *xmlstream.Element {
	key := "x " + r.affiliation(o.bare).String() + " " + o.role.String()
	if x := r.parts[key]; x != nil {
		return x
	}
	x := r.userX(o, jid.JID{}, nil, nil)
	x.Freeze()
	if r.parts == nil {
		r.parts = map[string]*xmlstream.Element{}
	}
	r.parts[key] = x // a handful: affiliations times roles
	return x
}

// defaultRole is the role a user enters with (XEP-0045 §5.1.2).
func (r *Room) defaultRole(a Affiliation) Role {
	switch {
	case a >= Admin:
		return RoleModerator
	case a == Member:
		return RoleParticipant
	case r.state.Config.Moderated:
		return RoleVisitor
	}
	return RoleParticipant
}

func (r *Room) maxUsers() int {
	m := r.deps.Limits.MaxUsers
	if c := r.state.Config.MaxUsers; c > 0 && (m == 0 || c < m) {
		m = c
	}
	return m
}

// join admits a user who is not in the room yet, or refuses them with the
// error XEP-0045 §7.2 gives.
func (r *Room) join(el *xmlstream.Element, from, to jid.JID, assigned string) {
	fail := func(cond, text string) { r.errorReply(el, from, to, cond, text) }
	asked := to.Resource()
	if assigned != "" {
		asked = assigned
	}
	nick, ok := prepareNick(asked)
	if !ok {
		fail(stanza.JIDMalformed, "The nickname is not valid.")
		return
	}
	key := nickKey(nick)
	bare := from.Bare()
	x := el.Child(NS, "x")
	created := false
	if !r.Exists() {
		r.create(bare, x != nil)
		created = true
	} else if r.state.Locked && r.affiliation(bare) != Owner {
		fail(stanza.ItemNotFound, "The room is being created and not open yet.")
		return
	}
	aff := r.affiliation(bare)
	existing := r.occ[key]
	switch {
	case aff == Outcast:
		fail(stanza.Forbidden, "You are banned from this room.")
		return
	case existing != nil && !existing.bare.Equal(bare):
		fail(stanza.Conflict, "That nickname is already in use.")
		return
	case r.reserved[key] != "" && r.reserved[key] != bare.BareString():
		fail(stanza.Conflict, "That nickname is registered by another user.")
		return
	case r.state.Config.MembersOnly && aff < Member:
		fail("registration-required", "This room is for members only.")
		return
	case r.state.Config.Password != "" && aff < Owner && !passwordMatches(x, r.state.Config.Password):
		fail(stanza.NotAuthorized, "A password is required to enter this room.")
		return
	}
	if existing == nil {
		if m := r.maxUsers(); m > 0 && len(r.occ) >= m && (aff < Admin || len(r.occ) >= m+r.deps.Limits.ExtraForAdmins) {
			fail(stanza.ServiceUnavailable, "The room is full.")
			return
		}
	}
	s := &session{jid: from, pres: r.cleanPresence(el)}
	o := existing
	if o == nil {
		// Another nickname of the same user is another occupant.
		o = &occupant{nick: nick, key: key, bare: bare, role: r.defaultRole(aff), id: r.occupantID(bare), tokens: float64(r.deps.Limits.MessageBurst), filled: r.deps.Now()}
		r.occ[key] = o
	}
	o.sessions = append(o.sessions, s)
	r.bySess[from.String()] = o
	r.count++
	r.report(Joined, o, from, nil)

	// The room roster first, the newcomer's own presence last (§7.2.3).
	for _, p := range r.sortedOccupants() {
		if p != o {
			r.res.send(r.presenceOf(p, r.canSeeJIDs(o)), from)
		}
	}
	var codes []string
	if r.state.Config.Whois == WhoisAnyone {
		codes = append(codes, "100")
	}
	if r.state.Config.Logging {
		codes = append(codes, "170")
	}
	if created {
		codes = append(codes, "201")
	}
	if nick != to.Resource() {
		codes = append(codes, "210")
	}
	r.broadcastPresence(o, nil, codes, el.Attr("id"))
	r.sendAvatar(from)
	r.sendHistory(x, from)
	r.sendSubject(from)
}

// passwordMatches checks the password of a join's <x xmlns='…muc'/>.
func passwordMatches(x *xmlstream.Element, want string) bool {
	if x == nil {
		return false
	}
	pw := x.Child(NS, "password")
	return pw != nil && pw.Text() == want
}

// create makes the room exist, with the first occupant as its owner. A
// client that speaks MUC gets a locked room to configure; an old
// groupchat 1.0 client gets an instant room (XEP-0045 §10.1.1).
func (r *Room) create(owner jid.JID, locked bool) {
	r.state.Created = r.deps.Now().UTC()
	r.state.Secret = r.deps.NewID() + r.deps.NewID()
	r.state.Creator = owner.BareString()
	r.state.Locked = locked
	rec := Record{JID: owner.BareString(), Affiliation: Owner}
	r.setRecord(rec)
	r.res.Affiliations = append(r.res.Affiliations, rec)
	r.res.Created = true
	r.res.StateChanged = true
}

// update handles a presence change of an occupant under its own nick; a
// join presence from an occupant asks for the whole join again (§7.2.3).
func (r *Room) update(o *occupant, el *xmlstream.Element, from, to jid.JID) {
	s := o.session(from)
	s.pres = r.cleanPresence(el)
	// The session that spoke last is the one whose presence shows.
	i := slices.Index(o.sessions, s)
	o.sessions = append(append(o.sessions[:i:i], o.sessions[i+1:]...), s)
	x := el.Child(NS, "x")
	if x == nil {
		r.broadcastPresence(o, nil, nil, el.Attr("id"))
		return
	}
	for _, p := range r.sortedOccupants() {
		if p != o {
			r.res.send(r.presenceOf(p, r.canSeeJIDs(o)), from)
		}
	}
	r.broadcastPresence(o, nil, nil, el.Attr("id"))
	r.sendAvatar(from)
	r.sendHistory(x, from)
	r.sendSubject(from)
}

// changeNick renames an occupant (XEP-0045 §7.6): unavailable from the
// old nick with status 303, then available from the new one.
func (r *Room) changeNick(o *occupant, el *xmlstream.Element, from, to jid.JID) {
	fail := func(cond, text string) { r.errorReply(el, from, to, cond, text) }
	nick, ok := prepareNick(to.Resource())
	if !ok {
		fail(stanza.JIDMalformed, "The nickname is not valid.")
		return
	}
	key := nickKey(nick)
	if other := r.occ[key]; other != nil && other != o {
		fail(stanza.Conflict, "That nickname is already in use.")
		return
	}
	if owner := r.reserved[key]; owner != "" && owner != o.bare.BareString() {
		fail(stanza.Conflict, "That nickname is registered by another user.")
		return
	}
	s := o.session(from)
	s.pres = r.cleanPresence(el)
	r.broadcastPresence(o, &presExtra{typ: "unavailable", newNick: nick}, []string{"303"}, "")
	delete(r.occ, o.key)
	o.nick, o.key = nick, key
	r.occ[key] = o
	var codes []string
	if nick != to.Resource() {
		codes = append(codes, "210")
	}
	r.broadcastPresence(o, nil, codes, el.Attr("id"))
}

// leave removes one session of an occupant; the occupant leaves with its
// last session. pres is the client's unavailable presence, whose status
// goes with the broadcast.
func (r *Room) leave(o *occupant, s *session, pres *xmlstream.Element, codes ...string) {
	if s == nil {
		return
	}
	if len(o.sessions) > 1 {
		i := slices.Index(o.sessions, s)
		o.sessions = slices.Delete(o.sessions, i, i+1)
		delete(r.bySess, s.jid.String())
		r.count--
		r.report(Left, o, s.jid, nil)
		// The session that left learns it is out; the others of the same
		// occupant stay.
		x := &presExtra{typ: "unavailable"}
		if pres != nil {
			x.pres = r.cleanPresence(pres)
		}
		r.res.send(r.selfPresence(o, s.jid, x, append([]string{"110"}, codes...), ""), s.jid)
		r.broadcastPresence(o, nil, nil, "")
		return
	}
	rm := removal{codes: codes}
	if pres != nil {
		rm.pres = r.cleanPresence(pres)
	}
	r.removeOccupant(o, rm)
}

// removal says why an occupant leaves, for its unavailable presence.
type removal struct {
	codes   []string
	actor   string // the nick of who removed it
	reason  string
	pres    *xmlstream.Element // the client's own unavailable presence
	destroy *xmlstream.Element // <destroy/> when the room is destroyed
	aff     *Affiliation       // the affiliation shown, when it changed
}

// removeOccupant takes an occupant out and tells everyone.
func (r *Room) removeOccupant(o *occupant, rm removal) {
	x := &presExtra{typ: "unavailable", pres: rm.pres, actor: rm.actor, reason: rm.reason, destroy: rm.destroy, role: new(Role), aff: rm.aff}
	*x.role = RoleNone
	r.broadcastPresence(o, x, rm.codes, "")
	delete(r.occ, o.key)
	for _, s := range o.sessions {
		delete(r.bySess, s.jid.String())
		r.report(Left, o, s.jid, nil)
	}
	r.count -= len(o.sessions)
	if len(r.occ) == 0 && (!r.state.Config.Persistent || r.state.Locked) {
		// A temporary room ends with its last occupant (XEP-0045 §10.1).
		r.res.Destroyed = true
	}
}

// presExtra is what a presence broadcast shows beyond the occupant's own
// presence.
type presExtra struct {
	typ     string
	pres    *xmlstream.Element // instead of the occupant's current presence
	newNick string             // status 303
	actor   string
	reason  string
	destroy *xmlstream.Element
	role    *Role
	aff     *Affiliation
}

// userX builds the <x xmlns='…muc#user'/> of an occupant's presence.
func (r *Room) userX(o *occupant, withJID jid.JID, x *presExtra, codes []string) *xmlstream.Element {
	ux := xmlstream.NewElement(NSUser, "x")
	item := ux.AddChild(xmlstream.NewElement(NSUser, "item"))
	aff := r.affiliation(o.bare)
	role := o.role
	if x != nil && x.role != nil {
		role = *x.role
	}
	if x != nil && x.aff != nil {
		aff = *x.aff
	}
	item.SetAttr("affiliation", aff.String())
	item.SetAttr("role", role.String())
	if !withJID.IsZero() {
		item.SetAttr("jid", withJID.String())
	}
	if x != nil {
		if x.newNick != "" {
			item.SetAttr("nick", x.newNick)
		}
		if x.actor != "" {
			item.AddChild(xmlstream.NewElement(NSUser, "actor")).SetAttr("nick", x.actor)
		}
		if x.reason != "" {
			item.AddChild(xmlstream.NewElement(NSUser, "reason")).AddText(x.reason)
		}
		if x.destroy != nil {
			ux.AddChild(x.destroy)
		}
	}
	for _, c := range codes {
		ux.AddChild(xmlstream.NewElement(NSUser, "status")).SetAttr("code", c)
	}
	return ux
}

// presenceEl builds a presence from an occupant: its client's presence
// (or x.pres) with the room's extensions.
func (r *Room) presenceEl(o *occupant, withJID jid.JID, x *presExtra, codes []string, id string) *xmlstream.Element {
	p := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
	p.SetAttr("from", o.jid(r.jid).String())
	if id != "" {
		p.SetAttr("id", id)
	}
	src := o.current().pres
	if x != nil {
		if x.typ != "" {
			p.SetAttr("type", x.typ)
		}
		if x.pres != nil {
			src = x.pres
		} else if x.typ == "unavailable" {
			src = nil
		}
	}
	if src != nil {
		p.Nodes = append(p.Nodes, src.Nodes...)
	}
	ux := xmlstream.Node{}
	if withJID.IsZero() && x == nil && len(codes) == 0 {
		ux.Elem = r.anonymousX(o)
	} else {
		ux.Elem = r.userX(o, withJID, x, codes)
	}
	p.Nodes = append(p.Nodes, ux, xmlstream.Node{Elem: o.occupantIDEl()})
	return p
}

// presenceOf is an occupant's current presence as another occupant sees
// it, from the cache when it is the variant most see.
func (r *Room) presenceOf(o *occupant, withJID bool) *xmlstream.Element {
	var j jid.JID
	if withJID {
		j = o.current().jid
	}
	if withJID != (r.state.Config.Whois == WhoisAnyone) {
		return r.presenceEl(o, j, nil, nil, "")
	}
	if o.shown == nil || o.shownJID != withJID {
		o.shown = r.presenceEl(o, j, nil, nil, "")
		o.shown.Freeze()
		o.shownJID = withJID
	}
	return o.shown
}

// selfPresence is an occupant's presence as one of its own sessions sees
// it: with status 110 and its own real JID.
func (r *Room) selfPresence(o *occupant, self jid.JID, x *presExtra, codes []string, id string) *xmlstream.Element {
	return r.presenceEl(o, self, x, codes, id)
}

// broadcastPresence sends an occupant's presence to everyone: its own
// sessions with status 110 and codes; the others as the room's
// anonymity and presence-broadcast settings allow.
func (r *Room) broadcastPresence(o *occupant, x *presExtra, codes []string, id string) {
	o.shown = nil
	self := append([]string{"110"}, codes...)
	for _, s := range o.sessions {
		r.res.send(r.selfPresence(o, s.jid, x, self, id), s.jid)
	}
	if !parseRoles(r.state.Config.Broadcast).has(o.role) && (x == nil || x.typ != "unavailable") {
		return
	}
	// Status codes other than 110 concern everyone (303, 307, 301, …);
	// those of a join (100, 170, 201, 210) only the newcomer.
	var shared []string
	for _, c := range codes {
		switch c {
		case "100", "170", "201", "210":
		default:
			shared = append(shared, c)
		}
	}
	var withJID, without []jid.JID
	for _, p := range r.occ {
		if p == o {
			continue
		}
		for _, s := range p.sessions {
			if r.canSeeJIDs(p) {
				withJID = append(withJID, s.jid)
			} else {
				without = append(without, s.jid)
			}
		}
	}
	plain := x == nil && len(shared) == 0
	if len(withJID) > 0 {
		if plain {
			r.res.send(r.presenceOf(o, true), withJID...)
		} else {
			r.res.send(r.presenceEl(o, o.current().jid, x, shared, ""), withJID...)
		}
	}
	if len(without) > 0 {
		if plain {
			r.res.send(r.presenceOf(o, false), without...)
		} else {
			r.res.send(r.presenceEl(o, jid.JID{}, x, shared, ""), without...)
		}
	}
}
