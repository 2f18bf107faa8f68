package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces of the service protocol.
const (
	// NS is the content namespace of a service stream and of its elements.
	NS = "urn:ambrosia:service:0"
	// nsSM carries the acknowledgement counters, as in XEP-0198.
	nsSM = "urn:xmpp:sm:3"
)

// ChunkThreshold is the size above which an event is sent in chunks, so
// that one large stanza does not hold up the small ones behind it.
const ChunkThreshold = 16 << 10

// chunkSize is the payload of one chunk.
const chunkSize = 8 << 10

// Limits bound what a peer may send on a link. Events are larger than
// client stanzas by their envelope; chunks are reassembled up to
// MaxEventBytes.
var linkLimits = xmlstream.Limits{MaxStanzaBytes: 64 << 10, MaxDepth: 40, MaxAttrs: 64, MaxHeaderBytes: 4 << 10}

// MaxEventBytes bounds one reassembled event.
const MaxEventBytes = 1 << 20

// originKey is the context key of the origin id of the event being
// processed.
type originKey struct{}

// withOrigin returns ctx carrying the origin id o.
func withOrigin(ctx context.Context, o string) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// originOf returns the origin id carried by ctx, "" if none.
func originOf(ctx context.Context) string {
	o, _ := ctx.Value(originKey{}).(string)
	return o
}

// header returns a stream header in the link namespace.
func header(to, from, id string) []byte {
	b := []byte("<?xml version='1.0'?><stream:stream xmlns='" + NS + "' xmlns:stream='" + xmlstream.NSStream + "' version='1.0'")
	if to != "" {
		b = append(b, " to='"...)
		b = xmlstream.AppendEscapedAttr(b, to)
		b = append(b, '\'')
	}
	if from != "" {
		b = append(b, " from='"...)
		b = xmlstream.AppendEscapedAttr(b, from)
		b = append(b, '\'')
	}
	if id != "" {
		b = append(b, " id='"+id+"'"...)
	}
	return append(b, '>')
}

// streamError is the closing of a stream with an RFC 6120 stream error.
func streamError(cond, text string) []byte {
	b := []byte("<stream:error><" + cond + " xmlns='" + stanza.NSStreams + "'/>")
	if text != "" {
		b = append(b, "<text xmlns='"+stanza.NSStreams+"'>"...)
		b = xmlstream.AppendEscapedText(b, text)
		b = append(b, "</text>"...)
	}
	return append(b, "</stream:error></stream:stream>"...)
}

// StreamError is a stream error received from or sent to the peer.
type StreamError struct{ Condition, Text string }

func (e *StreamError) Error() string {
	if e.Text == "" {
		return "stream error: " + e.Condition
	}
	return "stream error: " + e.Condition + ": " + e.Text
}

// reader reads top-level elements of a stream from a connection.
type reader struct {
	nc  net.Conn
	p   *xmlstream.Parser
	buf []byte
}

func newReader(nc net.Conn) *reader {
	return &reader{nc: nc, p: xmlstream.NewParser(linkLimits), buf: make([]byte, 32<<10)}
}

// restart makes the reader expect a new stream header on nc.
func (r *reader) restart(nc net.Conn) {
	r.nc = nc
	r.p.Reset()
}

// next returns the next event, reading as needed. A stream error from the
// peer is returned as *StreamError.
func (r *reader) next() (xmlstream.Event, error) {
	for {
		ev, err := r.p.Next()
		if err == nil {
			if ev.Kind == xmlstream.EventElement && ev.Elem.Space == xmlstream.NSStream && ev.Elem.Local == "error" {
				se := &StreamError{Condition: "undefined-condition"}
				for _, c := range ev.Elem.Children() {
					if c.Space == stanza.NSStreams && c.Local != "text" {
						se.Condition = c.Local
					}
					if c.Local == "text" {
						se.Text = c.Text()
					}
				}
				return ev, se
			}
			if ev.Kind == xmlstream.EventStreamEnd {
				return ev, errors.New("link: stream closed by the peer")
			}
			return ev, nil
		}
		if !errors.Is(err, xmlstream.ErrNeedMore) {
			return ev, err
		}
		n, rerr := r.nc.Read(r.buf)
		if n > 0 {
			r.p.Feed(r.buf[:n])
			continue
		}
		if rerr != nil {
			return ev, rerr
		}
	}
}

