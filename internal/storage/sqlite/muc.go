package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

var _ storage.MUC = (*Store)(nil)

// MUCRooms implements storage.MUC.
func (s *Store) MUCRooms(ctx context.Context, service string) ([]storage.MUCRoom, error) {
	rows, err := s.query(ctx, `SELECT room, config FROM muc_rooms WHERE service = ? ORDER BY room`, service)
	if err != nil {
		return nil, fmt.Errorf("sqlite: muc rooms %s: %w", service, err)
	}
	defer rows.Close()
	var out []storage.MUCRoom
	for rows.Next() {
		var r storage.MUCRoom
		if err := rows.Scan(&r.Room, &r.Config); err != nil {
			return nil, fmt.Errorf("sqlite: muc rooms %s: %w", service, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: muc rooms %s: %w", service, err)
	}
	return out, nil
}

// MUCRoom implements storage.MUC.
func (s *Store) MUCRoom(ctx context.Context, room string) (storage.MUCRoom, error) {
	r := storage.MUCRoom{Room: room}
	err := s.queryRow(ctx, `SELECT config FROM muc_rooms WHERE room = ?`, room).Scan(&r.Config)
	if errors.Is(err, sql.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.MUCRoom{}, fmt.Errorf("sqlite: muc room %s: %w", room, err)
	}
	return r, nil
}

// PutMUCRoom implements storage.MUC.
func (s *Store) PutMUCRoom(ctx context.Context, r storage.MUCRoom) error {
	service, err := storage.MUCRoomService(r.Room)
	if err != nil {
		return fmt.Errorf("sqlite: put muc room: %w", err)
	}
	config := r.Config
	if config == nil {
		config = []byte{} // the driver would store nil as NULL
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO muc_rooms (room, service, config) VALUES (?, ?, ?)
			ON CONFLICT (room) DO UPDATE SET config = excluded.config`, r.Room, service, config)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put muc room %s: %w", r.Room, err)
	}
	return nil
}

// DeleteMUCRoom implements storage.MUC. The affiliations go even when the
// room is not stored, since a temporary room's are kept all the same; the
// archive and private data go only with a stored room, so that a mistaken
// call with a user's JID cannot wipe that user's archive.
func (s *Store) DeleteMUCRoom(ctx context.Context, room string) error {
	found := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		found = false
		if _, err := tx.ExecContext(ctx, `DELETE FROM muc_affiliations WHERE room = ?`, room); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM muc_rooms WHERE room = ?`, room)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			// Committed all the same: the affiliations must go.
			return err
		}
		found = true
		for _, q := range []string{
			`DELETE FROM archive WHERE username = ?`,
			`DELETE FROM archive_prefs_jids WHERE username = ?`,
			`DELETE FROM archive_prefs WHERE username = ?`,
			`DELETE FROM private_xml WHERE username = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, room); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && !found {
		err = storage.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite: delete muc room %s: %w", room, err)
	}
	return nil
}

// MUCAffiliations implements storage.MUC.
func (s *Store) MUCAffiliations(ctx context.Context, room string) ([]storage.MUCAffiliation, error) {
	rows, err := s.query(ctx, `SELECT jid, affiliation, nick, reason FROM muc_affiliations WHERE room = ? ORDER BY jid`, room)
	if err != nil {
		return nil, fmt.Errorf("sqlite: muc affiliations %s: %w", room, err)
	}
	defer rows.Close()
	var out []storage.MUCAffiliation
	for rows.Next() {
		var a storage.MUCAffiliation
		if err := rows.Scan(&a.JID, &a.Affiliation, &a.Nick, &a.Reason); err != nil {
			return nil, fmt.Errorf("sqlite: muc affiliations %s: %w", room, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: muc affiliations %s: %w", room, err)
	}
	return out, nil
}

// SetMUCAffiliation implements storage.MUC.
func (s *Store) SetMUCAffiliation(ctx context.Context, room string, a storage.MUCAffiliation) error {
	if _, err := storage.MUCRoomService(room); err != nil {
		return fmt.Errorf("sqlite: set muc affiliation: %w", err)
	}
	if err := storage.CheckMUCAffiliation(a); err != nil {
		return fmt.Errorf("sqlite: set muc affiliation %s: %w", room, err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if a.Affiliation == storage.AffiliationNone {
			_, err := tx.ExecContext(ctx, `DELETE FROM muc_affiliations WHERE room = ? AND jid = ?`, room, a.JID)
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO muc_affiliations (room, jid, affiliation, nick, reason) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (room, jid) DO UPDATE SET affiliation = excluded.affiliation, nick = excluded.nick, reason = excluded.reason`,
			room, a.JID, a.Affiliation, a.Nick, a.Reason)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: set muc affiliation %s %s: %w", room, a.JID, err)
	}
	return nil
}
