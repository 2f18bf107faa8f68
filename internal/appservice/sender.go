package appservice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// The delivery of transactions (docs/appservices.md).
const (
	// TxnTimeout is how long a transaction waits for the service's answer
	// before it counts as failed.
	TxnTimeout = 30 * time.Second
	// RetryMin is the pause after a transaction's first failure; it
	// doubles with each failure in a row, up to RetryMax.
	RetryMin = time.Second
	RetryMax = 5 * time.Minute
)

// Retry is the pause before sending again after failures failures in a
// row (1 or more): RetryMin doubled each time, at most RetryMax.
func Retry(failures int) time.Duration {
	d := RetryMin
	for i := 1; i < failures && d < RetryMax; i++ {
		d *= 2
	}
	return min(d, RetryMax)
}

// Limits of the store writer.
const (
	// maxPending is how many events may wait in memory for the writer
	// before Enqueue waits for it: beyond that the database is the
	// bottleneck, and holding more would only hide it.
	maxPending = 20000
	// A write of fewer than minWrite events waits gather for more, so
	// that a steady trickle of events costs fewer commits.
	minWrite = 32
	gather   = 2 * time.Millisecond
	// storeAttempts bounds the attempts to store a write; the events are
	// lost if all fail.
	storeAttempts = 3
)

// SenderDeps is what a Sender needs besides its service.
type SenderDeps struct {
	// Queue keeps the events until the service acknowledges them.
	Queue storage.AppServiceQueue
	// Client sends the transactions; nil for a client of its own. Each
	// request is bounded by TxnTimeout whatever the client's timeout.
	Client *http.Client
	Log    *slog.Logger
	// Metrics may be nil.
	Metrics Metrics
	// Retry returns the pause after failures failures in a row; nil for
	// Retry, the contract's. Tests make it short.
	Retry func(failures int) time.Duration
}

// Sender delivers the events of one service: Enqueue stores them, and Run
// sends them in transactions, one at a time, until each is acknowledged.
//
// Enqueue does not wait for the service, nor for the database: a writer
// goroutine, running while there is something to write, stores what was
// enqueued meanwhile in one database transaction, and wakes Run. Events
// are durable once stored: a crash of the server loses what the writer
// had not stored yet (a few milliseconds' worth), a shutdown nothing,
// since Run stores everything before it returns.
type Sender struct {
	svc     *Service
	q       storage.AppServiceQueue
	client  *http.Client
	log     *slog.Logger
	metrics Metrics
	retry   func(int) time.Duration
	url     string // of the transactions, the id to append
	auth    string

	running  atomic.Bool
	failures int // in a row, of Run's goroutine
	// wake is signalled when events were stored; Run waits on it when
	// nothing waits in the queue.
	wake chan struct{}
	// depthMu makes a change of the queue and the report of its depth one
	// step, so that the writer's and Run's reports come in the order of
	// the changes. It is never held together with mu.
	depthMu sync.Mutex

	mu       sync.Mutex
	pending  [][]byte      // enqueued, not yet handed to the store
	spare    [][]byte      // the writer's last write, emptied, for reuse
	accepted uint64        // events enqueued since the start
	settled  uint64        // of which the writer is done with (stored or lost)
	writing  bool          // the writer goroutine runs
	progress chan struct{} // closed when settled grows or the writer stops
}

// NewSender returns the sender of svc's events.
func NewSender(svc *Service, d SenderDeps) (*Sender, error) {
	if svc == nil || d.Queue == nil || d.Log == nil {
		return nil, errors.New("appservice: sender: service, queue and logger are required")
	}
	s := &Sender{
		svc:      svc,
		q:        d.Queue,
		client:   d.Client,
		log:      d.Log.With("component", "appservice", "service", svc.Name),
		metrics:  d.Metrics,
		retry:    d.Retry,
		url:      strings.TrimSuffix(svc.URL, "/") + "/transactions/",
		auth:     "Bearer " + svc.ServerToken,
		wake:     make(chan struct{}, 1),
		progress: make(chan struct{}),
	}
	if s.client == nil {
		s.client = &http.Client{}
	}
	if s.metrics == nil {
		s.metrics = noMetrics{}
	}
	if s.retry == nil {
		s.retry = Retry
	}
	return s, nil
}

