package c2s_test

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// BenchmarkMessageThroughServer sends chat messages from one client to
// another through real loopback sockets, TLS and the whole server path,
// and waits for each to arrive: client and server work together per op.
// The transports: plain TCP, STARTTLS, WebSocket (ws) and WebSocket over
// TLS (wss); the WebSocket client's framing is counted in its ops too.
func BenchmarkMessageThroughServer(b *testing.B) {
	for _, mode := range []string{"plain", "tls", "ws", "wss"} {
		plain := mode == "plain" || mode == "ws"
		b.Run(mode, func(b *testing.B) {
			s := xmpptest.StartServer(b, func(c *c2s.Config) { c.AllowPlain = plain })
			s.AddUser(b, "alice@localhost", "wonderland")
			s.AddUser(b, "bob@localhost", "builder")
			login := func(user, pass, res string) *xmpptest.Client {
				if strings.HasPrefix(mode, "ws") {
					url := s.WSURL
					if plain {
						url = s.WSPlainURL
					}
					ws, st, err := xmpptest.DialWebSocket(url, s.Roots, nil)
					if err != nil {
						b.Fatal(err)
					}
					c := xmpptest.NewWebSocketClient(b, ws, st, "localhost")
					c.Open()
					if cond := c.AuthSCRAM("SCRAM-SHA-1", user, pass, ""); cond != "" {
						b.Fatal(cond)
					}
					c.Bind(res)
					return c
				}
				if !plain {
					return s.Login(b, user, pass, res)
				}
				c := xmpptest.Dial(b, s.Addr, "localhost")
				c.Open()
				if cond := c.AuthSCRAM("SCRAM-SHA-1", user, pass, ""); cond != "" {
					b.Fatal(cond)
				}
				c.Bind(res)
				return c
			}
			a := login("alice", "wonderland", "a")
			bob := login("bob", "builder", "b")
			msg := []byte("<message to='bob@localhost/b' type='chat' id='abc123'><body>Hello there, how are you?</body></message>")
			want := len("<message to='bob@localhost/b' type='chat' id='abc123' from='alice@localhost/a'><body>Hello there, how are you?</body></message>")
			if strings.HasPrefix(mode, "ws") {
				want += len(" xmlns='jabber:client'") // every WebSocket message stands alone
			}
			buf := make([]byte, 64<<10)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, err := a.Conn().Write(msg); err != nil {
					b.Fatal(err)
				}
				got := 0
				_ = bob.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
				for got < want {
					n, err := bob.Conn().Read(buf)
					if err != nil && err != io.EOF {
						b.Fatal(fmt.Errorf("after %d bytes: %w", got, err))
					}
					got += n
				}
			}
		})
	}
}
