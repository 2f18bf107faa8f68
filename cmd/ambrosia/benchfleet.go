package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/loadtest"
)

// fleetWorkerMode is the hidden bench mode a fleet run starts its load
// processes in; they read their settings and commands on stdin and answer
// on stdout, one JSON document a line.
const fleetWorkerMode = "fleet-worker"

// sessionsPerWorker is how many sessions a load process holds by default:
// well under a file limit of 20,000, with room for login probes.
const sessionsPerWorker = 15000

// fleetRun is a fleet run as the flags describe it: one command drives
// several load processes, each holding a share of the sessions, spread
// over the gateways of a split server.
type fleetRun struct {
	mode       string
	gateways   []string
	sources    []string
	workers    int
	serverPIDs []int

	prefix, domain, password string
	tls, directTLS           bool
	caFile                   string
	insecure                 bool
	timeout                  time.Duration
	concurrency              int
	retries                  int
	keepalive                time.Duration

	// sessions are the sessions held (idle, messages, failover) or the
	// accounts cycled through (logins); first is the first account.
	sessions, first int
	logins          int // logins: how many
	settle, hold    time.Duration

	rate, rateStep  float64
	duration, drain time.Duration
	findMax         bool
	maxSteps        int
	maxP99          time.Duration
	killPID         int
	killAfter, slow time.Duration
	loginRate       float64
}

// fleetWorkerConfig is what the parent tells a load process.
type fleetWorkerConfig struct {
	Mode        string        `json:"mode"`
	Gateways    []string      `json:"gateways"`
	Sources     []string      `json:"sources,omitempty"`
	Prefix      string        `json:"prefix"`
	Domain      string        `json:"domain"`
	Password    string        `json:"password"`
	TLS         bool          `json:"tls"`
	DirectTLS   bool          `json:"direct_tls"`
	CAFile      string        `json:"ca_file,omitempty"`
	Insecure    bool          `json:"insecure"`
	Timeout     time.Duration `json:"timeout"`
	First       int           `json:"first"`
	Count       int           `json:"count"`
	Total       int           `json:"total"`
	Concurrency int           `json:"concurrency"`
	Logins      int           `json:"logins,omitempty"`
	Retries     int           `json:"retries,omitempty"`
	Keepalive   time.Duration `json:"keepalive,omitempty"`
}

// fleetCmd is a command to a load process.
type fleetCmd struct {
	Cmd  string                `json:"cmd"` // exclude, step, count, report, close
	Step *loadtest.StepCommand `json:"step,omitempty"`
	Idx  int                   `json:"idx"`
	IDs  []int                 `json:"ids,omitempty"` // exclude
}

// fleetMsg is what a load process reports.
type fleetMsg struct {
	Ev        string                 `json:"ev"` // progress, ready, logins, sent, count, report, closed, error
	Progress  *loadtest.MeterReading `json:"progress,omitempty"`
	Logins    *loadtest.LoginStats   `json:"logins,omitempty"`
	Sent      uint64                 `json:"sent,omitempty"`
	WindowNs  int64                  `json:"window_ns,omitempty"` // how long the sending took
	Delivered uint64                 `json:"delivered,omitempty"`
	Errors    uint64                 `json:"errors,omitempty"`
	Report    *loadtest.StepReport   `json:"report,omitempty"`
	Closes    *benchCloses           `json:"closes,omitempty"`
	Error     string                 `json:"error,omitempty"`
}

