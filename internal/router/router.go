// Package router moves stanzas between components by domain. It is
// application-agnostic: it knows which component serves which domain and
// delivers a stanza to it, and it holds the seam between the client edge and
// the session manager (the Session and SessionManager interfaces), so that a
// network link can later stand exactly there.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/privilege"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Stanza is one stanza in flight with its parsed addresses. From has been
// verified by the edge that accepted the stanza; To is the parsed 'to'
// attribute (the zero JID when absent).
type Stanza struct {
	El   *xmlstream.Element
	From jid.JID
	To   jid.JID
	// Grant is what the sender may do for the users of the server's
	// domains as a privileged entity (XEP-0356), vouched for by the edge
	// that authenticated it (the component listener, from configuration);
	// nil for every other sender. Only an edge sets it: components pass
	// it along untouched and never set it on stanzas they make, and
	// nothing in a stanza's XML can produce it.
	Grant *privilege.Grant
}

// Component receives the stanzas addressed to the domains it serves.
type Component interface {
	// HandleStanza processes one stanza routed to the component, on the
	// goroutine of whoever routed it: it must not block on slow peers. The
	// component owns s.El afterwards.
	HandleStanza(ctx context.Context, s Stanza)
}

// Session is a bound client session held by an edge, as the session manager
// sees it.
type Session interface {
	// JID is the full JID the session is bound to.
	JID() jid.JID
	// Deliver queues el for the client. It serializes el before returning and
	// never waits for network I/O, so the caller may deliver the same element
	// to many sessions and modify it afterwards.
	Deliver(el *xmlstream.Element)
	// Close ends the session with the given stream error condition (for
	// example "conflict" when another session takes its resource).
	Close(condition string)
}

// SessionManager is the component that owns the users and sessions of a
// domain.
type SessionManager interface {
	Component
	// Bind attaches a session whose resource the edge has chosen. A session
	// already bound to the same full JID is closed with a conflict.
	Bind(ctx context.Context, s Session) error
	// Unbind detaches a session whose connection ended.
	Unbind(ctx context.Context, s Session)
	// HandleFromSession processes a stanza the client of sess sent; its
	// 'from' is already stamped with the session's full JID.
	HandleFromSession(ctx context.Context, sess Session, s Stanza)
}

// Detachable is implemented by sessions that can outlive their connection
// (XEP-0198 resumption): a detached session keeps taking stanzas for a
// client that is not there to read them.
type Detachable interface {
	// Detached reports whether the session has no connection right now.
	Detached() bool
}

// Redeliverer is implemented by session managers that take back the
// messages an edge gave to a session whose client never acknowledged
// them, once the session has ended. Unlike a stanza routed anew, such a
// message has already been through the session manager's inbound
// processing (archiving, stanza-id stamping) and must not go through it
// twice.
type Redeliverer interface {
	Redeliver(ctx context.Context, s Stanza)
}

// ResumeWitness is implemented by session managers that want to know of
// a Stream Management resumption (XEP-0198) that failed because the edge
// did not know the session: previd named it, and h is how many stanzas
// its client said it had received from it. In a split server the session
// may be one of a gateway that died, and h tells which of the messages
// handed on from it the client had already. It is called before the
// client can do anything else.
type ResumeWitness interface {
	ResumeFailed(ctx context.Context, user jid.JID, previd string, h uint32)
}

// Resumable is implemented by sessions that can be resumed (XEP-0198).
type Resumable interface {
	// Resumption returns the session's resumption id ("" if none) and
	// how many stanzas it was given for its client since Stream
	// Management was enabled.
	Resumption() (id string, sent uint32)
}

// Withdrawer is implemented by session managers that can take back
// messages they stored offline for a user, named by the event ids they
// were stored with (storage.WithEventID): a split server hands back to
// the bare JID what a lost gateway's client had not acknowledged, and
// withdraws what it learns later that the client had received after all.
type Withdrawer interface {
	// WithdrawOffline removes the messages of user stored for events and
	// returns how many there were.
	WithdrawOffline(ctx context.Context, user jid.JID, events []string) int
}

// EventSession is implemented by sessions that can be given a stanza as
// the delivery an event made: a message stored offline for event, given
// later from storage, is then the same delivery as the one an instance
// made of it before dying, if any, and a split server's gateway gives its
// client only one of them.
type EventSession interface {
	DeliverFor(el *xmlstream.Element, event string)
}

