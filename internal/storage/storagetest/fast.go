package storagetest

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// FastStore is what the FAST token suite needs: tokens belong to accounts.
type FastStore interface {
	storage.Accounts
	storage.FastTokens
}

// RunFastTokens checks the storage.FastTokens contract on fresh stores
// from newStore.
func RunFastTokens(t *testing.T, newStore func(t *testing.T) FastStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s FastStore)
	}{
		{"RoundTrip", testFastRoundTrip},
		{"Rotation", testFastRotation},
		{"Count", testFastCount},
		{"CountConcurrent", testFastCountConcurrent},
		{"Delete", testFastDelete},
		{"RemovedWithPassword", testFastPassword},
		{"RemovedWithAccount", testFastAccount},
		{"Invalid", testFastInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

const fastUser = "alice@example.com"

func fastToken(agent string, seed byte) storage.FastToken {
	return storage.FastToken{
		User:      fastUser,
		Agent:     agent,
		Mechanism: "HT-SHA-256-NONE",
		Hash:      bytes.Repeat([]byte{seed}, 32),
		Expiry:    time.UnixMicro(1_900_000_000_000_000 + int64(seed)).UTC(),
	}
}

func hashes(t *testing.T, s FastStore, agent string) [][]byte {
	t.Helper()
	ts, err := s.FastTokens(t.Context(), fastUser, agent)
	if err != nil {
		t.Fatalf("FastTokens: %v", err)
	}
	var out [][]byte
	for _, x := range ts {
		out = append(out, x.Hash)
	}
	return out
}

func wantHashes(t *testing.T, s FastStore, agent string, seeds ...byte) {
	t.Helper()
	got := hashes(t, s, agent)
	if len(got) != len(seeds) {
		t.Fatalf("agent %q: %d tokens, want %d", agent, len(got), len(seeds))
	}
	for i, sd := range seeds {
		if !bytes.Equal(got[i], bytes.Repeat([]byte{sd}, 32)) {
			t.Fatalf("agent %q: token %d is %x, want seed %d", agent, i, got[i], sd)
		}
	}
}

func mustAddToken(t *testing.T, s FastStore, tok storage.FastToken) {
	t.Helper()
	if err := s.AddFastToken(t.Context(), tok); err != nil {
		t.Fatalf("AddFastToken: %v", err)
	}
}

func testFastRoundTrip(t *testing.T, s FastStore) {
	mustCreateAccount(t, s)
	want := fastToken("phone", 1)
	mustAddToken(t, s, want)
	ts, err := s.FastTokens(t.Context(), fastUser, "phone")
	if err != nil || len(ts) != 1 {
		t.Fatalf("FastTokens = %v, %v", ts, err)
	}
	got := ts[0]
	if got.User != want.User || got.Agent != want.Agent || got.Mechanism != want.Mechanism || !bytes.Equal(got.Hash, want.Hash) || !got.Expiry.Equal(want.Expiry) || got.Count != 0 {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	got.Hash[0] ^= 0xff
	wantHashes(t, s, "phone", 1)
	wantHashes(t, s, "laptop")
	if ts, _ := s.FastTokens(t.Context(), "bob@example.com", "phone"); len(ts) != 0 {
		t.Fatal("another user sees alice's tokens")
	}
}

func testFastRotation(t *testing.T, s FastStore) {
	mustCreateAccount(t, s)
	mustAddToken(t, s, fastToken("phone", 1))
	mustAddToken(t, s, fastToken("laptop", 9))
	mustAddToken(t, s, fastToken("phone", 2))
	// The client may not have received token 2: token 1 stays.
	wantHashes(t, s, "phone", 2, 1)
	mustAddToken(t, s, fastToken("phone", 3))
	wantHashes(t, s, "phone", 3, 2)
	// Using the previous token keeps both.
	if err := s.UseFastToken(t.Context(), fastUser, "phone", fastToken("", 2).Hash, 1); err != nil {
		t.Fatalf("UseFastToken(previous): %v", err)
	}
	wantHashes(t, s, "phone", 3, 2)
	// Using the newest retires the previous one.
	if err := s.UseFastToken(t.Context(), fastUser, "phone", fastToken("", 3).Hash, 1); err != nil {
		t.Fatalf("UseFastToken(newest): %v", err)
	}
	wantHashes(t, s, "phone", 3)
	wantHashes(t, s, "laptop", 9)
	err := s.UseFastToken(t.Context(), fastUser, "phone", fastToken("", 2).Hash, 5)
	wantErr(t, "UseFastToken(retired)", err, storage.ErrNotFound)
	err = s.UseFastToken(t.Context(), fastUser, "laptop", fastToken("", 3).Hash, 5)
	wantErr(t, "UseFastToken(other agent)", err, storage.ErrNotFound)
}

func testFastCount(t *testing.T, s FastStore) {
	mustCreateAccount(t, s)
	mustAddToken(t, s, fastToken("phone", 1))
	h := fastToken("", 1).Hash
	for _, tc := range []struct {
		count uint64
		want  error
	}{
		{0, storage.ErrReplay},
		{1, nil},
		{1, storage.ErrReplay},
		{5, nil},
		{3, storage.ErrReplay},
		{6, nil},
	} {
		err := s.UseFastToken(t.Context(), fastUser, "phone", h, tc.count)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Fatalf("count %d: %v, want %v", tc.count, err, tc.want)
		}
	}
	ts, _ := s.FastTokens(t.Context(), fastUser, "phone")
	if len(ts) != 1 || ts[0].Count != 6 {
		t.Fatalf("tokens %+v, want count 6", ts)
	}
	// A new token starts its own count.
	mustAddToken(t, s, fastToken("phone", 2))
	if err := s.UseFastToken(t.Context(), fastUser, "phone", fastToken("", 2).Hash, 1); err != nil {
		t.Fatalf("new token, count 1: %v", err)
	}
}

func testFastCountConcurrent(t *testing.T, s FastStore) {
	mustCreateAccount(t, s)
	mustAddToken(t, s, fastToken("phone", 1))
	h := fastToken("", 1).Hash
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = s.UseFastToken(t.Context(), fastUser, "phone", h, 7) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, storage.ErrReplay):
			t.Fatalf("UseFastToken: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d logins with the same count passed, want 1", ok)
	}
}

