package sm

import (
	"context"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// maxArchiveBacklog is how many archive entries may wait for the writer
// before senders wait for it: beyond that the database is the bottleneck
// and holding more in memory would only hide it.
const maxArchiveBacklog = 20000

// A batch smaller than minArchiveBatch waits archiveGather for more.
const (
	minArchiveBatch = 64
	archiveGather   = 5 * time.Millisecond
)

// archiver writes archive entries in batches from one goroutine that runs
// only while there is something to write. Archiving each chat message in
// its own transaction would cost a commit per message, far more than
// routing it; batching makes it one commit per burst.
type archiver struct {
	store storage.Archive

	mu      sync.Mutex
	cond    sync.Cond // signalled when a batch is written
	queue   []storage.ArchiveEntry
	running bool
}

func newArchiver(store storage.Archive) *archiver {
	a := &archiver{store: store}
	a.cond.L = &a.mu
	return a
}

// add queues an entry; the caller does not wait for the database.
func (a *archiver) add(m *SM, e storage.ArchiveEntry) {
	a.mu.Lock()
	for len(a.queue) >= maxArchiveBacklog {
		a.cond.Wait()
	}
	a.queue = append(a.queue, e)
	if !a.running {
		a.running = true
		go a.run(m)
	}
	a.mu.Unlock()
}

func (a *archiver) run(m *SM) {
	for {
		a.mu.Lock()
		if len(a.queue) < minArchiveBatch {
			// Let a burst gather: a commit per handful of rows is what
			// batching is meant to avoid. Queries flush, so nobody waits
			// for this pause to see their messages.
			a.mu.Unlock()
			time.Sleep(archiveGather)
			a.mu.Lock()
		}
		batch := a.queue
		a.queue = nil
		if len(batch) == 0 {
			a.running = false
			a.cond.Broadcast()
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		// Not tied to a request's context: the stanzas were accepted and
		// their archive entries must be written even if a client left.
		if err := a.store.AppendArchiveBatch(context.Background(), batch); err != nil {
			m.log.Error("archive append", "entries", len(batch), "err", err)
		} else {
			m.deps.Metrics.ArchiveWritten(len(batch))
		}
		a.mu.Lock()
		a.cond.Broadcast()
		a.mu.Unlock()
	}
}

// flush waits until everything queued so far is written, so that a query
// sees the messages its user just exchanged.
func (a *archiver) flush() {
	a.mu.Lock()
	for a.running {
		a.cond.Wait()
	}
	a.mu.Unlock()
}
