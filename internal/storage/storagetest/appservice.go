package storagetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// Reopen closes the store it was returned with (or the one it returned
// last) and opens the same data again, as a restarted server does.
type Reopen func(t *testing.T) storage.AppServiceQueue

// RunAppServiceQueue checks the storage.AppServiceQueue contract.
// newStore returns a fresh, empty store and its Reopen; a backend that
// keeps nothing across restarts returns a Reopen giving the same store.
func RunAppServiceQueue(t *testing.T, newStore func(t *testing.T) (storage.AppServiceQueue, Reopen)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, q storage.AppServiceQueue, reopen Reopen)
	}{
		{"Empty", testASEmpty},
		{"Order", testASOrder},
		{"Data", testASData},
		{"OpenStable", testASOpenStable},
		{"OpenStableAcrossReopen", testASOpenStableAcrossReopen},
		{"MaxOnlyForNew", testASMaxOnlyForNew},
		{"AckUnknown", testASAckUnknown},
		{"Trim", testASTrim},
		{"TrimKeepsOpen", testASTrimKeepsOpen},
		{"Invalid", testASInvalid},
		{"Independence", testASIndependence},
		{"TxnIDsUnique", testASTxnIDsUnique},
		{"AppendWhileOpen", testASAppendWhileOpen},
		{"DrainWhileAppending", testASDrainWhileAppending},
		{"CanceledContext", testASCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, reopen := newStore(t)
			tt.fn(t, q, reopen)
		})
	}
}

const (
	asService = "directory"
	asOther   = "bridge"
)

// asEvent is the data of event n; event 2 holds a NUL byte and one that
// is not UTF-8, so that a backend storing data as text fails.
func asEvent(n int) []byte {
	if n == 2 {
		return []byte{'{', 0x00, 0xff, '}'}
	}
	return fmt.Appendf(nil, `{"id":"e%d","type":"message"}`, n)
}

func asEvents(from, to int) [][]byte {
	var out [][]byte
	for n := from; n <= to; n++ {
		out = append(out, asEvent(n))
	}
	return out
}

func mustAppend(t *testing.T, q storage.AppServiceQueue, service string, events [][]byte, wantDepth int) {
	t.Helper()
	depth, err := q.AppendAppServiceEvents(t.Context(), service, events)
	if err != nil {
		t.Fatalf("AppendAppServiceEvents(%s, %d events): %v", service, len(events), err)
	}
	if depth != wantDepth {
		t.Fatalf("AppendAppServiceEvents(%s, %d events): depth %d, want %d", service, len(events), depth, wantDepth)
	}
}

func mustOpen(t *testing.T, q storage.AppServiceQueue, service string, max int) (string, []storage.AppServiceEvent) {
	t.Helper()
	txn, events, err := q.OpenAppServiceTxn(t.Context(), service, max)
	if err != nil {
		t.Fatalf("OpenAppServiceTxn(%s, %d): %v", service, max, err)
	}
	if (txn == "") != (len(events) == 0) {
		t.Fatalf("OpenAppServiceTxn(%s, %d) = %q with %d events", service, max, txn, len(events))
	}
	return txn, events
}

func mustAck(t *testing.T, q storage.AppServiceQueue, service, txn string) {
	t.Helper()
	if err := q.AckAppServiceTxn(t.Context(), service, txn); err != nil {
		t.Fatalf("AckAppServiceTxn(%s, %s): %v", service, txn, err)
	}
}

func wantDepth(t *testing.T, q storage.AppServiceQueue, service string, want int) {
	t.Helper()
	got, err := q.AppServiceDepth(t.Context(), service)
	if err != nil {
		t.Fatalf("AppServiceDepth(%s): %v", service, err)
	}
	if got != want {
		t.Fatalf("AppServiceDepth(%s) = %d, want %d", service, got, want)
	}
}

// wantTxnEvents checks that events carry want's data in order, with
// increasing sequence numbers.
func wantTxnEvents(t *testing.T, what string, events []storage.AppServiceEvent, want [][]byte) {
	t.Helper()
	got := make([][]byte, len(events))
	for i, e := range events {
		got[i] = e.Data
		if i > 0 && e.Seq <= events[i-1].Seq {
			t.Fatalf("%s: seq %d after %d", what, e.Seq, events[i-1].Seq)
		}
	}
	if !slices.EqualFunc(got, want, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("%s: events %q, want %q", what, got, want)
	}
}

