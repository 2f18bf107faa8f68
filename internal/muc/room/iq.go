package room

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/dataform"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// iq handles an IQ to the room or to an occupant.
func (r *Room) iq(el *xmlstream.Element, from, to jid.JID) {
	o := r.bySess[from.String()]
	if to.Resource() != "" {
		r.occupantIQ(o, el, from, to)
		return
	}
	if !stanza.IsRequest(el) {
		return
	}
	var q *xmlstream.Element
	for c := range el.ChildElements {
		q = c
		break
	}
	if q == nil {
		r.errorReply(el, from, to, stanza.BadRequest, "The request has no payload.")
		return
	}
	get := el.Attr("type") == "get"
	switch {
	case q.Space == NSAdmin && q.Local == "query":
		r.adminIQ(el, q, from, to, o)
	case q.Space == NSOwner && q.Local == "query":
		r.ownerIQ(el, q, from, to, o)
	case q.Space == NSIQReg && q.Local == "query":
		r.registerIQ(el, q, from, to)
	case q.Space == NSDiscoInfo && q.Local == "query" && get:
		r.discoInfo(el, q, from, to)
	case q.Space == NSDiscoItem && q.Local == "query" && get:
		r.discoItems(el, from, to, o)
	case q.Space == NSVCard && q.Local == "vCard":
		r.vcardIQ(el, q, from, to, o)
	case q.Space == NSPing && q.Local == "ping" && get:
		r.reply(el, from, to, stanza.Result(el))
	case q.Space == NSModerate && q.Local == "moderate" && !get:
		r.moderate(el, q, from, to, o)
	default:
		r.errorReply(el, from, to, stanza.ServiceUnavailable, "")
	}
}

// change is one item of an admin request, checked before any is applied.
type change struct {
	role   Role
	target *occupant
	rec    Record
	isRole bool
}

// adminIQ handles the admin namespace (XEP-0045 §8, §9, §10): role and
// affiliation lists and their changes. A request that changes several
// items is refused whole if any item is.
func (r *Room) adminIQ(el, q *xmlstream.Element, from, to jid.JID, o *occupant) {
	fail := func(cond, text string) { r.errorReply(el, from, to, cond, text) }
	var items []*xmlstream.Element
	for c := range q.ChildElements {
		if c.Space == NSAdmin && c.Local == "item" {
			items = append(items, c)
		}
	}
	if len(items) == 0 {
		fail(stanza.BadRequest, "The request has no item.")
		return
	}
	actorAff := r.affiliation(from.Bare())
	if el.Attr("type") == "get" {
		r.adminList(el, items[0], from, to, o, actorAff)
		return
	}
	var changes []change
	for _, it := range items {
		c, cond, text := r.checkChange(it, from, o, actorAff)
		if cond != "" {
			fail(cond, text)
			return
		}
		changes = append(changes, c)
	}
	for _, c := range changes {
		if c.isRole {
			r.setRole(c.target, c.role, o, c.rec.Reason)
		} else {
			r.setAffiliation(c.rec, o)
		}
	}
	r.reply(el, from, to, stanza.Result(el))
}

