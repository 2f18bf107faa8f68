package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

var _ storage.FastTokens = (*Store)(nil)

// AddFastToken implements storage.FastTokens.
func (s *Store) AddFastToken(ctx context.Context, t storage.FastToken) error {
	if len(t.Hash) == 0 || t.Agent == "" {
		return fmt.Errorf("sqlite: add fast token %s: %w: empty hash or agent", t.User, storage.ErrInvalid)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE username = ?`, t.User).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return storage.ErrNotFound
		}
		if err != nil {
			return err
		}
		var top sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(seq) FROM fast_tokens WHERE username = ? AND agent = ?`, t.User, t.Agent).Scan(&top); err != nil {
			return err
		}
		// The newest token so far stays, as the previous one; older go.
		if _, err := tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE username = ? AND agent = ? AND seq < ?`, t.User, t.Agent, top.Int64); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO fast_tokens (username, agent, seq, mechanism, token_hash, expiry, count) VALUES (?, ?, ?, ?, ?, ?, 0)`,
			t.User, t.Agent, top.Int64+1, t.Mechanism, t.Hash, t.Expiry.UnixMicro())
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: add fast token %s: %w", t.User, err)
	}
	return nil
}

// FastTokens implements storage.FastTokens.
func (s *Store) FastTokens(ctx context.Context, user, agent string) ([]storage.FastToken, error) {
	rows, err := s.query(ctx, `SELECT mechanism, token_hash, expiry, count FROM fast_tokens
		WHERE username = ? AND agent = ? ORDER BY seq DESC`, user, agent)
	if err != nil {
		return nil, fmt.Errorf("sqlite: fast tokens %s: %w", user, err)
	}
	defer rows.Close()
	var out []storage.FastToken
	for rows.Next() {
		t := storage.FastToken{User: user, Agent: agent}
		var exp, count int64
		if err := rows.Scan(&t.Mechanism, &t.Hash, &exp, &count); err != nil {
			return nil, fmt.Errorf("sqlite: fast tokens %s: %w", user, err)
		}
		t.Expiry, t.Count = time.UnixMicro(exp), uint64(count)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: fast tokens %s: %w", user, err)
	}
	return out, nil
}

// UseFastToken implements storage.FastTokens. The count is checked and
// raised in one write transaction, so that two logins racing with the
// same count cannot both pass.
func (s *Store) UseFastToken(ctx context.Context, user, agent string, hash []byte, count uint64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT seq, token_hash, count FROM fast_tokens WHERE username = ? AND agent = ? ORDER BY seq DESC`, user, agent)
		if err != nil {
			return err
		}
		var seq, stored int64
		found, newest := false, true
		for rows.Next() {
			var sq, c int64
			var h []byte
			if err := rows.Scan(&sq, &h, &c); err != nil {
				rows.Close()
				return err
			}
			if bytes.Equal(h, hash) {
				seq, stored, found = sq, c, true
				break
			}
			newest = false
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if !found {
			return storage.ErrNotFound
		}
		// Counts are stored as BIGINT: one beyond its range is refused
		// rather than wrapped.
		if count > 1<<63-1 || int64(count) <= stored {
			return storage.ErrReplay
		}
		if _, err := tx.ExecContext(ctx, `UPDATE fast_tokens SET count = ? WHERE username = ? AND agent = ? AND seq = ?`, int64(count), user, agent, seq); err != nil {
			return err
		}
		if newest {
			_, err = tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE username = ? AND agent = ? AND seq < ?`, user, agent, seq)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: use fast token %s: %w", user, err)
	}
	return nil
}

// DeleteFastTokens implements storage.FastTokens.
func (s *Store) DeleteFastTokens(ctx context.Context, user, agent string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if agent == "" {
			_, err = tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE username = ?`, user)
		} else {
			_, err = tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE username = ? AND agent = ?`, user, agent)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete fast tokens %s: %w", user, err)
	}
	return nil
}
