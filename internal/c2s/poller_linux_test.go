package c2s

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// polledPair returns a poller that is not running (its channels hold one
// connection each, so that what it hands on can be looked at), and the
// server side of a loopback connection, registered with it as far as
// park and handOff can tell, with the client side.
func polledPair(t *testing.T, state int32) (*poller, *conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	client, server := acceptedPair(t, ln)
	p := &poller{epfd: -1, conns: make(map[uint64]*conn), work: make(chan *conn, 1), negotiations: make(chan *conn, 1)}
	c := &conn{srv: &Server{poller: p}, raw: server, pollID: 1, deadline: time.Now().Add(time.Minute)}
	rc, err := server.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	c.rc = rc
	c.parking.Store(state)
	return p, c, client
}

// acceptedPair connects to ln, accepts the connection and closes ln; both
// ends are closed when the test ends.
func acceptedPair(t *testing.T, ln net.Listener) (client, server net.Conn) {
	t.Helper()
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// handedOn reports where the poller handed c: "negotiator", "drain" or "".
func handedOn(p *poller) string {
	select {
	case <-p.negotiations:
		return "negotiator"
	case <-p.work:
		return "drain"
	default:
		return ""
	}
}

// TestPollerReportsWhileServed checks, one interleaving at a time, that a
// readiness report is never lost while a negotiating connection stays
// registered with the poller: reported while a goroutine serves it, it
// is kept until the connection waits again (which then serves on) or
// becomes a session (which is then drained). The end-to-end version,
// TestNegotiationInPieces, cannot aim at these windows of a few
// microseconds.
func TestPollerReportsWhileServed(t *testing.T) {
	t.Run("parked: resumed", func(t *testing.T) {
		p, c, _ := polledPair(t, parked)
		p.report(c, syscall.EPOLLIN)
		if got := handedOn(p); got != "negotiator" || c.parking.Load() != resuming || c.stirred.Load() {
			t.Fatalf("handed to %q, state %d, stirred %v", got, c.parking.Load(), c.stirred.Load())
		}
	})
	t.Run("served, then bytes: the wait serves on", func(t *testing.T) {
		p, c, client := polledPair(t, serving)
		p.report(c, syscall.EPOLLIN)
		if got := handedOn(p); got != "" {
			t.Fatalf("a served connection was handed to %s", got)
		}
		if _, err := client.Write([]byte("<")); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(5 * time.Second); !c.readable(); time.Sleep(time.Millisecond) {
			if time.Now().After(end) {
				t.Fatal("the byte never arrived")
			}
		}
		if c.park(c.readable) {
			t.Fatal("parked with a reported byte waiting: nothing would report it again")
		}
		if c.parking.Load() != serving || c.stirred.Load() {
			t.Fatalf("state %d, stirred %v", c.parking.Load(), c.stirred.Load())
		}
	})
	t.Run("served, report stale: the wait parks", func(t *testing.T) {
		p, c, _ := polledPair(t, serving)
		p.report(c, syscall.EPOLLIN)
		if !c.park(c.readable) {
			t.Fatal("served on with nothing to read")
		}
		if c.parking.Load() != parked || c.stirred.Load() {
			t.Fatalf("state %d, stirred %v", c.parking.Load(), c.stirred.Load())
		}
		if got := handedOn(p); got != "" {
			t.Fatalf("handed to %s", got)
		}
	})
	t.Run("served, then a session: drained", func(t *testing.T) {
		p, c, _ := polledPair(t, serving)
		p.report(c, syscall.EPOLLIN)
		if !c.handOff() {
			t.Fatal("handOff refused")
		}
		if got := handedOn(p); got != "drain" || c.parking.Load() != notParked {
			t.Fatalf("handed to %q, state %d", got, c.parking.Load())
		}
	})
	t.Run("session: drained, its end remembered", func(t *testing.T) {
		p, c, _ := polledPair(t, notParked)
		p.report(c, syscall.EPOLLIN|syscall.EPOLLRDHUP)
		if got := handedOn(p); got != "drain" || !c.peerGone.Load() || c.stirred.Load() {
			t.Fatalf("handed to %q, peer gone %v, stirred %v", got, c.peerGone.Load(), c.stirred.Load())
		}
	})
}

// TestClientKeepalive checks that an accepted client connection has TCP
// keepalive on with the system's idle time, not Go's 15 seconds.
func TestClientKeepalive(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_keepalive_time")
	if err != nil {
		t.Skip("no system keepalive time to compare with:", err)
	}
	want, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listenClients(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, server := acceptedPair(t, ln)
	rc, err := server.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var on, idle int
	var err1, err2 error
	if err := rc.Control(func(fd uintptr) {
		on, err1 = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		idle, err2 = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
	}); err != nil {
		t.Fatal(err)
	}
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if on != 1 || idle != want {
		t.Fatalf("keepalive %d, idle %d s; want on, idle %d s (the system's)", on, idle, want)
	}
}
