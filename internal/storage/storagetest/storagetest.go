// Package storagetest is the conformance suite every storage backend runs,
// so that the memory, SQLite and PostgreSQL backends cannot drift apart.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// Run checks that the stores returned by newStore honour the storage
// contracts. newStore must return a fresh, empty store for each call and
// arrange its own cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"CreateAccount", testCreateAccount},
		{"CreateAccountInvalid", testCreateAccountInvalid},
		{"CreateAccountConcurrent", testCreateAccountConcurrent},
		{"Credential", testCredential},
		{"CredentialIsCopy", testCredentialIsCopy},
		{"SetCredentials", testSetCredentials},
		{"DeleteAccount", testDeleteAccount},
		{"ListAccounts", testListAccounts},
		{"RosterEmpty", testRosterEmpty},
		{"RosterRoundTrip", testRosterRoundTrip},
		{"RosterReplace", testRosterReplace},
		{"RosterSorted", testRosterSorted},
		{"RosterGroups", testRosterGroups},
		{"RosterVersion", testRosterVersion},
		{"RosterDelete", testRosterDelete},
		{"RosterInvalid", testRosterInvalid},
		{"RosterIsolation", testRosterIsolation},
		{"RosterConcurrent", testRosterConcurrent},
		{"CanceledContext", testCanceledContext},
		{"Offline", testOffline},
		{"OfflineEvents", testOfflineEvents},
		{"Blocklist", testBlocklist},
		{"PrivateData", testPrivateData},
		{"ArchivePaging", testArchivePaging},
		{"ArchiveFilters", testArchiveFilters},
		{"ArchiveRetention", testArchiveRetention},
		{"ArchivePrefs", testArchivePrefs},
		{"ArchiveBatch", testArchiveBatch},
		{"ArchiveBigBatch", testArchiveBigBatch},
		{"ArchivedEvent", testArchivedEvent},
		{"ArchiveReplace", testArchiveReplace},
		{"ArchiveReplaceNotFound", testArchiveReplaceNotFound},
		{"ArchiveReplaceIsCopy", testArchiveReplaceIsCopy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

func cred(hash string, seed byte) storage.Credential {
	return storage.Credential{
		Hash:       hash,
		Salt:       []byte{seed, 1, 2, 3},
		Iterations: 4096 + int(seed),
		StoredKey:  bytes.Repeat([]byte{seed, 0xaa}, 16),
		ServerKey:  bytes.Repeat([]byte{seed, 0x55}, 16),
	}
}

func equalCred(a, b storage.Credential) bool {
	return a.Hash == b.Hash && a.Iterations == b.Iterations && bytes.Equal(a.Salt, b.Salt) &&
		bytes.Equal(a.StoredKey, b.StoredKey) && bytes.Equal(a.ServerKey, b.ServerKey)
}

func mustCreate(t *testing.T, s storage.Store, user string, creds ...storage.Credential) {
	t.Helper()
	if err := s.CreateAccount(t.Context(), user, creds); err != nil {
		t.Fatalf("CreateAccount(%s): %v", user, err)
	}
}

func mustPut(t *testing.T, s storage.Store, user string, item storage.RosterItem) int64 {
	t.Helper()
	v, err := s.PutRosterItem(t.Context(), user, item)
	if err != nil {
		t.Fatalf("PutRosterItem(%s, %s): %v", user, item.Contact, err)
	}
	return v
}

func wantCred(t *testing.T, s storage.Store, user string, want storage.Credential) {
	t.Helper()
	got, err := s.Credential(t.Context(), user, want.Hash)
	if err != nil {
		t.Fatalf("Credential(%s, %s): %v", user, want.Hash, err)
	}
	if !equalCred(got, want) {
		t.Fatalf("Credential(%s, %s) = %+v, want %+v", user, want.Hash, got, want)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want %v", what, err, target)
	}
}

func wantItems(t *testing.T, s storage.Store, user string, want []storage.RosterItem, wantVer int64) {
	t.Helper()
	got, ver, err := s.RosterItems(t.Context(), user)
	if err != nil {
		t.Fatalf("RosterItems(%s): %v", user, err)
	}
	if !reflect.DeepEqual(got, want) || ver != wantVer {
		t.Fatalf("RosterItems(%s) = %+v, %d\nwant %+v, %d", user, got, ver, want, wantVer)
	}
}

func testCreateAccount(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c1, c256 := cred("SHA-1", 1), cred("SHA-256", 2)
	mustCreate(t, s, "juliet@example.com", c1, c256)
	wantCred(t, s, "juliet@example.com", c1)
	wantCred(t, s, "juliet@example.com", c256)

	err := s.CreateAccount(ctx, "juliet@example.com", []storage.Credential{cred("SHA-512", 3)})
	wantErr(t, "CreateAccount of existing user", err, storage.ErrExists)
	// The failed attempt must not have touched the existing credentials.
	wantCred(t, s, "juliet@example.com", c256)
	_, err = s.Credential(ctx, "juliet@example.com", "SHA-512")
	wantErr(t, "Credential after failed create", err, storage.ErrNotFound)

	// Accounts without credentials exist for externally authenticated users.
	mustCreate(t, s, "romeo@example.net")
	_, err = s.Credential(ctx, "romeo@example.net", "SHA-1")
	wantErr(t, "Credential of account without credentials", err, storage.ErrNotFound)
	wantErr(t, "CreateAccount of existing user without credentials",
		s.CreateAccount(ctx, "romeo@example.net", nil), storage.ErrExists)
}

func testCreateAccountInvalid(t *testing.T, s storage.Store) {
	ctx := t.Context()
	tests := []struct {
		name  string
		user  string
		creds []storage.Credential
	}{
		{"no local part", "example.com", nil},
		{"empty user", "", nil},
		{"full JID", "juliet@example.com/balcony", nil},
		{"duplicate hash", "juliet@example.com", []storage.Credential{cred("SHA-1", 1), cred("SHA-1", 2)}},
		{"no iterations", "juliet@example.com", []storage.Credential{{Hash: "SHA-1", Salt: []byte{1}, StoredKey: []byte{1}, ServerKey: []byte{1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, "CreateAccount", s.CreateAccount(ctx, tt.user, tt.creds), storage.ErrInvalid)
		})
	}
	users, err := s.ListAccounts(ctx, "")
	if err != nil || len(users) != 0 {
		t.Fatalf("ListAccounts after invalid creates = %v, %v; want none", users, err)
	}
}

func testCreateAccountConcurrent(t *testing.T, s storage.Store) {
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.CreateAccount(t.Context(), "race@example.com", []storage.Credential{cred("SHA-256", byte(i))})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("CreateAccount succeeded twice (goroutines %d and %d)", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrExists):
			t.Fatalf("CreateAccount in goroutine %d: %v, want ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no concurrent CreateAccount succeeded")
	}
	// The stored credential must be the winner's, not a mix of attempts.
	wantCred(t, s, "race@example.com", cred("SHA-256", byte(winner)))
}

func testCredential(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustCreate(t, s, "juliet@example.com", cred("SHA-1", 1))
	tests := []struct {
		name, user, hash string
	}{
		{"unknown user", "nobody@example.com", "SHA-1"},
		{"unknown hash", "juliet@example.com", "SHA-256"},
		{"hash is case sensitive", "juliet@example.com", "sha-1"},
		{"other domain", "juliet@example.org", "SHA-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Credential(ctx, tt.user, tt.hash)
			wantErr(t, "Credential", err, storage.ErrNotFound)
		})
	}
}

