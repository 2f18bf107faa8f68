package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

var _ storage.Invites = (*Store)(nil)

// CreateInvite implements storage.Invites.
func (s *Store) CreateInvite(ctx context.Context, inv storage.Invite) error {
	if inv.Token == "" || inv.Domain == "" {
		return fmt.Errorf("sqlite: create invite: %w: empty token or domain", storage.ErrInvalid)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO invites (token, domain, inviter, expires) VALUES (?, ?, ?, ?)`,
		inv.Token, inv.Domain, inv.Inviter, inv.Expires.UnixMicro())
	if isPrimaryKeyViolation(err) {
		err = storage.ErrExists
	}
	if err != nil {
		return fmt.Errorf("sqlite: create invite: %w", err)
	}
	return nil
}

// Invite implements storage.Invites.
func (s *Store) Invite(ctx context.Context, token string, now time.Time) (storage.Invite, error) {
	inv, err := readInvite(ctx, s.db, token, now)
	if err != nil {
		return storage.Invite{}, fmt.Errorf("sqlite: invite: %w", err)
	}
	return inv, nil
}

// UseInvite implements storage.Invites.
func (s *Store) UseInvite(ctx context.Context, token string, now time.Time) (storage.Invite, error) {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM invites WHERE expires <= ?`, now.UnixMicro()); err != nil {
		return storage.Invite{}, fmt.Errorf("sqlite: use invite: %w", err)
	}
	var inv storage.Invite
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if inv, err = readInvite(ctx, tx, token, now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM invites WHERE token = ?`, token)
		return err
	})
	if err != nil {
		return storage.Invite{}, fmt.Errorf("sqlite: use invite: %w", err)
	}
	return inv, nil
}

func readInvite(ctx context.Context, q queryRower, token string, now time.Time) (storage.Invite, error) {
	inv := storage.Invite{Token: token}
	var exp int64
	err := q.QueryRowContext(ctx, `SELECT domain, inviter, expires FROM invites WHERE token = ? AND expires > ?`,
		token, now.UnixMicro()).Scan(&inv.Domain, &inv.Inviter, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Invite{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.Invite{}, err
	}
	inv.Expires = time.UnixMicro(exp).UTC()
	return inv, nil
}
