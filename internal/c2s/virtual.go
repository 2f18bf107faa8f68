package c2s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Sink receives what the server writes on a virtual connection. Its
// methods are called with locks of the connection held: they must not
// block and must not call back into the connection.
type Sink interface {
	// Send takes a piece of the stream: features, a stanza or a nonza,
	// or several in a row. Top-level elements carry their namespace
	// (stanzas have xmlns='jabber:client'), since the carrier's wrapping
	// element has another default. The stream header is not passed on.
	Send(p []byte)
	// End says the stream is over; streamError is the <stream:error/>
	// element that ended it, nil for an orderly end. Nothing follows.
	End(streamError []byte)
}

// VirtualInfo describes the carrier of a virtual connection.
type VirtualInfo struct {
	// Remote is the client's address, for logs and the session manager.
	Remote net.Addr
	// Secure says the carrier is encrypted (HTTPS) or trusted (loopback,
	// a proxy that terminated TLS): SASL is offered at once, PLAIN
	// included, without STARTTLS. Channel binding is never offered, since
	// the requests of one session may come over different TLS connections.
	Secure bool
}

// Virtual is a client connection without a socket of its own, for
// transports such as BOSH (XEP-0206): the transport pushes the client's
// bytes with Feed, on its own goroutine, and gets the server's in its
// Sink. Everything else (negotiation, SASL, binding, Stream Management,
// CSI, limits, routing) is the code that serves TCP connections. It holds
// no goroutine and no read buffer between calls.
type Virtual struct {
	c *conn
}

// virtualConn stands for the socket of a virtual connection.
type virtualConn struct {
	c      *conn
	sink   Sink
	info   VirtualInfo
	mu     sync.Mutex
	closed bool // the sink heard End
	gone   bool // Close was called
}

// OpenVirtual starts a virtual connection; the transport then feeds it a
// stream header and the client's stream. It fails once the server shuts
// down.
func (s *Server) OpenVirtual(ctx context.Context, sink Sink, info VirtualInfo) (*Virtual, error) {
	vc := &virtualConn{sink: sink, info: info}
	c := newConn(s, vc)
	if c.refused != "" {
		// The limits count a BOSH session as a connection of its
		// client, whose address the transport gave.
		s.deps.metrics().LimitHit("c2s", c.refused)
		s.refusals.log(s.log, c.addr, c.refused)
		return nil, fmt.Errorf("c2s: refused by the connection limits: %s", c.refused)
	}
	vc.c = c
	c.virt = vc
	// Writes go straight to the sink: it never blocks, so the backlog of
	// outConn (and its goroutine) has no use.
	c.nc = vc
	if !s.conns.Add(c) {
		return nil, errors.New("c2s: shutting down")
	}
	c.ctx = context.WithValue(ctx, redirectKey{}, c)
	c.parser = xmlstream.NewParser(s.cfg.Limits)
	s.deps.metrics().ClientConnected()
	if d := s.cfg.NegotiationTimeout; d > 0 {
		// As on TCP, where the read deadline does it: a stream must be
		// bound in time, however often its carrier polls.
		time.AfterFunc(d, func() {
			c.rmu.Lock()
			late := !c.finished && c.state != stateSession
			c.rmu.Unlock()
			if late {
				c.closeStream("connection-timeout", "", "")
			}
		})
	}
	return &Virtual{c: c}, nil
}

// Feed hands bytes of the client's stream to the connection, which
// processes every complete element at once, on the caller's goroutine.
// The bytes must end at an element boundary (a BOSH body holds whole
// elements): what is left incomplete ends the stream with
// not-well-formed. Feed reports false once the connection is finished.
func (v *Virtual) Feed(b []byte) bool {
	c := v.c
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.finished {
		return false
	}
	c.parser.Feed(b)
	if !c.process(c.ctx) {
		c.finish()
		return false
	}
	if c.parser.Buffered() > 0 {
		c.fail("not-well-formed", "")
		c.finish()
		return false
	}
	return true
}

// Close ends the stream with a stream error (none if condition is "");
// "connection-timeout" leaves a resumable session (XEP-0198) waiting for
// its client, as when a TCP client vanishes.
func (v *Virtual) Close(condition string) {
	go v.c.closeStream(condition, "", "")
}

// streamNS is the default namespace stanzas are written against: the
// stream's on a socket, none where the carrier wraps them.
func (c *conn) streamNS() string {
	if c.virt != nil {
		return ""
	}
	return xmlstream.NSClient
}

// Write implements net.Conn: the connection writes whole pieces of the
// stream, each in one call, so the header and the end are recognized
// without parsing.
func (vc *virtualConn) Write(p []byte) (int, error) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if vc.closed {
		return 0, net.ErrClosed
	}
	n := len(p)
	if bytes.HasPrefix(p, []byte("<?xml")) {
		// Our stream header: the carrier has its own.
		i := bytes.Index(p, []byte("<stream:stream"))
		if i < 0 {
			return n, nil
		}
		j := bytes.IndexByte(p[i:], '>')
		if j < 0 {
			return n, nil
		}
		p = p[i+j+1:]
	}
	end := bytes.HasSuffix(p, []byte("</stream:stream>"))
	if end {
		p = p[:len(p)-len("</stream:stream>")]
	}
	var streamErr []byte
	if i := bytes.Index(p, []byte("<stream:error")); end && i >= 0 {
		p, streamErr = p[:i], p[i:]
	}
	if len(p) > 0 {
		vc.sink.Send(p)
	}
	if end {
		vc.closed = true
		vc.sink.End(streamErr)
	}
	return n, nil
}

// Close implements net.Conn: it is how the connection ends itself, and
// the finish that follows needs the reading lock, which the caller may
// hold.
func (vc *virtualConn) Close() error {
	vc.mu.Lock()
	first := !vc.gone
	vc.gone = true
	if !vc.closed {
		vc.closed = true
		vc.sink.End(nil)
	}
	vc.mu.Unlock()
	if first {
		go func() {
			c := vc.c
			c.rmu.Lock()
			c.finish()
			c.rmu.Unlock()
		}()
	}
	return nil
}

// Read implements net.Conn; nothing reads a virtual connection.
func (vc *virtualConn) Read([]byte) (int, error) { return 0, errors.New("c2s: virtual connection") }

// LocalAddr implements net.Conn.
func (vc *virtualConn) LocalAddr() net.Addr { return virtualAddr{} }

// RemoteAddr implements net.Conn.
func (vc *virtualConn) RemoteAddr() net.Addr {
	if vc.info.Remote == nil {
		return virtualAddr{}
	}
	return vc.info.Remote
}

// SetDeadline implements net.Conn: the carrier has its own timeouts.
func (vc *virtualConn) SetDeadline(time.Time) error { return nil }

// SetReadDeadline implements net.Conn.
func (vc *virtualConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline implements net.Conn.
func (vc *virtualConn) SetWriteDeadline(time.Time) error { return nil }

type virtualAddr struct{}

func (virtualAddr) Network() string { return "virtual" }
func (virtualAddr) String() string  { return "virtual" }
