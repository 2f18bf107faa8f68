package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

var _ storage.AppServiceQueue = (*Store)(nil)

// appendRows bounds the events inserted by one statement: one statement
// of many rows costs far less than a statement per row, and SQLite
// limits the parameters of a statement.
const appendRows = 100

// AppendAppServiceEvents implements storage.AppServiceQueue. The queue's
// row is created with the first events; its update numbers them.
func (s *Store) AppendAppServiceEvents(ctx context.Context, service string, events [][]byte) (int, error) {
	if len(events) == 0 {
		return s.AppServiceDepth(ctx, service)
	}
	var depth int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var next int64
		n := len(events)
		err := tx.QueryRowContext(ctx, `INSERT INTO appservice_queues (service, epoch, next_seq, next_txn, depth) VALUES (?, ?, ?, 1, ?)
			ON CONFLICT (service) DO UPDATE SET next_seq = next_seq + excluded.depth, depth = depth + excluded.depth
			RETURNING next_seq, depth`, service, storage.NewAppServiceEpoch(), 1+n, n).Scan(&next, &depth)
		if err != nil {
			return err
		}
		seq := next - int64(n)
		var (
			q    strings.Builder
			args []any
		)
		for len(events) > 0 {
			chunk := events[:min(len(events), appendRows)]
			events = events[len(chunk):]
			q.Reset()
			q.WriteString(`INSERT INTO appservice_events (service, seq, data) VALUES `)
			args = args[:0]
			for i, e := range chunk {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?)")
				if e == nil {
					e = []byte{} // the driver would store nil as NULL
				}
				args = append(args, service, seq, e)
				seq++
			}
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: append appservice events %s: %w", service, err)
	}
	return depth, nil
}

// OpenAppServiceTxn implements storage.AppServiceQueue.
func (s *Store) OpenAppServiceTxn(ctx context.Context, service string, max int) (string, []storage.AppServiceEvent, error) {
	if max < 1 {
		return "", nil, fmt.Errorf("sqlite: open appservice txn %s: %w: max %d", service, storage.ErrInvalid, max)
	}
	var (
		txn    string
		events []storage.AppServiceEvent
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		txn, events = "", nil
		var (
			epoch    string
			nextTxn  int64
			openTxn  sql.NullString
			openLast sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, `SELECT epoch, next_txn, open_txn, open_last FROM appservice_queues WHERE service = ?`,
			service).Scan(&epoch, &nextTxn, &openTxn, &openLast)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if openTxn.Valid {
			events, err = queryAppServiceEvents(ctx, tx, `SELECT seq, data FROM appservice_events WHERE service = ? AND seq <= ? ORDER BY seq`,
				service, openLast.Int64)
			if err != nil || len(events) > 0 {
				txn = openTxn.String
				return err
			}
			// An open transaction without events is none: open the next.
		}
		events, err = queryAppServiceEvents(ctx, tx, `SELECT seq, data FROM appservice_events WHERE service = ? ORDER BY seq LIMIT ?`,
			service, max)
		if err != nil || len(events) == 0 {
			return err
		}
		txn = storage.AppServiceTxnID(epoch, nextTxn)
		_, err = tx.ExecContext(ctx, `UPDATE appservice_queues SET open_txn = ?, open_last = ?, next_txn = next_txn + 1 WHERE service = ?`,
			txn, events[len(events)-1].Seq, service)
		return err
	})
	if err != nil {
		return "", nil, fmt.Errorf("sqlite: open appservice txn %s: %w", service, err)
	}
	return txn, events, nil
}

func queryAppServiceEvents(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]storage.AppServiceEvent, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.AppServiceEvent
	for rows.Next() {
		var e storage.AppServiceEvent
		if err := rows.Scan(&e.Seq, &e.Data); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// AckAppServiceTxn implements storage.AppServiceQueue.
func (s *Store) AckAppServiceTxn(ctx context.Context, service, txn string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var last int64
		err := tx.QueryRowContext(ctx, `SELECT open_last FROM appservice_queues WHERE service = ? AND open_txn = ?`,
			service, txn).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // unknown, or acknowledged already
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM appservice_events WHERE service = ? AND seq <= ?`, service, last)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE appservice_queues SET open_txn = NULL, open_last = NULL, depth = depth - ? WHERE service = ?`,
			n, service)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: ack appservice txn %s %s: %w", service, txn, err)
	}
	return nil
}

// AppServiceDepth implements storage.AppServiceQueue.
func (s *Store) AppServiceDepth(ctx context.Context, service string) (int, error) {
	var depth int
	err := s.queryRow(ctx, `SELECT depth FROM appservice_queues WHERE service = ?`, service).Scan(&depth)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: appservice depth %s: %w", service, err)
	}
	return depth, nil
}

// TrimAppServiceQueue implements storage.AppServiceQueue.
func (s *Store) TrimAppServiceQueue(ctx context.Context, service string, keep int) (int, error) {
	if keep < 0 {
		return 0, fmt.Errorf("sqlite: trim appservice queue %s: %w: keep %d", service, storage.ErrInvalid, keep)
	}
	var dropped int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		dropped = 0
		var (
			depth    int
			openLast sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, `SELECT depth, open_last FROM appservice_queues WHERE service = ?`, service).Scan(&depth, &openLast)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && depth <= keep) {
			return nil
		}
		if err != nil {
			return err
		}
		// The oldest events after the open transaction's go.
		res, err := tx.ExecContext(ctx, `DELETE FROM appservice_events WHERE service = ? AND seq IN (
			SELECT seq FROM appservice_events WHERE service = ? AND seq > ? ORDER BY seq LIMIT ?)`,
			service, service, openLast.Int64, depth-keep)
		if err != nil {
			return err
		}
		if dropped, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE appservice_queues SET depth = depth - ? WHERE service = ?`, dropped, service)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: trim appservice queue %s: %w", service, err)
	}
	return int(dropped), nil
}
