package c2s

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// preAuthLimits are the parser's limits until the client authenticates.
func (s *Server) preAuthLimits() xmlstream.Limits {
	l := s.cfg.Limits
	if n := s.cfg.PreAuthMaxStanzaBytes; n > 0 && n < l.MaxStanzaBytes {
		l.MaxStanzaBytes = n
	}
	return l
}

// authTimeout bounds the time from connect to authentication.
func (s *Server) authTimeout() time.Duration {
	if t := s.cfg.AuthTimeout; t > 0 && t < s.cfg.NegotiationTimeout {
		return t
	}
	return s.cfg.NegotiationTimeout
}

// tlsDeadline is when a TLS handshake starting now must be done.
func (c *conn) tlsDeadline() time.Time {
	if t := c.srv.cfg.TLSHandshakeTimeout; t > 0 {
		if d := time.Now().Add(t); d.Before(c.deadline) {
			return d
		}
	}
	return c.deadline
}

// authenticated moves the connection out of the unauthenticated limits:
// the full stanza size, the rest of the negotiation time.
func (c *conn) authenticated() {
	c.ticket.Authenticated()
	c.srv.deps.Failures.Succeeded(c.user.String())
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
	if d > 0 && wait {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.ctx.Done():
			return false
		}
	}
	return true
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