func testASEmpty(t *testing.T, q storage.AppServiceQueue, _ Reopen) {
	if txn, events := mustOpen(t, q, asService, 10); txn != "" || events != nil {
		t.Fatalf("empty queue: txn %q, events %v", txn, events)
	}
	wantDepth(t, q, asService, 0)
	mustAck(t, q, asService, "no-such-txn")
	if n, err := q.TrimAppServiceQueue(t.Context(), asService, 0); err != nil || n != 0 {
		t.Fatalf("TrimAppServiceQueue on an empty queue = %d, %v", n, err)
	}
	mustAppend(t, q, asService, nil, 0)
	if txn, _ := mustOpen(t, q, asService, 10); txn != "" {
		t.Fatalf("after appending nothing: txn %q", txn)
	}
}

func testASOrder(t *testing.T, q storage.AppServiceQueue, _ Reopen) {
	mustAppend(t, q, asService, asEvents(1, 3), 3)
	mustAppend(t, q, asService, asEvents(4, 5), 5)
	txn1, events := mustOpen(t, q, asService, 2)
	wantTxnEvents(t, "first txn", events, asEvents(1, 2))
	mustAck(t, q, asService, txn1)
	wantDepth(t, q, asService, 3)

	txn2, events2 := mustOpen(t, q, asService, 10)
	if txn2 == txn1 {
		t.Fatalf("second txn has the first's id %q", txn1)
	}
	wantTxnEvents(t, "second txn", events2, asEvents(3, 5))
	if events2[0].Seq <= events[1].Seq {
		t.Fatalf("seq %d of the second txn after %d of the first", events2[0].Seq, events[1].Seq)
	}
	mustAck(t, q, asService, txn2)
	wantDepth(t, q, asService, 0)
	if txn, _ := mustOpen(t, q, asService, 10); txn != "" {
		t.Fatalf("drained queue: txn %q", txn)
	}

	// The queue goes on after being drained.
	mustAppend(t, q, asService, asEvents(6, 6), 1)
	_, events3 := mustOpen(t, q, asService, 10)
	wantTxnEvents(t, "third txn", events3, asEvents(6, 6))
	if events3[0].Seq <= events2[2].Seq {
		t.Fatalf("seq %d reused after draining (last was %d)", events3[0].Seq, events2[2].Seq)
	}
}

func testASData(t *testing.T, q storage.AppServiceQueue, _ Reopen) {
	in := asEvents(1, 3)
	mustAppend(t, q, asService, in, 3)
	in[0][0] = 'X' // the store must have kept its own copy
	_, events := mustOpen(t, q, asService, 10)
	wantTxnEvents(t, "events", events, asEvents(1, 3))
	events[1].Data[0] = 'X' // and hand out copies
	_, events = mustOpen(t, q, asService, 10)
	wantTxnEvents(t, "events again", events, asEvents(1, 3))
}

func testASOpenStable(t *testing.T, q storage.AppServiceQueue, _ Reopen) {
	mustAppend(t, q, asService, asEvents(1, 4), 4)
	txn, events := mustOpen(t, q, asService, 3)
	for range 3 {
		again, events2 := mustOpen(t, q, asService, 3)
		if again != txn {
			t.Fatalf("open txn %q became %q", txn, again)
		}
		wantTxnEvents(t, "open txn again", events2, asEvents(1, 3))
		if events2[0].Seq != events[0].Seq {
			t.Fatalf("seq %d became %d", events[0].Seq, events2[0].Seq)
		}
	}
	wantDepth(t, q, asService, 4)
}

func testASOpenStableAcrossReopen(t *testing.T, q storage.AppServiceQueue, reopen Reopen) {
	mustAppend(t, q, asService, asEvents(1, 5), 5)
	txn, events := mustOpen(t, q, asService, 3)
	wantTxnEvents(t, "txn", events, asEvents(1, 3))

	q = reopen(t)
	wantDepth(t, q, asService, 5)
	again, events2 := mustOpen(t, q, asService, 1)
	if again != txn {
		t.Fatalf("after reopening, open txn %q became %q", txn, again)
	}
	wantTxnEvents(t, "txn after reopening", events2, asEvents(1, 3))
	for i := range events {
		if events2[i].Seq != events[i].Seq {
			t.Fatalf("after reopening, seq %d became %d", events[i].Seq, events2[i].Seq)
		}
	}
	mustAck(t, q, asService, txn)
	wantDepth(t, q, asService, 2)

	q = reopen(t)
	wantDepth(t, q, asService, 2)
	next, events3 := mustOpen(t, q, asService, 10)
	if next == txn {
		t.Fatalf("acknowledged txn id %q reused after reopening", txn)
	}
	wantTxnEvents(t, "next txn", events3, asEvents(4, 5))
}

