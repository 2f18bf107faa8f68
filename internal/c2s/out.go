package c2s

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// outConn is the write side of a client socket, under TLS or alone. Write
// never waits: it writes what the socket takes at once, from the caller's
// goroutine, and keeps the rest in a backlog that one goroutine drains with
// blocking writes. A client that does not read thus slows only itself, and
// a delivered stanza costs one write system call, with no goroutine, while
// the client keeps up.
type outConn struct {
	net.Conn                 // the socket
	rc       syscall.RawConn // nil: every write goes through the backlog
	timeout  time.Duration   // bound on one blocking write of the backlog
	max      int             // backlog size that ends the connection
	onErr    func()          // called once when writing fails

	mu       sync.Mutex
	backlog  []byte
	draining bool
	err      error
}

var errBacklogFull = errors.New("c2s: client does not read its stanzas")

// Write queues p for the client; it fails only once the connection has.
func (o *outConn) Write(p []byte) (int, error) {
	o.mu.Lock()
	if o.err != nil {
		err := o.err
		o.mu.Unlock()
		return 0, err
	}
	n := 0
	if len(o.backlog) == 0 && !o.draining && o.rc != nil {
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
		o.failLocked(errBacklogFull)
		return 0, errBacklogFull
	}
	o.backlog = append(o.backlog, p[n:]...)
	if !o.draining {
		o.draining = true
		go o.drain()
	}
	o.mu.Unlock()
	return len(p), nil
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
		_ = o.Conn.SetWriteDeadline(time.Now().Add(o.timeout))
		if _, err := o.Conn.Write(b); err != nil {
			o.mu.Lock()
			o.draining = false
			o.failLocked(err)
			return
		}
	}
}

// waitIdle waits up to d for the backlog to be written.
func (o *outConn) waitIdle(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		idle := !o.draining && len(o.backlog) == 0
		o.mu.Unlock()
		if idle {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
