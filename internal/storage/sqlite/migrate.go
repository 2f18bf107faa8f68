package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// migrations is the ordered schema history: migrations[i] brings the schema
// from version i to version i+1. Entries are never edited once released,
// only appended, because databases in the field have already applied them.
//
// The SQL sticks to what PostgreSQL also accepts (apart from BLOB, which a
// PostgreSQL backend spells BYTEA), so that the two backends keep the same
// shape.
var migrations = []string{
	// 1: accounts, credentials and rosters.
	`CREATE TABLE accounts (
		username   TEXT PRIMARY KEY,
		domain     TEXT NOT NULL,
		created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
	);
	CREATE INDEX accounts_domain ON accounts (domain, username);

	CREATE TABLE credentials (
		username   TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
		hash       TEXT NOT NULL,
		salt       BLOB NOT NULL,
		iterations INTEGER NOT NULL,
		stored_key BLOB NOT NULL,
		server_key BLOB NOT NULL,
		PRIMARY KEY (username, hash)
	);

	CREATE TABLE roster_items (
		username     TEXT NOT NULL,
		contact      TEXT NOT NULL,
		name         TEXT NOT NULL,
		subscription TEXT NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
		ask          BOOLEAN NOT NULL,
		pending_in   BOOLEAN NOT NULL,
		approved     BOOLEAN NOT NULL,
		PRIMARY KEY (username, contact)
	);

	CREATE TABLE roster_groups (
		username TEXT NOT NULL,
		contact  TEXT NOT NULL,
		grp      TEXT NOT NULL,
		PRIMARY KEY (username, contact, grp),
		FOREIGN KEY (username, contact) REFERENCES roster_items (username, contact) ON DELETE CASCADE
	);

	CREATE TABLE roster_versions (
		username TEXT PRIMARY KEY,
		version  BIGINT NOT NULL
	);`,

	// 2: offline messages (XEP-0160).
	`CREATE TABLE offline_messages (
		id        INTEGER PRIMARY KEY AUTOINCREMENT,
		username  TEXT NOT NULL,
		stored_at TIMESTAMP NOT NULL,
		stanza    BLOB NOT NULL
	);
	CREATE INDEX offline_messages_user ON offline_messages (username, id);`,

	// 3: blocking command (XEP-0191).
	`CREATE TABLE blocklist (
		username TEXT NOT NULL,
		jid      TEXT NOT NULL,
		PRIMARY KEY (username, jid)
	);`,

	// 4: private XML storage (XEP-0049) and vCards (XEP-0054).
	`CREATE TABLE private_xml (
		username TEXT NOT NULL,
		xkey     TEXT NOT NULL,
		data     BLOB NOT NULL,
		PRIMARY KEY (username, xkey)
	);`,

	// 5: message archive (XEP-0313). Stamps are Unix microseconds so that
	// range queries compare integers in every database; ids are fixed-width
	// strings whose byte order is the archive order.
	`CREATE TABLE archive (
		username TEXT NOT NULL,
		id       TEXT NOT NULL,
		stamp_us BIGINT NOT NULL,
		with_jid TEXT NOT NULL,
		stanza   BLOB NOT NULL,
		PRIMARY KEY (username, id)
	);
	CREATE INDEX archive_with ON archive (username, with_jid, id);
	CREATE INDEX archive_stamp ON archive (stamp_us);

	CREATE TABLE archive_prefs (
		username     TEXT PRIMARY KEY,
		default_mode TEXT NOT NULL CHECK (default_mode IN ('always', 'never', 'roster'))
	);

	CREATE TABLE archive_prefs_jids (
		username TEXT NOT NULL,
		jid      TEXT NOT NULL,
		mode     TEXT NOT NULL CHECK (mode IN ('always', 'never')),
		PRIMARY KEY (username, jid)
	);`,

	// 6: FAST tokens (XEP-0484), hashed. seq orders the tokens of one
	// user-agent, newest highest; expiry is Unix microseconds. A password
	// change replaces the credentials, which removes the tokens (the
	// trigger; PostgreSQL would spell it as a trigger function).
	`CREATE TABLE fast_tokens (
		username   TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
		agent      TEXT NOT NULL,
		seq        BIGINT NOT NULL,
		mechanism  TEXT NOT NULL,
		token_hash BLOB NOT NULL,
		expiry     BIGINT NOT NULL,
		count      BIGINT NOT NULL DEFAULT 0,
		PRIMARY KEY (username, agent, seq)
	);

	CREATE TRIGGER fast_tokens_password AFTER DELETE ON credentials
	BEGIN
		DELETE FROM fast_tokens WHERE username = OLD.username;
	END;`,

	// 7: personal eventing (XEP-0163): nodes with their configuration and
	// items. seq orders a node's items, newest highest; published is Unix
	// microseconds. Deleting the account removes them (the trigger).
	`CREATE TABLE pep_nodes (
		owner          TEXT NOT NULL,
		node           TEXT NOT NULL,
		access_model   TEXT NOT NULL,
		max_items      INTEGER NOT NULL,
		persist_items  BOOLEAN NOT NULL,
		send_last      TEXT NOT NULL,
		notify_retract BOOLEAN NOT NULL,
		PRIMARY KEY (owner, node)
	);

	CREATE TABLE pep_items (
		owner     TEXT NOT NULL,
		node      TEXT NOT NULL,
		id        TEXT NOT NULL,
		seq       BIGINT NOT NULL,
		publisher TEXT NOT NULL,
		payload   BLOB NOT NULL,
		published BIGINT NOT NULL,
		PRIMARY KEY (owner, node, id),
		FOREIGN KEY (owner, node) REFERENCES pep_nodes (owner, node) ON DELETE CASCADE
	);
	CREATE INDEX pep_items_seq ON pep_items (owner, node, seq);

	CREATE TRIGGER pep_account_deleted AFTER DELETE ON accounts
	BEGIN
		DELETE FROM pep_items WHERE owner = OLD.username;
		DELETE FROM pep_nodes WHERE owner = OLD.username;
	END;`,

	// 8: no separate index for archive queries by correspondent. It
	// doubled the cost of archiving (two B-tree pages scattered across
	// users written per archived message, more than routing it); such
	// queries now walk the user's archive by its primary key, which for
	// the archive of one user is fast enough.
	`DROP INDEX archive_with;`,

	// 9: the event an offline message was pushed for
	// (storage.WithEventID), so that an event processed again after a
	// crash does not store it twice. NULLs do not collide in a unique
	// index: messages pushed without one are all kept.
	`ALTER TABLE offline_messages ADD COLUMN event TEXT;
	CREATE UNIQUE INDEX offline_messages_event ON offline_messages (username, event);`,

	// 10: multi-user chat rooms (XEP-0045). config is opaque to storage,
	// so that the conference service adds settings without a migration.
	// Affiliations have no foreign key to rooms: a temporary room, never
	// stored, has them too. A room's archive and vCard live in archive
	// and private_xml under the room's JID.
	`CREATE TABLE muc_rooms (
		room    TEXT PRIMARY KEY,
		service TEXT NOT NULL,
		config  BLOB NOT NULL
	);
	CREATE INDEX muc_rooms_service ON muc_rooms (service, room);

	CREATE TABLE muc_affiliations (
		room        TEXT NOT NULL,
		jid         TEXT NOT NULL,
		affiliation TEXT NOT NULL CHECK (affiliation IN ('owner', 'admin', 'member', 'outcast')),
		nick        TEXT NOT NULL,
		reason      TEXT NOT NULL,
		PRIMARY KEY (room, jid)
	);`,

	// 11: the events bound for application services. A queue's row
	// numbers its events (next_seq) and its transactions (next_txn,
	// after a random epoch: storage.AppServiceTxnID), counts what waits
	// (depth) and names the open transaction, made of the events up to
	// open_last; both NULL when none is open.
	`CREATE TABLE appservice_queues (
		service   TEXT PRIMARY KEY,
		epoch     TEXT NOT NULL,
		next_seq  BIGINT NOT NULL,
		next_txn  BIGINT NOT NULL,
		depth     BIGINT NOT NULL,
		open_txn  TEXT,
		open_last BIGINT
	);

	CREATE TABLE appservice_events (
		service TEXT NOT NULL,
		seq     BIGINT NOT NULL,
		data    BLOB NOT NULL,
		PRIMARY KEY (service, seq)
	);`,

	// 12: invitations (XEP-0401, XEP-0379), by token until used or
	// expired; expires in Unix microseconds. inviter is '' for an
	// invitation to register only.
	`CREATE TABLE invites (
		token   TEXT PRIMARY KEY,
		domain  TEXT NOT NULL,
		inviter TEXT NOT NULL,
		expires INTEGER NOT NULL
	);
	CREATE INDEX invites_expires ON invites (expires);`,

	// 13: the event an archive entry was written for
	// (storage.ArchivedMessage.Event), NULL if none. No index: an event
	// sent again is looked for among its user's latest entries only
	// (storage.ArchivedEventWindow), by the primary key.
	`ALTER TABLE archive ADD COLUMN event TEXT;`,
}

