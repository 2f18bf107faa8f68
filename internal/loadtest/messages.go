package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MessagesConfig configures a message-latency run.
type MessagesConfig struct {
	Options
	// Prefix names the accounts: pair i is Prefix+2i and Prefix+(2i+1).
	Prefix string
	Pairs  int
	// Concurrency bounds the logins in flight while connecting.
	Concurrency int
	// Rate is the aggregate target in messages per second, Duration the
	// sending window of one step.
	Rate     float64
	Duration time.Duration
	// ServerPID, if not 0, is sampled for CPU time over each step.
	ServerPID int
	// FindMax raises the rate by RateStep after each passing step, at most
	// MaxSteps steps, until p99 exceeds MaxP99, a message goes missing or
	// the client cannot reach the target.
	FindMax  bool
	RateStep float64
	MaxSteps int
	MaxP99   time.Duration
	// Drain bounds the wait for the last messages of a step.
	Drain time.Duration
	// Progress, if not nil, receives a line per step.
	Progress io.Writer
	// Remote, if not nil, is a second server: the odd member of each pair
	// logs in there, so that every message crosses a server-to-server
	// stream (one per direction).
	Remote *Options
}

// optionsFor returns the server account i logs in to.
func (c *MessagesConfig) optionsFor(i int) *Options {
	if c.Remote != nil && i%2 == 1 {
		return c.Remote
	}
	return &c.Options
}

// StepResult is one rate step.
type StepResult struct {
	Target          float64
	Sent, Delivered uint64
	Errors          uint64 // error stanzas received, e.g. bounces
	Window          time.Duration
	Latency         Histogram
	Measured        time.Duration // CPU window: sending plus draining
	ServerCPU       time.Duration // 0 without a server PID
	ServerSysCPU    time.Duration // the kernel's part of ServerCPU
	ClientCPU       time.Duration
}

// Achieved is the send rate actually reached.
func (s *StepResult) Achieved() float64 { return float64(s.Sent) / s.Window.Seconds() }

// ServerCPUPer1000 is the server CPU time per 1000 delivered messages.
func (s *StepResult) ServerCPUPer1000() time.Duration {
	if s.Delivered == 0 {
		return 0
	}
	return time.Duration(float64(s.ServerCPU) * 1000 / float64(s.Delivered))
}

// Passed reports whether a step met the target: everything delivered,
// p99 within limit and at least 95% of the target rate sent.
func (s *StepResult) Passed(maxP99 time.Duration) bool {
	return s.Delivered == s.Sent && s.Errors == 0 &&
		s.Latency.Percentile(0.99) <= maxP99 && s.Achieved() >= 0.95*s.Target
}

// MessagesResult is the outcome of a message run.
type MessagesResult struct {
	Connected  int
	Steps      []*StepResult
	MaxPassing float64 // highest passing target rate with FindMax; 0 if none
	Closes     Closes
}

const maxSteps = 64

// msgState is shared between pacers and readers.
type msgState struct {
	base      time.Time // timestamps in ids are nanoseconds since base
	steps     [maxSteps]StepResult
	delivered [maxSteps]atomic.Uint64
	errors    [maxSteps]atomic.Uint64
	unmatched atomic.Uint64 // messages whose id we did not produce
	meter     *Meter
}

// msgBody is a typical short chat line.
const msgBody = "Hello! This is a chat message of ordinary length, sent by the load client."

// Messages logs in 2*Pairs sessions, has every pair chat at an aggregate
// rate and measures delivery, latency and the server's CPU time.
func Messages(ctx context.Context, c MessagesConfig) (*MessagesResult, error) {
	c.Options.defaults()
	if c.Remote != nil {
		c.Remote.defaults()
	}
	if c.MaxSteps < 1 || c.MaxSteps > maxSteps {
		c.MaxSteps = 10
	}
	if !c.FindMax {
		c.MaxSteps = 1
	}
	if c.RateStep <= 0 {
		c.RateStep = c.Rate
	}
	if c.MaxP99 <= 0 {
		c.MaxP99 = 100 * time.Millisecond
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	if c.Rate <= 0 || c.Duration <= 0 || c.Pairs < 1 {
		return nil, errors.New("messages: need --pairs, --rate and --duration")
	}
	n := 2 * c.Pairs
	conns := make([]*Conn, n)
	c.Meter.SetPhase("logging in")
	var firstErr error
	var mu sync.Mutex
	forEach(ctx, n, c.Concurrency, func(i int) {
		cn, _, err := Login(ctx, c.optionsFor(i), UserName(c.Prefix, i))
		if err == nil {
			err = cn.Write(Presence)
		}
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
			return
		}
		conns[i] = cn
	})
	if firstErr != nil {
		forEach(context.WithoutCancel(ctx), n, 100, func(i int) {
			if conns[i] != nil {
				conns[i].Close(c.Timeout)
			}
		})
		return nil, fmt.Errorf("messages: login: %w", firstErr)
	}
	res := &MessagesResult{Connected: n}

	st := &msgState{base: time.Now(), meter: c.Meter}
	// One reading goroutine per connection; it also owns the end of the
	// stream, so the closing handshake is counted there.
	var readers sync.WaitGroup
	for _, cn := range conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			res.Closes.Add(st.read(cn))
			cn.raw.Close()
		}()
	}
	defer func() {
		c.Meter.SetPhase("closing")
		// Ask every server stream to end, give the readers a bounded time
		// to see it, then drop whatever is left.
		for _, cn := range conns {
			_ = cn.raw.SetWriteDeadline(time.Now().Add(time.Second))
			_ = cn.Write(StreamEnd)
		}
		waitTimeout(&readers, c.Timeout)
		for _, cn := range conns {
			cn.raw.Close()
		}
		waitTimeout(&readers, time.Second)
	}()
	// Each message goes to the other member of the pair; the per-connection
	// prefix and suffix are rendered once.
	prefixes := make([][]byte, n)
	for i := range conns {
		peer := i ^ 1
		po := c.optionsFor(peer)
		prefixes[i] = []byte("<message type='chat' to='" + UserName(c.Prefix, peer) + "@" + po.Domain + "/" + po.Resource + "' id='")
	}
	suffix := []byte("'><body>" + msgBody + "</body></message>")

	rate := c.Rate
	for s := 0; s < c.MaxSteps && ctx.Err() == nil; s++ {
		sr := &st.steps[s]
		sr.Target = rate
		c.Meter.SetPhase(fmt.Sprintf("step %d at %.0f msg/s", s+1, rate))
		r := st.runStep(ctx, c, s, conns, prefixes, suffix, sr)
		if r != nil {
			return res, r
		}
		res.Steps = append(res.Steps, sr)
		if c.Progress != nil {
			fmt.Fprintf(c.Progress, "  step %d: target %.0f/s sent %d delivered %d p99 %v\n",
				s+1, rate, sr.Sent, sr.Delivered, sr.Latency.Percentile(0.99))
		}
		if !sr.Passed(c.MaxP99) {
			break
		}
		res.MaxPassing = rate
		rate += c.RateStep
		sleep(ctx, time.Second)
	}
	return res, nil
}

