// Package room is the multi-user chat room engine (XEP-0045): a room's
// occupants, roles, affiliations, configuration, history and subject, and
// the rules for presence, messages and the owner, admin and moderator
// requests. It does no I/O: a stanza goes in through Room.Handle and the
// stanzas to send, the messages to archive and the state to save come
// out in a Result. The conference service (package muc) is one user of
// it; bridges that host rooms of another network are another.
//
// A Room is not safe for concurrent use: its user serializes the calls,
// which also fixes the order every occupant sees.
//
// The extensions modern clients expect are part of the engine: stanza ids
// assigned by the room (XEP-0359), occupant ids (XEP-0421), self-pings
// (XEP-0410), moderation (XEP-0425 with XEP-0424 retractions), the room's
// vCard avatar (XEP-0486) and nicknames prepared with the PRECIS
// Nickname profile (RFC 8266).
package room
