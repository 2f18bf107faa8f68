package bridge

import (
	"context"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge/internal/store"
)

// idCache is how many id pairs the bridge keeps in memory; older ones are
// read from the store when asked for.
const idCache = 1 << 16

// idMap is the map between the network's message ids and XMPP's, for
// corrections, replies, reactions, retractions and dropping a message the
// network reports twice. Recent pairs live in memory and are written to
// the store in batches: relaying a message must not wait for a commit.
// Pairs older than the cache are read from the store; a pair not yet
// written when the bridge crashes is lost, which costs at most a
// correction of a message of the last moments not finding its original.
type idMap struct {
	st  *store.Store
	log func(msg string, args ...any)

	mu       sync.Mutex
	toXMPP   map[idKey]string // (user, peer, legacy) -> xmpp
	toLegacy map[idKey]string // (user, peer, xmpp) -> legacy
	// The generation before: when the current one is full, the older is
	// dropped whole and the current becomes it.
	oldXMPP, oldLegacy map[idKey]string
	evicted            bool // the memory no longer holds every pair: ask the store on a miss
	queue              []store.IDMap
	writing            bool
	idle               *sync.Cond
}

type idKey struct{ user, peer, id string }

func newIDMap(ctx context.Context, st *store.Store, log func(string, ...any)) *idMap {
	m := &idMap{st: st, log: log, toXMPP: map[idKey]string{}, toLegacy: map[idKey]string{}}
	m.idle = sync.NewCond(&m.mu)
	// What the network may report again after a restart is recent: those
	// pairs are in memory from the start.
	recent, err := st.RecentIDs(ctx, idCache)
	if err != nil {
		log("id map load", "err", err)
	}
	for _, p := range recent {
		m.toXMPP[idKey{p.User, p.Peer, p.Legacy}] = p.XMPP
		m.toLegacy[idKey{p.User, p.Peer, p.XMPP}] = p.Legacy
	}
	if len(recent) == idCache {
		m.evicted = true
	}
	return m
}

// put records a pair.
func (m *idMap) put(user, peer, legacy, xmpp string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.toXMPP) >= idCache/2 {
		// Two generations: the oldest goes whole, without a scan.
		m.oldXMPP, m.oldLegacy = m.toXMPP, m.toLegacy
		m.toXMPP, m.toLegacy = map[idKey]string{}, map[idKey]string{}
		m.evicted = m.evicted || len(m.oldXMPP) > 0
	}
	m.toXMPP[idKey{user, peer, legacy}] = xmpp
	m.toLegacy[idKey{user, peer, xmpp}] = legacy
	m.queue = append(m.queue, store.IDMap{User: user, Peer: peer, Legacy: legacy, XMPP: xmpp})
	if !m.writing {
		m.writing = true
		go m.write()
	}
}

// write saves the queue in batches until it is empty.
func (m *idMap) write() {
	for {
		time.Sleep(5 * time.Millisecond) // let a burst gather into one commit
		m.mu.Lock()
		batch := m.queue
		m.queue = nil
		if len(batch) == 0 {
			m.writing = false
			m.idle.Broadcast()
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		if err := m.st.MapIDs(context.Background(), batch); err != nil {
			m.log("id map write", "pairs", len(batch), "err", err)
		}
	}
}

// flush waits until every pair put is written.
func (m *idMap) flush() {
	m.mu.Lock()
	for m.writing {
		m.idle.Wait()
	}
	m.mu.Unlock()
}

// forget drops a user's pairs from memory (the store forgets them with
// the user).
func (m *idMap) forget(user string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mp := range []map[idKey]string{m.toXMPP, m.toLegacy, m.oldXMPP, m.oldLegacy} {
		for k := range mp {
			if k.user == user {
				delete(mp, k)
			}
		}
	}
}

// xmppID returns the XMPP id of a network message, "" if unknown.
func (m *idMap) xmppID(ctx context.Context, user, peer, legacy string) string {
	m.mu.Lock()
	k := idKey{user, peer, legacy}
	v, ok := m.toXMPP[k]
	if !ok {
		v, ok = m.oldXMPP[k]
	}
	evicted := m.evicted
	m.mu.Unlock()
	if ok || !evicted {
		return v
	}
	v, _ = m.st.XMPPID(ctx, user, peer, legacy)
	return v
}

// legacyID returns the network id of an XMPP message, "" if unknown.
func (m *idMap) legacyID(ctx context.Context, user, peer, xmpp string) string {
	m.mu.Lock()
	k := idKey{user, peer, xmpp}
	v, ok := m.toLegacy[k]
	if !ok {
		v, ok = m.oldLegacy[k]
	}
	evicted := m.evicted
	m.mu.Unlock()
	if ok || !evicted {
		return v
	}
	v, _ = m.st.LegacyID(ctx, user, peer, xmpp)
	return v
}
