package sm

import (
	"context"
	"hash/fnv"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/privilege"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Privileged entities (XEP-0356). What an entity may do comes only from
// the grant its edge vouches for on each stanza (router.Stanza.Grant),
// never from its address. The session manager also keeps the entities
// that announced themselves with an available presence to the domain, to
// send them what their grant lets them see: the users' presence and
// roster pushes.

// Limits of the state kept for privileged entities.
const (
	// privIQTimeout is how long an IQ sent on a user's behalf waits for
	// its answer; the entity then gets remote-server-timeout.
	privIQTimeout = 2 * time.Minute
	// maxPrivIQs bounds the IQs waiting for an answer.
	maxPrivIQs = 10000
	// maxSeenPresence bounds the contacts' presences remembered to send
	// each only once (XEP-0356 §7, rule 2).
	maxSeenPresence = 100000
)

// entities is the state of the privileged entities of a domain. mu is
// taken after user.mu and nothing is routed while it is held.
type entities struct {
	mu     sync.Mutex
	grants map[string]*privilege.Grant // entity (a domain JID) -> grant
	seen   map[string]uint64           // contact's full JID -> digest of the presence last sent
	iqs    map[string]*privIQ          // id given to an IQ sent on a user's behalf
	swept  time.Time
}

// privIQ is an IQ sent on a user's behalf, waiting for its answer.
type privIQ struct {
	entity  jid.JID // who asked, the answer's addressee
	outerID string  // the id of the entity's request
	innerID string  // the id the entity gave the encapsulated IQ
	owner   jid.JID // the user
	peer    jid.JID // the encapsulated IQ's addressee, who answers
	sent    time.Time
}

// privilegeChild returns el's child local in either namespace of
// XEP-0356, nil if there is none.
func privilegeChild(el *xmlstream.Element, local string) *xmlstream.Element {
	if c := el.Child(privilege.NS2, local); c != nil {
		return c
	}
	return el.Child(privilege.NS1, local)
}

// onlyChild returns el's only child element, nil if it has none or more.
func onlyChild(el *xmlstream.Element) *xmlstream.Element {
	var only *xmlstream.Element
	for c := range el.ChildElements {
		if only != nil {
			return nil
		}
		only = c
	}
	return only
}

// routeAll routes stanzas the session manager made.
func (m *SM) routeAll(ctx context.Context, out []router.Stanza) {
	for _, s := range out {
		m.deps.Router.Route(ctx, s)
	}
}

// entityPresence handles a presence a privileged entity sent the domain:
// available makes the domain send it what its grant lets it see, starting
// with the presence there is now (XEP-0356 §7, rule 1); unavailable stops
// that. The component listener sends both for the component.
func (m *SM) entityPresence(ctx context.Context, s router.Stanza) {
	e := s.From.DomainJID()
	switch s.El.Attr("type") {
	case "":
		m.ents.mu.Lock()
		if m.ents.grants == nil {
			m.ents.grants = map[string]*privilege.Grant{}
		}
		m.ents.grants[e.String()] = s.Grant
		if s.Grant.Presence == privilege.PresenceRoster {
			// Contacts are probed for it below: what others saw before is
			// new to it.
			m.ents.seen = nil
		}
		m.ents.mu.Unlock()
		m.log.Info("privileged entity available", "entity", e.String())
		m.routeAll(ctx, m.currentPresence(ctx, e, s.Grant))
	case "unavailable":
		m.ents.mu.Lock()
		_, ok := m.ents.grants[e.String()]
		delete(m.ents.grants, e.String())
		m.ents.mu.Unlock()
		if ok {
			m.log.Info("privileged entity gone", "entity", e.String())
		}
	}
}

// entitiesWhere lists the entities whose grant satisfies f, sorted.
func (m *SM) entitiesWhere(f func(*privilege.Grant) bool) []jid.JID {
	m.ents.mu.Lock()
	defer m.ents.mu.Unlock()
	if len(m.ents.grants) == 0 {
		return nil
	}
	var out []jid.JID
	for e, g := range m.ents.grants {
		if f(g) {
			if j, err := jid.Parse(e); err == nil {
				out = append(out, j)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func seesUsers(g *privilege.Grant) bool    { return g.Presence >= privilege.PresenceManaged }
func seesContacts(g *privilege.Grant) bool { return g.Presence == privilege.PresenceRoster }

// currentPresence is what an entity that just became available is owed:
// the presence of every available session of the domain, and, for roster
// presence, probes of the users' contacts on their behalf, whose answers
// reach it through inboundPresence.
func (m *SM) currentPresence(ctx context.Context, e jid.JID, g *privilege.Grant) []router.Stanza {
	if !seesUsers(g) {
		return nil
	}
	m.mu.RLock()
	users := make([]*user, 0, len(m.users))
	for _, u := range m.users {
		users = append(users, u)
	}
	m.mu.RUnlock()
	var out []router.Stanza
	probed := map[string]bool{}
	for _, u := range users {
		u.mu.Lock()
		online := false
		for _, x := range u.sessions {
			if x.available && x.presence != nil {
				online = true
				c := x.presence.ShallowCopy()
				c.SetAttr("to", e.String())
				out = append(out, router.Stanza{El: c, From: x.s.JID(), To: e})
			}
		}
		if online && seesContacts(g) && m.loadRosterLocked(ctx, u) == nil {
			for _, it := range u.roster {
				c, err := jid.Parse(it.Contact)
				if err != nil || probed[it.Contact] || c.Domain() == m.domain.Domain() || c.Domain() == e.Domain() {
					continue
				}
				if it.Subscription == "to" || it.Subscription == "both" {
					probed[it.Contact] = true
					out = append(out, router.Stanza{El: presenceTo(u.bare, c, "probe"), From: u.bare, To: c})
				}
			}
		}
		u.mu.Unlock()
	}
	return out
}

// entityPresences copies a user's broadcast presence p, from the session
// from, to the entities that see the users' presence (XEP-0356 §7.1).
func (m *SM) entityPresences(p *xmlstream.Element, from jid.JID) []router.Stanza {
	var out []router.Stanza
	for _, e := range m.entitiesWhere(seesUsers) {
		c := p.ShallowCopy()
		c.SetAttr("to", e.String())
		out = append(out, router.Stanza{El: c, From: from, To: e})
	}
	return out
}

// contactPresence copies the presence of a user's contact, arriving for
// the user, to the entities that see the users' contacts (XEP-0356 §7.2),
// once for each change however many users have the contact.
func (m *SM) contactPresence(ctx context.Context, s router.Stanza) {
	if s.From.Domain() == m.domain.Domain() {
		// The domain's own users: sent as the users' presence already.
		return
	}
	es := m.entitiesWhere(seesContacts)
	if len(es) == 0 {
		return
	}
	c := s.El.ShallowCopy()
	c.RemoveAttr("to")
	h := fnv.New64a()
	h.Write(c.AppendXML(nil, xmlstream.NSClient))
	sum := h.Sum64()
	key := s.From.String()
	m.ents.mu.Lock()
	dup := m.ents.seen[key] == sum
	if !dup {
		if m.ents.seen == nil || len(m.ents.seen) >= maxSeenPresence {
			m.ents.seen = map[string]uint64{}
		}
		m.ents.seen[key] = sum
	}
	m.ents.mu.Unlock()
	if dup {
		return
	}
	for _, e := range es {
		if e.Domain() == s.From.Domain() {
			// The entity's own contacts: it knows their presence.
			continue
		}
		p := s.El.ShallowCopy()
		p.SetAttr("to", e.String())
		m.deps.Router.Route(ctx, router.Stanza{El: p, From: s.From, To: e})
	}
}

// entityPushes builds the roster push of it, the user owner's item at
// roster version ver, for the entities that receive roster pushes
// (XEP-0356 §4.4): from the user's bare JID.
func (m *SM) entityPushes(owner jid.JID, it *storage.RosterItem, ver int64) []router.Stanza {
	var out []router.Stanza
	for _, e := range m.entitiesWhere((*privilege.Grant).Pushes) {
		iq := xmlstream.NewElement(xmlstream.NSClient, stanza.IQ)
		iq.SetAttr("type", "set")
		iq.SetAttr("id", "push-"+stanza.NewID())
		iq.SetAttr("from", owner.String())
		iq.SetAttr("to", e.String())
		q := iq.AddChild(xmlstream.NewElement(stanza.NSRoster, "query"))
		q.SetAttr("ver", strconv.FormatInt(ver, 10))
		q.AddChild(itemElement(it))
		out = append(out, router.Stanza{El: iq, From: owner, To: e})
	}
	return out
}

// pin returns the live state of the user bare, creating it for a user
// without sessions, and keeps it in the table until unpin: requests made
// on a user's behalf then share the cache and the lock of the user's
// sessions, whether the user is online or not.
func (m *SM) pin(bare jid.JID) *user {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[bare.String()]
	if u == nil {
		u = &user{bare: bare}
		m.users[bare.String()] = u
	}
	u.mu.Lock()
	u.pins++
	u.mu.Unlock()
	return u
}

// unpin ends what pin started, dropping a user that has no sessions.
func (m *SM) unpin(u *user) {
	m.mu.Lock()
	u.mu.Lock()
	u.pins--
	if u.pins == 0 && len(u.sessions) == 0 && m.users[u.bare.String()] == u {
		delete(m.users, u.bare.String())
	}
	u.mu.Unlock()
	m.mu.Unlock()
}

// privilegedRoster serves a roster IQ to a user's bare JID from anyone
// but the user: a privileged entity with the roster permission for the
// IQ's type, as the user would be served (XEP-0356 §4.3), or no one.
func (m *SM) privilegedRoster(ctx context.Context, s router.Stanza, q *xmlstream.Element) {
	if s.Grant == nil || !s.Grant.Roster.Allows(s.El.Attr("type")) {
		m.deps.Router.Bounce(ctx, s, stanza.Forbidden, "")
		return
	}
	owner := s.To.Bare()
	if !m.userExists(ctx, owner) {
		// RFC 6121 §8.5.1: no such user.
		m.deps.Router.Bounce(ctx, s, stanza.ServiceUnavailable, "")
		return
	}
	u := m.pin(owner)
	defer m.unpin(u)
	m.roster(ctx, u, nil, s.El, q, func(r *xmlstream.Element) {
		// From the user's bare JID, the address asked.
		m.deps.Router.Route(ctx, router.Stanza{El: r, From: owner, To: s.From})
	})
}

// privilegedMessage handles a message a privileged entity sends to the
// domain to have it sent on behalf of a user, or of the server itself
// (XEP-0356 §5): the forwarded message leaves as if the user had sent it,
// carbon-copied to the user's clients and archived.
func (m *SM) privilegedMessage(ctx context.Context, s router.Stanza, p *xmlstream.Element) {
	if s.El.Attr("type") == "error" {
		return
	}
	if s.Grant == nil || !s.Grant.Message {
		m.deps.Router.Bounce(ctx, s, stanza.Forbidden, "No permission to send messages on behalf of users.")
		return
	}
	var msg *xmlstream.Element
	if fwd := onlyChild(p); fwd != nil && fwd.Space == privilege.NSForward && fwd.Local == "forwarded" {
		for c := range fwd.ChildElements {
			if c.Local == stanza.Message && (c.Space == xmlstream.NSClient || c.Space == xmlstream.NSServer || c.Space == xmlstream.NSComponent) {
				if msg != nil {
					msg = nil
					break
				}
				msg = c
			}
		}
	}
	if msg == nil {
		m.deps.Router.Bounce(ctx, s, stanza.BadRequest, "Expected one <forwarded/> with one <message/>.")
		return
	}
	// XEP-0356 §5.2: from a bare JID of the server, no resource; of this
	// domain, the one the entity addressed.
	from, err := jid.Parse(msg.Attr("from"))
	if err != nil || from.Resource() != "" || from.Domain() != m.domain.Domain() || (from.Local() != "" && !m.userExists(ctx, from)) {
		m.log.Warn("privileged message from a forbidden address", "entity", s.From.String(), "from", msg.Attr("from"))
		m.deps.Router.Bounce(ctx, s, stanza.Forbidden, "The forwarded message must be from the bare JID of a user of "+m.domain.Domain()+".")
		return
	}
	to, err := jid.Parse(msg.Attr("to"))
	if err != nil {
		m.deps.Router.Bounce(ctx, s, stanza.JIDMalformed, "The forwarded message needs a valid 'to'.")
		return
	}
	out := msg.ShallowCopy()
	out.SetAttr("from", from.String())
	st := router.Stanza{El: out, From: from, To: to}
	if from.Local() != "" {
		if forgedWrapper(out) {
			m.deps.Router.Bounce(ctx, s, stanza.BadRequest, "Only the server sends carbon copies and archive results.")
			return
		}
		if !to.Bare().Equal(from) && m.isBlocked(ctx, from, to) {
			m.deps.Router.Bounce(ctx, s, stanza.NotAcceptable, "The user blocks the recipient.")
			return
		}
		m.deps.Metrics.StanzaOut(stanza.Message)
		m.sentCarbons(nil, st)
		m.archiveOutgoing(ctx, st)
		defer m.archived()
	}
	m.deps.Router.Route(ctx, st)
}

// privilegedIQ handles an IQ a privileged entity sends to a user's bare
// JID to have the IQ it encapsulates sent on the user's behalf (XEP-0356
// §6): the user's own account answers it here, anyone else's answer is
// forwarded back by privilegedAnswer.
func (m *SM) privilegedIQ(ctx context.Context, s router.Stanza, w *xmlstream.Element) {
	typ := s.El.Attr("type")
	refuse := func(text string) { m.deps.Router.Bounce(ctx, s, stanza.Forbidden, text) }
	if s.Grant == nil || s.Grant.NS() != privilege.NS2 {
		refuse("No permission to send IQs on behalf of users.")
		return
	}
	inner := onlyChild(w)
	if inner == nil || inner.Space != xmlstream.NSClient || inner.Local != stanza.IQ {
		refuse("Expected one <iq xmlns='jabber:client'/>.")
		return
	}
	if inner.Attr("type") != typ {
		refuse("The encapsulated IQ must be of the same type.")
		return
	}
	if inner.Attr("id") == "" {
		refuse("The encapsulated IQ needs an id.")
		return
	}
	payload := onlyChild(inner)
	if payload == nil || !s.Grant.AllowsIQ(payload.Space, typ) {
		refuse("No permission for this namespace and type.")
		return
	}
	owner := s.To.Bare()
	if f := inner.Attr("from"); f != "" {
		if j, err := jid.Parse(f); err != nil || !j.Equal(owner) {
			refuse("The encapsulated IQ must be from the user it is addressed to.")
			return
		}
	}
	if !m.userExists(ctx, owner) {
		refuse("Not a user of this server.")
		return
	}
	to := owner
	if t := inner.Attr("to"); t != "" {
		j, err := jid.Parse(t)
		if err != nil {
			m.deps.Router.Bounce(ctx, s, stanza.JIDMalformed, "")
			return
		}
		to = j
	}
	out := inner.ShallowCopy()
	out.SetAttr("from", owner.String())
	if to.Equal(owner) {
		m.accountIQFor(ctx, s, owner, out)
		return
	}
	id := "priv-" + stanza.NewID()
	out.SetAttr("id", id)
	now := time.Now()
	var expired []*privIQ
	m.ents.mu.Lock()
	if now.Sub(m.ents.swept) > privIQTimeout/4 {
		m.ents.swept = now
		for k, p := range m.ents.iqs {
			if now.Sub(p.sent) > privIQTimeout {
				expired = append(expired, p)
				delete(m.ents.iqs, k)
			}
		}
	}
	full := len(m.ents.iqs) >= maxPrivIQs
	if !full {
		if m.ents.iqs == nil {
			m.ents.iqs = map[string]*privIQ{}
		}
		m.ents.iqs[id] = &privIQ{entity: s.From, outerID: s.El.Attr("id"), innerID: inner.Attr("id"), owner: owner, peer: to, sent: now}
	}
	m.ents.mu.Unlock()
	for _, p := range expired {
		// The request, as the entity sent it, answered with the timeout.
		req := xmlstream.NewElement(xmlstream.NSClient, stanza.IQ)
		req.SetAttr("from", p.entity.String())
		req.SetAttr("to", p.owner.String())
		req.SetAttr("id", p.outerID)
		m.deps.Router.Route(ctx, router.Stanza{El: stanza.ErrorReply(req, stanza.RemoteServerTimeout, ""), From: p.owner, To: p.entity})
	}
	if full {
		m.deps.Router.Bounce(ctx, s, stanza.ResourceConstraint, "")
		return
	}
	m.deps.Router.Route(ctx, router.Stanza{El: out, From: owner, To: to})
}

// privilegedAnswer forwards the answer to an IQ sent on a user's behalf
// to the entity that asked (XEP-0356 §6.3), wrapped in <privilege/>; it
// reports whether s was such an answer. An answer must come from the
// addressee of the IQ, with its id, and be a result or an error.
func (m *SM) privilegedAnswer(ctx context.Context, s router.Stanza) bool {
	id := s.El.Attr("id")
	if s.El.Local != stanza.IQ || len(id) < 5 || id[:5] != "priv-" {
		return false
	}
	m.ents.mu.Lock()
	p := m.ents.iqs[id]
	ok := p != nil && p.peer.Equal(s.From) && p.owner.Equal(s.To.Bare())
	if ok {
		delete(m.ents.iqs, id)
	}
	m.ents.mu.Unlock()
	if !ok {
		return false
	}
	m.forwardAnswer(ctx, p.entity, p.owner, p.outerID, p.innerID, s.El)
	return true
}

// forwardAnswer sends entity the answer ans to the IQ it had sent on
// owner's behalf, with the ids it chose.
func (m *SM) forwardAnswer(ctx context.Context, entity, owner jid.JID, outerID, innerID string, ans *xmlstream.Element) {
	ns := privilege.NS2
	inner := clientNS(ans)
	inner.SetAttr("id", innerID)
	r := xmlstream.NewElement(xmlstream.NSClient, stanza.IQ)
	r.SetAttr("type", "result")
	r.SetAttr("from", owner.String())
	r.SetAttr("to", entity.String())
	r.SetAttr("id", outerID)
	r.AddChild(xmlstream.NewElement(ns, "privilege")).
		AddChild(xmlstream.NewElement(privilege.NSForward, "forwarded")).
		AddChild(inner)
	m.deps.Router.Route(ctx, router.Stanza{El: r, From: owner, To: entity})
}

// clientNS returns a copy of the stanza el that reads the same in
// jabber:client, for a <forwarded/>: inside one, the namespace of a stanza
// from a server or component stream is no longer the stream's.
func clientNS(el *xmlstream.Element) *xmlstream.Element {
	switch el.Space {
	case xmlstream.NSClient, xmlstream.NSServer, xmlstream.NSComponent:
	default:
		return el
	}
	c := el.ShallowCopy()
	c.Space = xmlstream.NSClient
	if c.HasRaw() {
		// The raw children inherit the default namespace: jabber:client.
		return c
	}
	nodes := make([]xmlstream.Node, len(c.Nodes))
	for i, n := range c.Nodes {
		if n.Elem != nil {
			n.Elem = clientNS(n.Elem)
		}
		nodes[i] = n
	}
	// Direct edit: the children that are not copies stay shared with el.
	c.Nodes = nodes
	return c
}

// accountIQFor serves iq, an IQ on the user owner's own account sent on
// the user's behalf by the entity of s, as the user's client would be
// served, and forwards the answer.
func (m *SM) accountIQFor(ctx context.Context, s router.Stanza, owner jid.JID, iq *xmlstream.Element) {
	u := m.pin(owner)
	defer m.unpin(u)
	ps := &proxySession{jid: owner}
	m.accountIQ(ctx, ps, router.Stanza{El: iq, From: owner, To: owner})
	for _, el := range ps.take() {
		if el.Local == stanza.IQ && el.Attr("id") == iq.Attr("id") && (el.Attr("type") == "result" || el.Attr("type") == "error") {
			m.forwardAnswer(ctx, s.From, owner, s.El.Attr("id"), iq.Attr("id"), el)
			return
		}
	}
	m.deps.Router.Bounce(ctx, s, stanza.ServiceUnavailable, "")
}

// proxySession stands for the user's client when the server serves an IQ
// a privileged entity sent on the user's behalf: it keeps what would be
// delivered, and is never among the user's sessions.
type proxySession struct {
	jid jid.JID

	mu  sync.Mutex
	got []*xmlstream.Element
}

var _ router.Session = (*proxySession)(nil)

func (p *proxySession) JID() jid.JID { return p.jid }

func (p *proxySession) Deliver(el *xmlstream.Element) {
	p.mu.Lock()
	p.got = append(p.got, el)
	p.mu.Unlock()
}

func (p *proxySession) Close(string) {}

func (p *proxySession) take() []*xmlstream.Element {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.got
	p.got = nil
	return out
}
