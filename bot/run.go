package bot

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// stableAfter is how long a connection must have lasted for the next
// reconnection delay to start from ReconnectMin again.
const stableAfter = 30 * time.Second

// maxBatch bounds how many queued stanzas one write takes.
const maxBatch = 64

// Run connects, logs in and serves the handlers until ctx is done,
// connecting again whenever the connection ends. It returns nil once ctx
// is done and the stream is closed, or an *AuthError at once if the
// server refuses the credentials. It may be called only once.
//
// When ctx is done Run stops giving stanzas to handlers, lets the running
// and queued ones finish for up to Config.StopGrace (their context is
// cancelled after it), sends what they sent, and closes the stream; it
// returns when the handlers have returned.
func (b *Bot) Run(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("bot: Run called twice")
	}
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	var wg sync.WaitGroup
	for _, q := range b.queues {
		wg.Go(func() { b.work(hctx, q) })
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()
	var once sync.Once
	stopWorkers := func() {
		once.Do(func() {
			b.mu.Lock()
			b.draining = true
			for _, q := range b.queues {
				close(q)
			}
			b.mu.Unlock()
			select {
			case <-workersDone:
			case <-time.After(b.acct.StopGrace):
				b.log.Warn("handlers still running after the grace period; cancelling them")
			}
			hcancel()
		})
	}

	err := b.loop(ctx, stopWorkers)
	stopWorkers()

	b.mu.Lock()
	b.stopped, b.connected = true, false
	for id, w := range b.waiters {
		close(w.ch)
		delete(b.waiters, id)
	}
	b.freedLocked()
	dropped := len(b.pending) + len(b.unacked)
	b.mu.Unlock()
	if dropped > 0 {
		b.log.Warn("stanzas not sent", "count", dropped)
	}
	<-workersDone
	return err
}

// loop connects and serves connections until ctx is done.
func (b *Bot) loop(ctx context.Context, stopWorkers func()) error {
	a := b.acct
	var base time.Duration
	for ctx.Err() == nil {
		c, lg, err := b.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ae *AuthError
			if errors.As(err, &ae) {
				b.log.Error("login refused", "mechanism", ae.Mechanism, "condition", ae.Condition, "text", ae.Text)
				return err
			}
			base = nextBase(base, a.ReconnectMin, a.ReconnectMax)
			d := jitter(base)
			b.log.Warn("connection failed", "err", err, "retry_in", d)
			if !sleep(ctx, d) {
				return nil
			}
			continue
		}
		up := time.Now()
		b.serve(ctx, c, lg, stopWorkers)
		if ctx.Err() != nil {
			return nil
		}
		var se *StreamError
		if errors.As(c.err, &se) && se.Condition == "see-other-host" && se.Value != "" {
			b.mu.Lock()
			b.redirect = se.Value
			b.mu.Unlock()
		}
		if time.Since(up) >= stableAfter {
			base = 0
		}
		base = nextBase(base, a.ReconnectMin, a.ReconnectMax)
		d := jitter(base)
		b.log.Warn("connection lost", "err", c.err, "retry_in", d)
		if !sleep(ctx, d) {
			return nil
		}
	}
	return nil
}

// nextBase doubles the reconnection delay from min up to max.
func nextBase(prev, lo, hi time.Duration) time.Duration {
	if prev <= 0 {
		return lo
	}
	return min(max(prev*2, lo), hi)
}

