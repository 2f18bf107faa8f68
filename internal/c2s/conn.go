package c2s

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"sync"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Negotiation states of a connection.
const (
	stateStart   uint8 = iota // waiting for the stream header
	stateTLS                  // header sent with STARTTLS required
	stateAuth                 // may authenticate
	stateBind                 // authenticated, may bind
	stateSession              // bound
)

// conn is one client connection. Fields used only by the reading goroutine
// need no lock; the output queue and the closed flag are guarded by wmu.
type conn struct {
	srv *Server

	nc     net.Conn        // what we read and write: the socket or TLS on it
	raw    net.Conn        // the socket
	rc     syscall.RawConn // of raw, to wait for readability without a buffer
	rec    *recordConn     // under TLS, what the TLS layer has not consumed
	tls    *tls.Conn
	parser *xmlstream.Parser

	state    uint8
	opened   bool // our stream header is out
	pinged   bool
	failures uint8
	domain   string
	user     jid.JID // bare JID once authenticated
	full     jid.JID // full JID once bound
	sm       router.SessionManager
	sasl     *auth.Exchange
	deadline time.Time

	wmu      sync.Mutex
	out      *[]byte // pooled; nil when nothing is queued
	flushing bool
	closed   bool
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, raw: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
		}
	}
	return c
}

// JID implements router.Session.
func (c *conn) JID() jid.JID { return c.full }

// Deliver implements router.Session.
func (c *conn) Deliver(el *xmlstream.Element) {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return
	}
	if c.out == nil {
		c.out = c.srv.writePool.Get().(*[]byte)
	}
	*c.out = el.AppendXML(*c.out, xmlstream.NSClient)
	c.kickLocked()
}

// sendRaw queues already serialized output.
func (c *conn) sendRaw(b string) {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return
	}
	if c.out == nil {
		c.out = c.srv.writePool.Get().(*[]byte)
	}
	*c.out = append(*c.out, b...)
	c.kickLocked()
}

// kickLocked starts a flush unless one runs; it releases wmu.
func (c *conn) kickLocked() {
	if len(*c.out) > c.srv.cfg.MaxQueuedBytes {
		c.wmu.Unlock()
		c.srv.log.Info("output queue full, closing", "jid", c.full.String())
		c.Close(stanza.PolicyViolation)
		return
	}
	if c.flushing {
		c.wmu.Unlock()
		return
	}
	c.flushing = true
	c.wmu.Unlock()
	go c.flush()
}

// flush writes the queue until it is empty. Stanzas queued meanwhile join
// the next write, so a busy recipient gets batched writes.
func (c *conn) flush() {
	for {
		c.wmu.Lock()
		if c.out == nil || len(*c.out) == 0 || c.closed {
			c.flushing = false
			if c.closed {
				c.releaseOutLocked()
			}
			c.wmu.Unlock()
			return
		}
		b := c.out
		c.out = nil
		c.wmu.Unlock()
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
		_, err := c.nc.Write(*b)
		*b = (*b)[:0]
		if cap(*b) <= 64<<10 {
			c.srv.writePool.Put(b)
		}
		if err != nil {
			c.wmu.Lock()
			c.flushing = false
			c.closed = true
			c.releaseOutLocked()
			c.wmu.Unlock()
			c.raw.Close()
			return
		}
	}
}

func (c *conn) releaseOutLocked() {
	if c.out != nil {
		*c.out = (*c.out)[:0]
		c.srv.writePool.Put(c.out)
		c.out = nil
	}
}

// writeNow writes b synchronously: used during negotiation, when nothing
// else writes to the connection, and before a TLS upgrade, which must not
// start before <proceed/> is on the wire.
func (c *conn) writeNow(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	_, err := c.nc.Write(b)
	return err
}

// Close implements router.Session. It ends the stream on another
// goroutine, so that a caller holding locks never waits for this client's
// socket.
func (c *conn) Close(condition string) {
	go c.closeStream(condition, "")
}

// fail ends the stream with a stream error from the reading goroutine.
func (c *conn) fail(condition, text string) { c.closeStream(condition, text) }

