package s2s

import (
	"context"
	"testing"
)

// BenchmarkS2SMessages measures messages per second over one federated
// stream between two in-process endpoints on loopback TCP with TLS: the
// sender's routing and serialization, the stream, and the receiver's
// parsing, address checks and routing.
func BenchmarkS2SMessages(b *testing.B) {
	t := b
	ca := newTestCA(t)
	a, peer := pairUp(t, ca, true)
	ctx := context.Background()
	// Bring the stream up outside the measurement.
	a.router.Route(ctx, message(t, "alice@a.test/r", "bob@b.test", "warm-up"))
	<-peer.inbox
	// A window below the outgoing queue's bound: past it stanzas are
	// bounced, which is not what this measures.
	window := make(chan struct{}, 4096)
	done := make(chan struct{})
	go func() {
		for range b.N {
			<-peer.inbox
			<-window
		}
		close(done)
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		window <- struct{}{}
		a.router.Route(ctx, message(t, "alice@a.test/r", "bob@b.test", "hello, this is a federated chat message"))
	}
	<-done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
