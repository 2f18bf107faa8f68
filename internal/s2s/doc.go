// Package s2s federates the served domains with other XMPP servers (RFC
// 6120 server-to-server streams). It is an edge piece: a Service owns the
// inbound listeners and the outgoing streams and talks to the rest of the
// server only through the router, which hands it every stanza for a domain
// nobody serves locally.
//
// # Outgoing streams
//
// One outgoing stream carries everything from one local domain to one
// remote domain; senders share it. The remote server is found through the
// operator's host table, else the _xmpps-server (direct TLS, XEP-0368) and
// _xmpp-server SRV records, else the domain's addresses on port 5269. TLS
// is required. The stream authenticates with SASL EXTERNAL (XEP-0178) when
// the peer's certificate is valid for its domain and the peer offers it,
// and with Server Dialback (XEP-0220, keys per XEP-0185) otherwise.
// Stanzas wait in the stream's queue while it comes up; when it cannot
// come up within the connect timeout they are bounced with
// remote-server-not-found, or remote-server-timeout when the peer was too
// slow. A stream unused for the idle timeout is closed.
//
// # Incoming streams
//
// Incoming streams must use TLS. A domain pair (remote, local) is
// authenticated by SASL EXTERNAL with a certificate valid for the remote
// domain, or by dialback: the key is accepted at once when the peer's
// certificate is valid for the domain it claims, and checked with that
// domain's authoritative server (db:verify) otherwise. The service also
// answers db:verify as the authoritative server for its own domains. Every
// stanza must name a 'from' in an authenticated remote domain and a 'to'
// in the local domain it was authenticated for; anything else ends the
// stream with invalid-from, host-unknown or improper-addressing and is
// never delivered.
//
// # Service domains
//
// A domain is local when the router serves it, so the services of the
// local domains (conference.example.org, upload.example.org) federate as
// domains of their own, with their own streams both ways. Their streams
// present the certificate of the nearest local parent domain, which a
// peer accepts for SASL EXTERNAL when it names the service (a wildcard or
// a SAN for it); otherwise the peer authenticates the service by
// dialback, asking the server its DNS (or host table) gives for the
// service's domain.
package s2s
