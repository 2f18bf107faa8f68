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

// SetPrivateXML implements storage.PrivateData. Writes that arrive while
// another transaction holds the writer lock commit together, in the order
// they arrived (group commit): every session's end writes its last
// activity here, and a burst of logouts then costs one commit, not one
// each. Each call still returns only once its own write is committed.
func (s *Store) SetPrivateXML(ctx context.Context, user, key string, data []byte) error {
	w := &privateWrite{ctx: ctx, user: user, key: key, data: data, done: make(chan error, 1)}
	s.pmu.Lock()
	s.pending = append(s.pending, w)
	s.pmu.Unlock()

	s.wmu.Lock()
	s.pmu.Lock()
	batch := s.pending
	s.pending = nil
	s.pmu.Unlock()
	if len(batch) > 0 {
		// The batch is written whatever becomes of this caller's context:
		// it holds the others' writes too.
		_ = s.deep.run(context.Background(), func() { s.writePrivate(batch) })
	}
	s.wmu.Unlock()
	if err := <-w.done; err != nil {
		return fmt.Errorf("sqlite: set private %s %s: %w", user, key, err)
	}
	return nil
}

// privateWrite is one SetPrivateXML call waiting for its commit.
type privateWrite struct {
	ctx       context.Context
	user, key string
	data      []byte
	done      chan error // buffered: the writer never waits
}

const upsertPrivate = `INSERT INTO private_xml (username, xkey, data) VALUES (?, ?, ?)
	ON CONFLICT (username, xkey) DO UPDATE SET data = excluded.data`

// writePrivate commits batch, holding wmu. One write is its own
// transaction; several share one, and should that fail, each is tried
// on its own so that one write's failure (or its caller's cancelled
// context) is not the others'.
func (s *Store) writePrivate(batch []*privateWrite) {
	if len(batch) > 1 {
		st := s.stmts.get(batch[0].ctx, s.db, upsertPrivate)
		err := runTx(context.Background(), s.db.BeginTx, func(tx *sql.Tx) error {
			var ts *sql.Stmt
			if st != nil {
				ts = tx.StmtContext(batch[0].ctx, st)
			}
			for _, w := range batch {
				var err error
				if ts != nil {
					_, err = ts.ExecContext(w.ctx, w.user, w.key, w.data)
				} else {
					_, err = tx.ExecContext(w.ctx, upsertPrivate, w.user, w.key, w.data)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			for _, w := range batch {
				w.done <- nil
			}
			return
		}
	}
	for _, w := range batch {
		_, err := s.exec(w.ctx, upsertPrivate, w.user, w.key, w.data)
		w.done <- err
	}
}
