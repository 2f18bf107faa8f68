package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// BlockedJIDs implements storage.Blocklist.
func (s *Store) BlockedJIDs(ctx context.Context, user string) ([]string, error) {
	rows, err := s.query(ctx, `SELECT jid FROM blocklist WHERE username = ? ORDER BY jid`, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: blocklist %s: %w", user, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var j string
		if err := rows.Scan(&j); err != nil {
			return nil, fmt.Errorf("sqlite: blocklist %s: %w", user, err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: blocklist %s: %w", user, err)
	}
	return out, nil
}

// Block implements storage.Blocklist.
func (s *Store) Block(ctx context.Context, user string, jids []string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, j := range jids {
			if _, err := tx.ExecContext(ctx, `INSERT INTO blocklist (username, jid) VALUES (?, ?) ON CONFLICT DO NOTHING`, user, j); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: block %s: %w", user, err)
	}
	return nil
}

// Unblock implements storage.Blocklist.
func (s *Store) Unblock(ctx context.Context, user string, jids []string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if len(jids) == 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM blocklist WHERE username = ?`, user)
			return err
		}
		for _, j := range jids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM blocklist WHERE username = ? AND jid = ?`, user, j); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: unblock %s: %w", user, err)
	}
	return nil
}