func testASMaxOnlyForNew(t *testing.T, q storage.AppServiceQueue, _ Reopen) {
	mustAppend(t, q, asService, asEvents(1, 6), 6)
	txn, _ := mustOpen(t, q, asService, 2)
	for _, max := range []int{1, 2, 10} {
		again, events := mustOpen(t, q, asService, max)
		if again != txn {
			t.Fatalf("max %d: open txn %q became %q", max, txn, again)
		}
		wantTxnEvents(t, fmt.Sprintf("open txn with max %d", max), events, asEvents(1, 2))
	}
	mustAck(t, q, asService, txn)
	_, events := mustOpen(t, q, asService, 3)
	wantTxnEvents(t, "next txn", events, asEvents(3, 5))
}

func testASAckUnknown(t *testing.T, q storage.AppServiceQueue, _ Reopen) {
	mustAppend(t, q, asService, asEvents(1, 4), 4)
	txn1, _ := mustOpen(t, q, asService, 2)
	mustAck(t, q, asService, "no-such-txn")
	mustAck(t, q, asService, "")
	mustAck(t, q, asOther, txn1) // another service's: nothing of this one goes
	wantDepth(t, q, asService, 4)
	if again, _ := mustOpen(t, q, asService, 2); again != txn1 {
		t.Fatalf("unknown acks closed txn %q: now %q", txn1, again)
	}
	mustAck(t, q, asService, txn1)
	mustAck(t, q, asService, txn1) // twice: not an error, and nothing more goes
	wantDepth(t, q, asService, 2)

	txn2, _ := mustOpen(t, q, asService, 1)
	mustAck(t, q, asService, txn1) // a late repeat must not acknowledge txn2
	wantDepth(t, q, asService, 2)
	if again, events := mustOpen(t, q, asService, 1); again != txn2 {
		t.Fatalf("late ack of %q closed %q: now %q", txn1, txn2, again)
	} else {
		wantTxnEvents(t, "txn2", events, asEvents(3, 3))
	}
}

func testASTrim(t *testing.T, q storage.AppServiceQueue, _ Reopen) {
	mustAppend(t, q, asService, asEvents(1, 10), 10)
	if n, err := q.TrimAppServiceQueue(t.Context(), asService, 10); err != nil || n != 0 {
		t.Fatalf("trim to the depth: %d, %v", n, err)
	}
	if n, err := q.TrimAppServiceQueue(t.Context(), asService, 20); err != nil || n != 0 {
		t.Fatalf("trim above the depth: %d, %v", n, err)
	}
	n, err := q.TrimAppServiceQueue(t.Context(), asService, 4)
	if err != nil || n != 6 {
		t.Fatalf("trim to 4 = %d, %v; want 6 dropped", n, err)
	}
	wantDepth(t, q, asService, 4)
	txn, events := mustOpen(t, q, asService, 10)
	wantTxnEvents(t, "after trim", events, asEvents(7, 10))
	mustAck(t, q, asService, txn)

	mustAppend(t, q, asService, asEvents(11, 13), 3)
	if n, err := q.TrimAppServiceQueue(t.Context(), asService, 0); err != nil || n != 3 {
		t.Fatalf("trim to 0 = %d, %v; want 3 dropped", n, err)
	}
	wantDepth(t, q, asService, 0)
	if txn, _ := mustOpen(t, q, asService, 10); txn != "" {
		t.Fatalf("trimmed to nothing: txn %q", txn)
	}
}

