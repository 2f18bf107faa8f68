package loadtest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// IdleConfig configures an idle-connections run.
type IdleConfig struct {
	Options
	// Prefix and First name the accounts: Prefix+First … Prefix+(First+Count-1).
	Prefix string
	First  int
	// Count connections are opened, Concurrency logins at a time.
	Count, Concurrency int
	// ServerPID, if not 0, is sampled for RSS before and after.
	ServerPID int
	// Settle is the pause after the last login before sampling, so that
	// the server has finished with the logins' garbage.
	Settle time.Duration
	// Samples readings of the RSS are taken one second apart.
	Samples int
	// Hold keeps the connections open this much longer.
	Hold time.Duration
	// Progress, if not nil, receives a line now and then.
	Progress io.Writer
}

// IdleResult is the outcome of an idle run.
type IdleResult struct {
	Connected, Failed int
	FirstErr          error
	LoginWall         time.Duration // from the first dial to the last bind
	Latency           Histogram     // per login, first byte to bind result
	RSSBefore         RSSSamples
	RSSAfter          RSSSamples
	Closes            Closes
}

// LoginsPerSecond is the login rate over the whole login phase.
func (r *IdleResult) LoginsPerSecond() float64 {
	return float64(r.Connected) / r.LoginWall.Seconds()
}

// RSSPerConn is the growth of the server's RSS per connection in KiB,
// from the minimum before to the minimum after.
func (r *IdleResult) RSSPerConn() float64 {
	if r.Connected == 0 {
		return 0
	}
	return float64(r.RSSAfter.Min-r.RSSBefore.Min) / float64(r.Connected)
}

// Idle opens c.Count sessions that log in, send initial presence and then
// stay silent; it samples the server's memory and closes them all cleanly.
func Idle(ctx context.Context, c IdleConfig) (*IdleResult, error) {
	c.Options.defaults()
	if c.Samples < 1 {
		c.Samples = 5
	}
	r := &IdleResult{}
	if c.ServerPID != 0 {
		s, err := SampleRSS(c.ServerPID, 3, 500*time.Millisecond)
		if err != nil {
			return nil, err
		}
		r.RSSBefore = s
	}
	conns := make([]*Conn, c.Count)
	var (
		mu       sync.Mutex
		ok, fail atomic.Int64
	)
	start := time.Now()
	c.Meter.SetPhase("logging in")
	forEach(ctx, c.Count, c.Concurrency, func(i int) {
		cn, took, err := Login(ctx, &c.Options, UserName(c.Prefix, c.First+i))
		if err == nil {
			err = cn.Write(Presence)
		}
		if err != nil {
			if fail.Add(1) == 1 {
				mu.Lock()
				r.FirstErr = err
				mu.Unlock()
			}
			return
		}
		cn.Idle()
		conns[i] = cn
		r.Latency.Record(took)
		if n := ok.Add(1); c.Progress != nil && n%1000 == 0 {
			fmt.Fprintf(c.Progress, "  %d connected (%.1fs)\n", n, time.Since(start).Seconds())
		}
	})
	r.LoginWall = time.Since(start)
	r.Connected, r.Failed = int(ok.Load()), int(fail.Load())

	c.Meter.SetPhase("idle")
	if c.ServerPID != 0 {
		sleep(ctx, c.Settle)
		s, err := SampleRSS(c.ServerPID, c.Samples, time.Second)
		if err != nil {
			return r, err
		}
		r.RSSAfter = s
	}
	sleep(ctx, c.Hold)
	c.Meter.SetPhase("closing")

	forEach(context.WithoutCancel(ctx), c.Count, c.Concurrency, func(i int) {
		if conns[i] != nil {
			r.Closes.Add(conns[i].Close(c.Timeout))
		}
	})
	return r, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
