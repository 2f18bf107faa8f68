package postgres

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/postgres/pgtest"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/storagetest"
)

// pg is the one PostgreSQL cluster of this test binary; each test gets
// its own database in it.
var pg pgtest.Shared

func TestMain(m *testing.M) { os.Exit(pg.Run(m)) }

// icu is the collation of the test databases: a linguistic one, as many
// production databases have, so that the tests prove the backend sorts by
// bytes regardless.
var icu = pgtest.DatabaseOptions{ICULocale: "en"}

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	dsn := pg.Database(t, icu)
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dsn
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

func TestAppServiceQueue(t *testing.T) {
	storagetest.RunAppServiceQueue(t, func(t *testing.T) (storage.AppServiceQueue, storagetest.Reopen) {
		s, dsn := openTemp(t)
		reopen := func(t *testing.T) storage.AppServiceQueue {
			s.Close()
			ns, err := Open(t.Context(), dsn)
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

func TestDatabasesSortLinguistically(t *testing.T) {
	// The guarantee that the backend sorts by bytes is only tested if the
	// test databases would sort otherwise.
	s, _ := openTemp(t)
	var linguistic bool
	if err := s.pool.QueryRow(t.Context(), `SELECT 'a' < 'B'`).Scan(&linguistic); err != nil {
		t.Fatal(err)
	}
	if !linguistic {
		t.Fatal("test database sorts 'B' before 'a': its collation is not linguistic")
	}
	for _, u := range []string{"b@x", "B@x", "a@x", "A@x", "_@x"} {
		if err := s.CreateAccount(t.Context(), u, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListAccounts(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A@x", "B@x", "_@x", "a@x", "b@x"}; !slices.Equal(got, want) {
		t.Fatalf("ListAccounts = %v, want byte order %v", got, want)
	}
}

func currentVersion(t *testing.T, s *Store) int {
	t.Helper()
	v, err := schemaVersion(t.Context(), s.pool)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func tableExists(t *testing.T, s *Store, name string) bool {
	t.Helper()
	var n int
	err := s.pool.QueryRow(t.Context(),
		`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`, name).Scan(&n)
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
		// database; all but the last must succeed.
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
			tables: []string{"schema_migrations", "accounts", "credentials", "roster_items", "roster_groups", "roster_versions",
				"offline_messages", "blocklist", "private_xml", "archive", "archive_prefs", "archive_prefs_jids", "fast_tokens",
				"pep_nodes", "pep_items", "muc_rooms", "muc_affiliations", "appservice_queues", "appservice_events"},
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
			dsn := pg.Database(t, pgtest.DatabaseOptions{})
			for i, steps := range tt.steps {
				s, err := open(ctx, dsn, steps)
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
				if err == nil {
					s.Close()
				}
			}
			pool, err := pgxpool.New(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			s := &Store{pool: pool}
			if got := currentVersion(t, s); got != tt.version {
				t.Errorf("schema version %d, want %d", got, tt.version)
			}
			var rows int
			if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil {
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

// TestConcurrentOpenOfNewDatabase models several instances starting at
// once against a fresh database: all must come up, and the schema must be
// applied exactly once.
func TestConcurrentOpenOfNewDatabase(t *testing.T) {
	dsn := pg.Database(t, pgtest.DatabaseOptions{})
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(t.Context(), dsn)
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
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var rows int
	if err := s.pool.QueryRow(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(migrations) {
		t.Fatalf("schema_migrations has %d rows, want %d", rows, len(migrations))
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name, dsn string
		want      string // substring of the error
	}{
		{"not a DSN", "postgres://%zz", "postgres: open"},
		{"unknown setting", "postgres://u@127.0.0.1:1/db?pool_max_conns=many", "pool_max_conns"},
		{"nobody listening", "postgres://u:secretpw@127.0.0.1:1/db?connect_timeout=5", "postgres: connect to 127.0.0.1/db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.dsn)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// TestTwoStoresOneDatabase models two session-manager instances sharing
// the database: each sees the other's writes, and the checks that guard a
// write (account existence, the offline quota, FAST counts) hold across
// them under concurrency.
func TestTwoStoresOneDatabase(t *testing.T) {
	ctx := t.Context()
	a, dsn := openTemp(t)
	b, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stores := []*Store{a, b}

	c := storage.Credential{Hash: "SHA-256", Salt: []byte{1}, Iterations: 4096, StoredKey: []byte{2}, ServerKey: []byte{3}}
	if err := b.CreateAccount(ctx, "juliet@example.com", []storage.Credential{c}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Credential(ctx, "juliet@example.com", "SHA-256"); err != nil {
		t.Fatalf("a does not see the account b created: %v", err)
	}
	if err := a.CreateAccount(ctx, "juliet@example.com", nil); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("CreateAccount through the other store: %v, want ErrExists", err)
	}

	t.Run("offline quota", func(t *testing.T) {
		const quota, senders = 5, 16
		var wg sync.WaitGroup
		results := make([]error, senders)
		for i := range senders {
			wg.Go(func() {
				results[i] = stores[i%2].PushOffline(ctx, "juliet@example.com", fmt.Appendf(nil, "<message id='%d'/>", i), time.Now(), quota)
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range results {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, storage.ErrQuota):
				t.Errorf("PushOffline: %v", err)
			}
		}
		ms, err := a.OfflineMessages(ctx, "juliet@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if ok != quota || len(ms) != quota {
			t.Fatalf("%d pushes succeeded, %d stored; want %d", ok, len(ms), quota)
		}
	})

	t.Run("roster versions", func(t *testing.T) {
		const writers = 20
		var wg sync.WaitGroup
		versions := make([]int64, writers)
		errs := make([]error, writers)
		for i := range writers {
			wg.Go(func() {
				versions[i], errs[i] = stores[i%2].PutRosterItem(ctx, "shared@example.com",
					storage.RosterItem{Contact: fmt.Sprintf("c%d@example.net", i), Groups: []string{"G"}})
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		slices.Sort(versions)
		for i, v := range versions {
			if v != int64(i+1) {
				t.Fatalf("versions %v: want 1..%d, each once", versions, writers)
			}
		}
	})

	t.Run("fast token replay", func(t *testing.T) {
		tok := storage.FastToken{User: "juliet@example.com", Agent: "agent", Mechanism: "HT-SHA-256-NONE", Hash: []byte{1, 2, 3}, Expiry: time.Now().Add(time.Hour)}
		if err := a.AddFastToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		const logins = 8
		var wg sync.WaitGroup
		errs := make([]error, logins)
		for i := range logins {
			wg.Go(func() { errs[i] = stores[i%2].UseFastToken(ctx, tok.User, tok.Agent, tok.Hash, 7) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, storage.ErrReplay):
				t.Errorf("UseFastToken: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d logins with the same count succeeded, want 1", ok)
		}
	})

	if err := b.DeleteAccount(ctx, "juliet@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Credential(ctx, "juliet@example.com", "SHA-256"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a still sees the deleted account: %v", err)
	}
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		name              string
		err               error
		unique, retryable bool
	}{
		{"unique", &pgconn.PgError{Code: "23505"}, true, false},
		{"wrapped unique", fmt.Errorf("x: %w", &pgconn.PgError{Code: "23505"}), true, false},
		{"serialization", &pgconn.PgError{Code: "40001"}, false, true},
		{"deadlock", fmt.Errorf("x: %w", &pgconn.PgError{Code: "40P01"}), false, true},
		{"not null", &pgconn.PgError{Code: "23502"}, false, false},
		{"check", &pgconn.PgError{Code: "23514"}, false, false},
		{"plain", errors.New("duplicate key value violates unique constraint"), false, false},
		{"nil", nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isUniqueViolation(tt.err); got != tt.unique {
				t.Errorf("isUniqueViolation = %v, want %v", got, tt.unique)
			}
			if got := isRetryable(tt.err); got != tt.retryable {
				t.Errorf("isRetryable = %v, want %v", got, tt.retryable)
			}
		})
	}
}

// TestSchema: Schema reads the version without migrating.
func TestSchema(t *testing.T) {
	dsn := pg.Database(t, pgtest.DatabaseOptions{})
	ctx := t.Context()
	if cur, known, err := Schema(ctx, dsn); err != nil || cur != 0 || known != len(migrations) {
		t.Fatalf("empty database: %d %d %v", cur, known, err)
	}
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if cur, known, err := Schema(ctx, dsn); err != nil || cur != len(migrations) || known != len(migrations) {
		t.Fatalf("migrated database: %d %d %v", cur, known, err)
	}
}

func TestInvites(t *testing.T) {
	storagetest.RunInvites(t, func(t *testing.T) storage.Invites {
		s, _ := openTemp(t)
		return s
	})
}
