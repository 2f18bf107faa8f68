package mam

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

func TestIDsSortAndStamp(t *testing.T) {
	var g IDs
	prev := ""
	for range 1000 {
		id, stamp := g.Next()
		if id <= prev {
			t.Fatalf("id %s after %s", id, prev)
		}
		prev = id
		got, ok := StampOf(id)
		if !ok || !got.Equal(stamp) {
			t.Fatalf("StampOf(%s) = %v %v, want %v", id, got, ok, stamp)
		}
	}
	for _, bad := range []string{"", "abc", "zzzzzzzzzzzzzz", "-000000000001"} {
		if _, ok := StampOf(bad); ok {
			t.Errorf("StampOf(%q) accepted", bad)
		}
	}
}

func TestIDAt(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)
	id := IDAt(t0)
	if got, ok := StampOf(id); !ok || !got.Equal(t0) {
		t.Fatalf("StampOf(IDAt(%v)) = %v %v", t0, got, ok)
	}
	if next := IDAt(t0.Add(time.Microsecond)); next <= id {
		t.Errorf("%s after %s", next, id)
	}
}

// formatID pads strconv's base 32 to idWidth, for every non-negative
// int64, so that ids sort as their numbers.
func TestFormatID(t *testing.T) {
	for _, v := range []int64{0, 1, 31, 32, 1<<40 + 7, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC).UnixMicro(), math.MaxInt64} {
		s := strconv.FormatInt(v, 32)
		want := strings.Repeat("0", idWidth-len(s)) + s
		if got := formatID(v); got != want {
			t.Errorf("formatID(%d) = %s, want %s", v, got, want)
		}
	}
	if got := formatID(-5); got != "00000000000-5" {
		t.Errorf("formatID(-5) = %s", got)
	}
}

func TestParseQuery(t *testing.T) {
	parse := func(s string) *xmlstream.Element {
		el, err := xmlstream.ParseStanza([]byte(s), NS)
		if err != nil {
			t.Fatal(err)
		}
		return el
	}
	form := func(fields string) string {
		return "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field>" + fields + "</x></query>"
	}
	tests := []struct {
		name, q  string
		bare     bool
		with     string
		max      int
		last, ok bool
	}{
		{"Empty", "<query xmlns='urn:xmpp:mam:2'/>", true, "", DefaultMax, false, true},
		{"WithBare", form("<field var='with'><value>room@muc.example/nick</value></field>"), true, "room@muc.example", DefaultMax, false, true},
		{"WithFull", form("<field var='with'><value>room@muc.example/nick</value></field>"), false, "room@muc.example/nick", DefaultMax, false, true},
		{"UnknownField", form("<field var='fulltext'><value>x</value></field>"), true, "", 0, false, false},
		{"LastPage", "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>9999</max><before/></set></query>", true, "", MaxMax, true, true},
		{"Index", "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><index>3</index></set></query>", true, "", 0, false, false},
		{"EndBeforeStart", form("<field var='start'><value>2026-01-02T00:00:00Z</value></field><field var='end'><value>2026-01-01T00:00:00Z</value></field>"), true, "", 0, false, false},
	}
	for _, tt := range tests {
		aq, err := ParseQuery(parse(tt.q), tt.bare)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.name, err)
			continue
		}
		if tt.ok && (aq.With != tt.with || aq.Max != tt.max || aq.Last != tt.last) {
			t.Errorf("%s: %+v", tt.name, aq)
		}
	}
}

// flaky fails its first fails batches, as a database that restarts.
type flaky struct {
	storage.Archive
	mu    sync.Mutex
	fails int
	tries int
}

func (f *flaky) AppendArchiveBatch(ctx context.Context, entries []storage.ArchiveEntry) error {
	f.mu.Lock()
	f.tries++
	fail := f.tries <= f.fails
	f.mu.Unlock()
	if fail {
		return errors.New("connection refused")
	}
	return f.Archive.AppendArchiveBatch(ctx, entries)
}

// TestArchiveWriterRetries: a batch the store refuses is written once the store
// works again, however long that takes, and done runs only then.
func TestArchiveWriterRetries(t *testing.T) {
	tests := []struct {
		name  string
		fails int
	}{
		{"works", 0},
		{"restarts", 3},
		{"away for long", 5000}, // hours of pauses, made instant
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &flaky{Archive: memory.New(), fails: tt.fails}
			w := NewWriter(st, nil, slog.New(slog.DiscardHandler))
			w.pause = func(time.Duration) {}
			var done atomic.Int32
			w.AddDone(storage.ArchiveEntry{User: "bob@localhost", Message: storage.ArchivedMessage{
				ID: "0000000000001", Stamp: time.Unix(1, 0), With: "alice@localhost", Stanza: []byte("<message/>")}},
				func() { done.Add(1) })
			w.Flush()
			if done.Load() != 1 {
				t.Fatalf("done ran %d times, want 1", done.Load())
			}
			page, err := st.QueryArchive(context.Background(), "bob@localhost", storage.ArchiveQuery{Max: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != 1 || st.tries != tt.fails+1 {
				t.Fatalf("%d entries archived after %d tries, want 1 after %d", len(page.Items), st.tries, tt.fails+1)
			}
		})
	}
}

