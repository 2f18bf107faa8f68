// Package c2s is the client edge of the gateway: it accepts client
// connections (TCP with STARTTLS, direct TLS per XEP-0368, and XMPP over
// WebSocket per RFC 7395 from the web listener's upgrades), negotiates
// the stream (TLS, SASL, resource binding), stamps the true 'from' on every
// stanza a client sends, and hands bound sessions and their stanzas to the
// session manager of their domain through the router. It holds no
// per-user logic.
//
// Memory per idle connection is kept small on purpose: a connection waits
// for readability without holding a read buffer (buffers come from a pool
// only while bytes are being read), the parser keeps no buffer between
// stanzas, and the output queue exists only while there is something to
// write. Writes are batched: a stanza delivered while a flush is under way
// joins the same write.
//
// Neither an idle session nor a connection still negotiating holds a
// goroutine on Linux: both wait in the poller (poller_linux.go), a TLS
// handshake until the whole ClientHello is there, and get a goroutine
// only while they have bytes to handle. A connection is registered with
// the poller once, at its first wait (or when its session begins), and
// stays registered until its end. Together with the limits
// (limits.go, package limit: unauthenticated connections capped globally
// and per address, failed logins counted across connections, read rates,
// sessions per account) a flood of connections costs descriptors, not
// goroutines, and cannot take the descriptors the listeners and the
// authenticated users need.
//
// A bound resource is a session (session.go), kept apart from the
// connection that carries it, because with Stream Management (XEP-0198)
// it may outlive that connection: when a resumable session's connection
// drops, the session stays bound in the session manager, queues what is
// delivered to it, and a new connection of the same user takes it over
// with <resume/>. The session manager never notices. A session left alone
// for ResumeTimeout, or ended otherwise, is unbound and the messages its
// client did not acknowledge are routed again to the user's bare JID, to
// another resource or to offline storage.
//
// A WebSocket connection is a conn like the others (websocket.go): after
// the HTTP upgrade its socket is served, and once idle polled, as a TCP
// one is. Only the edges differ: bytes read go through the frame decoder
// (wsframe.go) before the parser, and what the session writes is framed
// one element per message (wsout.go), so the session code is one.
package c2s
