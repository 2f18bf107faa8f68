package migrate

import (
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/muc/room"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// Data is what a reader found, or what an export writes.
type Data struct {
	// Users are the accounts with their data, in input order.
	Users []*User
	// Rooms are the persistent multi-user chat rooms.
	Rooms []*Room
	// Skipped names what the input held that is not imported, each
	// kind once with how often it occurred.
	Skipped []Skip

	// included are the files that files read so far included, so that
	// a directory import does not read them twice.
	included []string
}

// Skip is one kind of thing an import leaves out.
type Skip struct {
	What  string
	Count int
}

// skip records that something was not imported.
func (d *Data) skip(what string) {
	for i := range d.Skipped {
		if d.Skipped[i].What == what {
			d.Skipped[i].Count++
			return
		}
	}
	d.Skipped = append(d.Skipped, Skip{What: what, Count: 1})
}

// User is one account and what belongs to it.
type User struct {
	// JID is the bare JID, prepared.
	JID string
	// Source says where the user was read ("file.xml:12"), for messages.
	Source string
	// Password is the clear-text password when the input had one; the
	// importer derives SCRAM keys from it.
	Password string
	// Credentials are SCRAM keys as the other server kept them.
	Credentials []storage.Credential
	// Roster is the roster, with pending incoming requests as items
	// with PendingIn.
	Roster []storage.RosterItem
	// VCard is the serialised vcard-temp element, nil if none.
	VCard []byte
	// Private is private XML storage (XEP-0049).
	Private []PrivateItem
	// Offline are messages stored while the user was offline.
	Offline []OfflineMessage
	// PEP are the personal eventing nodes.
	PEP []PEPNode
	// Archive is the message archive (XEP-0313), oldest first.
	Archive []ArchivedMessage
}

// ArchivedMessage is one message of a user's archive: the serialised
// message (default namespace jabber:client), when it was archived, and
// the bare JID of the other party.
type ArchivedMessage struct {
	Stanza []byte
	Stamp  time.Time
	With   string
}

// PrivateItem is one private XML document and the namespace it is kept
// under.
type PrivateItem struct {
	Key string
	XML []byte
}

// OfflineMessage is one stored message: the serialised stanza, default
// namespace jabber:client, with a delay element.
type OfflineMessage struct {
	Stanza []byte
	Stored time.Time
}

// PEPNode is one personal eventing node and its items, oldest first.
type PEPNode struct {
	Config storage.PEPNode
	Items  []storage.PEPItem
}

// Room is one persistent room.
type Room struct {
	// JID is the room's bare JID.
	JID string
	// Source says where the room was read.
	Source string
	// State is the configuration and subject as the conference service
	// keeps them.
	State room.State
	// Affiliations are the room's owners, admins, members and outcasts.
	Affiliations []storage.MUCAffiliation
}
