package component

import (
	"context"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
	"github.com/ambrosia-xmpp/ambrosia/internal/privilege"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// readBufSize is the read buffer of a connection; components are few, so
// each keeps its own.
const readBufSize = 16 << 10

// maxBatch bounds how many queued stanzas one vectored write takes.
const maxBatch = 64

// conn is one component connection. The reading goroutine owns the parser
// and the handshake state; everything written goes through q, which only
// the writing goroutine drains, so that a stanza routed to the component
// never waits for its socket.
type conn struct {
	srv    *Server
	nc     net.Conn
	parser *xmlstream.Parser

	// Used by the reading goroutine only.
	id     string // our stream id, the handshake's salt
	domain string // asked for in the stream header
	bound  bool
	grant  *privilege.Grant // the component's privileges once bound, nil for none

	q          chan []byte
	closeCh    chan struct{} // closed when the stream is ending
	writerDone chan struct{}
	opened     atomic.Bool // our stream header is queued

	mu          sync.Mutex
	closing     bool
	cond, text  string    // the stream error to end with ("" for none)
	drain       bool      // write what is queued before the stream end
	closeBy     time.Time // when closing: the deadline of every write
	queuedBytes int
	boundTo     string   // the domain registered with the router, "" if none
	managed     []string // the domains told of the component's privileges
}

var _ router.Component = (*conn)(nil)

func newConn(s *Server, nc net.Conn) *conn {
	return &conn{
		srv:        s,
		nc:         nc,
		parser:     xmlstream.NewParser(s.cfg.Limits),
		q:          make(chan []byte, s.cfg.MaxQueued),
		closeCh:    make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// boundDomain returns the domain the connection serves, "" before the
// handshake and once closing.
func (c *conn) boundDomain() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return ""
	}
	return c.boundTo
}

// HandleStanza implements router.Component: the stanza is serialized on the
// caller's goroutine and queued for the writer.
func (c *conn) HandleStanza(ctx context.Context, s router.Stanza) {
	if !c.send(s.El.AppendXML(nil, xmlstream.NSComponent)) {
		// The component is going away; the sender learns it did not arrive.
		c.srv.deps.Router.Bounce(ctx, s, stanza.ServiceUnavailable, "")
	}
}

// send queues b; it reports false if the stream is closing or the queue
// overflowed, which closes the stream.
func (c *conn) send(b []byte) bool {
	c.mu.Lock()
	ok, overflow := c.sendLocked(b)
	domain := c.boundTo
	c.mu.Unlock()
	if overflow {
		c.srv.log.Warn("component does not read its stanzas", "domain", domain, "remote", c.nc.RemoteAddr().String())
		c.closeNoDrain(xmlstream.CondPolicyViolation, "too many stanzas queued")
	}
	return ok
}

// sendLocked queues b under c.mu.
func (c *conn) sendLocked(b []byte) (ok, overflow bool) {
	if c.closing {
		return false, false
	}
	if c.queuedBytes+len(b) > c.srv.cfg.MaxQueuedBytes {
		return false, true
	}
	select {
	case c.q <- b:
		c.queuedBytes += len(b)
		return true, false
	default:
		return false, true
	}
}

// close ends the stream with a stream error (none if condition is ""),
// after what is queued. It may be called from any goroutine, any number of
// times; the first call wins.
func (c *conn) close(condition, text string) { c.closeWith(condition, text, true) }

// closeNoDrain ends the stream without writing what is queued, for a
// component that does not read.
func (c *conn) closeNoDrain(condition, text string) { c.closeWith(condition, text, false) }

func (c *conn) closeWith(condition, text string, drain bool) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.cond, c.text, c.drain = condition, text, drain
	c.closeBy = time.Now().Add(c.srv.cfg.CloseGrace)
	// A write in progress must not outlive the grace period either.
	_ = c.nc.SetWriteDeadline(c.closeBy)
	domain, managed, grant := c.boundTo, c.managed, c.grant
	c.mu.Unlock()
	if domain != "" {
		// From now on the router answers for the domain.
		c.srv.deps.Router.Unregister(domain, c)
		c.srv.deps.Metrics.ComponentDown()
		c.srv.announce(context.Background(), domain, grant, managed, "unavailable")
	}
	close(c.closeCh)
	// The component has CloseGrace to answer with its stream end.
	_ = c.nc.SetReadDeadline(c.closeBy)
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// serve runs the connection until it ends.
func (c *conn) serve(ctx context.Context) {
	remote := c.nc.RemoteAddr().String()
	go c.writeLoop()
	_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.HandshakeTimeout))
	buf := make([]byte, readBufSize)
	shape := limit.NewBucket(c.srv.cfg.ReadRate, time.Now())
	shaped := false
	for {
		n, err := c.nc.Read(buf)
		if n > 0 && !c.isClosing() {
			c.parser.Feed(buf[:n])
			c.process(ctx)
			if d := shape.Take(n, time.Now()); d > 0 {
				if !shaped {
					shaped = true
					c.srv.deps.Metrics.LimitHit("component", "read rate")
					c.srv.log.Info("read rate limited", "remote", remote, "domain", c.domain, "rate", c.srv.cfg.ReadRate.Bytes)
				}
				time.Sleep(d)
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && !c.isClosing() {
				c.srv.log.Info("handshake timeout", "remote", remote)
				c.close("connection-timeout", "")
				continue
			}
			break
		}
	}
	c.close("", "")
	<-c.writerDone
	c.nc.Close()
	c.parser.Reset()
	if c.bound {
		c.srv.log.Info("component disconnected", "domain", c.domain, "remote", remote)
	}
}

