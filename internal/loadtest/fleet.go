package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// FleetConfig describes one load process of a fleet run and the fleet it
// is part of. A fleet spreads its sessions over several gateways of one
// split server, and over several load processes, because one process may
// hold only so many open files: global session i is account Prefix+i,
// logged in at Gateways[i mod len(Gateways)]; this process holds the
// sessions First … First+Count-1.
type FleetConfig struct {
	// Options say how to log in; their Addr is not used.
	Options
	// Gateways are the client listeners (HOST:PORT) of the fleet.
	Gateways []string
	// Sources, if not empty, are local addresses the connections are made
	// from, in turn: loopback has about 28,000 ephemeral ports per
	// destination address and port, and each source adds as many.
	Sources []string
	Prefix  string
	// First and Count are this process's sessions; Total those of the
	// whole fleet, among which messages pick their addressees.
	First, Count, Total int
	// Concurrency bounds the logins in flight.
	Concurrency int
	// Read starts a reader per session, to receive messages; idle
	// sessions are not read.
	Read bool
	// Keepalive is how often each session sends a whitespace keepalive
	// (RFC 6120 §4.6.1); 0 means never. A server pings a session silent
	// for its idle timeout (Ambrosia: 5 minutes) and ends it when the
	// ping goes unanswered, and logging 200,000 sessions in takes longer
	// than that.
	Keepalive time.Duration
	// Retries is how many times a session whose login failed tries
	// again, after 1, 2, 4, 8, 8… seconds, as a client reconnects: under a
	// fleet's load a login may time out.
	Retries int
}

// GatewayOf is the index of the gateway global session i logs in at.
func (c *FleetConfig) GatewayOf(i int) int { return i % len(c.Gateways) }

// FleetWorker is the load of one process of a fleet run: its sessions,
// the messages it sends and those its sessions receive.
type FleetWorker struct {
	c       FleetConfig
	opts    [][]Options // per gateway, per source
	conns   []*Conn     // by local index; nil if the login failed
	live    []int       // local indices of the logged-in sessions
	readers sync.WaitGroup
	closes  Closes
	steps   [maxSteps]atomic.Pointer[fleetStep]
	// unmatched counts messages whose id this fleet did not produce.
	unmatched atomic.Uint64
	// absent are the sessions of the fleet that could not log in: no
	// message goes to them. Set before the first step.
	absent map[int]bool
	// mu guards conns while the logins fill it in.
	mu sync.Mutex
	// stop ends the keepalives; kept waits for them.
	stop chan struct{}
	kept sync.WaitGroup
}

// keepalive sends a space on every session, in turn, once per
// w.c.Keepalive, until Close. It goes by the clock, a batch every
// keepaliveTick: paced by a timer per session, a round stretched with the
// machine's load (a timer of 4 ms fired every 20 ms under the load of
// 200,000 logins), past the servers' idle timeout, and they ended the
// sessions logged in first.
func (w *FleetWorker) keepalive() {
	defer w.kept.Done()
	space := []byte{' '}
	n := len(w.conns)
	if n == 0 {
		return
	}
	t := time.NewTicker(keepaliveTick)
	defer t.Stop()
	start := time.Now()
	var done int64 // spaces due so far, over all rounds
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			due := keepaliveDue(n, now.Sub(start), w.c.Keepalive)
			// Behind by more than a round: one round is enough.
			done = max(done, due-int64(n))
			for ; done < due; done++ {
				// Written as a session goes idle, a space also keeps
				// sessions whose login is not over yet from being touched.
				if cn := w.loggedIn(int(done % int64(n))); cn != nil {
					_ = cn.Write(space)
				}
			}
		}
	}
}

// keepaliveTick is how often keepalive writes its batch of spaces.
const keepaliveTick = 100 * time.Millisecond

// keepaliveDue is how many spaces are due, over all rounds, elapsed into
// keepalives of n sessions, one round per period.
func keepaliveDue(n int, elapsed, period time.Duration) int64 {
	return int64(float64(n) * float64(elapsed) / float64(period))
}

// loggedIn returns session k once its login is over, else nil.
func (w *FleetWorker) loggedIn(k int) *Conn {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conns[k]
}

// Exclude makes the sessions ids (global indices) addressees no more:
// those that failed to log in, in this process or another.
func (w *FleetWorker) Exclude(ids []int) {
	if w.absent == nil {
		w.absent = map[int]bool{}
	}
	for _, i := range ids {
		w.absent[i] = true
	}
}

