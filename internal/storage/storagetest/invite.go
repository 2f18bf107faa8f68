package storagetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// RunInvites checks the storage.Invites contract on fresh stores from
// newStore.
func RunInvites(t *testing.T, newStore func(t *testing.T) storage.Invites) {
	now := time.UnixMicro(1_800_000_000_000_000).UTC()
	inv := storage.Invite{Token: "tok1", Domain: "example.com", Inviter: "alice@example.com", Expires: now.Add(time.Hour)}
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Invites)
	}{
		{"RoundTrip", func(t *testing.T, s storage.Invites) {
			mustCreateInvite(t, s, inv)
			got, err := s.Invite(t.Context(), inv.Token, now)
			if err != nil || got != inv {
				t.Fatalf("Invite = %+v, %v; want %+v", got, err, inv)
			}
			// Looking does not use it.
			if got, err = s.UseInvite(t.Context(), inv.Token, now); err != nil || got != inv {
				t.Fatalf("UseInvite = %+v, %v; want %+v", got, err, inv)
			}
		}},
		{"SingleUse", func(t *testing.T, s storage.Invites) {
			mustCreateInvite(t, s, inv)
			if _, err := s.UseInvite(t.Context(), inv.Token, now); err != nil {
				t.Fatal(err)
			}
			if _, err := s.UseInvite(t.Context(), inv.Token, now); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("second UseInvite: %v, want ErrNotFound", err)
			}
			if _, err := s.Invite(t.Context(), inv.Token, now); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Invite after use: %v, want ErrNotFound", err)
			}
		}},
		{"Expired", func(t *testing.T, s storage.Invites) {
			mustCreateInvite(t, s, inv)
			later := inv.Expires
			if _, err := s.Invite(t.Context(), inv.Token, later); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Invite at expiry: %v, want ErrNotFound", err)
			}
			if _, err := s.UseInvite(t.Context(), inv.Token, later); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("UseInvite at expiry: %v, want ErrNotFound", err)
			}
			// Removed on the way: not valid again even for a clock set back.
			if _, err := s.Invite(t.Context(), inv.Token, now); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("expired invite kept: %v", err)
			}
		}},
		{"RegisterOnly", func(t *testing.T, s storage.Invites) {
			r := storage.Invite{Token: "tok2", Domain: "example.com", Expires: now.Add(time.Minute)}
			mustCreateInvite(t, s, r)
			if got, err := s.UseInvite(t.Context(), r.Token, now); err != nil || got != r {
				t.Fatalf("UseInvite = %+v, %v; want %+v", got, err, r)
			}
		}},
		{"Duplicate", func(t *testing.T, s storage.Invites) {
			mustCreateInvite(t, s, inv)
			if err := s.CreateInvite(t.Context(), inv); !errors.Is(err, storage.ErrExists) {
				t.Fatalf("CreateInvite twice: %v, want ErrExists", err)
			}
		}},
		{"Invalid", func(t *testing.T, s storage.Invites) {
			for _, bad := range []storage.Invite{{Domain: "example.com"}, {Token: "x"}} {
				if err := s.CreateInvite(t.Context(), bad); !errors.Is(err, storage.ErrInvalid) {
					t.Errorf("CreateInvite(%+v): %v, want ErrInvalid", bad, err)
				}
			}
			if _, err := s.UseInvite(t.Context(), "unknown", now); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("UseInvite unknown: %v, want ErrNotFound", err)
			}
		}},
		{"RemovedWithInviter", func(t *testing.T, s storage.Invites) {
			a, ok := s.(storage.Accounts)
			if !ok {
				t.Skip("no accounts in this store")
			}
			if err := a.CreateAccount(t.Context(), inv.Inviter, nil); err != nil {
				t.Fatal(err)
			}
			mustCreateInvite(t, s, inv)
			other := storage.Invite{Token: "tok3", Domain: "example.com", Expires: now.Add(time.Hour)}
			mustCreateInvite(t, s, other)
			if err := a.DeleteAccount(t.Context(), inv.Inviter); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Invite(t.Context(), inv.Token, now); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("invitation of a deleted inviter: %v, want ErrNotFound", err)
			}
			if _, err := s.Invite(t.Context(), other.Token, now); err != nil {
				t.Fatalf("invitation without inviter: %v", err)
			}
		}},
		{"ConcurrentUse", func(t *testing.T, s storage.Invites) {
			mustCreateInvite(t, s, inv)
			var wg sync.WaitGroup
			var mu sync.Mutex
			won := 0
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := s.UseInvite(t.Context(), inv.Token, now); err == nil {
						mu.Lock()
						won++
						mu.Unlock()
					} else if !errors.Is(err, storage.ErrNotFound) {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if won != 1 {
				t.Fatalf("%d uses of one invite succeeded, want 1", won)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

func mustCreateInvite(t *testing.T, s storage.Invites, inv storage.Invite) {
	t.Helper()
	if err := s.CreateInvite(t.Context(), inv); err != nil {
		t.Fatalf("CreateInvite: %v", err)
	}
}