// Enqueue queues events for the service, in order. An event without an
// ID gets a new one, one without a Time the current time. Enqueue waits
// neither for the service nor for the database, unless the events not yet
// stored are many (the database is then the bottleneck): then it waits
// for the writer, or for ctx.
func (s *Sender) Enqueue(ctx context.Context, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	data := make([][]byte, len(events))
	var now time.Time
	for i, ev := range events {
		if ev.ID == "" {
			ev.ID = stanza.NewID()
		}
		if ev.Time.IsZero() {
			if now.IsZero() {
				now = time.Now().UTC()
			}
			ev.Time = now
		}
		b, err := json.Marshal(&ev)
		if err != nil {
			return fmt.Errorf("appservice %s: enqueue: event %s: %w", s.svc.Name, ev.ID, err)
		}
		data[i] = b
	}
	return s.enqueue(ctx, data)
}

// EnqueueJSON is Enqueue for events already in their JSON form, which
// must be objects (Event's form); the sender keeps the slices, which the
// caller must not change afterwards. Nothing is queued if one is not
// valid JSON.
func (s *Sender) EnqueueJSON(ctx context.Context, events [][]byte) error {
	for i, e := range events {
		if !json.Valid(e) {
			return fmt.Errorf("appservice %s: enqueue: event %d is not valid JSON", s.svc.Name, i)
		}
	}
	return s.enqueue(ctx, events)
}

func (s *Sender) enqueue(ctx context.Context, events [][]byte) error {
	if len(events) == 0 {
		return nil
	}
	s.mu.Lock()
	for len(s.pending) >= maxPending {
		ch := s.progress
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("appservice %s: enqueue: %w", s.svc.Name, ctx.Err())
		}
		s.mu.Lock()
	}
	s.pending = append(s.pending, events...)
	s.accepted += uint64(len(events))
	if !s.writing {
		s.writing = true
		go s.write()
	}
	s.mu.Unlock()
	return nil
}

// signal wakes those waiting for the writer's progress; s.mu is held.
func (s *Sender) signal() {
	close(s.progress)
	s.progress = make(chan struct{})
}

// write stores the pending events, in writes of all that is pending,
// until none is left.
func (s *Sender) write() {
	for {
		s.mu.Lock()
		if n := len(s.pending); n > 0 && n < minWrite {
			// Let a burst gather: a commit per handful of events is what
			// the writer is there to avoid.
			s.mu.Unlock()
			time.Sleep(gather)
			s.mu.Lock()
		}
		batch := s.pending
		if len(batch) == 0 {
			s.writing = false
			s.signal()
			s.mu.Unlock()
			return
		}
		s.pending, s.spare = s.spare[:0], nil
		s.mu.Unlock()

		s.store(batch)

		clear(batch)
		s.mu.Lock()
		s.settled += uint64(len(batch))
		s.spare = batch[:0]
		s.signal()
		s.mu.Unlock()
	}
}