// fleetStep is what one step sent and received in this process.
type fleetStep struct {
	record    atomic.Bool
	latency   Histogram
	delivered atomic.Uint64 // first arrivals
	dups      atomic.Uint64
	errors    atomic.Uint64
	mu        sync.Mutex
	seen      map[uint64]struct{}
	arrivals  []Arrival // with record
	sent      []Sent    // with record; written by the pacer only
	logins    []LoginProbe
}

// Sent is a message sent in a recorded step.
type Sent struct {
	Sender int   `json:"s"`
	Seq    int   `json:"q"`
	At     int64 `json:"t"` // Unix nanoseconds
}

// Arrival is a message received in a recorded step.
type Arrival struct {
	Sender int   `json:"s"`
	Seq    int   `json:"q"`
	SentAt int64 `json:"t"` // Unix nanoseconds
	At     int64 `json:"a"`
}

// LoginProbe is one login tried while a step ran.
type LoginProbe struct {
	At  int64  `json:"t"` // Unix nanoseconds, when it started
	OK  bool   `json:"ok"`
	Err string `json:"err,omitempty"`
}

// NewFleetWorker prepares the sessions of c; Login opens them.
func NewFleetWorker(c FleetConfig) (*FleetWorker, error) {
	c.Options.defaults()
	if len(c.Gateways) == 0 {
		return nil, errors.New("fleet: no gateway")
	}
	if c.Total < c.First+c.Count {
		c.Total = c.First + c.Count
	}
	w := &FleetWorker{c: c, conns: make([]*Conn, c.Count), stop: make(chan struct{})}
	sources := c.Sources
	if len(sources) == 0 {
		sources = []string{""}
	}
	for _, g := range c.Gateways {
		var row []Options
		for _, s := range sources {
			o := c.Options
			o.Addr = g
			if s != "" {
				ip := net.ParseIP(s)
				if ip == nil {
					return nil, fmt.Errorf("fleet: source %q is not an IP address", s)
				}
				o.LocalAddr = &net.TCPAddr{IP: ip}
			}
			row = append(row, o)
		}
		w.opts = append(w.opts, row)
	}
	return w, nil
}

// optionsOf returns how global session i connects: its gateway, and a
// source taken in turn among the sessions of that gateway.
func (w *FleetWorker) optionsOf(i int) *Options {
	g := w.c.GatewayOf(i)
	row := w.opts[g]
	return &row[(i/len(w.opts))%len(row)]
}

// LoginStats are the logins of a fleet process.
type LoginStats struct {
	OK     int `json:"ok"`
	Failed int `json:"failed"`
	// FailedIDs are the sessions that failed, by global index.
	FailedIDs []int `json:"failed_ids,omitempty"`
	// Retried counts the failed attempts that were tried again.
	Retried  int           `json:"retried,omitempty"`
	FirstErr string        `json:"first_error,omitempty"`
	WallNs   int64         `json:"wall_ns"`
	Latency  HistogramData `json:"latency"`
}

// Login opens this process's sessions: log in, initial presence, and a
// reader each when the run receives messages.
func (w *FleetWorker) Login(ctx context.Context) LoginStats {
	var (
		st       LoginStats
		lat      Histogram
		mu       sync.Mutex
		ok, fail atomic.Int64
		retried  atomic.Int64
	)
	w.c.Meter.SetPhase("logging in")
	if w.c.Keepalive > 0 {
		w.kept.Add(1)
		go w.keepalive()
	}
	start := time.Now()
	forEach(ctx, w.c.Count, w.c.Concurrency, func(k int) {
		i := w.c.First + k
		var (
			cn   *Conn
			took time.Duration
			err  error
		)
		for try := 0; ; try++ {
			cn, took, err = Login(ctx, w.optionsOf(i), UserName(w.c.Prefix, i))
			if err == nil {
				err = cn.Write(Presence)
				if err != nil {
					cn.Close(time.Second)
				}
			}
			if err == nil || try >= w.c.Retries || ctx.Err() != nil {
				break
			}
			retried.Add(1)
			sleep(ctx, min(time.Second<<try, 8*time.Second))
		}
		if err != nil {
			if fail.Add(1) == 1 {
				mu.Lock()
				st.FirstErr = err.Error()
				mu.Unlock()
			}
			return
		}
		if !w.c.Read {
			cn.Idle()
		} else {
			// Read from the login on, so that the server's idle pings
			// are answered and what it sends does not pile up.
			w.readers.Add(1)
			go func() {
				defer w.readers.Done()
				w.closes.Add(w.read(cn))
				cn.raw.Close()
			}()
		}
		w.mu.Lock()
		w.conns[k] = cn
		w.mu.Unlock()
		lat.Record(took)
		ok.Add(1)
	})
	st.WallNs = int64(time.Since(start))
	st.OK, st.Failed, st.Retried = int(ok.Load()), int(fail.Load()), int(retried.Load())
	st.Latency = lat.Data()
	for k, cn := range w.conns {
		if cn == nil {
			st.FailedIDs = append(st.FailedIDs, w.c.First+k)
			continue
		}
		w.live = append(w.live, k)
	}
	w.c.Meter.SetPhase("logged in")
	return st
}

