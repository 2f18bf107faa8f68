package loadtest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// LoginsConfig configures a login-rate run.
type LoginsConfig struct {
	Options
	// Prefix names the accounts; login i uses Prefix+(i mod Users).
	Prefix string
	Users  int
	// Count logins run, Concurrency at a time.
	Count, Concurrency int
}

// LoginsResult is the outcome of a login-rate run.
type LoginsResult struct {
	OK, Failed int
	FirstErr   error
	Wall       time.Duration // whole run, including the disconnects
	Latency    Histogram     // first byte to bind result
	Closes     Closes
}

// PerSecond is the completed login-and-disconnect cycles per second.
func (r *LoginsResult) PerSecond() float64 { return float64(r.OK) / r.Wall.Seconds() }

// Logins connects, authenticates, binds and disconnects c.Count times.
func Logins(ctx context.Context, c LoginsConfig) *LoginsResult {
	c.Options.defaults()
	if c.Users < 1 {
		c.Users = c.Count
	}
	r := &LoginsResult{}
	var (
		mu       sync.Mutex
		ok, fail atomic.Int64
	)
	start := time.Now()
	c.Meter.SetPhase("logging in and out")
	forEach(ctx, c.Count, c.Concurrency, func(i int) {
		cn, took, err := Login(ctx, &c.Options, UserName(c.Prefix, i%c.Users))
		if err != nil {
			if fail.Add(1) == 1 {
				mu.Lock()
				r.FirstErr = err
				mu.Unlock()
			}
			return
		}
		r.Latency.Record(took)
		ok.Add(1)
		r.Closes.Add(cn.Close(c.Timeout))
	})
	r.Wall = time.Since(start)
	r.OK, r.Failed = int(ok.Load()), int(fail.Load())
	return r
}
