// Package postgres is the shared storage backend: several session-manager
// instances, and the "ambrosia user" commands, use one PostgreSQL database
// (or a PostgreSQL-compatible distributed engine) at once.
//
// It has the semantics of the SQLite backend. Where SQLite gets them from
// serialising every writer, this backend uses PostgreSQL's row locks for
// single-row updates and SERIALIZABLE transactions, retried on
// serialization failures, where a write depends on what was read first
// (the offline quota, FAST token counts).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/credcache"
)

var (
	_ storage.Store      = (*Store)(nil)
	_ storage.FastTokens = (*Store)(nil)
	_ storage.PEP        = (*Store)(nil)
	_ storage.MUC        = (*Store)(nil)
)

// Store implements storage.Store on a PostgreSQL database. It is safe for
// concurrent use, by goroutines and by other processes sharing the
// database.
type Store struct {
	pool *pgxpool.Pool
	// creds keeps the credentials logins read (CacheCredentials).
	creds credcache.Cache

	lmu        sync.Mutex
	closed     bool
	stopListen []func() // stops CacheCredentials' listeners
	// listenRetry replaces the package's listenRetry when set (tests).
	listenRetry time.Duration
}

// Open connects to the database named by dsn (a postgres:// URL or a
// keyword/value string, as libpq takes; pool_max_conns and the other
// pgxpool settings are accepted) and brings its schema up to date. It fails
// if the schema is newer than this program knows.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return open(ctx, dsn, migrations)
}

// defaultMaxConns is the least size of the connection pool when the DSN
// does not choose it (pool_max_conns).
const defaultMaxConns = 16

func open(ctx context.Context, dsn string, steps []string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx leaves any password out of this error.
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgx's default, the number of CPUs (at least 4), is too few for
		// a session manager that answers credential lookups and reads
		// rosters ahead (package prefetch) while it processes events.
		cfg.MaxConns = max(cfg.MaxConns, defaultMaxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	// The pool connects lazily: connect now, so that an unreachable
	// server is reported as such rather than as a failed migration.
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	if err := migrate(ctx, pool, steps); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Database, err)
	}
	return &Store{pool: pool}, nil
}

// Close closes every connection, waiting for the ones in use to be
// returned.
func (s *Store) Close() error {
	s.lmu.Lock()
	s.closed = true
	stop := s.stopListen
	s.stopListen = nil
	s.lmu.Unlock()
	for _, f := range stop {
		f()
	}
	s.pool.Close()
	return nil
}

// SQLSTATE codes the backend reacts to.
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// isUniqueViolation reports whether err is the database refusing a
// duplicate primary key or unique value.
func isUniqueViolation(err error) bool { return pgCode(err) == codeUniqueViolation }

// isRetryable reports whether the transaction that failed with err may
// succeed if run again: the database aborted it to keep concurrent
// transactions serializable or to break a deadlock.
func isRetryable(err error) bool {
	switch pgCode(err) {
	case codeSerializationFailure, codeDeadlockDetected:
		return true
	}
	return false
}

// maxAttempts bounds the retries of a transaction. Conflicts need
// concurrent writes to the same user's rows, so a handful of attempts
// settles them; more would hide a livelock.
const maxAttempts = 10

// inTx runs fn in a read-write transaction at iso and commits it if fn
// succeeds, running it again when the database aborted it for a conflict
// with a concurrent transaction. fn must therefore only touch its own
// results through the transaction and reset what it captures.
func (s *Store) inTx(ctx context.Context, iso pgx.TxIsoLevel, fn func(tx pgx.Tx) error) error {
	var err error
	for attempt := range maxAttempts {
		err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: iso}, fn)
		if err == nil || !isRetryable(err) {
			return err
		}
		// A short, growing pause lets the winner commit.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * time.Millisecond):
		}
	}
	return err
}

// readTx runs fn in a read-only transaction that sees one snapshot, so
// that several queries agree with each other.
func (s *Store) readTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var err error
	for attempt := range maxAttempts {
		err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
		if err == nil || !isRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * time.Millisecond):
		}
	}
	return err
}

// bytea returns b, or an empty slice for nil: pgx sends a nil slice as
// NULL, and the columns are NOT NULL.
func bytea(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func insertCredentials(ctx context.Context, tx pgx.Tx, user string, creds []storage.Credential) error {
	for _, c := range creds {
		_, err := tx.Exec(ctx,
			`INSERT INTO credentials (username, hash, salt, iterations, stored_key, server_key) VALUES ($1, $2, $3, $4, $5, $6)`,
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
		return fmt.Errorf("postgres: create account: %w", err)
	}
	if err := storage.CheckCredentials(creds); err != nil {
		return fmt.Errorf("postgres: create account %s: %w", user, err)
	}
	err = s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		// The primary key decides between concurrent creators, in this
		// process or another, rather than a check-then-insert.
		_, err := tx.Exec(ctx, `INSERT INTO accounts (username, domain) VALUES ($1, $2)`, user, domain)
		if isUniqueViolation(err) {
			return storage.ErrExists
		}
		if err != nil {
			return err
		}
		return insertCredentials(ctx, tx, user, creds)
	})
	if err != nil {
		return fmt.Errorf("postgres: create account %s: %w", user, err)
	}
	return nil
}