// process handles every complete event the parser holds.
func (c *conn) process(ctx context.Context) {
	for !c.isClosing() {
		ev, err := c.parser.Next()
		if errors.Is(err, xmlstream.ErrNeedMore) {
			return
		}
		if err != nil {
			var xe *xmlstream.Error
			if errors.As(err, &xe) {
				if xe.Condition == xmlstream.CondPolicyViolation {
					c.srv.deps.Metrics.LimitHit("component", xe.Msg)
					c.srv.log.Info("stream closed by a limit", "remote", c.nc.RemoteAddr().String(), "domain", c.domain, "reason", xe.Msg)
				}
				c.close(xe.Condition, xe.Msg)
			} else {
				c.close(xmlstream.CondNotWellFormed, "")
			}
			return
		}
		switch ev.Kind {
		case xmlstream.EventStreamStart:
			c.streamStart(ev.Elem)
		case xmlstream.EventStreamEnd:
			c.close("", "")
		case xmlstream.EventElement:
			if c.bound {
				c.stanza(ctx, ev.Elem)
			} else {
				c.handshake(ctx, ev.Elem)
			}
		}
	}
}

// streamStart answers the component's stream header.
func (c *conn) streamStart(h *xmlstream.Element) {
	if h.Space != xmlstream.NSStream || h.Local != "stream" || c.parser.DefaultNS() != xmlstream.NSComponent {
		c.close("invalid-namespace", "")
		return
	}
	j, err := jid.Parse(h.Attr("to"))
	if err == nil && j.Local() == "" && j.Resource() == "" {
		if _, ok := c.srv.table.Load().secrets[j.Domain()]; ok {
			c.domain = j.Domain()
		}
	}
	if c.domain == "" {
		c.srv.log.Warn("component for an unknown domain", "to", h.Attr("to"), "remote", c.nc.RemoteAddr().String())
		c.close("host-unknown", "")
		return
	}
	c.id = stanza.NewID()
	c.opened.Store(true)
	c.send(header(c.id, c.domain))
}

// header returns our stream header.
func header(id, from string) []byte {
	h := "<?xml version='1.0'?><stream:stream xmlns='" + xmlstream.NSComponent + "' xmlns:stream='" + xmlstream.NSStream + "' id='" + id + "'"
	if from != "" {
		h += " from='" + string(xmlstream.AppendEscapedAttr(nil, from)) + "'"
	}
	return []byte(h + ">")
}

