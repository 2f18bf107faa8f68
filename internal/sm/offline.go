package sm

import (
	"context"
	"errors"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/mam"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces of offline storage.
const (
	nsDelay      = "urn:xmpp:delay"
	nsHints      = "urn:xmpp:hints"
	nsChatStates = "http://jabber.org/protocol/chatstates"
)

// DefaultOfflineQuota is how many messages are kept for an offline user
// unless configured otherwise.
const DefaultOfflineQuota = 1000

// storeOffline keeps a message for a user with no resource to take it
// (XEP-0160). It reports whether the message was dealt with (stored,
// dropped as not worth storing, or answered with an error); false leaves
// the caller to bounce it.
func (m *SM) storeOffline(ctx context.Context, s router.Stanza) bool {
	if m.deps.Offline == nil {
		return false
	}
	switch s.El.Attr("type") {
	case "", "normal", "chat":
	default:
		return false
	}
	bare := s.To.Bare()
	if ok, err := m.lookupUser(ctx, bare); !ok {
		if err == nil {
			return false
		}
		// The store is unreachable (a database outage): the message is
		// not stored, and the sender must learn that it failed rather
		// than that the user does not exist.
		m.log.Error("offline store: account lookup", "user", bare.String(), "err", err)
		m.deps.Router.Bounce(ctx, s, stanza.InternalServerError, "")
		return true
	}
	if !storable(s.El) {
		// Chat states and the like mean nothing later: drop them quietly.
		return true
	}
	now := time.Now().UTC()
	el := s.El.ShallowCopy()
	d := xmlstream.NewElement(nsDelay, "delay")
	d.SetAttr("from", m.domain.String())
	d.SetAttr("stamp", now.Format("2006-01-02T15:04:05Z"))
	d.AddText("Offline Storage")
	el.AddChild(d)
	err := m.deps.Offline.PushOffline(ctx, bare.String(), el.AppendXML(nil, xmlstream.NSClient), now, m.cfg.OfflineQuota)
	switch {
	case errors.Is(err, storage.ErrQuota):
		m.deps.Router.Bounce(ctx, s, stanza.ResourceConstraint, "The recipient's offline storage is full.")
	case err != nil:
		m.log.Error("offline store", "user", bare.String(), "err", err)
		m.deps.Router.Bounce(ctx, s, stanza.InternalServerError, "")
	default:
		m.deps.Metrics.OfflineStored()
		// Stored, so worth a push notification to every registration.
		m.notify(ctx, bare, s.From, m.pushRegs(ctx, bare.String()))
	}
	return true
}

// storable says whether a message is worth keeping for later: it carries
// content, not just a chat state, unless a XEP-0334 hint says otherwise.
func storable(el *xmlstream.Element) bool {
	if el.Child(nsHints, "no-store") != nil {
		return false
	}
	if el.Child(nsHints, "store") != nil {
		return true
	}
	for c := range el.ChildElements {
		switch {
		case c.Space == nsChatStates, c.Space == nsHints:
		case c.Local == "thread" && c.Space == el.Space:
		default:
			return true
		}
	}
	return false
}

// deliverOffline hands a user's stored messages to a session that just
// became available with a non-negative priority, then forgets them.
func (m *SM) deliverOffline(ctx context.Context, u *user, sess router.Session) {
	if m.deps.Offline == nil {
		return
	}
	// The user's lock keeps two resources coming online together from both
	// getting the same messages.
	u.mu.Lock()
	defer u.mu.Unlock()
	ms, err := m.deps.Offline.OfflineMessages(ctx, u.bare.String())
	if err != nil {
		m.log.Error("offline load", "user", u.bare.String(), "err", err)
		return
	}
	if len(ms) == 0 {
		return
	}
	for _, om := range ms {
		el, err := mam.ParseStored(om.Stanza)
		if err != nil {
			m.log.Error("offline message unreadable, dropped", "user", u.bare.String(), "id", om.ID, "err", err)
			continue
		}
		if es, ok := sess.(router.EventSession); ok && om.Event != "" {
			es.DeliverFor(el, om.Event)
		} else {
			sess.Deliver(el)
		}
	}
	if err := m.deps.Offline.DeleteOffline(ctx, u.bare.String(), ms[len(ms)-1].ID); err != nil {
		m.log.Error("offline delete", "user", u.bare.String(), "err", err)
	}
}

// WithdrawOffline implements router.Withdrawer. A message not stored (it
// went to another resource, or was delivered from storage already) is
// not withdrawn.
func (m *SM) WithdrawOffline(ctx context.Context, user jid.JID, events []string) int {
	if m.deps.Offline == nil {
		return 0
	}
	bare := user.Bare().String()
	n := 0
	for _, ev := range events {
		ok, err := m.deps.Offline.DeleteOfflineEvent(ctx, bare, ev)
		if err != nil {
			m.log.Error("offline withdraw", "user", bare, "event", ev, "err", err)
			continue
		}
		if ok {
			n++
		}
	}
	return n
}

var _ router.Withdrawer = (*SM)(nil)
