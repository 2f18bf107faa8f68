// Package auth is the server side of SASL for Ambrosia: SCRAM-SHA-1,
// SCRAM-SHA-256 and SCRAM-SHA-512 with their -PLUS variants (channel binding
// tls-exporter and tls-server-end-point) and PLAIN. The SCRAM arithmetic is
// github.com/xdg-go/scram; this package chooses mechanisms for a connection,
// picks the channel binding the client asked for, maps SASL usernames to
// JIDs, and keeps unknown users indistinguishable from wrong passwords.
//
// Passwords are never stored: DeriveCredentials turns a password into the
// SCRAM salted keys of every supported hash, and PLAIN is checked against
// those keys.
package auth
