package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// BlockedJIDs implements storage.Blocklist.
func (s *Store) BlockedJIDs(ctx context.Context, user string) ([]string, error) {
	out, err := collectStrings(ctx, s.pool, `SELECT jid FROM blocklist WHERE username = $1 ORDER BY jid`, user)
	if err != nil {
		return nil, fmt.Errorf("postgres: blocklist %s: %w", user, err)
	}
	return out, nil
}

// Block implements storage.Blocklist.
func (s *Store) Block(ctx context.Context, user string, jids []string) error {
	err := s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		for _, j := range jids {
			if _, err := tx.Exec(ctx, `INSERT INTO blocklist (username, jid) VALUES ($1, $2) ON CONFLICT DO NOTHING`, user, j); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: block %s: %w", user, err)
	}
	return nil
}

// Unblock implements storage.Blocklist.
func (s *Store) Unblock(ctx context.Context, user string, jids []string) error {
	var err error
	if len(jids) == 0 {
		_, err = s.pool.Exec(ctx, `DELETE FROM blocklist WHERE username = $1`, user)
	} else {
		err = s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
			for _, j := range jids {
				if _, err := tx.Exec(ctx, `DELETE FROM blocklist WHERE username = $1 AND jid = $2`, user, j); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("postgres: unblock %s: %w", user, err)
	}
	return nil
}