// element returns the next top-level element, failing on anything else.
func (r *reader) element() (*xmlstream.Element, error) {
	ev, err := r.next()
	if err != nil {
		return nil, err
	}
	if ev.Kind != xmlstream.EventElement {
		return nil, errors.New("link: element expected")
	}
	return ev.Elem, nil
}

// conn writes to one established link. Everything goes through a queue
// drained by one goroutine, so that callers never wait for the network;
// acknowledgements ride along with the next write.
type conn struct {
	nc   net.Conn
	wake chan struct{}
	done chan struct{} // closed when the writer has stopped

	mu      sync.Mutex
	q       [][]byte
	ack     uint64 // h to send
	ackSent uint64
	closed  bool
	final   []byte // written last, before the connection closes
}

func newConn(nc net.Conn) *conn {
	c := &conn{nc: nc, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.writeLoop()
	return c
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// enqueue queues b; it reports false once the connection is closed.
func (c *conn) enqueue(b []byte) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.q = append(c.q, b)
	c.mu.Unlock()
	c.signal()
	return true
}

// setAck makes the writer send <a h='h'/> soon.
func (c *conn) setAck(h uint64) {
	c.mu.Lock()
	if h > c.ack {
		c.ack = h
	}
	c.mu.Unlock()
	c.signal()
}

// forceAck sends the current h even if it was sent before (an answer to <r/>).
func (c *conn) forceAck() {
	c.mu.Lock()
	c.ackSent = 0
	if c.ack == 0 {
		c.q = append(c.q, []byte("<a xmlns='"+nsSM+"' h='0'/>"))
	}
	c.mu.Unlock()
	c.signal()
}

// close ends the connection after writing final (a stream error or the
// stream end), if the writer gets to it within a second.
func (c *conn) close(final []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.final = final
	c.mu.Unlock()
	c.signal()
	select {
	case <-c.done:
	case <-time.After(time.Second):
	}
	c.nc.Close()
}

// kill ends the connection at once, without a goodbye.
func (c *conn) kill() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.nc.Close()
	c.signal()
}

func (c *conn) writeLoop() {
	defer close(c.done)
	var bufs net.Buffers
	for range c.wake {
		for {
			c.mu.Lock()
			q := c.q
			c.q = nil
			if c.ack > c.ackSent {
				q = append(q, []byte("<a xmlns='"+nsSM+"' h='"+strconv.FormatUint(c.ack, 10)+"'/>"))
				c.ackSent = c.ack
			}
			closed, final := c.closed, c.final
			c.final = nil
			c.mu.Unlock()
			if final != nil {
				q = append(q, final)
			}
			if len(q) == 0 {
				if closed {
					return
				}
				break
			}
			bufs = append(bufs[:0], q...)
			_ = c.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := bufs.WriteTo(c.nc); err != nil {
				c.nc.Close()
				c.mu.Lock()
				c.closed = true
				c.q = nil
				c.mu.Unlock()
				return
			}
			if closed {
				return
			}
		}
	}
}

// item is one event in an outbox: its frame, and what the gateway needs
// to send it elsewhere if the link drops.
type item struct {
	seq  uint64
	data []byte
	user string // bare JID the event concerns, for re-dispatch by owner
}

// outbox numbers the events sent in one direction and keeps them until the
// peer acknowledges them. It outlives connections on the service side,
// where a reconnection resumes it.
type outbox struct {
	mu      sync.Mutex
	c       *conn  // nil while disconnected
	ep      uint64 // counts resets
	seq     uint64
	acked   uint64
	unacked []item
	chunker chunker
}

// send numbers data, keeps it and writes it if connected. It returns the
// sequence number.
func (o *outbox) send(data []byte, user string) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seq++
	o.unacked = append(o.unacked, item{seq: o.seq, data: data, user: user})
	if o.c != nil {
		o.writeLocked(data)
	}
	return o.seq
}

// writeLocked writes one event, in chunks when it is large.
func (o *outbox) writeLocked(data []byte) {
	if len(data) <= ChunkThreshold {
		o.c.enqueue(data)
		return
	}
	for _, ch := range o.chunker.split(data) {
		o.c.enqueue(ch)
	}
}

