package c2s

import (
	"bytes"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// nsCSI is Client State Indication (XEP-0352): a phone says it is
// inactive, and the server holds back what can wait.
const nsCSI = "urn:xmpp:csi:0"

// Bounds of what an inactive client's queue holds before it is sent
// anyway: enough to batch a night of presence changes, small enough that
// an idle session stays cheap.
const (
	maxHeldStanzas = 100
	maxHeldBytes   = 64 << 10
)

// held is a stanza kept back while the client is inactive.
type held struct {
	from     string // presence sender: a newer presence replaces an older one
	presence bool
	data     []byte
}

// canWait reports whether el may be held back while the client is
// inactive: presence updates, and messages carrying only chat states.
// Everything else (messages with content, IQs, subscription requests) is
// sent at once, with whatever was held before it so that order holds.
func canWait(el *xmlstream.Element) bool {
	switch el.Local {
	case "presence":
		switch el.Attr("type") {
		case "", "unavailable":
			return true
		}
		return false
	case "message":
		if el.Attr("type") == "error" {
			return false
		}
		for c := range el.ChildElements {
			if c.Space != "http://jabber.org/protocol/chatstates" {
				return false
			}
		}
		return true
	}
	return false
}

// holdLocked queues b for an inactive client; c.wmu is held. A counted
// stanza (Stream Management) is never replaced by a newer presence: the
// client's count of what it received must match the server's.
func (c *conn) holdLocked(el *xmlstream.Element, b []byte, counted bool) {
	h := held{data: b}
	if !counted {
		h.data = bytes.Clone(b)
	}
	if el.Local == "presence" && !counted {
		h.presence, h.from = true, el.Attr("from")
		for i := range c.held {
			if c.held[i].presence && c.held[i].from == h.from {
				c.heldBytes -= len(c.held[i].data)
				c.held = append(c.held[:i], c.held[i+1:]...)
				break
			}
		}
	}
	c.held = append(c.held, h)
	c.heldBytes += len(h.data)
	if len(c.held) > maxHeldStanzas || c.heldBytes > maxHeldBytes {
		c.flushHeldLocked()
	}
}

// flushHeldLocked writes what was held, in order; c.wmu is held.
func (c *conn) flushHeldLocked() {
	if len(c.held) == 0 {
		return
	}
	var all []byte
	for _, h := range c.held {
		all = append(all, h.data...)
	}
	c.held, c.heldBytes = nil, 0
	_, _ = c.nc.Write(all)
}

// setInactive records the client's state; becoming active sends what was
// held.
func (c *conn) setInactive(inactive bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.inactive = inactive
	if !inactive && !c.closed {
		c.flushHeldLocked()
	}
}
