package sm

import (
	"context"
	"errors"
	"sort"
	"strconv"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// loadRosterLocked reads the user's roster into memory once; u.mu is held.
func (m *SM) loadRosterLocked(ctx context.Context, u *user) error {
	if u.rosterLoaded {
		return nil
	}
	items, ver, err := m.deps.Roster.RosterItems(ctx, u.bare.String())
	if err != nil {
		return err
	}
	u.rosterVer = ver
	u.rosterLoaded = true
	if len(items) == 0 {
		// Most sessions of a fresh account: no map until there is an item.
		return nil
	}
	u.roster = make(map[string]*storage.RosterItem, len(items))
	for i := range items {
		u.roster[items[i].Contact] = &items[i]
	}
	return nil
}

// visible reports whether an item belongs in the roster the client sees: an
// item that only records an unanswered incoming request does not (RFC 6121
// §3.1.3: the request is not a roster item until the user acts on it).
func visible(it *storage.RosterItem) bool {
	return !(it.Subscription == "none" && !it.Ask && it.PendingIn && it.Name == "" && len(it.Groups) == 0)
}

func itemElement(it *storage.RosterItem) *xmlstream.Element {
	e := xmlstream.NewElement(stanza.NSRoster, "item")
	e.SetAttr("jid", it.Contact)
	if it.Name != "" {
		e.SetAttr("name", it.Name)
	}
	e.SetAttr("subscription", it.Subscription)
	if it.Ask {
		e.SetAttr("ask", "subscribe")
	}
	for _, g := range it.Groups {
		e.AddChild(xmlstream.NewElement(stanza.NSRoster, "group")).AddText(g)
	}
	return e
}

func (m *SM) rosterIQ(ctx context.Context, sess router.Session, s router.Stanza, q *xmlstream.Element) {
	u := m.user(s.From.BareString())
	if u == nil {
		return
	}
	m.roster(ctx, u, sess, s.El, q, func(r *xmlstream.Element) {
		if r.Attr("type") == "result" && s.El.Attr("type") == "get" {
			r.RemoveAttr("from")
			reply(sess, r)
			return
		}
		replyTo(sess, s, r)
	})
}

// roster serves the roster IQ iq (with its query q) on u's roster, for
// the client of sess or, with sess nil, for a privileged entity acting
// for the user (XEP-0356), which may also set an item's subscription.
// answer is given the result or error built from iq, after every lock is
// released.
func (m *SM) roster(ctx context.Context, u *user, sess router.Session, iq, q *xmlstream.Element, answer func(*xmlstream.Element)) {
	fail := func(cond string) { answer(stanza.ErrorReply(iq, cond, "")) }
	if iq.Attr("type") == "get" {
		u.mu.Lock()
		if err := m.loadRosterLocked(ctx, u); err != nil {
			u.mu.Unlock()
			m.log.Error("roster load", "user", u.bare.String(), "err", err)
			fail(stanza.InternalServerError)
			return
		}
		for _, x := range u.sessions {
			if x.s == sess {
				x.interested = true
			}
		}
		r := stanza.Result(iq)
		cur := strconv.FormatInt(u.rosterVer, 10)
		if q.HasAttr("ver") && q.Attr("ver") == cur {
			// XEP-0237: the client's copy is current; changes come as
			// pushes.
			u.mu.Unlock()
			answer(r)
			return
		}
		rq := r.AddChild(xmlstream.NewElement(stanza.NSRoster, "query"))
		rq.SetAttr("ver", cur)
		keys := make([]string, 0, len(u.roster))
		for k := range u.roster {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if it := u.roster[k]; visible(it) {
				rq.AddChild(itemElement(it))
			}
		}
		u.mu.Unlock()
		answer(r)
		return
	}
	// A roster set carries exactly one item (RFC 6121 §2.3.3).
	var item *xmlstream.Element
	n := 0
	for _, c := range q.Nodes {
		if c.Elem != nil && c.Elem.Local == "item" && c.Elem.Space == stanza.NSRoster {
			item = c.Elem
			n++
		}
	}
	if n != 1 {
		fail(stanza.BadRequest)
		return
	}
	contact, err := jid.Parse(item.Attr("jid"))
	if err != nil {
		fail(stanza.JIDMalformed)
		return
	}
	contact = contact.Bare()
	// A client's subscription attribute is ignored (RFC 6121 §2.1.2.5);
	// a privileged entity sets the state itself, as Prosody's
	// mod_privilege lets it: a gateway knows its contacts' subscriptions.
	sub := item.Attr("subscription")
	switch {
	case sub == "remove":
	case sess != nil || sub == "":
		sub = ""
	case sub != "none" && sub != "to" && sub != "from" && sub != "both":
		fail(stanza.BadRequest)
		return
	}
	var groups []string
	seen := map[string]bool{}
	for _, c := range item.Nodes {
		if c.Elem == nil || c.Elem.Local != "group" {
			continue
		}
		g := c.Elem.Text()
		if g == "" {
			fail(stanza.NotAcceptable)
			return
		}
		if seen[g] {
			fail(stanza.BadRequest)
			return
		}
		seen[g] = true
		groups = append(groups, g)
	}
	sort.Strings(groups)
	u.mu.Lock()
	if err := m.loadRosterLocked(ctx, u); err != nil {
		u.mu.Unlock()
		fail(stanza.InternalServerError)
		return
	}
	var out []*xmlstream.Element
	var pushes []router.Stanza
	if sub == "remove" {
		it, ok := u.roster[contact.String()]
		if !ok {
			u.mu.Unlock()
			fail(stanza.ItemNotFound)
			return
		}
		ver, err := m.deps.Roster.DeleteRosterItem(ctx, u.bare.String(), contact.String())
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			u.mu.Unlock()
			fail(stanza.InternalServerError)
			return
		}
		if err == nil {
			u.rosterVer = ver
		}
		delete(u.roster, contact.String())
		// Removing a contact ends both directions (RFC 6121 §2.5.2).
		if it.Subscription == "to" || it.Subscription == "both" || it.Ask {
			out = append(out, presenceTo(u.bare, contact, "unsubscribe"))
		}
		if it.Subscription == "from" || it.Subscription == "both" || it.PendingIn {
			out = append(out, presenceTo(u.bare, contact, "unsubscribed"))
		}
		pushes = m.pushLocked(u, &storage.RosterItem{Contact: contact.String(), Subscription: "remove"})
	} else {
		it := storage.RosterItem{Contact: contact.String(), Subscription: "none"}
		if old, ok := u.roster[contact.String()]; ok {
			it = *old
		}
		it.Name = item.Attr("name")
		it.Groups = groups
		if sub != "" {
			it.Subscription = sub
			if sub == "to" || sub == "both" {
				it.Ask = false
			}
			if sub == "from" || sub == "both" {
				it.PendingIn = false
			}
		}
		if pushes, err = m.saveLocked(ctx, u, &it); err != nil {
			u.mu.Unlock()
			fail(stanza.InternalServerError)
			return
		}
	}
	u.mu.Unlock()
	answer(stanza.Result(iq))
	for _, p := range out {
		m.route(ctx, p)
	}
	m.routeAll(ctx, pushes)
}