// checkChange validates one item of an admin set against the rules of
// XEP-0045 §8 and §9: forbidden when the actor lacks the privilege,
// not-allowed when the target stands higher, conflict for the last owner
// and for banning oneself.
func (r *Room) checkChange(it *xmlstream.Element, from jid.JID, o *occupant, actorAff Affiliation) (change, string, string) {
	roleAttr, affAttr := it.Attr("role"), it.Attr("affiliation")
	reason := ""
	if re := it.Child(NSAdmin, "reason"); re != nil {
		reason = re.Text()
	}
	switch {
	case roleAttr != "" && affAttr != "":
		return change{}, stanza.BadRequest, "An item changes a role or an affiliation, not both."
	case roleAttr != "":
		role, ok := ParseRole(roleAttr)
		if !ok {
			return change{}, stanza.BadRequest, "Unknown role " + strconv.Quote(roleAttr) + "."
		}
		if o == nil || o.role != RoleModerator {
			return change{}, stanza.Forbidden, "Only moderators may change roles."
		}
		target := r.occ[nickKey(it.Attr("nick"))]
		if target == nil {
			return change{}, stanza.ItemNotFound, "No occupant has that nickname."
		}
		targetAff := r.affiliation(target.bare)
		switch {
		case role < RoleModerator && targetAff >= Admin && target != o:
			return change{}, stanza.NotAllowed, "The roles of admins and owners cannot be lowered."
		case role < RoleParticipant && targetAff > actorAff:
			return change{}, stanza.NotAllowed, "You cannot do that to someone with a higher affiliation."
		case role == RoleModerator && actorAff < Admin:
			return change{}, stanza.Forbidden, "Only admins may grant moderation."
		case target.role == RoleModerator && role < RoleModerator && actorAff < Admin:
			return change{}, stanza.Forbidden, "Only admins may revoke moderation."
		}
		return change{isRole: true, role: role, target: target, rec: Record{Reason: reason}}, "", ""
	case affAttr != "":
		aff, ok := ParseAffiliation(affAttr)
		if !ok {
			return change{}, stanza.BadRequest, "Unknown affiliation " + strconv.Quote(affAttr) + "."
		}
		j, err := jid.Parse(it.Attr("jid"))
		if err != nil || j.IsZero() {
			return change{}, stanza.JIDMalformed, "The item needs a valid jid."
		}
		key := j.BareString()
		if j.Local() == "" {
			key = j.Domain()
		}
		cur := None
		if rec := r.affs[key]; rec != nil {
			cur = rec.Affiliation
		}
		switch {
		case actorAff < Admin:
			return change{}, stanza.Forbidden, "Only admins and owners may change affiliations."
		case actorAff == Admin && aff >= Admin:
			return change{}, stanza.Forbidden, "Only owners may grant admin or owner status."
		case actorAff == Admin && cur >= Admin:
			return change{}, stanza.NotAllowed, "Only owners may change the affiliation of admins and owners."
		case aff == Outcast && key == from.BareString():
			return change{}, stanza.Conflict, "You cannot ban yourself."
		case cur == Owner && aff != Owner && r.owners() == 1:
			return change{}, stanza.Conflict, "The room must keep at least one owner."
		}
		nick := ""
		if rec := r.affs[key]; rec != nil && aff != Outcast {
			nick = rec.Nick
		}
		return change{rec: Record{JID: key, Affiliation: aff, Nick: nick, Reason: reason}}, "", ""
	}
	return change{}, stanza.BadRequest, "An item needs a role or an affiliation."
}

func (r *Room) owners() int {
	n := 0
	for _, a := range r.affs {
		if a.Affiliation == Owner {
			n++
		}
	}
	return n
}

