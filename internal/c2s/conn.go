package c2s

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
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

	state      uint8
	opened     bool // our stream header is out
	pinged     bool
	failures   uint8
	redirect   string // see-other-host value learned during authentication
	registered bool   // created an account (XEP-0077): one per connection
	invite     string // token of an invitation checked by <preauth/> (XEP-0445), used at registration
	domain     string
	user       jid.JID // bare JID once authenticated
	full       jid.JID // full JID once bound
	sm         router.SessionManager
	sess       *session // once bound (or resumed)
	sasl       *auth.Exchange
	s2         *sasl2Exchange // a SASL2 authentication in progress
	mech       string         // the mechanism of the last authentication, for metrics
	tried      string         // the account of the last authentication attempt
	deadline   time.Time

	addr    netip.Addr    // the peer's, for the limits
	ticket  *limit.Ticket // its place in the connection limits
	refused string        // why the limits refused it, "" if admitted
	shape   limit.Bucket  // the read rate; used by the reader only
	shaped  bool          // the read rate held it back once: logged

	// Reading is done by the serving goroutine until the session is bound
	// and then, on Linux, by one short-lived goroutine per readiness report
	// of the poller. rmu is held by whichever reads, which orders them.
	ctx      context.Context
	rmu      sync.Mutex
	pollID   uint64
	queued   atomic.Bool // a drain is queued or running: no need for another
	peerGone atomic.Bool // the poller saw the peer close or fail
	finished bool
	lastRead atomic.Int64 // unix nanoseconds; idle checks of polled sessions
	pingedAt atomic.Int64 // when an idle ping went out, 0 if none is pending

	// A connection still negotiating waits for its next bytes in the
	// poller too, parked, so that a silent connection holds no goroutine:
	// readiness (or its deadline, parkUntil) resumes it on a new one. It
	// stays registered from its first wait to its end (an epoll
	// registration and removal per round trip were a tenth of a login's
	// CPU); readiness reported while a goroutine serves it is kept in
	// stirred, which park and handOff look at.
	parking    atomic.Int32 // notParked, parked, resuming or serving
	stirred    atomic.Bool  // readiness reported while not parked
	parkUntil  atomic.Int64 // unix nanoseconds: the negotiation deadline
	pendingTLS bool         // a TLS handshake is due (direct TLS, or after <proceed/>)
	hsDeadline time.Time    // when the TLS handshake must be done

	virt      *virtualConn // what stands for the socket of a virtual connection (virtual.go)
	out       *outConn     // the socket's write side, under TLS too
	wmu       sync.Mutex
	closed    bool   // the stream end is written: nothing may follow
	final     bool   // the stream ended in a way that also ends the session
	inactive  bool   // the client said so (XEP-0352)
	held      []held // what waits for the client to become active
	heldBytes int

	// ws is the WebSocket framing and what else only WebSocket
	// connections need (websocket.go); nil on TCP, which pays a pointer.
	ws *wsState
}

func newConn(s *Server, nc net.Conn) *conn {
	c := newConnNoAdmission(s, nc)
	addr := limit.AddrOf(nc.RemoteAddr())
	t, refused := s.deps.Conns.Admit(addr)
	c.admit(addr, t, refused)
	return c
}

// admitted is newConn for a connection the limits already admitted as
// addr with t: a WebSocket, admitted before its upgrade as its client's
// address (which a trusted proxy may name).
func admitted(s *Server, nc net.Conn, addr netip.Addr, t *limit.Ticket) *conn {
	c := newConnNoAdmission(s, nc)
	c.admit(addr, t, "")
	return c
}

// newConnNoAdmission is a connection on nc before the limits see it.
func newConnNoAdmission(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, raw: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
		}
	}
	maxQueued := s.limits().MaxQueuedBytes
	c.out = &outConn{Conn: nc, rc: c.rc, timeout: s.cfg.WriteTimeout, max: maxQueued, onErr: c.abort, flush: &s.flusher}
	c.nc = c.out
	c.out.onFull = func() {
		// The client stopped reading: nothing more can reach it, not even
		// a stream error.
		s.deps.metrics().LimitHit("c2s", "output queue full")
		s.log.Info("connection ended by a limit", "remote", nc.RemoteAddr().String(), "reason", "output queue full", "max_bytes", maxQueued)
	}
	return c
}

