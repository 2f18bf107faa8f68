package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/loadtest"
)

const benchUsage = `usage: ambrosia bench <mode> [flags]

modes:
  users      create load accounts PREFIX0…PREFIX(N-1) directly in the database
  idle       open N sessions, keep them idle, report server RSS per connection
  logins     log in and out N times, report logins/s and latency
  messages   chat between pairs of sessions at a rate, report latency and server CPU
  muc        seat occupants in multi-user chat rooms, send at a rate, report join
             times, deliveries per second, loss, latency, server CPU and memory

The load client only connects to loopback addresses.
Run 'ambrosia bench <mode> -h' for the flags of a mode.
`

// benchAbout says what each mode does.
var benchAbout = map[string]string{
	"users":    "Creates the load accounts PREFIX0…PREFIX(N-1) directly in the database.",
	"idle":     "Opens --count sessions, keeps them idle and reports the server's RSS per connection.",
	"logins":   "Logs in and out --count times and reports logins/s and latency.",
	"messages": "Chats between pairs of sessions at a rate and reports latency and server CPU.",
	"muc":      "Seats occupants in multi-user chat rooms, sends at a rate and reports join times,\ndeliveries per second, loss, latency, server CPU and memory.",
}

// benchCmd runs the load client against a server on this machine; the
// figures it prints are how Ambrosia's performance claims are measured.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	mode, err := subcommand("bench", args, []string{"users", "idle", "logins", "messages", "muc"}, benchUsage, stdout, stderr)
	if err != nil {
		return err
	}
	fs := newCommand("bench "+mode, "[flags]", benchAbout[mode], stdout, stderr)
	domain := fs.String("domain", "localhost", "XMPP `DOMAIN` of the load accounts")
	prefix := fs.String("prefix", "load", "local part prefix of the load accounts")
	password := fs.String("password", "loadpass", "password of every load account")
	if mode == "users" {
		return benchUsers(ctx, fs, args[1:], stdout, domain, prefix, password)
	}

	addr := fs.String("addr", "127.0.0.1:5222", "client listener (STARTTLS or plain), loopback only")
	useTLS := fs.Bool("tls", false, "negotiate STARTTLS before authenticating")
	caFile := fs.String("ca", "", "PEM certificate to trust for --tls (default: do not verify)")
	conc := fs.Int("concurrency", 100, "logins in flight")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on one connection's negotiation and on closing")
	pid := fs.Int("server-pid", 0, "server process to sample (/proc/PID); 0 disables")
	cpuProfile := fs.String("cpuprofile", "", "write the load client's own CPU profile to this file")
	var (
		count, pairs, maxSteps, users, first *int
		hold, settle, duration               *time.Duration
		rate, rateStep                       *float64
		findMax                              *bool
		maxP99                               *time.Duration
		remoteAddr, remoteDomain, remoteCA   *string
		rooms, occupants, joinConc, senders  *int
		service, roomPrefix                  *string
		maxLoss                              *float64
	)
	switch mode {
	case "idle":
		count = fs.Int("count", 10000, "connections to open")
		first = fs.Int("first", 0, "index of the first account")
		hold = fs.Duration("hold", 0, "keep the connections open this long after sampling")
		settle = fs.Duration("settle", 3*time.Second, "wait after the last login before sampling RSS")
	case "logins":
		count = fs.Int("count", 5000, "logins to run")
		users = fs.Int("users", 0, "accounts to cycle through (default --count)")
	case "messages":
		pairs = fs.Int("pairs", 1000, "pairs of sessions (accounts PREFIX0…PREFIX(2*pairs-1))")
		rate = fs.Float64("rate", 5000, "aggregate target rate, messages/s")
		duration = fs.Duration("duration", 20*time.Second, "sending window of each step")
		findMax = fs.Bool("find-max", false, "raise the rate step by step until p99 exceeds --max-p99")
		rateStep = fs.Float64("rate-step", 0, "rate increase per step with --find-max (default --rate)")
		maxSteps = fs.Int("max-steps", 10, "at most this many steps with --find-max")
		maxP99 = fs.Duration("max-p99", 100*time.Millisecond, "p99 latency a passing step stays within")
		remoteAddr = fs.String("remote-addr", "", "client listener of a second server: the odd account of each pair logs in there, so that messages cross federation")
		remoteDomain = fs.String("remote-domain", "", "XMPP domain of the accounts on --remote-addr")
		remoteCA = fs.String("remote-ca", "", "PEM certificate to trust for --tls on --remote-addr")
	case "muc":
		rooms = fs.Int("rooms", 1, "rooms")
		occupants = fs.Int("occupants", 100, "occupants of each room (accounts PREFIX0…PREFIX(rooms*occupants-1); occupant j of room r is PREFIX(r*occupants+j))")
		service = fs.String("service", "", "conference domain (default conference.DOMAIN)")
		roomPrefix = fs.String("room-prefix", "bench", "rooms are ROOM-PREFIX0…@SERVICE")
		joinConc = fs.Int("join-concurrency", 100, "joins in flight")
		senders = fs.Int("senders", 10, "occupants that send, spread over the rooms")
		rate = fs.Float64("rate", 100, "aggregate target rate, messages sent/s (each is delivered to every occupant of its room)")
		duration = fs.Duration("duration", 10*time.Second, "sending window of each step")
		findMax = fs.Bool("find-max", false, "raise the rate step by step until a step fails")
		rateStep = fs.Float64("rate-step", 0, "rate increase per step with --find-max (default --rate)")
		maxSteps = fs.Int("max-steps", 10, "at most this many steps with --find-max")
		maxP99 = fs.Duration("max-p99", 100*time.Millisecond, "a passing step's p99 latency stays below this")
		maxLoss = fs.Float64("max-loss", 0.001, "a passing step loses at most this fraction of the deliveries")
		settle = fs.Duration("settle", 3*time.Second, "wait after the logins and after the joins before sampling RSS")
	}
	if pos, err := fs.parse(args[1:]); err != nil {
		return err
	} else if len(pos) > 0 {
		return fs.wrongArgs(fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	if err := loopbackOnly(*addr); err != nil {
		return err
	}
	if *cpuProfile != "" {
		// The client shares the machine with the server: its own cost
		// is part of what a run's figures mean.
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	o := loadtest.Options{
		Addr: *addr, Domain: *domain, Password: *password, TLS: *useTLS,
		Timeout: *timeout, Keys: loadtest.NewKeyCache(),
	}
	security := "plain TCP (no STARTTLS)"
	if *useTLS {
		tc, verified, err := benchTLS(*domain, *caFile)
		if err != nil {
			return err
		}
		o.TLSConfig = tc
		security = "STARTTLS, full handshake per connection, certificate " + verified
	}
	fmt.Fprintf(stdout, "bench %s: %s, SCRAM-SHA-1, server %s, %s\n", mode, security, *addr, time.Now().Format(time.RFC3339))

	switch mode {
	case "idle":
		return benchIdle(ctx, stdout, stderr, loadtest.IdleConfig{
			Options: o, Prefix: *prefix, First: *first, Count: *count, Concurrency: *conc,
			ServerPID: *pid, Settle: *settle, Samples: 5, Hold: *hold, Progress: stderr,
		})
	case "logins":
		r := loadtest.Logins(ctx, loadtest.LoginsConfig{
			Options: o, Prefix: *prefix, Users: *users, Count: *count, Concurrency: *conc,
		})
		fmt.Fprintf(stdout, "logins: %d ok, %d failed, %d in flight, %.2fs wall\n", r.OK, r.Failed, *conc, r.Wall.Seconds())
		fmt.Fprintf(stdout, "rate: %.0f logins/s (connect+auth+bind+disconnect)\n", r.PerSecond())
		printLatency(stdout, "login latency (first byte to bind result)", &r.Latency)
		fmt.Fprintf(stdout, "closing: %v\n", &r.Closes)
		if r.FirstErr != nil {
			fmt.Fprintf(stdout, "first error: %v\n", r.FirstErr)
		}
		return nil
	case "muc":
		return benchMUC(ctx, stdout, loadtest.MUCConfig{
			Options: o, Prefix: *prefix, Rooms: *rooms, Occupants: *occupants,
			Service: *service, RoomPrefix: *roomPrefix,
			Concurrency: *conc, JoinConcurrency: *joinConc,
			Senders: *senders, Rate: *rate, Duration: *duration, ServerPID: *pid, Settle: *settle,
			FindMax: *findMax, RateStep: *rateStep, MaxSteps: *maxSteps, MaxP99: *maxP99, MaxLoss: *maxLoss,
			Progress: stderr,
		})
	default:
		var remote *loadtest.Options
		if *remoteAddr != "" {
			var err error
			if remote, err = benchRemote(o, *remoteAddr, *remoteDomain, *remoteCA); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "federated: odd accounts on %s (%s), messages cross server-to-server streams\n", *remoteDomain, *remoteAddr)
		}
		return benchMessages(ctx, stdout, stderr, loadtest.MessagesConfig{
			Options: o, Prefix: *prefix, Pairs: *pairs, Concurrency: *conc,
			Rate: *rate, Duration: *duration, ServerPID: *pid,
			FindMax: *findMax, RateStep: *rateStep, MaxSteps: *maxSteps, MaxP99: *maxP99,
			Progress: stderr, Remote: remote,
		})
	}
}

func benchUsers(ctx context.Context, fs *command, args []string, stdout io.Writer, domain, prefix, password *string) error {
	data := fs.String("data", "./data", "data directory `DIR` of the server")
	count := fs.Int("count", 10000, "accounts to create")
	if pos, err := fs.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fs.wrongArgs(fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	start := time.Now()
	created, existed, err := loadtest.CreateUsers(ctx, filepath.Join(*data, "ambrosia.db"), *domain, *prefix, *count, *password)
	fmt.Fprintf(stdout, "users: %d created, %d already existed (%s0…%s%d@%s) in %.2fs\n",
		created, existed, *prefix, *prefix, *count-1, *domain, time.Since(start).Seconds())
	return err
}

func benchIdle(ctx context.Context, stdout, stderr io.Writer, c loadtest.IdleConfig) error {
	r, err := loadtest.Idle(ctx, c)
	if r == nil {
		return err
	}
	fmt.Fprintf(stdout, "connected: %d ok, %d failed, %d in flight, %.2fs\n", r.Connected, r.Failed, c.Concurrency, r.LoginWall.Seconds())
	fmt.Fprintf(stdout, "login rate: %.0f logins/s\n", r.LoginsPerSecond())
	printLatency(stdout, "login latency (first byte to bind result)", &r.Latency)
	if c.ServerPID != 0 && r.RSSAfter.N > 0 {
		fmt.Fprintf(stdout, "server RSS before: min %d KiB, last %d KiB (%d samples)\n", r.RSSBefore.Min, r.RSSBefore.Last, r.RSSBefore.N)
		fmt.Fprintf(stdout, "server RSS idle:   min %d KiB, last %d KiB (%d samples, 1s apart, after %v settle)\n", r.RSSAfter.Min, r.RSSAfter.Last, r.RSSAfter.N, c.Settle)
		fmt.Fprintf(stdout, "RSS per connection: %.1f KiB (min-to-min), %.1f KiB (last-to-last)\n",
			r.RSSPerConn(), float64(r.RSSAfter.Last-r.RSSBefore.Last)/float64(max(r.Connected, 1)))
	}
	fmt.Fprintf(stdout, "closing: %v\n", &r.Closes)
	if r.FirstErr != nil {
		fmt.Fprintf(stdout, "first error: %v\n", r.FirstErr)
	}
	return err
}

func benchMessages(ctx context.Context, stdout, stderr io.Writer, c loadtest.MessagesConfig) error {
	r, err := loadtest.Messages(ctx, c)
	if r == nil {
		return err
	}
	fmt.Fprintf(stdout, "sessions: %d (%d pairs)\n", r.Connected, c.Pairs)
	for i, s := range r.Steps {
		fmt.Fprintf(stdout, "step %d: target %.0f msg/s, sent %d in %.2fs (%.0f msg/s), delivered %d, errors %d\n",
			i+1, s.Target, s.Sent, s.Window.Seconds(), s.Achieved(), s.Delivered, s.Errors)
		printLatency(stdout, "  latency (send to receive)", &s.Latency)
		if c.ServerPID != 0 {
			fmt.Fprintf(stdout, "  server CPU: %d ms (kernel %d ms) over %.2fs incl. drain, %.1f ms per 1000 messages\n",
				s.ServerCPU.Milliseconds(), s.ServerSysCPU.Milliseconds(), s.Measured.Seconds(), float64(s.ServerCPUPer1000().Microseconds())/1000)
		}
		fmt.Fprintf(stdout, "  client CPU: %d ms\n", s.ClientCPU.Milliseconds())
		pass := "pass"
		if !s.Passed(c.MaxP99) {
			pass = "FAIL"
		}
		fmt.Fprintf(stdout, "  %s (delivered == sent, no errors, p99 <= %v, >= 95%% of target)\n", pass, c.MaxP99)
	}
	if c.FindMax {
		fmt.Fprintf(stdout, "highest passing rate: %.0f msg/s\n", r.MaxPassing)
	}
	fmt.Fprintf(stdout, "closing: %v\n", &r.Closes)
	return err
}

func benchMUC(ctx context.Context, stdout io.Writer, c loadtest.MUCConfig) error {
	r, err := loadtest.MUC(ctx, c)
	if r == nil {
		return err
	}
	fmt.Fprintf(stdout, "sessions: %d logged in in %.2fs (%d rooms x %d occupants)\n", r.Connected, r.LoginWall.Seconds(), c.Rooms, c.Occupants)
	j := &r.Join
	fmt.Fprintf(stdout, "join: %d seated, %d failed, %d in flight; rooms created %d, max occupants raised %d\n",
		j.Seated, j.Failed, c.JoinConcurrency, j.Created, j.Raised)
	fmt.Fprintf(stdout, "seated: first at %.3fs, last at %.3fs (from the first join sent); %d presences received\n",
		j.First.Seconds(), j.Last.Seconds(), j.Presences)
	printLatency(stdout, "join latency (join presence to self-presence 110)", &j.Latency)
	if c.ServerPID != 0 {
		fmt.Fprintf(stdout, "join CPU: server %d ms, client %d ms\n", j.ServerCPU.Milliseconds(), j.ClientCPU.Milliseconds())
	} else {
		fmt.Fprintf(stdout, "join CPU: client %d ms\n", j.ClientCPU.Milliseconds())
	}
	if j.FirstErr != nil {
		fmt.Fprintf(stdout, "first join error: %v\n", j.FirstErr)
	}
	if c.ServerPID != 0 && r.RSSAfter.N > 0 {
		fmt.Fprintf(stdout, "server RSS logged in:      min %d KiB, last %d KiB (%d samples)\n", r.RSSBefore.Min, r.RSSBefore.Last, r.RSSBefore.N)
		fmt.Fprintf(stdout, "server RSS all seated:     min %d KiB, last %d KiB (%d samples, 1s apart, after %v settle)\n", r.RSSAfter.Min, r.RSSAfter.Last, r.RSSAfter.N, c.Settle)
		fmt.Fprintf(stdout, "RSS per occupant: %.2f KiB (min-to-min), %.2f KiB (last-to-last)\n",
			r.RSSPerOccupant(), float64(r.RSSAfter.Last-r.RSSBefore.Last)/float64(max(j.Seated, 1)))
	}
	for i, s := range r.Steps {
		fmt.Fprintf(stdout, "step %d: target %.0f msg/s, sent %d in %.2fs (%.0f msg/s) by %d senders, delivered %d of %d (%.0f/s), loss %.4f%%, errors %d\n",
			i+1, s.Target, s.Sent, s.Window.Seconds(), s.Achieved(), c.Senders, s.Delivered, s.Expected, s.DeliveredPerSecond(), 100*s.Loss(), s.Errors)
		printLatency(stdout, "  latency (send to receive)", &s.Latency)
		if c.ServerPID != 0 {
			fmt.Fprintf(stdout, "  server CPU: %d ms (kernel %d ms) over %.2fs incl. drain, %.2f ms per 1000 delivered\n",
				s.ServerCPU.Milliseconds(), s.ServerSysCPU.Milliseconds(), s.Measured.Seconds(), float64(s.ServerCPUPer1000().Microseconds())/1000)
		}
		fmt.Fprintf(stdout, "  client CPU: %d ms\n", s.ClientCPU.Milliseconds())
		pass := "pass"
		if !s.Passed(c.MaxP99, c.MaxLoss) {
			pass = "FAIL"
		}
		fmt.Fprintf(stdout, "  %s (loss <= %g%%, p99 < %v, >= 95%% of target)\n", pass, 100*c.MaxLoss, c.MaxP99)
	}
	if c.FindMax {
		fmt.Fprintf(stdout, "highest passing rate: %.0f msg/s, %.0f delivered/s\n", r.MaxPassing, r.MaxDelivered)
	}
	if r.Unmatched > 0 {
		fmt.Fprintf(stdout, "groupchat messages not sent by this run: %d\n", r.Unmatched)
	}
	fmt.Fprintf(stdout, "closing: %v\n", &r.Closes)
	return err
}

func printLatency(w io.Writer, what string, h *loadtest.Histogram) {
	fmt.Fprintf(w, "%s: n=%d p50 %v p90 %v p99 %v max %v\n", what, h.Count(),
		h.Percentile(0.50).Round(10*time.Microsecond), h.Percentile(0.90).Round(10*time.Microsecond),
		h.Percentile(0.99).Round(10*time.Microsecond), h.Max().Round(10*time.Microsecond))
}

// loopbackOnly keeps the load on this machine: the tool is for measuring
// Ambrosia, not for loading someone else's server.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("--addr must be a loopback IP address, e.g. 127.0.0.1:5222")
	}
	return nil
}

// benchTLS returns the client TLS configuration and says whether the
// server certificate is verified.
// benchRemote is o for the second server of a federated message run.
func benchRemote(o loadtest.Options, addr, domain, caFile string) (*loadtest.Options, error) {
	if domain == "" {
		return nil, errors.New("--remote-addr needs --remote-domain")
	}
	if err := loopbackOnly(addr); err != nil {
		return nil, err
	}
	o.Addr, o.Domain = addr, domain
	if o.TLS {
		tc, _, err := benchTLS(domain, caFile)
		if err != nil {
			return nil, err
		}
		o.TLSConfig = tc
	}
	return &o, nil
}

func benchTLS(domain, caFile string) (*tls.Config, string, error) {
	if caFile == "" {
		// The server's self-signed certificate is accepted unchecked:
		// this is a benchmark over loopback, not a security check.
		return &tls.Config{ServerName: domain, InsecureSkipVerify: true}, "not verified", nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, "", err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, "", fmt.Errorf("%s: no PEM certificate", caFile)
	}
	return &tls.Config{ServerName: domain, RootCAs: pool}, "verified against " + caFile, nil
}
