package appservice

import (
	"sync"
	"time"
)

// DefaultHookWarnEvery is how often, at most, the failures of one
// service's hooks are logged.
const DefaultHookWarnEvery = time.Minute

// hookWarnings rate-limits the warnings about a service's failing hooks:
// while a service is down every stanza its hooks decide about fails, and
// a line per stanza would drown the log. The first failure is logged at
// once; the next ones within the interval are only counted, and the first
// one after it is logged with their count. When the service answers again
// the failures not logged yet are logged with it, so that none goes
// unreported.
type hookWarnings struct {
	every time.Duration
	mu    sync.Mutex
	by    map[string]*hookWarnState // by service name
}

type hookWarnState struct {
	logged time.Time // when a line was last written
	missed int       // failures since, not logged yet
}

func newHookWarnings(every time.Duration) *hookWarnings {
	if every <= 0 {
		every = DefaultHookWarnEvery
	}
	return &hookWarnings{every: every, by: map[string]*hookWarnState{}}
}

// failed counts a failure of the service's hook at now and reports
// whether to log it, with the number of failures the line stands for
// (this one and those not logged since the last line).
func (w *hookWarnings) failed(service string, now time.Time) (log bool, count int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.by[service]
	if st == nil {
		st = &hookWarnState{}
		w.by[service] = st
	}
	st.missed++
	if !st.logged.IsZero() && now.Sub(st.logged) < w.every {
		return false, 0
	}
	count, st.missed, st.logged = st.missed, 0, now
	return true, count
}

// answered notes that the service's hook answered; it returns the number
// of failures not logged yet, to log now.
func (w *hookWarnings) answered(service string) (unlogged int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.by[service]
	if st == nil {
		return 0
	}
	unlogged, st.missed = st.missed, 0
	return unlogged
}
