package router

import "context"

type acceptKey struct{}

// WithAccept returns ctx for handing a client's stanza to its session
// manager (HandleFromSession) when the edge acknowledges the stanza to the
// client (XEP-0198) only once it is safe: a session manager that keeps
// the stanza somewhere it may lose it (in flight to another process)
// calls Accept, and the edge waits for the function it returns. hold is
// called once per such Accept.
func WithAccept(ctx context.Context, hold func() (done func())) context.Context {
	return context.WithValue(ctx, acceptKey{}, hold)
}

// Accept tells the edge that the stanza ctx hands over is not safe yet,
// and returns the function to call once it is (nil when the edge does not
// wait: call it only if not nil).
func Accept(ctx context.Context) func() {
	if hold, _ := ctx.Value(acceptKey{}).(func() func()); hold != nil {
		return hold()
	}
	return nil
}
