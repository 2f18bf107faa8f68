package sm

import (
	"context"
	"slices"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// outboundPresence handles a presence a user sent.
func (m *SM) outboundPresence(ctx context.Context, sess router.Session, s router.Stanza) {
	typ := s.El.Attr("type")
	switch typ {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		if s.To.IsZero() {
			return
		}
		if typ == "subscribe" {
			var ok bool
			if ctx, s, ok = m.decide(ctx, "subscription", s); !ok {
				return
			}
		}
		m.outboundSubscription(ctx, s.From.Bare(), s.To.Bare(), typ, s.El)
		return
	case "probe", "error":
		return
	}
	if !s.To.IsZero() {
		// Directed presence goes where it is sent.
		m.noteDirected(sess, s.From, s.To, typ == "")
		m.deps.Router.Route(ctx, s)
		return
	}
	if typ != "" && typ != "unavailable" {
		return
	}
	u := m.user(s.From.BareString())
	if u == nil {
		return
	}
	u.mu.Lock()
	var me *session
	for _, x := range u.sessions {
		if x.s == sess {
			me = x
		}
	}
	if me == nil {
		u.mu.Unlock()
		return
	}
	if typ == "unavailable" {
		if st := s.El.Child(s.El.Space, "status"); st != nil {
			u.lastStatus = st.Text()
		}
		wasAvailable := me.available
		me.available, me.presence = false, nil
		directed := me.directed
		me.directed = nil
		u.mu.Unlock()
		m.directedUnavailable(ctx, s.From, directed, s.El)
		m.capsPresence(ctx, u.bare, s.From, s.El)
		if wasAvailable {
			m.broadcast(ctx, u, s.El, false)
		}
		return
	}
	initial := !me.available
	me.available = true
	u.wasOnline = true
	me.priority = parsePriority(s.El)
	me.presence = s.El
	prio := me.priority
	u.mu.Unlock()
	m.broadcast(ctx, u, s.El, initial)
	if initial && m.cfg.LoadOnLogin {
		u.mu.Lock()
		m.blocklistLocked(ctx, u)
		u.mu.Unlock()
		if m.deps.Archive != nil {
			m.archivePrefs(ctx, u.bare)
		}
	}
	if initial && prio >= 0 {
		m.deliverOffline(ctx, u, sess)
	}
	// The user's own session gets the last items it wants (XEP-0163 §4.3).
	m.capsPresence(ctx, u.bare, s.From, s.El)
}

// broadcast sends a user's presence to their own available resources and to
// contacts subscribed to it; on initial presence it also probes the
// contacts the user is subscribed to and replays pending requests.
func (m *SM) broadcast(ctx context.Context, u *user, p *xmlstream.Element, initial bool) {
	from, _ := jid.Parse(p.Attr("from"))
	var out []router.Stanza
	u.mu.Lock()
	if err := m.loadRosterLocked(ctx, u); err != nil {
		m.log.Error("roster load", "user", u.bare.String(), "err", err)
	}
	for _, x := range u.sessions {
		if x.available || x.s.JID().Equal(from) {
			c := p.ShallowCopy()
			c.SetAttr("to", x.s.JID().String())
			x.s.Deliver(c)
		}
	}
	for _, it := range u.roster {
		contact, err := jid.Parse(it.Contact)
		if err != nil {
			continue
		}
		if it.Subscription == "from" || it.Subscription == "both" {
			c := p.ShallowCopy()
			c.SetAttr("to", contact.String())
			out = append(out, router.Stanza{El: c, From: from, To: contact})
		}
		if initial && (it.Subscription == "to" || it.Subscription == "both") {
			out = append(out, router.Stanza{El: presenceTo(u.bare, contact, "probe"), From: u.bare, To: contact})
		}
		if initial && it.PendingIn {
			// Requests that arrived while the user was away (RFC 6121 §3.1.3).
			req := presenceTo(contact, u.bare, "subscribe")
			for _, x := range u.sessions {
				if x.s.JID().Equal(from) {
					x.s.Deliver(req)
				}
			}
		}
	}
	u.mu.Unlock()
	out = append(out, m.entityPresences(p, from)...)
	for _, s := range out {
		m.deps.Router.Route(ctx, s)
	}
}

// noteDirected records directed presence a session sent (RFC 6121
// §4.6.2): available adds the addressee to those told when the session
// goes away, unavailable removes it.
func (m *SM) noteDirected(sess router.Session, from, to jid.JID, available bool) {
	u := m.user(from.BareString())
	if u == nil || to.Bare().Equal(from.Bare()) {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, x := range u.sessions {
		if x.s != sess {
			continue
		}
		i := slices.IndexFunc(x.directed, to.Equal)
		switch {
		case available && i < 0 && len(x.directed) < maxDirected:
			x.directed = append(x.directed, to)
		case !available && i >= 0:
			x.directed = slices.Delete(x.directed, i, i+1)
		}
		return
	}
}

// maxDirected bounds the directed presences a session's unavailable
// presence goes to: a client that joins more rooms than that leaves the
// rest to time out (XEP-0410).
const maxDirected = 1000

// directedUnavailable sends a session's unavailable presence, or a bare
// one when p is nil, to the entities it sent directed presence to.
func (m *SM) directedUnavailable(ctx context.Context, from jid.JID, to []jid.JID, p *xmlstream.Element) {
	for _, t := range to {
		var el *xmlstream.Element
		if p != nil {
			el = p.ShallowCopy()
		} else {
			el = xmlstream.NewElement(xmlstream.NSClient, "presence")
			el.SetAttr("type", "unavailable")
		}
		el.SetAttr("from", from.String())
		el.SetAttr("to", t.String())
		m.deps.Router.Route(ctx, router.Stanza{El: el, From: from, To: t})
	}
}

// sessionGone tells everyone who saw a session that ended that it is
// gone: its contacts if it was available, and the entities it sent
// directed presence to.
func (m *SM) sessionGone(ctx context.Context, u *user, x *session) {
	u.mu.Lock()
	directed := x.directed
	x.directed = nil
	available := x.available
	u.mu.Unlock()
	if available {
		m.broadcastUnavailable(ctx, u, x)
	}
	m.directedUnavailable(ctx, x.s.JID(), directed, nil)
}

// broadcastUnavailable tells everyone who saw session x available that it
// is gone.
func (m *SM) broadcastUnavailable(ctx context.Context, u *user, x *session) {
	p := xmlstream.NewElement(xmlstream.NSClient, "presence")
	p.SetAttr("from", x.s.JID().String())
	p.SetAttr("type", "unavailable")
	m.broadcast(ctx, u, p, false)
}

// inboundPresence handles a presence addressed to a user.
func (m *SM) inboundPresence(ctx context.Context, s router.Stanza) {
	typ := s.El.Attr("type")
	switch typ {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		m.inboundSubscription(ctx, s.From.Bare(), s.To.Bare(), typ)
		return
	case "probe":
		m.probe(ctx, s)
		return
	}
	if s.To.Resource() == "" && !s.From.Bare().Equal(s.To.Bare()) {
		// A contact's session: a candidate for the user's PEP
		// notifications, served even while the user is offline.
		m.capsPresence(ctx, s.To.Bare(), s.From, s.El)
	}
	if (typ == "" || typ == "unavailable") && s.To.Resource() == "" && !s.From.Bare().Equal(s.To.Bare()) {
		// A contact's broadcast (directed presence, as from rooms, goes
		// to full JIDs): privileged entities with roster presence see it,
		// user online or not (XEP-0356 §7.2).
		m.contactPresence(ctx, s)
	}
	u := m.user(s.To.BareString())
	if u == nil {
		return
	}
	if s.To.Resource() != "" {
		u.deliverTo(ctx, s.To.Resource(), s.El)
		return
	}
	u.mu.Lock()
	for _, x := range u.sessions {
		if x.available {
			router.Deliver(ctx, x.s, s.El)
		}
	}
	u.mu.Unlock()
}

// probe answers a presence probe with the current presence of every
// available resource, if the prober is subscribed (RFC 6121 §4.3.2).
func (m *SM) probe(ctx context.Context, s router.Stanza) {
	u := m.user(s.To.BareString())
	if u == nil {
		return
	}
	var out []router.Stanza
	u.mu.Lock()
	if err := m.loadRosterLocked(ctx, u); err == nil {
		if it := u.roster[s.From.BareString()]; it != nil && (it.Subscription == "from" || it.Subscription == "both") {
			for _, x := range u.sessions {
				if x.available && x.presence != nil {
					c := x.presence.ShallowCopy()
					c.SetAttr("to", s.From.String())
					out = append(out, router.Stanza{El: c, From: x.s.JID(), To: s.From})
				}
			}
		}
	}
	u.mu.Unlock()
	for _, o := range out {
		m.deps.Router.Route(ctx, o)
	}
}

// withRoster runs f on the user's roster item for contact (a fresh "none"
// item if absent) under the user's lock and stores the result if f reports
// a change. The user need not be online.
func (m *SM) withRoster(ctx context.Context, bare, contact jid.JID, f func(it *storage.RosterItem, online *user) bool) {
	u := m.user(bare.String())
	if u != nil {
		u.mu.Lock()
		if err := m.loadRosterLocked(ctx, u); err != nil {
			u.mu.Unlock()
			return
		}
		it := storage.RosterItem{Contact: contact.String(), Subscription: "none"}
		if old := u.roster[contact.String()]; old != nil {
			it = *old
		}
		var pushes []router.Stanza
		if f(&it, u) {
			pushes, _ = m.saveLocked(ctx, u, &it)
		}
		u.mu.Unlock()
		m.routeAll(ctx, pushes)
		return
	}
	if !m.userExists(ctx, bare) {
		return
	}
	it, err := m.deps.Roster.RosterItem(ctx, bare.String(), contact.String())
	if err != nil {
		it = storage.RosterItem{Contact: contact.String(), Subscription: "none"}
	}
	if f(&it, nil) {
		ver, err := m.deps.Roster.PutRosterItem(ctx, bare.String(), it)
		if err != nil {
			m.log.Error("roster save", "user", bare.String(), "err", err)
			return
		}
		if visible(&it) {
			// Privileged entities follow the rosters of users offline too.
			m.routeAll(ctx, m.entityPushes(bare, &it, ver))
		}
	}
}

// outboundSubscription applies RFC 6121 §3 for a subscription stanza the
// user sends, then routes it stamped with the user's bare JID.
func (m *SM) outboundSubscription(ctx context.Context, owner, contact jid.JID, typ string, orig *xmlstream.Element) {
	forward := true
	var sendPresence, sendUnavailable []*xmlstream.Element
	m.withRoster(ctx, owner, contact, func(it *storage.RosterItem, u *user) bool {
		switch typ {
		case "subscribe":
			if it.Subscription == "to" || it.Subscription == "both" || it.Ask {
				return false
			}
			it.Ask = true
			return true
		case "subscribed":
			if !it.PendingIn {
				// Nothing to approve (pre-approval is not offered).
				forward = false
				return false
			}
			it.PendingIn = false
			it.Subscription = map[string]string{"none": "from", "to": "both"}[it.Subscription]
			if u != nil {
				for _, x := range u.sessions {
					if x.available && x.presence != nil {
						c := x.presence.ShallowCopy()
						c.SetAttr("to", contact.String())
						sendPresence = append(sendPresence, c)
					}
				}
			}
			return true
		case "unsubscribe":
			changed := it.Ask || it.Subscription == "to" || it.Subscription == "both"
			it.Ask = false
			it.Subscription = map[string]string{"none": "none", "to": "none", "from": "from", "both": "from"}[it.Subscription]
			return changed
		case "unsubscribed":
			changed := it.PendingIn || it.Subscription == "from" || it.Subscription == "both"
			if it.Subscription == "from" || it.Subscription == "both" {
				if u != nil {
					for _, x := range u.sessions {
						if x.available {
							p := presenceTo(x.s.JID(), contact, "unavailable")
							sendUnavailable = append(sendUnavailable, p)
						}
					}
				}
			}
			it.PendingIn = false
			it.Subscription = map[string]string{"none": "none", "to": "to", "from": "none", "both": "to"}[it.Subscription]
			return changed
		}
		return false
	})
	if !forward {
		return
	}
	p := orig.ShallowCopy()
	p.SetAttr("from", owner.String())
	p.SetAttr("to", contact.String())
	m.deps.Router.Route(ctx, router.Stanza{El: p, From: owner, To: contact})
	for _, x := range append(sendPresence, sendUnavailable...) {
		m.route(ctx, x)
	}
}

// inboundSubscription applies RFC 6121 §3 for a subscription stanza that a
// contact sent to a user, delivering it to the user when it changes
// something.
func (m *SM) inboundSubscription(ctx context.Context, contact, userJID jid.JID, typ string) {
	deliver := false
	autoReply := ""
	m.withRoster(ctx, userJID, contact, func(it *storage.RosterItem, u *user) bool {
		switch typ {
		case "subscribe":
			if it.Subscription == "from" || it.Subscription == "both" {
				autoReply = "subscribed"
				return false
			}
			deliver = true
			if it.PendingIn {
				return false
			}
			it.PendingIn = true
			return true
		case "subscribed":
			if !it.Ask {
				return false
			}
			deliver = true
			it.Ask = false
			it.Subscription = map[string]string{"none": "to", "from": "both", "to": "to", "both": "both"}[it.Subscription]
			return true
		case "unsubscribe":
			if it.PendingIn && it.Subscription != "from" && it.Subscription != "both" {
				it.PendingIn = false
				return true
			}
			if it.Subscription != "from" && it.Subscription != "both" {
				return false
			}
			deliver = true
			it.PendingIn = false
			it.Subscription = map[string]string{"from": "none", "both": "to"}[it.Subscription]
			return true
		case "unsubscribed":
			if it.Subscription != "to" && it.Subscription != "both" && !it.Ask {
				return false
			}
			deliver = true
			it.Ask = false
			it.Subscription = map[string]string{"none": "none", "from": "from", "to": "none", "both": "from"}[it.Subscription]
			return true
		}
		return false
	})
	if autoReply != "" {
		m.route(ctx, presenceTo(userJID, contact, autoReply))
		return
	}
	if !deliver {
		return
	}
	u := m.user(userJID.String())
	if u == nil {
		return
	}
	p := presenceTo(contact, userJID, typ)
	u.mu.Lock()
	for _, x := range u.sessions {
		if x.available {
			x.s.Deliver(p)
		}
	}
	u.mu.Unlock()
	if typ == "unsubscribe" {
		// The contact no longer receives our presence: say we are gone.
		m.route(ctx, presenceTo(userJID, contact, "unavailable"))
	}
}
