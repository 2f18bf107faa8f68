package limit

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkAdmitRelease is the cost added to every accepted connection.
func BenchmarkAdmitRelease(b *testing.B) {
	c := NewConns(ConnConfig{MaxUnauthenticated: 5000, MaxUnauthenticatedPerAddr: 32, MaxPerAddr: 100, NewPerSecond: 1e9, NewBurst: 1e9})
	addrs := make([]netip.Addr, 256)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		t, _ := c.Admit(addrs[i%len(addrs)])
		t.Authenticated()
		t.Release()
	}
}

// BenchmarkBucketTake is the cost added to every read of a shaped
// connection.
func BenchmarkBucketTake(b *testing.B) {
	now := time.Now()
	bk := NewBucket(Rate{Bytes: 1 << 30, Burst: 1 << 30}, now)
	b.ReportAllocs()
	for b.Loop() {
		bk.Take(1024, now)
	}
}

// BenchmarkFailuresCheck is the cost added to every authentication.
func BenchmarkFailuresCheck(b *testing.B) {
	f := NewFailures(DefaultFailureConfig())
	a := netip.MustParseAddr("192.0.2.1")
	f.Failed(a, "juliet@example.com")
	b.ReportAllocs()
	for b.Loop() {
		f.Check(a, "juliet@example.com")
	}
}
