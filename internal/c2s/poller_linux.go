package c2s

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// poller watches the sockets of bound, idle sessions with epoll, so that an
// idle session needs no goroutine: when data arrives on a socket a worker
// drains it and goes back to the pool. Registrations are edge-triggered, so
// nothing needs re-arming after each read: every arrival reports again, and
// a per-connection flag makes sure at most one drain is queued while one
// runs (conn.ready clears it before reading). A negotiating connection is
// registered at its first wait and stays so until its end (conn.park).
type poller struct {
	epfd int
	wake [2]int // a pipe whose read end is registered with id 0: stop waits no timeout

	mu     sync.RWMutex
	conns  map[uint64]*conn
	nextID uint64

	// work hands ready connections to long-lived workers, whose stacks
	// have already grown to what processing a stanza needs; a fresh
	// goroutine per report would grow its stack anew every time.
	work    chan *conn
	workers sync.WaitGroup
	// negotiations hands parked negotiations back to long-lived
	// goroutines, for the same reason: a login parks at each round trip,
	// and a fresh goroutine grew its stack anew in the parser at each
	// (a tenth of a plain login's CPU).
	negotiations chan *conn
	// extra counts the negotiators started beyond the first ones while
	// all were busy (extraNegotiators at most).
	extra atomic.Int32
}

// workers is how many goroutines wait for ready connections. When all are
// busy (one is stuck in a slow database call, say) a report gets a
// goroutine of its own, so nothing waits for a worker. The poller never
// drains a connection itself, even one reported alone (which would save
// waking a worker, about 6 % of the CPU per message): a stanza waiting
// for storage, behind an archive batch say, would hold up every other
// connection meanwhile.
const workers = 16

// negotiators is how many goroutines wait for parked negotiations. One
// may wait on the network in a TLS handshake, or on the store (a
// credential query, the last activity written at logout); when all are
// busy, a negotiation gets a goroutine of its own, which stays a while
// for the next ones (negotiateExtra). With 100 logins in flight, 8 take
// a fifth of the resumptions; every listener's poller keeps them for
// good: more would weigh on a server with few clients, as
// TestHardenAttacks counts.
const negotiators = 8

// extraNegotiators bounds the negotiators started while all were busy,
// which end after extraIdle without work (negotiateExtra). With a fresh
// goroutine for each resumption instead, the stack growth was 8 % of a
// plain login's CPU at 100 logins in flight, 1 % with them.
const (
	extraNegotiators = 32
	extraIdle        = 100 * time.Millisecond
)

const pollEvents = uint32(syscall.EPOLLIN|syscall.EPOLLRDHUP) | uint32(1<<31) // EPOLLET, negative in package syscall