// saveLocked stores an item, updates the cache and pushes the change; it
// returns the pushes for privileged entities, to route once u.mu is
// released.
func (m *SM) saveLocked(ctx context.Context, u *user, it *storage.RosterItem) ([]router.Stanza, error) {
	ver, err := m.deps.Roster.PutRosterItem(ctx, u.bare.String(), *it)
	if err != nil {
		m.log.Error("roster save", "user", u.bare.String(), "err", err)
		return nil, err
	}
	u.rosterVer = ver
	cp := *it
	if u.roster == nil {
		u.roster = make(map[string]*storage.RosterItem)
	}
	u.roster[it.Contact] = &cp
	if visible(&cp) {
		return m.pushLocked(u, &cp), nil
	}
	return nil, nil
}

// pushLocked sends a roster push to every session that asked for the
// roster (RFC 6121 §2.1.6); it returns the pushes for the privileged
// entities that receive them (XEP-0356 §4.4), to route once u.mu is
// released.
func (m *SM) pushLocked(u *user, it *storage.RosterItem) []router.Stanza {
	if o := m.deps.Observer; o != nil {
		o.RosterChanged(u.bare, *it)
	}
	for _, x := range u.sessions {
		if !x.interested {
			continue
		}
		iq := xmlstream.NewElement(xmlstream.NSClient, stanza.IQ)
		iq.SetAttr("type", "set")
		iq.SetAttr("id", "push-"+stanza.NewID())
		iq.SetAttr("to", x.s.JID().String())
		q := iq.AddChild(xmlstream.NewElement(stanza.NSRoster, "query"))
		q.SetAttr("ver", strconv.FormatInt(u.rosterVer, 10))
		q.AddChild(itemElement(it))
		x.s.Deliver(iq)
	}
	return m.entityPushes(u.bare, it, u.rosterVer)
}

// presenceTo builds a presence of type typ from a bare JID to another.
func presenceTo(from, to jid.JID, typ string) *xmlstream.Element {
	p := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
	p.SetAttr("from", from.String())
	p.SetAttr("to", to.String())
	if typ != "" {
		p.SetAttr("type", typ)
	}
	return p
}
