package irc

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/irc/internal/fakeircd"
)

// counter is a bridge.Events that counts one-to-one messages from bob
// and signals when it reaches want.
type counter struct {
	nopEvents
	n    atomic.Int64
	want atomic.Int64
	done chan struct{}
}

func (c *counter) Message(from bridge.UserID, _ bridge.Message) {
	if from == "bob" && c.n.Add(1) == c.want.Load() {
		c.done <- struct{}{}
	}
}

// nopEvents does nothing.
type nopEvents struct{}

func (nopEvents) Message(bridge.UserID, bridge.Message)                        {}
func (nopEvents) Sent(bridge.UserID, bridge.Message)                           {}
func (nopEvents) Presence(bridge.UserID, bridge.Presence)                      {}
func (nopEvents) ChatState(bridge.UserID, bridge.ChatState)                    {}
func (nopEvents) Reaction(bridge.UserID, bridge.Reaction)                      {}
func (nopEvents) Retraction(bridge.UserID, bridge.MessageID)                   {}
func (nopEvents) Displayed(bridge.UserID, bridge.MessageID)                    {}
func (nopEvents) Contact(bridge.Contact)                                       {}
func (nopEvents) ContactRemoved(bridge.UserID)                                 {}
func (nopEvents) RoomJoined(bridge.RoomID, bridge.RoomInfo)                    {}
func (nopEvents) RoomJoinFailed(bridge.RoomID, error)                          {}
func (nopEvents) RoomMessage(bridge.RoomID, bridge.UserID, bridge.Message)     {}
func (nopEvents) RoomPresence(bridge.RoomID, bridge.Participant)               {}
func (nopEvents) RoomLeft(bridge.RoomID, bridge.UserID, string, bridge.UserID) {}
func (nopEvents) RoomNick(bridge.RoomID, bridge.UserID, string)                {}
func (nopEvents) RoomSubject(bridge.RoomID, bridge.UserID, string)             {}
func (nopEvents) RoomInvited(bridge.RoomID, bridge.UserID, string)             {}
func (nopEvents) Disconnected(error)                                           {}

// rawServer is the least an IRC server does for one client: it welcomes
// it, answers its PINGs, and writes what it is given; what it costs is
// next to nothing, so that a benchmark measures the connector.
type rawServer struct {
	l   net.Listener
	out chan []byte
}

func startRaw(b *testing.B) *rawServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	r := &rawServer{l: l, out: make(chan []byte, 1)}
	b.Cleanup(func() { l.Close() })
	go r.serve()
	return r
}

func (r *rawServer) serve() {
	c, err := r.l.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	go func() {
		for p := range r.out {
			c.Write(p)
		}
	}()
	sc := bufio.NewScanner(c)
	pong := []byte(":raw PONG raw :")
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) > 5 && string(line[:5]) == "USER ":
			c.Write([]byte(":raw 001 alice :hi\r\n:raw 376 alice :end\r\n"))
		case len(line) > 5 && string(line[:5]) == "PING ":
			b := append(pong[:len(pong):len(pong)], line[5:]...)
			c.Write(append(b, '\r', '\n'))
		}
	}
}

func benchLogin(b *testing.B, addr string, ev bridge.Events) *session {
	n := network(b, addr, "puppet", nil)
	s, err := n.Login(context.Background(), bridge.Account{JID: "alice@example.org"}, ev)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Logout(context.Background()) })
	return s.(*session)
}

// BenchmarkIRCToXMPP: one-to-one messages from IRC, read, parsed and
// reported to the bridge's Events: through the fake server from a raw
// client (its costs included), or written by a server that costs nothing.
func BenchmarkIRCToXMPP(b *testing.B) {
	b.Run("fakeircd", func(b *testing.B) {
		srv := fakeircd.Start(b, fakeircd.Options{})
		ev := &counter{done: make(chan struct{}, 1)}
		benchLogin(b, srv.Addr(), ev)
		bob := fakeircd.Dial(b, srv.Addr(), "bob")
		line := "PRIVMSG alice :" + strings.Repeat("hello ", 10)
		ev.want.Store(int64(b.N))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			bob.Send("%s", line)
		}
		<-ev.done
	})
	b.Run("connector", func(b *testing.B) {
		raw := startRaw(b)
		ev := &counter{done: make(chan struct{}, 1)}
		benchLogin(b, raw.l.Addr().String(), ev)
		line := "@msgid=abc;time=2024-01-02T03:04:05.000Z :bob!bob@127.0.0.1 PRIVMSG alice :" + strings.Repeat("hello ", 10) + "\r\n"
		const batch = 256
		block := []byte(strings.Repeat(line, batch))
		ev.want.Store(int64(b.N))
		b.ReportAllocs()
		b.ResetTimer()
		for left := b.N; left > 0; left -= batch {
			if left >= batch {
				raw.out <- block
			} else {
				raw.out <- block[:left*len(line)]
			}
		}
		<-ev.done
	})
}

// BenchmarkXMPPToIRC: one-to-one messages from XMPP (Session.SendMessage)
// to IRC, each waiting for the server to have taken it (a PING's answer
// after the PRIVMSG): through the fake server to a raw client that reads
// them (its costs included), or to a server that costs nothing.
func BenchmarkXMPPToIRC(b *testing.B) {
	msg := bridge.Message{Body: strings.Repeat("hello ", 10)}
	b.Run("fakeircd", func(b *testing.B) {
		srv := fakeircd.Start(b, fakeircd.Options{})
		s := benchLogin(b, srv.Addr(), nopEvents{})
		bob := fakeircd.Dial(b, srv.Addr(), "bob")
		go func() {
			for range bob.Lines() {
			}
		}()
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := s.SendMessage(ctx, "bob", msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("connector", func(b *testing.B) {
		raw := startRaw(b)
		s := benchLogin(b, raw.l.Addr().String(), nopEvents{})
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := s.SendMessage(ctx, "bob", msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
