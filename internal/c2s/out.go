package c2s

import (
	"errors"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/router"
)

// outConn is the write side of a client socket, under TLS or alone. Write
// never waits: it writes what the socket takes at once, from the caller's
// goroutine, and keeps the rest in a backlog that one goroutine drains with
// blocking writes. A client that does not read thus slows only itself, and
// a delivered stanza costs one write system call, with no goroutine, while
// the client keeps up.
//
// A fan-out (router.BulkSession) writes in bulk: the bytes join the
// backlog and the connection joins the server's flusher queue, which
// makes the system call; what else arrives meanwhile goes out with it.
type outConn struct {
	net.Conn                 // the socket
	rc       syscall.RawConn // nil: every write goes through the backlog
	timeout  time.Duration   // bound on one blocking write of the backlog
	max      int             // backlog size that ends the connection
	onErr    func()          // called once when writing fails
	onFull   func()          // called when the backlog passes max, before onErr
	flush    *flusher        // the server's, for bulk writes

	mu       sync.Mutex
	backlog  []byte
	draining bool      // a writer owns the backlog: a drain or a flusher
	queued   bool      // waits in the flusher queue, or for a batch to release it
	bulk     bulkWrite // how Write writes
	err      error
}

// bulkWrite says how the next writes go: at once (the zero value), or
// left to the flushers, after the release of a fan-out's batch if any.
type bulkWrite struct {
	on    bool
	batch *router.Batch
}

var errBacklogFull = errors.New("c2s: client does not read its stanzas")

// setBulk makes the following writes bulk writes, or not. The caller holds
// the connection's write lock, which orders every stanza written, so the
// writes it makes (through TLS too) are its own.
func (o *outConn) setBulk(b bulkWrite) {
	o.mu.Lock()
	o.bulk = b
	o.mu.Unlock()
}

// Write queues p for the client; it fails only once the connection has.
func (o *outConn) Write(p []byte) (int, error) {
	o.mu.Lock()
	if o.err != nil {
		err := o.err
		o.mu.Unlock()
		return 0, err
	}
	n := 0
	if len(o.backlog) == 0 && !o.draining && !o.queued && !o.bulk.on && o.rc != nil {
		var err error
		n, err = o.tryWrite(p)
		if err != nil {
			o.failLocked(err)
			return 0, err
		}
		if n == len(p) {
			o.mu.Unlock()
			return n, nil
		}
	}
	if len(o.backlog)+len(p)-n > o.max {
		if o.onFull != nil {
			o.onFull()
		}
		o.failLocked(errBacklogFull)
		return 0, errBacklogFull
	}
	o.backlog = append(o.backlog, p[n:]...)
	switch {
	case o.draining || o.queued:
		// Whoever owns the backlog writes this too.
	case o.bulk.on && o.rc != nil && o.flush != nil:
		o.queued = true
		if o.bulk.batch != nil {
			o.bulk.batch.Hold(o)
		} else {
			o.flush.add(o)
		}
	default:
		o.draining = true
		go o.drain()
	}
	o.mu.Unlock()
	return len(p), nil
}

// Release implements router.Held: the fan-out that wrote is over.
func (o *outConn) Release() { o.flush.add(o) }

// flushNow is the flusher's turn: it writes what the socket takes without
// waiting and leaves the rest to a drain.
func (o *outConn) flushNow() {
	o.mu.Lock()
	o.queued = false
	if o.err != nil || o.draining || len(o.backlog) == 0 {
		o.mu.Unlock()
		return
	}
	b := o.backlog
	o.backlog = nil
	o.draining = true
	o.mu.Unlock()
	n, err := o.tryWrite(b)
	o.mu.Lock()
	if err != nil {
		o.draining = false
		o.failLocked(err)
		return
	}
	if n < len(b) || len(o.backlog) > 0 {
		// The client reads slower than it is written to, or more came
		// meanwhile: a drain takes over, with blocking writes.
		o.backlog = append(b[n:], o.backlog...)
		go o.drain()
		o.mu.Unlock()
		return
	}
	o.draining = false
	o.mu.Unlock()
}

// flusher writes the backlogs of bulk writes: at most one goroutine per
// processor, started when work arrives and gone when the queue is empty,
// so an idle server keeps none.
type flusher struct {
	mu     sync.Mutex
	queue  []*outConn
	active int
}

// flushBatch is how many connections a flusher takes from the queue at
// once: enough to make the queue's lock cheap, few enough that the others
// find work too.
const flushBatch = 32

func (f *flusher) add(o *outConn) {
	f.mu.Lock()
	f.queue = append(f.queue, o)
	start := f.active < runtime.GOMAXPROCS(0)
	if start {
		f.active++
	}
	f.mu.Unlock()
	if start {
		go f.run()
	}
}

func (f *flusher) run() {
	var batch [flushBatch]*outConn
	for {
		f.mu.Lock()
		n := copy(batch[:], f.queue)
		if n == 0 {
			f.active--
			f.queue = f.queue[:0]
			f.mu.Unlock()
			return
		}
		rest := copy(f.queue, f.queue[n:])
		clear(f.queue[rest:])
		f.queue = f.queue[:rest]
		f.mu.Unlock()
		for _, o := range batch[:n] {
			o.flushNow()
		}
		clear(batch[:n])
	}
}

// tryWrite writes what the socket accepts without waiting.
func (o *outConn) tryWrite(p []byte) (int, error) {
	var n int
	var werr error
	err := o.rc.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), p)
		return true
	})
	if err != nil {
		return 0, err
	}
	if werr == syscall.EAGAIN || werr == syscall.EINTR {
		return 0, nil
	}
	if werr != nil {
		return 0, werr
	}
	return n, nil
}

// failLocked records a write failure, releases o.mu and tells the owner.
func (o *outConn) failLocked(err error) {
	o.err = err
	o.backlog = nil
	o.mu.Unlock()
	o.onErr()
}

// drain writes the backlog until it is empty.
func (o *outConn) drain() {
	for {
		o.mu.Lock()
		if len(o.backlog) == 0 || o.err != nil {
			o.draining = false
			o.backlog = nil
			o.mu.Unlock()
			return
		}
		b := o.backlog
		o.backlog = nil
		o.mu.Unlock()
		err := o.writeChunks(b)
		if err != nil {
			o.mu.Lock()
			o.draining = false
			o.failLocked(err)
			return
		}
	}
}

// writeChunk is how much of a backlog one write deadline covers. The
// timeout bounds a client that stops reading, not one that reads slowly:
// one deadline for a whole backlog of megabytes cut off a client that was
// reading steadily, only not all of it within the timeout. A client must
// read writeChunk bytes per timeout (2 KiB/s at the default 30 s).
const writeChunk = 64 << 10

// writeChunks writes b with a fresh deadline for each writeChunk of it.
func (o *outConn) writeChunks(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), writeChunk)
		_ = o.Conn.SetWriteDeadline(time.Now().Add(o.timeout))
		_, err := o.Conn.Write(b[:n])
		// The deadline bounds this write only: left in place it would
		// fail the first write attempted after it passed, long after.
		_ = o.Conn.SetWriteDeadline(time.Time{})
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// waitIdle waits up to d for the backlog to be written.
func (o *outConn) waitIdle(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		idle := !o.draining && !o.queued && len(o.backlog) == 0
		o.mu.Unlock()
		if idle {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
