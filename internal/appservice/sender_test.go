package appservice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/sqlite"
)

const (
	testName        = "directory"
	testToken       = "service-token-0123456789"
	testServerToken = "server-token-0123456789"
)

// request is one transaction as the test service received it.
type request struct {
	method, path, auth, contentType string
	txn                             string
	events                          []string // the events' ids
	status                          int      // what the service answered; 0: it dropped the connection
}

// testService stands for an application service. answer decides the
// status of the nth request (from 0); 0 drops the connection unanswered.
type testService struct {
	*httptest.Server
	answer func(n int, txn string) int

	mu       sync.Mutex
	reqs     []request
	inFlight int
	maxIn    int // the most requests in flight at once
	changed  chan struct{}
}

func newTestService(t *testing.T, answer func(n int, txn string) int) *testService {
	ts := &testService{answer: answer, changed: make(chan struct{}, 1)}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testService) serve(w http.ResponseWriter, r *http.Request) {
	ts.mu.Lock()
	ts.inFlight++
	ts.maxIn = max(ts.maxIn, ts.inFlight)
	n := len(ts.reqs)
	ts.reqs = append(ts.reqs, request{}) // its place, filled in below
	ts.mu.Unlock()

	req := request{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type")}
	_, req.txn, _ = strings.Cut(r.URL.Path, "/transactions/")
	var body struct{ Events []Event }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		req.events = []string{"undecodable: " + err.Error()}
	}
	for _, e := range body.Events {
		req.events = append(req.events, e.ID)
	}
	req.status = ts.answer(n, req.txn)

	ts.mu.Lock()
	ts.reqs[n] = req
	ts.inFlight--
	ts.mu.Unlock()
	if req.status == 0 {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
			ts.notify()
			return
		}
		req.status = http.StatusBadGateway
	}
	w.WriteHeader(req.status)
	ts.notify()
}

func (ts *testService) notify() {
	select {
	case ts.changed <- struct{}{}:
	default:
	}
}

func (ts *testService) requests() []request {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.reqs)
}

// waitFor waits until cond holds of the requests answered so far. The
// deadline is only there so that a broken sender fails the test rather
// than hanging it.
func (ts *testService) waitFor(t *testing.T, what string, cond func([]request) bool) []request {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		reqs := ts.requests()
		answered := reqs
		for i, r := range reqs {
			if r.method == "" { // still being answered
				answered = reqs[:i]
				break
			}
		}
		if cond(answered) {
			return answered
		}
		select {
		case <-ts.changed:
		case <-deadline:
			t.Fatalf("waiting for %s: %d requests: %+v", what, len(reqs), reqs)
		}
	}
}

// delivered returns the events of the acknowledged transactions, in
// order, checking that each request of one transaction id carried the
// same events and that no acknowledged id came twice.
func delivered(t *testing.T, reqs []request) []string {
	t.Helper()
	byTxn := map[string][]string{}
	acked := map[string]bool{}
	var out []string
	for _, r := range reqs {
		if prev, ok := byTxn[r.txn]; ok && !slices.Equal(prev, r.events) {
			t.Fatalf("txn %s sent with %v, then with %v", r.txn, prev, r.events)
		}
		byTxn[r.txn] = r.events
		if r.status/100 == 2 {
			if acked[r.txn] {
				t.Fatalf("txn %s acknowledged twice", r.txn)
			}
			acked[r.txn] = true
			out = append(out, r.events...)
		}
	}
	return out
}

func ids(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, eventID(i))
	}
	return out
}

func eventID(i int) string { return fmt.Sprintf("e%03d", i) }

func testEvents(from, to int) []Event {
	var out []Event
	for i := from; i <= to; i++ {
		out = append(out, Event{
			ID: eventID(i), Type: EventMessage, Time: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC),
			User: "dir-alice@localhost", From: "bob@localhost/phone", To: "dir-alice@localhost/directory",
			Message: &Message{ID: fmt.Sprint("m", i), Type: "chat", Body: fmt.Sprint("hello ", i)},
		})
	}
	return out
}