func newPoller() (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &poller{epfd: fd, conns: make(map[uint64]*conn), work: make(chan *conn), negotiations: make(chan *conn)}
	if err := syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(fd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *poller) ctl(c *conn, op int) error {
	ev := syscall.EpollEvent{Events: pollEvents, Fd: int32(uint32(c.pollID)), Pad: int32(uint32(c.pollID >> 32))}
	var opErr error
	err := c.rc.Control(func(fd uintptr) {
		opErr = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err != nil {
		return err
	}
	return opErr
}

// add hands c to the poller.
func (p *poller) add(c *conn) error {
	p.mu.Lock()
	p.nextID++
	c.pollID = p.nextID
	p.conns[c.pollID] = c
	p.mu.Unlock()
	if err := p.ctl(c, syscall.EPOLL_CTL_ADD); err != nil {
		p.mu.Lock()
		delete(p.conns, c.pollID)
		p.mu.Unlock()
		c.pollID = 0
		return err
	}
	return nil
}

// remove forgets c; its socket must still be open.
func (p *poller) remove(c *conn) {
	p.mu.Lock()
	delete(p.conns, c.pollID)
	p.mu.Unlock()
	_ = p.ctl(c, syscall.EPOLL_CTL_DEL)
}

// run dispatches readiness until ctx is done, and checks idle sessions
// every second.
func (p *poller) run(ctx context.Context, s *Server) {
	for range workers {
		p.workers.Add(1)
		go func() {
			defer p.workers.Done()
			for c := range p.work {
				c.ready()
			}
		}()
	}
	for range negotiators {
		p.workers.Add(1)
		go func() {
			defer p.workers.Done()
			for c := range p.negotiations {
				c.unpark()
			}
		}()
	}
	defer p.workers.Wait()
	defer close(p.work)
	defer close(p.negotiations)
	events := make([]syscall.EpollEvent, 128)
	lastSweep := time.Now()
	for ctx.Err() == nil {
		n, err := syscall.EpollWait(p.epfd, events, 1000)
		if err != nil && err != syscall.EINTR {
			s.log.Error("epoll", "err", err)
			return
		}
		for i := 0; i < n; i++ {
			id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			if id == 0 {
				continue // woken to look at ctx
			}
			p.mu.RLock()
			c := p.conns[id]
			p.mu.RUnlock()
			if c != nil {
				p.report(c, events[i].Events)
			}
		}
		if now := time.Now(); now.Sub(lastSweep) >= time.Second {
			lastSweep = now
			p.sweep(now, s)
		}
	}
}

// report hands c, which epoll reported with events, to whoever serves
// it now.
func (p *poller) report(c *conn, events uint32) {
	if c.parking.Load() != notParked {
		// A negotiation: if parked, back to a goroutine of its own, which
		// may block on a TLS handshake or the store; if served, the report
		// is left in stirred, and parked looked at again (see conn.park),
		// in case it parked or became a session meanwhile. stirred is
		// set only after the first attempt, so that the usual report, to
		// a parked connection, leaves no stale one for its next wait.
		if c.parking.CompareAndSwap(parked, resuming) {
			p.negotiate(c)
			return
		}
		c.stirred.Store(true)
		if c.parking.CompareAndSwap(parked, resuming) {
			p.negotiate(c)
			return
		}
		if c.parking.Load() != notParked {
			return
		}
		// It became a session meanwhile: drained below.
	}
	if events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		// Remembered even when no drain is queued for it: a drain running
		// now must then read to the end, not trust a short read to mean an
		// empty socket.
		c.peerGone.Store(true)
	}
	p.queue(c)
}

// negotiate hands a resumed negotiation to a negotiator.
func (p *poller) negotiate(c *conn) {
	select {
	case p.negotiations <- c:
	default:
		p.negotiateExtra(c)
	}
}

// queue has a polled session drained, unless a drain is queued or
// running already.
func (p *poller) queue(c *conn) {
	if c.queued.CompareAndSwap(false, true) {
		select {
		case p.work <- c:
		default:
			go c.ready()
		}
	}
}

// sweep pings sessions silent for IdleTimeout and closes those whose ping
// went unanswered for PingTimeout, and resumes parked negotiations past
// their deadline.
func (p *poller) sweep(now time.Time, s *Server) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, c := range p.conns {
		c.checkIdle(now)
	}
}

// negotiateExtra serves c on a goroutine of its own, all negotiators
// being busy. Up to extraNegotiators such goroutines then wait for more
// negotiations for extraIdle before they end: during a wave of logins
// they are reused, with the stacks they grew (a fresh goroutine grew its
// stack anew, through the parser, at each round trip of each login), and
// once it has passed the server is back to its few negotiators.
func (p *poller) negotiateExtra(c *conn) {
	if p.extra.Add(1) > extraNegotiators {
		p.extra.Add(-1)
		go c.unpark()
		return
	}
	go func() {
		defer p.extra.Add(-1)
		c.unpark()
		idle := time.NewTimer(extraIdle)
		defer idle.Stop()
		for {
			select {
			case c, ok := <-p.negotiations:
				if !ok {
					return
				}
				c.unpark()
				idle.Reset(extraIdle)
			case <-idle.C:
				return
			}
		}
	}()
}

// stop wakes run after its context was cancelled.
func (p *poller) stop() { _, _ = syscall.Write(p.wake[1], []byte{0}) }

func (p *poller) close() {
	syscall.Close(p.epfd)
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
}