// adminList answers a request for the occupants with a role, or the
// users with an affiliation.
func (r *Room) adminList(el, it *xmlstream.Element, from, to jid.JID, o *occupant, actorAff Affiliation) {
	fail := func(cond, text string) { r.errorReply(el, from, to, cond, text) }
	res := stanza.Result(el)
	q := res.AddChild(xmlstream.NewElement(NSAdmin, "query"))
	if ra := it.Attr("role"); ra != "" {
		role, ok := ParseRole(ra)
		if !ok {
			fail(stanza.BadRequest, "Unknown role.")
			return
		}
		if o == nil || o.role != RoleModerator {
			fail(stanza.Forbidden, "Only moderators may list roles.")
			return
		}
		for _, p := range r.sortedOccupants() {
			if p.role != role {
				continue
			}
			item := q.AddChild(xmlstream.NewElement(NSAdmin, "item"))
			item.SetAttr("affiliation", r.affiliation(p.bare).String())
			item.SetAttr("jid", p.current().jid.String())
			item.SetAttr("nick", p.nick)
			item.SetAttr("role", p.role.String())
		}
		r.reply(el, from, to, res)
		return
	}
	aff, ok := ParseAffiliation(it.Attr("affiliation"))
	if !ok || aff == None {
		fail(stanza.BadRequest, "Unknown affiliation.")
		return
	}
	allowed := actorAff >= Admin
	if aff == Member && !allowed && o != nil && parseRoles(r.state.Config.GetMemberList).has(o.role) &&
		(r.state.Config.Whois == WhoisAnyone || r.state.Config.MembersOnly && actorAff >= Member) {
		allowed = true
	}
	if !allowed {
		fail(stanza.Forbidden, "You may not read that list.")
		return
	}
	for _, rec := range sortedRecords(r.Affiliations()) {
		if rec.Affiliation != aff {
			continue
		}
		item := q.AddChild(xmlstream.NewElement(NSAdmin, "item"))
		item.SetAttr("affiliation", aff.String())
		item.SetAttr("jid", rec.JID)
		if rec.Nick != "" {
			item.SetAttr("nick", rec.Nick)
		}
		if rec.Reason != "" {
			item.AddChild(xmlstream.NewElement(NSAdmin, "reason")).AddText(rec.Reason)
		}
	}
	r.reply(el, from, to, res)
}

func sortedRecords(l []Record) []Record {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j].JID < l[j-1].JID; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
	return l
}

// setRole changes an occupant's role and tells everyone; RoleNone kicks
// it out (status 307).
func (r *Room) setRole(target *occupant, role Role, actor *occupant, reason string) {
	actorNick := ""
	if actor != nil {
		actorNick = actor.nick
	}
	if role == RoleNone {
		r.removeOccupant(target, removal{codes: []string{"307"}, actor: actorNick, reason: reason})
		return
	}
	if target.role == role {
		return
	}
	target.role = role
	r.broadcastPresence(target, &presExtra{actor: actorNick, reason: reason}, nil, "")
}

// setAffiliation records an affiliation and applies it to the occupants
// it concerns: a ban removes them (301), a lost membership of a
// members-only room too (321), other changes adjust their role.
func (r *Room) setAffiliation(rec Record, actor *occupant) {
	old := None
	if cur := r.affs[rec.JID]; cur != nil {
		old = cur.Affiliation
	}
	r.setRecord(rec)
	r.res.Affiliations = append(r.res.Affiliations, rec)
	actorNick := ""
	if actor != nil {
		actorNick = actor.nick
	}
	for _, o := range r.sortedOccupants() {
		if o.bare.BareString() != rec.JID && (strings.Contains(rec.JID, "@") || o.bare.Domain() != rec.JID || r.affs[o.bare.BareString()] != nil) {
			continue
		}
		switch {
		case rec.Affiliation == Outcast:
			aff := Outcast
			r.removeOccupant(o, removal{codes: []string{"301"}, actor: actorNick, reason: rec.Reason, aff: &aff})
			continue
		case r.state.Config.MembersOnly && rec.Affiliation < Member:
			aff := rec.Affiliation
			r.removeOccupant(o, removal{codes: []string{"321"}, actor: actorNick, reason: rec.Reason, aff: &aff})
			continue
		case rec.Affiliation >= Admin:
			o.role = RoleModerator
		case old >= Admin:
			o.role = r.defaultRole(rec.Affiliation)
		case rec.Affiliation == Member && o.role == RoleVisitor:
			o.role = RoleParticipant
		}
		r.broadcastPresence(o, &presExtra{actor: actorNick, reason: rec.Reason}, nil, "")
	}
}

