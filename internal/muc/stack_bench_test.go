package muc

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// client is a bound session that serializes what it is given, as the
// client edge does, into a buffer of the stack's (a session keeps none),
// and counts it.
type client struct {
	j   jid.JID
	buf *[]byte
	n   int
}

func (c *client) JID() jid.JID { return c.j }
func (c *client) Deliver(el *xmlstream.Element) {
	*c.buf = el.AppendXML((*c.buf)[:0], xmlstream.NSClient)
	c.n++
}
func (c *client) Close(string) {}

// stack is the service with the real session manager in front of it:
// what a room's stanza costs from the sender's session to the bytes for
// every occupant's, the socket aside.
type stack struct {
	r       *router.Router
	m       *sm.SM
	clients []*client
	buf     []byte
}

func newStack(b *testing.B, users int) *stack {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st := memory.New()
	creds, _ := auth.DeriveCredentials("x", 4096)
	r := router.New(log)
	m, err := sm.New(sm.Config{Domain: "localhost"}, sm.Deps{Router: r, Accounts: st, Roster: st, Log: log})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Register("localhost", m); err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Services = map[string]string{service: "localhost"}
	cfg.Archive = false
	cfg.Limits.MessageRate = 0
	svc, err := New(cfg, Deps{Router: r, Store: st, Log: log})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Register(); err != nil {
		b.Fatal(err)
	}
	s := &stack{r: r, m: m}
	for i := range users {
		bare := fmt.Sprintf("u%d@localhost", i)
		_ = st.CreateAccount(ctx, bare, creds)
		c := &client{j: jid.MustParse(bare + "/r"), buf: &s.buf}
		if err := m.Bind(ctx, c); err != nil {
			b.Fatal(err)
		}
		p := xmlstream.NewElement(xmlstream.NSClient, "presence")
		p.SetAttr("from", c.j.String())
		m.HandleFromSession(ctx, c, router.Stanza{El: p, From: c.j})
		s.clients = append(s.clients, c)
	}
	return s
}

// send hands raw to the session manager as client i's.
func (s *stack) send(b *testing.B, i int, to jid.JID, raw string) {
	el, err := xmlstream.ParseStanza([]byte(raw), xmlstream.NSClient)
	if err != nil {
		b.Fatal(err)
	}
	c := s.clients[i]
	el.SetAttr("from", c.j.String())
	el.SetAttr("to", to.String())
	s.m.HandleFromSession(context.Background(), c, router.Stanza{El: el, From: c.j, To: to})
}

// joinWithCaps is a join as clients send it, with their capabilities;
// joinBare one without.
const (
	joinWithCaps = "<presence><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x>" +
		"<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org' ver='abcdefghijklmnopqrstuvwxyz0='/></presence>"
	joinBare = "<presence><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
)

// seat makes clients [first, first+n) occupants of room, the first of
// them creating it.
func (s *stack) seat(b *testing.B, room jid.JID, first, n int) {
	s.seatWith(b, room, first, n, joinWithCaps)
}

func (s *stack) seatWith(b *testing.B, room jid.JID, first, n int, join string) {
	for i := first; i < first+n; i++ {
		to, _ := room.WithResource(fmt.Sprintf("u%d", i))
		s.send(b, i, to, join)
		if i == first {
			s.send(b, i, room, "<iq type='set' id='c'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>")
		}
	}
}

func (s *stack) delivered() int {
	n := 0
	for _, c := range s.clients {
		n += c.n
	}
	return n
}

// BenchmarkStackFanout1000 reflects one message to a room of 1,000
// occupants through the session manager on both sides.
func BenchmarkStackFanout1000(b *testing.B) {
	s := newStack(b, 1000)
	room := jid.MustParse("bench@" + service)
	s.seat(b, room, 0, 1000)
	before := s.delivered()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.send(b, i%1000, room, "<message type='groupchat' id='m1'><body>A line of chat of an ordinary length, like most.</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
		i++
	}
	n := s.delivered() - before
	if n != i*1000 {
		b.Fatalf("%d delivered, want %d", n, i*1000)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/delivered")
}

// BenchmarkStackSeat1000 seats 1,000 occupants in one room through the
// session manager: a million presences.
func BenchmarkStackSeat1000(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		s := newStack(b, 1000)
		b.StartTimer()
		s.seat(b, jid.MustParse(fmt.Sprintf("seat%d@%s", i, service)), 0, 1000)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/room")
}

// BenchmarkOccupantMemory seats 10,000 online users in 1,000 rooms of 10
// and reports the live heap the occupants add, beyond their sessions:
// with the capabilities every client sends, and without.
func BenchmarkOccupantMemory(b *testing.B) {
	for _, tc := range []struct{ name, join string }{{"caps", joinWithCaps}, {"bare", joinBare}} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				s := newStack(b, 10000)
				before := liveHeap()
				b.StartTimer()
				for r := range 1000 {
					s.seatWith(b, jid.MustParse(fmt.Sprintf("m%d-%d@%s", i, r, service)), r*10, 10, tc.join)
				}
				b.StopTimer()
				after := liveHeap()
				b.ReportMetric(float64(after-before)/10000, "B/occupant")
				runtime.KeepAlive(s)
				b.StartTimer()
			}
		})
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
