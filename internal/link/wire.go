package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
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
	return append(stanza.AppendStreamError(nil, cond, "", text, ""), "</stream:stream>"...)
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
//
// Large events go out one chunk per round of the writer, between the
// small frames queued meanwhile: one big stanza delays the others by a
// chunk, not by its whole size. Order is kept per lane (a user or a
// session): a frame waits for the unfinished large event before it in its
// lane. Since events then complete on the wire in another order than they
// were queued, the conn records the order in which counted events
// completed, which is what the peer's counter h counts.
type conn struct {
	nc   net.Conn
	wake chan struct{}
	done chan struct{} // closed when the writer has stopped

	mu sync.Mutex
	q  []*outFrame
	// urgent frames (requests and their answers, which keep no order)
	// go out at the start of the next round, ahead of the queue.
	urgent  [][]byte
	ack     uint64 // h to send
	ackSent uint64
	fin     uint64 // h of <done/> to send (see setDone)
	finSent uint64
	closed  bool
	final   []byte // written last, before the connection closes
	// base is the number of events the peer had received before this
	// connection; wired are the sequence numbers of the counted events
	// completed on this connection, in wire order, from base+1 on, less
	// the trimmed ones (the first trimmed were acknowledged).
	base    uint64
	trimmed uint64
	wired   []uint64
	// got is how many events the peer said it received (<a h=''/>);
	// wired keeps the received ones until the peer says they are done.
	got uint64
}

