// Package link is the service protocol that splits Ambrosia across
// processes: a gateway (the network edge) and services (the session
// manager and other components) linked over TCP with STARTTLS and SASL.
// docs/service-protocol.md is the wire contract.
//
// The gateway side registers a stand-in for every (domain, kind) a service
// binds in its router; for the session manager the stand-in implements
// router.SessionManager, so the client edge works unchanged. The service
// side feeds the real component with proxy sessions whose deliveries travel
// back to the gateway that holds the client.
//
// Reliability: every event (a stanza with its context) is numbered per link
// direction and acknowledged with XEP-0198-style counters. The gateway keeps
// what a service has not acknowledged and, when the link drops, hands it to
// the instance that owns each user then; a service acknowledges an event
// only once everything the event caused has been acknowledged by the
// gateways it went to (and once its archive entries are written). Every
// event carries an origin id that survives those hops, and the gateway
// drops a delivery it has already made for the same origin, so that a
// stanza in flight when a service dies is neither lost nor delivered
// twice. A gateway is done with a delivery only once its client
// acknowledged it (XEP-0198); the service keeps it until then and, if the
// link drops, hands it back to the session manager for the user's bare
// JID, so that a stanza in flight when a gateway dies is not lost either.
// What the client had received is not given again: the gateway tells the
// service each delivery's place in its client's stream before the client
// can have it, and the h of the client's failed resumption at another
// gateway (or the gateway itself, announcing the session again after a
// link drop) tells which of the messages handed on it covers, which the
// service then withdraws from offline storage.
//
// Lock order: remote.mu, then outbox.mu, then conn.mu.
package link