// benchFleetWorker is a load process of a fleet run.
func benchFleetWorker(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 64<<10), 64<<20)
	if !in.Scan() {
		return errors.New("bench fleet-worker: no settings on stdin")
	}
	var c fleetWorkerConfig
	if err := json.Unmarshal(in.Bytes(), &c); err != nil {
		return fmt.Errorf("bench fleet-worker: %w", err)
	}
	var mu sync.Mutex
	enc := json.NewEncoder(stdout)
	emit := func(m fleetMsg) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(m)
	}
	meter := loadtest.NewMeter()
	o := loadtest.Options{Domain: c.Domain, Password: c.Password, TLS: c.TLS || c.DirectTLS, DirectTLS: c.DirectTLS,
		Timeout: c.Timeout, Keys: loadtest.NewKeyCache(), Meter: meter}
	if o.TLS {
		tc, _, err := benchTLS(c.Domain, c.CAFile, c.Insecure, false, c.DirectTLS)
		if err != nil {
			return err
		}
		o.TLSConfig = tc
	}
	w, err := loadtest.NewFleetWorker(loadtest.FleetConfig{Options: o, Gateways: c.Gateways, Sources: c.Sources, Prefix: c.Prefix,
		First: c.First, Count: c.Count, Total: c.Total, Concurrency: c.Concurrency, Retries: c.Retries, Keepalive: c.Keepalive, Read: c.Mode == "messages" || c.Mode == "failover"})
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				r := meter.Read()
				emit(fleetMsg{Ev: "progress", Progress: &r})
			}
		}
	}()
	if c.Mode == "logins" {
		st, closes := w.FleetLogins(ctx, c.Logins)
		bc := closesOf(closes)
		r := meter.Read()
		emit(fleetMsg{Ev: "progress", Progress: &r})
		emit(fleetMsg{Ev: "logins", Logins: &st, Closes: &bc})
		return nil
	}
	st := w.Login(ctx)
	r := meter.Read()
	emit(fleetMsg{Ev: "progress", Progress: &r})
	emit(fleetMsg{Ev: "ready", Logins: &st})
	for in.Scan() {
		var cmd fleetCmd
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			emit(fleetMsg{Ev: "error", Error: err.Error()})
			continue
		}
		switch cmd.Cmd {
		case "exclude":
			w.Exclude(cmd.IDs)
			emit(fleetMsg{Ev: "excluded"})
		case "step":
			if cmd.Step == nil {
				emit(fleetMsg{Ev: "error", Error: "step without settings"})
				continue
			}
			n, window, err := w.Step(ctx, *cmd.Step)
			m := fleetMsg{Ev: "sent", Sent: n, WindowNs: int64(window)}
			if err != nil {
				m.Error = err.Error()
			}
			emit(m)
		case "count":
			d, e := w.Delivered(cmd.Idx)
			emit(fleetMsg{Ev: "count", Delivered: d, Errors: e})
		case "report":
			rep := w.Report(cmd.Idx)
			emit(fleetMsg{Ev: "report", Report: &rep})
		case "close":
			bc := closesOf(w.Close())
			emit(fleetMsg{Ev: "closed", Closes: &bc})
			return nil
		default:
			emit(fleetMsg{Ev: "error", Error: "unknown command " + strconv.Quote(cmd.Cmd)})
		}
	}
	// The parent went away: end the sessions all the same.
	w.Close()
	return in.Err()
}

// fleetProc is a load process as the parent sees it.
type fleetProc struct {
	i     int
	cmd   *exec.Cmd
	in    io.WriteCloser
	msgs  chan fleetMsg
	ended chan struct{}
	err   error
}

func (p *fleetProc) send(c fleetCmd) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = p.in.Write(append(b, '\n'))
	return err
}

// next returns the next message of kind ev, skipping progress.
func (p *fleetProc) next(ctx context.Context, ev string) (fleetMsg, error) {
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				<-p.ended
				return fleetMsg{}, fmt.Errorf("load process %d ended: %v", p.i, p.err)
			}
			if m.Ev == "error" {
				return m, fmt.Errorf("load process %d: %s", p.i, m.Error)
			}
			if m.Ev == ev {
				return m, nil
			}
		case <-ctx.Done():
			return fleetMsg{}, ctx.Err()
		}
	}
}

// fleet is the parent's side of a run: its load processes and the sum of
// their progress.
type fleet struct {
	run   *fleetRun
	procs []*fleetProc
	meter *loadtest.Meter
	mu    sync.Mutex
	seen  []loadtest.MeterReading
}

// start starts the load processes, each with its share of the sessions.
func (f *fleet) start(ctx context.Context, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r := f.run
	f.seen = make([]loadtest.MeterReading, r.workers)
	conc := max((r.concurrency+r.workers-1)/r.workers, 1)
	for i := range r.workers {
		lo, hi := r.sessions*i/r.workers, r.sessions*(i+1)/r.workers
		c := fleetWorkerConfig{Mode: r.mode, Gateways: r.gateways, Sources: r.sources, Prefix: r.prefix, Domain: r.domain,
			Password: r.password, TLS: r.tls, DirectTLS: r.directTLS, CAFile: r.caFile, Insecure: r.insecure, Timeout: r.timeout,
			First: r.first + lo, Count: hi - lo, Total: r.first + r.sessions, Concurrency: conc, Retries: r.retries, Keepalive: r.keepalive}
		if r.mode == "logins" {
			c.Logins = r.logins*(i+1)/r.workers - r.logins*i/r.workers
		}
		cmd := exec.Command(exe, "bench", fleetWorkerMode)
		cmd.Stderr = stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("load process %d: %w", i, err)
		}
		p := &fleetProc{i: i, cmd: cmd, in: in, msgs: make(chan fleetMsg, 16), ended: make(chan struct{})}
		f.procs = append(f.procs, p)
		go func() {
			defer close(p.msgs)
			s := bufio.NewScanner(out)
			s.Buffer(make([]byte, 64<<10), 256<<20)
			for s.Scan() {
				var m fleetMsg
				if json.Unmarshal(s.Bytes(), &m) != nil {
					continue
				}
				if m.Ev == "progress" && m.Progress != nil {
					f.progress(p.i, *m.Progress)
					continue
				}
				p.msgs <- m
			}
		}()
		go func() {
			p.err = cmd.Wait()
			close(p.ended)
		}()
		b, _ := json.Marshal(c)
		if _, err := in.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("load process %d: %w", i, err)
		}
	}
	return nil
}

