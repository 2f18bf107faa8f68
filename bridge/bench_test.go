package bridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/bridgetest"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// counter stands for the XMPP side in benchmarks: it counts and
// serializes what it gets, as a server's stream would.
type counter struct {
	n   chan struct{}
	buf []byte
}

func (c *counter) HandleStanza(_ context.Context, st router.Stanza) {
	c.buf = st.El.AppendXML(c.buf[:0], xmlstream.NSClient)
	c.n <- struct{}{}
}

func benchBridge(b *testing.B) (*bridgetest.Network, *router.Router, *counter) {
	n := bridgetest.New(bridge.Puppet)
	cfg := bridge.DefaultConfig()
	cfg.Domain = gw
	cfg.RateLimit = 0
	cfg.Connect = bridge.Connect{Mode: "component", Server: "127.0.0.1:1", Secret: "s"}
	br, err := bridge.New(n, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	rt := router.New(slog.New(slog.DiscardHandler))
	c := &counter{n: make(chan struct{}, 1<<16)}
	rt.SetFallback(c)
	bridge.AttachForTest(b, br, rt)
	return n, rt, c
}

// BenchmarkRelayToNetwork: one chat message from an XMPP user through the
// bridge to the network (parsed stanza in, the network's SendMessage
// called, the ids recorded).
func BenchmarkRelayToNetwork(b *testing.B) {
	n, rt, _ := benchBridge(b)
	n.AddUser("bob", false)
	from, to := jid.MustParse(alice), jid.MustParse("bob@"+gw)
	ctx := context.Background()
	raw := []byte("<message type='chat' id='m0' from='" + alice + "' to='bob@" + gw + "'><body>A line of chat of an ordinary length, like most.</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	// The session logs in on the first message.
	el, _ := xmlstream.ParseStanza(raw, xmlstream.NSClient)
	rt.Route(ctx, router.Stanza{El: el, From: from, To: to})
	<-n.Sent
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		el, _ := xmlstream.ParseStanza(raw, xmlstream.NSClient)
		el.SetAttr("id", fmt.Sprint("m", i))
		rt.Route(ctx, router.Stanza{El: el, From: from, To: to})
		<-n.Sent
	}
}

// BenchmarkRelayToXMPP: one message of the network through the bridge to
// XMPP (the stanza built, the ids recorded, serialized by the receiver).
func BenchmarkRelayToXMPP(b *testing.B) {
	n, rt, c := benchBridge(b)
	n.AddUser("bob", false)
	el, _ := xmlstream.ParseStanza([]byte("<message type='chat'><body>hi</body></message>"), xmlstream.NSClient)
	rt.Route(context.Background(), router.Stanza{El: el, From: jid.MustParse(alice), To: jid.MustParse("bob@" + gw)})
	<-n.Sent
	ev := n.Session("alice@xmpp.example").Events()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev.Message("bob", bridge.Message{ID: bridge.MessageID(fmt.Sprint("L", i)), Body: "A line of chat of an ordinary length, like most."})
		<-c.n
	}
}

// BenchmarkPuppetMemory: what the bridge keeps in memory for each user of
// the network with presence (Puppet mode, 10,000 users, one presence
// each), reported as bytes per puppet.
func BenchmarkPuppetMemory(b *testing.B) {
	for range b.N {
		n, rt, c := benchBridge(b)
		n.AddUser("bob", false)
		el, _ := xmlstream.ParseStanza([]byte("<message type='chat'><body>hi</body></message>"), xmlstream.NSClient)
		rt.Route(context.Background(), router.Stanza{El: el, From: jid.MustParse(alice), To: jid.MustParse("bob@" + gw)})
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