// store appends events to the queue, trims it to the service's
// MaxBacklog and wakes Run. The events were accepted: they are stored
// even if whoever enqueued them is gone, so no caller's context applies.
func (s *Sender) store(events [][]byte) {
	ctx := context.Background()
	s.depthMu.Lock()
	defer s.depthMu.Unlock()
	var (
		depth int
		err   error
	)
	for attempt := range storeAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
		}
		if depth, err = s.q.AppendAppServiceEvents(ctx, s.svc.Name, events); err == nil {
			break
		}
	}
	if err != nil {
		s.log.Error("cannot store events: lost", "events", len(events), "err", err)
		return
	}
	if depth > s.svc.MaxBacklog {
		dropped, err := s.q.TrimAppServiceQueue(ctx, s.svc.Name, s.svc.MaxBacklog)
		if err != nil {
			s.log.Error("cannot trim the backlog", "depth", depth, "max_backlog", s.svc.MaxBacklog, "err", err)
		} else if dropped > 0 {
			depth -= dropped
			s.metrics.AppServiceDropped(s.svc.Name, dropped)
			s.log.Warn("backlog full: dropped the oldest events", "dropped", dropped, "max_backlog", s.svc.MaxBacklog)
		}
	}
	s.metrics.AppServiceBacklog(s.svc.Name, depth)
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// Flush waits until the events enqueued so far are stored (or, should
// the database fail, lost), or ctx is done.
func (s *Sender) Flush(ctx context.Context) error {
	s.mu.Lock()
	target := s.accepted
	for s.settled < target {
		ch := s.progress
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("appservice %s: flush: %w", s.svc.Name, ctx.Err())
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
	return nil
}

// Run sends the service's transactions until ctx is done: it opens one
// with the oldest waiting events (at most the service's Batch), sends it
// until the service acknowledges it, pausing longer after each failure,
// and goes on with the next; with nothing waiting it sleeps until events
// are stored. A transaction in flight when ctx ends stays open, and is
// sent again, the same, by the next Run on the same queue. Run returns
// nil once ctx is done and everything enqueued before is stored. Run may
// be called once.
func (s *Sender) Run(ctx context.Context) error {
	if s.running.Swap(true) {
		return fmt.Errorf("appservice %s: Run called twice", s.svc.Name)
	}
	defer s.Flush(context.WithoutCancel(ctx))
	s.depthMu.Lock()
	s.reportDepth(ctx)
	s.depthMu.Unlock()
	for {
		txn, events, err := s.q.OpenAppServiceTxn(ctx, s.svc.Name, s.svc.Batch)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.log.Error("cannot open a transaction", "err", err)
			if !s.pause(ctx) {
				return nil
			}
			continue
		}
		if txn == "" {
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		if !s.deliver(ctx, txn, events) {
			return nil
		}
	}
}

// pause waits after a failure, longer after each in a row; it returns
// false if ctx ended first. Only Run's goroutine calls it.
func (s *Sender) pause(ctx context.Context) bool {
	s.failures++
	t := time.NewTimer(s.retry(s.failures))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// deliver sends a transaction until the service acknowledges it, then
// removes its events from the queue. It returns false when ctx ended
// first.
func (s *Sender) deliver(ctx context.Context, txn string, events []storage.AppServiceEvent) bool {
	body := transactionBody(events)
	for failed := 0; ; failed++ {
		err := s.send(ctx, txn, body)
		if ctx.Err() != nil {
			return false
		}
		s.metrics.AppServiceTxn(s.svc.Name, err == nil)
		if err == nil {
			if failed > 0 {
				s.log.Info("transaction acknowledged", "txn", txn, "events", len(events), "failures", failed)
			}
			break
		}
		s.log.Warn("transaction not acknowledged", "txn", txn, "events", len(events), "failures", failed+1, "err", err)
		if !s.pause(ctx) {
			return false
		}
	}
	s.metrics.AppServiceDelivered(s.svc.Name, len(events))
	// The service has the events: remove them even if ctx ended
	// meanwhile, rather than send them once more after a restart.
	actx := context.WithoutCancel(ctx)
	s.depthMu.Lock()
	err := s.q.AckAppServiceTxn(actx, s.svc.Name, txn)
	if err == nil {
		s.reportDepth(actx)
	}
	s.depthMu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		// The transaction stays open and goes again: the service
		// recognizes its id.
		s.log.Error("cannot remove acknowledged events", "txn", txn, "err", err)
		return s.pause(ctx)
	}
	s.failures = 0
	return true
}

// reportDepth reports the queue's depth; s.depthMu is held.
func (s *Sender) reportDepth(ctx context.Context) {
	depth, err := s.q.AppServiceDepth(ctx, s.svc.Name)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("cannot read the backlog's depth", "err", err)
		}
		return
	}
	s.metrics.AppServiceBacklog(s.svc.Name, depth)
}

// transactionBody is the JSON of a transaction: {"events": [...]}.
func transactionBody(events []storage.AppServiceEvent) []byte {
	n := len(`{"events":[]}`)
	for _, e := range events {
		n += len(e.Data) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"events":[`...)
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.Data...)
	}
	return append(b, "]}"...)
}

// maxAnswer bounds what is read of the service's answer: it is not used,
// but reading it lets the connection serve the next transaction.
const maxAnswer = 64 << 10

// send makes one attempt at a transaction: any 2xx answer within
// TxnTimeout acknowledges it.
func (s *Sender) send(ctx context.Context, txn string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, TxnTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.url+url.PathEscape(txn), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", s.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}
