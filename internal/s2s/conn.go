package s2s

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// readBufSize is the read buffer of one server stream.
const readBufSize = 16 << 10

// writeTimeout bounds one write to a peer that does not read.
const writeTimeout = 30 * time.Second

// xconn is a server stream on a socket: a blocking reader of stream
// events, used by one goroutine, and a writer safe for concurrent use.
type xconn struct {
	nc  net.Conn
	tls *tls.Conn // set once TLS is up
	p   *xmlstream.Parser
	buf []byte
	// streamID is the id of the peer's stream header, once read.
	streamID string
	// sm says stream management acknowledgements are on (outgoing
	// streams; set during negotiation).
	sm bool
	// shape is the read rate; onShaped is called the first time it
	// holds the stream back.
	shape    limit.Bucket
	onShaped func()

	wmu sync.Mutex
}

func newXConn(nc net.Conn, lim xmlstream.Limits) *xconn {
	return &xconn{nc: nc, p: xmlstream.NewParser(lim), buf: make([]byte, readBufSize)}
}

// next returns the next stream event, reading as needed.
func (c *xconn) next() (xmlstream.Event, error) {
	for {
		ev, err := c.p.Next()
		if err == nil || !errors.Is(err, xmlstream.ErrNeedMore) {
			return ev, err
		}
		n, rerr := c.nc.Read(c.buf)
		if n > 0 {
			c.p.Feed(c.buf[:n])
			if d := c.shape.Take(n, time.Now()); d > 0 {
				// At most a buffer's worth over the rate: a short wait.
				if c.onShaped != nil {
					c.onShaped()
					c.onShaped = nil
				}
				time.Sleep(d)
			}
			continue
		}
		if rerr != nil {
			return ev, rerr
		}
	}
}

// nextElement returns the next top-level element; a stream end or a
// stream error from the peer is an error.
func (c *xconn) nextElement() (*xmlstream.Element, error) {
	for {
		ev, err := c.next()
		if err != nil {
			return nil, err
		}
		switch ev.Kind {
		case xmlstream.EventStreamEnd:
			return nil, errPeerClosed
		case xmlstream.EventElement:
			if ev.Elem.Space == xmlstream.NSStream && ev.Elem.Local == "error" {
				return nil, &peerStreamError{cond: streamErrorCondition(ev.Elem)}
			}
			return ev.Elem, nil
		}
	}
}

// write writes b, bounded by writeTimeout.
func (c *xconn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.nc.Write(b)
	return err
}

// writeWithin writes b, bounded by d: for the end of a stream, which must
// not hold up a shutdown.
func (c *xconn) writeWithin(b []byte, d time.Duration) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(d))
	_, err := c.nc.Write(b)
	return err
}

// writeBuffers writes several serialized stanzas at once.
func (c *xconn) writeBuffers(bufs net.Buffers) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := bufs.WriteTo(c.nc)
	return err
}

// upgrade replaces the socket with t and expects a new stream header.
func (c *xconn) upgrade(t *tls.Conn) {
	c.nc, c.tls = t, t
	c.p.Reset()
}

// fail writes a stream error (none when cond is "") and the stream end,
// and closes the socket. header is written first when our stream header
// has not been sent yet (RFC 6120 §4.9.1.2).
func (c *xconn) fail(header []byte, cond, text string) {
	b := append([]byte(nil), header...)
	if cond != "" {
		b = stanza.AppendStreamError(b, cond, "", text, "")
	}
	b = append(b, "</stream:stream>"...)
	c.wmu.Lock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, _ = c.nc.Write(b)
	c.wmu.Unlock()
	c.nc.Close()
}

// streamHeader is the header of a server stream we open or answer.
func streamHeader(from, to, id string) []byte {
	b := []byte("<?xml version='1.0'?><stream:stream xmlns='" + xmlstream.NSServer + "' xmlns:stream='" + xmlstream.NSStream + "' xmlns:db='" + NSDialback + "' version='1.0'")
	attr := func(k, v string) {
		if v != "" {
			b = append(b, " "+k+"='"...)
			b = xmlstream.AppendEscapedAttr(b, v)
			b = append(b, '\'')
		}
	}
	attr("from", from)
	attr("to", to)
	attr("id", id)
	return append(b, '>')
}

// errPeerClosed is a stream the peer ended.
var errPeerClosed = errors.New("stream closed by the peer")

// peerStreamError is a stream error the peer sent.
type peerStreamError struct{ cond string }

func (e *peerStreamError) Error() string { return "peer stream error: " + e.cond }

// streamErrorCondition returns the condition of a <stream:error/>.
func streamErrorCondition(el *xmlstream.Element) string {
	for c := range el.ChildElements {
		if c.Space == stanza.NSStreams && c.Local != "text" {
			return c.Local
		}
	}
	return "undefined-condition"
}

// shape puts the read rate on c unless its peer is exempt.
func (s *Service) shape(c *xconn) {
	if s.cfg.ReadRate.Bytes <= 0 || s.cfg.ReadRateExempt.Contains(limit.AddrOf(c.nc.RemoteAddr())) {
		return
	}
	c.shape = limit.NewBucket(s.cfg.ReadRate, time.Now())
	c.onShaped = func() {
		s.metrics.LimitHit("s2s", "read rate")
		s.log.Info("read rate limited", "remote", c.nc.RemoteAddr().String(), "rate", s.cfg.ReadRate.Bytes)
	}
}

// refusalLog logs refused streams without letting a flood of them flood
// the log: the first of a second is logged, with how many went unlogged
// before it.
type refusalLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (r *refusalLog) log(log *slog.Logger, remote, reason string) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < time.Second {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	log.Info("connection refused", "remote", remote, "reason", reason, "unlogged_refusals", n)
}
