// Package sm is the session manager: the component that owns the users of
// a domain. It keeps each user's sessions and presence, serves the roster,
// routes messages, presence and IQs addressed to users per RFC 6121, and
// answers the server's own IQs (disco, ping, version).
//
// It sees client sessions only through router.Session, so the edge that
// holds a session may live in this process or, later, behind a link.
//
// Privileged entities (XEP-0356), components granted permissions by
// configuration, act for the users as far as the grant their edge vouches
// for on each stanza (router.Stanza.Grant) allows: roster requests to a
// user's bare JID are served as the user's own, with the subscription a
// gateway sets; messages wrapped in <privilege/> to the domain leave as
// the user's; IQs in <privileged_iq/> are sent as the user's and their
// answers forwarded back. An entity that announces itself with an
// available presence to the domain gets the users' presence, their
// contacts' and their roster pushes, as its grant says, until its
// unavailable presence; requests made for a user without sessions pin the
// user's state in the table for their duration.
//
// Locks: SM.mu (the user table) is taken before user.mu, and user.mu before
// anything a Session locks and before the privileged entities' mutex (a
// leaf). Nothing is routed while a user lock is held: routing may reach
// another user's lock, so stanzas for others are collected under the lock
// and routed after it is released.
package sm
