package sm

import (
	"context"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Observer hears of what happens to the domain's users, for application
// services. Its methods are called with the session manager's locks held
// or on a client's goroutine: they must return at once.
type Observer interface {
	// Login reports a session bound; addr is the client's network
	// address, "" when unknown.
	Login(full jid.JID, addr string)
	// Logout reports a session ended.
	Logout(full jid.JID)
	// RosterChanged reports an item of owner's roster changed, with
	// Subscription "remove" for a removed one.
	RosterChanged(owner jid.JID, item storage.RosterItem)
}

// decide asks the hook about a message or a subscription request, once
// per stanza: it returns the stanza to go on with and a context marked as
// decided, or ok false when the stanza was refused (its sender told).
func (m *SM) decide(ctx context.Context, kind string, s router.Stanza) (context.Context, router.Stanza, bool) {
	if m.deps.Hook == nil || router.WasDecided(ctx) {
		return ctx, s, true
	}
	if t := s.El.Attr("type"); kind == "message" && (t == "groupchat" || t == "error") {
		// A room's messages have hooks of their own (room_message); errors
		// answer what was decided already.
		return ctx, s, true
	}
	d := m.deps.Hook.Decide(ctx, kind, s)
	ctx = router.Decided(ctx)
	if d.Deny {
		cond := d.Condition
		if cond == "" {
			cond = stanza.Forbidden
		}
		m.deps.Router.Bounce(ctx, s, cond, d.Text)
		return ctx, s, false
	}
	if d.Replace != nil {
		el := d.Replace
		el.SetAttr("from", s.El.Attr("from"))
		if t := s.El.Attr("to"); t != "" {
			el.SetAttr("to", t)
		} else {
			el.RemoveAttr("to")
		}
		s.El = el
	}
	return ctx, s, true
}

// SessionInfo describes a bound session.
type SessionInfo struct {
	JID       jid.JID
	Available bool
	Presence  *xmlstream.Element // its last available presence; nil if none
	Address   string             // the client's network address, "" if unknown
}

// Sessions returns the sessions of the user of, or of every user for the
// zero JID.
func (m *SM) Sessions(of jid.JID) []SessionInfo {
	var us []*user
	m.mu.RLock()
	if of.IsZero() {
		for _, u := range m.users {
			us = append(us, u)
		}
	} else if u := m.users[of.BareString()]; u != nil {
		us = append(us, u)
	}
	m.mu.RUnlock()
	var out []SessionInfo
	for _, u := range us {
		u.mu.Lock()
		for _, x := range u.sessions {
			info := SessionInfo{JID: x.s.JID(), Available: x.available, Presence: x.presence}
			if a, ok := x.s.(router.Addressed); ok {
				info.Address = a.RemoteAddr()
			}
			out = append(out, info)
		}
		u.mu.Unlock()
	}
	return out
}

// EndSessions ends the sessions of user with the stream error condition
// and, for the sessions that can carry one (router.TextCloser), text; or
// only the one of full when it has a resource. It reports how many.
func (m *SM) EndSessions(full jid.JID, condition, text string) int {
	u := m.user(full.BareString())
	if u == nil {
		return 0
	}
	u.mu.Lock()
	var end []router.Session
	for _, x := range u.sessions {
		if full.Resource() == "" || x.s.JID().Resource() == full.Resource() {
			end = append(end, x.s)
		}
	}
	u.mu.Unlock()
	for _, s := range end {
		if tc, ok := s.(router.TextCloser); ok && text != "" {
			tc.CloseText(condition, text)
		} else {
			s.Close(condition)
		}
	}
	return len(end)
}

// AdminRoster serves a roster get or set of owner's roster as an
// administrator: a set may give the subscription state itself, as a
// privileged entity's may (XEP-0356), and reaches owner's interested
// sessions as a push. It returns the answer, a result or an error IQ.
func (m *SM) AdminRoster(ctx context.Context, owner jid.JID, iq *xmlstream.Element) *xmlstream.Element {
	q := iq.Child(stanza.NSRoster, "query")
	if q == nil {
		return stanza.ErrorReply(iq, stanza.BadRequest, "")
	}
	if !m.userExists(ctx, owner) {
		return stanza.ErrorReply(iq, stanza.ItemNotFound, "")
	}
	u := m.pin(owner.Bare())
	defer m.unpin(u)
	var ans *xmlstream.Element
	m.roster(ctx, u, nil, iq, q, func(r *xmlstream.Element) { ans = r })
	return ans
}

// Domain returns the domain the session manager serves.
func (m *SM) Domain() string { return m.domain.Domain() }