// step returns the record of step idx, made on first use, by the step's
// command or by a message of the step that arrived before it; made by a
// message it records arrivals until the command says otherwise.
func (w *FleetWorker) step(idx int) *fleetStep {
	if st := w.steps[idx].Load(); st != nil {
		return st
	}
	st := &fleetStep{seen: map[uint64]struct{}{}}
	st.record.Store(true)
	if w.steps[idx].CompareAndSwap(nil, st) {
		return st
	}
	return w.steps[idx].Load()
}

// StepCommand starts a step of messages.
type StepCommand struct {
	Step int `json:"step"`
	// Rate is this process's share of the fleet's rate, messages/s.
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration"`
	// Record keeps every message sent and received, and LoginRate tries
	// that many logins a second while the step runs: a failover step
	// needs to know when each message went and came, and when logins
	// failed.
	Record    bool    `json:"record,omitempty"`
	LoginRate float64 `json:"login_rate,omitempty"`
}

// Step sends c.Rate messages a second for c.Duration, each from one of
// this process's sessions picked at random to a session of the fleet on
// another gateway, also picked at random. It returns how many it sent
// and how long the sending took (the logins tried alongside may take
// longer: it returns once they are over).
func (w *FleetWorker) Step(ctx context.Context, c StepCommand) (sent uint64, window time.Duration, err error) {
	if c.Step < 0 || c.Step >= maxSteps {
		return 0, 0, fmt.Errorf("fleet: step %d out of range", c.Step)
	}
	if !w.c.Read {
		return 0, 0, errors.New("fleet: sessions without readers cannot take messages")
	}
	st := w.step(c.Step)
	if !c.Record {
		// Arrivals that came before this command are kept all the same.
		st.record.Store(false)
	}
	w.c.Meter.SetPhase(fmt.Sprintf("step %d", c.Step+1))
	end := time.Now().Add(c.Duration)
	var probes sync.WaitGroup
	if c.LoginRate > 0 {
		probes.Add(1)
		go func() {
			defer probes.Done()
			w.probeLogins(ctx, st, c.LoginRate, end)
		}()
	}
	// The logins tried alongside end with the step, but not its window.
	defer probes.Wait()
	start := time.Now()
	if len(w.live) == 0 || c.Rate <= 0 {
		sleep(ctx, time.Until(end))
		return 0, time.Since(start), nil
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w.c.First)))
	seqs := make([]int, len(w.conns))
	tag := "f" + strconv.Itoa(c.Step) + "."
	suffix := []byte("'><body>" + msgBody + "</body></message>")
	buf := make([]byte, 0, 256)
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		// Message n is due at n/rate seconds, the first at once.
		due := uint64(c.Rate*now.Sub(start).Seconds()) + 1
		for ; sent < due; sent++ {
			k := w.live[rng.IntN(len(w.live))]
			from := w.c.First + k
			to := w.peerOf(rng, from)
			seqs[k]++
			at := time.Now().UnixNano()
			buf = append(buf[:0], "<message type='chat' to='"...)
			buf = append(buf, UserName(w.c.Prefix, to)...)
			buf = append(buf, '@')
			buf = append(buf, w.c.Domain...)
			buf = append(buf, '/')
			buf = append(buf, w.c.Resource...)
			buf = append(buf, "' id='"...)
			buf = append(buf, tag...)
			buf = strconv.AppendInt(buf, int64(from), 10)
			buf = append(buf, '.')
			buf = strconv.AppendInt(buf, int64(seqs[k]), 10)
			buf = append(buf, '.')
			buf = strconv.AppendInt(buf, at, 10)
			buf = append(buf, suffix...)
			if err := w.conns[k].Write(buf); err != nil {
				return sent, time.Since(start), fmt.Errorf("fleet: send from %s: %w", UserName(w.c.Prefix, from), err)
			}
			if st.record.Load() {
				st.sent = append(st.sent, Sent{Sender: from, Seq: seqs[k], At: at})
			}
			w.c.Meter.send()
		}
		time.Sleep(time.Millisecond)
	}
	return sent, time.Since(start), nil
}

