// Package sqlite is the embedded storage backend, built on the pure-Go
// modernc.org/sqlite driver so that the server needs no cgo.
//
// Several processes may open the same file at once (the running server and
// the "ambrosia user" commands): the database runs in WAL mode, every write
// takes the write lock when its transaction begins, and a busy timeout makes
// writers queue instead of failing.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	sqlitedrv "modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/credcache"
)

var _ storage.Store = (*Store)(nil)

// Store implements storage.Store on one SQLite database file. It is safe for
// concurrent use.
type Store struct {
	db *sql.DB
	// wmu lets one write transaction of this process run at a time.
	// SQLite allows one writer anyway; without wmu the others wait in
	// SQLite's busy handler, which sleeps in a system call and so holds
	// an OS thread each: a thousand sessions ending at once grew the
	// server to nearly two thousand threads. Waiting on wmu parks a
	// goroutine instead. Other processes (the user command) still meet
	// the busy handler.
	wmu sync.Mutex
	// arch is the connection archive batches are written on, kept with a
	// larger page cache (archiveCacheKiB); guarded by wmu.
	arch *sql.Conn
	// archInserts holds archiveInsert(n), prepared on arch, by n: the
	// sizes of archiveChunks.
	archInserts map[int]*sql.Stmt
	// stmts are the statements of the store's fixed queries, prepared.
	stmts stmtCache
	// pending are the private documents waiting to be written by the
	// next holder of wmu (SetPrivateXML), guarded by pmu.
	pmu     sync.Mutex
	pending []*privateWrite
	// deep runs the login path's queries on goroutines with grown stacks.
	deep deepPool
	// creds keeps the credentials logins read (CacheCredentials).
	creds credcache.Cache
}

// maxConns bounds the pooled connections and maxIdle those kept open: each
// keeps its own page cache, which lives outside the Go heap, and SQLite
// serves concurrent readers well from a few connections. (Keeping all of
// them open cost an idle session 4 KiB of RSS in a 5,000-session test;
// the login path runs on maxIdle workers instead, see deepPool, so that
// it does not open and close connections all the time either.)
const (
	maxConns = 8
	maxIdle  = 2
)

// archiveCacheKiB is the page cache of the archive writer's connection.
// Archiving touches one index page per user; with SQLite's default 2 MiB
// those pages were read back from the file before every change, which
// cost as much as writing them (BenchmarkArchiveBatch: 66 -> 32 µs per
// message with this cache and migration 8). Only that connection has it,
// so sessions do not pay for it in memory.
const archiveCacheKiB = 16384

// dsnParams apply to every pooled connection, not just the first one,
// which is why they go in the DSN rather than in a one-off PRAGMA.
// _txlock=immediate makes write transactions take the write lock at BEGIN:
// a deferred transaction that reads and then writes can fail with
// SQLITE_BUSY at once, without waiting, when another process wrote in
// between. Read-only transactions still begin deferred.
// synchronous(NORMAL) is SQLite's advice for WAL: a process crash loses
// nothing, a power loss at most the last commits, and a commit no longer
// waits for the disk; rarer checkpoints write a page rewritten by many
// commits once. The page cache stays at SQLite's default size (but see
// archiveCacheKiB) and the file is not memory-mapped: both would count in
// the server's memory, which idle sessions should dominate.
var dsnParams = url.Values{
	"_pragma": {"busy_timeout(5000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)", "wal_autocheckpoint(8192)"},
	"_txlock": {"immediate"},
}.Encode()

// Open opens the database at path, creating it and its parent directory
// (mode 0700) if missing, and brings its schema up to date. It fails if the
// schema is newer than this program knows.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, migrations)
}

func open(ctx context.Context, path string, steps []string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Create the file ourselves so that it is private from the start:
	// SQLite would create it with the umask's permissions, and it holds
	// credentials. The -wal and -shm files inherit these permissions.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := migrate(ctx, db, steps); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxIdle)
	return &Store{db: db}, nil
}

// dsn builds a SQLite URI for an absolute path. Characters that URIs give a
// meaning to are escaped so that any file name works.
func dsn(abs string) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // Windows drive letters: file:/C:/...
	}
	p = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
	return "file:" + p + "?" + dsnParams
}