func testCredentialIsCopy(t *testing.T, s storage.Store) {
	in := cred("SHA-1", 1)
	mustCreate(t, s, "juliet@example.com", in)
	in.Salt[0], in.StoredKey[0], in.ServerKey[0] = 0xff, 0xff, 0xff
	got, err := s.Credential(t.Context(), "juliet@example.com", "SHA-1")
	if err != nil {
		t.Fatal(err)
	}
	want := cred("SHA-1", 1)
	if !equalCred(got, want) {
		t.Fatalf("store kept caller's slices: got %+v", got)
	}
	got.Salt[0], got.StoredKey[0], got.ServerKey[0] = 0xff, 0xff, 0xff
	wantCred(t, s, "juliet@example.com", want)
}

func testSetCredentials(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustCreate(t, s, "juliet@example.com", cred("SHA-1", 1), cred("SHA-256", 2))
	n256, n512 := cred("SHA-256", 7), cred("SHA-512", 8)
	if err := s.SetCredentials(ctx, "juliet@example.com", []storage.Credential{n256, n512}); err != nil {
		t.Fatalf("SetCredentials: %v", err)
	}
	wantCred(t, s, "juliet@example.com", n256)
	wantCred(t, s, "juliet@example.com", n512)
	_, err := s.Credential(ctx, "juliet@example.com", "SHA-1")
	wantErr(t, "Credential of replaced hash", err, storage.ErrNotFound)

	wantErr(t, "SetCredentials of unknown user",
		s.SetCredentials(ctx, "nobody@example.com", []storage.Credential{n256}), storage.ErrNotFound)
	wantErr(t, "SetCredentials with duplicates",
		s.SetCredentials(ctx, "juliet@example.com", []storage.Credential{n256, n256}), storage.ErrInvalid)
	// A rejected replacement must leave the previous set in place.
	wantCred(t, s, "juliet@example.com", n512)

	if err := s.SetCredentials(ctx, "juliet@example.com", nil); err != nil {
		t.Fatalf("SetCredentials(nil): %v", err)
	}
	_, err = s.Credential(ctx, "juliet@example.com", "SHA-256")
	wantErr(t, "Credential after clearing", err, storage.ErrNotFound)
}

