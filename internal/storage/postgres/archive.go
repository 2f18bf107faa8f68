package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// AppendArchive implements storage.Archive.
func (s *Store) AppendArchive(ctx context.Context, user string, m storage.ArchivedMessage) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO archive (username, id, stamp_us, with_jid, stanza, event) VALUES ($1, $2, $3, $4, $5, $6)`,
		user, m.ID, m.Stamp.UnixMicro(), m.With, bytea(m.Stanza), archiveEvent(m.Event))
	if isUniqueViolation(err) {
		err = storage.ErrExists
	}
	if err != nil {
		return fmt.Errorf("postgres: append archive %s %s: %w", user, m.ID, err)
	}
	return nil
}

// AppendArchiveBatch implements storage.Archive: the batch goes by COPY,
// one statement that the server neither parses nor plans per row, and
// atomic by itself, so without BEGIN and COMMIT of its own. Against one
// INSERT of the batch from unnested arrays (measured beside it in
// BenchmarkArchiveChat, 2,000 users, 1,024 messages a batch) it halves
// this process's CPU per archived message and takes a seventh off the
// database's.
//
// COPY cannot skip an entry already archived, which only comes with a
// batch written again after a crash (storage.Archive): such a batch
// fails as a whole on its first duplicate, writing nothing, and is then
// sent again as that INSERT with ON CONFLICT DO NOTHING, which the
// first attempt avoids because it makes the server insert every row
// speculatively (probing the primary key before the insert and
// confirming it after).
func (s *Store) AppendArchiveBatch(ctx context.Context, entries []storage.ArchiveEntry) error {
	if len(entries) == 0 {
		return nil
	}
	columns := []string{"username", "id", "stamp_us", "with_jid", "stanza", "event"} // archiveRows' order
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"archive"}, columns, &archiveRows{entries: entries})
	if isUniqueViolation(err) {
		err = s.appendArchiveAgain(ctx, entries)
	}
	if err != nil {
		return fmt.Errorf("postgres: append archive batch of %d: %w", len(entries), err)
	}
	return nil
}

// appendArchiveAgain writes a batch that met an entry already archived,
// skipping those, in one INSERT of the batch's columns as arrays that
// unnest turns back into rows.
func (s *Store) appendArchiveAgain(ctx context.Context, entries []storage.ArchiveEntry) error {
	users := make([]string, len(entries))
	ids := make([]string, len(entries))
	stamps := make([]int64, len(entries))
	withs := make([]string, len(entries))
	stanzas := make([][]byte, len(entries))
	events := make([]*string, len(entries))
	for i, e := range entries {
		users[i], ids[i], stamps[i], withs[i], stanzas[i] = e.User, e.Message.ID, e.Message.Stamp.UnixMicro(), e.Message.With, bytea(e.Message.Stanza)
		if e.Message.Event != "" {
			events[i] = &e.Message.Event
		}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO archive (username, id, stamp_us, with_jid, stanza, event)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bytea[], $6::text[])
		ON CONFLICT DO NOTHING`, users, ids, stamps, withs, stanzas, events)
	return err
}

// archiveRows hands a batch to COPY row by row, in one reused slice
// (COPY encodes a row before it asks for the next).
type archiveRows struct {
	entries []storage.ArchiveEntry
	i       int
	row     [6]any
}

func (r *archiveRows) Next() bool { r.i++; return r.i <= len(r.entries) }

func (r *archiveRows) Values() ([]any, error) {
	e := r.entries[r.i-1]
	r.row = [6]any{e.User, e.Message.ID, e.Message.Stamp.UnixMicro(), e.Message.With, bytea(e.Message.Stanza), archiveEvent(e.Message.Event)}
	return r.row[:], nil
}

func (r *archiveRows) Err() error { return nil }

// archiveEvent is how an entry's event is stored: NULL if it has none.
func archiveEvent(event string) any {
	if event == "" {
		return nil
	}
	return event
}