// admit records the connection's place in the limits, and shapes its
// reading unless its address is exempt.
func (c *conn) admit(addr netip.Addr, t *limit.Ticket, refused string) {
	s := c.srv
	c.addr = addr
	if s.deps.Conns == nil {
		c.shape = limit.NewBucket(s.limits().ReadRate, time.Now())
		return
	}
	c.ticket, c.refused = t, refused
	if !c.ticket.Exempt() {
		c.shape = limit.NewBucket(s.limits().ReadRate, time.Now())
	}
	c.ticket.OnEvict(func() {
		// A newcomer from a lighter address took its place.
		s.deps.metrics().LimitHit("c2s", limit.TooManyUnauthenticated)
		s.refusals.log(s.log, c.addr, "evicted: "+limit.TooManyUnauthenticated)
		c.CloseText("policy-violation", limit.TooManyUnauthenticated)
	})
}

// refuse ends a connection the limits refused: on the STARTTLS port with
// a stream error naming the limit, on the direct TLS port (where nothing
// can be said before a handshake the server will not spend) by closing.
// The write cannot wait: the socket's buffer is empty.
func (c *conn) refuse(direct bool) {
	c.srv.deps.metrics().LimitHit("c2s", c.refused)
	c.srv.refusals.log(c.srv.log, c.addr, c.refused)
	if !direct {
		cond := "policy-violation"
		if c.refused == limit.TooManyUnauthenticated {
			cond = "resource-constraint"
		}
		_ = c.raw.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.raw.Write(stanza.AppendStreamError([]byte(c.header("")), cond, "", c.refused, ""))
		_, _ = c.raw.Write([]byte("</stream:stream>"))
	}
	c.raw.Close()
	c.srv.conns.Remove(c)
}

// deliver writes a stanza of a session without Stream Management: it is
// serialized at once and written from the caller's goroutine, or with bulk
// by the server's flushers; the write never waits for the client (see
// outConn).
func (c *conn) deliver(el *xmlstream.Element, bulk bulkWrite) {
	b := c.srv.writePool.Get().(*[]byte)
	*b = el.AppendXML((*b)[:0], c.streamNS())
	c.wmu.Lock()
	c.out.setBulk(bulk)
	c.sendLocked(el, *b, false)
	c.out.setBulk(bulkWrite{})
	c.wmu.Unlock()
	if cap(*b) <= 64<<10 {
		c.srv.writePool.Put(b)
	}
}

// deliverBytes writes el, serialized as b, which the caller keeps until
// the client acknowledges it. It reports whether b went out now rather
// than being held for an inactive client.
func (c *conn) deliverBytes(el *xmlstream.Element, b []byte, bulk bulkWrite) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.out.setBulk(bulk)
	defer c.out.setBulk(bulkWrite{})
	return c.sendLocked(el, b, true)
}

// sendLocked writes b, or holds it while the client is inactive; c.wmu is
// held. counted says the stanza carries a Stream Management sequence
// number: b is then owned by the caller, and held presence must not be
// replaced by a newer one, which would leave a number unsent.
func (c *conn) sendLocked(el *xmlstream.Element, b []byte, counted bool) bool {
	switch {
	case c.closed:
		return false
	case c.inactive && canWait(el):
		c.holdLocked(el, b, counted)
		return false
	default:
		c.flushHeldLocked()
		_, _ = c.nc.Write(b)
		return true
	}
}

// write sends b unless the stream is closed. wmu orders it with the stream
// end.
func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	_, err := c.nc.Write(b)
	return err
}

// abort makes the reader see the end of the connection, which then cleans
// up and closes it. Only the reader closes the socket: closing it here
// would drop a polled session silently, since closing a descriptor also
// discards its pending epoll events.
func (c *conn) abort() {
	if t, ok := c.raw.(*net.TCPConn); ok {
		if t.CloseRead() == nil {
			return
		}
		// The peer is gone already (a reset): read the error ourselves, in
		// case the poller's report of it came and went.
		if c.parking.CompareAndSwap(parked, resuming) {
			go c.unpark()
		} else {
			go c.ready()
		}
		return
	}
	c.raw.Close()
}

// Close ends the stream with a stream error on another goroutine, so that
// a caller holding locks never waits for this client's socket.
func (c *conn) Close(condition string) {
	go c.closeStream(condition, "", "")
}

// CloseText is Close with a text in the stream error.
func (c *conn) CloseText(condition, text string) {
	go c.closeStream(condition, text, "")
}

// fail ends the stream with a stream error from the reading goroutine.
func (c *conn) fail(condition, text string) { c.closeStream(condition, text, "") }