// recorder is a store that keeps the batches it is given, in order;
// it fails every failEvery-th call (0: never) and, while gate is not
// nil, waits for it to close before writing.
type recorder struct {
	storage.Archive
	gate      chan struct{}
	failEvery int

	mu      sync.Mutex
	calls   int
	entries []storage.ArchiveEntry
	ids     map[string]bool
}

func (r *recorder) AppendArchiveBatch(ctx context.Context, entries []storage.ArchiveEntry) error {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.failEvery > 0 && r.calls%r.failEvery == 0 {
		return errors.New("database is locked")
	}
	for _, e := range entries {
		r.entries = append(r.entries, e)
		r.ids[e.Message.ID] = true
	}
	return nil
}

func (r *recorder) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[id]
}

func entry(i int) storage.ArchiveEntry {
	return storage.ArchiveEntry{User: "bob@localhost", Message: storage.ArchivedMessage{
		ID: formatID(int64(i)), Stamp: time.UnixMicro(int64(i)), With: "alice@localhost", Stanza: []byte("<message/>")}}
}

// TestArchiveWriterOrderNoLoss: entries added from several goroutines, through
// a store that fails one call in three, are all written exactly once,
// each goroutine's in the order it added them; every done runs once,
// after its entry is written.
func TestArchiveWriterOrderNoLoss(t *testing.T) {
	const senders, each = 4, 3 * maxBatch / 2
	st := &recorder{failEvery: 3, ids: map[string]bool{}}
	w := NewWriter(st, nil, slog.New(slog.DiscardHandler))
	w.pause = func(time.Duration) {}
	var early, dones atomic.Int32
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				e := entry(s*each + i)
				w.AddDone(e, func() {
					if !st.has(e.Message.ID) {
						early.Add(1)
					}
					dones.Add(1)
				})
				w.Wait()
			}
		})
	}
	wg.Wait()
	w.Flush()
	if got := len(st.entries); got != senders*each {
		t.Fatalf("%d entries written, want %d", got, senders*each)
	}
	if len(st.ids) != senders*each {
		t.Fatalf("%d distinct entries written, want %d", len(st.ids), senders*each)
	}
	last := make([]string, senders)
	for _, e := range st.entries {
		v, _ := strconv.ParseInt(e.Message.ID, 32, 64)
		s := int(v) / each
		if e.Message.ID <= last[s] {
			t.Fatalf("entry %s written after %s", e.Message.ID, last[s])
		}
		last[s] = e.Message.ID
	}
	if dones.Load() != senders*each || early.Load() != 0 {
		t.Fatalf("done ran %d times (%d before the write), want %d", dones.Load(), early.Load(), senders*each)
	}
}

// TestArchiveWriterBackpressure: Add never blocks, however slow the store;
// Wait holds its caller while the backlog is full and lets it go once the
// store writes again; nothing added meanwhile is lost.
func TestArchiveWriterBackpressure(t *testing.T) {
	st := &recorder{gate: make(chan struct{}), ids: map[string]bool{}}
	w := NewWriter(st, nil, slog.New(slog.DiscardHandler))
	w.pause = func(time.Duration) {}
	// The writer takes one batch into the stalled store; what stays
	// queued still fills the backlog.
	n := maxBacklog + maxBatch
	for i := range n {
		w.Add(entry(i))
	}
	var released atomic.Bool
	waited := make(chan bool)
	go func() {
		w.Wait()
		waited <- released.Load()
	}()
	// Adding more does not block either, while the waiter waits.
	for i := n; i < n+100; i++ {
		w.Add(entry(i))
	}
	released.Store(true)
	close(st.gate)
	if !<-waited {
		t.Fatal("Wait returned while the backlog was full")
	}
	w.Flush()
	if len(st.entries) != n+100 {
		t.Fatalf("%d entries written, want %d", len(st.entries), n+100)
	}
	for i, e := range st.entries {
		if e.Message.ID != formatID(int64(i)) {
			t.Fatalf("entry %d is %s, want %s", i, e.Message.ID, formatID(int64(i)))
		}
	}
}

// TestArchiveWriterFlushUnderLoad: Flush returns once what was queued before it
// is written, even while others keep adding.
func TestArchiveWriterFlushUnderLoad(t *testing.T) {
	st := &recorder{ids: map[string]bool{}}
	w := NewWriter(st, nil, slog.New(slog.DiscardHandler))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			w.Add(entry(1000 + i))
			w.Wait()
		}
	})
	w.Add(entry(1))
	w.Flush()
	close(stop)
	wg.Wait()
	if !st.has(formatID(1)) {
		t.Fatal("Flush returned before the entry queued before it was written")
	}
	w.Flush()
}