func testDeleteAccount(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustCreate(t, s, "juliet@example.com", cred("SHA-1", 1))
	mustCreate(t, s, "romeo@example.net", cred("SHA-1", 2))
	mustPut(t, s, "juliet@example.com", storage.RosterItem{Contact: "romeo@example.net", Subscription: "both", Groups: []string{"Friends"}})
	mustPut(t, s, "juliet@example.com", storage.RosterItem{Contact: "nurse@example.com"})
	romeoItem := storage.RosterItem{Contact: "juliet@example.com", Subscription: "both"}
	mustPut(t, s, "romeo@example.net", romeoItem)

	if err := s.DeleteAccount(ctx, "juliet@example.com"); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	_, err := s.Credential(ctx, "juliet@example.com", "SHA-1")
	wantErr(t, "Credential of deleted user", err, storage.ErrNotFound)
	_, err = s.RosterItem(ctx, "juliet@example.com", "romeo@example.net")
	wantErr(t, "RosterItem of deleted user", err, storage.ErrNotFound)
	items, _, err := s.RosterItems(ctx, "juliet@example.com")
	if err != nil || items != nil {
		t.Fatalf("RosterItems of deleted user = %+v, %v; want nil", items, err)
	}
	wantErr(t, "DeleteAccount twice", s.DeleteAccount(ctx, "juliet@example.com"), storage.ErrNotFound)
	wantErr(t, "DeleteAccount of unknown user", s.DeleteAccount(ctx, "nobody@example.com"), storage.ErrNotFound)

	// Other users keep their data.
	wantCred(t, s, "romeo@example.net", cred("SHA-1", 2))
	wantItems(t, s, "romeo@example.net", []storage.RosterItem{romeoItem}, 1)
	users, err := s.ListAccounts(ctx, "")
	if err != nil || !slices.Equal(users, []string{"romeo@example.net"}) {
		t.Fatalf("ListAccounts after delete = %v, %v", users, err)
	}

	// The name is free again, and the new account starts empty.
	mustCreate(t, s, "juliet@example.com", cred("SHA-256", 3))
	_, err = s.Credential(ctx, "juliet@example.com", "SHA-1")
	wantErr(t, "Credential of old account after re-create", err, storage.ErrNotFound)
	items, _, err = s.RosterItems(ctx, "juliet@example.com")
	if err != nil || items != nil {
		t.Fatalf("RosterItems after re-create = %+v, %v; want nil", items, err)
	}
}

