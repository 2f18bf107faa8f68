package router

import (
	"context"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// A Hook decides about a stanza before it is delivered: an application
// service's business rule (who may talk to whom, what may be said). The
// components that deliver ask it; it answers within its own time budget.
type Hook interface {
	// Decide is asked about s, of kind "message", "subscription" or
	// "room_message". It is called on the goroutine that delivers s, so
	// it holds up s alone.
	Decide(ctx context.Context, kind string, s Stanza) Decision
}

// Decision is a hook's answer: the zero value lets the stanza through.
type Decision struct {
	// Deny refuses the stanza; its sender gets the error Condition (a
	// stanza error condition, "forbidden" when empty) with Text.
	Deny            bool
	Condition, Text string
	// Replace, when not nil, goes on instead of the stanza, with the
	// stanza's addresses.
	Replace *xmlstream.Element
}

type decidedKey struct{}

// Decided marks ctx as carrying a stanza a hook has decided about, so that
// the components it goes through next do not ask again.
func Decided(ctx context.Context) context.Context {
	return context.WithValue(ctx, decidedKey{}, true)
}

// WasDecided reports whether ctx was marked by Decided.
func WasDecided(ctx context.Context) bool {
	v, _ := ctx.Value(decidedKey{}).(bool)
	return v
}

// Addressed is implemented by sessions that know their client's network
// address.
type Addressed interface {
	RemoteAddr() string
}

// TextCloser is implemented by sessions whose stream error can carry a
// text (RFC 6120 §4.9.2), such as the reason an administrator gave for
// ending the session. Close is used for the others.
type TextCloser interface {
	CloseText(condition, text string)
}
