// Package componentclient is the client side of XEP-0114 (Jabber
// Component Protocol, jabber:component:accept): it attaches a program that
// serves a domain of its own, such as a bridge for irc.example.org, to any
// XMPP server as an external component — Ambrosia, Prosody, ejabberd.
//
// Inside that program the domain's logic is a router.Component registered
// in a private router.Router. The Client connects to the server's
// component port, authenticates with the shared secret and then moves
// stanzas both ways: what the server sends for the domain, or for any
// address in it, is routed into the private router with its 'from' and
// 'to' parsed; and the Forwarder, which the program sets as its router's
// fallback (router.SetFallback), sends out everything addressed elsewhere.
// A stanza from the server for another domain is dropped and logged: the
// server has no business sending it.
//
// # Connection
//
// Run dials Config.Addr, sends the stream header with 'to' set to the
// domain, answers the server's header with <handshake/> holding
// hex(SHA-1(stream id + secret)) and waits for the empty <handshake/> of
// success. It then reads stanzas with the incremental parser of
// internal/xmlstream on its own goroutine while one writer goroutine per
// connection writes the outgoing queue; there is no goroutine per stanza.
// When the connection ends, Run dials again after a delay that doubles from
// ReconnectMin up to ReconnectMax, with random jitter so that many bridges
// restarted together do not come back in lockstep; a connection that stayed
// up for a while starts the delays from ReconnectMin again.
//
// A refused handshake (a stream error such as not-authorized for a wrong
// secret, host-unknown for a domain the server does not know, conflict for
// a domain another connection holds) is logged at error level with its
// condition on every attempt, recorded for LastError, and retried with the
// same backoff. That is what operators of ejabberd and Prosody expect of a
// component: the server may be reconfigured or restarted with the right
// secret, a conflict clears once the server drops a stale connection, and
// a component that exits on the first refusal leaves a bridge down until
// someone restarts it. Programs that prefer to fail fast, such as a
// configuration check, set Config.StopWhenRefused: Run then returns the
// *StreamError at once.
//
// # Outgoing queue
//
// HandleStanza of the Forwarder never waits for the network: it checks and
// stamps the addresses, serializes the stanza and appends it to one queue
// that outlives connections. While disconnected the queue keeps filling,
// up to MaxQueued stanzas and MaxQueuedBytes bytes, and is written in order
// on the next connection. Beyond either bound a stanza is bounced to its
// sender inside the program: with remote-server-timeout while the server
// cannot be reached (it may come back; the error type is wait), with
// resource-constraint while connected but the server reads too slowly for
// the queue to drain. What is still queued when Run returns, and whatever
// arrives afterwards, is bounced with remote-server-timeout.
//
// XEP-0114 has no acknowledgements: stanzas already written to a
// connection that dies may be lost, and are not sent again (at most once,
// never twice).
//
// # Liveness
//
// Servers do not talk to idle components, so silence on the read side
// proves nothing. After KeepAlive without writing anything the writer sends
// a single space, as RFC 6120 §4.6.1 allows. A write that does not finish
// within WriteTimeout (a server that does not read) ends the connection,
// and on Linux the socket's TCP_USER_TIMEOUT is set to WriteTimeout, so
// data the peer does not acknowledge — the keepalive itself, on a link that
// died without a reset — ends it too. Either way Run reconnects.
//
// # Locks
//
// Client.mu guards the queue and the connection state; conn.mu guards how
// one connection ends. Client.mu may be taken while holding conn.mu, never
// the reverse. Neither is held while routing or bouncing a stanza, since
// routing may come straight back to the Forwarder.
package componentclient