// ack drops the events up to h; it reports a bad h (beyond what was sent).
func (o *outbox) ack(h uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if h > o.seq {
		return fmt.Errorf("link: acknowledged %d of %d events", h, o.seq)
	}
	if h <= o.acked {
		return nil
	}
	o.acked = h
	i := 0
	for i < len(o.unacked) && o.unacked[i].seq <= h {
		i++
	}
	o.unacked = append(o.unacked[:0], o.unacked[i:]...)
	return nil
}

// attach resumes the outbox on c after the peer said it received up to h:
// the rest is written again, in order.
func (o *outbox) attach(c *conn, h uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if h > o.seq {
		return fmt.Errorf("link: peer claims %d of %d events", h, o.seq)
	}
	if h > o.acked {
		o.acked = h
	}
	i := 0
	for i < len(o.unacked) && o.unacked[i].seq <= h {
		i++
	}
	o.unacked = append(o.unacked[:0], o.unacked[i:]...)
	o.c = c
	for _, it := range o.unacked {
		o.writeLocked(it.data)
	}
	return nil
}

// detach forgets the connection and returns the unacknowledged events.
func (o *outbox) detach() []item {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.c = nil
	return append([]item(nil), o.unacked...)
}

// reset forgets everything: the peer that would have received it is gone.
func (o *outbox) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seq, o.acked, o.unacked = 0, 0, nil
	o.ep++
}

// epoch counts resets, so that a position taken before one is known to be
// void.
func (o *outbox) epoch() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ep
}

// state returns the last sequence number sent and acknowledged.
func (o *outbox) state() (sent, acked uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seq, o.acked
}

// chunker splits large events into <chunk/> elements. Chunks of one event
// are consecutive on the wire; the receiver counts the event once it is
// whole.
type chunker struct{ n uint64 }

func (c *chunker) split(data []byte) [][]byte {
	c.n++
	id := strconv.FormatUint(c.n, 10)
	var out [][]byte
	for len(data) > 0 {
		n := min(chunkSize, len(data))
		b := []byte("<chunk id='" + id + "'")
		if n < len(data) {
			b = append(b, " more='1'"...)
		}
		b = append(b, '>')
		b = xmlstream.AppendEscapedText(b, string(data[:n]))
		b = append(b, "</chunk>"...)
		out = append(out, b)
		data = data[n:]
	}
	return out
}

// assembler joins chunks back into an event.
type assembler struct {
	id  string
	buf bytes.Buffer
}

// add takes one chunk; it returns the whole event once the last chunk
// arrived.
func (a *assembler) add(el *xmlstream.Element) (*xmlstream.Element, error) {
	id := el.Attr("id")
	if id == "" {
		return nil, errors.New("link: chunk without id")
	}
	if a.buf.Len() > 0 && id != a.id {
		return nil, errors.New("link: chunks of two events interleaved")
	}
	a.id = id
	a.buf.WriteString(el.Text())
	if a.buf.Len() > MaxEventBytes {
		return nil, errors.New("link: event too large")
	}
	if el.Attr("more") == "1" {
		return nil, nil
	}
	ev, err := xmlstream.ParseStanza(a.buf.Bytes(), NS)
	a.buf.Reset()
	a.id = ""
	if err != nil {
		return nil, fmt.Errorf("link: chunked event: %w", err)
	}
	return ev, nil
}

// parseUint parses a counter attribute.
func parseUint(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("link: missing counter")
	}
	return strconv.ParseUint(s, 10, 64)
}

// frame builds an event frame: <name attrs...>payload</name>. attrs are
// name, value pairs.
func frame(name string, payload *xmlstream.Element, attrs ...string) []byte {
	b := make([]byte, 0, 256)
	b = append(b, '<')
	b = append(b, name...)
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] == "" {
			continue
		}
		b = append(b, ' ')
		b = append(b, attrs[i]...)
		b = append(b, "='"...)
		b = xmlstream.AppendEscapedAttr(b, attrs[i+1])
		b = append(b, '\'')
	}
	if payload == nil {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = payload.AppendXML(b, NS)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}

// payload returns the single child element of an event frame.
func payload(el *xmlstream.Element) *xmlstream.Element {
	for _, c := range el.Children() {
		return c
	}
	return nil
}
