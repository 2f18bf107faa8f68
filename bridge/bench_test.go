package bridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/bridgetest"
)

// counter stands for the XMPP side in benchmarks: it counts what the
// bridge sends, already serialized.
type counter struct{ n chan struct{} }

func benchBridge(b *testing.B) (*bridgetest.Network, *bridge.Local, *counter) {
	n := bridgetest.New(bridge.Puppet)
	cfg := bridge.DefaultConfig()
	cfg.Domain = gw
	cfg.DataDir = b.TempDir()
	cfg.RateLimit = 0
	cfg.Connect = bridge.Connect{Mode: "component", Server: "127.0.0.1:1", Secret: "s"}
	br, err := bridge.New(n, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	c := &counter{n: make(chan struct{}, 1<<16)}
	l, err := br.ServeLocal(context.Background(), func([]byte) { c.n <- struct{}{} })
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return n, l, c
}

const chatLine = "<message type='chat' id='m%d' from='" + alice + "' to='bob@" + gw + "'><body>A line of chat of an ordinary length, like most.</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>"

// BenchmarkRelayToNetwork: one chat message from an XMPP user through the
// bridge to the network (serialized stanza in, the network's SendMessage
// called, the ids recorded).
func BenchmarkRelayToNetwork(b *testing.B) {
	n, l, _ := benchBridge(b)
	n.AddUser("bob", false)
	// The session logs in on the first message.
	if err := l.Send(fmt.Appendf(nil, chatLine, 0)); err != nil {
		b.Fatal(err)
	}
	<-n.Sent
	b.ReportAllocs()
	b.ResetTimer()
	var lat latencies
	for i := range b.N {
		t0 := time.Now()
		_ = l.Send(fmt.Appendf(nil, chatLine, i+1))
		<-n.Sent
		lat.add(time.Since(t0))
	}
	lat.report(b)
}

// BenchmarkRelayToXMPP: one message of the network through the bridge to
// XMPP (the stanza built, the ids recorded, serialized).
func BenchmarkRelayToXMPP(b *testing.B) {
	n, l, c := benchBridge(b)
	n.AddUser("bob", false)
	if err := l.Send(fmt.Appendf(nil, chatLine, 0)); err != nil {
		b.Fatal(err)
	}
	<-n.Sent
	ev := n.Session("alice@xmpp.example").Events()
	b.ReportAllocs()
	b.ResetTimer()
	var lat latencies
	for i := range b.N {
		t0 := time.Now()
		ev.Message("bob", bridge.Message{ID: bridge.MessageID(fmt.Sprint("L", i)), Body: "A line of chat of an ordinary length, like most."})
		<-c.n
		lat.add(time.Since(t0))
	}
	lat.report(b)
}

// latencies are the times of one message each, one after the other: the
// benchmark reports messages/s and the 99th percentile.
type latencies []time.Duration

func (l *latencies) add(d time.Duration) { *l = append(*l, d) }

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	b.StopTimer()
	slices.Sort(l)
	b.ReportMetric(float64(l[len(l)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(len(l))/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkPuppetMemory: what the bridge keeps in memory for each user of
// the network with presence (Puppet mode, 10,000 users, one presence
// each), reported as bytes per puppet.
func BenchmarkPuppetMemory(b *testing.B) {
	for range b.N {
		n, l, c := benchBridge(b)
		n.AddUser("bob", false)
		if err := l.Send(fmt.Appendf(nil, chatLine, 0)); err != nil {
			b.Fatal(err)
		}
		<-n.Sent
		ev := n.Session("alice@xmpp.example").Events()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		const puppets = 10000
		for i := range puppets {
			ev.Presence(bridge.UserID(fmt.Sprint("user", i)), bridge.Presence{Show: bridge.Away, Status: "out to lunch"})
			<-c.n
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/puppets, "B/puppet")
	}
}
