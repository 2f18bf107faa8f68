package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// MUCRooms implements storage.MUC.
func (s *Store) MUCRooms(ctx context.Context, service string) ([]storage.MUCRoom, error) {
	rows, err := s.pool.Query(ctx, `SELECT room, config FROM muc_rooms WHERE service = $1 ORDER BY room`, service)
	if err != nil {
		return nil, fmt.Errorf("postgres: muc rooms %s: %w", service, err)
	}
	var (
		out []storage.MUCRoom
		r   storage.MUCRoom
	)
	_, err = pgx.ForEachRow(rows, []any{&r.Room, &r.Config}, func() error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: muc rooms %s: %w", service, err)
	}
	return out, nil
}

// MUCRoom implements storage.MUC.
func (s *Store) MUCRoom(ctx context.Context, room string) (storage.MUCRoom, error) {
	r := storage.MUCRoom{Room: room}
	err := s.pool.QueryRow(ctx, `SELECT config FROM muc_rooms WHERE room = $1`, room).Scan(&r.Config)
	if errors.Is(err, pgx.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.MUCRoom{}, fmt.Errorf("postgres: muc room %s: %w", room, err)
	}
	return r, nil
}

// PutMUCRoom implements storage.MUC.
func (s *Store) PutMUCRoom(ctx context.Context, r storage.MUCRoom) error {
	service, err := storage.MUCRoomService(r.Room)
	if err != nil {
		return fmt.Errorf("postgres: put muc room: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO muc_rooms (room, service, config) VALUES ($1, $2, $3)
		ON CONFLICT (room) DO UPDATE SET config = excluded.config`, r.Room, service, bytea(r.Config))
	if err != nil {
		return fmt.Errorf("postgres: put muc room %s: %w", r.Room, err)
	}
	return nil
}

// DeleteMUCRoom implements storage.MUC. The affiliations go even when the
// room is not stored, since a temporary room's are kept all the same; the
// archive and private data go only with a stored room, so that a mistaken
// call with a user's JID cannot wipe that user's archive.
func (s *Store) DeleteMUCRoom(ctx context.Context, room string) error {
	var found bool
	err := s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		found = false
		if _, err := tx.Exec(ctx, `DELETE FROM muc_affiliations WHERE room = $1`, room); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM muc_rooms WHERE room = $1`, room)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil // committed all the same: the affiliations must go
		}
		found = true
		for _, q := range []string{
			`DELETE FROM archive WHERE username = $1`,
			`DELETE FROM archive_prefs_jids WHERE username = $1`,
			`DELETE FROM archive_prefs WHERE username = $1`,
			`DELETE FROM private_xml WHERE username = $1`,
		} {
			if _, err := tx.Exec(ctx, q, room); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && !found {
		err = storage.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: delete muc room %s: %w", room, err)
	}
	return nil
}

// MUCAffiliations implements storage.MUC.
func (s *Store) MUCAffiliations(ctx context.Context, room string) ([]storage.MUCAffiliation, error) {
	rows, err := s.pool.Query(ctx, `SELECT jid, affiliation, nick, reason FROM muc_affiliations WHERE room = $1 ORDER BY jid`, room)
	if err != nil {
		return nil, fmt.Errorf("postgres: muc affiliations %s: %w", room, err)
	}
	var (
		out []storage.MUCAffiliation
		a   storage.MUCAffiliation
	)
	_, err = pgx.ForEachRow(rows, []any{&a.JID, &a.Affiliation, &a.Nick, &a.Reason}, func() error {
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: muc affiliations %s: %w", room, err)
	}
	return out, nil
}

// SetMUCAffiliation implements storage.MUC.
func (s *Store) SetMUCAffiliation(ctx context.Context, room string, a storage.MUCAffiliation) error {
	if _, err := storage.MUCRoomService(room); err != nil {
		return fmt.Errorf("postgres: set muc affiliation: %w", err)
	}
	if err := storage.CheckMUCAffiliation(a); err != nil {
		return fmt.Errorf("postgres: set muc affiliation %s: %w", room, err)
	}
	var err error
	if a.Affiliation == storage.AffiliationNone {
		_, err = s.pool.Exec(ctx, `DELETE FROM muc_affiliations WHERE room = $1 AND jid = $2`, room, a.JID)
	} else {
		_, err = s.pool.Exec(ctx, `INSERT INTO muc_affiliations (room, jid, affiliation, nick, reason) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (room, jid) DO UPDATE SET affiliation = excluded.affiliation, nick = excluded.nick, reason = excluded.reason`,
			room, a.JID, a.Affiliation, a.Nick, a.Reason)
	}
	if err != nil {
		return fmt.Errorf("postgres: set muc affiliation %s %s: %w", room, a.JID, err)
	}
	return nil
}
