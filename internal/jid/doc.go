// Package jid implements XMPP addresses (JIDs) as defined by RFC 7622.
//
// A JID has the form [localpart@]domainpart[/resourcepart]. Parse and New
// prepare and enforce every part: the localpart with the PRECIS
// UsernameCaseMapped profile (RFC 8265), the domainpart with IDNA2008
// (RFC 5891) converted to Unicode, and the resourcepart with the PRECIS
// OpaqueString profile. A JID that came out of Parse or New is canonical, so
// two JIDs denote the same address exactly when they are equal with ==.
//
// Parsing sits on the stanza routing hot path, so addresses made only of
// ASCII characters that preparation would at most lowercase are handled
// without calling into golang.org/x/text or golang.org/x/net. The fuzz target
// FuzzFastPathMatchesPRECIS checks that this shortcut gives the same result
// as full preparation.
//
// Where RFC 7622 and the preparation libraries disagree, the libraries win:
// the RFC lists "juliet@example.com/ foo" as invalid, but OpaqueString as
// implemented by golang.org/x/text/secure/precis (and as specified by
// RFC 8265) allows leading spaces, so this package accepts it.
package jid
