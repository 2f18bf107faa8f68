package sm

import (
	"sync"

	"github.com/ambrosia-xmpp/ambrosia/internal/router"
)

// resendWindow is how many recent messages of all users are remembered by
// their origin-id.
const resendWindow = 1 << 16

// resent remembers the XEP-0359 origin-ids of the last messages users
// sent. A client whose Stream Management resumption failed sends again
// what the server had not acknowledged, with the same origin-id (as
// Conversations and other careful clients do); the server may have
// handled it already, just before the connection or the gateway died.
// Recognised, it is neither delivered nor archived a second time. The
// window lives in memory only: a restarted session manager takes a
// message sent again as new (docs/service-protocol.md, Exactly once).
type resent struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

// seen records the message's key and reports whether it was there
// already. A message without an origin-id is never a resend.
func (r *resent) seen(s router.Stanza) bool {
	oid := s.El.Child(nsSID, "origin-id")
	if oid == nil || oid.Attr("id") == "" {
		return false
	}
	key := s.From.Bare().String() + "\x00" + s.To.String() + "\x00" + oid.Attr("id")
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set == nil {
		r.set = make(map[string]struct{}, resendWindow)
		r.ring = make([]string, resendWindow)
	}
	if _, ok := r.set[key]; ok {
		return true
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = key
	r.next = (r.next + 1) % len(r.ring)
	r.set[key] = struct{}{}
	return false
}