// progress folds a load process's counts into the run's meter.
func (f *fleet) progress(i int, r loadtest.MeterReading) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen[i] = r
	var sum loadtest.MeterReading
	for _, s := range f.seen {
		sum.LoggedIn += s.LoggedIn
		sum.Failed += s.Failed
		sum.Sent += s.Sent
		sum.Delivered += s.Delivered
		sum.Errors += s.Errors
	}
	f.meter.Set(sum)
}

// all sends c to every load process (unless c.Cmd is empty) and returns
// their answers of kind ev.
func (f *fleet) all(ctx context.Context, c fleetCmd, ev string) ([]fleetMsg, error) {
	if c.Cmd != "" {
		for _, p := range f.procs {
			if err := p.send(c); err != nil {
				return nil, fmt.Errorf("load process %d: %w", p.i, err)
			}
		}
	}
	out := make([]fleetMsg, len(f.procs))
	var errs []error
	for i, p := range f.procs {
		m, err := p.next(ctx, ev)
		if err != nil {
			errs = append(errs, err)
		}
		out[i] = m
	}
	return out, errors.Join(errs...)
}

// stop closes the sessions of every load process and waits for them.
func (f *fleet) stop() benchCloses {
	var bc benchCloses
	ctx, cancel := context.WithTimeout(context.Background(), f.run.timeout+30*time.Second)
	defer cancel()
	for _, p := range f.procs {
		_ = p.send(fleetCmd{Cmd: "close"})
	}
	for _, p := range f.procs {
		if m, err := p.next(ctx, "closed"); err == nil && m.Closes != nil {
			bc.StreamEnd += m.Closes.StreamEnd
			bc.EOF += m.Closes.EOF
			bc.Other += m.Closes.Other
		}
		p.in.Close()
		select {
		case <-p.ended:
		case <-ctx.Done():
			_ = p.cmd.Process.Kill()
			<-p.ended
		}
	}
	return bc
}

// mergeLogins adds up the logins of the load processes: the counts and
// latencies sum, and the wall time is the longest, as they ran at once.
func mergeLogins(ms []fleetMsg) (*benchLogins, *loadtest.Histogram) {
	var (
		l    benchLogins
		h    = new(loadtest.Histogram)
		wall time.Duration
	)
	for _, m := range ms {
		if m.Logins == nil {
			continue
		}
		l.OK += m.Logins.OK
		l.Failed += m.Logins.Failed
		l.Retried += m.Logins.Retried
		wall = max(wall, time.Duration(m.Logins.WallNs))
		h.Add(m.Logins.Latency)
		if l.FirstErr == "" {
			l.FirstErr = m.Logins.FirstErr
		}
	}
	l.Seconds = wall.Seconds()
	if l.Seconds > 0 {
		l.PerSecond = float64(l.OK) / l.Seconds
	}
	l.Latency = latencyOf(h)
	return &l, h
}