// registerIQ handles registration with the room (XEP-0045 §7.10), which
// makes the user a member with a reserved nickname.
func (r *Room) registerIQ(el, q *xmlstream.Element, from, to jid.JID) {
	fail := func(cond, text string) { r.errorReply(el, from, to, cond, text) }
	bare := from.BareString()
	aff := r.affiliation(from.Bare())
	rec := r.affs[bare]
	if el.Attr("type") == "get" {
		res := stanza.Result(el)
		rq := res.AddChild(xmlstream.NewElement(NSIQReg, "query"))
		if rec != nil && rec.Nick != "" {
			rq.AddChild(xmlstream.NewElement(NSIQReg, "registered"))
			rq.AddChild(xmlstream.NewElement(NSIQReg, "username")).AddText(rec.Nick)
			r.reply(el, from, to, res)
			return
		}
		if aff == Outcast || (r.state.Config.MembersOnly && aff < Member) {
			fail(stanza.NotAllowed, "You may not register with this room.")
			return
		}
		rq.AddChild(xmlstream.NewElement(NSIQReg, "instructions")).AddText("Choose the nickname to reserve in " + r.jid.String() + ".")
		f := dataform.Form{Type: dataform.TypeForm, FormType: NSRegister, Title: "Registration with " + r.jid.String()}
		f.Add(dataform.Field{Var: "muc#register_roomnick", Type: dataform.TextSingle, Label: "Desired nickname"})
		rq.AddChild(f.Element())
		r.reply(el, from, to, res)
		return
	}
	if q.Child(NSIQReg, "remove") != nil {
		if rec == nil {
			fail(stanza.ItemNotFound, "You are not registered with this room.")
			return
		}
		nr := *rec
		nr.Nick = ""
		if nr.Affiliation == Member {
			nr.Affiliation = None
		}
		r.setAffiliation(nr, nil)
		r.reply(el, from, to, stanza.Result(el))
		return
	}
	if aff == Outcast || (r.state.Config.MembersOnly && aff < Member) {
		fail(stanza.NotAllowed, "You may not register with this room.")
		return
	}
	f, ok := dataform.Find(q, "")
	if !ok || f.Type != dataform.TypeSubmit || (f.FormType != "" && f.FormType != NSRegister) || f.Field("muc#register_roomnick") == nil {
		fail(stanza.BadRequest, "Submit the registration form with muc#register_roomnick.")
		return
	}
	nick, valid := prepareNick(f.Field("muc#register_roomnick").Value())
	if !valid {
		fail(stanza.JIDMalformed, "The nickname is not valid.")
		return
	}
	key := nickKey(nick)
	if owner := r.reserved[key]; owner != "" && owner != bare {
		fail(stanza.Conflict, "That nickname is registered by another user.")
		return
	}
	if o := r.occ[key]; o != nil && o.bare.BareString() != bare {
		fail(stanza.Conflict, "That nickname is in use by another occupant.")
		return
	}
	nr := Record{JID: bare, Affiliation: max(aff, Member), Nick: nick}
	if rec != nil {
		nr.Reason = rec.Reason
	}
	r.setAffiliation(nr, nil)
	r.reply(el, from, to, stanza.Result(el))
}

// Features returns the disco#info features of the room.
func (r *Room) Features() []string {
	c := r.state.Config
	pick := func(b bool, yes, no string) string {
		if b {
			return yes
		}
		return no
	}
	fs := []string{NS, NS + "#stable_id", NS + "#self-ping-optimization", NSDiscoInfo, NSDiscoItem,
		pick(c.Persistent, "muc_persistent", "muc_temporary"),
		pick(c.Public, "muc_public", "muc_hidden"),
		pick(c.MembersOnly, "muc_membersonly", "muc_open"),
		pick(c.Moderated, "muc_moderated", "muc_unmoderated"),
		pick(c.Password != "", "muc_passwordprotected", "muc_unsecured"),
		pick(c.Whois == WhoisAnyone, "muc_nonanonymous", "muc_semianonymous"),
		NSIQReg, NSStanzaID, NSOccupant, NSVCard, NSModerate, NSPing,
	}
	if c.VoiceRequests {
		fs = append(fs, NSRequest)
	}
	if c.Logging {
		fs = append(fs, NSMAM)
	}
	return fs
}

