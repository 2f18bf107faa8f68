// Package credcache keeps the credentials that logins read, so that a
// client that reconnects is checked without a query. The storage
// backends use it; each must learn of every change made by others (the
// SQLite backend through the admin socket, the PostgreSQL one through
// LISTEN/NOTIFY) before it turns its cache on.
//
// A lookup that misses reads the database and stores what it read only
// if nothing was forgotten meanwhile (the generation): otherwise a read
// that began before a password change could put the old credentials back
// after the change forgot them.
package credcache

import (
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// Cache holds the credentials of up to a set number of users, each for a
// set time. Its zero value is off: it keeps nothing until Configure
// turns it on. It is safe for concurrent use.
type Cache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	gen   uint64
	users map[string]*entry
}

// entry is what the cache holds for one user: the credentials read so
// far, one per hash, and when they stop being trusted.
type entry struct {
	expires time.Time
	creds   []storage.Credential
}

// Configure keeps the credentials of up to maxUsers users for at most
// ttl each, forgetting everything kept so far; maxUsers <= 0 or ttl <= 0
// turns the cache off.
func (c *Cache) Configure(maxUsers int, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.max, c.ttl = maxUsers, ttl
	c.users = nil
	if maxUsers > 0 && ttl > 0 {
		c.users = make(map[string]*entry)
	}
}

// Forget drops what the cache holds for user, and keeps reads begun
// before from being stored.
func (c *Cache) Forget(user string) {
	c.mu.Lock()
	c.gen++
	delete(c.users, user)
	c.mu.Unlock()
}

// Read returns user's credential for hash from the cache, or else from
// read (the database), keeping what read returns without error unless
// something was forgotten while it ran.
func (c *Cache) Read(user, hash string, read func() (storage.Credential, error)) (storage.Credential, error) {
	now := time.Now()
	cr, gen, ok := c.get(user, hash, now)
	if ok {
		return cr, nil
	}
	cr, err := read()
	if err != nil {
		return storage.Credential{}, err
	}
	c.put(gen, user, cr, now)
	return cr, nil
}

// get returns a copy of the cached credential of user for hash. When
// there is none, it returns the generation to hand to put.
func (c *Cache) get(user, hash string, now time.Time) (storage.Credential, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users == nil {
		return storage.Credential{}, c.gen, false
	}
	e := c.users[user]
	if e == nil {
		return storage.Credential{}, c.gen, false
	}
	if now.After(e.expires) {
		delete(c.users, user)
		return storage.Credential{}, c.gen, false
	}
	for _, cr := range e.creds {
		if cr.Hash == hash {
			return storage.CloneCredential(cr), 0, true
		}
	}
	return storage.Credential{}, c.gen, false
}

// put stores cr, read from the database when the cache was at
// generation gen, unless something was forgotten since.
func (c *Cache) put(gen uint64, user string, cr storage.Credential, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users == nil || gen != c.gen {
		return
	}
	e := c.users[user]
	if e == nil {
		if len(c.users) >= c.max {
			// Any entry will do: map iteration starts at a random one,
			// so that no user is evicted more often than another.
			for u := range c.users {
				delete(c.users, u)
				break
			}
		}
		e = &entry{expires: now.Add(c.ttl)}
		c.users[user] = e
	}
	for i := range e.creds {
		if e.creds[i].Hash == cr.Hash {
			e.creds[i] = storage.CloneCredential(cr)
			return
		}
	}
	e.creds = append(e.creds, storage.CloneCredential(cr))
}

// Len reports how many users the cache holds.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.users)
}