// sampleServers measures the server processes: three samples a second
// apart, keeping the one with the smallest total, so that a collection
// in progress counts as little as it can.
func sampleServers(ctx context.Context, pids []int) ([]loadtest.ProcUsage, int64, error) {
	var best []loadtest.ProcUsage
	var bestTotal int64 = -1
	for i := range 3 {
		if i > 0 {
			sleep(ctx, time.Second)
		}
		s, err := loadtest.SampleProcs(pids)
		if err != nil {
			return nil, 0, err
		}
		var total int64
		for _, g := range s {
			total += g.PSSKiB
		}
		if bestTotal < 0 || total < bestTotal {
			best, bestTotal = s, total
		}
	}
	return best, bestTotal, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// serverCPU is the CPU time of the server processes, 0 without any.
func serverCPU(pids []int) time.Duration {
	if len(pids) == 0 {
		return 0
	}
	s, err := loadtest.SampleProcs(pids)
	if err != nil {
		return 0
	}
	var cpu time.Duration
	for _, g := range s {
		cpu += g.CPU
	}
	return cpu
}

// benchFleet runs r and reports as the other modes do.
func benchFleet(ctx context.Context, r *fleetRun, out, stdout, stderr io.Writer, rep *benchReport, jsonPath string) error {
	started := rep.Started
	meter := loadtest.NewMeter()
	f := &fleet{run: r, meter: meter}
	fmt.Fprintf(out, "fleet: %d sessions over %d gateways (%s), %d load processes", r.sessions, len(r.gateways), strings.Join(r.gateways, ","), r.workers)
	if len(r.sources) > 0 {
		fmt.Fprintf(out, ", from %s", strings.Join(r.sources, ","))
	}
	fmt.Fprintln(out)
	rep.Fleet = &benchFleetInfo{Gateways: r.gateways, Sources: r.sources, Workers: r.workers, Sessions: r.sessions}
	var before []loadtest.ProcUsage
	var beforeTotal int64
	var err error
	if len(r.serverPIDs) > 0 && r.mode != "logins" {
		meter.SetPhase("sampling the servers")
		if before, beforeTotal, err = sampleServers(ctx, r.serverPIDs); err != nil {
			return err
		}
	}
	prog := startProgress(stderr, meter, r.mode)
	meter.SetPhase("logging in")
	err = f.start(ctx, stderr)
	if err == nil {
		switch r.mode {
		case "logins":
			err = f.logins(ctx, out, rep, prog)
		case "idle":
			err = f.idle(ctx, out, rep, prog, before, beforeTotal)
		case "messages":
			err = f.messages(ctx, out, rep, prog, before, beforeTotal)
		case "failover":
			err = f.failover(ctx, out, rep, prog, before, beforeTotal)
		}
	}
	if r.mode != "logins" && len(f.procs) > 0 {
		meter.SetPhase("closing")
		rep.Closes = f.stop()
		fmt.Fprintf(out, "closing: %d answered </stream:stream>, %d TCP close without </stream:stream>, %d other (timeout/error)\n",
			rep.Closes.StreamEnd, rep.Closes.EOF, rep.Closes.Other)
	} else {
		for _, p := range f.procs {
			p.in.Close()
			<-p.ended
		}
	}
	prog.Stop()
	rep.Seconds = time.Since(started).Seconds()
	if err != nil {
		rep.Error = err.Error()
	}
	rep.table(out)
	if jsonPath != "" {
		if jerr := rep.writeJSON(jsonPath, stdout); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

func (f *fleet) logins(ctx context.Context, out io.Writer, rep *benchReport, prog *progress) error {
	cpu0 := serverCPU(f.run.serverPIDs)
	msgs, err := f.all(ctx, fleetCmd{}, "logins")
	cpu1 := serverCPU(f.run.serverPIDs)
	prog.Stop()
	l, h := mergeLogins(msgs)
	var bc benchCloses
	for _, m := range msgs {
		if m.Closes != nil {
			bc.StreamEnd += m.Closes.StreamEnd
			bc.EOF += m.Closes.EOF
			bc.Other += m.Closes.Other
		}
	}
	rep.Closes = bc
	fmt.Fprintf(out, "logins: %d ok, %d failed, %.2fs wall (the slowest load process)\n", l.OK, l.Failed, l.Seconds)
	fmt.Fprintf(out, "rate: %.0f logins/s for the whole fleet (connect+auth+bind+disconnect)\n", l.PerSecond)
	printLatency(out, "login latency (first byte to bind result)", h)
	if len(f.run.serverPIDs) > 0 && l.OK > 0 {
		l.ServerCPUms = ms(cpu1-cpu0) / float64(l.OK)
		fmt.Fprintf(out, "server CPU: %.3f ms per login, all server processes (%.2fs in all)\n", l.ServerCPUms, (cpu1 - cpu0).Seconds())
	}
	if l.FirstErr != "" {
		fmt.Fprintf(out, "first error: %s\n", l.FirstErr)
	}
	rep.Logins = l
	return err
}

// ready waits for every load process to have logged its sessions in.
func (f *fleet) ready(ctx context.Context, out io.Writer, rep *benchReport) (*benchLogins, error) {
	ms, err := f.all(ctx, fleetCmd{}, "ready")
	l, h := mergeLogins(ms)
	var failed []int
	for _, m := range ms {
		if m.Logins != nil {
			failed = append(failed, m.Logins.FailedIDs...)
		}
	}
	if len(failed) > 0 && err == nil && (f.run.mode == "messages" || f.run.mode == "failover") {
		// Messages to them would wait in offline storage and count as
		// lost: leave them out, and say so.
		_, err = f.all(ctx, fleetCmd{Cmd: "exclude", IDs: failed}, "excluded")
	}
	rep.Logins = l
	fmt.Fprintf(out, "connected: %d ok, %d failed, %d attempts tried again, %.2fs (the slowest load process)\n", l.OK, l.Failed, l.Retried, l.Seconds)
	fmt.Fprintf(out, "login rate: %.0f logins/s for the whole fleet\n", l.PerSecond)
	printLatency(out, "login latency (first byte to bind result)", h)
	if l.FirstErr != "" {
		fmt.Fprintf(out, "first error: %s\n", l.FirstErr)
	}
	if len(failed) > 0 && (f.run.mode == "messages" || f.run.mode == "failover") {
		fmt.Fprintf(out, "the %d sessions that failed to log in get no messages (at most 1%% may fail)\n", len(failed))
	}
	return l, err
}

func (f *fleet) idle(ctx context.Context, out io.Writer, rep *benchReport, prog *progress, before []loadtest.ProcUsage, beforeTotal int64) error {
	l, err := f.ready(ctx, out, rep)
	if err != nil {
		return err
	}
	f.meter.SetPhase("idle")
	if err := f.memory(ctx, out, rep, l, before, beforeTotal); err != nil {
		return err
	}
	prog.Stop()
	sleep(ctx, f.run.hold)
	return nil
}

// memory measures the servers, with --server-pids, and the load
// processes once the sessions are open, after --settle: what they cost
// over the baseline taken before the first login.
func (f *fleet) memory(ctx context.Context, out io.Writer, rep *benchReport, l *benchLogins, before []loadtest.ProcUsage, beforeTotal int64) error {
	if len(f.run.serverPIDs) > 0 {
		sleep(ctx, f.run.settle)
		f.meter.SetPhase("sampling the servers")
		after, afterTotal, err := sampleServers(ctx, f.run.serverPIDs)
		if err != nil {
			return err
		}
		per := float64(afterTotal-beforeTotal) / float64(max(l.OK, 1))
		rep.Memory = &benchMemory{BeforeKiB: beforeTotal, AfterKiB: afterTotal, PerItemKiB: per}
		fmt.Fprintf(out, "server memory (PSS, all server processes and their children): before %d KiB, idle %d KiB, %.1f KiB per session\n",
			beforeTotal, afterTotal, per)
		for _, a := range after {
			var b loadtest.ProcUsage
			for _, x := range before {
				if x.Name == a.Name {
					b = x
				}
			}
			p := benchProc{Name: a.Name, Procs: a.Procs, BeforeKiB: b.PSSKiB, AfterKiB: a.PSSKiB,
				PerSessionKiB: float64(a.PSSKiB-b.PSSKiB) / float64(max(l.OK, 1))}
			rep.Processes = append(rep.Processes, p)
			fmt.Fprintf(out, "  %-22s %4d processes  before %9d KiB  idle %9d KiB  %.2f KiB per session\n", p.Name, p.Procs, p.BeforeKiB, p.AfterKiB, p.PerSessionKiB)
		}
	}
	// The load processes' own memory: on one machine, they share it with
	// the servers.
	var pids []int
	for _, p := range f.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	if s, err := loadtest.SampleProcs(pids); err == nil && len(s) > 0 {
		var kib int64
		for _, g := range s {
			kib += g.PSSKiB
		}
		rep.ClientKiB = kib
		fmt.Fprintf(out, "load processes: %d KiB (PSS), %.1f KiB per session\n", kib, float64(kib)/float64(max(l.OK, 1)))
	}
	return nil
}

// fleetStep runs one step of messages over the whole fleet: every load
// process sends its share, then the parent waits until every message
// arrived or came back as an error, or the drain time passed.
func (f *fleet) step(ctx context.Context, idx int, rate float64, record bool, loginRate float64, during func()) (benchStep, []loadtest.StepReport, time.Duration, error) {
	n := float64(len(f.procs))
	sc := loadtest.StepCommand{Step: idx, Rate: rate / n, Duration: f.run.duration, Record: record, LoginRate: loginRate / n}
	cpu0 := serverCPU(f.run.serverPIDs)
	for _, p := range f.procs {
		if err := p.send(fleetCmd{Cmd: "step", Step: &sc}); err != nil {
			return benchStep{}, nil, 0, err
		}
	}
	if during != nil {
		during()
	}
	ms, err := f.all(ctx, fleetCmd{}, "sent")
	var (
		sent   uint64
		window time.Duration
	)
	for _, m := range ms {
		sent += m.Sent
		window = max(window, time.Duration(m.WindowNs))
		if m.Error != "" && err == nil {
			err = errors.New(m.Error)
		}
	}
	if _, cerr := f.drain(ctx, idx, sent); cerr != nil {
		return benchStep{}, nil, 0, cerr
	}
	cpu1 := serverCPU(f.run.serverPIDs)
	rs, rerr := f.all(ctx, fleetCmd{Cmd: "report", Idx: idx}, "report")
	if rerr != nil {
		return benchStep{}, nil, 0, rerr
	}
	var (
		h       loadtest.Histogram
		reports []loadtest.StepReport
		s       = benchStep{Target: rate, Sent: sent, Expected: sent, Seconds: window.Seconds()}
	)
	for _, m := range rs {
		if m.Report == nil {
			continue
		}
		reports = append(reports, *m.Report)
		s.Delivered += m.Report.Delivered
		s.Duplicates += m.Report.Duplicates
		s.Errors += m.Report.Errors
		s.Unmatched += m.Report.Unmatched
		h.Add(m.Report.Latency)
	}
	s.SentPerSecond = float64(sent) / max(window.Seconds(), 1e-9)
	s.DeliveredPerSecond = float64(s.Delivered) / max(window.Seconds(), 1e-9)
	s.Loss = lossOf(s.Sent, s.Delivered)
	s.Latency = latencyOf(&h)
	if len(f.run.serverPIDs) > 0 {
		s.ServerCPUms = (cpu1 - cpu0).Milliseconds()
	}
	s.Passed = s.Delivered == s.Sent && s.Duplicates == 0 && s.Errors == 0 &&
		h.Percentile(0.99) <= f.run.maxP99 && s.SentPerSecond >= 0.95*rate
	return s, reports, window, err
}

// drain waits up to the run's drain time for the sent messages of step
// idx to arrive (or bounce), and returns how many did.
func (f *fleet) drain(ctx context.Context, idx int, sent uint64) (uint64, error) {
	deadline := time.Now().Add(f.run.drain)
	for {
		cs, err := f.all(ctx, fleetCmd{Cmd: "count", Idx: idx}, "count")
		if err != nil {
			return 0, err
		}
		var got uint64
		for _, c := range cs {
			got += c.Delivered + c.Errors
		}
		if got >= sent || ctx.Err() != nil || !time.Now().Before(deadline) {
			return got, nil
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

func printStep(out io.Writer, i int, s benchStep, maxP99 time.Duration) {
	fmt.Fprintf(out, "step %d: target %.0f msg/s, sent %d in %.2fs (%.0f msg/s), delivered %d once, %d duplicates, %d not arrived within the drain, errors %d\n",
		i+1, s.Target, s.Sent, s.Seconds, s.SentPerSecond, s.Delivered, s.Duplicates, s.Sent-min(s.Sent, s.Delivered), s.Errors)
	fmt.Fprintf(out, "  latency (send to receive, sender and addressee on different gateways): n=%d p50 %.2f ms p90 %.2f ms p99 %.2f ms max %.2f ms\n",
		s.Latency.N, s.Latency.P50ms, s.Latency.P90ms, s.Latency.P99ms, s.Latency.MaxMs)
	if s.Unmatched > 0 {
		fmt.Fprintf(out, "  %d messages received with ids of no step of this run\n", s.Unmatched)
	}
	if s.ServerCPUms > 0 {
		fmt.Fprintf(out, "  server CPU: %d ms, all server processes, %.1f ms per 1000 messages\n", s.ServerCPUms, float64(s.ServerCPUms)*1000/float64(max(s.Delivered, 1)))
	}
	pass := "pass"
	if !s.Passed {
		pass = "FAIL"
	}
	fmt.Fprintf(out, "  %s (every message once, no errors, p99 <= %v, >= 95%% of target)\n", pass, maxP99)
}

func (f *fleet) messages(ctx context.Context, out io.Writer, rep *benchReport, prog *progress, before []loadtest.ProcUsage, beforeTotal int64) error {
	if len(f.run.gateways) < 2 {
		return errors.New("messages over a fleet go between gateways: give at least two in --gateways")
	}
	l, err := f.ready(ctx, out, rep)
	if err != nil {
		return err
	}
	if l.Failed > l.OK/100 {
		return fmt.Errorf("%d sessions failed to log in", l.Failed)
	}
	if err := f.memory(ctx, out, rep, l, before, beforeTotal); err != nil {
		return err
	}
	steps := 1
	if f.run.findMax {
		steps = min(max(f.run.maxSteps, 1), 60)
	}
	rate := f.run.rate
	for i := range steps {
		f.meter.SetPhase(fmt.Sprintf("step %d at %.0f msg/s", i+1, rate))
		s, _, _, err := f.step(ctx, i, rate, false, 0, nil)
		if err != nil {
			return err
		}
		rep.Steps = append(rep.Steps, s)
		printStep(out, i, s, f.run.maxP99)
		if !s.Passed {
			break
		}
		if f.run.findMax {
			rep.MaxPassingRate = rate
		}
		rate += f.run.rateStep
	}
	prog.Stop()
	if f.run.findMax {
		fmt.Fprintf(out, "highest passing rate: %.0f msg/s\n", rep.MaxPassingRate)
	}
	return nil
}

// failover runs three steps of messages with logins tried alongside:
// before, while and after one server process (a session manager
// instance) is killed with SIGKILL, and reports how long its users went
// unserved.
func (f *fleet) failover(ctx context.Context, out io.Writer, rep *benchReport, prog *progress, before []loadtest.ProcUsage, beforeTotal int64) error {
	r := f.run
	if len(r.gateways) < 2 {
		return errors.New("failover: give at least two gateways in --gateways")
	}
	l, err := f.ready(ctx, out, rep)
	if err != nil {
		return err
	}
	if l.Failed > l.OK/100 {
		return fmt.Errorf("%d sessions failed to log in", l.Failed)
	}
	if err := f.memory(ctx, out, rep, l, before, beforeTotal); err != nil {
		return err
	}
	fo := &benchFailover{PID: r.killPID, SlowMs: ms(r.slow)}
	rep.Failover = fo
	names := []string{"before the kill", "the kill", "after"}
	var killedAt time.Time
	for i, name := range names {
		f.meter.SetPhase(fmt.Sprintf("step %d (%s)", i+1, name))
		var during func()
		if i == 1 {
			during = func() {
				sleep(ctx, r.killAfter)
				killedAt = time.Now()
				if err := syscall.Kill(r.killPID, syscall.SIGKILL); err != nil {
					fo.Error = err.Error()
				}
				fmt.Fprintf(out, "killed process %d with SIGKILL at %s\n", r.killPID, killedAt.UTC().Format("15:04:05.000"))
			}
		}
		s, reports, _, err := f.step(ctx, i, r.rate, true, r.loginRate, during)
		if err != nil {
			return err
		}
		probes := loginsOf(reports)
		for _, p := range probes {
			if p.OK {
				s.LoginsOK++
			} else {
				s.LoginsFailed++
			}
		}
		rep.Steps = append(rep.Steps, s)
		printStep(out, i, s, r.maxP99)
		fmt.Fprintf(out, "  logins tried alongside: %d ok, %d failed\n", s.LoginsOK, s.LoginsFailed)
		if i == 1 {
			recoverFigures(fo, killedAt, r.slow, reports, probes)
			fo.print(out)
		}
		if i == 2 {
			fo.ServedAfter = s.Delivered == s.Sent && s.Duplicates == 0 && s.Errors == 0 && s.LoginsFailed == 0
		}
	}
	// A message missing at the end of its step's drain may come later
	// (one stored for a user whose session the survivor had not taken
	// yet): lost is what has not come by the end of the run.
	for i := range 2 {
		s := &rep.Steps[len(rep.Steps)-3+i]
		got, err := f.drain(ctx, i, s.Sent)
		if err != nil {
			return err
		}
		s.DeliveredByEnd = got
		fmt.Fprintf(out, "step %d: %d of %d arrived by the end of the run (%d after their step's drain)\n", i+1, got, s.Sent, got-min(got, s.Delivered))
		if i == 1 {
			fo.LostByEnd = int(s.Sent - min(got, s.Sent))
		}
	}
	prog.Stop()
	if !fo.ServedAfter {
		return errors.New("failover: after the kill, not every message arrived once or a login failed")
	}
	return nil
}

func loginsOf(reports []loadtest.StepReport) []loadtest.LoginProbe {
	var ps []loadtest.LoginProbe
	for _, r := range reports {
		ps = append(ps, r.Logins...)
	}
	slices.SortFunc(ps, func(a, b loadtest.LoginProbe) int { return int(a.At - b.At) })
	return ps
}

// recoverFigures works out from the records of the kill's step when the
// killed instance's users were served again. A message is disrupted when
// it was sent from slow before the kill on and arrived later than slow,
// or never; the messages are served again once the last disrupted one
// arrived (or, lost, was sent). Logins are served again at the first
// success after the last failure.
func recoverFigures(fo *benchFailover, killedAt time.Time, slow time.Duration, reports []loadtest.StepReport, probes []loadtest.LoginProbe) {
	k := killedAt.UnixNano()
	since := func(t int64) float64 { return float64(t-k) / 1e9 }
	arrived := map[[2]int]loadtest.Arrival{}
	for _, r := range reports {
		for _, a := range r.Arrivals {
			arrived[[2]int{a.Sender, a.Seq}] = a
		}
	}
	var last int64
	for _, r := range reports {
		for _, s := range r.Sent {
			if s.At < k-int64(slow) {
				continue
			}
			a, ok := arrived[[2]int{s.Sender, s.Seq}]
			if ok {
				fo.MaxLatencyMs = max(fo.MaxLatencyMs, float64(a.At-a.SentAt)/1e6)
			}
			switch {
			case !ok:
				fo.Lost++
				fo.Disrupted++
				last = max(last, s.At)
			case a.At-a.SentAt > int64(slow):
				fo.Disrupted++
				last = max(last, a.At)
			}
		}
	}
	if last > 0 {
		fo.MessagesServedAfterS = max(since(last), 0)
	}
	var lastFail int64
	for _, p := range probes {
		if !p.OK && p.At >= k {
			fo.LoginsFailed++
			lastFail = p.At
			if fo.FirstLoginErr == "" {
				fo.FirstLoginErr = p.Err
			}
		}
	}
	if lastFail > 0 {
		fo.LoginsServedAfterS = -1 // no success after the last failure
		for _, p := range probes {
			if p.OK && p.At > lastFail {
				fo.LoginsServedAfterS = since(p.At)
				break
			}
		}
	}
	fo.ServedAgainS = max(fo.MessagesServedAfterS, fo.LoginsServedAfterS)
	if fo.LoginsServedAfterS < 0 {
		fo.ServedAgainS = -1
	}
}

func (fo *benchFailover) print(out io.Writer) {
	fmt.Fprintf(out, "failover: %d messages disrupted (later than %.0f ms or missing), %d missing after the step's drain; last disrupted one at +%.3fs after the kill; slowest %.1f ms\n",
		fo.Disrupted, fo.SlowMs, fo.Lost, fo.MessagesServedAfterS, fo.MaxLatencyMs)
	switch {
	case fo.LoginsFailed == 0:
		fmt.Fprintf(out, "failover: no login failed\n")
	case fo.LoginsServedAfterS < 0:
		fmt.Fprintf(out, "failover: %d logins failed, none succeeded after the last failure (first error: %s)\n", fo.LoginsFailed, fo.FirstLoginErr)
	default:
		fmt.Fprintf(out, "failover: %d logins failed (first error: %s); logins served again from +%.3fs\n", fo.LoginsFailed, fo.FirstLoginErr, fo.LoginsServedAfterS)
	}
	if fo.ServedAgainS >= 0 {
		fmt.Fprintf(out, "failover: the killed instance's users served again %.3fs after the kill\n", fo.ServedAgainS)
	}
}

// parseFleetList splits a comma-separated flag value.
func parseFleetList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parsePIDs parses --server-pids.
func parsePIDs(v string) ([]int, error) {
	var pids []int
	for _, s := range parseFleetList(v) {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--server-pids: %q is not a process id", s)
		}
		pids = append(pids, n)
	}
	return pids, nil
}

// benchFleetCmd checks a fleet run's settings and runs it.
func benchFleetCmd(ctx context.Context, fs *command, r *fleetRun, jsonPath string, owned bool, stdout, stderr io.Writer) error {
	if r.sessions < 1 {
		return fs.wrongArgs("a fleet run needs at least one session")
	}
	loopback := true
	for _, g := range r.gateways {
		lb, err := guardTarget(ctx, "--gateways", g, owned, stderr)
		if err != nil {
			return err
		}
		loopback = loopback && lb
	}
	if r.tls && r.caFile == "" && loopback {
		r.insecure = true // a self-signed certificate on this machine, as for --addr
	}
	if r.workers <= 0 {
		r.workers = (r.sessions + sessionsPerWorker - 1) / sessionsPerWorker
	}
	r.workers = min(r.workers, r.sessions)
	if files := fileLimit(); files > 0 && r.mode != "logins" {
		// Each session is a socket; the rest is for the process itself
		// and the logins tried alongside.
		if per := (r.sessions + r.workers - 1) / r.workers; uint64(per)+256 > files {
			return fs.wrongArgs(fmt.Sprintf("%d sessions per load process exceed the file limit of %d: raise --workers", per, files))
		}
	}
	for _, pid := range r.serverPIDs {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("--server-pids: no process %d on this machine", pid)
		}
	}
	out := stdout
	if jsonPath == "-" {
		out = stderr
	}
	sec := "plain"
	security := "plain TCP (no TLS)"
	if r.tls {
		sec, security = "starttls", "STARTTLS"
		if r.directTLS {
			sec, security = "direct-tls", "direct TLS"
		}
	}
	started := time.Now()
	fmt.Fprintf(out, "bench %s: %s, SCRAM-SHA-1, fleet of %d gateways (%s), %s\n", r.mode, security, len(r.gateways), r.domain, started.Format(time.RFC3339))
	rep := &benchReport{Mode: r.mode, Server: strings.Join(r.gateways, ","), Domain: r.domain, Security: sec, Mechanism: "SCRAM-SHA-1",
		Started: started.UTC(), Params: map[string]any{}}
	fs.VisitAll(func(f *flag.Flag) {
		switch f.Name {
		case "password", "cpuprofile", "json":
		default:
			rep.Params[f.Name] = f.Value.String()
		}
	})
	return benchFleet(ctx, r, out, stdout, stderr, rep, jsonPath)
}
