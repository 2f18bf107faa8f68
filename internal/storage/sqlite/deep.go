package sqlite

import (
	"context"
	"sync"
)

// deepWorkers is how many long-lived goroutines run SQLite calls for the
// login path: as many as the pool keeps idle connections, so that a burst
// of logins reuses them rather than opening more and closing them again.
const deepWorkers = maxIdle

// deepPool runs functions on a few long-lived goroutines. SQLite (here
// translated from C) needs a deep stack; a connection's goroutine is
// new at every login, starts with a small stack and grew it, copying it
// each time, in its one credential query: a third of that query's CPU.
// The workers' stacks grow once.
type deepPool struct {
	once   sync.Once
	closed sync.Once
	jobs   chan func()
	quit   chan struct{}
	wg     sync.WaitGroup
}

// run runs fn on a worker and returns when it has, or runs it on the
// caller's goroutine when the pool is closed. It gives up waiting for a
// worker when ctx ends, and then does not run fn.
func (p *deepPool) run(ctx context.Context, fn func()) error {
	p.once.Do(p.start)
	done := make(chan struct{})
	job := func() { fn(); close(done) }
	select {
	case p.jobs <- job:
	case <-p.quit:
		fn()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	<-done
	return nil
}

func (p *deepPool) start() {
	p.jobs = make(chan func())
	p.quit = make(chan struct{})
	for range deepWorkers {
		p.wg.Go(func() {
			for {
				select {
				case job := <-p.jobs:
					job()
				case <-p.quit:
					return
				}
			}
		})
	}
}

// close stops the workers; later calls to run run on the caller. A
// second close does nothing.
func (p *deepPool) close() {
	p.once.Do(p.start)
	p.closed.Do(func() { close(p.quit) })
	p.wg.Wait()
}
