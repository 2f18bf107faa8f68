package room

import (
	"errors"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/dataform"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// What follows is for a room's host acting on its own authority rather
// than on a stanza: a bridge whose room mirrors a group chat of another
// network, where joins under a nick the network chose, kicks, roles and
// subjects happen there and are only reported.

// Enter handles a join presence (el, from the real JID from to the
// occupant JID to) under the nick the host assigns instead of the one
// asked for; the newcomer sees status 210 when the two differ.
func (r *Room) Enter(el *xmlstream.Element, from, to jid.JID, nick string) *Result {
	r.res.reset()
	if r.bySess[from.String()] != nil {
		return r.Handle(el, from, to)
	}
	r.join(el, from, to, nick)
	return &r.res
}

// Remove takes the occupant with nick out, as a kick (status 307) by the
// occupant actor when actor is not "", with reason.
func (r *Room) Remove(nick, actor, reason string) *Result {
	r.res.reset()
	o := r.occ[nickKey(nick)]
	if o == nil {
		return &r.res
	}
	r.removeOccupant(o, removal{codes: []string{"307"}, actor: actor, reason: reason})
	return &r.res
}

// SetAffiliation records an affiliation with its consequences for the
// occupants it concerns, as an owner's request would.
func (r *Room) SetAffiliation(rec Record) *Result {
	r.res.reset()
	r.setAffiliation(rec, nil)
	return &r.res
}

// SetSubject changes the subject, as set by the occupant with nick ("" for
// the room itself), and sends it to every occupant.
func (r *Room) SetSubject(text, nick string, at time.Time) *Result {
	r.res.reset()
	r.state.Subject = Subject{Text: text, By: nick, Stamp: at.UTC()}
	r.res.StateChanged = true
	m := r.subjectMessage()
	r.res.send(m, r.recipients()...)
	return &r.res
}

// Occupant returns the nick under which the real JID full is in the
// room, "" if it is not.
func (r *Room) Occupant(full jid.JID) string {
	if o := r.bySess[full.String()]; o != nil {
		return o.nick
	}
	return ""
}

// Sessions returns the real JIDs in the room under nick.
func (r *Room) Sessions(nick string) []jid.JID {
	o := r.occ[nickKey(nick)]
	if o == nil {
		return nil
	}
	out := make([]jid.JID, 0, len(o.sessions))
	for _, s := range o.sessions {
		out = append(out, s.jid)
	}
	return out
}

// Notice sends a message from the room itself to every occupant, such as
// a notice of the other network that concerns no one in particular.
func (r *Room) Notice(body string) *Result {
	r.res.reset()
	m := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	m.SetAttr("type", "groupchat")
	m.SetAttr("from", r.jid.String())
	m.SetAttr("id", r.deps.NewID())
	m.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body")).AddText(body)
	r.res.send(m, r.recipients()...)
	return &r.res
}

// ErrExists is returned by Create for a room that exists already.
var ErrExists = errors.New("room: the room exists")

// Create makes the room exist with no occupant, owned by owner and
// configured by f (submitted room configuration fields; none for the
// defaults), persistent unless f says otherwise: a room an administrator
// makes rather than its first occupant. An invalid form creates nothing.
func (r *Room) Create(owner jid.JID, f dataform.Form) (*Result, error) {
	r.res.reset()
	if r.Exists() {
		return &r.res, ErrExists
	}
	r.state.Config.Persistent = true
	c, admins, owners, setAdmins, setOwners, ferr := r.applyForm(f)
	if ferr != nil {
		r.state.Config.Persistent = false
		return &r.res, ferr
	}
	r.create(owner, false)
	r.state.Config = c
	if setOwners {
		r.replaceList(Owner, owners, nil)
	}
	if setAdmins {
		r.replaceList(Admin, admins, nil)
	}
	return &r.res, nil
}