// peerOf picks a session of the fleet at random among those on another
// gateway than session i's; with a single gateway, any other session.
// Sessions that could not log in are drawn again.
func (w *FleetWorker) peerOf(rng *rand.Rand, i int) int {
	for range 1000 {
		if j := w.anyPeerOf(rng, i); !w.absent[j] {
			return j
		}
	}
	return w.anyPeerOf(rng, i)
}

func (w *FleetWorker) anyPeerOf(rng *rand.Rand, i int) int {
	g := len(w.c.Gateways)
	if g < 2 || w.c.Total <= g {
		for {
			if j := rng.IntN(w.c.Total); j != i || w.c.Total == 1 {
				return j
			}
		}
	}
	// Gateway h holds sessions h, h+g, h+2g, … below Total.
	h := (w.c.GatewayOf(i) + 1 + rng.IntN(g-1)) % g
	n := (w.c.Total - h + g - 1) / g
	return h + g*rng.IntN(n)
}

// probeLogins logs in and out at rate until end, each time as a session
// of the fleet picked at random, with a resource of its own.
func (w *FleetWorker) probeLogins(ctx context.Context, st *fleetStep, rate float64, end time.Time) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w.c.First)+1))
	every := time.Duration(float64(time.Second) / rate)
	var wg sync.WaitGroup
	for n := 0; ctx.Err() == nil && time.Now().Before(end); n++ {
		i := rng.IntN(w.c.Total)
		o := *w.optionsOf(i)
		o.Resource = "probe" + strconv.Itoa(w.c.First) + "-" + strconv.Itoa(n)
		o.Meter = nil
		wg.Add(1)
		go func() {
			defer wg.Done()
			at := time.Now()
			cn, _, err := Login(ctx, &o, UserName(w.c.Prefix, i))
			p := LoginProbe{At: at.UnixNano(), OK: err == nil}
			if err != nil {
				p.Err = err.Error()
			} else {
				cn.Close(o.Timeout)
			}
			st.mu.Lock()
			st.logins = append(st.logins, p)
			st.mu.Unlock()
		}()
		sleep(ctx, every)
	}
	wg.Wait()
}

// read consumes one session's stanzas until its stream ends.
func (w *FleetWorker) read(cn *Conn) CloseOutcome {
	for {
		el, err := cn.Next()
		if err != nil {
			return closeOutcome(err)
		}
		if el.Local == "iq" && el.Attr("type") == "get" && el.Child("urn:xmpp:ping", "ping") != nil {
			// A server's ping (XEP-0199), as a client answers it.
			_ = cn.Write(pingResult(el))
			continue
		}
		if el.Local != "message" {
			continue
		}
		step, sender, seq, ts, ok := parseFleetID(el.Attr("id"))
		if !ok {
			w.unmatched.Add(1)
			continue
		}
		// The step's command may not have reached this process yet: the
		// parent starts the load processes one after another, and another
		// one's first messages can come first.
		st := w.step(step)
		if el.Attr("type") == "error" {
			st.errors.Add(1)
			w.c.Meter.bounce()
			continue
		}
		now := time.Now().UnixNano()
		key := uint64(sender)<<32 | uint64(uint32(seq))
		st.mu.Lock()
		_, dup := st.seen[key]
		if !dup {
			st.seen[key] = struct{}{}
			if st.record.Load() {
				st.arrivals = append(st.arrivals, Arrival{Sender: sender, Seq: seq, SentAt: ts, At: now})
			}
		}
		st.mu.Unlock()
		if dup {
			st.dups.Add(1)
			continue
		}
		st.latency.Record(time.Duration(now - ts))
		st.delivered.Add(1)
		w.c.Meter.deliver()
	}
}