// handshake checks the component's proof of the secret (XEP-0114 §3) and
// binds its domain. A privileged component is then sent its permissions
// and the session managers are told of it.
func (c *conn) handshake(ctx context.Context, el *xmlstream.Element) {
	if el.Space != xmlstream.NSComponent || el.Local != "handshake" {
		c.close("not-authorized", "handshake first")
		return
	}
	// The table of now: a reload may have changed the secret or removed
	// the component since the stream header.
	tab := c.srv.table.Load()
	secret, listed := tab.secrets[c.domain]
	sum := sha1.Sum([]byte(c.id + secret))
	want := hex.EncodeToString(sum[:])
	got := strings.ToLower(strings.TrimSpace(el.Text()))
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 || !listed {
		c.srv.log.Warn("component handshake failed", "domain", c.domain, "remote", c.nc.RemoteAddr().String())
		c.close("not-authorized", "")
		return
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	// Registered and acknowledged under c.mu, so that no routed stanza can
	// be queued before <handshake/>.
	if err := c.srv.deps.Router.Register(c.domain, c); err != nil {
		c.mu.Unlock()
		c.srv.log.Warn("component domain already connected", "domain", c.domain, "remote", c.nc.RemoteAddr().String())
		c.close(stanza.Conflict, "another connection serves this domain")
		return
	}
	c.boundTo = c.domain
	c.sendLocked([]byte("<handshake/>"))
	var managed []string
	if g := tab.grants[c.domain]; g != nil {
		c.grant = g
		// XEP-0356 §4.2: the permissions come first, from each domain
		// whose users they concern.
		managed = c.srv.managedDomains()
		for _, d := range managed {
			c.sendLocked(g.Advertisement(d, c.domain).AppendXML(nil, xmlstream.NSComponent))
		}
		c.managed = managed
	}
	// Components may stay silent for as long as they like; TCP keepalives
	// notice a peer that vanished.
	_ = c.nc.SetReadDeadline(time.Time{})
	c.mu.Unlock()
	c.bound = true
	c.srv.deps.Metrics.ComponentUp()
	if _, ok := c.srv.table.Load().secrets[c.domain]; !ok {
		// Removed by SetComponents while this handshake was checked: it
		// stored the table before looking for connections to close.
		c.close("not-authorized", "the component was removed from the server's configuration")
		return
	}
	if c.grant != nil {
		text, _ := c.grant.MarshalText()
		c.srv.log.Info("component connected", "domain", c.domain, "remote", c.nc.RemoteAddr().String(), "privileges", string(text), "managed", managed)
		c.srv.announce(ctx, c.domain, c.grant, managed, "")
		return
	}
	c.srv.log.Info("component connected", "domain", c.domain, "remote", c.nc.RemoteAddr().String())
}

// stanza checks the addresses of a stanza from the component and routes it.
func (c *conn) stanza(ctx context.Context, el *xmlstream.Element) {
	switch el.Local {
	case stanza.Message, stanza.Presence, stanza.IQ:
	default:
		c.close("unsupported-stanza-type", "")
		return
	}
	if el.Space != xmlstream.NSComponent {
		c.close("unsupported-stanza-type", "")
		return
	}
	fromAttr, toAttr := el.Attr("from"), el.Attr("to")
	if fromAttr == "" || toAttr == "" {
		c.close("improper-addressing", "")
		return
	}
	from, err := jid.Parse(fromAttr)
	if err != nil || from.Domain() != c.domain {
		c.close("invalid-from", "")
		return
	}
	to, err := jid.Parse(toAttr)
	if err != nil {
		if stanza.MayBounce(el) {
			c.send(stanza.ErrorReply(el, stanza.JIDMalformed, "").AppendXML(nil, xmlstream.NSComponent))
		}
		return
	}
	if s := from.String(); s != fromAttr {
		// Recipients see the canonical address.
		el.SetAttr("from", s)
	}
	// The privileges ride along with everything the component sends; the
	// session managers decide what they allow.
	c.srv.deps.Router.Route(ctx, router.Stanza{El: el, From: from, To: to, Grant: c.grant})
}

// writeLoop writes the queue to the socket until the stream ends, then
// writes the stream end.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	bufs := make(net.Buffers, 0, maxBatch)
	for {
		select {
		case b := <-c.q:
			bufs = append(bufs[:0], b)
			n := len(b)
		more:
			for len(bufs) < maxBatch {
				select {
				case b := <-c.q:
					bufs = append(bufs, b)
					n += len(b)
				default:
					break more
				}
			}
			if err := c.write(bufs, n); err != nil {
				c.srv.log.Debug("write", "remote", c.nc.RemoteAddr().String(), "err", err)
				c.closeNoDrain("", "")
				c.nc.Close()
				return
			}
		case <-c.closeCh:
			c.finish()
			return
		}
	}
}

// write writes one batch of n bytes.
func (c *conn) write(bufs net.Buffers, n int) error {
	c.mu.Lock()
	d := c.closeBy
	if !c.closing {
		d = time.Now().Add(c.srv.cfg.WriteTimeout)
	}
	_ = c.nc.SetWriteDeadline(d)
	c.mu.Unlock()
	_, err := bufs.WriteTo(c.nc)
	c.mu.Lock()
	c.queuedBytes -= n
	c.mu.Unlock()
	return err
}

// finish writes what is still queued (unless the component does not read),
// the stream error and the stream end, and half-closes the socket so that
// the component sees the end.
func (c *conn) finish() {
	c.mu.Lock()
	cond, text, drain := c.cond, c.text, c.drain
	c.mu.Unlock()
	var tail net.Buffers
	n := 0
	if drain {
	queued:
		for {
			select {
			case b := <-c.q:
				tail = append(tail, b)
				n += len(b)
			default:
				break queued
			}
		}
	}
	var end []byte
	if !c.opened.Load() {
		// RFC 6120 §4.9.1.2: a stream error needs our stream header first.
		end = header(stanza.NewID(), "")
	}
	if cond != "" {
		end = stanza.AppendStreamError(end, cond, "", text, "")
	}
	end = append(end, "</stream:stream>"...)
	tail = append(tail, end)
	if c.write(tail, n) != nil {
		return
	}
	if t, ok := c.nc.(*net.TCPConn); ok {
		_ = t.CloseWrite()
	}
}
