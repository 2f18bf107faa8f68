package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// PushOffline implements storage.Offline. The count and the insert share
// a transaction, so concurrent senders cannot push past the quota.
func (s *Store) PushOffline(ctx context.Context, user string, stanza []byte, stored time.Time, quota int) error {
	ev := sql.NullString{String: storage.EventID(ctx), Valid: storage.EventID(ctx) != ""}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if ev.Valid {
			err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM offline_messages WHERE username = ? AND event = ?`, user, ev).Scan(&n)
			if err != nil || n > 0 {
				return err // n > 0: stored already for this event
			}
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM offline_messages WHERE username = ?`, user).Scan(&n); err != nil {
			return err
		}
		if n >= quota {
			return storage.ErrQuota
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO offline_messages (username, stored_at, stanza, event) VALUES (?, ?, ?, ?)`,
			user, stored.UTC(), stanza, ev)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: push offline %s: %w", user, err)
	}
	return nil
}

// OfflineMessages implements storage.Offline.
func (s *Store) OfflineMessages(ctx context.Context, user string) ([]storage.OfflineMessage, error) {
	rows, err := s.query(ctx, `SELECT id, stored_at, stanza, COALESCE(event, '') FROM offline_messages WHERE username = ? ORDER BY id`, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: offline messages %s: %w", user, err)
	}
	defer rows.Close()
	var out []storage.OfflineMessage
	for rows.Next() {
		var m storage.OfflineMessage
		if err := rows.Scan(&m.ID, &m.Stored, &m.Stanza, &m.Event); err != nil {
			return nil, fmt.Errorf("sqlite: offline messages %s: %w", user, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: offline messages %s: %w", user, err)
	}
	return out, nil
}

// DeleteOffline implements storage.Offline.
func (s *Store) DeleteOffline(ctx context.Context, user string, upTo int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM offline_messages WHERE username = ? AND id <= ?`, user, upTo)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete offline %s: %w", user, err)
	}
	return nil
}

// DeleteOfflineEvent implements storage.Offline.
func (s *Store) DeleteOfflineEvent(ctx context.Context, user, event string) (bool, error) {
	if event == "" {
		return false, nil
	}
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM offline_messages WHERE username = ? AND event = ?`, user, event)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: delete offline %s: %w", user, err)
	}
	return n > 0, nil
}