func testASTrimKeepsOpen(t *testing.T, q storage.AppServiceQueue, _ Reopen) {
	mustAppend(t, q, asService, asEvents(1, 10), 10)
	txn, _ := mustOpen(t, q, asService, 3)
	// The oldest waiting events after the open txn go: 4 to 8.
	n, err := q.TrimAppServiceQueue(t.Context(), asService, 5)
	if err != nil || n != 5 {
		t.Fatalf("trim to 5 = %d, %v; want 5 dropped", n, err)
	}
	wantDepth(t, q, asService, 5)
	again, events := mustOpen(t, q, asService, 3)
	if again != txn {
		t.Fatalf("trim changed the open txn %q to %q", txn, again)
	}
	wantTxnEvents(t, "open txn after trim", events, asEvents(1, 3))

	// Below the open txn's size only the others go.
	n, err = q.TrimAppServiceQueue(t.Context(), asService, 1)
	if err != nil || n != 2 {
		t.Fatalf("trim to 1 = %d, %v; want 2 dropped", n, err)
	}
	wantDepth(t, q, asService, 3)
	if n, err := q.TrimAppServiceQueue(t.Context(), asService, 0); err != nil || n != 0 {
		t.Fatalf("trim of the open txn alone = %d, %v; want 0", n, err)
	}
	_, events = mustOpen(t, q, asService, 3)
	wantTxnEvents(t, "open txn after trim to 0", events, asEvents(1, 3))
	mustAck(t, q, asService, txn)
	wantDepth(t, q, asService, 0)

	mustAppend(t, q, asService, asEvents(11, 12), 2)
	_, events = mustOpen(t, q, asService, 10)
	wantTxnEvents(t, "next txn", events, asEvents(11, 12))
}

func testASInvalid(t *testing.T, q storage.AppServiceQueue, _ Reopen) {
	mustAppend(t, q, asService, asEvents(1, 2), 2)
	_, _, err := q.OpenAppServiceTxn(t.Context(), asService, 0)
	wantErr(t, "OpenAppServiceTxn with max 0", err, storage.ErrInvalid)
	_, err = q.TrimAppServiceQueue(t.Context(), asService, -1)
	wantErr(t, "TrimAppServiceQueue with keep -1", err, storage.ErrInvalid)
	wantDepth(t, q, asService, 2)
}

func testASIndependence(t *testing.T, q storage.AppServiceQueue, _ Reopen) {
	mustAppend(t, q, asService, asEvents(1, 3), 3)
	mustAppend(t, q, asOther, asEvents(11, 12), 2)
	txnA, eventsA := mustOpen(t, q, asService, 10)
	wantTxnEvents(t, asService, eventsA, asEvents(1, 3))
	mustAppend(t, q, asOther, asEvents(13, 13), 3)
	txnB, eventsB := mustOpen(t, q, asOther, 10)
	wantTxnEvents(t, asOther, eventsB, asEvents(11, 13))

	mustAck(t, q, asService, txnA)
	wantDepth(t, q, asService, 0)
	wantDepth(t, q, asOther, 3)
	if again, _ := mustOpen(t, q, asOther, 10); again != txnB {
		t.Fatalf("%s's ack closed %s's txn %q: now %q", asService, asOther, txnB, again)
	}
	mustAppend(t, q, asService, asEvents(4, 8), 5)
	if n, err := q.TrimAppServiceQueue(t.Context(), asService, 0); err != nil || n != 5 {
		t.Fatalf("trim %s: %d, %v", asService, n, err)
	}
	wantDepth(t, q, asOther, 3)
}

func testASTxnIDsUnique(t *testing.T, q storage.AppServiceQueue, reopen Reopen) {
	seen := map[string]bool{}
	n := 0
	for round := range 3 {
		for range 4 {
			n++
			mustAppend(t, q, asService, asEvents(n, n), 1)
			txn, _ := mustOpen(t, q, asService, 10)
			if seen[txn] {
				t.Fatalf("round %d: txn id %q reused", round, txn)
			}
			if txn != strings.TrimSpace(txn) || strings.ContainsAny(txn, "/?#%") {
				t.Fatalf("txn id %q does not fit in a URL path segment as it is", txn)
			}
			seen[txn] = true
			mustAck(t, q, asService, txn)
		}
		// Drained, then restarted: the numbering must go on all the same.
		q = reopen(t)
	}
}

