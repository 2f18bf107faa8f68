package bridge

import (
	"context"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// privileges are what the server lets the bridge do for its users (XEP-0356),
// as its advertisement said.
type privileges struct {
	ns      string // the namespace the server spoke
	server  string // the domain that granted them
	roster  bool   // may set users' rosters
	message bool   // may send messages in users' names
}

const nsPrivilege1 = "urn:xmpp:privilege:1"

// notePrivileges reads the server's advertisement of what the bridge may
// do (XEP-0356 §3.2), in the current namespace or the first one, which
// servers such as ejabberd 23.01 still speak.
func (b *Bridge) notePrivileges(from jid.JID, el *xmlstream.Element) bool {
	var p *xmlstream.Element
	for _, ns := range []string{nsPrivilege, nsPrivilege1} {
		if p = el.Child(ns, "privilege"); p != nil {
			break
		}
	}
	if p == nil || from.Local() != "" || from.Resource() != "" {
		return false
	}
	pr := privileges{ns: p.Space, server: from.Domain()}
	for perm := range p.ChildElements {
		if perm.Local != "perm" {
			continue
		}
		switch perm.Attr("access") {
		case "roster":
			pr.roster = perm.Attr("type") == "set" || perm.Attr("type") == "both"
		case "message":
			pr.message = perm.Attr("type") == "outgoing"
		}
	}
	b.mu.Lock()
	b.privileged = pr
	b.mu.Unlock()
	b.log.Info("server privileges", "server", pr.server, "roster", pr.roster, "message", pr.message, "namespace", pr.ns)
	return true
}

func (b *Bridge) privilegesFor(user jid.JID) privileges {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.privileged.server != user.Domain() {
		return privileges{}
	}
	return b.privileged
}

// addToRoster puts a contact in the user's roster: directly where the
// server grants the roster privilege (XEP-0356), otherwise by suggesting
// it (XEP-0144 roster item exchange) and asking for the subscription the
// way a transport does (XEP-0100 §4.1.3).
func (b *Bridge) addToRoster(ctx context.Context, u *user, contact jid.JID, c Contact) {
	if b.privilegesFor(u.jid).roster {
		iq := xmlstream.NewElement(xmlstream.NSClient, stanza.IQ)
		iq.SetAttr("type", "set")
		iq.SetAttr("id", stanza.NewID())
		iq.SetAttr("from", b.cfg.Domain)
		iq.SetAttr("to", u.jid.String())
		item := iq.AddChild(xmlstream.NewElement(stanza.NSRoster, "query")).AddChild(xmlstream.NewElement(stanza.NSRoster, "item"))
		item.SetAttr("jid", contact.String())
		item.SetAttr("subscription", "both")
		if c.Name != "" {
			item.SetAttr("name", c.Name)
		}
		for _, g := range groupsOf(b, c) {
			item.AddChild(xmlstream.NewElement(stanza.NSRoster, "group")).AddText(g)
		}
		b.route(ctx, iq)
		return
	}
	x := xmlstream.NewElement(nsRosterX, "x")
	item := x.AddChild(xmlstream.NewElement(nsRosterX, "item"))
	item.SetAttr("action", "add")
	item.SetAttr("jid", contact.String())
	if c.Name != "" {
		item.SetAttr("name", c.Name)
	}
	for _, g := range groupsOf(b, c) {
		item.AddChild(xmlstream.NewElement(nsRosterX, "group")).AddText(g)
	}
	m := bare("", x)
	m.SetAttr("from", b.cfg.Domain)
	m.SetAttr("to", u.jid.String())
	b.route(ctx, m)
	sub := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
	sub.SetAttr("type", "subscribe")
	sub.SetAttr("from", contact.String())
	sub.SetAttr("to", u.jid.String())
	if c.Name != "" {
		sub.AddChild(xmlstream.NewElement(nsNick, "nick")).AddText(c.Name)
	}
	b.route(ctx, sub)
}

// groupsOf is the roster groups of a contact: the network's name when the
// network gives none.
func groupsOf(b *Bridge, c Contact) []string {
	if len(c.Groups) > 0 {
		return c.Groups
	}
	return []string{b.desc.Name}
}

// removeFromRoster takes a contact out of the user's roster.
func (b *Bridge) removeFromRoster(ctx context.Context, u *user, contact jid.JID) {
	if b.privilegesFor(u.jid).roster {
		iq := xmlstream.NewElement(xmlstream.NSClient, stanza.IQ)
		iq.SetAttr("type", "set")
		iq.SetAttr("id", stanza.NewID())
		iq.SetAttr("from", b.cfg.Domain)
		iq.SetAttr("to", u.jid.String())
		item := iq.AddChild(xmlstream.NewElement(stanza.NSRoster, "query")).AddChild(xmlstream.NewElement(stanza.NSRoster, "item"))
		item.SetAttr("jid", contact.String())
		item.SetAttr("subscription", "remove")
		b.route(ctx, iq)
		return
	}
	for _, typ := range []string{"unsubscribe", "unsubscribed"} {
		p := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
		p.SetAttr("type", typ)
		p.SetAttr("from", contact.String())
		p.SetAttr("to", u.jid.String())
		b.route(ctx, p)
	}
}

// sendPrivileged has the server send a message in the user's name
// (XEP-0356 §4).
func (b *Bridge) sendPrivileged(ctx context.Context, user jid.JID, inner *xmlstream.Element) {
	pr := b.privilegesFor(user)
	if !pr.message {
		return
	}
	m := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	m.SetAttr("id", stanza.NewID())
	m.SetAttr("from", b.cfg.Domain)
	m.SetAttr("to", pr.server)
	m.AddChild(xmlstream.NewElement(pr.ns, "privilege")).AddChild(xmlstream.NewElement(nsForward, "forwarded")).AddChild(inner)
	b.route(ctx, m)
}