// jitter picks the actual delay in [base/2, base], so that many bots
// disconnected together do not come back in lockstep.
func jitter(base time.Duration) time.Duration {
	return base/2 + rand.N(base/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// target is an address to try, and whether it speaks direct TLS.
type target struct {
	addr   string
	direct bool
}

// targets lists where to connect: a see-other-host address, Config.Server,
// or the SRV records of the domain (RFC 6120 §3.2, XEP-0368), by
// priority, direct TLS first at equal priority; the domain itself at
// last.
func (b *Bot) targets(ctx context.Context) []target {
	a := b.acct
	b.mu.Lock()
	redirect := b.redirect
	b.redirect = ""
	b.mu.Unlock()
	var out []target
	if redirect != "" {
		if _, _, err := net.SplitHostPort(redirect); err != nil {
			redirect = net.JoinHostPort(strings.Trim(redirect, "[]"), "5222")
		}
		out = append(out, target{addr: redirect})
	}
	if a.Server != "" {
		return append(out, target{addr: a.Server, direct: a.DirectTLS})
	}
	type rec struct {
		target
		prio uint16
	}
	var recs []rec
	for _, s := range []struct {
		service string
		direct  bool
	}{{"xmpps-client", true}, {"xmpp-client", false}} {
		_, srvs, err := net.DefaultResolver.LookupSRV(ctx, s.service, "tcp", a.domain)
		if err != nil {
			continue
		}
		for _, r := range srvs {
			host := strings.TrimSuffix(r.Target, ".")
			if host == "" {
				continue // "." says there is no such service
			}
			recs = append(recs, rec{target{net.JoinHostPort(host, strconv.Itoa(int(r.Port))), s.direct}, r.Priority})
		}
	}
	slices.SortStableFunc(recs, func(x, y rec) int { return cmp.Compare(x.prio, y.prio) })
	for _, r := range recs {
		out = append(out, r.target)
	}
	return append(out, target{addr: net.JoinHostPort(a.domain, "5222")})
}

// connect dials the targets in turn and logs in on the first that
// answers.
func (b *Bot) connect(ctx context.Context) (*conn, *login, error) {
	a := b.acct
	var lastErr error
	for _, t := range b.targets(ctx) {
		dctx, cancel := context.WithTimeout(ctx, a.Timeout)
		var raw net.Conn
		var err error
		if a.Dial != nil {
			raw, err = a.Dial(dctx, "tcp", t.addr)
		} else {
			var d net.Dialer
			raw, err = d.DialContext(dctx, "tcp", t.addr)
		}
		cancel()
		if err != nil {
			lastErr = err
			b.log.Debug("dial failed", "addr", t.addr, "err", err)
			continue
		}
		c := newConn(raw, t.addr, t.direct)
		b.mu.Lock()
		prev := smState{id: b.smID, h: b.inH, jid: b.session.JID}
		b.mu.Unlock()
		lg, err := b.negotiate(ctx, c, prev)
		if err != nil {
			c.fail(err)
			return nil, nil, err
		}
		return c, lg, nil
	}
	if lastErr == nil {
		lastErr = errors.New("no address to connect to")
	}
	return nil, nil, lastErr
}

// serve runs a logged-in connection until it ends or ctx is done, then
// closes it.
func (b *Bot) serve(ctx context.Context, c *conn, lg *login, stopWorkers func()) {
	a := b.acct
	b.startSession(c, lg)
	s := lg.sess
	b.log.Info("logged in", "full_jid", s.JID, "addr", s.Address, "tls", s.TLS, "mechanism", s.Mechanism,
		"channel_binding", s.ChannelBinding, "sasl2", s.SASL2, "bind2", s.Bind2, "fast", s.FAST,
		"sm", s.StreamManagement, "resumed", s.Resumed,
		"offered_sasl2", s.Offered.SASL2, "offered_bind2", s.Offered.Bind2, "offered_fast", s.Offered.FAST,
		"offered_sm", s.Offered.StreamManagement, "offered_mechanisms", strings.Join(s.Offered.Mechanisms, " "))
	b.hmu.RLock()
	onSession := b.onSession
	b.hmu.RUnlock()
	var hooks sync.WaitGroup
	if onSession != nil {
		hooks.Go(func() { onSession(ctx, s) })
	}
	for _, st := range lg.stash {
		b.incoming(c, st.el, st.counted)
	}

	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		b.read(c)
	}()
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		b.write(c, stop)
	}()
	select {
	case <-c.done:
	case <-ctx.Done():
		stopWorkers()
		b.flush(c, a.Timeout)
	}
	close(stop)
	<-writerDone
	b.mu.Lock()
	b.connected = false
	h := b.inH
	b.mu.Unlock()
	if ctx.Err() != nil {
		var tail []byte
		if c.sm {
			tail = []byte("<a xmlns='" + nsSM + "' h='" + strconv.FormatUint(uint64(h), 10) + "'/>")
		}
		c.closeStream(a.Timeout, tail)
		b.mu.Lock()
		b.smID = "" // a closed stream ends the session
		b.mu.Unlock()
	}
	<-readerDone
	hooks.Wait()
}

// startSession takes the outcome of a login: on resumption, what the
// server did not get is sent again; on a new session, the counters start
// over, the presence goes first and what the old session left
// unacknowledged is sent again after it.
func (b *Bot) startSession(c *conn, lg *login) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if lg.hasH {
		if err := b.ackLocked(lg.h); err != nil {
			b.log.Warn("resumption", "err", err)
		}
	}
	if lg.resumed {
		b.pending = append(b.unacked, b.pending...)
		b.unacked = nil
	} else {
		resend := b.unacked
		b.unacked, b.acked, b.inH = nil, 0, 0
		b.smID = ""
		if lg.resumable {
			b.smID = lg.smID
		}
		q := [][]byte{b.presence.AppendXML(nil, nsClient)}
		q = append(q, resend...)
		b.pending = append(q, b.pending...)
	}
	b.session = lg.sess
	b.connected = true
	b.signal()
}

