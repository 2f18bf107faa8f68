package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/storagetest"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ambrosia.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, _ := openTemp(t)
		return s
	})
}

func TestFastTokens(t *testing.T) {
	storagetest.RunFastTokens(t, func(t *testing.T) storagetest.FastStore {
		s, _ := openTemp(t)
		return s
	})
}

func TestPEP(t *testing.T) {
	storagetest.RunPEP(t, func(t *testing.T) storagetest.PEPStore {
		s, _ := openTemp(t)
		return s
	})
}

func TestMUC(t *testing.T) {
	storagetest.RunMUC(t, func(t *testing.T) storagetest.MUCStore {
		s, _ := openTemp(t)
		return s
	})
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	path := filepath.Join(dir, "ambrosia.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	for name, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
}

func TestOpenUnusualPaths(t *testing.T) {
	for _, name := range []string{"with space.db", "q?mark.db", "hash#.db", "per%25cent.db", "ünï.db"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			s, err := Open(t.Context(), path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if err := s.CreateAccount(t.Context(), "a@b", nil); err != nil {
				t.Fatal(err)
			}
			// The data must land in exactly the file that was asked for.
			entries, err := os.ReadDir(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if n := e.Name(); n != name && !strings.HasPrefix(n, name+"-") {
					t.Errorf("unexpected file %q next to %q", n, name)
				}
			}
		})
	}
}

func TestOpenNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), path); err == nil {
		s.Close()
		t.Fatal("Open of a non-database file succeeded")
	}
}

