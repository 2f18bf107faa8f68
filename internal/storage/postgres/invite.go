package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

var _ storage.Invites = (*Store)(nil)

// CreateInvite implements storage.Invites.
func (s *Store) CreateInvite(ctx context.Context, inv storage.Invite) error {
	if inv.Token == "" || inv.Domain == "" {
		return fmt.Errorf("postgres: create invite: %w: empty token or domain", storage.ErrInvalid)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO invites (token, domain, inviter, expires) VALUES ($1, $2, $3, $4)`,
		inv.Token, inv.Domain, inv.Inviter, inv.Expires.UnixMicro())
	if isUniqueViolation(err) {
		err = storage.ErrExists
	}
	if err != nil {
		return fmt.Errorf("postgres: create invite: %w", err)
	}
	return nil
}

// Invite implements storage.Invites.
func (s *Store) Invite(ctx context.Context, token string, now time.Time) (storage.Invite, error) {
	inv, err := scanInvite(token, s.pool.QueryRow(ctx, `SELECT domain, inviter, expires FROM invites WHERE token = $1 AND expires > $2`,
		token, now.UnixMicro()))
	if err != nil {
		return storage.Invite{}, fmt.Errorf("postgres: invite: %w", err)
	}
	return inv, nil
}

// UseInvite implements storage.Invites. The DELETE ... RETURNING decides
// between concurrent users of one token: only one of them gets the row.
func (s *Store) UseInvite(ctx context.Context, token string, now time.Time) (storage.Invite, error) {
	if _, err := s.pool.Exec(ctx, `DELETE FROM invites WHERE expires <= $1`, now.UnixMicro()); err != nil {
		return storage.Invite{}, fmt.Errorf("postgres: use invite: %w", err)
	}
	inv, err := scanInvite(token, s.pool.QueryRow(ctx, `DELETE FROM invites WHERE token = $1 AND expires > $2 RETURNING domain, inviter, expires`,
		token, now.UnixMicro()))
	if err != nil {
		return storage.Invite{}, fmt.Errorf("postgres: use invite: %w", err)
	}
	return inv, nil
}

func scanInvite(token string, row pgx.Row) (storage.Invite, error) {
	inv := storage.Invite{Token: token}
	var exp int64
	err := row.Scan(&inv.Domain, &inv.Inviter, &exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Invite{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.Invite{}, err
	}
	inv.Expires = time.UnixMicro(exp).UTC()
	return inv, nil
}
