// Package migrate moves user data between Ambrosia and other XMPP servers:
// it reads XEP-0227 portable import/export files (what ejabberd's
// export_piefxis and Prosody's prosody-migrator write) and Prosody data
// directories (its "internal" storage of Lua-serialised files), imports
// what it read into Ambrosia's storage, and exports Ambrosia's storage as
// XEP-0227 again.
//
// Reading and writing are separate: a reader turns its whole input into
// a Data value and checks every part of it before the importer writes
// anything, so that a malformed file imports nothing. The importer
// compares each piece with what the store holds and writes only what
// differs, so importing the same data twice changes nothing the second
// time.
package migrate