func testListAccounts(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for _, u := range []string{"romeo@example.net", "juliet@example.com", "benvolio@example.net", "nurse@example.com", "mercutio@sub.example.net"} {
		mustCreate(t, s, u)
	}
	tests := []struct {
		domain string
		want   []string
	}{
		{"", []string{"benvolio@example.net", "juliet@example.com", "mercutio@sub.example.net", "nurse@example.com", "romeo@example.net"}},
		{"example.com", []string{"juliet@example.com", "nurse@example.com"}},
		{"example.net", []string{"benvolio@example.net", "romeo@example.net"}},
		{"sub.example.net", []string{"mercutio@sub.example.net"}},
		{"example.org", nil},
		{"net", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("domain=%q", tt.domain), func(t *testing.T) {
			got, err := s.ListAccounts(ctx, tt.domain)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ListAccounts(%q) = %v, want %v", tt.domain, got, tt.want)
			}
		})
	}
}

func testRosterEmpty(t *testing.T, s storage.Store) {
	mustCreate(t, s, "juliet@example.com")
	wantItems(t, s, "juliet@example.com", nil, 0)
	wantItems(t, s, "nobody@example.com", nil, 0)
	_, err := s.RosterItem(t.Context(), "juliet@example.com", "romeo@example.net")
	wantErr(t, "RosterItem in empty roster", err, storage.ErrNotFound)
}

func testRosterRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustCreate(t, s, "juliet@example.com")
	items := []storage.RosterItem{
		{Contact: "a@example.net", Name: "Romeo Montague", Subscription: "both", Groups: []string{"Friends", "Verona"}},
		{Contact: "b@example.net", Subscription: "none", Ask: true},
		{Contact: "c@example.net", Subscription: "to", PendingIn: true},
		{Contact: "d@example.net", Subscription: "from", Approved: true},
		{Contact: "e@example.net", Name: "ünïcödé ✓", Subscription: "none", Ask: true, PendingIn: true, Approved: true, Groups: []string{"Ω"}},
	}
	for _, item := range items {
		mustPut(t, s, "juliet@example.com", item)
		got, err := s.RosterItem(ctx, "juliet@example.com", item.Contact)
		if err != nil {
			t.Fatalf("RosterItem(%s): %v", item.Contact, err)
		}
		if !reflect.DeepEqual(got, item) {
			t.Fatalf("RosterItem(%s) = %+v, want %+v", item.Contact, got, item)
		}
	}
	wantItems(t, s, "juliet@example.com", items, int64(len(items)))
}

func testRosterReplace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	first := storage.RosterItem{Contact: "romeo@example.net", Name: "R", Subscription: "none", Ask: true, Groups: []string{"A", "B"}}
	mustPut(t, s, "juliet@example.com", first)
	second := storage.RosterItem{Contact: "romeo@example.net", Subscription: "both", Groups: []string{"C"}}
	mustPut(t, s, "juliet@example.com", second)
	got, err := s.RosterItem(ctx, "juliet@example.com", "romeo@example.net")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, second) {
		t.Fatalf("replaced item = %+v, want %+v", got, second)
	}
	third := storage.RosterItem{Contact: "romeo@example.net", Subscription: "both"}
	mustPut(t, s, "juliet@example.com", third)
	wantItems(t, s, "juliet@example.com", []storage.RosterItem{third}, 3)
}

func testRosterSorted(t *testing.T, s storage.Store) {
	contacts := []string{"zed@example.net", "Alice@example.net", "bob@example.com", "alice@example.net", "bob@example.co"}
	for _, c := range contacts {
		mustPut(t, s, "juliet@example.com", storage.RosterItem{Contact: c, Subscription: "none"})
	}
	slices.Sort(contacts)
	var want []storage.RosterItem
	for _, c := range contacts {
		want = append(want, storage.RosterItem{Contact: c, Subscription: "none"})
	}
	wantItems(t, s, "juliet@example.com", want, int64(len(contacts)))
}