// discoInfo answers disco#info on the room (XEP-0045 §6.4), with the
// room information form (XEP-0128), and the reserved-nickname node (§7.12).
func (r *Room) discoInfo(el, q *xmlstream.Element, from, to jid.JID) {
	res := stanza.Result(el)
	rq := res.AddChild(xmlstream.NewElement(NSDiscoInfo, "query"))
	switch node := q.Attr("node"); node {
	case "":
	case "x-roomuser-item":
		rq.SetAttr("node", node)
		if rec := r.affs[from.BareString()]; rec != nil && rec.Nick != "" {
			id := rq.AddChild(xmlstream.NewElement(NSDiscoInfo, "identity"))
			id.SetAttr("category", "conference")
			id.SetAttr("type", "text")
			id.SetAttr("name", rec.Nick)
		}
		r.reply(el, from, to, res)
		return
	default:
		// No traffic filtering (§17.1.1) and no other nodes.
		cond := stanza.ItemNotFound
		if node == NS+"#traffic" {
			cond = stanza.ServiceUnavailable
		}
		r.errorReply(el, from, to, cond, "")
		return
	}
	c := r.state.Config
	id := rq.AddChild(xmlstream.NewElement(NSDiscoInfo, "identity"))
	id.SetAttr("category", "conference")
	id.SetAttr("type", "text")
	name := c.Name
	if name == "" {
		name = r.jid.Local()
	}
	id.SetAttr("name", name)
	for _, f := range r.Features() {
		rq.AddChild(xmlstream.NewElement(NSDiscoInfo, "feature")).SetAttr("var", f)
	}
	info := dataform.Form{Type: dataform.TypeResult, FormType: NSRoomInfo}
	info.Add(dataform.Field{Var: "muc#roominfo_description", Type: dataform.TextSingle, Label: "Description", Values: []string{c.Description}})
	info.Add(dataform.Field{Var: "muc#roominfo_occupants", Type: dataform.TextSingle, Label: "Number of occupants", Values: []string{strconv.Itoa(len(r.occ))}})
	info.Add(dataform.Field{Var: "muc#roominfo_subject", Type: dataform.TextSingle, Label: "Subject", Values: []string{r.state.Subject.Text}})
	info.Add(dataform.Field{Var: "muc#roominfo_subjectmod", Type: dataform.Boolean, Label: "Occupants may change the subject", Values: []string{dataform.FormatBool(c.ChangeSubject)}})
	if c.Lang != "" {
		info.Add(dataform.Field{Var: "muc#roominfo_lang", Type: dataform.TextSingle, Label: "Language", Values: []string{c.Lang}})
	}
	info.Add(dataform.Field{Var: fInvites, Type: dataform.Boolean, Label: "Occupants may invite others", Values: []string{dataform.FormatBool(c.AllowInvites)}})
	info.Add(dataform.Field{Var: fAllowPM, Type: dataform.ListSingle, Label: "Who may send private messages", Values: []string{c.AllowPM}})
	info.Add(dataform.Field{Var: fHistory, Type: dataform.TextSingle, Label: "Messages of history", Values: []string{strconv.Itoa(r.historyCap())}})
	if r.state.AvatarHash != "" {
		info.Add(dataform.Field{Var: "muc#roominfo_avatarhash", Type: dataform.TextMulti, Label: "Avatar hash", Values: []string{r.state.AvatarHash}})
	}
	rq.AddChild(info.Element())
	r.reply(el, from, to, res)
}

