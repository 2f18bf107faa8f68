// Package store keeps what a bridge must not forget across restarts, in a
// SQLite file of its own: the users' registrations (credentials sealed
// with a key kept beside the file), the map between the other network's
// message ids and XMPP's, the contacts the bridge put in each roster, the
// stanzas waiting for a user who is away, and the XMPP events already
// handled, so that one sent again after a crash is not handled twice.
package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound reports a missing registration or id.
var ErrNotFound = errors.New("store: not found")

// Store is a bridge's database. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	aead cipher.AEAD
	wmu  sync.Mutex // one writer at a time, in Go rather than in SQLite's busy wait
}

var schema = []string{
	`CREATE TABLE IF NOT EXISTS registrations (jid TEXT PRIMARY KEY, sealed BLOB NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS ids (
		user TEXT NOT NULL, peer TEXT NOT NULL, legacy TEXT NOT NULL, xmpp TEXT NOT NULL,
		PRIMARY KEY (user, peer, legacy))`,
	`CREATE INDEX IF NOT EXISTS ids_xmpp ON ids (user, peer, xmpp)`,
	`CREATE TABLE IF NOT EXISTS contacts (user TEXT NOT NULL, contact TEXT NOT NULL, name TEXT NOT NULL, groups TEXT NOT NULL DEFAULT '', PRIMARY KEY (user, contact))`,
	`CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, stanza BLOB NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS queue_user ON queue (user, seq)`,
	`CREATE TABLE IF NOT EXISTS handled (event TEXT PRIMARY KEY, at INTEGER NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS inbox (event TEXT PRIMARY KEY, stanza BLOB NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, stanza BLOB NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
}

// columns are those added to a table after its first version: a
// database made before gets them when opened.
var columns = []struct{ table, name, def string }{
	{"contacts", "groups", "TEXT NOT NULL DEFAULT ''"},
}

// Open opens or creates the database in dir (bridge.db), with the key
// that seals credentials in bridge.key (made on first use, readable by
// the owner only).
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	key, err := loadKey(filepath.Join(dir, "bridge.key"))
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	path := filepath.Join(dir, "bridge.db")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	f.Close()
	params := url.Values{"_pragma": {"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)"}, "_txlock": {"immediate"}}
	u := url.URL{Scheme: "file", Path: path, RawQuery: params.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db.SetMaxOpenConns(4)
	for _, q := range schema {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: schema: %w", err)
		}
	}
	for _, c := range columns {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`, c.table, c.name).Scan(&n); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: schema: %w", err)
		}
		if n > 0 {
			continue
		}
		if _, err := db.ExecContext(ctx, `ALTER TABLE `+c.table+` ADD COLUMN `+c.name+` `+c.def); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: schema: %s.%s: %w", c.table, c.name, err)
		}
	}
	return &Store{db: db, aead: aead}, nil
}

// loadKey reads the sealing key, or makes one.
func loadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("store: %s: want 32 bytes, have %d", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("store: %w", err)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return b, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) write(ctx context.Context, q string, args ...any) (sql.Result, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.db.ExecContext(ctx, q, args...)
}

