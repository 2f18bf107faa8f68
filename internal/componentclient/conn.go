package componentclient

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// readBufSize is the read buffer of a connection.
const readBufSize = 16 << 10

// streamEnd closes our stream.
const streamEnd = "</stream:stream>"

var errHandshakeTimeout = errors.New("componentclient: no handshake within the handshake timeout")

// conn is one connection to the server. Run's goroutine reads and, until
// the handshake succeeds, writes; then one writer goroutine takes over the
// writing, from the Client's queue.
type conn struct {
	c    *Client
	nc   net.Conn
	sess *session

	stop       chan struct{} // closed when the writer must finish
	stopOnce   sync.Once
	writerDone chan struct{} // closed when the writer has returned

	mu       sync.Mutex
	started  bool      // the writer runs
	closing  bool      // the connection is ending
	closeBy  time.Time // when closing: the deadline of every write
	drain    bool      // the writer writes what is queued before tail
	tail     []byte    // written last: a stream error, the stream end
	writeErr error     // why the writer gave up
}

func newConn(c *Client, nc net.Conn) *conn {
	return &conn{
		c:          c,
		nc:         nc,
		sess:       newSession(c.domain, c.cfg.Secret, c.cfg.Limits),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// serve runs the connection until it ends and returns how long its stream
// was up after the handshake and why it ended.
func (cn *conn) serve(ctx context.Context) (time.Duration, error) {
	c := cn.c
	stopWatch := context.AfterFunc(ctx, cn.shutdown)
	defer stopWatch()
	_ = cn.nc.SetDeadline(time.Now().Add(c.cfg.HandshakeTimeout))
	var readyAt time.Time
	end := cn.writeDirect(cn.sess.header())
	buf := make([]byte, readBufSize)
	for end == nil {
		n, rerr := cn.nc.Read(buf)
		if n > 0 {
			cn.sess.feed(buf[:n])
			end = cn.process(ctx, &readyAt)
		}
		if rerr != nil && end == nil {
			end = rerr
		}
	}
	err := cn.finish(end)
	var up time.Duration
	if !readyAt.IsZero() {
		up = time.Since(readyAt)
	}
	return up, err
}

// process acts on everything the session can tell from the input so far;
// it returns the error that ends the connection, nil to read on.
func (cn *conn) process(ctx context.Context, readyAt *time.Time) error {
	c := cn.c
	for {
		a, err := cn.sess.next()
		if errors.Is(err, xmlstream.ErrNeedMore) {
			return nil
		}
		if err != nil {
			return err
		}
		switch a.kind {
		case actSend:
			if err := cn.writeDirect(a.out); err != nil {
				return err
			}
		case actReady:
			if !cn.startWriter() {
				// Shutting down already: the socket is closed.
				return net.ErrClosed
			}
			*readyAt = time.Now()
			c.log.Info("component connected")
		case actRoute:
			c.router.Route(ctx, a.st)
		case actDrop:
			c.log.Warn("dropped a stanza from the server", "why", a.why,
				"name", a.el.Local, "from", a.el.Attr("from"), "to", a.el.Attr("to"), "id", a.el.Attr("id"))
		}
	}
}

// writeDirect writes b from the reading goroutine, before the writer
// starts.
func (cn *conn) writeDirect(b []byte) error {
	_, err := cn.nc.Write(b)
	return err
}

// startWriter starts the writer goroutine once the handshake succeeded
// and makes cn the Client's connection; it reports false if the
// connection is ending already. Under cn.mu, so that a shutdown sets its
// deadlines and takes cn back after this, not before.
func (cn *conn) startWriter() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.closing {
		return false
	}
	cn.started = true
	// Servers send nothing to an idle component: no read deadline from
	// now on.
	_ = cn.nc.SetDeadline(time.Time{})
	cn.c.up(cn)
	go cn.writeLoop()
	return true
}

// shutdown closes the connection because Run's context is done: the
// writer writes what is queued and the stream end, and the reader waits
// CloseGrace for the server's end.
func (cn *conn) shutdown() {
	cn.mu.Lock()
	if cn.closing {
		cn.mu.Unlock()
		return
	}
	cn.closing = true
	if !cn.started {
		cn.mu.Unlock()
		// Nothing to flush before the handshake.
		cn.nc.Close()
		return
	}
	cn.drain, cn.tail = true, []byte(streamEnd)
	cn.setCloseBy()
	cn.mu.Unlock()
	cn.c.down(cn)
	_ = cn.nc.SetReadDeadline(time.Now().Add(cn.c.cfg.CloseGrace))
	cn.stopOnce.Do(func() { close(cn.stop) })
}

// finish ends the connection after the reading side ended with why, and
// returns the error to report for it.
func (cn *conn) finish(why error) error {
	var tail []byte
	var pe *protocolError
	var se *StreamError
	switch {
	case errors.As(why, &pe):
		tail = stanza.AppendStreamError(nil, pe.cond, "", "", "")
		tail = append(tail, streamEnd...)
	case errors.As(why, &se), errors.Is(why, errStreamEnd):
		tail = []byte(streamEnd)
	}
	cn.mu.Lock()
	shutdown := cn.closing
	if !cn.closing {
		cn.closing, cn.tail = true, tail
		cn.setCloseBy()
	}
	started := cn.started
	cn.mu.Unlock()
	cn.c.down(cn)
	cn.stopOnce.Do(func() { close(cn.stop) })
	if started {
		<-cn.writerDone
	} else if tail != nil && !shutdown {
		_, _ = cn.nc.Write(tail)
	}
	cn.nc.Close()
	cn.mu.Lock()
	werr := cn.writeErr
	cn.mu.Unlock()
	switch {
	case shutdown:
		return nil
	case werr != nil && !isProtocol(why):
		// The writer closed the socket, which is what the reader saw.
		return werr
	case !started && errors.Is(why, os.ErrDeadlineExceeded):
		return errHandshakeTimeout
	}
	return why
}

// setCloseBy bounds every write from now on, the one in progress
// included, by CloseGrace; under cn.mu.
func (cn *conn) setCloseBy() {
	cn.closeBy = time.Now().Add(cn.c.cfg.CloseGrace)
	_ = cn.nc.SetWriteDeadline(cn.closeBy)
}

// isProtocol reports whether err came from what the server sent rather
// than from the socket.
func isProtocol(err error) bool {
	var pe *protocolError
	var se *StreamError
	return errors.As(err, &pe) || errors.As(err, &se) || errors.Is(err, errStreamEnd)
}

// writeLoop writes the Client's queue until the connection ends, with a
// whitespace keepalive whenever nothing was written for KeepAlive.
func (cn *conn) writeLoop() {
	defer close(cn.writerDone)
	c := cn.c
	ka := time.NewTimer(c.cfg.KeepAlive)
	defer ka.Stop()
	batch := make([][]byte, 0, maxBatch)
	for {
		select {
		case <-cn.stop:
			cn.finishWrites(batch)
			return
		default:
		}
		batch = c.take(batch[:0])
		if len(batch) > 0 {
			err := cn.write(batch)
			clear(batch)
			if err != nil {
				cn.writeFailed(err)
				return
			}
			ka.Reset(c.cfg.KeepAlive)
			continue
		}
		select {
		case <-c.wake:
		case <-ka.C:
			if err := cn.write([][]byte{{' '}}); err != nil {
				cn.writeFailed(err)
				return
			}
			ka.Reset(c.cfg.KeepAlive)
		case <-cn.stop:
			cn.finishWrites(batch)
			return
		}
	}
}

// write writes one batch, within WriteTimeout, or by closeBy
// once closing.
func (cn *conn) write(batch [][]byte) error {
	cn.mu.Lock()
	d := cn.closeBy
	if !cn.closing {
		d = time.Now().Add(cn.c.cfg.WriteTimeout)
	}
	_ = cn.nc.SetWriteDeadline(d)
	cn.mu.Unlock()
	bufs := net.Buffers(batch)
	_, err := bufs.WriteTo(cn.nc)
	return err
}

// writeFailed ends the connection because a write failed: the socket is
// closed, which ends the reader's wait.
func (cn *conn) writeFailed(err error) {
	cn.mu.Lock()
	cn.writeErr = err
	cn.mu.Unlock()
	cn.c.down(cn)
	cn.c.log.Debug("write", "err", err)
	cn.nc.Close()
}

// finishWrites writes, when the stream ends, what is queued (at shutdown
// only) and the tail, within CloseGrace, and half-closes the socket so
// that the server sees the end.
func (cn *conn) finishWrites(batch [][]byte) {
	c := cn.c
	cn.mu.Lock()
	drain, tail := cn.drain, cn.tail
	cn.mu.Unlock()
	for drain {
		batch = c.take(batch[:0])
		if len(batch) == 0 {
			break
		}
		err := cn.write(batch)
		clear(batch)
		if err != nil {
			return
		}
	}
	if tail == nil {
		return
	}
	if cn.write([][]byte{tail}) != nil {
		return
	}
	if t, ok := cn.nc.(*net.TCPConn); ok {
		_ = t.CloseWrite()
	}
}
