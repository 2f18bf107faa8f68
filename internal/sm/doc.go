// Package sm is the session manager: the component that owns the users of
// a domain. It keeps each user's sessions and presence, serves the roster,
// routes messages, presence and IQs addressed to users per RFC 6121, and
// answers the server's own IQs (disco, ping, version).
//
// It sees client sessions only through router.Session, so the edge that
// holds a session may live in this process or, later, behind a link.
//
// Locks: SM.mu (the user table) is taken before user.mu, and user.mu before
// anything a Session locks. Nothing is routed while a user lock is held:
// routing may reach another user's lock, so stanzas for others are
// collected under the lock and routed after it is released.
package sm
