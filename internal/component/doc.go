// Package component is the listener for external components (XEP-0114,
// jabber:component:accept): programs such as gateways and bots that connect
// over TCP, authenticate with a shared secret and then serve a whole domain
// of their own.
//
// After the handshake the component's domain is registered with the router,
// so that every stanza for that domain or any address in it is written to
// the component's stream; stanzas the component sends must come from its own
// domain and are routed like any other. A domain is served by one
// connection at a time: a second connection for a domain already bound is
// refused with a conflict stream error. Sharing a domain among several
// connections comes with the service protocol, not with XEP-0114.
//
// Writing never blocks whoever routes a stanza to a component: the stanza
// is serialized and queued, and one goroutine per connection writes the
// queue to the socket. A component that lets its queue overflow is closed
// with policy-violation.
package component
