package componentclient

import (
	"context"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// forwarder is the router.Component that sends stanzas out through the
// server.
type forwarder struct{ c *Client }

// HandleStanza queues s for the server. The server closes the stream of a
// component that sends a stanza from another domain or without a 'to'
// (XEP-0114 §3), which would cost every other stanza its connection, so
// those are refused here: from another domain, dropped (there is nobody in
// the program to tell); without an address, bounced with bad-request.
func (f forwarder) HandleStanza(ctx context.Context, s router.Stanza) {
	c := f.c
	if s.From.Domain() != c.domain {
		c.log.Warn("not sent: 'from' is not in the component's domain", "from", s.From.String(), "to", s.To.String())
		return
	}
	if s.To.IsZero() {
		c.router.Bounce(ctx, s, stanza.BadRequest, "no recipient")
		return
	}
	// The addresses the program's router vouches for, not whatever the
	// attributes say.
	if v := s.From.String(); s.El.Attr("from") != v {
		s.El.SetAttr("from", v)
	}
	if v := s.To.String(); s.El.Attr("to") != v {
		s.El.SetAttr("to", v)
	}
	if cond := c.enqueue(s.El.AppendXML(nil, xmlstream.NSComponent)); cond != "" {
		c.router.Bounce(ctx, s, cond, "")
	}
}

// enqueue appends b to the queue; it returns the condition to bounce the
// stanza with if it cannot be queued, "" once queued.
func (c *Client) enqueue(b []byte) string {
	c.mu.Lock()
	var cond string
	switch {
	case c.done:
		cond = stanza.RemoteServerTimeout
	case len(c.q)-c.head >= c.cfg.MaxQueued || c.queuedBytes+len(b) > c.cfg.MaxQueuedBytes:
		cond = stanza.RemoteServerTimeout
		if c.cur != nil {
			cond = stanza.ResourceConstraint
		}
	}
	if cond != "" {
		first := !c.overflowing && !c.done
		c.overflowing = true
		queued := len(c.q) - c.head
		c.mu.Unlock()
		if first {
			c.log.Warn("outgoing queue full: bouncing stanzas", "queued", queued, "condition", cond)
		}
		return cond
	}
	if c.head > 0 && c.head >= len(c.q)/2 {
		// Move the live part to the front instead of growing forever.
		n := copy(c.q, c.q[c.head:])
		clear(c.q[n:])
		c.q, c.head = c.q[:n], 0
	}
	c.q = append(c.q, b)
	c.queuedBytes += len(b)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return ""
}

// take moves up to maxBatch queued stanzas into dst and returns it.
func (c *Client) take(dst [][]byte) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for c.head < len(c.q) && len(dst) < maxBatch {
		b := c.q[c.head]
		c.q[c.head] = nil
		c.head++
		dst = append(dst, b)
		n += len(b)
	}
	if c.head == len(c.q) {
		c.q, c.head = c.q[:0], 0
	}
	c.queuedBytes -= n
	if c.overflowing && len(c.q)-c.head < c.cfg.MaxQueued/2 && c.queuedBytes < c.cfg.MaxQueuedBytes/2 {
		c.overflowing = false
		c.log.Info("outgoing queue below half again")
	}
	return dst
}

// bounceBytes answers a stanza that was queued but will not be sent.
func (c *Client) bounceBytes(ctx context.Context, b []byte) {
	el, err := xmlstream.ParseStanza(b, xmlstream.NSComponent)
	if err != nil {
		return
	}
	from, err1 := jid.Parse(el.Attr("from"))
	to, err2 := jid.Parse(el.Attr("to"))
	if err1 != nil || err2 != nil {
		return
	}
	c.router.Bounce(ctx, router.Stanza{El: el, From: from, To: to}, stanza.RemoteServerTimeout, "")
}