// Close closes the database. Calls in progress may fail afterwards.
func (s *Store) Close() error {
	s.deep.close()
	s.stmts.close()
	s.wmu.Lock()
	s.closeArch()
	s.wmu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// isPrimaryKeyViolation reports whether err is SQLite refusing a duplicate
// primary key. It looks at the result code rather than the message text,
// which changes between SQLite versions.
func isPrimaryKeyViolation(err error) bool {
	var se *sqlitedrv.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return true
	}
	return false
}

// inTx runs fn in a write transaction and commits it if fn succeeds.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return runTx(ctx, s.db.BeginTx, fn)
}

// inArchiveTx is inTx on the archive writer's connection; fn gets the
// INSERT of n rows (archiveInsert), prepared once on that connection for
// each n it asks for. The transaction is begun and ended by statements on
// the connection rather than as a database/sql Tx: a Tx runs a statement
// prepared on its connection only by preparing it anew (Tx.StmtContext),
// which compiled the batch's INSERTs again for every batch.
func (s *Store) inArchiveTx(ctx context.Context, fn func(insert func(n int) (*sql.Stmt, error)) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.arch == nil {
		c, err := s.db.Conn(ctx)
		if err != nil {
			return err
		}
		if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", archiveCacheKiB)); err != nil {
			c.Close()
			return err
		}
		s.arch, s.archInserts = c, make(map[int]*sql.Stmt)
	}
	insert := func(n int) (*sql.Stmt, error) {
		st := s.archInserts[n]
		if st == nil {
			var err error
			if st, err = s.arch.PrepareContext(ctx, archiveInsert(n)); err != nil {
				return nil, err
			}
			s.archInserts[n] = st
		}
		return st, nil
	}
	err := s.archTx(ctx, func() error { return fn(insert) })
	if err != nil && errors.Is(err, sql.ErrConnDone) {
		s.closeArch() // opened anew next time
	}
	return err
}

// archTx runs fn in a write transaction on arch (IMMEDIATE, as _txlock
// makes the pool's), committed if fn succeeds and rolled back otherwise.
func (s *Store) archTx(ctx context.Context, fn func() error) error {
	if _, err := s.arch.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	err := fn()
	if err == nil {
		_, err = s.arch.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		// Also after a failed COMMIT, which leaves the transaction open.
		// Not ctx: the transaction must end even if ctx is done.
		s.arch.ExecContext(context.Background(), "ROLLBACK")
	}
	return err
}

// closeArch closes the archive writer's connection and its statements;
// wmu is held.
func (s *Store) closeArch() {
	if s.arch == nil {
		return
	}
	for _, st := range s.archInserts {
		st.Close()
	}
	s.arch.Close()
	s.arch, s.archInserts = nil, nil
}