// closeStream writes the stream error (if condition is not "", with
// extra, already serialized application-specific elements) and our stream
// end after whatever is queued, and makes the reader close the connection.
func (c *conn) closeStream(condition, text, extra string) {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return
	}
	// A session survives its stream only when the client seems gone
	// (XEP-0198 resumption): an orderly end or a stream error ends it.
	c.final = condition != "connection-timeout"
	var tail []byte
	if !c.opened {
		// RFC 6120 §4.9.1.2: a stream error needs our stream header first.
		tail = append(tail, c.header("")...)
	}
	if condition != "" {
		// A condition with a value ("see-other-host=host:port") carries it.
		cond, value, _ := strings.Cut(condition, "=")
		if c.ws != nil && cond == "see-other-host" {
			// RFC 7395 §3.6.1: the redirection goes into <close/>.
			c.ws.w.seeOther = c.ws.redirect(value)
		} else {
			tail = stanza.AppendStreamError(tail, cond, value, text, extra)
		}
	}
	tail = append(tail, "</stream:stream>"...)
	_, _ = c.nc.Write(tail)
	c.closed = true
	c.wmu.Unlock()
	c.out.waitIdle(time.Second)
	c.abort()
}

// Parking states of a connection. A bound session in the poller is
// notParked, and so is a negotiation that never waited.
const (
	notParked int32 = iota
	parked          // waiting in the poller for bytes or its deadline
	resuming        // the poller is handing it back to a goroutine
	serving         // registered with the poller, served by a goroutine
)

// serve runs the connection: negotiation and, where the poller is not
// available, the whole session. Once the session is bound and nothing is
// buffered it hands the connection to the poller and returns, so that an
// idle session holds no goroutine; a negotiating connection waiting for
// bytes is parked there too.
func (c *conn) serve(ctx context.Context, direct bool) {
	ctx = context.WithValue(ctx, redirectKey{}, c)
	c.ctx = ctx
	c.srv.deps.metrics().ClientConnected()
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.parser = xmlstream.NewParser(c.srv.preAuthLimits())
	c.setDeadline(c.srv.authTimeout())
	if direct {
		// From the connection on: waiting for the ClientHello is part of
		// the handshake.
		c.hsDeadline = c.tlsDeadline()
		c.pendingTLS = true
	}
	c.run(false)
}

// unpark takes a parked connection back from the poller and serves it on
// this goroutine.
func (c *conn) unpark() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.pendingTLS && !c.finished && time.Now().Before(c.hsDeadline) && !c.helloReady() {
		// Part of a ClientHello: back to waiting, still registered, so
		// that only new bytes report again (adding the socket anew would
		// report the bytes already there, at once and forever).
		c.parking.Store(parked)
		if !c.helloReady() || !c.parking.CompareAndSwap(parked, resuming) {
			// The rest of it arriving meanwhile reported as parked.
			return
		}
	}
	c.parking.Store(serving)
	if c.finished {
		return
	}
	c.run(true)
}

// mayPark reports whether the connection can wait for its next bytes in
// the poller: nothing is buffered that needs no more bytes to be read.
func (c *conn) mayPark() bool {
	return c.state != stateSession && c.srv.poller != nil && c.rc != nil && (c.rec == nil || c.rec.Buffered() == 0)
}

// park hands a negotiating connection to the poller until it is readable
// or its deadline passes; it reports false if the poller refused it, or
// if what the connection waits for (ready) came while it was served:
// the goroutine then serves on. Readiness already there when it is first
// added is reported at once; later, the poller records readiness that it
// reports while the connection is served (stirred) before it looks
// whether the connection is parked, and park looks at stirred after it
// parked, so that between them one of the two sees every report.
func (c *conn) park(ready func() bool) bool {
	until := c.deadline
	if c.pendingTLS {
		until = c.hsDeadline
	}
	c.parkUntil.Store(until.UnixNano())
	if c.pollID == 0 {
		c.parking.Store(parked)
		if err := c.srv.poller.add(c); err != nil {
			c.parking.Store(notParked)
			return false
		}
		return true
	}
	for {
		c.parking.Store(parked)
		if !c.stirred.Swap(false) {
			return true
		}
		if !c.parking.CompareAndSwap(parked, serving) {
			return true // the poller resumed it meanwhile
		}
		if ready() {
			return false
		}
	}
}

// readable reports whether the socket has bytes, an end or an error to
// read, without waiting.
func (c *conn) readable() bool {
	ready := true
	_ = c.rc.Control(func(fd uintptr) { ready = peek(fd) })
	return ready
}

