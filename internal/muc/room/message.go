package room

import (
	"github.com/ambrosia-xmpp/ambrosia/internal/dataform"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// message handles a message to the room or one of its occupants.
func (r *Room) message(el *xmlstream.Element, from, to jid.JID) {
	o := r.bySess[from.String()]
	typ := el.Attr("type")
	if typ == "error" {
		if o != nil && ghostError(el) {
			r.leave(o, o.session(from), nil, "333")
		}
		return
	}
	if to.Resource() != "" {
		r.private(o, el, from, to)
		return
	}
	if typ == "groupchat" {
		r.groupchat(o, el, from, to)
		return
	}
	if ux := el.Child(NSUser, "x"); ux != nil {
		if inv := ux.Child(NSUser, "invite"); inv != nil {
			r.invite(o, el, ux, inv, from, to)
			return
		}
		if dec := ux.Child(NSUser, "decline"); dec != nil {
			r.decline(el, dec, from, to)
			return
		}
	}
	if f, ok := dataform.Find(el, NSRequest); ok {
		r.voiceForm(o, el, f, from, to)
		return
	}
	if el.Child(xmlstream.NSClient, "body") != nil {
		// §7.4: messages to everyone must be of type groupchat.
		r.errorReply(el, from, to, stanza.BadRequest, "Messages to the room must be of type groupchat.")
	}
}

// allowed reports whether o may send one more message now, by its token
// bucket: a burst of MessageBurst, refilled at MessageRate per second.
func (r *Room) allowed(o *occupant) bool {
	l := r.deps.Limits
	if l.MessageRate <= 0 {
		return true
	}
	now := r.deps.Now()
	o.tokens = min(float64(l.MessageBurst), o.tokens+now.Sub(o.filled).Seconds()*l.MessageRate)
	o.filled = now
	if o.tokens < 1 {
		return false
	}
	o.tokens--
	return true
}

// groupchat reflects a message to every occupant (XEP-0045 §7.4), or
// changes the subject (§8.1).
func (r *Room) groupchat(o *occupant, el *xmlstream.Element, from, to jid.JID) {
	fail := func(cond, text string) { r.errorReply(el, from, to, cond, text) }
	switch {
	case o == nil:
		fail(stanza.NotAcceptable, "Only occupants may send messages to the room.")
		return
	case o.role < RoleParticipant:
		fail(stanza.Forbidden, "Visitors may not speak in this moderated room.")
		return
	case !r.allowed(o):
		fail(stanza.ResourceConstraint, "You are sending messages too fast.")
		return
	}
	subj := el.Child(el.Space, "subject")
	body := el.Child(el.Space, "body")
	if subj != nil && body == nil {
		if o.role < RoleModerator && !r.state.Config.ChangeSubject {
			fail(stanza.Forbidden, "Only moderators may change the subject of this room.")
			return
		}
		r.state.Subject = Subject{Text: subj.Text(), By: o.nick, Stamp: r.deps.Now().UTC()}
		r.res.StateChanged = true
	}
	id, stamp := r.deps.NewStanzaID()
	m := r.reflect(el, o, id)
	if subj == nil || body != nil {
		if r.state.Config.Logging && storable(el) {
			r.res.Archive = append(r.res.Archive, Archived{ID: id, Stamp: stamp, Occupant: o.jid(r.jid), El: m})
		}
		if storable(el) {
			r.remember(m, stamp, id)
		}
	}
	r.res.send(m, r.recipients()...)
	r.report(Said, o, from, m)
}

// storable reports whether a message belongs in history and archive:
// content, not chat states or receipts alone.
func storable(el *xmlstream.Element) bool {
	return el.Child(el.Space, "body") != nil || el.Child(NSRetract, "retract") != nil ||
		el.Child("urn:xmpp:reactions:0", "reactions") != nil || el.Child("urn:xmpp:sfs:0", "file-sharing") != nil
}

// reflect builds the message as occupants receive it: from the sender's
// occupant JID, with the room's stanza id and the sender's occupant id,
// and without ids the sender had no right to add. It is serialized once
// and parsed back, so that every copy sent is a copy of bytes.
func (r *Room) reflect(el *xmlstream.Element, o *occupant, id string) *xmlstream.Element {
	m := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	for _, a := range el.Attrs {
		if a.Space == "" && (a.Local == "to" || a.Local == "from") {
			continue
		}
		m.Attrs = append(m.Attrs, a)
	}
	m.SetAttr("from", o.jid(r.jid).String())
	for c := range el.ChildElements {
		switch {
		case c.Space == NSOccupant:
			continue
		case c.Space == NSStanzaID && c.Local == "stanza-id" && c.Attr("by") == r.jid.String():
			continue
		case c.Space == NSUser:
			continue
		}
		m.Nodes = append(m.Nodes, xmlstream.Node{Elem: c})
	}
	sid := xmlstream.NewElement(NSStanzaID, "stanza-id")
	sid.SetAttr("id", id)
	sid.SetAttr("by", r.jid.String())
	oid := xmlstream.NewElement(NSOccupant, "occupant-id")
	oid.SetAttr("id", o.id)
	m.Nodes = append(m.Nodes, xmlstream.Node{Elem: sid}, xmlstream.Node{Elem: oid})
	return reparse(m)
}

// reparse serializes el and parses it back: the result carries its raw
// bytes, which copies reuse instead of serializing the tree again.
func reparse(el *xmlstream.Element) *xmlstream.Element {
	p, err := xmlstream.ParseStanza(el.AppendXML(nil, xmlstream.NSClient), xmlstream.NSClient)
	if err != nil {
		return el
	}
	return p
}

// private relays a message from one occupant to another (§7.5).
func (r *Room) private(o *occupant, el *xmlstream.Element, from, to jid.JID) {
	fail := func(cond, text string) { r.errorReply(el, from, to, cond, text) }
	if el.Attr("type") == "groupchat" {
		fail(stanza.BadRequest, "A private message must not be of type groupchat.")
		return
	}
	if o == nil {
		fail(stanza.NotAcceptable, "Only occupants may send private messages.")
		return
	}
	target := r.occ[nickKey(to.Resource())]
	if target == nil {
		fail(stanza.ItemNotFound, "No occupant has that nickname.")
		return
	}
	switch pm := r.state.Config.AllowPM; {
	case pm == PMNone,
		pm == PMModerators && o.role < RoleModerator,
		pm == PMParticipants && o.role < RoleParticipant:
		fail(stanza.NotAllowed, "Private messages are not allowed in this room.")
		return
	}
	if !r.allowed(o) {
		fail(stanza.ResourceConstraint, "You are sending messages too fast.")
		return
	}
	m := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	for _, a := range el.Attrs {
		if a.Space == "" && (a.Local == "to" || a.Local == "from") {
			continue
		}
		m.Attrs = append(m.Attrs, a)
	}
	m.SetAttr("from", o.jid(r.jid).String())
	hasX := false
	for c := range el.ChildElements {
		if c.Space == NSOccupant {
			continue
		}
		if c.Space == NSUser && c.Local == "x" {
			hasX = true
		}
		m.Nodes = append(m.Nodes, xmlstream.Node{Elem: c})
	}
	if !hasX {
		// XEP-0045 §7.5 and XEP-0280 §9: the mark of a MUC private
		// message, by which carbons are handled right.
		m.Nodes = append(m.Nodes, xmlstream.Node{Elem: xmlstream.NewElement(NSUser, "x")})
	}
	oid := xmlstream.NewElement(NSOccupant, "occupant-id")
	oid.SetAttr("id", o.id)
	m.Nodes = append(m.Nodes, xmlstream.Node{Elem: oid})
	to2 := make([]jid.JID, 0, len(target.sessions))
	for _, s := range target.sessions {
		to2 = append(to2, s.jid)
	}
	r.res.send(m, to2...)
}

// invite forwards a mediated invitation (§7.8.2).
func (r *Room) invite(o *occupant, el, ux, inv *xmlstream.Element, from, to jid.JID) {
	fail := func(cond, text string) { r.errorReply(el, from, to, cond, text) }
	if o == nil {
		fail(stanza.NotAcceptable, "Only occupants may invite.")
		return
	}
	invitee, err := jid.Parse(inv.Attr("to"))
	if err != nil || invitee.IsZero() {
		fail(stanza.JIDMalformed, "The invitee's address is not valid.")
		return
	}
	aff := r.affiliation(o.bare)
	if r.state.Config.MembersOnly && aff < Admin && !r.state.Config.AllowInvites {
		fail(stanza.Forbidden, "Only admins may invite to this members-only room.")
		return
	}
	if !r.state.Config.MembersOnly && aff < Admin && !r.state.Config.AllowInvites && o.role < RoleModerator {
		fail(stanza.Forbidden, "Only moderators may invite to this room.")
		return
	}
	if r.state.Config.MembersOnly && r.affiliation(invitee.Bare()) < Member {
		if r.affiliation(invitee.Bare()) == Outcast {
			fail(stanza.Forbidden, "The invitee is banned from this room.")
			return
		}
		// The invitation makes the invitee a member (§7.8.2).
		r.setAffiliation(Record{JID: invitee.BareString(), Affiliation: Member}, o)
	}
	m := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	m.SetAttr("from", r.jid.String())
	if id := el.Attr("id"); id != "" {
		m.SetAttr("id", id)
	}
	x := m.AddChild(xmlstream.NewElement(NSUser, "x"))
	fi := x.AddChild(xmlstream.NewElement(NSUser, "invite"))
	inviter := o.jid(r.jid)
	if r.state.Config.Whois == WhoisAnyone {
		inviter = from.Bare()
	}
	fi.SetAttr("from", inviter.String())
	reason := ""
	if re := inv.Child(NSUser, "reason"); re != nil {
		reason = re.Text()
		fi.AddChild(xmlstream.NewElement(NSUser, "reason")).AddText(reason)
	}
	if pw := r.state.Config.Password; pw != "" {
		x.AddChild(xmlstream.NewElement(NSUser, "password")).AddText(pw)
	}
	body := inviter.String() + " invites you to the room " + r.jid.String()
	if reason != "" {
		body += ": " + reason
	}
	m.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body")).AddText(body)
	// Older clients know only the direct form (XEP-0249).
	c := m.AddChild(xmlstream.NewElement(NSConfInv, "x"))
	c.SetAttr("jid", r.jid.String())
	if reason != "" {
		c.SetAttr("reason", reason)
	}
	r.res.send(m, invitee)
}

// decline forwards an invitee's refusal to the inviter (§7.8.2).
func (r *Room) decline(el, dec *xmlstream.Element, from, to jid.JID) {
	inviter, err := jid.Parse(dec.Attr("to"))
	if err != nil || inviter.IsZero() {
		r.errorReply(el, from, to, stanza.JIDMalformed, "The inviter's address is not valid.")
		return
	}
	if inviter.Bare().Equal(r.jid) {
		// An occupant JID: the decline goes to that occupant's sessions.
		o := r.occ[nickKey(inviter.Resource())]
		if o == nil {
			r.errorReply(el, from, to, stanza.ItemNotFound, "The inviter is not in the room.")
			return
		}
		for _, s := range o.sessions {
			r.res.send(r.declineMessage(dec, from), s.jid)
		}
		return
	}
	r.res.send(r.declineMessage(dec, from), inviter)
}

func (r *Room) declineMessage(dec *xmlstream.Element, from jid.JID) *xmlstream.Element {
	m := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	m.SetAttr("from", r.jid.String())
	d := m.AddChild(xmlstream.NewElement(NSUser, "x")).AddChild(xmlstream.NewElement(NSUser, "decline"))
	d.SetAttr("from", from.Bare().String())
	if re := dec.Child(NSUser, "reason"); re != nil {
		d.AddChild(xmlstream.NewElement(NSUser, "reason")).AddText(re.Text())
	}
	return m
}

// voiceForm handles a voice request from a visitor (§7.13), forwarded to
// the moderators as an approval form, and a moderator's approval (§8.6).
func (r *Room) voiceForm(o *occupant, el *xmlstream.Element, f dataform.Form, from, to jid.JID) {
	fail := func(cond, text string) { r.errorReply(el, from, to, cond, text) }
	if o == nil {
		fail(stanza.NotAcceptable, "Only occupants may ask for voice.")
		return
	}
	if f.Type == dataform.TypeSubmit && f.Field("muc#request_allow") != nil {
		if o.role < RoleModerator {
			fail(stanza.Forbidden, "Only moderators may approve voice requests.")
			return
		}
		allow, err := dataform.Bool(f.Field("muc#request_allow").Value())
		if err != nil {
			fail(stanza.BadRequest, "muc#request_allow must be a boolean.")
			return
		}
		nick := ""
		if fl := f.Field("muc#roomnick"); fl != nil {
			nick = fl.Value()
		}
		target := r.occ[nickKey(nick)]
		if !allow || target == nil || target.role != RoleVisitor {
			return
		}
		r.setRole(target, RoleParticipant, o, "")
		return
	}
	role := ""
	if fl := f.Field("muc#role"); fl != nil {
		role = fl.Value()
	}
	if role != "participant" {
		fail(stanza.BadRequest, "Only voice (the participant role) can be requested.")
		return
	}
	if o.role != RoleVisitor {
		return // already has voice
	}
	if !r.state.Config.VoiceRequests {
		fail(stanza.Forbidden, "Voice requests are not allowed in this room.")
		return
	}
	form := dataform.Form{Type: dataform.TypeForm, FormType: NSRequest, Title: "Voice request",
		Instructions: "To approve this request for voice, select the \"Grant voice to this person?\" checkbox and submit the form."}
	form.Add(dataform.Field{Var: "muc#role", Type: dataform.ListSingle, Label: "Requested role", Values: []string{"participant"}})
	if r.state.Config.Whois == WhoisAnyone {
		form.Add(dataform.Field{Var: "muc#jid", Type: dataform.JIDSingle, Label: "User ID", Values: []string{from.String()}})
	}
	form.Add(dataform.Field{Var: "muc#roomnick", Type: dataform.TextSingle, Label: "Room Nickname", Values: []string{o.nick}})
	form.Add(dataform.Field{Var: "muc#request_allow", Type: dataform.Boolean, Label: "Grant voice to this person?", Values: []string{"false"}})
	m := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	m.SetAttr("from", r.jid.String())
	m.SetAttr("id", r.deps.NewID())
	m.AddChild(form.Element())
	var mods []jid.JID
	for _, p := range r.occ {
		if p.role == RoleModerator {
			for _, s := range p.sessions {
				mods = append(mods, s.jid)
			}
		}
	}
	r.res.send(m, mods...)
}