// outFrame is one frame waiting in a conn's queue.
type outFrame struct {
	data    []byte   // a small frame
	chunks  [][]byte // or the chunks of a large event still to write
	lane    string   // "" for frames that keep no order (acknowledgements, answers)
	seq     uint64   // outbox sequence number of a counted event, else 0
	barrier bool     // written only after everything before it
	after   func()   // run once the frame is written, or will never be
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

// enqueue queues b, a frame outside any lane; it reports false once the
// connection is closed.
func (c *conn) enqueue(b []byte) bool { return c.push(&outFrame{data: b}) }

// enqueueUrgent queues b, a frame outside any lane, ahead of everything
// queued: a credential lookup or its answer does not wait for a long run
// of events (a failover's session announcements) to be written.
func (c *conn) enqueueUrgent(b []byte) bool {
	return c.add(func() { c.urgent = append(c.urgent, b) })
}

// enqueueBarrier queues b to be written after everything queued before
// it, and before everything queued after it.
func (c *conn) enqueueBarrier(b []byte) bool { return c.push(&outFrame{data: b, barrier: true}) }

// enqueueThen queues b like enqueue and runs after once b is written to
// the socket, or at once if the connection is closed, or when it closes
// before b went out: something waits for the peer to have b first.
func (c *conn) enqueueThen(b []byte, after func()) {
	if !c.push(&outFrame{data: b, after: after}) {
		after()
	}
}

func (c *conn) push(f *outFrame) bool {
	return c.add(func() { c.q = append(c.q, f) })
}

// add runs queue with c.mu held and wakes the writer; it reports false,
// without running queue, once the connection is closed.
func (c *conn) add(queue func()) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	queue()
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

// setDone makes the writer send <done h='h'/> soon: the first h events
// received are done with (a gateway: delivered and acknowledged by the
// clients, see glink.release).
func (c *conn) setDone(h uint64) {
	c.mu.Lock()
	if h > c.fin {
		c.fin = h
	}
	c.mu.Unlock()
	c.signal()
}

// forceAck sends the current h even if it was sent before (an answer to <r/>).
func (c *conn) forceAck() {
	c.mu.Lock()
	c.ackSent = 0
	if c.ack == 0 {
		c.q = append(c.q, &outFrame{data: []byte("<a xmlns='" + nsSM + "' h='0'/>")})
	}
	c.mu.Unlock()
	c.signal()
}

// acked returns the sequence numbers of the counted events the peer has
// received when it says it received h in all, those not returned before.
func (c *conn) acked(h uint64) ([]uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h > c.base+c.trimmed+uint64(len(c.wired)) {
		return nil, fmt.Errorf("link: acknowledged %d of %d events", h, c.base+c.trimmed+uint64(len(c.wired)))
	}
	from := max(c.got, c.base+c.trimmed)
	if h <= from {
		return nil, nil
	}
	c.got = h
	lo, hi := from-c.base-c.trimmed, h-c.base-c.trimmed
	return append([]uint64(nil), c.wired[lo:hi]...), nil
}

// finished returns the sequence numbers of the counted events the peer is
// done with when it says it is done with h in all, those not returned
// before; it forgets them.
func (c *conn) finished(h uint64) ([]uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h > c.base+c.trimmed+uint64(len(c.wired)) {
		return nil, fmt.Errorf("link: done with %d of %d events", h, c.base+c.trimmed+uint64(len(c.wired)))
	}
	if h <= c.base+c.trimmed {
		return nil, nil
	}
	n := h - c.base - c.trimmed
	out := append([]uint64(nil), c.wired[:n]...)
	c.wired = c.wired[n:]
	c.trimmed += n
	return out, nil
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

// roundBytes bounds what one round of the writer takes from the queue,
// so that urgent frames queued meanwhile wait for one write of that size
// at most, not for a whole backlog.
const roundBytes = 256 << 10

// roundLocked takes from the queue what one round of the writer writes:
// the urgent frames, then every small frame free to go and one chunk of
// every large event in progress, up to about roundBytes. c.mu is held.
func (c *conn) roundLocked(out [][]byte, afters []func()) ([][]byte, []func()) {
	size := 0
	for _, b := range c.urgent {
		out = append(out, b)
		size += len(b)
	}
	clear(c.urgent)
	c.urgent = c.urgent[:0]
	var keep []*outFrame
	busy := map[string]bool{} // lanes with an unfinished large event
	held := false             // a barrier waits, or the round is full: nothing after it moves
	for _, f := range c.q {
		switch {
		case held:
			keep = append(keep, f)
			continue
		case size >= roundBytes:
			held = true
			keep = append(keep, f)
			continue
		case f.barrier && len(keep) > 0:
			held = true
			keep = append(keep, f)
			continue
		case f.lane != "" && busy[f.lane]:
			keep = append(keep, f)
			continue
		}
		if f.after != nil {
			afters = append(afters, f.after)
		}
		if f.chunks == nil {
			out = append(out, f.data)
			size += len(f.data)
		} else {
			out = append(out, f.chunks[0])
			size += len(f.chunks[0])
			f.chunks = f.chunks[1:]
			if len(f.chunks) > 0 {
				keep = append(keep, f)
				if f.lane != "" {
					busy[f.lane] = true
				}
				continue
			}
		}
		if f.seq > 0 {
			c.wired = append(c.wired, f.seq)
		}
	}
	clear(c.q[len(keep):])
	c.q = append(c.q[:0], keep...)
	return out, afters
}

func (c *conn) writeLoop() {
	defer close(c.done)
	var bufs net.Buffers
	var q [][]byte
	var afters []func()
	// A frame waited for (enqueueThen) that will never be written lets
	// its waiter go all the same.
	defer func() {
		c.mu.Lock()
		for _, f := range c.q {
			if f.after != nil {
				afters = append(afters, f.after)
			}
		}
		c.q = nil
		c.mu.Unlock()
		for _, f := range afters {
			f()
		}
	}()
	for range c.wake {
		for {
			c.mu.Lock()
			q, afters = c.roundLocked(q[:0], afters[:0])
			if c.ack > c.ackSent {
				q = append(q, []byte("<a xmlns='"+nsSM+"' h='"+strconv.FormatUint(c.ack, 10)+"'/>"))
				c.ackSent = c.ack
			}
			if c.fin > c.finSent {
				q = append(q, []byte("<done xmlns='"+NS+"' h='"+strconv.FormatUint(c.fin, 10)+"'/>"))
				c.finSent = c.fin
			}
			// The goodbye waits for the chunks still to write.
			more := len(c.q) > 0 || len(c.urgent) > 0
			closed := c.closed
			var final []byte
			if !more {
				final, c.final = c.final, nil
			}
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
				c.mu.Unlock()
				return
			}
			clear(q)
			for i, f := range afters {
				f()
				afters[i] = nil
			}
			afters = afters[:0]
			if closed && !more {
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
	// user is the bare JID the event concerns on the gateway, for
	// re-dispatch by owner, or the session on the service; events of one
	// user keep their order on the wire.
	user string
	// acked, if not nil, runs once the peer acknowledged the event.
	acked func()
	// rid and pos place a delivery in its client's stream, as the gateway
	// said (<at/>): the resumption id of the session and the stanza's
	// Stream Management number there; rid is "" when unknown.
	rid string
	pos uint32
}

// outbox numbers the events sent in one direction and keeps them until the
// peer acknowledges them. It outlives connections on the service side,
// where a reconnection resumes it.
type outbox struct {
	mu     sync.Mutex
	c      *conn  // nil while disconnected
	prev   *conn  // the last connection, to read a resumption's h
	ep     uint64 // counts resets
	forgot bool   // reset since the last attach: the peer's count is the new base
	// untilDone keeps received events until the peer says it is done with
	// them (<done/>): a service's outbox to a gateway, which receives a
	// delivery at once but is done with it once its client acknowledged
	// it. wait holds the sequence numbers not received yet, in order.
	untilDone bool
	wait      []uint64
	callbacks int // events in unacked whose acked has not run yet
	seq       uint64
	unacked   []item // in sequence order
	chunker   chunker
}

// send numbers data, keeps it and writes it if connected. It returns the
// sequence number.
func (o *outbox) send(data []byte, user string) uint64 {
	return o.sendAcked(data, user, nil)
}

// sendAcked is send with a function to run once the peer acknowledged
// the event.
func (o *outbox) sendAcked(data []byte, user string, acked func()) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seq++
	it := item{seq: o.seq, data: data, user: user, acked: acked}
	o.unacked = append(o.unacked, it)
	if acked != nil {
		o.callbacks++
	}
	if o.untilDone {
		o.wait = append(o.wait, o.seq)
	}
	if o.c != nil {
		o.writeLocked(it)
	}
	return o.seq
}

// writeLocked writes one event, in chunks when it is large.
func (o *outbox) writeLocked(it item) {
	f := &outFrame{lane: it.user, seq: it.seq}
	if it.user == "" {
		f.lane = "-" // counted events keep their order among themselves
	}
	if len(it.data) <= ChunkThreshold {
		f.data = it.data
	} else {
		f.chunks = o.chunker.split(it.data)
	}
	o.c.push(f)
}

// ack drops the events the peer says it received, h in all.
func (o *outbox) ack(h uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.c == nil {
		return nil // the link is gone; its events were handed on
	}
	seqs, err := o.c.acked(h)
	if err != nil {
		return err
	}
	if !o.untilDone {
		if _, err := o.c.finished(h); err != nil {
			return err
		}
		o.dropLocked(seqs)
		return nil
	}
	o.receivedLocked(seqs)
	return nil
}

// done drops the events the peer says it is done with, h in all.
func (o *outbox) done(h uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.c == nil {
		return nil
	}
	seqs, err := o.c.finished(h)
	if err != nil {
		return err
	}
	o.receivedLocked(seqs)
	o.dropLocked(seqs)
	return nil
}

// receivedLocked takes seqs off the events not received yet, and runs
// their acked functions.
func (o *outbox) receivedLocked(seqs []uint64) {
	if len(seqs) == 0 || len(o.wait) == 0 {
		return
	}
	if isPrefix(seqs, o.wait, func(s uint64) uint64 { return s }) {
		// The usual case: events are received in the order they were sent.
		o.wait = o.wait[len(seqs):]
		if len(o.wait) == 0 {
			o.wait = nil
		}
	} else {
		gone := make(map[uint64]bool, len(seqs))
		for _, s := range seqs {
			gone[s] = true
		}
		kept := o.wait[:0]
		for _, s := range o.wait {
			if !gone[s] {
				kept = append(kept, s)
			}
		}
		o.wait = kept
	}
	if o.callbacks == 0 {
		return
	}
	gone := make(map[uint64]bool, len(seqs))
	for _, s := range seqs {
		gone[s] = true
	}
	var done []func()
	for i := range o.unacked {
		if it := &o.unacked[i]; gone[it.seq] && it.acked != nil {
			done = append(done, it.acked)
			it.acked = nil
			o.callbacks--
		}
	}
	runLater(done)
}

// isPrefix reports whether seqs are the first len(seqs) of list, in order.
func isPrefix[T any](seqs []uint64, list []T, seq func(T) uint64) bool {
	if len(seqs) > len(list) {
		return false
	}
	for i, s := range seqs {
		if seq(list[i]) != s {
			return false
		}
	}
	return true
}

// dropLocked removes the events numbered seqs from unacked.
func (o *outbox) dropLocked(seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	var done []func()
	if isPrefix(seqs, o.unacked, func(it item) uint64 { return it.seq }) {
		// The usual case: the peer received, or is done with, the events
		// in the order they were sent.
		for _, it := range o.unacked[:len(seqs)] {
			if it.acked != nil {
				done = append(done, it.acked)
			}
		}
		clear(o.unacked[:len(seqs)])
		o.unacked = o.unacked[len(seqs):]
	} else {
		gone := make(map[uint64]bool, len(seqs))
		for _, s := range seqs {
			gone[s] = true
		}
		kept := o.unacked[:0]
		for _, it := range o.unacked {
			if !gone[it.seq] {
				kept = append(kept, it)
			} else if it.acked != nil {
				done = append(done, it.acked)
			}
		}
		clear(o.unacked[len(kept):])
		o.unacked = kept
	}
	o.callbacks -= len(done)
	runLater(done)
}

// runLater runs fs in order on another goroutine: not under o.mu, as
// they may be slow (a database write).
func runLater(fs []func()) {
	if len(fs) > 0 {
		go func() {
			for _, f := range fs {
				f()
			}
		}()
	}
}

// attach resumes the outbox on c after the peer said it received h events
// in all: the rest is written again, in order.
func (o *outbox) attach(c *conn, h uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var base uint64
	if o.prev != nil {
		base = o.prev.base
		seqs, err := o.prev.finished(h)
		if err != nil {
			return fmt.Errorf("link: peer claims %d events: %w", h, err)
		}
		o.receivedLocked(seqs)
		o.dropLocked(seqs)
	}
	if h < base {
		h = base // the peer forgot nothing it acknowledged
	}
	if o.prev == nil && o.forgot {
		// The events the peer counted were handed on at the reset: what
		// was queued since follows the peer's count. Positions taken on
		// them before are void.
		o.wait = o.wait[:0]
		for i := range o.unacked {
			o.unacked[i].seq = h + uint64(i) + 1
			if o.untilDone {
				o.wait = append(o.wait, o.unacked[i].seq)
			}
		}
		o.seq = h + uint64(len(o.unacked))
		o.forgot = false
		o.ep++
	} else if o.prev == nil && h > 0 {
		return fmt.Errorf("link: peer claims %d of 0 events", h)
	}
	c.mu.Lock()
	c.base, c.got = h, h
	c.mu.Unlock()
	o.c, o.prev = c, c
	for _, it := range o.unacked {
		o.writeLocked(it)
	}
	return nil
}

// place records where the peer put its event number n (its count: the
// n-th event it received on this run): in the stream of the session
// with resumption id rid, at position pos. Nothing happens when the
// event is no longer kept.
func (o *outbox) place(n uint64, rid string, pos uint32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.c == nil {
		return
	}
	c := o.c
	c.mu.Lock()
	var seq uint64
	if lo := c.base + c.trimmed; n > lo && n-lo <= uint64(len(c.wired)) {
		seq = c.wired[n-lo-1]
	}
	c.mu.Unlock()
	if seq == 0 {
		return
	}
	i := sort.Search(len(o.unacked), func(i int) bool { return o.unacked[i].seq >= seq })
	if i < len(o.unacked) && o.unacked[i].seq == seq {
		o.unacked[i].rid, o.unacked[i].pos = rid, pos
	}
}

// detach forgets the connection and returns the unacknowledged events.
func (o *outbox) detach() []item {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.c = nil
	return append([]item(nil), o.unacked...)
}

// reset forgets everything: the peer that would have received it is
// gone, or what it did not acknowledge was handed on. The next attach
// continues from whatever count the peer gives.
func (o *outbox) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seq, o.unacked, o.prev, o.wait, o.callbacks = 0, nil, nil, nil, 0
	o.ep++
	o.forgot = true
}

// epoch counts resets, so that a position taken before one is known to be
// void.
func (o *outbox) epoch() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ep
}

// state returns the last sequence number sent, and the highest number up
// to which every event was acknowledged.
func (o *outbox) state() (sent, acked uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.untilDone {
		if len(o.wait) == 0 {
			return o.seq, o.seq
		}
		return o.seq, o.wait[0] - 1
	}
	if len(o.unacked) == 0 {
		return o.seq, o.seq
	}
	return o.seq, o.unacked[0].seq - 1
}

// chunker splits large events into <chunk/> elements. The receiver counts
// the event once its last chunk arrived.
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

// maxPartial bounds the events being reassembled at once on one link.
const maxPartial = 256

// assembler joins chunks back into events; chunks of several events may
// be interleaved. It lives as long as one connection: a connection that
// ends mid-event takes the partial event with it.
type assembler struct {
	parts map[string]*bytes.Buffer
	total int
}

// add takes one chunk; it returns the whole event once the last chunk
// arrived.
func (a *assembler) add(el *xmlstream.Element) (*xmlstream.Element, error) {
	id := el.Attr("id")
	if id == "" {
		return nil, errors.New("link: chunk without id")
	}
	if a.parts == nil {
		a.parts = map[string]*bytes.Buffer{}
	}
	buf := a.parts[id]
	if buf == nil {
		if len(a.parts) >= maxPartial {
			return nil, errors.New("link: too many chunked events at once")
		}
		buf = &bytes.Buffer{}
		a.parts[id] = buf
	}
	text := el.Text()
	buf.WriteString(text)
	a.total += len(text)
	if buf.Len() > MaxEventBytes || a.total > 4*MaxEventBytes {
		return nil, errors.New("link: event too large")
	}
	if el.Attr("more") == "1" {
		return nil, nil
	}
	delete(a.parts, id)
	a.total -= buf.Len()
	ev, err := xmlstream.ParseStanza(buf.Bytes(), NS)
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
