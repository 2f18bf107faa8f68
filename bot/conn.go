package bot

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// readBufSize is what one read takes from the socket.
const readBufSize = 16 << 10

// maxStanzaBytes bounds one stanza from the server. Servers bound what
// their users send well below it.
const maxStanzaBytes = 1 << 20

// conn is one connection to the server: the socket, the parser, and the
// state of Stream Management on this stream.
type conn struct {
	addr   string
	direct bool
	raw    net.Conn // the TCP connection
	nc     net.Conn // raw, or TLS over it
	tls    *tls.ConnectionState
	p      *xmlstream.Parser
	buf    []byte

	// sm is set once Stream Management is enabled or resumed on this
	// stream: stanzas are counted both ways from then on.
	sm bool

	lastRead  atomic.Int64 // unix nanoseconds of the last bytes read
	ackAsked  atomic.Bool  // the server asked for an <a/>
	ackDue    atomic.Bool  // stanzas arrived since the last <a/>
	requested atomic.Bool  // an <r/> is out and not answered yet

	once   sync.Once
	done   chan struct{} // closed when the connection ends
	err    error         // why, set before done is closed
	ended  atomic.Bool   // the server ended its stream
	closed atomic.Bool   // the bot ended its stream
}

func newConn(raw net.Conn, addr string, direct bool) *conn {
	l := xmlstream.DefaultLimits()
	l.MaxStanzaBytes = maxStanzaBytes
	c := &conn{addr: addr, direct: direct, raw: raw, nc: raw, p: xmlstream.NewParser(l),
		buf: make([]byte, readBufSize), done: make(chan struct{})}
	c.lastRead.Store(time.Now().UnixNano())
	return c
}

// fail ends the connection for err; the first reason wins.
func (c *conn) fail(err error) {
	c.once.Do(func() {
		c.err = err
		c.raw.Close()
		close(c.done)
	})
}

// write writes b within timeout.
func (c *conn) write(b []byte, timeout time.Duration) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.nc.Write(b)
	return err
}

// StreamError is a stream error (RFC 6120 §4.9) the server ended the
// connection with. The bot logs it and connects again, except for the
// conditions that say it never will succeed (see Run).
type StreamError struct {
	// Condition is the defined condition, such as conflict or
	// system-shutdown.
	Condition string
	// Text is the server's explanation, if any.
	Text string
	// Value is the content of the condition element: the new address of
	// see-other-host.
	Value string
}

// Error implements the error interface.
func (e *StreamError) Error() string {
	s := "stream error: " + e.Condition
	if e.Value != "" {
		s += " " + e.Value
	}
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// errStreamEnd is the server closing its stream.
var errStreamEnd = errors.New("the server closed the stream")

// event returns the next parser event, reading as needed.
func (c *conn) event() (xmlstream.Event, error) {
	for {
		ev, err := c.p.Next()
		if err == nil {
			return ev, nil
		}
		if !errors.Is(err, xmlstream.ErrNeedMore) {
			return ev, err
		}
		n, err := c.nc.Read(c.buf)
		if n > 0 {
			c.lastRead.Store(time.Now().UnixNano())
			c.p.Feed(c.buf[:n])
			continue
		}
		if err == nil {
			err = errors.New("empty read")
		}
		return ev, err
	}
}

// next returns the next top-level element. A stream error, the end of the
// stream or a new stream header is an error.
func (c *conn) next() (*xmlstream.Element, error) {
	ev, err := c.event()
	if err != nil {
		return nil, err
	}
	switch ev.Kind {
	case xmlstream.EventStreamEnd:
		c.ended.Store(true)
		return nil, errStreamEnd
	case xmlstream.EventElement:
		if ev.Elem.Space == xmlstream.NSStream && ev.Elem.Local == "error" {
			return nil, readStreamError(ev.Elem)
		}
		return ev.Elem, nil
	}
	return nil, errors.New("unexpected stream header")
}

func readStreamError(el *xmlstream.Element) *StreamError {
	se := &StreamError{Condition: "undefined-condition"}
	for c := range el.ChildElements {
		if c.Space != stanza.NSStreams {
			continue
		}
		if c.Local == "text" {
			se.Text = c.Text()
		} else {
			se.Condition, se.Value = c.Local, strings.TrimSpace(c.Text())
		}
	}
	return se
}

// streamHeader opens a stream to domain, from the account once the
// stream is encrypted (RFC 6120 §4.7.1).
func streamHeader(domain, from string) []byte {
	h := "<?xml version='1.0'?><stream:stream to='" + string(xmlstream.AppendEscapedAttr(nil, domain)) + "'"
	if from != "" {
		h += " from='" + string(xmlstream.AppendEscapedAttr(nil, from)) + "'"
	}
	return []byte(h + " version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
}

// open sends a stream header and returns the features that follow.
func (c *conn) open(a *account) (*xmlstream.Element, error) {
	from := ""
	if c.tls != nil {
		from = a.bare.String()
	}
	if err := c.write(streamHeader(a.domain, from), a.Timeout); err != nil {
		return nil, err
	}
	ev, err := c.event()
	if err != nil {
		return nil, err
	}
	if ev.Kind != xmlstream.EventStreamStart {
		return nil, errors.New("expected a stream header")
	}
	if v := ev.Elem.Attr("version"); v != "1.0" {
		return nil, fmt.Errorf("stream version %q, want 1.0", v)
	}
	el, err := c.next()
	if err != nil {
		return nil, err
	}
	if el.Space != xmlstream.NSStream || el.Local != "features" {
		return nil, fmt.Errorf("expected stream features, got <%s/>", el.Local)
	}
	return el, nil
}

// startTLS upgrades the connection with STARTTLS.
func (c *conn) startTLS(ctx context.Context, a *account) error {
	if err := c.write([]byte("<starttls xmlns='"+stanza.NSTLS+"'/>"), a.Timeout); err != nil {
		return err
	}
	el, err := c.next()
	if err != nil {
		return err
	}
	if el.Local != "proceed" {
		return fmt.Errorf("starttls refused: <%s/>", el.Local)
	}
	return c.handshake(ctx, a.tlsConfig(false))
}

// handshake runs the TLS handshake over the socket.
func (c *conn) handshake(ctx context.Context, cfg *tls.Config) error {
	t := tls.Client(c.raw, cfg)
	if err := t.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	cs := t.ConnectionState()
	c.nc, c.tls = t, &cs
	c.p.Reset()
	return nil
}

// closeStream ends the bot's side of the stream and waits, at most
// timeout, for the server's end; then it closes the connection.
func (c *conn) closeStream(timeout time.Duration, tail []byte) {
	if c.closed.Swap(true) {
		return
	}
	_ = c.write(append(tail, "</stream:stream>"...), timeout)
	select {
	case <-c.done:
	case <-time.After(timeout):
	}
	c.fail(errors.New("closed"))
}