// ackLocked drops the stanzas the server acknowledged with h. b.mu is
// held.
func (b *Bot) ackLocked(h uint32) error {
	n := h - b.acked // counts wrap at 2^32 (XEP-0198 §4)
	if int64(n) > int64(len(b.unacked)) {
		return errors.New("the server acknowledged " + strconv.FormatUint(uint64(h), 10) +
			" stanzas, more than were sent (" + strconv.FormatUint(uint64(b.acked)+uint64(len(b.unacked)), 10) + ")")
	}
	if n == 0 {
		return nil
	}
	clear(b.unacked[:n])
	b.unacked = b.unacked[n:]
	if len(b.unacked) == 0 {
		b.unacked = nil
	}
	b.acked = h
	b.freedLocked()
	return nil
}

// read reads the connection until it ends.
func (b *Bot) read(c *conn) {
	for {
		el, err := c.next()
		if err != nil {
			c.fail(err)
			return
		}
		switch {
		case el.Space == nsSM && c.sm:
			switch el.Local {
			case "r":
				c.ackAsked.Store(true)
				b.signal()
			case "a":
				h, err := strconv.ParseUint(el.Attr("h"), 10, 32)
				if err != nil {
					c.fail(errors.New("bad <a/>: h=" + el.Attr("h")))
					return
				}
				c.requested.Store(false)
				b.mu.Lock()
				err = b.ackLocked(uint32(h))
				b.mu.Unlock()
				if err != nil {
					c.fail(err)
					return
				}
			}
		case isStanza(el):
			b.incoming(c, el, c.sm)
			b.signal()
		}
	}
}

// write writes what is queued, acknowledgements and keepalives, until
// stop is closed or the connection ends.
func (b *Bot) write(c *conn, stop <-chan struct{}) {
	a := b.acct
	tick := time.NewTicker(min(a.KeepAlive, a.Timeout) / 2)
	defer tick.Stop()
	var pingAt time.Time
	var lastH uint32
	for {
		var extra []byte
		select {
		case <-c.done:
			return
		case <-stop:
			return
		case <-b.wake:
		case now := <-tick.C:
			last := time.Unix(0, c.lastRead.Load())
			switch {
			case !pingAt.IsZero() && last.Before(pingAt):
				if now.Sub(pingAt) > a.Timeout {
					c.fail(errors.New("the server did not answer a keepalive"))
					return
				}
			case now.Sub(last) >= a.KeepAlive:
				pingAt = now
				if c.sm {
					extra = []byte("<r xmlns='" + nsSM + "'/>")
					c.requested.Store(true)
				} else {
					extra = []byte("<iq type='get' id='keepalive-" + stanza.NewID() + "' to='" +
						string(xmlstream.AppendEscapedAttr(nil, a.domain)) + "'><ping xmlns='" + stanza.NSPing + "'/></iq>")
				}
			}
		}
		b.mu.Lock()
		n := min(len(b.pending), maxBatch)
		batch := b.pending[:n:n]
		b.pending = b.pending[n:]
		if len(b.pending) == 0 {
			b.pending = nil
		}
		if c.sm {
			b.unacked = append(b.unacked, batch...)
		}
		if n > 0 {
			b.freedLocked()
		}
		more := len(b.pending) > 0
		h := b.inH
		b.mu.Unlock()
		var buf []byte
		for _, s := range batch {
			buf = append(buf, s...)
		}
		if c.sm {
			asked := c.ackAsked.Swap(false)
			due := c.ackDue.Swap(false) && h != lastH
			if asked || due {
				buf = append(buf, "<a xmlns='"+nsSM+"' h='"+strconv.FormatUint(uint64(h), 10)+"'/>"...)
				lastH = h
			}
			if n > 0 && !c.requested.Swap(true) {
				buf = append(buf, "<r xmlns='"+nsSM+"'/>"...)
			}
		}
		buf = append(buf, extra...)
		if len(buf) > 0 {
			if err := c.write(buf, a.Timeout); err != nil {
				c.fail(err)
				return
			}
		}
		if more {
			b.signal()
		}
	}
}

// flush waits, at most timeout, until the queue is written.
func (b *Bot) flush(c *conn, timeout time.Duration) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		empty := len(b.pending) == 0
		room := b.room
		b.mu.Unlock()
		if empty {
			return
		}
		b.signal()
		select {
		case <-room:
		case <-c.done:
			return
		case <-deadline.C:
			return
		}
	}
}