// ArchivedEvent implements storage.Archive: the user's latest entries by
// the primary key, newest first.
func (s *Store) ArchivedEvent(ctx context.Context, user, event string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT id FROM (SELECT id, event FROM archive WHERE username = $1 ORDER BY id DESC LIMIT $2) latest WHERE event = $3`,
		user, storage.ArchivedEventWindow, event).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("postgres: archived event %s %s: %w", user, event, err)
	}
	return id, nil
}

// QueryArchive implements storage.Archive. The page, its neighbour check
// and the count come from one snapshot so that they agree.
func (s *Store) QueryArchive(ctx context.Context, user string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	var page storage.ArchivePage
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		page, err = queryArchive(ctx, tx, user, q)
		return err
	})
	if err != nil {
		return storage.ArchivePage{}, fmt.Errorf("postgres: query archive %s: %w", user, err)
	}
	return page, nil
}

func queryArchive(ctx context.Context, tx pgx.Tx, user string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	var page storage.ArchivePage
	for _, id := range []string{q.AfterID, q.BeforeID} {
		if id == "" {
			continue
		}
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM archive WHERE username = $1 AND id = $2`, user, id).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return page, fmt.Errorf("id %s: %w", id, storage.ErrNotFound)
		}
		if err != nil {
			return page, err
		}
	}
	var where []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1))
	}
	add("username = ?", user)
	if q.With != "" {
		add("with_jid = ?", q.With)
	}
	if !q.Start.IsZero() {
		add("stamp_us >= ?", q.Start.UnixMicro())
	}
	if !q.End.IsZero() {
		add("stamp_us <= ?", q.End.UnixMicro())
	}
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM archive WHERE `+strings.Join(where, " AND "), args...).Scan(&page.Count); err != nil {
		return page, err
	}
	if q.AfterID != "" {
		add("id > ?", q.AfterID)
	}
	if q.BeforeID != "" {
		add("id < ?", q.BeforeID)
	}
	order := "ASC"
	if q.Last {
		order = "DESC"
	}
	n := max(q.Max, 0)
	// One row more than asked tells whether the page is complete.
	args = append(args, n+1)
	rows, err := tx.Query(ctx, `SELECT id, stamp_us, with_jid, stanza FROM archive WHERE `+strings.Join(where, " AND ")+
		` ORDER BY id `+order+` LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return page, err
	}
	var (
		m  storage.ArchivedMessage
		us int64
	)
	_, err = pgx.ForEachRow(rows, []any{&m.ID, &us, &m.With, &m.Stanza}, func() error {
		m.Stamp = time.UnixMicro(us).UTC()
		page.Items = append(page.Items, m)
		m = storage.ArchivedMessage{}
		return nil
	})
	if err != nil {
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

// ReplaceArchived implements storage.Archive.
func (s *Store) ReplaceArchived(ctx context.Context, user, id string, stanza []byte) error {
	tag, err := s.pool.Exec(ctx, `UPDATE archive SET stanza = $1 WHERE username = $2 AND id = $3`, bytea(stanza), user, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = storage.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: replace archived %s %s: %w", user, id, err)
	}
	return nil
}

// DeleteArchiveBefore implements storage.Archive.
func (s *Store) DeleteArchiveBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM archive WHERE stamp_us < $1`, cutoff.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("postgres: delete archive: %w", err)
	}
	return tag.RowsAffected(), nil
}

// ArchivePrefs implements storage.Archive.
func (s *Store) ArchivePrefs(ctx context.Context, user string) (storage.ArchivePrefs, error) {
	p, err := s.archivePrefs(ctx, user)
	if err != nil {
		return storage.ArchivePrefs{}, fmt.Errorf("postgres: archive prefs %s: %w", user, err)
	}
	return p, nil
}

// archivePrefs reads the preferences in one statement, a snapshot of its
// own, rather than two in a read transaction: they are read for each
// user's first archived message, and most users have none, so that one
// round trip instead of four (BEGIN, two queries, COMMIT) is what it
// usually takes to learn so.
func (s *Store) archivePrefs(ctx context.Context, user string) (storage.ArchivePrefs, error) {
	var p storage.ArchivePrefs
	rows, err := s.pool.Query(ctx, `SELECT p.default_mode, j.jid, j.mode FROM archive_prefs p
		LEFT JOIN archive_prefs_jids j ON j.username = p.username
		WHERE p.username = $1 ORDER BY j.jid`, user)
	if err != nil {
		return p, err
	}
	found := false
	var j, mode *string
	_, err = pgx.ForEachRow(rows, []any{&p.Default, &j, &mode}, func() error {
		found = true
		switch {
		case j == nil || mode == nil:
		case *mode == storage.ArchiveAlways:
			p.Always = append(p.Always, *j)
		default:
			p.Never = append(p.Never, *j)
		}
		return nil
	})
	if err != nil {
		return storage.ArchivePrefs{}, err
	}
	if !found {
		return storage.ArchivePrefs{}, storage.ErrNotFound
	}
	return p, nil
}

// SetArchivePrefs implements storage.Archive. The upsert of the prefs row
// locks out concurrent setters until commit, so lists never mix.
func (s *Store) SetArchivePrefs(ctx context.Context, user string, p storage.ArchivePrefs) error {
	p, err := storage.NormalizeArchivePrefs(p)
	if err != nil {
		return fmt.Errorf("postgres: set archive prefs %s: %w", user, err)
	}
	err = s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO archive_prefs (username, default_mode) VALUES ($1, $2)
			ON CONFLICT (username) DO UPDATE SET default_mode = excluded.default_mode`, user, p.Default); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM archive_prefs_jids WHERE username = $1`, user); err != nil {
			return err
		}
		for _, l := range []struct {
			mode string
			jids []string
		}{{storage.ArchiveAlways, p.Always}, {storage.ArchiveNever, p.Never}} {
			for _, j := range l.jids {
				if _, err := tx.Exec(ctx, `INSERT INTO archive_prefs_jids (username, jid, mode) VALUES ($1, $2, $3)`, user, j, l.mode); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: set archive prefs %s: %w", user, err)
	}
	return nil
}
