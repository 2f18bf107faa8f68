package limit

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Reasons a connection is refused; each is also the text of the stream
// error the peer sees and the label of the metric that counts it.
const (
	TooManyUnauthenticated        = "too many unauthenticated connections"
	TooManyUnauthenticatedPerAddr = "too many unauthenticated connections from your address"
	TooManyPerAddr                = "too many connections from your address"
	ConnectingTooOften            = "too many new connections from your address"
	ServerFull                    = "server full"
)

// ConnConfig bounds the connections of one edge; a zero field sets no
// bound.
type ConnConfig struct {
	// Max bounds the edge's connections, authenticated or not, so that
	// the process keeps descriptors for its listeners, its store and its
	// monitoring.
	Max int
	// MaxUnauthenticated bounds the connections, all addresses together,
	// that have not authenticated yet: a flood of silent connections then
	// fills this, not the process's descriptors.
	MaxUnauthenticated int
	// MaxUnauthenticatedPerAddr is the same for one address.
	MaxUnauthenticatedPerAddr int
	// MaxPerAddr bounds the open connections of one address.
	MaxPerAddr int
	// NewPerSecond and NewBurst shape how often one address may connect:
	// NewBurst at once, then NewPerSecond.
	NewPerSecond float64
	NewBurst     int
	// Exempt networks are counted but never refused.
	Exempt Nets
}

// Conns admits or refuses new connections of one edge and counts them
// until they close. It is safe for concurrent use, SetConfig included.
type Conns struct {
	// cfg is swapped whole by SetConfig, so that a decision reads one
	// configuration, never half of an old and half of a new one.
	cfg atomic.Pointer[ConnConfig]
	now func() time.Time

	mu     sync.Mutex
	open   int
	unauth int
	addrs  map[netip.Prefix]*addrConns
	swept  time.Time
}

type addrConns struct {
	open, unauth int
	tokens       float64
	last         time.Time
	waiting      []*Ticket // the unauthenticated ones, oldest first
}

// NewConns returns the bookkeeping for cfg.
func NewConns(cfg ConnConfig) *Conns {
	c := &Conns{now: time.Now, addrs: make(map[netip.Prefix]*addrConns)}
	c.SetConfig(cfg)
	return c
}

// SetConfig replaces the bounds while connections are open, as a reload
// of the configuration does. The connections open stay open and keep
// counting: a cap lowered below what an address holds refuses its next
// connections until it is under the cap again. Whether a connection is
// exempt was decided when it was admitted.
func (c *Conns) SetConfig(cfg ConnConfig) {
	if cfg.NewPerSecond > 0 && cfg.NewBurst < 1 {
		cfg.NewBurst = 1
	}
	c.cfg.Store(&cfg)
}

// Config returns the bounds in force.
func (c *Conns) Config() ConnConfig { return *c.cfg.Load() }

// Ticket is one admitted connection. It starts unauthenticated.
type Ticket struct {
	c      *Conns
	key    netip.Prefix
	exempt bool
	// guarded by c.mu
	unauth  bool
	done    bool
	evicted bool
	evict   func()
}

// Admit decides on a connection from addr. When the unauthenticated
// connections are at their cap, a newcomer may take the place of the
// oldest one of the address holding the most, which is evicted. It returns the connection's
// ticket, or "" and one of the reasons above. A connection without an IP
// address (a Unix socket) is admitted as exempt.
func (c *Conns) Admit(addr netip.Addr) (*Ticket, string) {
	if c == nil {
		return nil, ""
	}
	cfg := c.cfg.Load()
	exempt := !addr.IsValid() || cfg.Exempt.Contains(addr)
	k := key(addr)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(cfg, now)
	a := c.addrs[k]
	if a == nil {
		a = &addrConns{tokens: float64(cfg.NewBurst), last: now}
		c.addrs[k] = a
	}
	if cfg.NewPerSecond > 0 {
		a.tokens = min(float64(cfg.NewBurst), a.tokens+now.Sub(a.last).Seconds()*cfg.NewPerSecond)
	}
	// The clock of the allowance runs while no rate is set too, so that
	// a rate set by a reload does not credit the time before it.
	a.last = now
	if cfg.Max > 0 && c.open >= cfg.Max {
		// Exempt or not: descriptors are what this bound protects.
		return nil, ServerFull
	}
	if !exempt {
		switch {
		case cfg.MaxPerAddr > 0 && a.open >= cfg.MaxPerAddr:
			return nil, TooManyPerAddr
		case cfg.MaxUnauthenticatedPerAddr > 0 && a.unauth >= cfg.MaxUnauthenticatedPerAddr:
			return nil, TooManyUnauthenticatedPerAddr
		case cfg.MaxUnauthenticated > 0 && c.unauth >= cfg.MaxUnauthenticated && !c.evictLocked(a):
			return nil, TooManyUnauthenticated
		case cfg.NewPerSecond > 0 && a.tokens < 1:
			return nil, ConnectingTooOften
		}
	}
	if cfg.NewPerSecond > 0 {
		a.tokens = max(a.tokens-1, 0)
	}
	a.open++
	a.unauth++
	c.open++
	c.unauth++
	t := &Ticket{c: c, key: k, exempt: exempt, unauth: true}
	a.waiting = append(a.waiting, t)
	return t, ""
}

