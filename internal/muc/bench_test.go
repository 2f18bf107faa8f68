package muc

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// sink stands for the session manager of the occupants' domain: it
// serializes every stanza once, as a session's Deliver does.
type sink struct {
	rt  *router.Router
	buf []byte
	n   int
}

func (s *sink) HandleStanza(_ context.Context, st router.Stanza) {
	s.buf = st.El.AppendXML(s.buf[:0], xmlstream.NSClient)
	s.n++
}

func benchRoom(b *testing.B, occupants int) (*Service, *sink, []jid.JID) {
	log := slog.New(slog.DiscardHandler)
	r := router.New(log)
	k := &sink{rt: r}
	if err := r.Register("localhost", k); err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Services = map[string]string{service: "localhost"}
	cfg.Archive = false
	cfg.Limits.MessageRate = 0
	m, err := New(cfg, Deps{Router: r, Store: memory.New(), Log: log})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Register(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	room := jid.MustParse("bench@" + service)
	var users []jid.JID
	for i := range occupants {
		u := jid.MustParse(fmt.Sprintf("u%d@localhost/r", i))
		users = append(users, u)
		to, _ := room.WithResource(fmt.Sprintf("u%d", i))
		el, _ := xmlstream.ParseStanza([]byte("<presence><x xmlns='http://jabber.org/protocol/muc'/><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org' ver='abcdefghijklmnopqrstuvwxyz0='/></presence>"), xmlstream.NSClient)
		el.SetAttr("from", u.String())
		el.SetAttr("to", to.String())
		r.Route(ctx, router.Stanza{El: el, From: u, To: to})
		if i == 0 {
			cf, _ := xmlstream.ParseStanza([]byte("<iq type='set' id='c'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"), xmlstream.NSClient)
			r.Route(ctx, router.Stanza{El: cf, From: u, To: room})
		}
	}
	return m, k, users
}

// BenchmarkFanout1000 reflects one message to a room of 1,000 occupants;
// it reports the cost per delivered stanza.
func BenchmarkFanout1000(b *testing.B) {
	_, k, users := benchRoom(b, 1000)
	room := jid.MustParse("bench@" + service)
	msg := []byte("<message type='groupchat' id='m1'><body>A line of chat of an ordinary length, like most.</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	ctx := context.Background()
	k.n = 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		el, _ := xmlstream.ParseStanza(msg, xmlstream.NSClient)
		u := users[i%len(users)]
		k.rt.Route(ctx, router.Stanza{El: el, From: u, To: room})
	}
	b.StopTimer()
	if k.n != b.N*1000 {
		b.Fatalf("%d delivered, want %d", k.n, b.N*1000)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(k.n), "ns/delivered")
}

// BenchmarkSeat1000 seats 1,000 occupants in one room, one after the
// other: each newcomer receives everyone's presence and everyone the
// newcomer's, a million presences in all.
func BenchmarkSeat1000(b *testing.B) {
	b.ReportAllocs()
	var delivered int
	for range b.N {
		_, k, _ := benchRoom(b, 1000)
		delivered += k.n
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/room")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(delivered), "ns/delivered")
}
