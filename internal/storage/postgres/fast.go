package postgres

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// AddFastToken implements storage.FastTokens. It runs SERIALIZABLE: two
// logins of one agent issuing tokens at once would otherwise pick the same
// sequence number.
func (s *Store) AddFastToken(ctx context.Context, t storage.FastToken) error {
	if len(t.Hash) == 0 || t.Agent == "" {
		return fmt.Errorf("postgres: add fast token %s: %w: empty hash or agent", t.User, storage.ErrInvalid)
	}
	err := s.inTx(ctx, pgx.Serializable, func(tx pgx.Tx) error {
		if err := lockAccount(ctx, tx, t.User); err != nil {
			return err
		}
		var top *int64
		if err := tx.QueryRow(ctx, `SELECT MAX(seq) FROM fast_tokens WHERE username = $1 AND agent = $2`, t.User, t.Agent).Scan(&top); err != nil {
			return err
		}
		var seq int64
		if top != nil {
			seq = *top
		}
		// The newest token so far stays, as the previous one; older go.
		if _, err := tx.Exec(ctx, `DELETE FROM fast_tokens WHERE username = $1 AND agent = $2 AND seq < $3`, t.User, t.Agent, seq); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO fast_tokens (username, agent, seq, mechanism, token_hash, expiry, count) VALUES ($1, $2, $3, $4, $5, $6, 0)`,
			t.User, t.Agent, seq+1, t.Mechanism, t.Hash, t.Expiry.UnixMicro())
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: add fast token %s: %w", t.User, err)
	}
	return nil
}

// FastTokens implements storage.FastTokens.
func (s *Store) FastTokens(ctx context.Context, user, agent string) ([]storage.FastToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT mechanism, token_hash, expiry, count FROM fast_tokens
		WHERE username = $1 AND agent = $2 ORDER BY seq DESC`, user, agent)
	if err != nil {
		return nil, fmt.Errorf("postgres: fast tokens %s: %w", user, err)
	}
	var (
		out        []storage.FastToken
		mech       string
		hash       []byte
		exp, count int64
	)
	_, err = pgx.ForEachRow(rows, []any{&mech, &hash, &exp, &count}, func() error {
		out = append(out, storage.FastToken{User: user, Agent: agent, Mechanism: mech, Hash: hash,
			Expiry: time.UnixMicro(exp), Count: uint64(count)})
		hash = nil
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: fast tokens %s: %w", user, err)
	}
	return out, nil
}

// UseFastToken implements storage.FastTokens. The count is checked and
// raised in one SERIALIZABLE transaction, so that two logins racing with
// the same count, on any instance, cannot both pass.
func (s *Store) UseFastToken(ctx context.Context, user, agent string, hash []byte, count uint64) error {
	err := s.inTx(ctx, pgx.Serializable, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT seq, token_hash, count FROM fast_tokens WHERE username = $1 AND agent = $2 ORDER BY seq DESC`, user, agent)
		if err != nil {
			return err
		}
		var (
			seq, stored   int64
			found, newest = false, true
			sq, c         int64
			h             []byte
		)
		_, err = pgx.ForEachRow(rows, []any{&sq, &h, &c}, func() error {
			if found {
				return nil
			}
			if bytes.Equal(h, hash) {
				seq, stored, found = sq, c, true
			} else {
				newest = false
			}
			return nil
		})
		if err != nil {
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
		if _, err := tx.Exec(ctx, `UPDATE fast_tokens SET count = $1 WHERE username = $2 AND agent = $3 AND seq = $4`, int64(count), user, agent, seq); err != nil {
			return err
		}
		if newest {
			_, err = tx.Exec(ctx, `DELETE FROM fast_tokens WHERE username = $1 AND agent = $2 AND seq < $3`, user, agent, seq)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: use fast token %s: %w", user, err)
	}
	return nil
}

// DeleteFastTokens implements storage.FastTokens.
func (s *Store) DeleteFastTokens(ctx context.Context, user, agent string) error {
	var err error
	if agent == "" {
		_, err = s.pool.Exec(ctx, `DELETE FROM fast_tokens WHERE username = $1`, user)
	} else {
		_, err = s.pool.Exec(ctx, `DELETE FROM fast_tokens WHERE username = $1 AND agent = $2`, user, agent)
	}
	if err != nil {
		return fmt.Errorf("postgres: delete fast tokens %s: %w", user, err)
	}
	return nil
}
