package sqlite

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/storagetest"
)

// TestConformanceCachedCredentials runs the backend tests with the
// credential cache on: every change through the store must show at once.
func TestConformanceCachedCredentials(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, _ := openTemp(t)
		s.CacheCredentials(100, time.Hour)
		return s
	})
}

// testCred returns a credential for SHA-256 whose keys are derived from
// password, so that two passwords give two credentials.
func testCred(password string) storage.Credential {
	return storage.Credential{Hash: "SHA-256", Salt: []byte("salt-" + password), Iterations: 4096,
		StoredKey: bytes.Repeat([]byte(password[:1]), 32), ServerKey: bytes.Repeat([]byte(password[1:2]), 32)}
}

func TestCachedCredentialsChange(t *testing.T) {
	const user = "juliet@example.com"
	for _, tt := range []struct {
		name   string
		change func(t *testing.T, s *Store) // after a login cached "old-pw"
		want   string                       // the credential's password, "" for none
	}{
		{"password changed", func(t *testing.T, s *Store) {
			if err := s.SetCredentials(t.Context(), user, []storage.Credential{testCred("new-pw")}); err != nil {
				t.Fatal(err)
			}
		}, "new-pw"},
		{"account deleted", func(t *testing.T, s *Store) {
			if err := s.DeleteAccount(t.Context(), user); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"account deleted and created again", func(t *testing.T, s *Store) {
			if err := s.DeleteAccount(t.Context(), user); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateAccount(t.Context(), user, []storage.Credential{testCred("new-pw")}); err != nil {
				t.Fatal(err)
			}
		}, "new-pw"},
		{"changed by another process, which announced it", func(t *testing.T, s *Store) {
			other, err := Open(t.Context(), s.path(t))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if err := other.SetCredentials(t.Context(), user, []storage.Credential{testCred("new-pw")}); err != nil {
				t.Fatal(err)
			}
			s.ForgetCredentials(user)
		}, "new-pw"},
		{"deleted by another process, which announced it", func(t *testing.T, s *Store) {
			other, err := Open(t.Context(), s.path(t))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if err := other.DeleteAccount(t.Context(), user); err != nil {
				t.Fatal(err)
			}
			s.ForgetCredentials(user)
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			s.CacheCredentials(100, time.Hour)
			if err := s.CreateAccount(t.Context(), user, []storage.Credential{testCred("old-pw")}); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second comes from the cache
				if c, err := s.Credential(t.Context(), user, "SHA-256"); err != nil || !bytes.Equal(c.Salt, []byte("salt-old-pw")) {
					t.Fatalf("Credential before the change = %q, %v; want old-pw's", c.Salt, err)
				}
			}
			tt.change(t, s)
			c, err := s.Credential(t.Context(), user, "SHA-256")
			switch {
			case tt.want == "" && !errors.Is(err, storage.ErrNotFound):
				t.Errorf("Credential after the change = %q, %v; want ErrNotFound", c.Salt, err)
			case tt.want != "" && (err != nil || !bytes.Equal(c.Salt, []byte("salt-"+tt.want))):
				t.Errorf("Credential after the change = %q, %v; want %s's", c.Salt, err, tt.want)
			}
		})
	}
}

// path returns the file of s's database.
func (s *Store) path(t *testing.T) string {
	t.Helper()
	var seq int
	var name, file string
	if err := s.db.QueryRowContext(t.Context(), `PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	return file
}
