package sqlite

import (
	"time"
)

// CacheCredentials keeps the credentials of up to maxUsers users in
// memory for at most ttl each (package credcache), so that a client that
// reconnects is checked without a query; maxUsers <= 0 turns the cache
// off. Every change of credentials through the Store forgets the user's
// entry once the change is committed; a change made by another process
// must be announced with ForgetCredentials, and ttl bounds how long an
// entry outlives one that was not. Only a process that is told of every
// change made by others may turn it on: ambrosia serve does, since the
// user command announces its changes on the admin socket.
func (s *Store) CacheCredentials(maxUsers int, ttl time.Duration) {
	s.creds.Configure(maxUsers, ttl)
}

// ForgetCredentials drops what the credential cache holds for user: the
// next login reads the database. Another process that changed or deleted
// the account calls it through the admin socket.
func (s *Store) ForgetCredentials(user string) {
	s.creds.Forget(user)
}