// discoItems lists the occupants to an occupant, and nothing to anyone
// else (XEP-0045 §6.5 leaves the choice to the room).
func (r *Room) discoItems(el *xmlstream.Element, from, to jid.JID, o *occupant) {
	res := stanza.Result(el)
	q := res.AddChild(xmlstream.NewElement(NSDiscoItem, "query"))
	if o != nil {
		for _, p := range r.sortedOccupants() {
			it := q.AddChild(xmlstream.NewElement(NSDiscoItem, "item"))
			it.SetAttr("jid", p.jid(r.jid).String())
			it.SetAttr("name", p.nick)
		}
	}
	r.reply(el, from, to, res)
}

// vcardIQ serves the room's vCard, which holds its avatar (XEP-0486);
// owners set it.
func (r *Room) vcardIQ(el, q *xmlstream.Element, from, to jid.JID, o *occupant) {
	if el.Attr("type") == "get" {
		res := stanza.Result(el)
		if r.vcard != nil {
			res.AddChild(r.vcard.ShallowCopy())
		} else {
			res.AddChild(xmlstream.NewElement(NSVCard, "vCard"))
		}
		r.reply(el, from, to, res)
		return
	}
	if r.affiliation(from.Bare()) != Owner {
		r.errorReply(el, from, to, stanza.Forbidden, "Only owners may set the room's avatar.")
		return
	}
	hash := ""
	if ph := q.Child(NSVCard, "PHOTO"); ph != nil {
		if bv := ph.Child(NSVCard, "BINVAL"); bv != nil {
			data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(bv.Text()), ""))
			if err != nil {
				r.errorReply(el, from, to, stanza.BadRequest, "The photo is not valid base64.")
				return
			}
			sum := sha1.Sum(data)
			hash = hex.EncodeToString(sum[:])
		}
	}
	if len(q.Nodes) == 0 {
		r.vcard = nil
	} else {
		r.vcard = q
	}
	r.res.VCard, r.res.VCardSet = r.vcard, true
	r.state.AvatarHash = hash
	r.res.StateChanged = true
	r.reply(el, from, to, stanza.Result(el))
	r.statusMessage("104")
	if hash != "" {
		r.res.send(r.avatarPresence(), r.recipients()...)
	}
}

// moderate retracts an occupant's message for everyone (XEP-0425).
func (r *Room) moderate(el, q *xmlstream.Element, from, to jid.JID, o *occupant) {
	fail := func(cond, text string) { r.errorReply(el, from, to, cond, text) }
	if o == nil || o.role != RoleModerator {
		fail(stanza.Forbidden, "Only moderators may moderate messages.")
		return
	}
	id := q.Attr("id")
	if id == "" || q.Child(NSRetract, "retract") == nil {
		fail(stanza.BadRequest, "A moderation request needs a message id and <retract/>.")
		return
	}
	reason := ""
	if re := q.Child(NSModerate, "reason"); re != nil {
		reason = re.Text()
	}
	var orig *xmlstream.Element
	hi := -1
	for i := range r.history {
		if r.history[i].id == id {
			orig, hi = r.history[i].el, i
		}
	}
	if orig == nil && r.deps.Archived != nil {
		orig, _ = r.deps.Archived(id)
	}
	if orig == nil {
		fail(stanza.ItemNotFound, "No message of the room has that id.")
		return
	}
	now := r.deps.Now().UTC()
	moderated := func() *xmlstream.Element {
		m := xmlstream.NewElement(NSModerate, "moderated")
		m.SetAttr("by", o.jid(r.jid).String())
		oid := m.AddChild(xmlstream.NewElement(NSOccupant, "occupant-id"))
		oid.SetAttr("id", o.id)
		return m
	}
	// The tombstone keeps the addressing and ids of the original, nothing
	// of its content.
	tomb := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	tomb.Attrs = append(tomb.Attrs, orig.Attrs...)
	for c := range orig.ChildElements {
		if c.Space == NSStanzaID || c.Space == NSOccupant {
			tomb.AddChild(c.ShallowCopy())
		}
	}
	rt := tomb.AddChild(xmlstream.NewElement(NSRetract, "retracted"))
	rt.SetAttr("stamp", now.Format(stampFormat))
	rt.AddChild(moderated())
	if reason != "" {
		rt.AddChild(xmlstream.NewElement(NSRetract, "reason")).AddText(reason)
	}
	tomb = reparse(tomb)
	if hi >= 0 {
		r.history[hi].el = tomb
	}
	r.res.Retract = append(r.res.Retract, Retraction{ID: id, Tombstone: tomb})

	m := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	m.SetAttr("type", "groupchat")
	m.SetAttr("from", r.jid.String())
	m.SetAttr("id", r.deps.NewID())
	ret := m.AddChild(xmlstream.NewElement(NSRetract, "retract"))
	ret.SetAttr("id", id)
	ret.AddChild(moderated())
	if reason != "" {
		ret.AddChild(xmlstream.NewElement(NSRetract, "reason")).AddText(reason)
	}
	sid, stamp := r.deps.NewStanzaID()
	se := m.AddChild(xmlstream.NewElement(NSStanzaID, "stanza-id"))
	se.SetAttr("id", sid)
	se.SetAttr("by", r.jid.String())
	m = reparse(m)
	if r.state.Config.Logging {
		r.res.Archive = append(r.res.Archive, Archived{ID: sid, Stamp: stamp, Occupant: r.jid, El: m})
	}
	r.reply(el, from, to, stanza.Result(el))
	r.res.send(m, r.recipients()...)
}

