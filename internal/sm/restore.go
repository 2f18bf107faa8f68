package sm

import "github.com/ambrosia-xmpp/ambrosia/internal/router"

var _ router.SessionRestorer = (*SM)(nil)

// RestoreSession implements router.SessionRestorer: a session that moved
// here from another instance keeps its carbons and its roster and
// blocklist pushes, which its client asked for once and will not ask
// again.
func (m *SM) RestoreSession(sess router.Session, f router.SessionFlags) {
	u := m.user(sess.JID().BareString())
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, x := range u.sessions {
		if x.s == sess {
			x.carbons = f.Carbons
			x.interested = f.Interested
			x.blockPushes = f.BlockPushes
		}
	}
}
