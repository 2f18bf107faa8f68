package bridge

import (
	"context"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
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
// server grants the roster privilege (XEP-0356), otherwise (or when the
// server refuses the roster set, see rosterAnswer) by suggesting it
// (XEP-0144 roster item exchange) and asking for the subscription the
// way a transport does (XEP-0100 §4.1.3).
func (b *Bridge) addToRoster(ctx context.Context, u *user, contact jid.JID, c Contact) {
	if b.privilegesFor(u.jid).roster {
		id := stanza.NewID()
		b.noteRosterSet(id, rosterSet{user: u.jid, contact: contact, c: c})
		iq := xmlstream.NewElement(xmlstream.NSClient, stanza.IQ)
		iq.SetAttr("type", "set")
		iq.SetAttr("id", id)
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
	b.suggestContact(ctx, u.jid, contact, c)
}

// suggestContact suggests a contact to the user (XEP-0144) and asks for
// the subscription in its name.
func (b *Bridge) suggestContact(ctx context.Context, user, contact jid.JID, c Contact) {
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
	m.SetAttr("to", user.String())
	b.route(ctx, m)
	sub := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
	sub.SetAttr("type", "subscribe")
	sub.SetAttr("from", contact.String())
	sub.SetAttr("to", user.String())
	if c.Name != "" {
		sub.AddChild(xmlstream.NewElement(nsNick, "nick")).AddText(c.Name)
	}
	b.route(ctx, sub)
}

// rosterSet is a roster set the bridge sent on a user's behalf, waiting
// for the server's answer.
type rosterSet struct {
	user    jid.JID
	contact jid.JID
	c       Contact
	sent    time.Time
}

// rosterSetWait is how long the bridge waits for the answer to a roster
// set; one that does not come is forgotten.
const rosterSetWait = 5 * time.Minute

// noteRosterSet records a roster set sent with id.
func (b *Bridge) noteRosterSet(id string, r rosterSet) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rosterSets == nil {
		b.rosterSets = map[string]rosterSet{}
	}
	for k, r := range b.rosterSets {
		if now.Sub(r.sent) > rosterSetWait {
			delete(b.rosterSets, k)
		}
	}
	r.sent = now
	b.rosterSets[id] = r
}

// rosterAnswer handles an answer to a roster set the bridge sent, from
// the user's address or the user's server, and reports whether st was
// one. On a refusal, logged, the bridge suggests the contact instead, as
// without the privilege: ejabberd 23.01, for one, grants the privilege
// and fails every roster set of a component with internal-server-error
// (its mod_roster looks up its options for the component's domain).
func (b *Bridge) rosterAnswer(ctx context.Context, st router.Stanza) bool {
	id := st.El.Attr("id")
	b.mu.Lock()
	r, ok := b.rosterSets[id]
	ok = ok && (st.From.Equal(r.user) || st.From.Local() == "" && st.From.Resource() == "" && st.From.Domain() == r.user.Domain())
	if ok {
		delete(b.rosterSets, id)
	}
	b.mu.Unlock()
	if !ok {
		return false
	}
	if st.El.Attr("type") == "error" {
		b.log.Warn("the server refused to put a contact in a user's roster; suggesting it instead", "user", r.user.String(),
			"contact", r.contact.String(), "error", stanza.ErrorCondition(st.El))
		b.suggestContact(ctx, r.user, r.contact, r.c)
	}
	return true
}

// rosterPush handles a roster push the server sends the bridge for a
// user, as XEP-0356 §4.4 lets a server do for an entity with the roster
// privilege: a contact of the bridge's domain the user removed from their
// roster is forgotten, so that it is put back when the network reports it
// again. It reports whether st was one (answered then).
func (b *Bridge) rosterPush(ctx context.Context, st router.Stanza) bool {
	q := st.El.Child(stanza.NSRoster, "query")
	if q == nil || st.El.Attr("type") != "set" || st.From.Local() == "" || st.From.Resource() != "" || !b.privilegesFor(st.From).roster {
		return false
	}
	for item := range q.ChildElements {
		if item.Local != "item" || item.Attr("subscription") != "remove" {
			continue
		}
		c, err := jid.Parse(item.Attr("jid"))
		if err != nil || c.Domain() != b.cfg.Domain || c.Local() == "" {
			continue
		}
		id := jid.UnescapeLocal(c.Local())
		if err := b.st.RemoveContact(ctx, st.From.String(), id); err != nil {
			b.log.Error("contact removal", "err", err)
		}
	}
	b.reply(ctx, st, stanza.Result(st.El))
	return true
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
