// Package stanza holds what every component needs to speak XMPP stanzas:
// the namespaces of RFC 6120/6121, stanza error conditions with their default
// error types (RFC 6120 §8.3), and helpers that build replies and errors from
// a received stanza. It works on xmlstream elements and knows nothing of the
// server that uses it.
package stanza