func testRosterGroups(t *testing.T, s storage.Store) {
	ctx := t.Context()
	tests := []struct {
		name   string
		groups []string
		want   []string
	}{
		{"nil", nil, nil},
		{"empty", []string{}, nil},
		{"one", []string{"Friends"}, []string{"Friends"}},
		{"sorted", []string{"b", "a", "c"}, []string{"a", "b", "c"}},
		{"duplicates", []string{"x", "x", "y", "x"}, []string{"x", "y"}},
		{"case kept", []string{"friends", "Friends"}, []string{"Friends", "friends"}},
		{"spaces and unicode", []string{"  padded  ", "Família", "家族"}, []string{"  padded  ", "Família", "家族"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.groups)
			mustPut(t, s, "juliet@example.com", storage.RosterItem{Contact: "romeo@example.net", Subscription: "both", Groups: in})
			got, err := s.RosterItem(ctx, "juliet@example.com", "romeo@example.net")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Groups, tt.want) {
				t.Fatalf("Groups = %#v, want %#v", got.Groups, tt.want)
			}
			if !slices.Equal(in, tt.groups) {
				t.Fatalf("PutRosterItem changed the caller's groups: %v", in)
			}
			if len(got.Groups) > 0 {
				got.Groups[0] = "changed"
				again, err := s.RosterItem(ctx, "juliet@example.com", "romeo@example.net")
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(again.Groups, tt.want) {
					t.Fatalf("store shares groups with caller: %v", again.Groups)
				}
			}
		})
	}
}

func testRosterVersion(t *testing.T, s storage.Store) {
	ctx := t.Context()
	user := "juliet@example.com"
	var last int64
	check := func(what string, v int64) {
		t.Helper()
		if v <= last {
			t.Fatalf("%s: version %d not above previous %d", what, v, last)
		}
		_, cur, err := s.RosterItems(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if cur != v {
			t.Fatalf("%s: RosterItems version %d, PutRosterItem/DeleteRosterItem returned %d", what, cur, v)
		}
		last = v
	}
	check("put a", mustPut(t, s, user, storage.RosterItem{Contact: "a@example.net"}))
	check("put b", mustPut(t, s, user, storage.RosterItem{Contact: "b@example.net"}))
	check("replace a", mustPut(t, s, user, storage.RosterItem{Contact: "a@example.net", Subscription: "to"}))
	check("same again", mustPut(t, s, user, storage.RosterItem{Contact: "a@example.net", Subscription: "to"}))
	v, err := s.DeleteRosterItem(ctx, user, "a@example.net")
	if err != nil {
		t.Fatal(err)
	}
	check("delete a", v)
	v, err = s.DeleteRosterItem(ctx, user, "b@example.net")
	if err != nil {
		t.Fatal(err)
	}
	check("delete b", v)
	// An emptied roster keeps its version, so clients caching an older
	// one still learn that items were removed.
	wantItems(t, s, user, nil, last)
	check("put after empty", mustPut(t, s, user, storage.RosterItem{Contact: "c@example.net"}))
}

func testRosterDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	user := "juliet@example.com"
	keep := storage.RosterItem{Contact: "nurse@example.com", Subscription: "from", Groups: []string{"Household"}}
	mustPut(t, s, user, storage.RosterItem{Contact: "romeo@example.net", Subscription: "both", Groups: []string{"Friends"}})
	v := mustPut(t, s, user, keep)

	tests := []struct {
		name, user, contact string
	}{
		{"unknown contact", user, "tybalt@example.net"},
		{"unknown user", "nobody@example.com", "romeo@example.net"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.DeleteRosterItem(ctx, tt.user, tt.contact)
			wantErr(t, "DeleteRosterItem", err, storage.ErrNotFound)
		})
	}
	_, cur, err := s.RosterItems(ctx, user)
	if err != nil || cur != v {
		t.Fatalf("version after failed deletes = %d, %v; want %d", cur, err, v)
	}

	if _, err := s.DeleteRosterItem(ctx, user, "romeo@example.net"); err != nil {
		t.Fatalf("DeleteRosterItem: %v", err)
	}
	_, err = s.RosterItem(ctx, user, "romeo@example.net")
	wantErr(t, "RosterItem after delete", err, storage.ErrNotFound)
	_, err = s.DeleteRosterItem(ctx, user, "romeo@example.net")
	wantErr(t, "DeleteRosterItem twice", err, storage.ErrNotFound)
	wantItems(t, s, user, []storage.RosterItem{keep}, v+1)

	// Re-adding a deleted contact must not resurrect its old groups.
	readded := storage.RosterItem{Contact: "romeo@example.net", Subscription: "none"}
	mustPut(t, s, user, readded)
	got, err := s.RosterItem(ctx, user, "romeo@example.net")
	if err != nil || !reflect.DeepEqual(got, readded) {
		t.Fatalf("re-added item = %+v, %v; want %+v", got, err, readded)
	}
}

