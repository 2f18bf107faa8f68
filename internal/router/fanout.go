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
// client while they are busy goes out in one write.
type BulkSession interface {
	Session
	// DeliverBulk queues el like Deliver, in the same order as what
	// Deliver queues, but may return before the write is attempted.
	DeliverBulk(el *xmlstream.Element)
}

type fanoutKey struct{}

// WithFanout marks ctx as the context of a goroutine that delivers to many
// sessions one after the other, as a room does: Deliver then prefers
// DeliverBulk. A stanza routed from a client's own goroutine goes without
// it, written at once by that goroutine.
func WithFanout(ctx context.Context) context.Context {
	return context.WithValue(ctx, fanoutKey{}, true)
}

// Fanout reports whether ctx was marked by WithFanout.
func Fanout(ctx context.Context) bool {
	v, _ := ctx.Value(fanoutKey{}).(bool)
	return v
}

// Deliver gives el to s, in bulk when ctx is a fan-out's and s can.
func Deliver(ctx context.Context, s Session, el *xmlstream.Element) {
	if b, ok := s.(BulkSession); ok && Fanout(ctx) {
		b.DeliverBulk(el)
		return
	}
	s.Deliver(el)
}
