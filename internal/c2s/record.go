package c2s

import (
	"net"
	"sync"
)

// recordConn sits between a TLS connection and its socket. It reads from the
// socket in bulk into a pooled buffer but hands the TLS layer at most one
// record at a time, so that no ciphertext ever waits inside crypto/tls where
// we cannot see it. Knowing exactly what is buffered lets an idle connection
// wait for socket readability while holding no buffer at all.
type recordConn struct {
	net.Conn
	pool *sync.Pool
	// read reads from the socket: blocking while a goroutine serves the
	// connection, without waiting once the poller does.
	read func([]byte) (int, error)

	buf     *[]byte // pooled storage behind pending, nil when empty
	pending []byte  // bytes read from the socket, not yet given to TLS
	// short is set when the last socket read did not fill the buffer: the
	// socket was drained then, and a reader may stop without asking again.
	short bool
	hdr   [5]byte // partial header of the next record
	hdrN  int
	left  int // bytes of the current record's body not yet given
}

// Buffered reports how many received bytes wait for the TLS layer.
func (r *recordConn) Buffered() int { return len(r.pending) }

func (r *recordConn) Read(p []byte) (int, error) {
	if len(r.pending) == 0 {
		b := r.pool.Get().(*[]byte)
		n, err := r.read(*b)
		r.short = n < len(*b)
		if n == 0 {
			r.pool.Put(b)
			return 0, err
		}
		r.buf, r.pending = b, (*b)[:n]
	}
	limit := r.left
	inHeader := limit == 0
	if inHeader {
		limit = len(r.hdr) - r.hdrN
	}
	n := min(len(p), len(r.pending), limit)
	copy(p, r.pending[:n])
	if inHeader {
		copy(r.hdr[r.hdrN:], r.pending[:n])
		r.hdrN += n
		if r.hdrN == len(r.hdr) {
			r.hdrN = 0
			r.left = int(r.hdr[3])<<8 | int(r.hdr[4])
		}
	} else {
		r.left -= n
	}
	r.pending = r.pending[n:]
	if len(r.pending) == 0 {
		r.pool.Put(r.buf)
		r.buf, r.pending = nil, nil
	}
	return n, nil
}
