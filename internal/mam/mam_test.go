package mam

import (
	"context"
	"errors"
	"log/slog"
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

// TestWriterRetries: a batch the store refuses is written once the store
// works again, and done runs only then; a store that never works again
// is given up after retryFor.
func TestWriterRetries(t *testing.T) {
	tests := []struct {
		name  string
		fails int
		want  int // entries archived
	}{
		{"works", 0, 1},
		{"restarts", 3, 1},
		{"gone for good", 1 << 30, 0},
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
			if len(page.Items) != tt.want {
				t.Fatalf("%d entries archived after %d tries, want %d", len(page.Items), st.tries, tt.want)
			}
		})
	}
}
