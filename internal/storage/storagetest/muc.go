package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// MUCStore is what the MUC suite needs: a room's archive and vCard are
// kept by Archive and PrivateData under the room's JID, and DeleteMUCRoom
// must remove them with the room.
type MUCStore interface {
	storage.MUC
	storage.Archive
	storage.PrivateData
}

// RunMUC checks the storage.MUC contract on fresh stores from newStore.
func RunMUC(t *testing.T, newStore func(t *testing.T) MUCStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s MUCStore)
	}{
		{"Rooms", testMUCRooms},
		{"RoomIsCopy", testMUCRoomIsCopy},
		{"RoomsByService", testMUCRoomsByService},
		{"RoomInvalid", testMUCRoomInvalid},
		{"Affiliations", testMUCAffiliations},
		{"AffiliationInvalid", testMUCAffiliationInvalid},
		{"TemporaryRoom", testMUCTemporaryRoom},
		{"Delete", testMUCDelete},
		{"Independence", testMUCIndependence},
		{"Concurrent", testMUCConcurrent},
		{"CanceledContext", testMUCCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

const (
	mucService = "conf.example.com"
	mucRoom    = "lobby@" + mucService
	mucOther   = "garden@" + mucService
)

// mucConfig is not valid UTF-8 and holds a NUL byte, so that a backend
// storing Config as text rather than bytes fails the round trip.
func mucConfig(n int) []byte {
	return fmt.Appendf([]byte{0x00, 0xff, 0xfe}, "<x xmlns='jabber:x:data'><field var='muc#roomconfig_roomname'><value>room %d</value></field></x>", n)
}

func mustPutRoom(t *testing.T, s MUCStore, room string, config []byte) {
	t.Helper()
	if err := s.PutMUCRoom(t.Context(), storage.MUCRoom{Room: room, Config: config}); err != nil {
		t.Fatalf("PutMUCRoom(%s): %v", room, err)
	}
}

func mustSetAffiliation(t *testing.T, s MUCStore, room string, a storage.MUCAffiliation) {
	t.Helper()
	if err := s.SetMUCAffiliation(t.Context(), room, a); err != nil {
		t.Fatalf("SetMUCAffiliation(%s, %+v): %v", room, a, err)
	}
}

func wantRoom(t *testing.T, s MUCStore, room string, config []byte) {
	t.Helper()
	got, err := s.MUCRoom(t.Context(), room)
	if err != nil {
		t.Fatalf("MUCRoom(%s): %v", room, err)
	}
	if got.Room != room || !bytes.Equal(got.Config, config) {
		t.Fatalf("MUCRoom(%s) = %q %q, want config %q", room, got.Room, got.Config, config)
	}
}

func wantRooms(t *testing.T, s MUCStore, service string, want ...storage.MUCRoom) {
	t.Helper()
	got, err := s.MUCRooms(t.Context(), service)
	if err != nil {
		t.Fatalf("MUCRooms(%s): %v", service, err)
	}
	if !slices.EqualFunc(got, want, func(a, b storage.MUCRoom) bool {
		return a.Room == b.Room && bytes.Equal(a.Config, b.Config)
	}) {
		t.Fatalf("MUCRooms(%s) = %q, want %q", service, got, want)
	}
}

func wantAffiliations(t *testing.T, s MUCStore, room string, want ...storage.MUCAffiliation) {
	t.Helper()
	got, err := s.MUCAffiliations(t.Context(), room)
	if err != nil {
		t.Fatalf("MUCAffiliations(%s): %v", room, err)
	}
	if len(want) == 0 && got != nil {
		t.Fatalf("MUCAffiliations(%s) = %+v, want nil", room, got)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("MUCAffiliations(%s) = %+v, want %+v", room, got, want)
	}
}

func testMUCRooms(t *testing.T, s MUCStore) {
	ctx := t.Context()
	_, err := s.MUCRoom(ctx, mucRoom)
	wantErr(t, "MUCRoom of empty store", err, storage.ErrNotFound)
	wantRooms(t, s, mucService)

	mustPutRoom(t, s, mucRoom, mucConfig(1))
	wantRoom(t, s, mucRoom, mucConfig(1))
	owner := storage.MUCAffiliation{JID: "alice@example.com", Affiliation: storage.AffiliationOwner}
	mustSetAffiliation(t, s, mucRoom, owner)

	// Replacing the configuration keeps the affiliations.
	mustPutRoom(t, s, mucRoom, mucConfig(2))
	wantRoom(t, s, mucRoom, mucConfig(2))
	wantAffiliations(t, s, mucRoom, owner)
	wantRooms(t, s, mucService, storage.MUCRoom{Room: mucRoom, Config: mucConfig(2)})

	// An empty configuration is a configuration: the room stays stored.
	mustPutRoom(t, s, mucRoom, nil)
	got, err := s.MUCRoom(ctx, mucRoom)
	if err != nil || got.Room != mucRoom || len(got.Config) != 0 {
		t.Fatalf("MUCRoom with empty config = %q %q, %v", got.Room, got.Config, err)
	}
	mustPutRoom(t, s, mucRoom, []byte{})
	wantRooms(t, s, mucService, storage.MUCRoom{Room: mucRoom})
}

func testMUCRoomIsCopy(t *testing.T, s MUCStore) {
	ctx := t.Context()
	config := mucConfig(1)
	mustPutRoom(t, s, mucRoom, config)
	// Neither the slice passed in nor the slices handed out may be the
	// store's own memory.
	config[0] = 'X'
	wantRoom(t, s, mucRoom, mucConfig(1))
	got, err := s.MUCRoom(ctx, mucRoom)
	if err != nil {
		t.Fatal(err)
	}
	got.Config[0] = 'Y'
	wantRoom(t, s, mucRoom, mucConfig(1))
	rooms, err := s.MUCRooms(ctx, mucService)
	if err != nil || len(rooms) != 1 {
		t.Fatalf("MUCRooms = %q, %v", rooms, err)
	}
	rooms[0].Config[0] = 'Z'
	wantRoom(t, s, mucRoom, mucConfig(1))
	affs := []storage.MUCAffiliation{{JID: "alice@example.com", Affiliation: storage.AffiliationMember, Nick: "alice"}}
	mustSetAffiliation(t, s, mucRoom, affs[0])
	got2, err := s.MUCAffiliations(ctx, mucRoom)
	if err != nil || len(got2) != 1 {
		t.Fatalf("MUCAffiliations = %+v, %v", got2, err)
	}
	got2[0].Nick = "mallory"
	wantAffiliations(t, s, mucRoom, affs...)
}

func testMUCRoomsByService(t *testing.T, s MUCStore) {
	// Byte order puts upper case and "_" before lower case, which a
	// linguistic collation would not.
	inService := []string{"b@" + mucService, "B@" + mucService, "_@" + mucService, "a@" + mucService}
	elsewhere := []string{
		"a@conf.example.org",
		"a@conf.example.com.evil", // the service is a prefix of the domain
		"a@xconf.example.com",     // the service is a suffix of the domain
		"a@example.com",           // the service's parent domain
	}
	for i, r := range append(slices.Clone(inService), elsewhere...) {
		mustPutRoom(t, s, r, mucConfig(i))
	}
	wantRooms(t, s, mucService,
		storage.MUCRoom{Room: "B@" + mucService, Config: mucConfig(1)},
		storage.MUCRoom{Room: "_@" + mucService, Config: mucConfig(2)},
		storage.MUCRoom{Room: "a@" + mucService, Config: mucConfig(3)},
		storage.MUCRoom{Room: "b@" + mucService, Config: mucConfig(0)},
	)
	wantRooms(t, s, "conf.example.org", storage.MUCRoom{Room: "a@conf.example.org", Config: mucConfig(4)})
	wantRooms(t, s, "conf.example.com.evil", storage.MUCRoom{Room: "a@conf.example.com.evil", Config: mucConfig(5)})
	wantRooms(t, s, "example.com", storage.MUCRoom{Room: "a@example.com", Config: mucConfig(7)})
	wantRooms(t, s, "example.net")
	wantRooms(t, s, "")
	// Room JIDs are compared byte for byte: no case folding.
	_, err := s.MUCRoom(t.Context(), "A@"+mucService)
	wantErr(t, "MUCRoom in other case", err, storage.ErrNotFound)
	wantRooms(t, s, "CONF.example.com")
}

func testMUCRoomInvalid(t *testing.T, s MUCStore) {
	for _, room := range []string{
		"",
		mucService,               // no local part
		"@" + mucService,         // empty local part
		"lobby@",                 // no domain
		mucRoom + "/alice",       // a resource
		"lobby@conf@example.com", // two domains
	} {
		err := s.PutMUCRoom(t.Context(), storage.MUCRoom{Room: room, Config: mucConfig(1)})
		wantErr(t, fmt.Sprintf("PutMUCRoom(%q)", room), err, storage.ErrInvalid)
	}
	wantRooms(t, s, mucService)
	wantRooms(t, s, "")
	_, err := s.MUCRoom(t.Context(), mucService)
	wantErr(t, "MUCRoom of a domain", err, storage.ErrNotFound)
}

func testMUCAffiliations(t *testing.T, s MUCStore) {
	mustPutRoom(t, s, mucRoom, mucConfig(1))
	wantAffiliations(t, s, mucRoom)
	alice := storage.MUCAffiliation{JID: "alice@example.com", Affiliation: storage.AffiliationMember, Nick: "Alice ✓", Reason: "invited by Bob"}
	bob := storage.MUCAffiliation{JID: "bob@example.com", Affiliation: storage.AffiliationOwner}
	carol := storage.MUCAffiliation{JID: "Carol@example.com", Affiliation: storage.AffiliationAdmin, Reason: "moderates"}
	ban := storage.MUCAffiliation{JID: "spam.example", Affiliation: storage.AffiliationOutcast, Reason: "spam"}
	for _, a := range []storage.MUCAffiliation{alice, bob, carol, ban} {
		mustSetAffiliation(t, s, mucRoom, a)
	}
	// Sorted by JID in byte order: "C" before "a".
	wantAffiliations(t, s, mucRoom, carol, alice, bob, ban)

	// A JID's new affiliation replaces the old one, nick and reason
	// included.
	alice2 := storage.MUCAffiliation{JID: alice.JID, Affiliation: storage.AffiliationAdmin, Reason: "promoted"}
	mustSetAffiliation(t, s, mucRoom, alice2)
	wantAffiliations(t, s, mucRoom, carol, alice2, bob, ban)

	// "none" removes the record; removing what is not there is no error.
	mustSetAffiliation(t, s, mucRoom, storage.MUCAffiliation{JID: bob.JID, Affiliation: storage.AffiliationNone})
	mustSetAffiliation(t, s, mucRoom, storage.MUCAffiliation{JID: "dave@example.com", Affiliation: storage.AffiliationNone, Reason: "x"})
	wantAffiliations(t, s, mucRoom, carol, alice2, ban)
	for _, a := range []storage.MUCAffiliation{carol, alice2, ban} {
		mustSetAffiliation(t, s, mucRoom, storage.MUCAffiliation{JID: a.JID, Affiliation: storage.AffiliationNone})
	}
	wantAffiliations(t, s, mucRoom)
	// Removing every affiliation leaves the room.
	wantRoom(t, s, mucRoom, mucConfig(1))
}

func testMUCAffiliationInvalid(t *testing.T, s MUCStore) {
	mustPutRoom(t, s, mucRoom, mucConfig(1))
	for _, tt := range []struct {
		name string
		room string
		a    storage.MUCAffiliation
	}{
		{"unknown affiliation", mucRoom, storage.MUCAffiliation{JID: "alice@example.com", Affiliation: "moderator"}},
		{"upper case affiliation", mucRoom, storage.MUCAffiliation{JID: "alice@example.com", Affiliation: "Owner"}},
		{"empty affiliation", mucRoom, storage.MUCAffiliation{JID: "alice@example.com"}},
		{"empty JID", mucRoom, storage.MUCAffiliation{Affiliation: storage.AffiliationMember}},
		{"room without local part", mucService, storage.MUCAffiliation{JID: "alice@example.com", Affiliation: storage.AffiliationMember}},
		{"room with resource", mucRoom + "/x", storage.MUCAffiliation{JID: "alice@example.com", Affiliation: storage.AffiliationMember}},
	} {
		wantErr(t, tt.name, s.SetMUCAffiliation(t.Context(), tt.room, tt.a), storage.ErrInvalid)
	}
	wantAffiliations(t, s, mucRoom)
	wantAffiliations(t, s, mucService)
	wantAffiliations(t, s, mucRoom+"/x")
}

func testMUCTemporaryRoom(t *testing.T, s MUCStore) {
	// A temporary room is never stored, but its affiliations are.
	owner := storage.MUCAffiliation{JID: "alice@example.com", Affiliation: storage.AffiliationOwner, Nick: "alice"}
	member := storage.MUCAffiliation{JID: "bob@example.com", Affiliation: storage.AffiliationMember}
	mustSetAffiliation(t, s, mucRoom, owner)
	mustSetAffiliation(t, s, mucRoom, member)
	wantAffiliations(t, s, mucRoom, owner, member)
	_, err := s.MUCRoom(t.Context(), mucRoom)
	wantErr(t, "MUCRoom of a temporary room", err, storage.ErrNotFound)
	wantRooms(t, s, mucService)

	// Made persistent, the room keeps them.
	mustPutRoom(t, s, mucRoom, mucConfig(1))
	wantAffiliations(t, s, mucRoom, owner, member)
	if err := s.DeleteMUCRoom(t.Context(), mucRoom); err != nil {
		t.Fatal(err)
	}
	wantAffiliations(t, s, mucRoom)

	// Destroyed while temporary, the room is not found, and its
	// affiliations go all the same.
	mustSetAffiliation(t, s, mucOther, owner)
	wantErr(t, "DeleteMUCRoom of a temporary room", s.DeleteMUCRoom(t.Context(), mucOther), storage.ErrNotFound)
	wantAffiliations(t, s, mucOther)
}

// mucResidue stores, under jid as the user, what DeleteMUCRoom must remove
// for a room: an archived message, archiving preferences and a vCard.
func mucResidue(t *testing.T, s MUCStore, jid, with string) {
	t.Helper()
	ctx := t.Context()
	m := storage.ArchivedMessage{ID: "0001", Stamp: time.UnixMicro(1_700_000_000_000_000), With: with, Stanza: []byte("<message/>")}
	if err := s.AppendArchive(ctx, jid, m); err != nil {
		t.Fatalf("AppendArchive(%s): %v", jid, err)
	}
	if err := s.SetArchivePrefs(ctx, jid, storage.ArchivePrefs{Default: storage.ArchiveAlways, Never: []string{"spam@example.com"}}); err != nil {
		t.Fatalf("SetArchivePrefs(%s): %v", jid, err)
	}
	if err := s.SetPrivateXML(ctx, jid, "vcard-temp", []byte("<vCard xmlns='vcard-temp'/>")); err != nil {
		t.Fatalf("SetPrivateXML(%s): %v", jid, err)
	}
}

func wantResidue(t *testing.T, s MUCStore, jid string, kept bool) {
	t.Helper()
	ctx := t.Context()
	page, err := s.QueryArchive(ctx, jid, storage.ArchiveQuery{Max: 10})
	if err != nil {
		t.Fatalf("QueryArchive(%s): %v", jid, err)
	}
	_, prefsErr := s.ArchivePrefs(ctx, jid)
	_, vcardErr := s.PrivateXML(ctx, jid, "vcard-temp")
	if kept {
		if page.Count != 1 || prefsErr != nil || vcardErr != nil {
			t.Fatalf("%s lost data: archive count %d, prefs %v, vCard %v", jid, page.Count, prefsErr, vcardErr)
		}
		return
	}
	if page.Count != 0 {
		t.Fatalf("%s: %d archived messages left", jid, page.Count)
	}
	wantErr(t, jid+": archive prefs", prefsErr, storage.ErrNotFound)
	wantErr(t, jid+": vCard", vcardErr, storage.ErrNotFound)
}

func testMUCDelete(t *testing.T, s MUCStore) {
	ctx := t.Context()
	const alice = "alice@example.com"
	wantErr(t, "DeleteMUCRoom of empty store", s.DeleteMUCRoom(ctx, mucRoom), storage.ErrNotFound)
	owner := storage.MUCAffiliation{JID: alice, Affiliation: storage.AffiliationOwner}
	for _, r := range []string{mucRoom, mucOther} {
		mustPutRoom(t, s, r, mucConfig(1))
		mustSetAffiliation(t, s, r, owner)
		mucResidue(t, s, r, alice)
	}
	// Alice's own archive of her messages with the room is hers.
	mucResidue(t, s, alice, mucRoom)

	if err := s.DeleteMUCRoom(ctx, mucRoom); err != nil {
		t.Fatalf("DeleteMUCRoom: %v", err)
	}
	_, err := s.MUCRoom(ctx, mucRoom)
	wantErr(t, "MUCRoom after delete", err, storage.ErrNotFound)
	wantAffiliations(t, s, mucRoom)
	wantResidue(t, s, mucRoom, false)
	wantRooms(t, s, mucService, storage.MUCRoom{Room: mucOther, Config: mucConfig(1)})
	wantAffiliations(t, s, mucOther, owner)
	wantResidue(t, s, mucOther, true)
	wantResidue(t, s, alice, true)
	wantErr(t, "DeleteMUCRoom twice", s.DeleteMUCRoom(ctx, mucRoom), storage.ErrNotFound)

	// A room created again under the same JID starts empty.
	mustPutRoom(t, s, mucRoom, mucConfig(2))
	wantRoom(t, s, mucRoom, mucConfig(2))
	wantAffiliations(t, s, mucRoom)
}

func testMUCIndependence(t *testing.T, s MUCStore) {
	a := storage.MUCAffiliation{JID: "alice@example.com", Affiliation: storage.AffiliationOwner, Nick: "alice"}
	b := storage.MUCAffiliation{JID: "alice@example.com", Affiliation: storage.AffiliationOutcast, Reason: "trolling"}
	mustPutRoom(t, s, mucRoom, mucConfig(1))
	mustPutRoom(t, s, mucOther, mucConfig(2))
	mustSetAffiliation(t, s, mucRoom, a)
	mustSetAffiliation(t, s, mucOther, b)
	wantAffiliations(t, s, mucRoom, a)
	wantAffiliations(t, s, mucOther, b)
	mustPutRoom(t, s, mucRoom, mucConfig(3))
	wantRoom(t, s, mucOther, mucConfig(2))
	mustSetAffiliation(t, s, mucOther, storage.MUCAffiliation{JID: b.JID, Affiliation: storage.AffiliationNone})
	wantAffiliations(t, s, mucRoom, a)
	wantAffiliations(t, s, mucOther)
	// The same local part at another service is another room.
	wantAffiliations(t, s, "lobby@conf.example.org")
	_, err := s.MUCRoom(t.Context(), "lobby@conf.example.org")
	wantErr(t, "MUCRoom at another service", err, storage.ErrNotFound)
}

func testMUCConcurrent(t *testing.T, s MUCStore) {
	mustPutRoom(t, s, mucRoom, mucConfig(1))
	const n = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		want []storage.MUCAffiliation
	)
	for i := range n {
		a := storage.MUCAffiliation{JID: fmt.Sprintf("u%02d@example.com", i), Affiliation: storage.AffiliationMember, Nick: fmt.Sprintf("u%d", i)}
		want = append(want, a)
		wg.Go(func() {
			err := s.SetMUCAffiliation(t.Context(), mucRoom, a)
			if err == nil {
				err = s.PutMUCRoom(t.Context(), storage.MUCRoom{Room: mucRoom, Config: mucConfig(i)})
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	wantAffiliations(t, s, mucRoom, want...)
}

func testMUCCanceledContext(t *testing.T, s MUCStore) {
	mustPutRoom(t, s, mucRoom, mucConfig(1))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	wantErr(t, "PutMUCRoom", s.PutMUCRoom(ctx, storage.MUCRoom{Room: mucOther, Config: mucConfig(2)}), context.Canceled)
	wantErr(t, "SetMUCAffiliation", s.SetMUCAffiliation(ctx, mucRoom, storage.MUCAffiliation{JID: "alice@example.com", Affiliation: storage.AffiliationOwner}), context.Canceled)
	wantErr(t, "DeleteMUCRoom", s.DeleteMUCRoom(ctx, mucRoom), context.Canceled)
	_, err := s.MUCRoom(ctx, mucRoom)
	wantErr(t, "MUCRoom", err, context.Canceled)
	_, err = s.MUCRooms(ctx, mucService)
	wantErr(t, "MUCRooms", err, context.Canceled)
	_, err = s.MUCAffiliations(ctx, mucRoom)
	wantErr(t, "MUCAffiliations", err, context.Canceled)
	// Nothing may have changed with the canceled context.
	wantRooms(t, s, mucService, storage.MUCRoom{Room: mucRoom, Config: mucConfig(1)})
	wantAffiliations(t, s, mucRoom)
}