// occupantIQ handles an IQ to an occupant JID: a self-ping (XEP-0410) is
// answered by the room; other requests go to the occupant's real JID
// under the sender's occupant JID (XEP-0045 §17.4), and the answers come
// back the same way.
func (r *Room) occupantIQ(o *occupant, el *xmlstream.Element, from, to jid.JID) {
	if !stanza.IsRequest(el) {
		p, ok := r.pending[el.Attr("id")]
		if !ok {
			return
		}
		target := r.occ[p.to]
		if target == nil || !target.bare.Equal(from.Bare()) {
			return
		}
		delete(r.pending, el.Attr("id"))
		a := el.ShallowCopy()
		a.SetAttr("id", p.origID)
		a.SetAttr("from", target.jid(r.jid).String())
		a.RemoveAttr("to")
		r.res.send(a, p.from)
		return
	}
	var q *xmlstream.Element
	for c := range el.ChildElements {
		q = c
		break
	}
	if o == nil {
		cond := stanza.NotAcceptable
		if q != nil && (q.Space == NSDiscoInfo || q.Space == NSDiscoItem) {
			cond = stanza.BadRequest
		}
		r.errorReply(el, from, to, cond, "You are not in the room under that nickname.")
		return
	}
	target := r.occ[nickKey(to.Resource())]
	if target == nil {
		r.errorReply(el, from, to, stanza.ItemNotFound, "No occupant has that nickname.")
		return
	}
	if target == o && q != nil && q.Space == NSPing && q.Local == "ping" {
		r.reply(el, from, to, stanza.Result(el))
		return
	}
	if r.pending == nil {
		r.pending = map[string]pendingIQ{}
	}
	if len(r.pending) >= max(r.deps.Limits.MaxPending, 1) {
		// The oldest answers are likely never to come: forget one.
		for k := range r.pending {
			delete(r.pending, k)
			break
		}
	}
	id := r.deps.NewID()
	r.pending[id] = pendingIQ{from: from, origID: el.Attr("id"), to: target.key}
	fw := el.ShallowCopy()
	fw.SetAttr("id", id)
	fw.SetAttr("from", o.jid(r.jid).String())
	fw.RemoveAttr("to")
	dest := target.current().jid
	if q != nil && q.Space == NSVCard {
		// A user's vCard is served by their account (XEP-0054).
		dest = target.bare
	}
	r.res.send(fw, dest)
}