// peek reports whether fd has bytes, an end or an error to read, without
// reading them or waiting.
func peek(fd uintptr) bool {
	var b [1]byte
	_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return e != syscall.EAGAIN && e != syscall.EINTR
}

// run serves the connection from where it stands, with c.rmu held; a
// connection with a TLS handshake due (direct TLS, or STARTTLS after
// <proceed/>) starts with it. resumed says the poller just reported it
// readable: no parking before a first read.
func (c *conn) run(resumed bool) {
	ctx := c.ctx
	if c.ws != nil && c.ws.pre != nil {
		// Bytes that came with the WebSocket upgrade.
		pre := c.ws.pre
		c.ws.pre = nil
		c.feed(pre)
		if !c.process(ctx) {
			c.finish()
			return
		}
	}
	for {
		if c.pendingTLS {
			// Parked until the client's first TLS record is all there: a
			// half-open handshake then waits without a goroutine, which
			// the blocking handshake would hold until its timeout.
			if c.mayPark() && (!resumed || !c.helloReady()) && time.Now().Before(c.hsDeadline) && c.park(c.helloReady) {
				return
			}
			resumed = false
			c.pendingTLS = false
			if err := c.startTLS(ctx); err != nil {
				c.srv.log.Debug("tls handshake", "remote", c.remote(), "err", err)
				c.finish()
				return
			}
			continue
		}
		if !resumed && c.mayPark() && c.park(c.readable) {
			return
		}
		reported := resumed
		resumed = false
		if err := c.readOnce(reported); err != nil {
			if c.readError(err) {
				continue
			}
			c.finish()
			return
		}
		if !c.process(ctx) {
			c.finish()
			return
		}
		if c.state == stateSession && c.srv.poller != nil && c.rc != nil && (c.rec == nil || c.rec.Buffered() == 0) {
			if c.handOff() {
				return
			}
		}
	}
}

// handOff registers the session with the poller; it reports false if the
// poller refused it and the goroutine must keep serving.
func (c *conn) handOff() bool {
	_ = c.raw.SetReadDeadline(time.Time{})
	c.lastRead.Store(time.Now().UnixNano())
	if c.rec != nil {
		c.rec.read = c.readRaw
	}
	if c.pollID != 0 {
		// Registered since the negotiation's first wait: a session from
		// now on, drained on readiness. What was reported while the
		// negotiation was served is drained now: notParked is stored
		// before stirred is looked at, as in park, so that either this
		// or the poller (poller.report) drains it.
		c.parking.Store(notParked)
		if c.stirred.Swap(false) {
			c.srv.poller.queue(c)
		}
		return true
	}
	if err := c.srv.poller.add(c); err != nil {
		if c.rec != nil {
			c.rec.read = c.raw.Read
		}
		c.setDeadline(c.srv.cfg.IdleTimeout)
		return false
	}
	return true
}

// ready drains a polled connection that the poller reported readable.
func (c *conn) ready() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	// Cleared before reading: data arriving from now on queues another
	// drain, so none is missed.
	c.queued.Store(false)
	if c.finished || c.pollID == 0 || c.parking.Load() != notParked {
		// Finished, still served by its own goroutine, or a parked
		// negotiation, which unpark serves.
		return
	}
	for {
		n, drained, err := c.readNow()
		if n > 0 {
			c.lastRead.Store(time.Now().UnixNano())
			c.pingedAt.Store(0)
			if !c.process(c.ctx) {
				c.finish()
				return
			}
			if d := c.throttle(n); d > 0 {
				// Over its read rate: the next drain comes when the rate
				// allows, not with the next bytes. queued stays set so
				// that the poller queues none meanwhile; what arrives is
				// read then, since the drain reads until the socket is
				// empty.
				c.queued.Store(true)
				time.AfterFunc(d, c.ready)
				return
			}
			if !drained || c.peerGone.Load() {
				continue
			}
			// The socket had no more; whatever arrives next reports anew,
			// so there is no need for a read that would say EAGAIN.
			return
		}
		if errors.Is(err, errWouldBlock) {
			return
		}
		if err == nil {
			continue // a TLS record with no application data
		}
		c.readError(err)
		c.finish()
		return
	}
}

// readNow reads what the socket holds without waiting, and feeds it to the
// parser; drained reports that the socket is known to be empty now. It
// returns errWouldBlock when there was nothing.
func (c *conn) readNow() (n int, drained bool, err error) {
	b := c.srv.readPool.Get().(*[]byte)
	if c.tls != nil {
		n, err = c.tls.Read(*b)
		drained = c.rec.short && c.rec.Buffered() == 0
	} else {
		n, err = c.readRaw(*b)
		drained = n < len(*b)
	}
	if n > 0 {
		c.feed((*b)[:n])
	}
	c.srv.readPool.Put(b)
	return n, drained, err
}

