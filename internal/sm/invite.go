package sm

import (
	"context"
	"fmt"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/dataform"
	"github.com/ambrosia-xmpp/ambrosia/internal/invite"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Befriend makes a and b, two users of this session manager, contacts
// subscribed to each other's presence (subscription "both" on both
// sides), as an invitation promises its invitee and its inviter
// (XEP-0379): no request is asked or answered. Online sessions receive
// roster pushes; presence follows as for any contact once a user sends
// its next presence.
func (m *SM) Befriend(ctx context.Context, a, b jid.JID) error {
	a, b = a.Bare(), b.Bare()
	if a.Domain() != m.cfg.Domain || b.Domain() != m.cfg.Domain || a.Equal(b) {
		return fmt.Errorf("sm: befriend %s and %s: %w: not two users of %s", a, b, storage.ErrInvalid, m.cfg.Domain)
	}
	for _, p := range [][2]jid.JID{{a, b}, {b, a}} {
		if !m.userExists(ctx, p[0]) {
			return fmt.Errorf("sm: befriend %s and %s: %w: no user %s", a, b, storage.ErrNotFound, p[0])
		}
		m.withRoster(ctx, p[0], p[1], func(it *storage.RosterItem, _ *user) bool {
			if it.Subscription == storage.SubscriptionBoth && !it.Ask && !it.PendingIn {
				return false
			}
			it.Subscription = storage.SubscriptionBoth
			it.Ask, it.PendingIn = false, false
			return true
		})
	}
	return nil
}

// Ad-hoc commands (XEP-0050) and the invitation command of XEP-0401.
const (
	nsCommands    = "http://jabber.org/protocol/commands"
	nodeInvite    = "urn:xmpp:invite#invite"
	inviteCmdName = "Invite a new contact"
)

// userInvites reports whether local users may create invitations.
func (m *SM) userInvites() bool { return m.cfg.UserInvites && m.deps.Invites != nil }

// inviteCommand answers what concerns the invitation command of XEP-0401
// in a stanza to the server: the command list (disco#items of the
// commands node), the command's disco#info, and its execution, which
// creates an invitation to register an account on this domain and
// become the sender's contact, and returns its xmpp: URI. It returns nil
// for anything else, and answers only local users.
func (m *SM) inviteCommand(ctx context.Context, s router.Stanza) *xmlstream.Element {
	iq := s.El
	if !m.userInvites() || iq.Local != stanza.IQ || s.From.Domain() != m.cfg.Domain || s.From.Local() == "" {
		return nil
	}
	typ := iq.Attr("type")
	if q := iq.Child(stanza.NSDiscoItems, "query"); q != nil && typ == "get" && q.Attr("node") == nsCommands {
		r := stanza.Result(iq)
		rq := r.AddChild(xmlstream.NewElement(stanza.NSDiscoItems, "query"))
		rq.SetAttr("node", nsCommands)
		it := rq.AddChild(xmlstream.NewElement(stanza.NSDiscoItems, "item"))
		it.SetAttr("jid", m.cfg.Domain)
		it.SetAttr("node", nodeInvite)
		it.SetAttr("name", inviteCmdName)
		return r
	}
	if q := iq.Child(stanza.NSDiscoInfo, "query"); q != nil && typ == "get" && q.Attr("node") == nodeInvite {
		r := stanza.Result(iq)
		rq := r.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "query"))
		rq.SetAttr("node", nodeInvite)
		id := rq.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "identity"))
		id.SetAttr("category", "automation")
		id.SetAttr("type", "command-node")
		id.SetAttr("name", inviteCmdName)
		for _, f := range []string{nsCommands, dataform.NS} {
			rq.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "feature")).SetAttr("var", f)
		}
		return r
	}
	cmd := iq.Child(nsCommands, "command")
	if cmd == nil || typ != "set" || cmd.Attr("node") != nodeInvite {
		return nil
	}
	answer := func(status string) (*xmlstream.Element, *xmlstream.Element) {
		r := stanza.Result(iq)
		c := r.AddChild(xmlstream.NewElement(nsCommands, "command"))
		c.SetAttr("node", nodeInvite)
		sid := cmd.Attr("sessionid")
		if sid == "" {
			sid = stanza.NewID()
		}
		c.SetAttr("sessionid", sid)
		c.SetAttr("status", status)
		return r, c
	}
	switch cmd.Attr("action") {
	case "", "execute", "complete":
	case "cancel":
		r, _ := answer("canceled")
		return r
	default:
		return stanza.ErrorReply(iq, stanza.BadRequest, "")
	}
	inviter := s.From.Bare()
	inv, tok, err := invite.Create(ctx, m.deps.Invites, m.cfg.Domain, inviter.String(), invite.DefaultTTL, time.Now())
	if err != nil {
		m.log.Error("invitation", "user", inviter.String(), "err", err)
		return stanza.ErrorReply(iq, stanza.InternalServerError, "")
	}
	m.log.Info("invitation created", "user", inviter.String(), "expires", inv.Expires)
	r, c := answer("completed")
	form := dataform.Form{Type: dataform.TypeResult}
	form.Add(dataform.Field{Var: "uri", Label: "Invitation URI", Values: []string{invite.URI(inv, tok)}})
	form.Add(dataform.Field{Var: "expire", Label: "Valid until", Values: []string{inv.Expires.Format(time.RFC3339)}})
	c.AddChild(form.Element())
	return r
}
