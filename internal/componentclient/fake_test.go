package componentclient

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// fakeServer is a component listener the test scripts by hand, for what
// a real server never does: malformed XML, not reading.
type fakeServer struct {
	l     net.Listener
	conns chan net.Conn
}

func startFake(t *testing.T) *fakeServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{l: l, conns: make(chan net.Conn, 16)}
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				close(f.conns)
				return
			}
			f.conns <- nc
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for nc := range f.conns {
			nc.Close()
		}
	})
	return f
}

func (f *fakeServer) addr() string { return f.l.Addr().String() }

// fakeConn is one accepted connection.
type fakeConn struct {
	t   *testing.T
	nc  net.Conn
	p   *xmlstream.Parser
	buf []byte
}

// accept waits for the client's next connection and completes the
// handshake on it.
func (f *fakeServer) accept(t *testing.T) *fakeConn {
	t.Helper()
	var nc net.Conn
	select {
	case nc = <-f.conns:
	case <-time.After(waitFor):
		t.Fatal("the client did not connect")
	}
	t.Cleanup(func() { nc.Close() })
	c := &fakeConn{t: t, nc: nc, p: xmlstream.NewParser(xmlstream.Limits{MaxStanzaBytes: 1 << 20}), buf: make([]byte, 4096)}
	ev := c.next()
	if ev.Kind != xmlstream.EventStreamStart || ev.Elem.Attr("to") != testDomain || c.p.DefaultNS() != xmlstream.NSComponent {
		t.Fatalf("want the component's stream header, got %v %v", ev.Kind, ev.Elem)
	}
	c.send("<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='fake-id' from='" + testDomain + "'>")
	ev = c.next()
	if ev.Kind != xmlstream.EventElement || ev.Elem.Local != "handshake" || ev.Elem.Text() != handshake("fake-id", testSecret) {
		t.Fatalf("want the handshake, got %v", ev.Elem)
	}
	c.send("<handshake/>")
	return c
}

func (c *fakeConn) send(s string) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(waitFor))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next returns the next event from the client.
func (c *fakeConn) next() xmlstream.Event {
	c.t.Helper()
	for {
		ev, err := c.p.Next()
		if err == nil {
			return ev
		}
		if !errors.Is(err, xmlstream.ErrNeedMore) {
			c.t.Fatalf("from the client: %v", err)
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(waitFor))
		n, err := c.nc.Read(c.buf)
		c.p.Feed(c.buf[:n])
		if err != nil && n == 0 {
			c.t.Fatalf("read: %v", err)
		}
	}
}

// TestMalformedServer has the server send XML that is not well-formed:
// the client ends that connection with a stream error and connects again.
func TestMalformedServer(t *testing.T) {
	f := startFake(t)
	b := startBridge(t, f.addr(), nil)
	c := f.accept(t)
	c.send("<message from='alice@localhost' to='bot@" + testDomain + "' id='m1'></presence>")
	ev := c.next()
	if ev.Kind != xmlstream.EventElement || ev.Elem.Space != xmlstream.NSStream || ev.Elem.Local != "error" ||
		ev.Elem.Child(stanza.NSStreams, xmlstream.CondNotWellFormed) == nil {
		t.Fatalf("want a not-well-formed stream error, got %v", ev.Elem)
	}
	if ev := c.next(); ev.Kind != xmlstream.EventStreamEnd {
		t.Fatalf("want the stream end, got %v", ev.Kind)
	}
	c2 := f.accept(t)
	c2.send("<message from='alice@localhost' to='bot@" + testDomain + "' id='m2'/>")
	if got := ids(b.bot.wait(t, 1)); len(got) != 1 || got[0] != "m2" {
		t.Fatalf("the bridge got %v", got)
	}
	if n := b.log.count("WARN disconnected", "not-well-formed"); n != 1 {
		t.Fatalf("%d logs of the malformed stream", n)
	}
}

// TestKeepAlive checks that an idle connection carries whitespace.
func TestKeepAlive(t *testing.T) {
	f := startFake(t)
	startBridge(t, f.addr(), func(c *Config) { c.KeepAlive = 20 * time.Millisecond })
	c := f.accept(t)
	if c.p.Buffered() != 0 {
		t.Fatalf("%d bytes after the handshake", c.p.Buffered())
	}
	got := 0
	deadline := time.Now().Add(waitFor)
	for got < 3 {
		_ = c.nc.SetReadDeadline(deadline)
		n, err := c.nc.Read(c.buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		if s := string(c.buf[:n]); strings.Trim(s, " ") != "" {
			t.Fatalf("got %q, want whitespace", s)
		}
		got += n
	}
}

// TestServerStopsReading has the server stop reading: once the socket is
// full, stanzas are bounced with resource-constraint (the server is
// there, but slow), and when a write has waited WriteTimeout the client
// gives up on the connection and connects again.
func TestServerStopsReading(t *testing.T) {
	f := startFake(t)
	b := startBridge(t, f.addr(), func(c *Config) {
		c.WriteTimeout = 500 * time.Millisecond
		c.MaxQueuedBytes = 4 << 20
	})
	f.accept(t) // and never read from it again
	b.waitConnected(t)
	big := strings.Repeat("x", 256<<10)
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("nothing bounced after 256 MiB")
		}
		st := message("bot@"+testDomain+"/x", "alice@localhost", fmt.Sprint("big", i))
		st.El.Child(xmlstream.NSClient, "body").SetNodes([]xmlstream.Node{{Text: big}})
		b.router.Route(t.Context(), st)
		if len(b.bot.all()) > 0 {
			break
		}
	}
	e := b.bot.all()[0]
	if stanza.ErrorCondition(e.El) != stanza.ResourceConstraint {
		t.Fatalf("bounced with %s", e.El)
	}
	c2 := f.accept(t)
	xmpptest.CheckFor(t, waitFor, func() error {
		if b.log.count("WARN disconnected", "timeout") != 1 {
			return errors.New("no disconnection logged")
		}
		return nil
	})
	// The new connection carries what was still queued.
	ev := c2.next()
	if ev.Kind != xmlstream.EventElement || ev.Elem.Local != "message" || !strings.HasPrefix(ev.Elem.Attr("id"), "big") {
		t.Fatalf("got %v", ev.Elem)
	}
}

// TestHandshakeTimeout has the server accept and then say nothing: the
// client gives up after HandshakeTimeout and connects again.
func TestHandshakeTimeout(t *testing.T) {
	f := startFake(t)
	b := startBridge(t, f.addr(), func(c *Config) { c.HandshakeTimeout = 100 * time.Millisecond })
	for range 2 {
		select {
		case nc := <-f.conns:
			defer nc.Close()
		case <-time.After(waitFor):
			t.Fatal("the client did not connect")
		}
	}
	xmpptest.CheckFor(t, waitFor, func() error {
		if err := b.client.LastError(); !errors.Is(err, errHandshakeTimeout) {
			return fmt.Errorf("LastError %v", err)
		}
		return nil
	})
}
