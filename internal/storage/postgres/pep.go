package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// lockPEPNode locks the node's row until tx ends, so that writers of one
// node's items take turns (publishers would otherwise pick the same
// sequence number), and reports storage.ErrNotFound unless the node
// exists.
func lockPEPNode(ctx context.Context, tx pgx.Tx, owner, node string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM pep_nodes WHERE owner = $1 AND node = $2 FOR UPDATE`, owner, node).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	return err
}

// PEPNodes implements storage.PEP.
func (s *Store) PEPNodes(ctx context.Context, owner string) ([]storage.PEPNode, error) {
	rows, err := s.pool.Query(ctx, `SELECT node, access_model, max_items, persist_items, send_last, notify_retract
		FROM pep_nodes WHERE owner = $1 ORDER BY node`, owner)
	if err != nil {
		return nil, fmt.Errorf("postgres: pep nodes %s: %w", owner, err)
	}
	var (
		out []storage.PEPNode
		n   storage.PEPNode
	)
	_, err = pgx.ForEachRow(rows, []any{&n.Node, &n.AccessModel, &n.MaxItems, &n.PersistItems, &n.SendLast, &n.NotifyRetract}, func() error {
		out = append(out, n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: pep nodes %s: %w", owner, err)
	}
	return out, nil
}

// PEPNode implements storage.PEP.
func (s *Store) PEPNode(ctx context.Context, owner, node string) (storage.PEPNode, error) {
	n := storage.PEPNode{Node: node}
	err := s.pool.QueryRow(ctx, `SELECT access_model, max_items, persist_items, send_last, notify_retract
		FROM pep_nodes WHERE owner = $1 AND node = $2`, owner, node).
		Scan(&n.AccessModel, &n.MaxItems, &n.PersistItems, &n.SendLast, &n.NotifyRetract)
	if errors.Is(err, pgx.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.PEPNode{}, fmt.Errorf("postgres: pep node %s %s: %w", owner, node, err)
	}
	return n, nil
}

// PutPEPNode implements storage.PEP.
func (s *Store) PutPEPNode(ctx context.Context, owner string, n storage.PEPNode) error {
	if n.Node == "" {
		return fmt.Errorf("postgres: put pep node %s: %w: empty node", owner, storage.ErrInvalid)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO pep_nodes (owner, node, access_model, max_items, persist_items, send_last, notify_retract)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (owner, node) DO UPDATE SET access_model = excluded.access_model, max_items = excluded.max_items,
			persist_items = excluded.persist_items, send_last = excluded.send_last, notify_retract = excluded.notify_retract`,
		owner, n.Node, n.AccessModel, n.MaxItems, n.PersistItems, n.SendLast, n.NotifyRetract)
	if err != nil {
		return fmt.Errorf("postgres: put pep node %s %s: %w", owner, n.Node, err)
	}
	return nil
}

// DeletePEPNode implements storage.PEP. The items go with the node (ON
// DELETE CASCADE).
func (s *Store) DeletePEPNode(ctx context.Context, owner, node string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM pep_nodes WHERE owner = $1 AND node = $2`, owner, node)
	if err == nil && tag.RowsAffected() == 0 {
		err = storage.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: delete pep node %s %s: %w", owner, node, err)
	}
	return nil
}

// PublishPEPItem implements storage.PEP.
func (s *Store) PublishPEPItem(ctx context.Context, owner, node string, it storage.PEPItem, max int) error {
	if it.ID == "" {
		return fmt.Errorf("postgres: publish pep item %s %s: %w: empty id", owner, node, storage.ErrInvalid)
	}
	err := s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		if err := lockPEPNode(ctx, tx, owner, node); err != nil {
			return err
		}
		var top *int64
		if err := tx.QueryRow(ctx, `SELECT MAX(seq) FROM pep_items WHERE owner = $1 AND node = $2`, owner, node).Scan(&top); err != nil {
			return err
		}
		seq := int64(1)
		if top != nil {
			seq = *top + 1
		}
		_, err := tx.Exec(ctx, `INSERT INTO pep_items (owner, node, id, seq, publisher, payload, published) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (owner, node, id) DO UPDATE SET seq = excluded.seq, publisher = excluded.publisher,
				payload = excluded.payload, published = excluded.published`,
			owner, node, it.ID, seq, it.Publisher, bytea(it.Payload), it.Published.UnixMicro())
		if err != nil || max <= 0 {
			return err
		}
		// Everything older than the max-th newest goes; seq has gaps where
		// an id was published again, so count rows rather than subtract.
		_, err = tx.Exec(ctx, `DELETE FROM pep_items WHERE owner = $1 AND node = $2 AND seq < (
			SELECT MIN(seq) FROM (SELECT seq FROM pep_items WHERE owner = $1 AND node = $2 ORDER BY seq DESC LIMIT $3) AS newest)`,
			owner, node, max)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: publish pep item %s %s: %w", owner, node, err)
	}
	return nil
}

// PEPItems implements storage.PEP. The node check and the items come
// from one snapshot.
func (s *Store) PEPItems(ctx context.Context, owner, node string, ids []string, max int) ([]storage.PEPItem, error) {
	var out []storage.PEPItem
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		out = nil
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM pep_nodes WHERE owner = $1 AND node = $2`, owner, node).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return storage.ErrNotFound
		}
		if err != nil {
			return err
		}
		q := `SELECT id, publisher, payload, published FROM pep_items WHERE owner = $1 AND node = $2`
		args := []any{owner, node}
		if len(ids) > 0 {
			args = append(args, ids)
			q += fmt.Sprintf(` AND id = ANY($%d)`, len(args))
		}
		q += ` ORDER BY seq DESC`
		if max > 0 {
			args = append(args, max)
			q += fmt.Sprintf(` LIMIT $%d`, len(args))
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		var (
			it storage.PEPItem
			us int64
		)
		_, err = pgx.ForEachRow(rows, []any{&it.ID, &it.Publisher, &it.Payload, &us}, func() error {
			it.Published = time.UnixMicro(us)
			out = append(out, it)
			it = storage.PEPItem{}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: pep items %s %s: %w", owner, node, err)
	}
	return out, nil
}

// RetractPEPItem implements storage.PEP.
func (s *Store) RetractPEPItem(ctx context.Context, owner, node, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM pep_items WHERE owner = $1 AND node = $2 AND id = $3`, owner, node, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = storage.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: retract pep item %s %s %s: %w", owner, node, id, err)
	}
	return nil
}

// PurgePEPNode implements storage.PEP.
func (s *Store) PurgePEPNode(ctx context.Context, owner, node string) error {
	err := s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		if err := lockPEPNode(ctx, tx, owner, node); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM pep_items WHERE owner = $1 AND node = $2`, owner, node)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: purge pep node %s %s: %w", owner, node, err)
	}
	return nil
}
