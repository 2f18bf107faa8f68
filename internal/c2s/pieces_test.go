package c2s_test

import (
	"math/rand"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// piecemeal splits every write into pieces sent a moment apart, so that
// the server gets them while it serves the connection as well as while
// the connection waits in the poller.
type piecemeal struct {
	net.Conn
	mu  sync.Mutex
	rnd *rand.Rand
}

func (p *piecemeal) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for n < len(b) {
		k := 1 + p.rnd.Intn(len(b)-n)
		if p.rnd.Intn(3) == 0 {
			k = len(b) - n
		}
		m, err := p.Conn.Write(b[n : n+k])
		n += m
		if err != nil {
			return n, err
		}
		if d := p.rnd.Intn(600) - 300; d > 0 {
			time.Sleep(time.Duration(d) * time.Microsecond)
		} else {
			// Busy for a moment instead: the next piece comes while
			// the server handles this one.
			for end := time.Now().Add(time.Duration(-d/10) * time.Microsecond); time.Now().Before(end); {
			}
		}
	}
	return n, nil
}

// TestNegotiationInPieces logs clients in whose every write, TLS records
// included, arrives in pieces at random moments: a negotiating connection
// stays registered with the poller between its waits, and a piece that
// arrives while a goroutine serves it must still resume it when it waits
// again (or be drained once it is a session), else the login stalls
// until its timeout.
func TestNegotiationInPieces(t *testing.T) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) { c.AllowPlain = true })
	s.AddUser(t, "alice@localhost", "wonderland")
	// 200 logins, 40 at a time: enough pieces to land in the windows
	// that matter, few enough that a race-built server on a busy machine
	// answers each step within the client's 5 s.
	const clients, inFlight = 200, 40
	slots := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			conn, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			c := xmpptest.NewClient(t, &piecemeal{Conn: conn, rnd: rand.New(rand.NewSource(int64(i)))}, "localhost")
			c.Open()
			if i%2 == 0 {
				c.StartTLS(s.Roots)
			}
			if cond := c.AuthSCRAM("SCRAM-SHA-256", "alice", "wonderland", ""); cond != "" {
				t.Errorf("client %d: %s", i, cond)
				return
			}
			// The first ping comes with the bind request, so that its
			// pieces arrive while the binding is served, before the
			// session waits in the poller.
			c.Send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
			c.Expect("bound", func(el *xmlstream.Element) bool {
				return el.Local == "iq" && el.Attr("id") == "b" && el.Attr("type") == "result"
			})
			c.Expect("pong", func(el *xmlstream.Element) bool { return el.Local == "iq" && el.Attr("id") == "p" })
			for j := range 3 {
				id := "p" + string(rune('0'+j))
				c.Send("<iq type='get' id='" + id + "'><ping xmlns='urn:xmpp:ping'/></iq>")
				c.Expect("pong", func(el *xmlstream.Element) bool { return el.Local == "iq" && el.Attr("id") == id })
			}
		}()
	}
	wg.Wait()
}
