package router

import (
	"hash/fnv"
	"sync/atomic"
)

// Load sharing between several instances of one (domain, kind). Stateful
// kinds such as the session manager keep each user on one instance, chosen
// by rendezvous (highest random weight) hashing of the user's bare JID: a
// joining instance takes over only the users it wins and a leaving one
// hands over only its own, while every gateway computes the same owner
// from the same set of instance ids without talking to the others.
// Stateless kinds take turns.

// Owner returns the index in ids of the instance that owns key by
// rendezvous hashing, or -1 when ids is empty. The result depends only on
// the key and the set of ids, not on their order.
func Owner(key string, ids []string) int {
	best, bestW := -1, uint64(0)
	for i, id := range ids {
		w := weight(id, key)
		if best < 0 || w > bestW || (w == bestW && id < ids[best]) {
			best, bestW = i, w
		}
	}
	return best
}

// weight mixes an instance id and a key into a 64-bit score. FNV-1a
// followed by a finalizer spreads close ids and keys over the whole range.
func weight(id, key string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// RoundRobin hands out the instances of a stateless kind in turn. The zero
// value is ready to use and safe for concurrent use.
type RoundRobin struct{ n atomic.Uint64 }

// Next returns the index of the next instance among count, or -1 when
// count is 0.
func (r *RoundRobin) Next(count int) int {
	if count <= 0 {
		return -1
	}
	return int((r.n.Add(1) - 1) % uint64(count))
}

// Stateful reports whether instances of kind keep per-entity state, so
// that stanzas must go to the owner of the entity rather than to any
// instance: the session manager's users, the conference service's rooms,
// a bridge's users (whose sessions on the other network live on one
// instance).
func Stateful(kind string) bool { return kind == "sm" || kind == "muc" || kind == "bridge" }