func testServiceConfig(t testing.TB, url string, batch, maxBacklog int) *Service {
	t.Helper()
	svc, err := Compile(Config{Name: testName, URL: url, Token: testToken, ServerToken: testServerToken, Batch: batch, MaxBacklog: maxBacklog})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// testMetrics records what a sender reports.
type testMetrics struct {
	mu                            sync.Mutex
	backlog                       map[string]int
	sent, failed, events, dropped int
}

func (m *testMetrics) AppServiceBacklog(service string, depth int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.backlog == nil {
		m.backlog = map[string]int{}
	}
	m.backlog[service] = depth
}

func (m *testMetrics) AppServiceTxn(_ string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ok {
		m.sent++
	} else {
		m.failed++
	}
}

func (m *testMetrics) AppServiceDelivered(_ string, n int) {
	m.mu.Lock()
	m.events += n
	m.mu.Unlock()
}

func (m *testMetrics) AppServiceDropped(_ string, n int) {
	m.mu.Lock()
	m.dropped += n
	m.mu.Unlock()
}

// waitFor waits until cond holds of the metrics; the deadline only
// keeps a broken sender from hanging the test.
func (m *testMetrics) waitFor(t *testing.T, what string, cond func(backlog, sent, failed, events, dropped int) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond(m.get()) {
		if time.Now().After(deadline) {
			backlog, sent, failed, events, dropped := m.get()
			t.Fatalf("waiting for %s: backlog %d, sent %d, failed %d, events %d, dropped %d", what, backlog, sent, failed, events, dropped)
		}
		time.Sleep(time.Millisecond)
	}
}

func (m *testMetrics) get() (backlog, sent, failed, events, dropped int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.backlog[testName], m.sent, m.failed, m.events, m.dropped
}

// quickRetry stands for Retry: the same doubling, in microseconds.
func quickRetry(failures int) time.Duration { return Retry(failures) / time.Second * time.Microsecond }

func openSQLite(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// running is a sender whose Run goroutine the test controls.
type running struct {
	*Sender
	cancel context.CancelFunc
	done   chan error
}

// startSender runs a sender of svc; d's logger and Retry default to none
// and quickRetry.
func startSender(t *testing.T, svc *Service, d SenderDeps) *running {
	t.Helper()
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Retry == nil {
		d.Retry = quickRetry
	}
	s, err := NewSender(svc, d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Sender: s, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it to return; again is a no-op.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	if err, ok := <-r.done; ok {
		close(r.done)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func mustEnqueue(t testing.TB, s *Sender, events []Event) {
	t.Helper()
	if err := s.Enqueue(context.Background(), events); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
}

func TestDeliversInOrder(t *testing.T) {
	ts := newTestService(t, func(int, string) int { return http.StatusOK })
	st := openSQLite(t, filepath.Join(t.TempDir(), "a.db"))
	m := &testMetrics{}
	r := startSender(t, testServiceConfig(t, ts.URL, 10, 1000), SenderDeps{Queue: st, Metrics: m})
	mustEnqueue(t, r.Sender, testEvents(1, 1))
	mustEnqueue(t, r.Sender, testEvents(2, 11))
	mustEnqueue(t, r.Sender, testEvents(12, 25))

	reqs := ts.waitFor(t, "25 events", func(reqs []request) bool { return len(delivered(t, reqs)) == 25 })
	if got := delivered(t, reqs); !slices.Equal(got, ids(1, 25)) {
		t.Fatalf("delivered %v, want e001 to e025 in order", got)
	}
	seen := map[string]bool{}
	for _, q := range reqs {
		if q.method != http.MethodPut || q.contentType != "application/json" {
			t.Errorf("request %s %s, Content-Type %q", q.method, q.path, q.contentType)
		}
		if len(q.events) == 0 || len(q.events) > 10 {
			t.Errorf("txn %s has %d events, want 1 to 10", q.txn, len(q.events))
		}
		if seen[q.txn] {
			t.Errorf("txn id %s used twice", q.txn)
		}
		seen[q.txn] = true
	}
	ts.mu.Lock()
	maxIn := ts.maxIn
	ts.mu.Unlock()
	if maxIn != 1 {
		t.Errorf("%d transactions in flight at once, want 1", maxIn)
	}
	m.waitFor(t, "25 events delivered", func(_, _, _, events, _ int) bool { return events == 25 })
	r.stop(t)
	if backlog, sent, failed, events, _ := m.get(); backlog != 0 || sent != len(reqs) || failed != 0 || events != 25 {
		t.Errorf("metrics: backlog %d, sent %d, failed %d, events %d; want 0, %d, 0, 25", backlog, sent, failed, events, len(reqs))
	}
}

func TestAuthorizationAndPath(t *testing.T) {
	ts := newTestService(t, func(int, string) int { return http.StatusNoContent })
	// A URL with a path and a trailing slash: transactions go below it.
	r := startSender(t, testServiceConfig(t, ts.URL+"/bridge/", 10, 1000), SenderDeps{Queue: memory.New()})
	mustEnqueue(t, r.Sender, testEvents(1, 2))
	reqs := ts.waitFor(t, "a transaction", func(reqs []request) bool { return len(reqs) > 0 })
	q := reqs[0]
	if q.auth != "Bearer "+testServerToken {
		t.Errorf("Authorization %q, want the server token", q.auth)
	}
	if q.txn == "" || q.path != "/bridge/transactions/"+q.txn {
		t.Errorf("path %q, want /bridge/transactions/{txn}", q.path)
	}
	if !slices.Equal(q.events, ids(1, 2)) {
		t.Errorf("events %v", q.events)
	}
}

func TestRetrySameTransaction(t *testing.T) {
	ts := newTestService(t, func(n int, _ string) int {
		if n == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	m := &testMetrics{}
	var (
		mu       sync.Mutex
		failures []int
	)
	r := startSender(t, testServiceConfig(t, ts.URL, 10, 1000), SenderDeps{
		Queue: memory.New(), Metrics: m,
		Retry: func(n int) time.Duration {
			mu.Lock()
			failures = append(failures, n)
			mu.Unlock()
			return time.Microsecond
		},
	})
	mustEnqueue(t, r.Sender, testEvents(1, 3))
	reqs := ts.waitFor(t, "the retry", func(reqs []request) bool { return len(reqs) >= 2 })
	if reqs[0].status != http.StatusInternalServerError || reqs[1].status != http.StatusOK {
		t.Fatalf("answers %d then %d", reqs[0].status, reqs[1].status)
	}
	if reqs[0].txn != reqs[1].txn || !slices.Equal(reqs[0].events, reqs[1].events) || !slices.Equal(reqs[1].events, ids(1, 3)) {
		t.Fatalf("first attempt %s %v, retry %s %v: want the same txn", reqs[0].txn, reqs[0].events, reqs[1].txn, reqs[1].events)
	}
	m.waitFor(t, "the acknowledgement", func(_, sent, _, _, _ int) bool { return sent == 1 })
	r.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(failures, []int{1}) {
		t.Errorf("Retry called with %v, want [1]", failures)
	}
	if _, sent, failed, events, _ := m.get(); sent != 1 || failed != 1 || events != 3 {
		t.Errorf("metrics: sent %d, failed %d, events %d; want 1, 1, 3", sent, failed, events)
	}
}

func TestRetryDoubles(t *testing.T) {
	for failures, want := range map[int]time.Duration{
		1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 9: 256 * time.Second,
		10: 5 * time.Minute, 11: 5 * time.Minute, 1000: 5 * time.Minute,
	} {
		if got := Retry(failures); got != want {
			t.Errorf("Retry(%d) = %v, want %v", failures, got, want)
		}
	}
}

// TestServiceDownThenBack: while the service fails (errors, connections
// dropped unanswered), the same transaction goes again and again; once
// it is back, everything arrives, each event in one acknowledged
// transaction, in order.
func TestServiceDownThenBack(t *testing.T) {
	var (
		mu   sync.Mutex
		down = true
	)
	ts := newTestService(t, func(n int, _ string) int {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !down:
			return http.StatusOK
		case n%2 == 0:
			return http.StatusServiceUnavailable
		default:
			return 0 // no answer
		}
	})
	st := openSQLite(t, filepath.Join(t.TempDir(), "a.db"))
	r := startSender(t, testServiceConfig(t, ts.URL, 7, 1000), SenderDeps{Queue: st})
	for i := 1; i <= 50; i += 5 {
		mustEnqueue(t, r.Sender, testEvents(i, i+4))
	}
	ts.waitFor(t, "attempts while down", func(reqs []request) bool { return len(reqs) >= 6 })
	mu.Lock()
	down = false
	mu.Unlock()
	mustEnqueue(t, r.Sender, testEvents(51, 60))

	reqs := ts.waitFor(t, "everything", func(reqs []request) bool { return len(delivered(t, reqs)) == 60 })
	if got := delivered(t, reqs); !slices.Equal(got, ids(1, 60)) {
		t.Fatalf("delivered %v, want e001 to e060 in order", got)
	}
	// Every attempt while down was the first transaction.
	for _, q := range reqs[:6] {
		if q.txn != reqs[0].txn {
			t.Fatalf("attempt with txn %s while %s was not acknowledged", q.txn, reqs[0].txn)
		}
	}
}

// TestRestart closes the sender and the store in the middle of a
// transaction the service refuses, and reopens both from the file: the
// same transaction goes again, and nothing is lost, including what was
// enqueued just before the shutdown.
func TestRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	// Before the restart, the service takes the first transaction and
	// refuses the next. The service after is another server, so that no
	// late answer of the first can count for the second.
	before := newTestService(t, func(n int, _ string) int {
		if n == 0 {
			return http.StatusOK
		}
		return http.StatusInternalServerError
	})
	after := newTestService(t, func(int, string) int { return http.StatusOK })

	st := openSQLite(t, path)
	r := startSender(t, testServiceConfig(t, before.URL, 8, 1000), SenderDeps{Queue: st})
	mustEnqueue(t, r.Sender, testEvents(1, 20))
	before.waitFor(t, "a refused transaction", func(reqs []request) bool { return len(reqs) >= 3 })
	mustEnqueue(t, r.Sender, testEvents(21, 23)) // stored by the shutdown
	r.stop(t)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	before.Close()
	reqs1 := before.requests()
	open := reqs1[len(reqs1)-1]
	if open.status != http.StatusInternalServerError || open.txn == reqs1[0].txn {
		t.Fatalf("last request before the restart: txn %s answered %d", open.txn, open.status)
	}

	st = openSQLite(t, path)
	r = startSender(t, testServiceConfig(t, after.URL, 8, 1000), SenderDeps{Queue: st})
	mustEnqueue(t, r.Sender, testEvents(24, 25))
	reqs2 := after.waitFor(t, "everything", func(reqs []request) bool { return len(delivered(t, reqs)) == 25-8 })
	if first := reqs2[0]; first.txn != open.txn || !slices.Equal(first.events, open.events) {
		t.Fatalf("after the restart, first txn %s %v; want the open one again, %s %v", first.txn, first.events, open.txn, open.events)
	}
	for _, q := range reqs2 {
		if q.txn == reqs1[0].txn {
			t.Fatalf("acknowledged txn id %s used again after the restart", q.txn)
		}
	}
	if got := append(delivered(t, reqs1), delivered(t, reqs2)...); !slices.Equal(got, ids(1, 25)) {
		t.Fatalf("delivered %v, want e001 to e025 in order", got)
	}
}

// TestBacklogBound: with the service away, the oldest waiting events go
// beyond MaxBacklog, but not those of the transaction being retried.
func TestBacklogBound(t *testing.T) {
	var (
		mu sync.Mutex
		up bool
	)
	ts := newTestService(t, func(int, string) int {
		mu.Lock()
		defer mu.Unlock()
		if up {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	st := openSQLite(t, filepath.Join(t.TempDir(), "a.db"))
	m := &testMetrics{}
	var logs syncBuffer
	r := startSender(t, testServiceConfig(t, ts.URL, 3, 10), SenderDeps{Queue: st, Metrics: m, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	mustEnqueue(t, r.Sender, testEvents(1, 1))
	ts.waitFor(t, "the first transaction", func(reqs []request) bool { return len(reqs) > 0 })

	mustEnqueue(t, r.Sender, testEvents(2, 20))
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// e001 is in the open transaction; of e002 to e020, the oldest ten go.
	if backlog, _, _, _, dropped := m.get(); backlog != 10 || dropped != 10 {
		t.Fatalf("backlog %d, dropped %d; want 10 and 10", backlog, dropped)
	}
	if depth, err := st.AppServiceDepth(context.Background(), testName); err != nil || depth != 10 {
		t.Fatalf("depth %d, %v", depth, err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "dropped=10") {
		t.Errorf("no warning of the dropped events in the log:\n%s", logs.String())
	}

	mu.Lock()
	up = true
	mu.Unlock()
	reqs := ts.waitFor(t, "the rest", func(reqs []request) bool { return len(delivered(t, reqs)) == 10 })
	if got, want := delivered(t, reqs), append(ids(1, 1), ids(12, 20)...); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	m.waitFor(t, "an empty backlog", func(backlog, _, _, _, _ int) bool { return backlog == 0 })
}

// syncBuffer is a bytes.Buffer for a logger shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestSlowServiceDoesNotBlockEnqueue: while a transaction waits for the
// service's answer, events are enqueued and stored all the same.
func TestSlowServiceDoesNotBlockEnqueue(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	ts := newTestService(t, func(int, string) int {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return http.StatusOK
	})
	// Registered after the server's Close, so run before it: Close waits
	// for the handler.
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)

	st := openSQLite(t, filepath.Join(t.TempDir(), "a.db"))
	r := startSender(t, testServiceConfig(t, ts.URL, 100, 100000), SenderDeps{Queue: st})
	mustEnqueue(t, r.Sender, testEvents(1, 1))
	<-entered
	for i := 2; i <= 1001; i += 10 {
		mustEnqueue(t, r.Sender, testEvents(i, i+9))
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The first transaction is still unanswered, and everything is stored.
	if depth, err := st.AppServiceDepth(context.Background(), testName); err != nil || depth != 1001 {
		t.Fatalf("depth %d, %v; want 1001", depth, err)
	}
	if n := len(ts.requests()); n != 1 {
		t.Fatalf("%d requests while the first is unanswered", n)
	}
	unblock()
	reqs := ts.waitFor(t, "everything", func(reqs []request) bool { return len(delivered(t, reqs)) == 1001 })
	if got := delivered(t, reqs); !slices.Equal(got, ids(1, 1001)) {
		t.Fatalf("delivered %d events, not e001 to e1001 in order", len(got))
	}
}

// blockingQueue is a queue whose appends wait for release.
type blockingQueue struct {
	storage.AppServiceQueue
	entered chan struct{}
	release chan struct{}
}

func (q *blockingQueue) AppendAppServiceEvents(ctx context.Context, service string, events [][]byte) (int, error) {
	select {
	case q.entered <- struct{}{}:
	default:
	}
	<-q.release
	return q.AppServiceQueue.AppendAppServiceEvents(ctx, service, events)
}

// TestEnqueueWaitsForSlowStore: beyond maxPending events not yet stored,
// Enqueue waits for the database, or for its context.
func TestEnqueueWaitsForSlowStore(t *testing.T) {
	q := &blockingQueue{AppServiceQueue: memory.New(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	s, err := NewSender(testServiceConfig(t, "http://127.0.0.1:1", 100, 100000), SenderDeps{Queue: q, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.EnqueueJSON(ctx, [][]byte{[]byte(`{"id":"first"}`)}); err != nil {
		t.Fatal(err)
	}
	<-q.entered // the writer holds the first event, waiting for the store
	many := make([][]byte, maxPending)
	for i := range many {
		many[i] = fmt.Appendf(nil, `{"id":"%d"}`, i)
	}
	if err := s.EnqueueJSON(ctx, many); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.EnqueueJSON(canceled, [][]byte{[]byte(`{"id":"over"}`)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Enqueue over the limit with a canceled context: %v", err)
	}
	close(q.release)
	if err := s.EnqueueJSON(ctx, [][]byte{[]byte(`{"id":"last"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if depth, err := q.AppServiceDepth(ctx, testName); err != nil || depth != maxPending+2 {
		t.Fatalf("depth %d, %v; want %d", depth, err, maxPending+2)
	}
}

func TestEnqueue(t *testing.T) {
	q := memory.New()
	s, err := NewSender(testServiceConfig(t, "http://127.0.0.1:1", 100, 100000), SenderDeps{Queue: q, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.EnqueueJSON(ctx, [][]byte{[]byte(`{"id":"a"}`), []byte(`{"id":`)}); err == nil {
		t.Fatal("EnqueueJSON of invalid JSON succeeded")
	}
	if err := s.Enqueue(ctx, []Event{{Type: EventLogin, User: "alice@localhost"}, {ID: "mine", Type: EventLogout, User: "alice@localhost"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, events, err := q.OpenAppServiceTxn(ctx, testName, 10)
	if err != nil || len(events) != 2 {
		t.Fatalf("queued %d events, %v; want 2 (nothing of the invalid call)", len(events), err)
	}
	var got [2]Event
	for i, e := range events {
		if err := json.Unmarshal(e.Data, &got[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got[0].ID == "" || got[0].Time.IsZero() || got[0].Type != EventLogin {
		t.Errorf("first event %+v: want an id and a time given", got[0])
	}
	if got[1].ID != "mine" {
		t.Errorf("second event's id %q, want the one it had", got[1].ID)
	}
}

func TestNewSenderRequires(t *testing.T) {
	svc := testServiceConfig(t, "http://127.0.0.1:1", 1, 1)
	log := slog.New(slog.DiscardHandler)
	for _, d := range []struct {
		svc  *Service
		deps SenderDeps
	}{
		{nil, SenderDeps{Queue: memory.New(), Log: log}},
		{svc, SenderDeps{Log: log}},
		{svc, SenderDeps{Queue: memory.New()}},
	} {
		if _, err := NewSender(d.svc, d.deps); err == nil {
			t.Errorf("NewSender(%v, %+v) succeeded", d.svc, d.deps)
		}
	}
}

// The body of a transaction is the events as they were enqueued, in an
// object, whatever they hold.
func TestTransactionBody(t *testing.T) {
	body := transactionBody([]storage.AppServiceEvent{{Seq: 1, Data: []byte(`{"id":"a"}`)}, {Seq: 2, Data: []byte(`{"id":"b","x":[1,2]}`)}})
	if want := `{"events":[{"id":"a"},{"id":"b","x":[1,2]}]}`; string(body) != want {
		t.Fatalf("body %s, want %s", body, want)
	}
	if body := transactionBody(nil); string(body) != `{"events":[]}` {
		t.Fatalf("empty body %s", body)
	}
}

// TestSenders: two services, each of its own events, from one Enqueue.
func TestSenders(t *testing.T) {
	ts := newTestService(t, func(int, string) int { return http.StatusOK })
	a := testServiceConfig(t, ts.URL+"/a", 10, 1000)
	b := testServiceConfig(t, ts.URL+"/b", 10, 1000)
	b.Name = "bridge"
	var logs syncBuffer
	ss, err := NewSenders([]*Service{a, b}, SenderDeps{Queue: openSQLite(t, filepath.Join(t.TempDir(), "a.db")), Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if ss.Sender("bridge") == nil || ss.Sender("nobody") != nil {
		t.Fatal("Sender does not find the senders by name")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ss.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	ss.Enqueue(ctx, testName, testEvents(1, 3))
	ss.Enqueue(ctx, "bridge", testEvents(4, 5))
	ss.Enqueue(ctx, "nobody", testEvents(6, 6))
	reqs := ts.waitFor(t, "both services' events", func(reqs []request) bool { return len(delivered(t, reqs)) == 5 })
	got := map[string][]string{}
	for _, q := range reqs {
		dir, _, _ := strings.Cut(strings.TrimPrefix(q.path, "/"), "/")
		got[dir] = append(got[dir], q.events...)
	}
	if !slices.Equal(got["a"], ids(1, 3)) || !slices.Equal(got["b"], ids(4, 5)) {
		t.Fatalf("service a got %v, b %v", got["a"], got["b"])
	}
	if !strings.Contains(logs.String(), "undeclared service") {
		t.Errorf("events for an undeclared service not logged:\n%s", logs.String())
	}

	if _, err := NewSenders([]*Service{a, a}, SenderDeps{Queue: memory.New(), Log: slog.New(slog.DiscardHandler)}); err == nil {
		t.Error("NewSenders with two services of one name succeeded")
	}
}
