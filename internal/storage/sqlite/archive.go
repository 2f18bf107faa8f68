package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// AppendArchive implements storage.Archive.
func (s *Store) AppendArchive(ctx context.Context, user string, m storage.ArchivedMessage) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO archive (username, id, stamp_us, with_jid, stanza, event) VALUES (?, ?, ?, ?, ?, ?)`,
			user, m.ID, m.Stamp.UnixMicro(), m.With, m.Stanza, archiveEvent(m.Event))
		if isPrimaryKeyViolation(err) {
			return storage.ErrExists
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: append archive %s %s: %w", user, m.ID, err)
	}
	return nil
}

// archiveEvent is how an entry's event is stored: NULL if it has none.
func archiveEvent(event string) any {
	if event == "" {
		return nil
	}
	return event
}

// archiveRows is how many rows one INSERT of a batch carries (six
// parameters each, far below SQLite's limit of 32,766): a statement per
// row cost more in the driver (binding, stepping, resetting through
// database/sql) than SQLite's own work of inserting the row.
const archiveRows = 100

// archiveChunks are the row counts of the statements a batch is written
// with: archiveRows while enough rows are left, then the rest in powers
// of two, so that each statement is prepared once on the archive
// writer's connection rather than compiled for every batch's remainder
// (a statement of n rows for every n below archiveRows).
var archiveChunks = [...]int{archiveRows, 64, 32, 16, 8, 4, 2, 1}

// archiveInsert returns the INSERT of n archive rows. OR IGNORE rather
// than ON CONFLICT DO NOTHING: with every constraint resolved by ignoring,
// the statement cannot abort half done, so SQLite keeps no statement
// journal for it, which copied every page the statement changed to a
// temporary file (a quarter of the cost of archiving). The only
// constraint a row can break is the primary key (an entry written again);
// NOT NULL cannot be, since no value bound to a NOT NULL column is nil
// (see AppendArchiveBatch).
func archiveInsert(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT OR IGNORE INTO archive (username, id, stamp_us, with_jid, stanza, event) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?)")
	}
	return b.String()
}

// AppendArchiveBatch implements storage.Archive: one transaction on the
// archive writer's connection, up to archiveRows rows per statement.
func (s *Store) AppendArchiveBatch(ctx context.Context, entries []storage.ArchiveEntry) error {
	if len(entries) == 0 {
		return nil
	}
	total := len(entries)
	err := s.inArchiveTx(ctx, func(insert func(n int) (*sql.Stmt, error)) error {
		args := make([]any, 0, 6*min(len(entries), archiveRows))
		for len(entries) > 0 {
			n := 1
			for _, c := range archiveChunks {
				if c <= len(entries) {
					n = c
					break
				}
			}
			args = args[:0]
			for _, e := range entries[:n] {
				m := e.Message
				st := m.Stanza
				if st == nil {
					st = []byte{} // bound as NULL, which OR IGNORE would skip
				}
				args = append(args, e.User, m.ID, m.Stamp.UnixMicro(), m.With, st, archiveEvent(m.Event))
			}
			stmt, err := insert(n)
			if err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return err
			}
			entries = entries[n:]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: append archive batch of %d: %w", total, err)
	}
	return nil
}

// ArchivedEvent implements storage.Archive: the user's latest entries by
// the primary key, newest first.
func (s *Store) ArchivedEvent(ctx context.Context, user, event string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM (SELECT id, event FROM archive WHERE username = ? ORDER BY id DESC LIMIT ?) WHERE event = ?`,
		user, storage.ArchivedEventWindow, event).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("sqlite: archived event %s %s: %w", user, event, err)
	}
	return id, nil
}

// QueryArchive implements storage.Archive. The page, its neighbour check
// and the count run in one read transaction so that they agree.
func (s *Store) QueryArchive(ctx context.Context, user string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	var page storage.ArchivePage
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return page, fmt.Errorf("sqlite: query archive %s: %w", user, err)
	}
	defer tx.Rollback()
	page, err = queryArchive(ctx, tx, user, q)
	if err != nil {
		return storage.ArchivePage{}, fmt.Errorf("sqlite: query archive %s: %w", user, err)
	}
	return page, nil
}