// migrate brings the database up to len(steps). Each step runs in its own
// transaction together with its schema_migrations row, so a crash leaves the
// schema at a well-defined version. Two processes opening a fresh file at
// once are safe: the version is re-read inside each write transaction, which
// SQLite serialises.
func migrate(ctx context.Context, db *sql.DB, steps []string) error {
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
	)`
	if _, err := db.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for {
		done, err := migrateOne(ctx, db, steps)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// migrateOne applies the next pending step, if any, and reports whether
// the schema is already current.
func migrateOne(ctx context.Context, db *sql.DB, steps []string) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()

	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return false, err
	}
	known := len(steps)
	switch {
	case current > known:
		return false, fmt.Errorf("%w: the database has schema version %d, newer than version %d, the newest this program knows; a newer ambrosia has used it: run that one (ambrosia version --data DIR shows both versions)", storage.ErrSchemaTooNew, current, known)
	case current == known:
		return true, nil
	}
	next := current + 1
	if _, err := tx.ExecContext(ctx, steps[current]); err != nil {
		return false, fmt.Errorf("migration %d: %w", next, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES (?)`, next); err != nil {
		return false, fmt.Errorf("migration %d: record version: %w", next, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migration %d: commit: %w", next, err)
	}
	return false, nil
}

// queryRower is what *sql.DB and *sql.Tx have in common for schemaVersion.
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// schemaVersion returns the highest applied migration, 0 for none.
func schemaVersion(ctx context.Context, q queryRower) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// Schema reports the schema version of the database at path and the
// newest this program knows, without changing the database (it is opened
// read-only); 0 for a database no migration ran on.
func Schema(ctx context.Context, path string) (current, known int, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, 0, err
	}
	if _, err := os.Stat(abs); err != nil {
		return 0, 0, fmt.Errorf("sqlite: %w", err)
	}
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.ToSlash(abs))
	db, err := sql.Open("sqlite", "file:"+p+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: %w", err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return 0, 0, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if n == 0 {
		return 0, len(migrations), nil
	}
	current, err = schemaVersion(ctx, db)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return current, len(migrations), nil
}