// runStep sends at sr.Target for c.Duration, then waits for the stragglers.
func (st *msgState) runStep(ctx context.Context, c MessagesConfig, step int, conns []*Conn, prefixes [][]byte, suffix []byte, sr *StepResult) error {
	// A few pacers, each owning a fixed share of the connections, so that
	// one slow socket delays only its pacer and no connection is written
	// by two goroutines. Pacers are few because the client shares the
	// CPU with the server.
	pacers := min(4, len(conns))
	var sent atomic.Uint64
	var wg sync.WaitGroup
	var usr0, sys0, self0 time.Duration
	var err error
	if c.ServerPID != 0 {
		if usr0, sys0, err = CPUTimes(c.ServerPID); err != nil {
			return err
		}
	}
	self0, _ = CPUTime(os.Getpid())
	start := time.Now()
	end := start.Add(c.Duration)
	tag := "s" + strconv.Itoa(step) + "-"
	for p := range pacers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			share := sr.Target / float64(pacers)
			buf := make([]byte, 0, 256)
			next := p // round-robin over p, p+pacers, …
			var mine uint64
			for {
				now := time.Now()
				if !now.Before(end) || ctx.Err() != nil {
					break
				}
				// Message i of the pacer is due at i/share seconds, the
				// first at once, so that a low rate still reaches its
				// target within the window.
				due := uint64(share*now.Sub(start).Seconds()) + 1
				for ; mine < due; mine++ {
					cn := conns[next]
					buf = append(buf[:0], prefixes[next]...)
					buf = append(buf, tag...)
					buf = strconv.AppendInt(buf, int64(time.Since(st.base)), 10)
					buf = append(buf, suffix...)
					if cn.Write(buf) != nil {
						break
					}
					sent.Add(1)
					c.Meter.send()
					if next += pacers; next >= len(conns) {
						next = p
					}
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	sr.Window = time.Since(start)
	sr.Sent = sent.Load()
	// Wait until every message arrived or bounced, or Drain passed.
	deadline := time.Now().Add(c.Drain)
	for time.Now().Before(deadline) && st.delivered[step].Load()+st.errors[step].Load() < sr.Sent {
		time.Sleep(5 * time.Millisecond)
	}
	if c.ServerPID != 0 {
		usr1, sys1, err := CPUTimes(c.ServerPID)
		if err != nil {
			return err
		}
		sr.ServerCPU = usr1 + sys1 - usr0 - sys0
		sr.ServerSysCPU = sys1 - sys0
	}
	sr.Measured = time.Since(start)
	self1, _ := CPUTime(os.Getpid())
	sr.ClientCPU = self1 - self0
	sr.Delivered = st.delivered[step].Load()
	sr.Errors = st.errors[step].Load()
	return nil
}

// read consumes one connection's stanzas until the stream ends; it
// reports how it ended.
func (st *msgState) read(cn *Conn) CloseOutcome {
	for {
		el, err := cn.Next()
		if err != nil {
			return closeOutcome(err)
		}
		if el.Local != "message" {
			continue
		}
		step, ts, ok := parseMsgID(el.Attr("id"))
		if !ok || step < 0 || step >= maxSteps {
			st.unmatched.Add(1)
			continue
		}
		if el.Attr("type") == "error" {
			st.errors[step].Add(1)
			st.meter.bounce()
			continue
		}
		st.steps[step].Latency.Record(time.Since(st.base) - time.Duration(ts))
		st.delivered[step].Add(1)
		st.meter.deliver()
	}
}

// parseMsgID splits an id "s<step>-<nanoseconds since base>".
func parseMsgID(id string) (step int, ts int64, ok bool) {
	rest, found := strings.CutPrefix(id, "s")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rest, "-")
	if !found {
		return 0, 0, false
	}
	s, err1 := strconv.Atoi(a)
	t, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return s, t, true
}

// waitTimeout waits for wg, at most d.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}