func testFastDelete(t *testing.T, s FastStore) {
	mustCreateAccount(t, s)
	mustAddToken(t, s, fastToken("phone", 1))
	mustAddToken(t, s, fastToken("laptop", 2))
	if err := s.DeleteFastTokens(t.Context(), fastUser, "phone"); err != nil {
		t.Fatal(err)
	}
	wantHashes(t, s, "phone")
	wantHashes(t, s, "laptop", 2)
	if err := s.DeleteFastTokens(t.Context(), fastUser, ""); err != nil {
		t.Fatal(err)
	}
	wantHashes(t, s, "laptop")
	if err := s.DeleteFastTokens(t.Context(), "nobody@example.com", "x"); err != nil {
		t.Fatalf("deleting nothing: %v", err)
	}
}

func testFastPassword(t *testing.T, s FastStore) {
	mustCreateAccount(t, s)
	mustAddToken(t, s, fastToken("phone", 1))
	if err := s.SetCredentials(t.Context(), fastUser, []storage.Credential{cred("SHA-256", 7)}); err != nil {
		t.Fatal(err)
	}
	wantHashes(t, s, "phone")
}

func testFastAccount(t *testing.T, s FastStore) {
	mustCreateAccount(t, s)
	mustAddToken(t, s, fastToken("phone", 1))
	if err := s.DeleteAccount(t.Context(), fastUser); err != nil {
		t.Fatal(err)
	}
	mustCreateAccount(t, s)
	wantHashes(t, s, "phone")
}

func testFastInvalid(t *testing.T, s FastStore) {
	err := s.AddFastToken(t.Context(), fastToken("phone", 1))
	wantErr(t, "AddFastToken(no account)", err, storage.ErrNotFound)
	mustCreateAccount(t, s)
	err = s.AddFastToken(t.Context(), fastToken("", 1))
	wantErr(t, "AddFastToken(no agent)", err, storage.ErrInvalid)
	tok := fastToken("phone", 1)
	tok.Hash = nil
	err = s.AddFastToken(t.Context(), tok)
	wantErr(t, "AddFastToken(no hash)", err, storage.ErrInvalid)
	err = s.UseFastToken(t.Context(), fastUser, "phone", fastToken("", 1).Hash, 1)
	wantErr(t, "UseFastToken(none)", err, storage.ErrNotFound)
}

func mustCreateAccount(t *testing.T, s FastStore) {
	t.Helper()
	if err := s.CreateAccount(t.Context(), fastUser, []storage.Credential{cred("SHA-256", 1)}); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
}