// parseFleetID splits an id "f<step>.<sender>.<seq>.<Unix nanoseconds>".
func parseFleetID(id string) (step, sender, seq int, ts int64, ok bool) {
	rest, found := strings.CutPrefix(id, "f")
	if !found {
		return 0, 0, 0, 0, false
	}
	f := strings.SplitN(rest, ".", 4)
	if len(f) != 4 {
		return 0, 0, 0, 0, false
	}
	var err [4]error
	step, err[0] = strconv.Atoi(f[0])
	sender, err[1] = strconv.Atoi(f[1])
	seq, err[2] = strconv.Atoi(f[2])
	ts, err[3] = strconv.ParseInt(f[3], 10, 64)
	if errors.Join(err[:]...) != nil || step < 0 || step >= maxSteps || sender < 0 || seq < 0 {
		return 0, 0, 0, 0, false
	}
	return step, sender, seq, ts, true
}

// Delivered returns how many messages of a step arrived so far (first
// arrivals) and how many came back as errors.
func (w *FleetWorker) Delivered(step int) (delivered, errs uint64) {
	if step < 0 || step >= maxSteps {
		return 0, 0
	}
	if st := w.steps[step].Load(); st != nil {
		return st.delivered.Load(), st.errors.Load()
	}
	return 0, 0
}

// StepReport is what a process saw of a step.
type StepReport struct {
	Delivered  uint64        `json:"delivered"`
	Duplicates uint64        `json:"duplicates"`
	Errors     uint64        `json:"errors"`
	Unmatched  uint64        `json:"unmatched,omitempty"`
	Latency    HistogramData `json:"latency"`
	Sent       []Sent        `json:"sent,omitempty"`
	Arrivals   []Arrival     `json:"arrivals,omitempty"`
	Logins     []LoginProbe  `json:"logins,omitempty"`
}

// Report returns what this process saw of a step so far.
func (w *FleetWorker) Report(step int) StepReport {
	if step < 0 || step >= maxSteps {
		return StepReport{}
	}
	st := w.steps[step].Load()
	if st == nil {
		return StepReport{}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return StepReport{Delivered: st.delivered.Load(), Duplicates: st.dups.Load(), Errors: st.errors.Load(),
		Unmatched: w.unmatched.Load(), Latency: st.latency.Data(),
		Sent: st.sent, Arrivals: append([]Arrival(nil), st.arrivals...), Logins: append([]LoginProbe(nil), st.logins...)}
}

// Close ends every session and returns how their streams ended.
func (w *FleetWorker) Close() *Closes {
	w.c.Meter.SetPhase("closing")
	close(w.stop)
	w.kept.Wait()
	if !w.c.Read {
		forEach(context.Background(), len(w.conns), max(w.c.Concurrency, 1), func(k int) {
			if cn := w.conns[k]; cn != nil {
				w.closes.Add(cn.Close(w.c.Timeout))
			}
		})
		return &w.closes
	}
	// The readers own the ends of the streams: ask every server stream to
	// end, give the readers a bounded time to see it, then drop the rest.
	for _, k := range w.live {
		cn := w.conns[k]
		_ = cn.raw.SetWriteDeadline(time.Now().Add(time.Second))
		_ = cn.Write(StreamEnd)
	}
	waitTimeout(&w.readers, w.c.Timeout)
	for _, k := range w.live {
		w.conns[k].raw.Close()
	}
	waitTimeout(&w.readers, time.Second)
	return &w.closes
}

// FleetLogins logs in and out count times in this process, each time as
// a session of the fleet: login n uses global account First+(n mod Count)
// at that account's gateway.
func (w *FleetWorker) FleetLogins(ctx context.Context, count int) (LoginStats, *Closes) {
	var (
		st       LoginStats
		lat      Histogram
		mu       sync.Mutex
		ok, fail atomic.Int64
		closes   Closes
	)
	w.c.Meter.SetPhase("logging in and out")
	start := time.Now()
	forEach(ctx, count, w.c.Concurrency, func(n int) {
		i := w.c.First + n%max(w.c.Count, 1)
		cn, took, err := Login(ctx, w.optionsOf(i), UserName(w.c.Prefix, i))
		if err != nil {
			if fail.Add(1) == 1 {
				mu.Lock()
				st.FirstErr = err.Error()
				mu.Unlock()
			}
			return
		}
		lat.Record(took)
		ok.Add(1)
		closes.Add(cn.Close(w.c.Timeout))
	})
	st.WallNs = int64(time.Since(start))
	st.OK, st.Failed = int(ok.Load()), int(fail.Load())
	st.Latency = lat.Data()
	return st, &closes
}

// pingResult is the answer to a ping, from the client's stream.
func pingResult(iq *xmlstream.Element) []byte {
	r := stanza.Result(iq)
	r.RemoveAttr("from")
	return r.AppendXML(nil, iq.Space)
}
