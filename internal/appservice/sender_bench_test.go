package appservice

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
)

// countingMetrics closes done once want events were delivered.
type countingMetrics struct {
	noMetrics
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (m *countingMetrics) AppServiceDelivered(_ string, n int) {
	if m.n.Add(int64(n)) == m.want {
		close(m.done)
	}
}

// BenchmarkDelivery measures events through the whole path: Enqueue, one
// at a time, the writer storing them, transactions of at most batch
// events PUT to a local service that answers 200 at once, and their
// acknowledgement. The service's own work (reading the bodies) is
// counted too. ns/op and allocs/op are per event.
func BenchmarkDelivery(b *testing.B) {
	for _, bc := range []struct {
		name  string
		batch int
		store func(b *testing.B) storage.AppServiceQueue
	}{
		{"sqlite/batch=100", 100, benchSQLite},
		{"sqlite/batch=20", 20, benchSQLite},
		{"memory/batch=100", 100, func(*testing.B) storage.AppServiceQueue { return memory.New() }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
			}))
			defer ts.Close()
			svc := testServiceConfig(b, ts.URL, bc.batch, math.MaxInt32)
			m := &countingMetrics{want: int64(b.N), done: make(chan struct{})}
			s, err := NewSender(svc, SenderDeps{Queue: bc.store(b), Log: slog.New(slog.DiscardHandler), Metrics: m})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			defer func() { cancel(); <-done }()

			ev := testEvents(1, 1)
			ev[0].ID, ev[0].Time = "", time.Time{} // Enqueue gives them
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := s.Enqueue(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
			<-m.done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func benchSQLite(b *testing.B) storage.AppServiceQueue {
	return openSQLite(b, filepath.Join(b.TempDir(), "bench.db"))
}

// BenchmarkEnqueue measures what a caller of Enqueue pays: the event's
// JSON and a hand-over to the writer, which stores in memory here.
func BenchmarkEnqueue(b *testing.B) {
	s, err := NewSender(testServiceConfig(b, "http://127.0.0.1:1", 100, math.MaxInt32),
		SenderDeps{Queue: memory.New(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ev := testEvents(1, 1)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Enqueue(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	s.Flush(context.Background())
}