// readRaw reads from the socket without waiting.
func (c *conn) readRaw(p []byte) (int, error) {
	var n int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case rerr == syscall.EAGAIN || rerr == syscall.EINTR:
		return 0, errWouldBlock
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// errWouldBlock says a polled socket has nothing to read. It is a
// temporary timeout for crypto/tls, which then keeps its state intact.
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "c2s: would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

// checkIdle runs from the poller's sweep: it pings a polled session silent
// for IdleTimeout and closes it when the ping stays unanswered.
func (c *conn) checkIdle(now time.Time) {
	switch c.parking.Load() {
	case parked:
		// A negotiation past its deadline: resumed, its read fails and
		// closes the stream with connection-timeout.
		if now.UnixNano() > c.parkUntil.Load() && c.parking.CompareAndSwap(parked, resuming) {
			go c.unpark()
		}
		return
	case resuming, serving:
		return
	}
	cfg := &c.srv.cfg
	if cfg.IdleTimeout <= 0 {
		return
	}
	if p := c.pingedAt.Load(); p != 0 {
		if now.UnixNano()-p > int64(cfg.PingTimeout) {
			go c.closeStream("connection-timeout", "", "")
		}
		return
	}
	if now.UnixNano()-c.lastRead.Load() > int64(cfg.IdleTimeout) {
		c.pingedAt.Store(now.UnixNano())
		c.sendPing()
	}
}

// sendPing asks a bound client whether it is still there. The ping goes
// through the session like any stanza, so that Stream Management counts
// it.
func (c *conn) sendPing() {
	iq := xmlstream.NewElement(xmlstream.NSClient, stanza.IQ)
	iq.SetAttr("type", "get")
	iq.SetAttr("id", "idle-"+stanza.NewID())
	iq.SetAttr("from", c.domain)
	iq.AddChild(xmlstream.NewElement("urn:xmpp:ping", "ping"))
	c.sess.Deliver(iq)
}

// finish ends the connection's life in the server: the session manager
// learns the session is gone, the socket is closed and forgotten.
func (c *conn) finish() {
	if c.finished {
		return
	}
	c.finished = true
	c.ticket.Release()
	c.srv.deps.metrics().ClientDisconnected()
	if c.pollID != 0 {
		c.srv.poller.remove(c)
	}
	c.cleanup()
	c.srv.conns.Remove(c)
}

// readOnce waits until the socket has data, then reads it into a pooled
// buffer and feeds the parser. The wait holds no buffer, so an idle
// connection costs only its structs. reported says the poller just
// reported the socket readable (or its deadline passed): no wait.
func (c *conn) readOnce(reported bool) error {
	if !reported && (c.rec == nil || c.rec.Buffered() == 0) {
		if err := c.waitReadable(); err != nil {
			return err
		}
	}
	b := c.srv.readPool.Get().(*[]byte)
	n, err := c.nc.Read(*b)
	if n > 0 {
		c.feed((*b)[:n])
		if c.state == stateSession {
			c.pinged = false
			c.touchIdle()
		}
	}
	c.srv.readPool.Put(b)
	if n > 0 {
		if d := c.throttle(n); d > 0 {
			// The bytes read are processed; the next read waits.
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-c.ctx.Done():
			}
		}
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
	return c.rc.Read(peek)
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
			c.sendPing()
			return true
		}
		if c.state < stateBind {
			// Not authenticated in time: a limit like the others.
			c.srv.deps.metrics().LimitHit("c2s", AuthTimedOut)
			c.srv.refusals.log(c.srv.log, c.addr, AuthTimedOut)
			c.fail("connection-timeout", AuthTimedOut)
			return false
		}
		c.fail("connection-timeout", "")
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET):
		c.raw.Close()
	default:
		c.srv.log.Debug("read", "remote", c.remote(), "err", err)
		c.raw.Close()
	}
	return false
}

func (c *conn) cleanup() {
	c.wmu.Lock()
	c.closed = true
	final := c.final
	c.wmu.Unlock()
	c.raw.Close()
	if c.sess != nil {
		// Unbound, or detached to wait for a resumption.
		c.sess.transportGone(c, final)
	}
	if c.parser != nil {
		c.parser.Reset()
	}
}
