package loadtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ChurnConfig configures a churn run: clients that keep arriving,
// chatting once and leaving, the traffic that finds the leaks a steady
// load hides (a session, a timer or a goroutine not released at logout).
type ChurnConfig struct {
	Options
	// Prefix names the accounts: client i logs in as Prefix+i and
	// exchanges its message with client i^1, its partner.
	Prefix string
	// Clients keep cycling, an even number (one more is added otherwise).
	Clients int
	// Concurrency bounds the negotiations (connect to bind) in flight;
	// the other clients are online, exchanging, closing or waiting for
	// their turn.
	Concurrency int
	// Duration is how long the clients keep cycling.
	Duration time.Duration
	// Every is the interval of Tick, which is called once at the start
	// and then every Every until Duration has passed, from one goroutine.
	Every time.Duration
	Tick  func(ChurnTick)
}

// ChurnTick is the state of a churn run at one moment.
type ChurnTick struct {
	Elapsed time.Duration
	// Cycles and Failed count the cycles completed and failed so far.
	Cycles, Failed int64
	// Online is the clients logged in at this moment.
	Online int64
}

// ChurnResult is the outcome of a churn run.
type ChurnResult struct {
	// Cycles is the cycles completed: logged in, sent a message to the
	// partner, received the partner's, closed.
	Cycles int64
	// Failed is the cycles that went wrong on this client's side (login,
	// send, receive); a cycle whose partner failed to log in is Skipped.
	Failed, Skipped int64
	FirstErr        error
	// Wall is the cycling time, from the first dial to the last close.
	Wall time.Duration
	// Cycle is the time of a completed cycle, from the dial to the close.
	Cycle  Histogram
	Closes Closes
}

// PerSecond is the completed cycles per second.
func (r *ChurnResult) PerSecond() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Cycles) / r.Wall.Seconds()
}

// churnRun is the state the clients of a run share.
type churnRun struct {
	c                    *ChurnConfig
	res                  *ChurnResult
	sem                  chan struct{} // negotiation slots
	ready                []chan bool   // ready[i]: client i is logged in (true) or failed (false) this cycle
	online               atomic.Int64  //
	errMu                sync.Mutex    // guards res.FirstErr
	cycles, failed, skip atomic.Int64
}

// Churn keeps c.Clients clients cycling for c.Duration: each cycle a
// client connects, authenticates, binds, sends its initial presence,
// sends one chat message to its partner (who is online in the same
// cycle) and receives the partner's, then ends its stream and closes.
func Churn(ctx context.Context, c ChurnConfig) (*ChurnResult, error) {
	c.Options.defaults()
	if c.Clients < 2 || c.Duration <= 0 {
		return nil, errors.New("churn: need --clients (at least 2) and --duration")
	}
	c.Clients += c.Clients % 2
	if c.Concurrency < 1 {
		c.Concurrency = 1
	}
	r := &churnRun{c: &c, res: &ChurnResult{}, sem: make(chan struct{}, c.Concurrency), ready: make([]chan bool, c.Clients)}
	for i := range r.ready {
		r.ready[i] = make(chan bool, 1)
	}
	runCtx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	start := time.Now()
	tick := func() {
		if c.Tick != nil {
			c.Tick(ChurnTick{Elapsed: time.Since(start), Cycles: r.cycles.Load(), Failed: r.failed.Load(), Online: r.online.Load()})
		}
	}
	tick()
	ticks := make(chan struct{})
	go func() {
		defer close(ticks)
		if c.Every <= 0 {
			return
		}
		t := time.NewTicker(c.Every)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				tick()
			}
		}
	}()
	c.Meter.SetPhase("churning")
	var wg sync.WaitGroup
	for i := range c.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client(runCtx, i)
		}()
	}
	wg.Wait()
	r.res.Wall = time.Since(start)
	cancel()
	<-ticks
	r.res.Cycles, r.res.Failed, r.res.Skipped = r.cycles.Load(), r.failed.Load(), r.skip.Load()
	return r.res, ctx.Err()
}

