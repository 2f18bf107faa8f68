package router

import (
	"context"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// BulkSession is implemented by sessions whose edge can leave the socket
// write of a delivery to writers it shares between its connections. A
// goroutine that delivers one stanza to a thousand occupants of a room
// then serializes a thousand copies and makes no system call: the writes
// run in parallel on the edge's writers, and what piles up for one
// client meanwhile goes out in one write.
type BulkSession interface {
	Session
	// DeliverBulk queues el like Deliver, in the same order as what
	// Deliver queues, but may return before the write is attempted. With
	// a batch, the write waits for the batch's release; without, it is
	// handed to the writers at once.
	DeliverBulk(el *xmlstream.Element, b *Batch)
}

// Held is a write an edge keeps back until a batch is released.
type Held interface {
	Release()
}

// Batch gathers the writes of one fan-out: each connection it reaches is
// written once, when the fan-out is over, whatever number of stanzas it
// got (a room that seats a hundred newcomers at once sends each occupant
// a hundred presences). It belongs to the goroutine that made it.
type Batch struct {
	held []Held
}

// Hold keeps h until the batch is released.
func (b *Batch) Hold(h Held) { b.held = append(b.held, h) }

// Release lets every held write go; the batch may be used again.
func (b *Batch) Release() {
	for i, h := range b.held {
		h.Release()
		b.held[i] = nil
	}
	b.held = b.held[:0]
}

type batchKey struct{}

// WithFanout marks ctx as the context of a goroutine that delivers to many
// sessions one after the other, as a room does: Deliver then prefers
// DeliverBulk, with b. The caller must release b when its fan-out is
// over. A stanza routed from a client's own goroutine goes without it,
// written at once by that goroutine.
func WithFanout(ctx context.Context, b *Batch) context.Context {
	return context.WithValue(ctx, batchKey{}, b)
}

// Deliver gives el to s, in bulk when ctx is a fan-out's and s can.
func Deliver(ctx context.Context, s Session, el *xmlstream.Element) {
	if bs, ok := s.(BulkSession); ok {
		if b, _ := ctx.Value(batchKey{}).(*Batch); b != nil {
			bs.DeliverBulk(el, b)
			return
		}
	}
	s.Deliver(el)
}
