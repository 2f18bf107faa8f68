package sm

import (
	"slices"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces of Message Carbons (XEP-0280) and forwarding (XEP-0297).
const (
	nsCarbons    = "urn:xmpp:carbons:2"
	nsForward    = "urn:xmpp:forward:0"
	nsMUCUser    = "http://jabber.org/protocol/muc#user"
	nsConference = "jabber:x:conference"
	nsMAM        = "urn:xmpp:mam:2"
)

// carbonEligible applies XEP-0280 §6: chat messages, and normal messages
// with a body, unless marked private or no-copy.
func carbonEligible(el *xmlstream.Element) bool {
	if el.Child(nsCarbons, "private") != nil || el.Child(nsHints, "no-copy") != nil {
		return false
	}
	if el.Attr("type") == "groupchat" {
		// XEP-0280 §6: the room already sends it to every joined client.
		return false
	}
	if el.Child(nsConference, "x") != nil {
		// Direct (XEP-0249) invitations are copied.
		return true
	}
	if x := el.Child(nsMUCUser, "x"); x != nil && x.Child(nsMUCUser, "invite") != nil {
		// So are mediated ones (XEP-0045 §7.8.2).
		return true
	}
	switch el.Attr("type") {
	case "chat":
		return true
	case "", "normal":
		return el.Child(el.Space, "body") != nil
	}
	return false
}

// mucPrivate reports whether el is a private message of a multi-user
// chat room exchanged with the occupant JID peer (XEP-0045 §7.5).
func mucPrivate(el *xmlstream.Element, peer jid.JID) bool {
	x := el.Child(nsMUCUser, "x")
	return x != nil && peer.Resource() != "" && x.Child(nsMUCUser, "invite") == nil
}

// forgedWrapper reports whether a client's message carries what only the
// server may send: a carbon copy or an archive result. A client could
// otherwise make another user's client believe a message came from
// someone else (the CVE-2017-5591 class).
func forgedWrapper(el *xmlstream.Element) bool {
	return el.Child(nsCarbons, "sent") != nil || el.Child(nsCarbons, "received") != nil ||
		el.Child(nsMAM, "result") != nil
}

// carbon wraps a copy of msg for the user's other resources.
func carbon(owner jid.JID, kind string, msg *xmlstream.Element) *xmlstream.Element {
	w := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	w.SetAttr("from", owner.String())
	if t := msg.Attr("type"); t != "" {
		w.SetAttr("type", t)
	}
	w.AddChild(xmlstream.NewElement(nsCarbons, kind)).
		AddChild(xmlstream.NewElement(nsForward, "forwarded")).
		AddChild(msg.ShallowCopy())
	return w
}

// carbonsIQ handles enable and disable; it reports whether el was one.
func (m *SM) carbonsIQ(u *user, sess router.Session, s router.Stanza) bool {
	el := s.El
	on := el.Child(nsCarbons, "enable") != nil
	if !on && el.Child(nsCarbons, "disable") == nil {
		return false
	}
	if el.Attr("type") != "set" {
		replyError(sess, s, stanza.BadRequest, "")
		return true
	}
	u.mu.Lock()
	for _, x := range u.sessions {
		if x.s == sess {
			x.carbons = on
		}
	}
	u.mu.Unlock()
	replyTo(sess, s, stanza.Result(el))
	return true
}

// sentCarbons copies a message a user sent to their other resources that
// enabled carbons.
func (m *SM) sentCarbons(sess router.Session, s router.Stanza) {
	if !carbonEligible(s.El) || s.To.Bare().Equal(s.From.Bare()) {
		return
	}
	u := m.user(s.From.BareString())
	if u == nil {
		return
	}
	// XEP-0280 §6: a private message to a room occupant is copied only to
	// the clients joined to that room (under the same nick).
	room := mucPrivate(s.El, s.To)
	var w *xmlstream.Element
	u.mu.Lock()
	for _, x := range u.sessions {
		if x.carbons && x.s != sess && (!room || slices.ContainsFunc(x.directed, func(j jid.JID) bool { return j.Bare().Equal(s.To.Bare()) })) {
			if w == nil {
				w = carbon(u.bare, "sent", s.El)
			}
			w.SetAttr("to", x.s.JID().String())
			x.s.Deliver(w)
		}
	}
	u.mu.Unlock()
}

// receivedCarbonsLocked copies a message delivered to some of u's
// resources to the others that enabled carbons; got lists the sessions
// that had it. u.mu is held.
func receivedCarbonsLocked(u *user, s router.Stanza, got []*session) {
	if !carbonEligible(s.El) || s.From.Bare().Equal(u.bare) || mucPrivate(s.El, s.From) {
		// XEP-0280 §6: a room sends its private messages to every client
		// joined under the nick itself.
		return
	}
	var w *xmlstream.Element
	for _, x := range u.sessions {
		if !x.carbons || !x.available || contains(got, x) {
			continue
		}
		if w == nil {
			w = carbon(u.bare, "received", s.El)
		}
		w.SetAttr("to", x.s.JID().String())
		x.s.Deliver(w)
	}
}

func contains(ss []*session, x *session) bool {
	for _, s := range ss {
		if s == x {
			return true
		}
	}
	return false
}