// client runs the cycles of client i until ctx ends.
func (r *churnRun) client(ctx context.Context, i int) {
	c := r.c
	user, peer := UserName(c.Prefix, i), i^1
	to := []byte("<message type='chat' to='" + UserName(c.Prefix, peer) + "@" + c.Domain + "/" + c.Resource + "' id='")
	end, _ := ctx.Deadline()
	for cycle := 0; ctx.Err() == nil; cycle++ {
		id := "churn" + strconv.Itoa(cycle)
		took, ok, err := r.cycle(ctx, i, user, to, id)
		switch {
		case ctx.Err() != nil || (!end.IsZero() && !time.Now().Before(end)):
			// A cycle cut short by the end of the run is no failure; a
			// dial that reached the run's deadline reports it a moment
			// before the context does.
			return
		case ok:
			r.cycles.Add(1)
			r.res.Cycle.Record(took)
		case err == nil:
			r.skip.Add(1)
		default:
			if r.failed.Add(1) == 1 {
				r.errMu.Lock()
				r.res.FirstErr = err
				r.errMu.Unlock()
			}
			// A server that refuses at once would otherwise be
			// hammered in a tight loop.
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// cycle is one arrival, exchange and departure. It reports how long a
// completed cycle took, whether it completed, and the error of this
// client's side if it failed; a cycle whose partner could not log in is
// neither.
func (r *churnRun) cycle(ctx context.Context, i int, user string, to []byte, id string) (time.Duration, bool, error) {
	c := r.c
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, false, nil
	}
	start := time.Now()
	cn, _, err := Login(ctx, &c.Options, user)
	if err == nil {
		r.online.Add(1)
		defer r.online.Add(-1)
		if err = cn.Write(Presence); err != nil {
			cn.raw.Close()
			cn = nil
		}
	}
	<-r.sem
	closeConn := func() {
		if cn != nil {
			r.res.Closes.Add(cn.Close(c.Timeout))
		}
	}
	// Meet the partner: both are logged in (or know the other is not)
	// before either sends, so a message never goes to last cycle's
	// session or to offline storage.
	select {
	case r.ready[i] <- err == nil:
	case <-ctx.Done():
		closeConn()
		return 0, false, nil
	}
	var peerOK bool
	select {
	case peerOK = <-r.ready[i^1]:
	case <-ctx.Done():
		closeConn()
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if !peerOK {
		closeConn()
		return 0, false, nil
	}
	msg := make([]byte, 0, len(to)+len(id)+len(msgBody)+32)
	msg = append(append(append(append(msg, to...), id...), "'><body>"+msgBody...), "</body></message>"...)
	if err := cn.Write(msg); err != nil {
		closeConn()
		return 0, false, fmt.Errorf("%s: send: %w", user, err)
	}
	c.Meter.send()
	if err := r.receive(ctx, cn, id); err != nil {
		closeConn()
		return 0, false, fmt.Errorf("%s: receive: %w", user, err)
	}
	c.Meter.deliver()
	closeConn()
	return time.Since(start), true, nil
}

// receive waits, at most the timeout or until ctx ends, for the
// partner's message of this cycle, skipping whatever else arrives
// (presence, our own reflected presence). A partner whose cycle the end
// of the run cut short sends nothing: the end of ctx stops the wait.
func (r *churnRun) receive(ctx context.Context, cn *Conn, id string) error {
	_ = cn.SetDeadline(time.Now().Add(r.c.Timeout))
	stop := context.AfterFunc(ctx, func() { _ = cn.SetDeadline(time.Now()) })
	defer func() {
		stop()
		_ = cn.SetDeadline(time.Time{})
	}()
	for {
		el, err := cn.Next()
		if err != nil {
			return err
		}
		if el.Local != "message" || el.Attr("id") != id {
			continue
		}
		if el.Attr("type") == "error" {
			r.c.Meter.bounce()
			return fmt.Errorf("message bounced: %s", condition(el))
		}
		return nil
	}
}
