package c2s_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// BenchmarkMessageThroughServer sends chat messages from one client to
// another through real loopback sockets, TLS and the whole server path,
// and waits for each to arrive: client and server work together per op.
func BenchmarkMessageThroughServer(b *testing.B) {
	for _, plain := range []bool{true, false} {
		name := "tls"
		if plain {
			name = "plain"
		}
		b.Run(name, func(b *testing.B) {
			s := xmpptest.StartServer(b, func(c *c2s.Config) { c.AllowPlain = plain })
			s.AddUser(b, "alice@localhost", "wonderland")
			s.AddUser(b, "bob@localhost", "builder")
			login := func(user, pass, res string) *xmpptest.Client {
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
