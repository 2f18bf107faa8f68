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
// A component may be granted Privileged Entity permissions (XEP-0356) by
// configuration, never by default. Right after its <handshake/> it is sent
// them, from each domain a session manager serves then, and those session
// managers are told of it by an available presence from its domain (an
// unavailable one when it leaves). Every stanza it sends is routed with
// its grant (router.Stanza.Grant): the listener vouches for who the
// sender is and what it was granted, and the session managers, which know
// their users, decide what the grant allows. The 'from' of a component's
// stanza is still its own domain; it never stands for a privilege.
//
// Writing never blocks whoever routes a stanza to a component: the stanza
// is serialized and queued, and one goroutine per connection writes the
// queue to the socket. A component that lets its queue overflow is closed
// with policy-violation.
package component
