package memory

import (
	"bytes"
	"context"
	"fmt"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

var _ storage.AppServiceQueue = (*Store)(nil)

// asQueue is one application service's queue. The open transaction, if
// any, is made of the first open events.
type asQueue struct {
	epoch   string
	nextSeq int64
	nextTxn int64
	events  []storage.AppServiceEvent
	openTxn string
	open    int
}

func (s *Store) asQueue(service string) *asQueue {
	q := s.appservice[service]
	if q == nil {
		q = &asQueue{epoch: storage.NewAppServiceEpoch(), nextSeq: 1, nextTxn: 1}
		if s.appservice == nil {
			s.appservice = make(map[string]*asQueue)
		}
		s.appservice[service] = q
	}
	return q
}

// AppendAppServiceEvents implements storage.AppServiceQueue.
func (s *Store) AppendAppServiceEvents(ctx context.Context, service string, events [][]byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: append appservice events %s: %w", service, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(events) == 0 {
		if q := s.appservice[service]; q != nil {
			return len(q.events), nil
		}
		return 0, nil
	}
	q := s.asQueue(service)
	for _, e := range events {
		q.events = append(q.events, storage.AppServiceEvent{Seq: q.nextSeq, Data: bytes.Clone(e)})
		q.nextSeq++
	}
	return len(q.events), nil
}

// OpenAppServiceTxn implements storage.AppServiceQueue.
func (s *Store) OpenAppServiceTxn(ctx context.Context, service string, max int) (string, []storage.AppServiceEvent, error) {
	if err := ctx.Err(); err != nil {
		return "", nil, fmt.Errorf("memory: open appservice txn %s: %w", service, err)
	}
	if max < 1 {
		return "", nil, fmt.Errorf("memory: open appservice txn %s: %w: max %d", service, storage.ErrInvalid, max)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.appservice[service]
	if q == nil || len(q.events) == 0 {
		return "", nil, nil
	}
	if q.openTxn == "" {
		q.openTxn = storage.AppServiceTxnID(q.epoch, q.nextTxn)
		q.nextTxn++
		q.open = min(max, len(q.events))
	}
	out := make([]storage.AppServiceEvent, q.open)
	for i, e := range q.events[:q.open] {
		out[i] = storage.AppServiceEvent{Seq: e.Seq, Data: bytes.Clone(e.Data)}
	}
	return q.openTxn, out, nil
}

// AckAppServiceTxn implements storage.AppServiceQueue.
func (s *Store) AckAppServiceTxn(ctx context.Context, service, txn string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: ack appservice txn %s %s: %w", service, txn, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.appservice[service]
	if q == nil || q.openTxn == "" || q.openTxn != txn {
		return nil
	}
	q.events = dropEvents(q.events, 0, q.open)
	q.openTxn, q.open = "", 0
	return nil
}

// AppServiceDepth implements storage.AppServiceQueue.
func (s *Store) AppServiceDepth(ctx context.Context, service string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: appservice depth %s: %w", service, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.appservice[service]; q != nil {
		return len(q.events), nil
	}
	return 0, nil
}

// TrimAppServiceQueue implements storage.AppServiceQueue.
func (s *Store) TrimAppServiceQueue(ctx context.Context, service string, keep int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: trim appservice queue %s: %w", service, err)
	}
	if keep < 0 {
		return 0, fmt.Errorf("memory: trim appservice queue %s: %w: keep %d", service, storage.ErrInvalid, keep)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.appservice[service]
	if q == nil || len(q.events) <= keep {
		return 0, nil
	}
	n := min(len(q.events)-keep, len(q.events)-q.open)
	q.events = dropEvents(q.events, q.open, n)
	return n, nil
}

// dropEvents removes n events from events at i. The i events before the
// gap move up to close it: they are at most a transaction's, while those
// after may be a long backlog. The array's front is let go, and append
// moves the rest to a new one when it is full.
func dropEvents(events []storage.AppServiceEvent, i, n int) []storage.AppServiceEvent {
	if n == 0 {
		return events
	}
	copy(events[n:n+i], events[:i])
	clear(events[:n])
	if events = events[n:]; len(events) == 0 {
		return nil
	}
	return events
}
