package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

var _ storage.AppServiceQueue = (*Store)(nil)

// Every write locks the queue's row first (the upsert of an append, FOR
// UPDATE otherwise) and keeps it until it commits. Appends are therefore
// numbered in the order they commit, and a transaction opened after an
// append sees its events: without the lock an event numbered before
// another but committed after it could miss the transaction that the
// later one joined, and be acknowledged with it unsent.

// AppendAppServiceEvents implements storage.AppServiceQueue: the events
// go in with one statement, whatever their number.
func (s *Store) AppendAppServiceEvents(ctx context.Context, service string, events [][]byte) (int, error) {
	if len(events) == 0 {
		return s.AppServiceDepth(ctx, service)
	}
	data := make([][]byte, len(events))
	for i, e := range events {
		data[i] = bytea(e)
	}
	epoch := storage.NewAppServiceEpoch()
	var depth int
	err := s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		var next int64
		n := len(data)
		err := tx.QueryRow(ctx, `INSERT INTO appservice_queues (service, epoch, next_seq, next_txn, depth) VALUES ($1, $2, $3, 1, $4)
			ON CONFLICT (service) DO UPDATE SET next_seq = appservice_queues.next_seq + excluded.depth, depth = appservice_queues.depth + excluded.depth
			RETURNING next_seq, depth`, service, epoch, int64(1+n), int64(n)).Scan(&next, &depth)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO appservice_events (service, seq, data)
			SELECT $1, $2 + e.i - 1, e.data FROM unnest($3::bytea[]) WITH ORDINALITY AS e (data, i)`,
			service, next-int64(n), data)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: append appservice events %s: %w", service, err)
	}
	return depth, nil
}

// OpenAppServiceTxn implements storage.AppServiceQueue.
func (s *Store) OpenAppServiceTxn(ctx context.Context, service string, max int) (string, []storage.AppServiceEvent, error) {
	if max < 1 {
		return "", nil, fmt.Errorf("postgres: open appservice txn %s: %w: max %d", service, storage.ErrInvalid, max)
	}
	var (
		txn    string
		events []storage.AppServiceEvent
	)
	err := s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		txn, events = "", nil
		var (
			epoch    string
			nextTxn  int64
			openTxn  *string
			openLast *int64
		)
		err := tx.QueryRow(ctx, `SELECT epoch, next_txn, open_txn, open_last FROM appservice_queues WHERE service = $1 FOR UPDATE`,
			service).Scan(&epoch, &nextTxn, &openTxn, &openLast)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if openTxn != nil && openLast != nil {
			events, err = queryAppServiceEvents(ctx, tx, `SELECT seq, data FROM appservice_events WHERE service = $1 AND seq <= $2 ORDER BY seq`,
				service, *openLast)
			if err != nil || len(events) > 0 {
				txn = *openTxn
				return err
			}
			// An open transaction without events is none: open the next.
		}
		events, err = queryAppServiceEvents(ctx, tx, `SELECT seq, data FROM appservice_events WHERE service = $1 ORDER BY seq LIMIT $2`,
			service, max)
		if err != nil || len(events) == 0 {
			return err
		}
		txn = storage.AppServiceTxnID(epoch, nextTxn)
		_, err = tx.Exec(ctx, `UPDATE appservice_queues SET open_txn = $1, open_last = $2, next_txn = next_txn + 1 WHERE service = $3`,
			txn, events[len(events)-1].Seq, service)
		return err
	})
	if err != nil {
		return "", nil, fmt.Errorf("postgres: open appservice txn %s: %w", service, err)
	}
	return txn, events, nil
}

func queryAppServiceEvents(ctx context.Context, tx pgx.Tx, q string, args ...any) ([]storage.AppServiceEvent, error) {
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var (
		out []storage.AppServiceEvent
		e   storage.AppServiceEvent
	)
	_, err = pgx.ForEachRow(rows, []any{&e.Seq, &e.Data}, func() error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// AckAppServiceTxn implements storage.AppServiceQueue.
func (s *Store) AckAppServiceTxn(ctx context.Context, service, txn string) error {
	err := s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		var last int64
		err := tx.QueryRow(ctx, `SELECT open_last FROM appservice_queues WHERE service = $1 AND open_txn = $2 FOR UPDATE`,
			service, txn).Scan(&last)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // unknown, or acknowledged already
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM appservice_events WHERE service = $1 AND seq <= $2`, service, last)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE appservice_queues SET open_txn = NULL, open_last = NULL, depth = depth - $1 WHERE service = $2`,
			tag.RowsAffected(), service)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: ack appservice txn %s %s: %w", service, txn, err)
	}
	return nil
}

// AppServiceDepth implements storage.AppServiceQueue.
func (s *Store) AppServiceDepth(ctx context.Context, service string) (int, error) {
	var depth int
	err := s.pool.QueryRow(ctx, `SELECT depth FROM appservice_queues WHERE service = $1`, service).Scan(&depth)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: appservice depth %s: %w", service, err)
	}
	return depth, nil
}

// TrimAppServiceQueue implements storage.AppServiceQueue.
func (s *Store) TrimAppServiceQueue(ctx context.Context, service string, keep int) (int, error) {
	if keep < 0 {
		return 0, fmt.Errorf("postgres: trim appservice queue %s: %w: keep %d", service, storage.ErrInvalid, keep)
	}
	var dropped int64
	err := s.inTx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		dropped = 0
		var (
			depth    int64
			openLast *int64
		)
		err := tx.QueryRow(ctx, `SELECT depth, open_last FROM appservice_queues WHERE service = $1 FOR UPDATE`,
			service).Scan(&depth, &openLast)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && depth <= int64(keep)) {
			return nil
		}
		if err != nil {
			return err
		}
		after := int64(0)
		if openLast != nil {
			after = *openLast
		}
		// The oldest events after the open transaction's go.
		tag, err := tx.Exec(ctx, `DELETE FROM appservice_events WHERE service = $1 AND seq IN (
			SELECT seq FROM appservice_events WHERE service = $1 AND seq > $2 ORDER BY seq LIMIT $3)`,
			service, after, depth-int64(keep))
		if err != nil {
			return err
		}
		dropped = tag.RowsAffected()
		_, err = tx.Exec(ctx, `UPDATE appservice_queues SET depth = depth - $1 WHERE service = $2`, dropped, service)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: trim appservice queue %s: %w", service, err)
	}
	return int(dropped), nil
}
