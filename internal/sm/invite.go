package sm

import (
	"context"
	"fmt"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
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
