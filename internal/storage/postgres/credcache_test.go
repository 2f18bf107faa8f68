package postgres

import (
	"bytes"
	"errors"
	"log/slog"
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
		if err := s.CacheCredentials(t.Context(), 100, time.Hour, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// testCred returns a credential for SHA-256 whose salt names password.
func testCred(password string) storage.Credential {
	return storage.Credential{Hash: "SHA-256", Salt: []byte("salt-" + password), Iterations: 4096,
		StoredKey: bytes.Repeat([]byte{1}, 32), ServerKey: bytes.Repeat([]byte{2}, 32)}
}

// TestCachedCredentialsOtherProcess caches credentials in one store while
// another, as another process would, changes them in the database: the
// cache serves what it read until a change is announced, forgets the
// user at the announcement, and keeps nothing while it cannot hear them.
// credFixture is a store caching credentials and another store on the
// same database, as another process would have.
type credFixture struct {
	t        *testing.T
	s, other *Store
	user     string
}

func newCredFixture(t *testing.T, retry time.Duration) *credFixture {
	s, dsn := openTemp(t)
	s.listenRetry = retry
	if err := s.CacheCredentials(t.Context(), 100, time.Hour, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	other, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return &credFixture{t: t, s: s, other: other, user: "juliet@example.com"}
}

// salt reads the credential through s: its password, or "" for none.
func (f *credFixture) salt() string {
	f.t.Helper()
	c, err := f.s.Credential(f.t.Context(), f.user, "SHA-256")
	if errors.Is(err, storage.ErrNotFound) {
		return ""
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return string(bytes.TrimPrefix(c.Salt, []byte("salt-")))
}

// eventually waits for s to read want.
func (f *credFixture) eventually(want string) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for got := f.salt(); got != want; got = f.salt() {
		if time.Now().After(deadline) {
			f.t.Fatalf("credential %q, want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unannounced changes the row behind every cache's back.
func (f *credFixture) unannounced(password string) {
	f.t.Helper()
	if _, err := f.other.pool.Exec(f.t.Context(), `UPDATE credentials SET salt = $2 WHERE username = $1`, f.user, []byte("salt-"+password)); err != nil {
		f.t.Fatal(err)
	}
}

// cached checks that s reads want, and again after an unannounced
// change: from its cache.
func (f *credFixture) cached(want string) {
	f.t.Helper()
	for range 2 { // the second read comes from the cache
		if got := f.salt(); got != want {
			f.t.Fatalf("credential %q, want %q", got, want)
		}
	}
	f.unannounced("unannounced")
	if got := f.salt(); got != want {
		f.t.Fatalf("credential %q after an unannounced change, want the cached %q", got, want)
	}
}

// listener returns the server process of s's listening connection.
func (f *credFixture) listener() (int, error) {
	var pid int
	err := f.other.pool.QueryRow(f.t.Context(), `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = $1`,
		"LISTEN "+credentialsChannel).Scan(&pid)
	return pid, err
}

// cut terminates s's listening connection and returns its process.
func (f *credFixture) cut() int {
	f.t.Helper()
	pid, err := f.listener()
	if err != nil {
		f.t.Fatalf("the listening connection: %v", err)
	}
	if _, err := f.other.pool.Exec(f.t.Context(), `SELECT pg_terminate_backend($1)`, pid); err != nil {
		f.t.Fatal(err)
	}
	return pid
}

// TestCachedCredentialsOtherProcess caches credentials in one store while
// another, as another process would, changes them in the database: the
// cache serves what it read until a change is announced, and forgets the
// user at the announcement.
func TestCachedCredentialsOtherProcess(t *testing.T) {
	f := newCredFixture(t, 0)
	ctx := t.Context()
	if err := f.other.CreateAccount(ctx, f.user, []storage.Credential{testCred("old")}); err != nil {
		t.Fatal(err)
	}
	f.cached("old")
	if err := f.other.SetCredentials(ctx, f.user, []storage.Credential{testCred("new")}); err != nil {
		t.Fatal(err)
	}
	f.eventually("new")
	f.cached("new")
	if err := f.other.DeleteAccount(ctx, f.user); err != nil {
		t.Fatal(err)
	}
	f.eventually("")
	if err := f.other.CreateAccount(ctx, f.user, []storage.Credential{testCred("again")}); err != nil {
		t.Fatal(err)
	}
	f.cached("again")
}

// TestCachedCredentialsListenerLost cuts the listening connection: the
// cache forgets everything and keeps nothing until a new connection
// listens, then caches again.
func TestCachedCredentialsListenerLost(t *testing.T) {
	ctx := t.Context()
	t.Run("nothing kept while unheard", func(t *testing.T) {
		f := newCredFixture(t, time.Hour) // no new listener in this test
		if err := f.other.CreateAccount(ctx, f.user, []storage.Credential{testCred("old")}); err != nil {
			t.Fatal(err)
		}
		f.cached("old")
		f.cut()
		f.eventually("unannounced")
		for _, pw := range []string{"first", "second"} {
			f.unannounced(pw)
			if got := f.salt(); got != pw {
				t.Fatalf("credential %q with nobody listening, want the database's %q", got, pw)
			}
		}
	})
	t.Run("cached again once heard", func(t *testing.T) {
		f := newCredFixture(t, 0)
		if err := f.other.CreateAccount(ctx, f.user, []storage.Credential{testCred("old")}); err != nil {
			t.Fatal(err)
		}
		f.cached("old")
		pid := f.cut()
		f.eventually("unannounced")
		deadline := time.Now().Add(20 * time.Second)
		for {
			if next, err := f.listener(); err == nil && next != pid {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no connection listens again")
			}
			time.Sleep(50 * time.Millisecond)
		}
		// The cache is on once the new connection listens, a moment
		// after the server shows it listening.
		deadline = time.Now().Add(10 * time.Second)
		for f.s.creds.Len() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("nothing cached after the listener came back")
			}
			f.salt()
			time.Sleep(20 * time.Millisecond)
		}
		f.cached("unannounced")
		if err := f.other.SetCredentials(ctx, f.user, []storage.Credential{testCred("after")}); err != nil {
			t.Fatal(err)
		}
		f.eventually("after")
	})
}

// TestCacheCredentialsClose checks that Close stops the listener, and
// that a closed store refuses to start one.
func TestCacheCredentialsClose(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.CacheCredentials(t.Context(), 100, time.Hour, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return with a listener running")
	}
	if err := s.CacheCredentials(t.Context(), 100, time.Hour, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a closed store started a listener")
	} else {
		t.Log(err)
	}
}
