package limit

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Reasons a login is refused without checking the credentials.
const (
	LoginsFromAddr   = "too many failed logins from your address, try again later"
	LoginsForAccount = "too many failed logins for this account, try again later"
)

// FailureConfig bounds failed logins across connections.
type FailureConfig struct {
	// PerAddr and PerAccount are the failures within Window after which
	// further attempts from the address, or for the account, are refused
	// until the window ends; 0 refuses none.
	PerAddr    int
	PerAccount int
	// Window is how long a failure counts.
	Window time.Duration
	// Delay is the pause before the second attempt after failures; it
	// doubles with each further failure, up to MaxDelay. 0 adds none.
	Delay    time.Duration
	MaxDelay time.Duration
	// Exempt networks are never delayed nor refused, and their failures
	// count against no account.
	Exempt Nets
}

// DefaultFailureConfig is what an operator of ejabberd's mod_fail2ban or
// Prosody's mod_limit_auth would expect: a few mistakes are free, a
// guesser is slowed down at once and stopped after ten tries.
func DefaultFailureConfig() FailureConfig {
	return FailureConfig{PerAddr: 10, PerAccount: 30, Window: 10 * time.Minute, Delay: 500 * time.Millisecond, MaxDelay: 10 * time.Second}
}

// maxTracked bounds the addresses and accounts remembered: past it, the
// oldest entries are forgotten first, so a guesser rotating through
// accounts costs bounded memory.
const maxTracked = 100_000

// Failures counts failed logins per address and per account, across
// connections. It is safe for concurrent use, SetConfig included.
type Failures struct {
	cfg atomic.Pointer[FailureConfig] // swapped whole by SetConfig
	now func() time.Time

	mu       sync.Mutex
	addrs    map[netip.Prefix]*failures
	accounts map[string]*failures
	// known remembers, for each account, the networks it logged in from
	// lately: the account's failures do not hold its owner back there, so
	// that guessing from elsewhere cannot lock the owner out.
	known map[string]*knownNets
}

// knownNets are the last networks an account logged in from.
type knownNets struct {
	nets [4]netip.Prefix
	n    int
	last time.Time
}

// trustFor is how long a network an account logged in from stays known.
const trustFor = 30 * 24 * time.Hour

type failures struct {
	n     int
	first time.Time
}

// NewFailures returns the bookkeeping for cfg.
func NewFailures(cfg FailureConfig) *Failures {
	f := &Failures{now: time.Now, addrs: make(map[netip.Prefix]*failures), accounts: make(map[string]*failures), known: make(map[string]*knownNets)}
	f.SetConfig(cfg)
	return f
}

// SetConfig replaces the bounds, as a reload of the configuration does.
// The failures counted so far stay counted, measured against the new
// bounds and window: an address over a lowered bound is refused at its
// next attempt.
func (f *Failures) SetConfig(cfg FailureConfig) { f.cfg.Store(&cfg) }

// Config returns the bounds in force.
func (f *Failures) Config() FailureConfig { return *f.cfg.Load() }

