package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// PrivateXML implements storage.PrivateData.
func (s *Store) PrivateXML(ctx context.Context, user, key string) ([]byte, error) {
	var d []byte
	err := s.queryRow(ctx, `SELECT data FROM private_xml WHERE username = ? AND xkey = ?`, user, key).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: private %s %s: %w", user, key, err)
	}
	return d, nil
}

// SetPrivateXML implements storage.PrivateData.
func (s *Store) SetPrivateXML(ctx context.Context, user, key string, data []byte) error {
	// One statement is its own transaction: no BEGIN and COMMIT around
	// it (a session's end writes its last activity here, at every logout).
	s.wmu.Lock()
	_, err := s.exec(ctx, `INSERT INTO private_xml (username, xkey, data) VALUES (?, ?, ?)
		ON CONFLICT (username, xkey) DO UPDATE SET data = excluded.data`, user, key, data)
	s.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("sqlite: set private %s %s: %w", user, key, err)
	}
	return nil
}
