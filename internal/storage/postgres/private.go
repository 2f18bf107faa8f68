package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// PrivateXML implements storage.PrivateData.
func (s *Store) PrivateXML(ctx context.Context, user, key string) ([]byte, error) {
	var d []byte
	err := s.pool.QueryRow(ctx, `SELECT data FROM private_xml WHERE username = $1 AND xkey = $2`, user, key).Scan(&d)
	if errors.Is(err, pgx.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: private %s %s: %w", user, key, err)
	}
	return d, nil
}

// SetPrivateXML implements storage.PrivateData.
func (s *Store) SetPrivateXML(ctx context.Context, user, key string, data []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO private_xml (username, xkey, data) VALUES ($1, $2, $3)
		ON CONFLICT (username, xkey) DO UPDATE SET data = excluded.data`, user, key, bytea(data))
	if err != nil {
		return fmt.Errorf("postgres: set private %s %s: %w", user, key, err)
	}
	return nil
}