// evictLocked makes room for a newcomer from a when the unauthenticated
// connections are at their cap: the oldest unauthenticated connection of
// the address holding the most is ended, if that address holds at least
// two more than a. A flood from many addresses then costs each newcomer
// nothing but a wait for its turn, and the flooders lose their oldest
// connections first, not the people who connect during the flood. It
// reports whether room was made.
func (c *Conns) evictLocked(a *addrConns) bool {
	var top *addrConns
	for _, o := range c.addrs {
		if len(o.waiting) > 0 && (top == nil || o.unauth > top.unauth) && !o.waiting[0].exempt {
			top = o
		}
	}
	if top == nil || top.unauth < a.unauth+2 {
		return false
	}
	v := top.waiting[0]
	v.leaveLocked(top)
	v.evicted = true
	if v.evict != nil {
		v.evict()
	}
	return true
}

// leaveLocked takes t out of the unauthenticated counts.
func (t *Ticket) leaveLocked(a *addrConns) {
	if !t.unauth {
		return
	}
	t.unauth = false
	t.c.unauth--
	a.unauth--
	for i, w := range a.waiting {
		if w == t {
			a.waiting = append(a.waiting[:i], a.waiting[i+1:]...)
			break
		}
	}
	if len(a.waiting) == 0 {
		a.waiting = nil
	}
}

// OnEvict sets what ends the connection when a newcomer needs its place
// (see Conns.Admit); it must not block. Called when the connection was
// evicted already, it calls evict at once.
func (t *Ticket) OnEvict(evict func()) {
	if t == nil {
		return
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.evicted && !t.done {
		evict()
		return
	}
	t.evict = evict
}

// sweepLocked forgets, at most once a second, the addresses with nothing
// open whose rate allowance has refilled: what is left of them would
// change no decision.
func (c *Conns) sweepLocked(cfg *ConnConfig, now time.Time) {
	if now.Sub(c.swept) < time.Second {
		return
	}
	c.swept = now
	for k, a := range c.addrs {
		if a.open > 0 {
			continue
		}
		if cfg.NewPerSecond > 0 && a.tokens+now.Sub(a.last).Seconds()*cfg.NewPerSecond < float64(cfg.NewBurst) {
			continue
		}
		delete(c.addrs, k)
	}
}

// Unauthenticated reports the connections not authenticated yet.
func (c *Conns) Unauthenticated() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unauth
}

// Tracked reports how many addresses are remembered, for tests of the
// bookkeeping's own memory.
func (c *Conns) Tracked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.addrs)
}

// Exempt reports whether the connection comes from an exempt network.
func (t *Ticket) Exempt() bool { return t != nil && t.exempt }

// Authenticated moves the connection out of the unauthenticated count.
func (t *Ticket) Authenticated() {
	if t == nil {
		return
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if !t.done {
		t.leaveLocked(t.c.addrs[t.key])
	}
	t.evict = nil
}

// Release ends the connection's count; calling it again does nothing.
func (t *Ticket) Release() {
	if t == nil {
		return
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.done {
		return
	}
	t.done = true
	t.evict = nil
	a := t.c.addrs[t.key]
	a.open--
	t.c.open--
	t.leaveLocked(a)
}