// TestPragmas checks that every pooled connection, not only the first,
// carries the settings that cross-process access depends on.
func TestPragmas(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	const n = 4
	var conns []*sql.Conn
	for range n {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		for _, tt := range []struct{ pragma, want string }{
			{"journal_mode", "wal"},
			{"foreign_keys", "1"},
			{"busy_timeout", "5000"},
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("connection %d: %s = %q, want %q", i, tt.pragma, got, tt.want)
			}
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

func currentVersion(t *testing.T, s *Store) int {
	t.Helper()
	v, err := schemaVersion(t.Context(), s.db)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func tableExists(t *testing.T, s *Store, name string) bool {
	t.Helper()
	var n int
	err := s.db.QueryRowContext(t.Context(),
		`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestMigrations(t *testing.T) {
	ctx := t.Context()
	extra := append(slices.Clone(migrations), `CREATE TABLE extra (x INTEGER NOT NULL)`)
	broken := append(slices.Clone(migrations), `CREATE TABLE half (x INTEGER); SELECT * FROM no_such_table`)

	tests := []struct {
		name string
		// steps are the migration lists passed to successive opens of one
		// file; all but the last must succeed.
		steps   [][]string
		wantErr []string // substrings of the last open's error; nil = success
		version int      // schema version after the last open
		tables  []string // tables that must exist afterwards
		absent  []string // tables that must not exist afterwards
	}{
		{
			name:    "fresh",
			steps:   [][]string{migrations},
			version: len(migrations),
			tables:  []string{"schema_migrations", "accounts", "credentials", "roster_items", "roster_groups", "roster_versions", "archive", "archive_prefs", "archive_prefs_jids", "muc_rooms", "muc_affiliations", "appservice_queues", "appservice_events"},
		},
		{
			name:    "reopen is idempotent",
			steps:   [][]string{migrations, migrations, migrations},
			version: len(migrations),
		},
		{
			name:    "from empty",
			steps:   [][]string{nil, migrations},
			version: len(migrations),
			tables:  []string{"accounts"},
		},
		{
			name:    "new step applied",
			steps:   [][]string{migrations, extra},
			version: len(migrations) + 1,
			tables:  []string{"extra"},
		},
		{
			name:    "newer database",
			steps:   [][]string{extra, migrations},
			wantErr: []string{fmt.Sprintf("version %d", len(extra)), fmt.Sprintf("version %d", len(migrations)), "newer"},
			version: len(extra),
		},
		{
			name:    "failed step rolls back",
			steps:   [][]string{migrations, broken},
			wantErr: []string{fmt.Sprintf("migration %d", len(broken)), "no_such_table"},
			version: len(migrations),
			absent:  []string{"half"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.db")
			for i, steps := range tt.steps {
				s, err := open(ctx, path, steps)
				if i < len(tt.steps)-1 {
					if err != nil {
						t.Fatalf("open %d: %v", i, err)
					}
					s.Close()
					continue
				}
				if tt.wantErr == nil && err != nil {
					t.Fatalf("open: %v", err)
				}
				if tt.wantErr != nil {
					if err == nil {
						s.Close()
						t.Fatal("open succeeded, want error")
					}
					for _, sub := range tt.wantErr {
						if !strings.Contains(err.Error(), sub) {
							t.Errorf("error %q does not mention %q", err, sub)
						}
					}
				}
			}
			// Inspect the file with the migrations it was last left at.
			s, err := open(ctx, path, nil)
			if tt.version > 0 && err == nil {
				s.Close()
				t.Fatal("open with no migrations of a migrated file succeeded")
			}
			db, err := sql.Open("sqlite", dsn(path))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			s = &Store{db: db}
			if got := currentVersion(t, s); got != tt.version {
				t.Errorf("schema version %d, want %d", got, tt.version)
			}
			var rows int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != tt.version {
				t.Errorf("schema_migrations has %d rows, want %d", rows, tt.version)
			}
			for _, name := range tt.tables {
				if !tableExists(t, s, name) {
					t.Errorf("table %s missing", name)
				}
			}
			for _, name := range tt.absent {
				if tableExists(t, s, name) {
					t.Errorf("table %s exists", name)
				}
			}
		})
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ambrosia.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	c := storage.Credential{Hash: "SHA-256", Salt: []byte{1}, Iterations: 4096, StoredKey: []byte{2}, ServerKey: []byte{3}}
	if err := s.CreateAccount(ctx, "juliet@example.com", []storage.Credential{c}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutRosterItem(ctx, "juliet@example.com", storage.RosterItem{Contact: "romeo@example.net", Groups: []string{"F"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Credential(ctx, "juliet@example.com", "SHA-256"); err != nil {
		t.Fatalf("credential lost on reopen: %v", err)
	}
	items, v, err := s.RosterItems(ctx, "juliet@example.com")
	if err != nil || len(items) != 1 || v != 1 {
		t.Fatalf("roster after reopen = %+v, %d, %v", items, v, err)
	}
}

func TestConcurrentOpenOfNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ambrosia.db")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(t.Context(), path)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// TestTwoStoresOneFile models the server and the CLI holding the same file
// open: each sees the other's committed writes, and concurrent writers
// queue on the busy timeout instead of failing.
func TestTwoStoresOneFile(t *testing.T) {
	ctx := t.Context()
	server, path := openTemp(t)
	cli, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	c := storage.Credential{Hash: "SHA-256", Salt: []byte{1}, Iterations: 4096, StoredKey: []byte{2}, ServerKey: []byte{3}}
	if err := cli.CreateAccount(ctx, "juliet@example.com", []storage.Credential{c}); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Credential(ctx, "juliet@example.com", "SHA-256"); err != nil {
		t.Fatalf("server does not see account created by CLI: %v", err)
	}
	err = server.CreateAccount(ctx, "juliet@example.com", nil)
	if !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second CreateAccount through other store: %v, want ErrExists", err)
	}
	if _, err := server.PutRosterItem(ctx, "juliet@example.com", storage.RosterItem{Contact: "romeo@example.net"}); err != nil {
		t.Fatal(err)
	}
	if err := cli.DeleteAccount(ctx, "juliet@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Credential(ctx, "juliet@example.com", "SHA-256"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("server still sees deleted account: %v", err)
	}
	if items, _, err := server.RosterItems(ctx, "juliet@example.com"); err != nil || items != nil {
		t.Fatalf("server still sees deleted roster: %+v, %v", items, err)
	}

	const perStore = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*perStore)
	for si, s := range []*Store{server, cli} {
		wg.Go(func() {
			for i := range perStore {
				user := fmt.Sprintf("u%d-%d@example.com", si, i)
				if err := s.CreateAccount(ctx, user, []storage.Credential{c}); err != nil {
					errs <- err
				}
				if _, err := s.PutRosterItem(ctx, "shared@example.com", storage.RosterItem{Contact: user}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	for _, s := range []*Store{server, cli} {
		users, err := s.ListAccounts(ctx, "example.com")
		if err != nil || len(users) != 2*perStore {
			t.Fatalf("ListAccounts = %d users, %v; want %d", len(users), err, 2*perStore)
		}
		items, v, err := s.RosterItems(ctx, "shared@example.com")
		if err != nil || len(items) != 2*perStore || v != 2*perStore {
			t.Fatalf("shared roster = %d items, version %d, %v; want %d", len(items), v, err, 2*perStore)
		}
	}
}

func TestDeleteAccountWithoutForeignKeys(t *testing.T) {
	// A connection opened without foreign_keys(1), e.g. by the sqlite3
	// shell during maintenance, must still not leave credentials behind.
	ctx := context.Background()
	s, path := openTemp(t)
	c := storage.Credential{Hash: "SHA-1", Salt: []byte{1}, Iterations: 1, StoredKey: []byte{2}, ServerKey: []byte{3}}
	if err := s.CreateAccount(ctx, "juliet@example.com", []storage.Credential{c}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	plain := &Store{db: db}
	if err := plain.DeleteAccount(ctx, "juliet@example.com"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM credentials`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d credentials left after delete", n)
	}
}

func TestIsPrimaryKeyViolation(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO accounts (username, domain) VALUES ('a@b', 'b')`); err != nil {
		t.Fatal(err)
	}
	_, dup := s.db.ExecContext(ctx, `INSERT INTO accounts (username, domain) VALUES ('a@b', 'b')`)
	_, notNull := s.db.ExecContext(ctx, `INSERT INTO accounts (username, domain) VALUES ('c@d', NULL)`)
	_, check := s.db.ExecContext(ctx,
		`INSERT INTO roster_items (username, contact, name, subscription, ask, pending_in, approved) VALUES ('a@b', 'c@d', '', 'bogus', 0, 0, 0)`)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"duplicate key", dup, true},
		{"wrapped duplicate key", fmt.Errorf("x: %w", dup), true},
		{"not null", notNull, false},
		{"check", check, false},
		{"nil", nil, false},
		{"other", errors.New("UNIQUE constraint failed"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isPrimaryKeyViolation(tt.err); got != tt.want {
				t.Fatalf("isPrimaryKeyViolation(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestAppServiceQueue(t *testing.T) {
	storagetest.RunAppServiceQueue(t, func(t *testing.T) (storage.AppServiceQueue, storagetest.Reopen) {
		s, path := openTemp(t)
		reopen := func(t *testing.T) storage.AppServiceQueue {
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			ns, err := Open(t.Context(), path)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			t.Cleanup(func() { ns.Close() })
			s = ns
			return s
		}
		return s, reopen
	})
}

func TestInvites(t *testing.T) {
	storagetest.RunInvites(t, func(t *testing.T) storage.Invites {
		s, _ := openTemp(t)
		return s
	})
}
