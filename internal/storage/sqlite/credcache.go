package sqlite

import (
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// credCache keeps the credentials that logins read, so that a client
// that reconnects is checked without a query. It is off until
// CacheCredentials turns it on. Every change of credentials through the
// Store forgets the user's entry once the change is committed; a change
// made by another process must be announced with ForgetCredentials, and
// ttl bounds how long an entry outlives one that was not.
//
// A lookup that misses reads the database and stores what it read only
// if nothing was forgotten meanwhile (gen): otherwise a read that began
// before a password change could put the old credentials back after the
// change forgot them.
type credCache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	gen   uint64
	users map[string]*credEntry
}

// credEntry is what the cache holds for one user: the credentials read
// so far, one per hash, and when they stop being trusted.
type credEntry struct {
	expires time.Time
	creds   []storage.Credential
}

// CacheCredentials keeps the credentials of up to maxUsers users in
// memory for at most ttl each; maxUsers <= 0 turns the cache off. Only a
// process that is told of every change made by others (ForgetCredentials)
// may turn it on: ambrosia serve does, since the user command announces
// its changes on the admin socket.
func (s *Store) CacheCredentials(maxUsers int, ttl time.Duration) {
	s.creds.mu.Lock()
	defer s.creds.mu.Unlock()
	s.creds.gen++
	s.creds.max, s.creds.ttl = maxUsers, ttl
	s.creds.users = nil
	if maxUsers > 0 && ttl > 0 {
		s.creds.users = make(map[string]*credEntry)
	}
}

// ForgetCredentials drops what the credential cache holds for user: the
// next login reads the database. Another process that changed or deleted
// the account calls it through the admin socket.
func (s *Store) ForgetCredentials(user string) {
	s.creds.forget(user)
}

func (c *credCache) forget(user string) {
	c.mu.Lock()
	c.gen++
	delete(c.users, user)
	c.mu.Unlock()
}

// get returns a copy of the cached credential of user for hash. When
// there is none, it returns the generation to hand to put.
func (c *credCache) get(user, hash string, now time.Time) (storage.Credential, uint64, bool) {
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
func (c *credCache) put(gen uint64, user string, cr storage.Credential, now time.Time) {
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
		e = &credEntry{expires: now.Add(c.ttl)}
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