// closeStream writes what is queued, then the stream error (if condition is
// not "") and our stream end, and closes the connection, which makes the
// reading goroutine clean up.
func (c *conn) closeStream(condition, text string) {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return
	}
	c.closed = true
	var tail []byte
	if !c.opened {
		// RFC 6120 §4.9.1.2: a stream error needs our stream header first.
		tail = append(tail, c.header("")...)
	}
	if c.out != nil {
		tail = append(tail, *c.out...)
	}
	c.releaseOutLocked()
	c.wmu.Unlock()
	if condition != "" {
		tail = append(tail, streamError(condition, text)...)
	}
	tail = append(tail, "</stream:stream>"...)
	// A running flush stops after its current write; ours must follow it.
	for i := 0; i < 1000; i++ {
		c.wmu.Lock()
		flushing := c.flushing
		c.wmu.Unlock()
		if !flushing {
			break
		}
		time.Sleep(time.Millisecond)
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.nc.Write(tail)
	c.raw.Close()
}

func streamError(condition, text string) string {
	s := "<stream:error><" + condition + " xmlns='" + stanza.NSStreams + "'/>"
	if text != "" {
		s += "<text xmlns='" + stanza.NSStreams + "'>" + string(xmlstream.AppendEscapedText(nil, text)) + "</text>"
	}
	return s + "</stream:error>"
}

// serve runs the connection until it ends.
func (c *conn) serve(ctx context.Context, direct bool) {
	defer c.cleanup(ctx)
	c.parser = xmlstream.NewParser(c.srv.cfg.Limits)
	c.setDeadline(c.srv.cfg.NegotiationTimeout)
	if direct {
		if err := c.startTLS(ctx); err != nil {
			c.srv.log.Debug("direct tls handshake", "remote", c.raw.RemoteAddr().String(), "err", err)
			c.raw.Close()
			return
		}
	}
	for {
		if err := c.readOnce(); err != nil {
			if c.readError(err) {
				continue
			}
			return
		}
		if !c.process(ctx) {
			return
		}
	}
}

// readOnce waits until the socket has data, then reads it into a pooled
// buffer and feeds the parser. The wait holds no buffer, so an idle
// connection costs only its structs.
func (c *conn) readOnce() error {
	if c.rec == nil || c.rec.Buffered() == 0 {
		if err := c.waitReadable(); err != nil {
			return err
		}
	}
	b := c.srv.readPool.Get().(*[]byte)
	n, err := c.nc.Read(*b)
	if n > 0 {
		c.parser.Feed((*b)[:n])
		if c.state == stateSession {
			c.pinged = false
			c.touchIdle()
		}
	}
	c.srv.readPool.Put(b)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

func (c *conn) waitReadable() error {
	if c.rc == nil {
		return nil
	}
	err := c.rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if e == syscall.EAGAIN || e == syscall.EINTR {
			return false
		}
		return true
	})
	return err
}

func (c *conn) setDeadline(d time.Duration) {
	c.deadline = time.Now().Add(d)
	_ = c.raw.SetReadDeadline(c.deadline)
}

// touchIdle pushes the idle deadline forward, at most once a second: timer
// updates are not free and idle timeouts are minutes long.
func (c *conn) touchIdle() {
	if c.srv.cfg.IdleTimeout <= 0 {
		return
	}
	if time.Until(c.deadline) < c.srv.cfg.IdleTimeout-time.Second {
		c.setDeadline(c.srv.cfg.IdleTimeout)
	}
}

// readError handles a failed read; it reports whether the connection lives
// on (an idle session that was just pinged).
func (c *conn) readError(err error) bool {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.state == stateSession && !c.pinged {
			// Silent for IdleTimeout: ask the client whether it is there.
			c.pinged = true
			c.setDeadline(c.srv.cfg.PingTimeout)
			c.sendRaw("<iq type='get' id='idle-" + stanza.NewID() + "' from='" + c.domain + "'><ping xmlns='urn:xmpp:ping'/></iq>")
			return true
		}
		c.fail("connection-timeout", "")
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET):
		c.raw.Close()
	default:
		c.srv.log.Debug("read", "remote", c.raw.RemoteAddr().String(), "err", err)
		c.raw.Close()
	}
	return false
}

func (c *conn) cleanup(ctx context.Context) {
	c.wmu.Lock()
	c.closed = true
	c.wmu.Unlock()
	c.raw.Close()
	if c.state == stateSession && c.sm != nil {
		c.sm.Unbind(context.WithoutCancel(ctx), c)
	}
	if c.parser != nil {
		c.parser.Reset()
	}
}