// SetRegistration seals and stores a user's credentials.
func (s *Store) SetRegistration(ctx context.Context, jid string, creds map[string]string) error {
	plain, err := json.Marshal(creds)
	if err != nil {
		return err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	// The JID is authenticated with the credentials: a sealed blob moved
	// to another user's row does not open.
	sealed := s.aead.Seal(nonce, nonce, plain, []byte(jid))
	_, err = s.write(ctx, `INSERT INTO registrations (jid, sealed) VALUES (?, ?) ON CONFLICT (jid) DO UPDATE SET sealed = excluded.sealed`, jid, sealed)
	return err
}

// Registration returns a user's credentials, or ErrNotFound.
func (s *Store) Registration(ctx context.Context, jid string) (map[string]string, error) {
	var sealed []byte
	err := s.db.QueryRowContext(ctx, `SELECT sealed FROM registrations WHERE jid = ?`, jid).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("store: sealed credentials too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(jid))
	if err != nil {
		return nil, fmt.Errorf("store: credentials of %s do not open: %w", jid, err)
	}
	var creds map[string]string
	return creds, json.Unmarshal(plain, &creds)
}

// Registered lists the registered users.
func (s *Store) Registered(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT jid FROM registrations ORDER BY jid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var j string
		if err := rows.Scan(&j); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Forget removes everything kept for a user: registration, ids, contacts
// and queued stanzas.
func (s *Store) Forget(ctx context.Context, jid string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM registrations WHERE jid = ?`, `DELETE FROM ids WHERE user = ?`, `DELETE FROM contacts WHERE user = ?`, `DELETE FROM queue WHERE user = ?`} {
		if _, err := tx.ExecContext(ctx, q, jid); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// MapID records that a message exchanged by user with peer has the other
// network's id legacy and the XMPP id xmpp.
func (s *Store) MapID(ctx context.Context, user, peer, legacy, xmpp string) error {
	_, err := s.write(ctx, `INSERT INTO ids (user, peer, legacy, xmpp) VALUES (?, ?, ?, ?) ON CONFLICT (user, peer, legacy) DO UPDATE SET xmpp = excluded.xmpp`, user, peer, legacy, xmpp)
	return err
}

// IDMap is one entry of the map between message ids.
type IDMap struct {
	User, Peer, Legacy, XMPP string
}

// MapIDs records many entries in one transaction: recording each message
// in a transaction of its own would cost more than relaying it.
func (s *Store) MapIDs(ctx context.Context, ms []IDMap) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO ids (user, peer, legacy, xmpp) VALUES (?, ?, ?, ?) ON CONFLICT (user, peer, legacy) DO UPDATE SET xmpp = excluded.xmpp`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, m := range ms {
		if _, err := st.ExecContext(ctx, m.User, m.Peer, m.Legacy, m.XMPP); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// RecentIDs returns the last limit entries recorded, oldest first.
func (s *Store) RecentIDs(ctx context.Context, limit int) ([]IDMap, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT user, peer, legacy, xmpp FROM (SELECT rowid, user, peer, legacy, xmpp FROM ids ORDER BY rowid DESC LIMIT ?) ORDER BY rowid`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []IDMap
	for rows.Next() {
		var m IDMap
		if err := rows.Scan(&m.User, &m.Peer, &m.Legacy, &m.XMPP); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// XMPPID returns the XMPP id of a message by its network id.
func (s *Store) XMPPID(ctx context.Context, user, peer, legacy string) (string, error) {
	return s.one(ctx, `SELECT xmpp FROM ids WHERE user = ? AND peer = ? AND legacy = ?`, user, peer, legacy)
}

// LegacyID returns the network id of a message by its XMPP id.
func (s *Store) LegacyID(ctx context.Context, user, peer, xmpp string) (string, error) {
	return s.one(ctx, `SELECT legacy FROM ids WHERE user = ? AND peer = ? AND xmpp = ? LIMIT 1`, user, peer, xmpp)
}

func (s *Store) one(ctx context.Context, q string, args ...any) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, q, args...).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return v, err
}

// AddContact records a contact the bridge put in user's roster, with its
// name and groups; it reports whether the record is new or changed, that
// is whether the roster needs the contact (again).
func (s *Store) AddContact(ctx context.Context, user, contact, name string, groups []string) (changed bool, err error) {
	g, err := json.Marshal(groups)
	if err != nil {
		return false, err
	}
	res, err := s.write(ctx, `INSERT INTO contacts (user, contact, name, groups) VALUES (?, ?, ?, ?)
		ON CONFLICT (user, contact) DO UPDATE SET name = excluded.name, groups = excluded.groups
		WHERE name <> excluded.name OR groups <> excluded.groups`, user, contact, name, string(g))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// RemoveContact forgets a contact.
func (s *Store) RemoveContact(ctx context.Context, user, contact string) error {
	_, err := s.write(ctx, `DELETE FROM contacts WHERE user = ? AND contact = ?`, user, contact)
	return err
}

// Contacts lists the contacts the bridge put in user's roster.
func (s *Store) Contacts(ctx context.Context, user string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT contact FROM contacts WHERE user = ? ORDER BY contact`, user)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Queued is a stanza waiting for its user.
type Queued struct {
	Seq    int64
	Stanza []byte
}

// Enqueue keeps a stanza for user until Dequeue; it returns how many wait
// for the user afterwards.
func (s *Store) Enqueue(ctx context.Context, user string, stanza []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO queue (user, stanza) VALUES (?, ?)`, user, stanza); err != nil {
		return 0, err
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM queue WHERE user = ?`, user).Scan(&n)
	return n, err
}

// Queue returns the stanzas waiting for user, oldest first.
func (s *Store) Queue(ctx context.Context, user string) ([]Queued, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, stanza FROM queue WHERE user = ? ORDER BY seq`, user)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Queued
	for rows.Next() {
		var q Queued
		if err := rows.Scan(&q.Seq, &q.Stanza); err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// Dequeue removes user's stanzas up to and including seq.
func (s *Store) Dequeue(ctx context.Context, user string, seq int64) error {
	_, err := s.write(ctx, `DELETE FROM queue WHERE user = ? AND seq <= ?`, user, seq)
	return err
}

// DropOldest removes user's oldest queued stanzas beyond keep.
func (s *Store) DropOldest(ctx context.Context, user string, keep int) (int64, error) {
	res, err := s.write(ctx, `DELETE FROM queue WHERE user = ? AND seq NOT IN (SELECT seq FROM queue WHERE user = ? ORDER BY seq DESC LIMIT ?)`, user, user, keep)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Handle records an XMPP event as handled; it reports false when it was
// handled before, so that an event sent again after a crash is not acted
// on twice.
func (s *Store) Handle(ctx context.Context, event string, now time.Time) (bool, error) {
	res, err := s.write(ctx, `INSERT INTO handled (event, at) VALUES (?, ?) ON CONFLICT (event) DO NOTHING`, event, now.Unix())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ForgetHandled removes the records of events handled before cutoff,
// which no link sends again by then.
func (s *Store) ForgetHandled(ctx context.Context, cutoff time.Time) error {
	_, err := s.write(ctx, `DELETE FROM handled WHERE at < ?`, cutoff.Unix())
	return err
}

// Meta returns a value the bridge keeps about itself, making it with
// make on first use.
func (s *Store) Meta(ctx context.Context, key string, make func() string) (string, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	v = make()
	_, err = s.db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)`, key, v)
	return v, err
}

// Take keeps a stanza received as event until Done, unless the event was
// handled or taken before; it reports whether it is new. Once it returns,
// the event survives a crash: the link that brought it may acknowledge it.
func (s *Store) Take(ctx context.Context, event string, stanza []byte) (bool, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	res, err := s.db.ExecContext(ctx, `INSERT INTO inbox (event, stanza) SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM handled WHERE event = ?) ON CONFLICT (event) DO NOTHING`, event, stanza, event)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Done marks an event taken as handled.
func (s *Store) Done(ctx context.Context, event string, now time.Time) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM inbox WHERE event = ?`, event); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO handled (event, at) VALUES (?, ?) ON CONFLICT (event) DO NOTHING`, event, now.Unix()); err != nil {
		return err
	}
	return tx.Commit()
}

// Taken is an event taken and not done.
type Taken struct {
	Event  string
	Stanza []byte
}

// Inbox returns the events taken and not done, as after a crash.
func (s *Store) Inbox(ctx context.Context) ([]Taken, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT event, stanza FROM inbox ORDER BY rowid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Taken
	for rows.Next() {
		var t Taken
		if err := rows.Scan(&t.Event, &t.Stanza); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Post keeps a stanza for XMPP until Sent and returns its number.
func (s *Store) Post(ctx context.Context, stanza []byte) (int64, error) {
	res, err := s.write(ctx, `INSERT INTO outbox (stanza) VALUES (?)`, stanza)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// Sent forgets a posted stanza once XMPP acknowledged it.
func (s *Store) Sent(ctx context.Context, seq int64) error {
	_, err := s.write(ctx, `DELETE FROM outbox WHERE seq = ?`, seq)
	return err
}

// Posted returns the stanzas posted and not acknowledged, oldest first.
func (s *Store) Posted(ctx context.Context) ([]Queued, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, stanza FROM outbox ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Queued
	for rows.Next() {
		var q Queued
		if err := rows.Scan(&q.Seq, &q.Stanza); err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// IsNotFound reports ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