func runTx(ctx context.Context, begin func(context.Context, *sql.TxOptions) (*sql.Tx, error), fn func(tx *sql.Tx) error) error {
	tx, err := begin(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func insertCredentials(ctx context.Context, tx *sql.Tx, user string, creds []storage.Credential) error {
	for _, c := range creds {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO credentials (username, hash, salt, iterations, stored_key, server_key) VALUES (?, ?, ?, ?, ?, ?)`,
			user, c.Hash, c.Salt, c.Iterations, c.StoredKey, c.ServerKey)
		if err != nil {
			return err
		}
	}
	return nil
}

// CreateAccount implements storage.Accounts.
func (s *Store) CreateAccount(ctx context.Context, user string, creds []storage.Credential) error {
	domain, err := storage.UserDomain(user)
	if err != nil {
		return fmt.Errorf("sqlite: create account: %w", err)
	}
	if err := storage.CheckCredentials(creds); err != nil {
		return fmt.Errorf("sqlite: create account %s: %w", user, err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// The primary key decides between concurrent creators, in this
		// process or another, rather than a check-then-insert.
		_, err := tx.ExecContext(ctx, `INSERT INTO accounts (username, domain) VALUES (?, ?)`, user, domain)
		if isPrimaryKeyViolation(err) {
			return storage.ErrExists
		}
		if err != nil {
			return err
		}
		return insertCredentials(ctx, tx, user, creds)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create account %s: %w", user, err)
	}
	return nil
}

// SetCredentials implements storage.Accounts.
func (s *Store) SetCredentials(ctx context.Context, user string, creds []storage.Credential) error {
	if err := storage.CheckCredentials(creds); err != nil {
		return fmt.Errorf("sqlite: set credentials %s: %w", user, err)
	}
	// Forgotten once committed (or failed): a login that read the old
	// credentials meanwhile cannot put them back (credCache.put).
	defer s.creds.Forget(user)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE username = ?`, user).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return storage.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE username = ?`, user); err != nil {
			return err
		}
		return insertCredentials(ctx, tx, user, creds)
	})
	if err != nil {
		return fmt.Errorf("sqlite: set credentials %s: %w", user, err)
	}
	return nil
}

// Credential implements storage.Accounts.
func (s *Store) Credential(ctx context.Context, user, hash string) (storage.Credential, error) {
	return s.creds.Read(user, hash, func() (storage.Credential, error) {
		c := storage.Credential{Hash: hash}
		var err error
		if rerr := s.deep.run(ctx, func() {
			err = s.queryRow(ctx,
				`SELECT salt, iterations, stored_key, server_key FROM credentials WHERE username = ? AND hash = ?`,
				user, hash).Scan(&c.Salt, &c.Iterations, &c.StoredKey, &c.ServerKey)
		}); rerr != nil {
			err = rerr
		}
		if errors.Is(err, sql.ErrNoRows) {
			err = storage.ErrNotFound
		}
		if err != nil {
			return storage.Credential{}, fmt.Errorf("sqlite: credential %s %s: %w", user, hash, err)
		}
		return c, nil
	})
}

// DeleteAccount implements storage.Accounts.
func (s *Store) DeleteAccount(ctx context.Context, user string) error {
	defer s.creds.Forget(user)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM accounts WHERE username = ?`, user)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return storage.ErrNotFound
		}
		// Explicit deletes rather than relying on ON DELETE CASCADE alone:
		// the roster tables deliberately have no foreign key to accounts,
		// and a connection opened without foreign_keys(1) must not leave
		// credentials behind.
		for _, q := range []string{
			`DELETE FROM credentials WHERE username = ?`,
			`DELETE FROM roster_groups WHERE username = ?`,
			`DELETE FROM roster_items WHERE username = ?`,
			`DELETE FROM roster_versions WHERE username = ?`,
			`DELETE FROM offline_messages WHERE username = ?`,
			`DELETE FROM blocklist WHERE username = ?`,
			`DELETE FROM private_xml WHERE username = ?`,
			`DELETE FROM archive WHERE username = ?`,
			`DELETE FROM archive_prefs_jids WHERE username = ?`,
			`DELETE FROM archive_prefs WHERE username = ?`,
			`DELETE FROM invites WHERE inviter = ?`, // whose contact would the invitee become?
		} {
			if _, err := tx.ExecContext(ctx, q, user); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete account %s: %w", user, err)
	}
	return nil
}

// ListAccounts implements storage.Accounts.
func (s *Store) ListAccounts(ctx context.Context, domain string) ([]string, error) {
	q, args := `SELECT username FROM accounts ORDER BY username`, []any(nil)
	if domain != "" {
		q, args = `SELECT username FROM accounts WHERE domain = ? ORDER BY username`, []any{domain}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list accounts %s: %w", domain, err)
	}
	defer rows.Close()
	var users []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("sqlite: list accounts %s: %w", domain, err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list accounts %s: %w", domain, err)
	}
	return users, nil
}

// BackupTo writes a consistent copy of the database to path, a file that
// must not exist yet, while the database stays in use: VACUUM INTO reads
// one snapshot, so writes committed meanwhile, by this process or
// another, are either wholly in the copy or not at all. The copy is
// compacted and has no write-ahead log to go with it.
func (s *Store) BackupTo(ctx context.Context, path string) error {
	if _, err := s.db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("sqlite: backup to %s: %w", path, err)
	}
	return nil
}
