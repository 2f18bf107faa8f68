package listen

import (
	"context"
	"log/slog"
	"net"
	"sync"
)

// Group is the bookkeeping every edge of the server keeps around its
// listeners: the live connections, the listeners to close at shutdown, the
// shutdown flag that refuses newcomers, and a WaitGroup to wait for all of
// them. It lives in one place so that the edges agree on the order that
// makes shutdown lose nothing: refuse first, then close what is there, then
// wait. The zero value is ready to use; a Group must not be copied.
type Group[C comparable] struct {
	mu        sync.Mutex
	conns     map[C]struct{}
	listeners map[net.Listener]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// Serve accepts from l until ctx is done or Stop is called, and closes l
// then. Each accepted socket becomes a connection through open, is tracked,
// and is handed to run on a goroutine of its own; it is forgotten when run
// returns. Serve returns once the accept loop ends; it does not wait for
// the connections (Wait does).
func (g *Group[C]) Serve(ctx context.Context, l net.Listener, log *slog.Logger, open func(net.Conn) C, run func(C)) {
	g.serve(ctx, l, log, open, func(c C) {
		defer g.Remove(c)
		run(c)
	})
}

// ServeDetached is Serve for connections that outlive their first
// goroutine (a session handed to a poller): the connection stays tracked
// after run returns, until the caller calls Remove.
func (g *Group[C]) ServeDetached(ctx context.Context, l net.Listener, log *slog.Logger, open func(net.Conn) C, run func(C)) {
	g.serve(ctx, l, log, open, run)
}

func (g *Group[C]) serve(ctx context.Context, l net.Listener, log *slog.Logger, open func(net.Conn) C, run func(C)) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		l.Close()
		return
	}
	if g.listeners == nil {
		g.listeners = make(map[net.Listener]struct{})
	}
	g.listeners[l] = struct{}{}
	g.wg.Add(1)
	g.mu.Unlock()
	defer g.wg.Done()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	Accept(ctx, l, log, func(nc net.Conn) bool {
		c := open(nc)
		if !g.Add(c) {
			nc.Close()
			return false
		}
		go run(c)
		return true
	})
	g.mu.Lock()
	delete(g.listeners, l)
	g.mu.Unlock()
}

// Add tracks c until Remove; it reports false, tracking nothing, once Stop
// was called.
func (g *Group[C]) Add(c C) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	if g.conns == nil {
		g.conns = make(map[C]struct{})
	}
	g.conns[c] = struct{}{}
	g.wg.Add(1)
	return true
}

// Remove forgets c, which Add tracked; Wait no longer waits for it.
func (g *Group[C]) Remove(c C) {
	g.mu.Lock()
	_, ok := g.conns[c]
	delete(g.conns, c)
	g.mu.Unlock()
	if ok {
		g.wg.Done()
	}
}

// Go runs f on a goroutine Wait waits for; it reports false, running
// nothing, once Stop was called.
func (g *Group[C]) Go(f func()) bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// Stop refuses new listeners, connections and goroutines, closes the
// listeners, and returns the connections tracked now so that the caller
// can end each with its own stream error. It does not wait.
func (g *Group[C]) Stop() []C {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for l := range g.listeners {
		l.Close()
	}
	cs := make([]C, 0, len(g.conns))
	for c := range g.conns {
		cs = append(cs, c)
	}
	return cs
}

// Shutdown is Stop, then end on every connection (without the lock held,
// since ending one may call Remove), then Wait.
func (g *Group[C]) Shutdown(end func(C)) {
	for _, c := range g.Stop() {
		end(c)
	}
	g.Wait()
}

// Wait returns once every listener, connection and goroutine of the group
// is gone.
func (g *Group[C]) Wait() {
	g.wg.Wait()
}

// Stopped reports whether Stop was called.
func (g *Group[C]) Stopped() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// Len reports the number of tracked connections.
func (g *Group[C]) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// Each calls f on every tracked connection with the group's lock held, so
// f must be quick and must not call back into the group.
func (g *Group[C]) Each(f func(C)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		f(c)
	}
}