func testRosterInvalid(t *testing.T, s storage.Store) {
	ctx := t.Context()
	user := "juliet@example.com"
	v := mustPut(t, s, user, storage.RosterItem{Contact: "romeo@example.net"})
	tests := []struct {
		name string
		item storage.RosterItem
	}{
		{"no contact", storage.RosterItem{Subscription: "both"}},
		{"unknown subscription", storage.RosterItem{Contact: "romeo@example.net", Subscription: "remove"}},
		{"subscription case", storage.RosterItem{Contact: "romeo@example.net", Subscription: "Both"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.PutRosterItem(ctx, user, tt.item)
			wantErr(t, "PutRosterItem", err, storage.ErrInvalid)
		})
	}
	wantItems(t, s, user, []storage.RosterItem{{Contact: "romeo@example.net", Subscription: "none"}}, v)
}

func testRosterIsolation(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := storage.RosterItem{Contact: "romeo@example.net", Name: "for juliet", Subscription: "both", Groups: []string{"J"}}
	b := storage.RosterItem{Contact: "romeo@example.net", Name: "for nurse", Subscription: "none", Groups: []string{"N"}}
	mustPut(t, s, "juliet@example.com", a)
	mustPut(t, s, "juliet@example.com", storage.RosterItem{Contact: "nurse@example.com"})
	mustPut(t, s, "nurse@example.com", b)
	wantItems(t, s, "nurse@example.com", []storage.RosterItem{b}, 1)
	if _, err := s.DeleteRosterItem(ctx, "nurse@example.com", "romeo@example.net"); err != nil {
		t.Fatal(err)
	}
	got, err := s.RosterItem(ctx, "juliet@example.com", "romeo@example.net")
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("other user's item = %+v, %v; want %+v", got, err, a)
	}
	_, v, err := s.RosterItems(ctx, "juliet@example.com")
	if err != nil || v != 2 {
		t.Fatalf("other user's version = %d, %v; want 2", v, err)
	}
}

func testRosterConcurrent(t *testing.T, s storage.Store) {
	const n = 16
	user := "juliet@example.com"
	var wg sync.WaitGroup
	versions := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			versions[i], errs[i] = s.PutRosterItem(t.Context(), user, storage.RosterItem{
				Contact: fmt.Sprintf("c%02d@example.net", i), Groups: []string{"G", fmt.Sprint(i)},
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("PutRosterItem in goroutine %d: %v", i, err)
		}
	}
	slices.Sort(versions)
	if len(slices.Compact(slices.Clone(versions))) != n {
		t.Fatalf("concurrent writes returned duplicate versions: %v", versions)
	}
	items, v, err := s.RosterItems(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != n || v != versions[n-1] {
		t.Fatalf("RosterItems = %d items, version %d; want %d items, version %d", len(items), v, n, versions[n-1])
	}
}

func testCanceledContext(t *testing.T, s storage.Store) {
	mustCreate(t, s, "juliet@example.com", cred("SHA-1", 1))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	wantErr(t, "CreateAccount", s.CreateAccount(ctx, "romeo@example.net", nil), context.Canceled)
	_, err := s.Credential(ctx, "juliet@example.com", "SHA-1")
	wantErr(t, "Credential", err, context.Canceled)
	_, err = s.PutRosterItem(ctx, "juliet@example.com", storage.RosterItem{Contact: "romeo@example.net"})
	wantErr(t, "PutRosterItem", err, context.Canceled)
	_, _, err = s.RosterItems(ctx, "juliet@example.com")
	wantErr(t, "RosterItems", err, context.Canceled)
	// Nothing may have been written with the canceled context.
	users, err := s.ListAccounts(t.Context(), "")
	if err != nil || !slices.Equal(users, []string{"juliet@example.com"}) {
		t.Fatalf("ListAccounts = %v, %v", users, err)
	}
	wantItems(t, s, "juliet@example.com", nil, 0)
}
