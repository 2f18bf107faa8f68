package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

var _ storage.PEP = (*Store)(nil)

// pepNodeExists reports storage.ErrNotFound unless the node exists.
func pepNodeExists(ctx context.Context, q queryRower, owner, node string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM pep_nodes WHERE owner = ? AND node = ?`, owner, node).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	return err
}

// PEPNodes implements storage.PEP.
func (s *Store) PEPNodes(ctx context.Context, owner string) ([]storage.PEPNode, error) {
	rows, err := s.query(ctx, `SELECT node, access_model, max_items, persist_items, send_last, notify_retract
		FROM pep_nodes WHERE owner = ? ORDER BY node`, owner)
	if err != nil {
		return nil, fmt.Errorf("sqlite: pep nodes %s: %w", owner, err)
	}
	defer rows.Close()
	var out []storage.PEPNode
	for rows.Next() {
		var n storage.PEPNode
		if err := rows.Scan(&n.Node, &n.AccessModel, &n.MaxItems, &n.PersistItems, &n.SendLast, &n.NotifyRetract); err != nil {
			return nil, fmt.Errorf("sqlite: pep nodes %s: %w", owner, err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: pep nodes %s: %w", owner, err)
	}
	return out, nil
}

// PEPNode implements storage.PEP.
func (s *Store) PEPNode(ctx context.Context, owner, node string) (storage.PEPNode, error) {
	n := storage.PEPNode{Node: node}
	err := s.queryRow(ctx, `SELECT access_model, max_items, persist_items, send_last, notify_retract
		FROM pep_nodes WHERE owner = ? AND node = ?`, owner, node).
		Scan(&n.AccessModel, &n.MaxItems, &n.PersistItems, &n.SendLast, &n.NotifyRetract)
	if errors.Is(err, sql.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.PEPNode{}, fmt.Errorf("sqlite: pep node %s %s: %w", owner, node, err)
	}
	return n, nil
}

// PutPEPNode implements storage.PEP.
func (s *Store) PutPEPNode(ctx context.Context, owner string, n storage.PEPNode) error {
	if n.Node == "" {
		return fmt.Errorf("sqlite: put pep node %s: %w: empty node", owner, storage.ErrInvalid)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pep_nodes (owner, node, access_model, max_items, persist_items, send_last, notify_retract)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (owner, node) DO UPDATE SET access_model = excluded.access_model, max_items = excluded.max_items,
				persist_items = excluded.persist_items, send_last = excluded.send_last, notify_retract = excluded.notify_retract`,
			owner, n.Node, n.AccessModel, n.MaxItems, n.PersistItems, n.SendLast, n.NotifyRetract)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put pep node %s %s: %w", owner, n.Node, err)
	}
	return nil
}

// DeletePEPNode implements storage.PEP. Items are deleted explicitly, not
// only by the foreign key, for connections opened without foreign_keys(1).
func (s *Store) DeletePEPNode(ctx context.Context, owner, node string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := pepNodeExists(ctx, tx, owner, node); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pep_items WHERE owner = ? AND node = ?`, owner, node); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM pep_nodes WHERE owner = ? AND node = ?`, owner, node)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete pep node %s %s: %w", owner, node, err)
	}
	return nil
}

// PublishPEPItem implements storage.PEP.
func (s *Store) PublishPEPItem(ctx context.Context, owner, node string, it storage.PEPItem, max int) error {
	if it.ID == "" {
		return fmt.Errorf("sqlite: publish pep item %s %s: %w: empty id", owner, node, storage.ErrInvalid)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := pepNodeExists(ctx, tx, owner, node); err != nil {
			return err
		}
		var top sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(seq) FROM pep_items WHERE owner = ? AND node = ?`, owner, node).Scan(&top); err != nil {
			return err
		}
		payload := it.Payload
		if payload == nil {
			payload = []byte{}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO pep_items (owner, node, id, seq, publisher, payload, published) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (owner, node, id) DO UPDATE SET seq = excluded.seq, publisher = excluded.publisher,
				payload = excluded.payload, published = excluded.published`,
			owner, node, it.ID, top.Int64+1, it.Publisher, payload, it.Published.UnixMicro())
		if err != nil || max <= 0 {
			return err
		}
		// Everything older than the max-th newest goes; seq has gaps where
		// an id was published again, so count rows rather than subtract.
		_, err = tx.ExecContext(ctx, `DELETE FROM pep_items WHERE owner = ? AND node = ? AND seq < (
			SELECT MIN(seq) FROM (SELECT seq FROM pep_items WHERE owner = ? AND node = ? ORDER BY seq DESC LIMIT ?) AS newest)`,
			owner, node, owner, node, max)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: publish pep item %s %s: %w", owner, node, err)
	}
	return nil
}

// PEPItems implements storage.PEP.
func (s *Store) PEPItems(ctx context.Context, owner, node string, ids []string, max int) ([]storage.PEPItem, error) {
	if err := pepNodeExists(ctx, s.db, owner, node); err != nil {
		return nil, fmt.Errorf("sqlite: pep items %s %s: %w", owner, node, err)
	}
	q := `SELECT id, publisher, payload, published FROM pep_items WHERE owner = ? AND node = ?`
	args := []any{owner, node}
	if len(ids) > 0 {
		q += ` AND id IN (?` + strings.Repeat(`, ?`, len(ids)-1) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	q += ` ORDER BY seq DESC`
	if max > 0 {
		q += ` LIMIT ?`
		args = append(args, max)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: pep items %s %s: %w", owner, node, err)
	}
	defer rows.Close()
	var out []storage.PEPItem
	for rows.Next() {
		var it storage.PEPItem
		var us int64
		if err := rows.Scan(&it.ID, &it.Publisher, &it.Payload, &us); err != nil {
			return nil, fmt.Errorf("sqlite: pep items %s %s: %w", owner, node, err)
		}
		it.Published = time.UnixMicro(us)
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: pep items %s %s: %w", owner, node, err)
	}
	return out, nil
}

// RetractPEPItem implements storage.PEP.
func (s *Store) RetractPEPItem(ctx context.Context, owner, node, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM pep_items WHERE owner = ? AND node = ? AND id = ?`, owner, node, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: retract pep item %s %s %s: %w", owner, node, id, err)
	}
	return nil
}

// PurgePEPNode implements storage.PEP.
func (s *Store) PurgePEPNode(ctx context.Context, owner, node string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := pepNodeExists(ctx, tx, owner, node); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM pep_items WHERE owner = ? AND node = ?`, owner, node)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: purge pep node %s %s: %w", owner, node, err)
	}
	return nil
}