// SessionFlags are what a client asked of the session manager for its
// session beyond presence, which a new owner must know when a session
// moves between instances.
type SessionFlags struct {
	Carbons     bool // enabled XEP-0280 carbons
	Interested  bool // fetched the roster: receives roster pushes
	BlockPushes bool // fetched the blocklist: receives its pushes
}

// SessionRestorer is implemented by session managers that can take a
// bound session's flags from elsewhere, as after a failover.
type SessionRestorer interface {
	RestoreSession(s Session, f SessionFlags)
}

// ErrDomainTaken is returned by Register for a domain already served.
var ErrDomainTaken = errors.New("router: domain already registered")

// Router delivers stanzas to the component registered for their domain.
type Router struct {
	log *slog.Logger

	mu       sync.RWMutex
	domains  map[string]Component
	fallback Component // takes stanzas for unserved domains; nil bounces them
}

// New returns an empty router.
func New(log *slog.Logger) *Router {
	return &Router{log: log, domains: make(map[string]Component)}
}

// Register makes c the component serving domain.
func (r *Router) Register(domain string, c Component) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.domains[domain]; ok {
		return fmt.Errorf("%w: %s", ErrDomainTaken, domain)
	}
	r.domains[domain] = c
	return nil
}

// Unregister removes c from domain; it does nothing if another component
// serves the domain meanwhile.
func (r *Router) Unregister(domain string, c Component) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.domains[domain] == c {
		delete(r.domains, domain)
	}
}

// SetFallback makes c take the stanzas for domains no component serves,
// as a service process does by handing them to its gateway.
func (r *Router) SetFallback(c Component) {
	r.mu.Lock()
	r.fallback = c
	r.mu.Unlock()
}

// Lookup returns the component serving domain, or the fallback.
func (r *Router) Lookup(domain string) (Component, bool) {
	r.mu.RLock()
	c, ok := r.domains[domain]
	if !ok && r.fallback != nil {
		c, ok = r.fallback, true
	}
	r.mu.RUnlock()
	return c, ok
}

// Serves reports whether a component registered for domain serves it
// here, not counting the fallback: what federation asks to tell its own
// domains from remote ones.
func (r *Router) Serves(domain string) bool {
	r.mu.RLock()
	_, ok := r.domains[domain]
	r.mu.RUnlock()
	return ok
}

// SessionManager returns the session manager of domain, if the component
// serving it is one.
func (r *Router) SessionManager(domain string) (SessionManager, bool) {
	c, ok := r.Lookup(domain)
	if !ok {
		return nil, false
	}
	sm, ok := c.(SessionManager)
	return sm, ok
}

// Domains lists the served domains, sorted.
func (r *Router) Domains() []string {
	r.mu.RLock()
	out := make([]string, 0, len(r.domains))
	for d := range r.domains {
		out = append(out, d)
	}
	r.mu.RUnlock()
	sort.Strings(out)
	return out
}

// Route delivers s to the component serving the domain of s.To. A stanza for
// a domain nobody serves is answered with remote-server-not-found (there is
// no federation yet), unless it is itself an error or a result.
func (r *Router) Route(ctx context.Context, s Stanza) {
	if c, ok := r.Lookup(s.To.Domain()); ok {
		c.HandleStanza(ctx, s)
		return
	}
	r.log.Debug("no route", "to", s.To.String(), "from", s.From.String())
	r.Bounce(ctx, s, stanza.RemoteServerNotFound, "")
}

// Bounce answers s with an error stanza of the given condition, routed back
// to its sender, unless RFC 6120 forbids answering s (errors, results).
func (r *Router) Bounce(ctx context.Context, s Stanza, condition, text string) {
	if !stanza.MayBounce(s.El) || s.From.IsZero() {
		return
	}
	reply := stanza.ErrorReply(s.El, condition, text)
	back := Stanza{El: reply, From: s.To, To: s.From}
	if s.To.IsZero() {
		back.From = s.From.DomainJID()
		reply.SetAttr("from", back.From.String())
	}
	if c, ok := r.Lookup(back.To.Domain()); ok {
		c.HandleStanza(ctx, back)
	}
}