func testASAppendWhileOpen(t *testing.T, q storage.AppServiceQueue, _ Reopen) {
	mustAppend(t, q, asService, asEvents(1, 3), 3)
	txn, _ := mustOpen(t, q, asService, 10)

	const writers, each = 4, 25
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				ev := fmt.Appendf(nil, "w%d-%03d", w, i)
				if _, err := q.AppendAppServiceEvents(t.Context(), asService, [][]byte{ev}); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			again, events, err := q.OpenAppServiceTxn(t.Context(), asService, 10)
			if err != nil {
				fail(err)
				return
			}
			if again != txn || len(events) != 3 {
				fail(fmt.Errorf("while appending: open txn %q with %d events, want %q with 3", again, len(events), txn))
				return
			}
		}
	})
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	wantDepth(t, q, asService, 3+writers*each)
	_, events := mustOpen(t, q, asService, 10)
	wantTxnEvents(t, "open txn after the appends", events, asEvents(1, 3))
	mustAck(t, q, asService, txn)

	// Drain: every event once, each writer's in its order.
	var got []string
	lastSeq := events[len(events)-1].Seq
	for {
		txn, events := mustOpen(t, q, asService, 7)
		if txn == "" {
			break
		}
		for _, e := range events {
			if e.Seq <= lastSeq {
				t.Fatalf("seq %d after %d", e.Seq, lastSeq)
			}
			lastSeq = e.Seq
			got = append(got, string(e.Data))
		}
		mustAck(t, q, asService, txn)
	}
	wantWriterOrder(t, got, writers, each)
}

// testASDrainWhileAppending opens and acknowledges transactions while
// appends go on: an event numbered before another but stored after it
// must not be acknowledged with a transaction it was not part of.
func testASDrainWhileAppending(t *testing.T, q storage.AppServiceQueue, _ Reopen) {
	const writers, each = 4, 40
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		got  []string
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	done := make(chan struct{})
	var lastSeq int64
	drain := func() (n int, err error) {
		txn, events, err := q.OpenAppServiceTxn(t.Context(), asService, 5)
		if err != nil || txn == "" {
			return 0, err
		}
		for _, e := range events {
			if e.Seq <= lastSeq {
				return 0, fmt.Errorf("seq %d after %d", e.Seq, lastSeq)
			}
			lastSeq = e.Seq
			got = append(got, string(e.Data))
		}
		return len(events), q.AckAppServiceTxn(t.Context(), asService, txn)
	}
	var writing sync.WaitGroup
	for w := range writers {
		writing.Go(func() {
			for i := range each {
				ev := fmt.Appendf(nil, "w%d-%03d", w, i)
				if _, err := q.AppendAppServiceEvents(t.Context(), asService, [][]byte{ev}); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := drain(); err != nil {
				fail(err)
				return
			}
		}
	})
	writing.Wait()
	close(done)
	wg.Wait()
	for _, err := range errs {
		t.Fatal(err)
	}
	for {
		n, err := drain()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	wantDepth(t, q, asService, 0)
	wantWriterOrder(t, got, writers, each)
}

// wantWriterOrder checks that got holds the events "w<writer>-<i>" of
// each writer exactly once, each writer's in order.
func wantWriterOrder(t *testing.T, got []string, writers, each int) {
	t.Helper()
	if len(got) != writers*each {
		t.Fatalf("drained %d events, want %d", len(got), writers*each)
	}
	next := make([]int, writers)
	for _, g := range got {
		var w, i int
		if _, err := fmt.Sscanf(g, "w%d-%d", &w, &i); err != nil || w < 0 || w >= writers {
			t.Fatalf("unexpected event %q", g)
		}
		if i != next[w] {
			t.Fatalf("writer %d: event %d where %d was due", w, i, next[w])
		}
		next[w]++
	}
}

func testASCanceledContext(t *testing.T, q storage.AppServiceQueue, _ Reopen) {
	mustAppend(t, q, asService, asEvents(1, 3), 3)
	txn, _ := mustOpen(t, q, asService, 2)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := q.AppendAppServiceEvents(ctx, asService, asEvents(4, 4))
	wantErr(t, "AppendAppServiceEvents", err, context.Canceled)
	_, _, err = q.OpenAppServiceTxn(ctx, asService, 2)
	wantErr(t, "OpenAppServiceTxn", err, context.Canceled)
	wantErr(t, "AckAppServiceTxn", q.AckAppServiceTxn(ctx, asService, txn), context.Canceled)
	_, err = q.AppServiceDepth(ctx, asService)
	wantErr(t, "AppServiceDepth", err, context.Canceled)
	_, err = q.TrimAppServiceQueue(ctx, asService, 0)
	wantErr(t, "TrimAppServiceQueue", err, context.Canceled)
	// Nothing may have changed with the canceled context.
	wantDepth(t, q, asService, 3)
	if again, _ := mustOpen(t, q, asService, 2); again != txn {
		t.Fatalf("open txn %q became %q", txn, again)
	}
}
