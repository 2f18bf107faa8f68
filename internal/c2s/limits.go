package c2s

import (
	"log/slog"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// LiveLimits are the limits of Config that may change while the server
// runs (a reload of the configuration): each applies from the change on
// to what it bounds next, and nothing open is ended by it. A connection
// keeps the read rate, the output bound and the authentication deadline
// it started with, a session the bound on unacknowledged stanzas it
// bound with; the bound on sessions per account is checked at the next
// bind.
type LiveLimits struct {
	ReadRate              limit.Rate
	MaxSessionsPerAccount int
	AuthTimeout           time.Duration
	TLSHandshakeTimeout   time.Duration
	PreAuthMaxStanzaBytes int
	MaxQueuedBytes        int
	SMMaxQueue            int
}

// SetLimits replaces the live limits; zero fields mean what they mean in
// Config.
func (s *Server) SetLimits(l LiveLimits) {
	if l.SMMaxQueue <= 0 {
		l.SMMaxQueue = DefaultConfig().SMMaxQueue
	}
	s.live.Store(&l)
}

// Limits returns the live limits in force.
func (s *Server) Limits() LiveLimits { return *s.live.Load() }

// limits are the live limits, read once per decision.
func (s *Server) limits() *LiveLimits { return s.live.Load() }

// preAuthLimits are the parser's limits until the client authenticates.
func (s *Server) preAuthLimits() xmlstream.Limits {
	l := s.cfg.Limits
	if n := s.limits().PreAuthMaxStanzaBytes; n > 0 && n < l.MaxStanzaBytes {
		l.MaxStanzaBytes = n
	}
	return l
}

// authTimeout bounds the time from connect to authentication.
func (s *Server) authTimeout() time.Duration {
	if t := s.limits().AuthTimeout; t > 0 && t < s.cfg.NegotiationTimeout {
		return t
	}
	return s.cfg.NegotiationTimeout
}

// tlsDeadline is when a TLS handshake starting now must be done; a direct
// TLS one started at the connection.
func (c *conn) tlsDeadline() time.Time {
	if !c.hsDeadline.IsZero() {
		return c.hsDeadline
	}
	if t := c.srv.limits().TLSHandshakeTimeout; t > 0 {
		if d := time.Now().Add(t); d.Before(c.deadline) {
			return d
		}
	}
	return c.deadline
}

// helloReady reports whether the socket holds a whole first TLS record
// (the ClientHello), or an end or error the handshake should see; it
// peeks, consuming nothing.
func (c *conn) helloReady() bool {
	ready := true
	_ = c.rc.Control(func(fd uintptr) {
		var h [5]byte
		n, _, err := syscall.Recvfrom(int(fd), h[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || (err == nil && n > 0 && n < len(h)):
			ready = false
		case err != nil || n == 0:
			return // an end or an error: let the handshake report it
		default:
			need := len(h) + (int(h[3])<<8 | int(h[4]))
			b := c.srv.readPool.Get().(*[]byte)
			defer c.srv.readPool.Put(b)
			if need > len(*b) {
				return // not a record crypto/tls accepts: let it say so
			}
			n, _, err := syscall.Recvfrom(int(fd), (*b)[:need], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			ready = err != nil || n >= need
		}
	})
	return ready
}

// authenticated moves the connection out of the unauthenticated limits:
// the full stanza size, the rest of the negotiation time.
func (c *conn) authenticated() {
	c.ticket.Authenticated()
	c.srv.deps.Failures.Succeeded(c.addr, c.user.String())
	c.parser.SetLimits(c.srv.cfg.Limits)
	c.setDeadline(c.srv.cfg.NegotiationTimeout)
}

// loginGate runs when an authentication starts (account "", wait false:
// an address refused is refused before any work) and before its outcome
// is answered: it then waits the delay the failed logins of the address
// and account call for, for a right password as for a wrong one. It
// refuses the attempt, ending the stream, once they are too many; it
// reports whether the attempt may go on.
func (c *conn) loginGate(account string, sasl2, wait bool) bool {
	f := c.srv.deps.Failures
	if f == nil {
		return true
	}
	d, refused := f.Check(c.addr, account)
	if refused != "" {
		c.srv.deps.metrics().LimitHit("c2s", refused)
		c.srv.deps.metrics().ClientAuth(c.mech, false)
		c.srv.log.Info("login refused", "remote", c.remote(), "user", account, "reason", refused)
		_ = c.write([]byte(failureXML("not-authorized", refused, sasl2)))
		c.fail("policy-violation", refused)
		return false
	}
	return !wait || c.holdFor(d)
}

// holdFor waits d, the delay failed attempts call for, and reports
// whether the connection is still there afterwards.
func (c *conn) holdFor(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// throttle takes n bytes read from the connection's read rate and returns
// how long the next read must wait; the first wait is logged and counted.
func (c *conn) throttle(n int) time.Duration {
	d := c.shape.Take(n, time.Now())
	if d > 0 && !c.shaped {
		c.shaped = true
		c.srv.deps.metrics().LimitHit("c2s", "read rate")
		c.srv.log.Info("read rate limited", "remote", c.raw.RemoteAddr().String(), "user", c.user.String(), "rate", c.shape.Rate().Bytes)
	}
	return d
}

// AuthTimedOut is the text of the stream error closing a connection not
// authenticated within AuthTimeout.
const AuthTimedOut = "not authenticated in time"

// TooManySessions is the text of the error refusing a session past
// MaxSessionsPerAccount.
const TooManySessions = "too many sessions for this account"

// accountSessions counts the bound sessions of each account, for
// MaxSessionsPerAccount.
type accountSessions struct {
	mu sync.Mutex
	m  map[string]map[*session]struct{}
}

// claimSession counts s against its account's sessions; it reports false,
// counting nothing, when the account has its maximum already. A session
// with the resource of one it replaces does not count that one.
func (c *conn) claimSession(s *session) bool {
	a := &c.srv.accounts
	bare := s.full.Bare().String()
	a.mu.Lock()
	defer a.mu.Unlock()
	if max := c.srv.limits().MaxSessionsPerAccount; max > 0 && !c.ticket.Exempt() {
		others := 0
		for o := range a.m[bare] {
			if o.full.String() != s.full.String() {
				others++
			}
		}
		if others >= max {
			c.srv.deps.metrics().LimitHit("c2s", TooManySessions)
			c.srv.log.Info("session refused", "remote", c.raw.RemoteAddr().String(), "user", bare, "reason", TooManySessions, "max", max)
			return false
		}
	}
	if a.m == nil {
		a.m = make(map[string]map[*session]struct{})
	}
	if a.m[bare] == nil {
		a.m[bare] = make(map[*session]struct{})
	}
	a.m[bare][s] = struct{}{}
	return true
}

// releaseSession forgets s, ended or never bound.
func (srv *Server) releaseSession(s *session) {
	a := &srv.accounts
	bare := s.full.Bare().String()
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.m[bare], s)
	if len(a.m[bare]) == 0 {
		delete(a.m, bare)
	}
}

// loginFailed counts a failed check of credentials across connections.
func (c *conn) loginFailed() {
	c.srv.deps.Failures.Failed(c.addr, c.tried)
}

// refusalLog logs refused connections without letting a flood of them
// flood the log: the first of a second is logged, with how many went
// unlogged before it.
type refusalLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (r *refusalLog) log(log *slog.Logger, addr netip.Addr, reason string) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < time.Second {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	log.Info("connection refused", "remote", addr.String(), "reason", reason, "unlogged_refusals", n)
}
