// Package upload is HTTP File Upload (XEP-0363) with its own HTTP(S) file
// store: a router component on upload.<domain> for each served domain
// hands out upload slots to the domain's users, and an HTTP server takes
// the PUT of each slot and serves the files back until they expire.
//
// A slot is a capability, not a record: its PUT URL names a random id and
// carries, in the Authorization header, the slot's claims (path, size,
// content type, owner, expiry) with their HMAC-SHA256 under a secret kept
// in the store's directory. So the HTTP side checks a PUT without any
// state, slots survive a restart, and a slot cannot be forged, stretched
// to another path or size, or used after it expires. Each id can be
// written once.
//
// The store is a directory of files named by id, each with a small JSON
// record beside it (name, type, size, owner, expiry); the index and the
// per-user quota accounting are rebuilt from them at start.
package upload