// Check tells how long an attempt from addr for account (a bare JID, ""
// when not known yet) must wait before its credentials are checked, or
// that it is refused: refused is then one of the reasons above.
func (f *Failures) Check(addr netip.Addr, account string) (delay time.Duration, refused string) {
	if f == nil {
		return 0, ""
	}
	cfg := f.cfg.Load()
	if cfg.Exempt.Contains(addr) {
		return 0, ""
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	na := countLocked(cfg, f.addrs[key(addr)], now)
	nu := 0
	if account != "" && !f.knownLocked(account, key(addr), now) {
		nu = countLocked(cfg, f.accounts[account], now)
	}
	switch {
	case cfg.PerAddr > 0 && na >= cfg.PerAddr:
		return 0, LoginsFromAddr
	case cfg.PerAccount > 0 && nu >= cfg.PerAccount:
		return 0, LoginsForAccount
	}
	return cfg.delay(max(na, nu)), ""
}

// delay is the pause after n failures.
func (cfg *FailureConfig) delay(n int) time.Duration {
	if n < 2 || cfg.Delay <= 0 {
		return 0
	}
	d := cfg.Delay
	for i := 2; i < n && d < cfg.MaxDelay; i++ {
		d *= 2
	}
	if cfg.MaxDelay > 0 {
		d = min(d, cfg.MaxDelay)
	}
	return d
}

func countLocked(cfg *FailureConfig, e *failures, now time.Time) int {
	if e == nil || now.Sub(e.first) >= cfg.Window {
		return 0
	}
	return e.n
}

// Failed records a failed login from addr for account ("" when the
// attempt named none).
func (f *Failures) Failed(addr netip.Addr, account string) {
	if f == nil {
		return
	}
	cfg := f.cfg.Load()
	if cfg.Exempt.Contains(addr) {
		return
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	bump(f.addrs, key(addr), now, cfg.Window)
	if account != "" {
		bump(f.accounts, account, now, cfg.Window)
	}
}

// Succeeded forgets the failures of account, whose owner got in from
// addr, and remembers addr's network as one the account uses.
func (f *Failures) Succeeded(addr netip.Addr, account string) {
	if f == nil {
		return
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.accounts, account)
	if !addr.IsValid() {
		return
	}
	k := key(addr)
	kn := f.known[account]
	if kn == nil {
		if len(f.known) >= maxTracked {
			for a, o := range f.known {
				if now.Sub(o.last) >= trustFor || len(f.known) >= maxTracked {
					delete(f.known, a)
				}
			}
		}
		kn = &knownNets{}
		f.known[account] = kn
	}
	kn.last = now
	for _, p := range kn.nets[:kn.n] {
		if p == k {
			return
		}
	}
	if kn.n < len(kn.nets) {
		kn.n++
	}
	copy(kn.nets[1:kn.n], kn.nets[:kn.n-1])
	kn.nets[0] = k
}

// knownLocked reports whether account logged in from network k lately.
func (f *Failures) knownLocked(account string, k netip.Prefix, now time.Time) bool {
	kn := f.known[account]
	if kn == nil || now.Sub(kn.last) >= trustFor {
		return false
	}
	for _, p := range kn.nets[:kn.n] {
		if p == k {
			return true
		}
	}
	return false
}

// Tracked reports how many addresses and accounts are remembered.
func (f *Failures) Tracked() (addrs, accounts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.addrs), len(f.accounts)
}

func bump[K comparable](m map[K]*failures, k K, now time.Time, window time.Duration) {
	e := m[k]
	if e == nil || now.Sub(e.first) >= window {
		if e == nil && len(m) >= maxTracked {
			prune(m, now, window)
		}
		e = &failures{first: now}
		m[k] = e
	}
	e.n++
}

// prune drops the expired entries, or when none has expired the older
// half, so that a full map costs one pass per maxTracked/2 insertions.
func prune[K comparable](m map[K]*failures, now time.Time, window time.Duration) {
	for k, e := range m {
		if now.Sub(e.first) >= window {
			delete(m, k)
		}
	}
	if len(m) < maxTracked {
		return
	}
	cut := now.Add(-window / 2)
	for k, e := range m {
		if e.first.Before(cut) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < maxTracked/2 {
			break
		}
		delete(m, k)
	}
}

// Events counts events per address within a window, such as account
// registrations, to refuse an address past a number of them.
type Events struct {
	cfg atomic.Pointer[eventsConfig] // swapped whole by Set
	now func() time.Time

	mu sync.Mutex
	m  map[netip.Prefix]*failures
}

type eventsConfig struct {
	n      int
	window time.Duration
	exempt Nets
}

// NewEvents allows n events per address within window; n = 0 allows any
// number.
func NewEvents(n int, window time.Duration, exempt Nets) *Events {
	e := &Events{now: time.Now, m: make(map[netip.Prefix]*failures)}
	e.Set(n, window, exempt)
	return e
}

// Set replaces the bound, the window and the exempt networks, as a reload
// of the configuration does; the events counted so far stay counted.
func (e *Events) Set(n int, window time.Duration, exempt Nets) {
	e.cfg.Store(&eventsConfig{n: n, window: window, exempt: exempt})
}

// Allow reports whether addr may have one more event now.
func (e *Events) Allow(addr netip.Addr) bool {
	if e == nil {
		return true
	}
	cfg := e.cfg.Load()
	if cfg.n <= 0 || cfg.exempt.Contains(addr) {
		return true
	}
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.m[key(addr)]
	return x == nil || now.Sub(x.first) >= cfg.window || x.n < cfg.n
}

// Add records an event of addr.
func (e *Events) Add(addr netip.Addr) {
	if e == nil {
		return
	}
	cfg := e.cfg.Load()
	if cfg.n <= 0 || cfg.exempt.Contains(addr) {
		return
	}
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	bump(e.m, key(addr), now, cfg.window)
}