func queryArchive(ctx context.Context, tx *sql.Tx, user string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	var page storage.ArchivePage
	for _, id := range []string{q.AfterID, q.BeforeID} {
		if id == "" {
			continue
		}
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM archive WHERE username = ? AND id = ?`, user, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return page, fmt.Errorf("id %s: %w", id, storage.ErrNotFound)
		}
		if err != nil {
			return page, err
		}
	}
	where := []string{"username = ?"}
	args := []any{user}
	if q.With != "" {
		where, args = append(where, "with_jid = ?"), append(args, q.With)
	}
	if !q.Start.IsZero() {
		where, args = append(where, "stamp_us >= ?"), append(args, q.Start.UnixMicro())
	}
	if !q.End.IsZero() {
		where, args = append(where, "stamp_us <= ?"), append(args, q.End.UnixMicro())
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM archive WHERE `+strings.Join(where, " AND "), args...).Scan(&page.Count); err != nil {
		return page, err
	}
	if q.AfterID != "" {
		where, args = append(where, "id > ?"), append(args, q.AfterID)
	}
	if q.BeforeID != "" {
		where, args = append(where, "id < ?"), append(args, q.BeforeID)
	}
	order := "ASC"
	if q.Last {
		order = "DESC"
	}
	n := max(q.Max, 0)
	// One row more than asked tells whether the page is complete.
	rows, err := tx.QueryContext(ctx, `SELECT id, stamp_us, with_jid, stanza FROM archive WHERE `+strings.Join(where, " AND ")+
		` ORDER BY id `+order+` LIMIT ?`, append(args, n+1)...)
	if err != nil {
		return page, err
	}
	defer rows.Close()
	for rows.Next() {
		var m storage.ArchivedMessage
		var us int64
		if err := rows.Scan(&m.ID, &us, &m.With, &m.Stanza); err != nil {
			return page, err
		}
		m.Stamp = time.UnixMicro(us).UTC()
		page.Items = append(page.Items, m)
	}
	if err := rows.Err(); err != nil {
		return page, err
	}
	page.Complete = len(page.Items) <= n
	if !page.Complete {
		page.Items = page.Items[:n]
	}
	if q.Last {
		slices.Reverse(page.Items)
	}
	if len(page.Items) == 0 {
		page.Items = nil
	}
	return page, nil
}

// ReplaceArchived implements storage.Archive. It takes the ordinary write
// connection, not the archive writer's: a retraction is rare and changes
// one row, so it gains nothing from that connection's larger page cache.
func (s *Store) ReplaceArchived(ctx context.Context, user, id string, stanza []byte) error {
	if stanza == nil {
		stanza = []byte{} // the driver binds nil as NULL, which the column refuses
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE archive SET stanza = ? WHERE username = ? AND id = ?`, stanza, user, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: replace archived %s %s: %w", user, id, err)
	}
	return nil
}

// DeleteArchiveBefore implements storage.Archive.
func (s *Store) DeleteArchiveBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM archive WHERE stamp_us < ?`, cutoff.UnixMicro())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete archive: %w", err)
	}
	return n, nil
}

// ArchivePrefs implements storage.Archive.
func (s *Store) ArchivePrefs(ctx context.Context, user string) (storage.ArchivePrefs, error) {
	p, err := s.archivePrefs(ctx, user)
	if err != nil {
		return storage.ArchivePrefs{}, fmt.Errorf("sqlite: archive prefs %s: %w", user, err)
	}
	return p, nil
}

// archivePrefs reads the preferences in one statement, prepared once,
// which is a read transaction of its own: they are read for each user's
// first archived message, and most users have none, which a transaction
// of two statements compiled each time made costly to learn.
func (s *Store) archivePrefs(ctx context.Context, user string) (storage.ArchivePrefs, error) {
	var p storage.ArchivePrefs
	rows, err := s.query(ctx, `SELECT p.default_mode, j.jid, j.mode FROM archive_prefs p
		LEFT JOIN archive_prefs_jids j ON j.username = p.username
		WHERE p.username = ? ORDER BY j.jid`, user)
	if err != nil {
		return p, err
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		var j, mode sql.NullString
		if err := rows.Scan(&p.Default, &j, &mode); err != nil {
			return storage.ArchivePrefs{}, err
		}
		found = true
		switch {
		case !j.Valid || !mode.Valid:
		case mode.String == storage.ArchiveAlways:
			p.Always = append(p.Always, j.String)
		default:
			p.Never = append(p.Never, j.String)
		}
	}
	if err := rows.Err(); err != nil {
		return storage.ArchivePrefs{}, err
	}
	if !found {
		return storage.ArchivePrefs{}, storage.ErrNotFound
	}
	return p, nil
}

// SetArchivePrefs implements storage.Archive.
func (s *Store) SetArchivePrefs(ctx context.Context, user string, p storage.ArchivePrefs) error {
	p, err := storage.NormalizeArchivePrefs(p)
	if err != nil {
		return fmt.Errorf("sqlite: set archive prefs %s: %w", user, err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO archive_prefs (username, default_mode) VALUES (?, ?)
			ON CONFLICT (username) DO UPDATE SET default_mode = excluded.default_mode`, user, p.Default); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM archive_prefs_jids WHERE username = ?`, user); err != nil {
			return err
		}
		for mode, jids := range map[string][]string{storage.ArchiveAlways: p.Always, storage.ArchiveNever: p.Never} {
			for _, j := range jids {
				if _, err := tx.ExecContext(ctx, `INSERT INTO archive_prefs_jids (username, jid, mode) VALUES (?, ?, ?)`, user, j, mode); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: set archive prefs %s: %w", user, err)
	}
	return nil
}
