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
	// ServerPID, if not 0, is sampled for CPU time before and after.
	ServerPID int
}

// LoginsResult is the outcome of a login-rate run.
type LoginsResult struct {
	OK, Failed int
	// Resumed counts the logins whose TLS handshake resumed a session.
	Resumed  int
	FirstErr error
	Wall     time.Duration // whole run, including the disconnects
	Latency  Histogram     // first byte to bind result
	Closes   Closes
	// ServerUser and ServerSys are the server's CPU time over the run
	// (with ServerPID).
	ServerUser, ServerSys time.Duration
}

// ServerCPUPerLogin is the server's CPU time (user and kernel) per
// completed login, 0 without a sample.
func (r *LoginsResult) ServerCPUPerLogin() time.Duration {
	if r.OK == 0 {
		return 0
	}
	return (r.ServerUser + r.ServerSys) / time.Duration(r.OK)
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
		resumed  atomic.Int64
	)
	var usr0, sys0 time.Duration
	if c.ServerPID != 0 {
		usr0, sys0, _ = CPUTimes(c.ServerPID)
	}
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
		if cn.Resumed {
			resumed.Add(1)
		}
		ok.Add(1)
		r.Closes.Add(cn.Close(c.Timeout))
	})
	r.Wall = time.Since(start)
	if c.ServerPID != 0 {
		if usr1, sys1, err := CPUTimes(c.ServerPID); err == nil {
			r.ServerUser, r.ServerSys = usr1-usr0, sys1-sys0
		}
	}
	r.OK, r.Failed, r.Resumed = int(ok.Load()), int(fail.Load()), int(resumed.Load())
	return r
}