// lockAccount locks user's account row until tx ends, so that a
// concurrent DeleteAccount waits, and returns ErrNotFound if there is no
// such account.
func lockAccount(ctx context.Context, tx pgx.Tx, user string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM accounts WHERE username = $1 FOR UPDATE`, user).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	return err
}

// SetCredentials implements storage.Accounts. It also removes the user's
// FAST tokens: a token must not outlive the password it was earned with.
func (s *Store) SetCredentials(ctx context.Context, user string, creds []storage.Credential) error {
	if err := storage.CheckCredentials(creds); err != nil {
		return fmt.Errorf("postgres: set credentials %s: %w", user, err)
	}
	// Forgotten here once committed; other processes hear of it.
	defer s.creds.Forget(user)
	err := s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		if err := lockAccount(ctx, tx, user); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM credentials WHERE username = $1`, user); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM fast_tokens WHERE username = $1`, user); err != nil {
			return err
		}
		if err := notifyCredentials(ctx, tx, user); err != nil {
			return err
		}
		return insertCredentials(ctx, tx, user, creds)
	})
	if err != nil {
		return fmt.Errorf("postgres: set credentials %s: %w", user, err)
	}
	return nil
}

// Credential implements storage.Accounts.
func (s *Store) Credential(ctx context.Context, user, hash string) (storage.Credential, error) {
	return s.creds.Read(user, hash, func() (storage.Credential, error) {
		c := storage.Credential{Hash: hash}
		err := s.pool.QueryRow(ctx,
			`SELECT salt, iterations, stored_key, server_key FROM credentials WHERE username = $1 AND hash = $2`,
			user, hash).Scan(&c.Salt, &c.Iterations, &c.StoredKey, &c.ServerKey)
		if errors.Is(err, pgx.ErrNoRows) {
			err = storage.ErrNotFound
		}
		if err != nil {
			return storage.Credential{}, fmt.Errorf("postgres: credential %s %s: %w", user, hash, err)
		}
		return c, nil
	})
}

// DeleteAccount implements storage.Accounts.
func (s *Store) DeleteAccount(ctx context.Context, user string) error {
	defer s.creds.Forget(user)
	err := s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM accounts WHERE username = $1`, user)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		if err := notifyCredentials(ctx, tx, user); err != nil {
			return err
		}
		// The per-user tables other than credentials and tokens have no
		// foreign key to accounts (a roster may exist without an account),
		// so they are cleared one by one.
		for _, q := range []string{
			`DELETE FROM credentials WHERE username = $1`,
			`DELETE FROM fast_tokens WHERE username = $1`,
			`DELETE FROM roster_items WHERE username = $1`,
			`DELETE FROM roster_groups WHERE username = $1`,
			`DELETE FROM roster_versions WHERE username = $1`,
			`DELETE FROM offline_messages WHERE username = $1`,
			`DELETE FROM blocklist WHERE username = $1`,
			`DELETE FROM private_xml WHERE username = $1`,
			`DELETE FROM archive WHERE username = $1`,
			`DELETE FROM archive_prefs_jids WHERE username = $1`,
			`DELETE FROM archive_prefs WHERE username = $1`,
			`DELETE FROM pep_nodes WHERE owner = $1`, // and, cascading, their items
			`DELETE FROM invites WHERE inviter = $1`, // whose contact would the invitee become?
		} {
			if _, err := tx.Exec(ctx, q, user); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: delete account %s: %w", user, err)
	}
	return nil
}

// ListAccounts implements storage.Accounts.
func (s *Store) ListAccounts(ctx context.Context, domain string) ([]string, error) {
	q, args := `SELECT username FROM accounts ORDER BY username`, []any(nil)
	if domain != "" {
		q, args = `SELECT username FROM accounts WHERE domain = $1 ORDER BY username`, []any{domain}
	}
	users, err := collectStrings(ctx, s.pool, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list accounts %s: %w", domain, err)
	}
	return users, nil
}

// queryer is what a pool and a transaction have in common.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// collectStrings returns the one text column of q's rows, nil for none.
func collectStrings(ctx context.Context, db queryer, q string, args ...any) ([]string, error) {
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if len(out) == 0 {
		out = nil
	}
	return out, err
}
