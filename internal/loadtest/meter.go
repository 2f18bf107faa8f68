package loadtest

import (
	"sync/atomic"
	"time"
)

// Meter counts what a run has done so far, for a progress display that
// reads it while the run goes on. Every method is safe on a nil Meter,
// which counts nothing: a run without a display pays one nil check.
type Meter struct {
	start     time.Time
	phase     atomic.Pointer[string]
	loggedIn  atomic.Int64
	failed    atomic.Int64
	seated    atomic.Int64
	sent      atomic.Int64
	delivered atomic.Int64
	errors    atomic.Int64
}

// NewMeter returns a meter whose clock starts now.
func NewMeter() *Meter {
	m := &Meter{start: time.Now()}
	m.SetPhase("starting")
	return m
}

// MeterReading is what a meter counted, at one moment.
type MeterReading struct {
	Phase   string
	Elapsed time.Duration
	// LoggedIn and Failed count the logins; Seated the occupants seated in
	// rooms; Sent the messages sent, Delivered their deliveries and
	// Errors the error bounces.
	LoggedIn, Failed, Seated, Sent, Delivered, Errors int64
}

// Read returns what the meter counted so far.
func (m *Meter) Read() MeterReading {
	if m == nil {
		return MeterReading{}
	}
	r := MeterReading{Elapsed: time.Since(m.start), LoggedIn: m.loggedIn.Load(), Failed: m.failed.Load(),
		Seated: m.seated.Load(), Sent: m.sent.Load(), Delivered: m.delivered.Load(), Errors: m.errors.Load()}
	if p := m.phase.Load(); p != nil {
		r.Phase = *p
	}
	return r
}

// SetPhase names what the run is doing now.
func (m *Meter) SetPhase(p string) {
	if m != nil {
		m.phase.Store(&p)
	}
}

func (m *Meter) login(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.failed.Add(1)
	} else {
		m.loggedIn.Add(1)
	}
}

func (m *Meter) seat() {
	if m != nil {
		m.seated.Add(1)
	}
}

func (m *Meter) send() {
	if m != nil {
		m.sent.Add(1)
	}
}

func (m *Meter) deliver() {
	if m != nil {
		m.delivered.Add(1)
	}
}

func (m *Meter) bounce() {
	if m != nil {
		m.errors.Add(1)
	}
}

// Set makes the meter's counts those of r (not its phase or clock): a
// fleet run shows the sums of what its load processes report.
func (m *Meter) Set(r MeterReading) {
	if m == nil {
		return
	}
	m.loggedIn.Store(r.LoggedIn)
	m.failed.Store(r.Failed)
	m.seated.Store(r.Seated)
	m.sent.Store(r.Sent)
	m.delivered.Store(r.Delivered)
	m.errors.Store(r.Errors)
}
