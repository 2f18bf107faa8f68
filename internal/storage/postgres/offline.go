package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// PushOffline implements storage.Offline. The count and the insert share
// a SERIALIZABLE transaction, so concurrent senders, on any instance,
// cannot push past the quota: the database aborts all but one of the
// racing transactions, and the retry sees the new count.
func (s *Store) PushOffline(ctx context.Context, user string, stanza []byte, stored time.Time, quota int) error {
	var ev *string // NULL when the push names no event
	if id := storage.EventID(ctx); id != "" {
		ev = &id
	}
	err := s.inTx(ctx, pgx.Serializable, func(tx pgx.Tx) error {
		var n int
		if ev != nil {
			err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM offline_messages WHERE username = $1 AND event = $2`, user, *ev).Scan(&n)
			if err != nil || n > 0 {
				return err // n > 0: stored already for this event
			}
		}
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM offline_messages WHERE username = $1`, user).Scan(&n); err != nil {
			return err
		}
		if n >= quota {
			return storage.ErrQuota
		}
		_, err := tx.Exec(ctx, `INSERT INTO offline_messages (username, stored_at, stanza, event) VALUES ($1, $2, $3, $4)`,
			user, stored.UTC(), bytea(stanza), ev)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: push offline %s: %w", user, err)
	}
	return nil
}

// OfflineMessages implements storage.Offline.
func (s *Store) OfflineMessages(ctx context.Context, user string) ([]storage.OfflineMessage, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, stored_at, stanza, COALESCE(event, '') FROM offline_messages WHERE username = $1 ORDER BY id`, user)
	if err != nil {
		return nil, fmt.Errorf("postgres: offline messages %s: %w", user, err)
	}
	var (
		out []storage.OfflineMessage
		m   storage.OfflineMessage
	)
	_, err = pgx.ForEachRow(rows, []any{&m.ID, &m.Stored, &m.Stanza, &m.Event}, func() error {
		m.Stored = m.Stored.UTC()
		out = append(out, m)
		m = storage.OfflineMessage{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: offline messages %s: %w", user, err)
	}
	return out, nil
}

// DeleteOffline implements storage.Offline.
func (s *Store) DeleteOffline(ctx context.Context, user string, upTo int64) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM offline_messages WHERE username = $1 AND id <= $2`, user, upTo); err != nil {
		return fmt.Errorf("postgres: delete offline %s: %w", user, err)
	}
	return nil
}

// DeleteOfflineEvent implements storage.Offline.
func (s *Store) DeleteOfflineEvent(ctx context.Context, user, event string) (bool, error) {
	if event == "" {
		return false, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM offline_messages WHERE username = $1 AND event = $2`, user, event)
	if err != nil {
		return false, fmt.Errorf("postgres: delete offline %s: %w", user, err)
	}
	return tag.RowsAffected() > 0, nil
}
