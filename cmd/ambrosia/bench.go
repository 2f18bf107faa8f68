package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/loadtest"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/postgres"
)

const benchUsage = `usage: ambrosia bench <mode> [flags]

modes:
  users      create load accounts PREFIX0…PREFIX(N-1) directly in Ambrosia's database
             (SQLite in --data, or PostgreSQL with --postgres-dsn)
  idle       open N sessions, keep them idle, report server RSS per connection
  logins     log in and out N times, report logins/s and latency
  messages   chat between pairs of sessions at a rate, report latency and server CPU
  muc        seat occupants in multi-user chat rooms, send at a rate, report join
             times, deliveries per second, loss, latency, server CPU and memory
  failover   over a fleet: chat and log in while one server process (a session
             manager instance) is killed, report when its users are served again
  churn      keep N clients arriving, exchanging a message and leaving for a
             duration; sample the server's goroutines, files, heap and RSS from
             its Prometheus metrics, report cycles/s and plot the samples (SVG)

With --gateways HOST:PORT,HOST:PORT,… idle, logins and messages drive a
fleet: the sessions spread over the gateways of a split server (session i
at gateway i mod N), held by several load processes that this command
starts (--workers, each under the file limit), and their figures merge
into one report; messages then go between random sessions on different
gateways, and --server-pids adds up the memory and CPU of every server
process (docs/fleet.md).

The load client speaks plain XMPP (SCRAM-SHA-1, STARTTLS or direct TLS) to
any server: Ambrosia, Prosody, ejabberd… Its accounts PREFIX0, PREFIX1, …
must exist there with one password. A server not on this machine is loaded
only with --yes-i-own-this-server. While it runs, a progress line shows on
stderr; at the end, a table, and with --json FILE the figures as JSON.
Run 'ambrosia bench <mode> -h' for the flags of a mode.
`

// benchAbout says what each mode does.
var benchAbout = map[string]string{
	"users":    "Creates the load accounts PREFIX0…PREFIX(N-1) directly in Ambrosia's database.",
	"idle":     "Opens --count sessions, keeps them idle and reports the server's RSS per connection.",
	"logins":   "Logs in and out --count times and reports logins/s and latency.",
	"messages": "Chats between pairs of sessions at a rate and reports latency and server CPU.",
	"failover": "Over a fleet of gateways (--gateways), chats between random sessions on different gateways\nand logs in alongside, before, while and after one server process (--kill-pid, a session\nmanager instance) is killed with SIGKILL; reports how long its users went unserved.",
	"muc":      "Seats occupants in multi-user chat rooms, sends at a rate and reports join times,\ndeliveries per second, loss, latency, server CPU and memory.",
	"churn":    "Keeps --clients clients cycling for --duration: each cycle connects, authenticates,\nsends one message to its partner (client i^1, online in the same cycle), receives\nthe partner's and closes. Every --sample-every it scrapes --metrics-url (the\nserver's Prometheus endpoint) for goroutines, open files, heap and RSS, and writes\nthe samples as CSV (--samples) and an SVG plot (--plot).",
}

// benchCmd runs the load client against a server: on this machine, the
// figures it prints are how Ambrosia's performance claims are measured;
// elsewhere, an operator measures a server of theirs, Ambrosia or not.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == fleetWorkerMode {
		return benchFleetWorker(ctx, os.Stdin, stdout)
	}
	mode, err := subcommand("bench", args, []string{"users", "idle", "logins", "messages", "muc", "failover", "churn"}, benchUsage, stdout, stderr)
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

	addr := fs.String("addr", "", "client listener `HOST:PORT` (default: 127.0.0.1 for localhost, else the domain's SRV record, else DOMAIN; port 5222, or 5223 with --direct-tls)")
	useTLS := fs.Bool("tls", false, "negotiate STARTTLS before authenticating")
	directTLS := fs.Bool("direct-tls", false, "open TLS at once, as on port 5223 (XEP-0368)")
	caFile := fs.String("ca", "", "PEM certificate to trust for TLS (default: the system's roots; on loopback, no check)")
	insecure := fs.Bool("insecure", false, "do not check the server's certificate")
	owned := fs.Bool(strings.TrimPrefix(ownServerFlag, "--"), false, "load a server that is not on this machine: say that it is yours")
	jsonPath := fs.String("json", "", "write the results as JSON to `FILE` (- for stdout: the report then goes to stderr)")
	wsPath := fs.String("websocket", "", "open the sessions over XMPP WebSocket at this `PATH` (e.g. /xmpp-websocket) of --addr, the web listener (http.addr): ws, or wss with --tls")
	conc := fs.Int("concurrency", 100, "logins in flight")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on one connection's negotiation and on closing")
	pid := fs.Int("server-pid", 0, "server process to sample (/proc/PID, same machine only); 0 disables")
	cpuProfile := fs.String("cpuprofile", "", "write the load client's own CPU profile to this file")
	var gateways, sources, serverPIDs *string
	var keepalive *time.Duration
	var workers, sessions, retries *int
	if mode != "muc" {
		gateways = fs.String("gateways", "", "drive a fleet: client listeners of several gateways of one split server, `HOST:PORT,...`; session i logs in at gateway i mod N (instead of --addr)")
		sources = fs.String("sources", "", "with --gateways: local `ADDRESSES` to connect from in turn, such as 127.0.0.1,127.0.0.2 (each adds ~28,000 ports per gateway on loopback)")
		workers = fs.Int("workers", 0, "with --gateways: load processes to start (default: one per 15,000 sessions)")
		retries = fs.Int("retries", 5, "with --gateways: times a session whose login failed tries again, after 1, 2, 4, 8, 8 s, as a client would (logins runs do not)")
		keepalive = fs.Duration("keepalive", time.Minute, "with --gateways: each session sends a whitespace keepalive this often (0: never), so that a server's idle timeout does not end sessions while a long run logs the others in")
		serverPIDs = fs.String("server-pids", "", "with --gateways: server processes to measure, `PID,...`, each with its children (PostgreSQL's backends): memory (PSS) per session, CPU")
	}
	var (
		killPID                *int
		killAfter, slow, drain *time.Duration
		loginRate              *float64
	)
	var (
		count, pairs, maxSteps, users, first *int
		hold, settle, duration               *time.Duration
		rate, rateStep                       *float64
		findMax, resume                      *bool
		maxP99                               *time.Duration
		remoteAddr, remoteDomain, remoteCA   *string
		rooms, occupants, joinConc, senders  *int
		service, roomPrefix                  *string
		maxLoss                              *float64
		clients                              *int
		sampleEvery                          *time.Duration
		metricsURL, samplesPath, plotPath    *string
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
		resume = fs.Bool("resume-tls", false, "keep TLS session tickets and resume with them: every connection after the first is a reconnecting client's abbreviated handshake")
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
		remoteCA = fs.String("remote-ca", "", "PEM certificate to trust for TLS on --remote-addr")
		sessions = fs.Int("sessions", 0, "with --gateways: sessions held (default 2*pairs); messages go between random ones on different gateways")
		drain = fs.Duration("drain", 10*time.Second, "how long a step waits for its last messages")
		settle = fs.Duration("settle", 3*time.Second, "with --gateways and --server-pids: wait after the last login before measuring the servers' memory")
	case "failover":
		sessions = fs.Int("sessions", 2000, "sessions held over the gateways (accounts PREFIX0…PREFIX(N-1))")
		rate = fs.Float64("rate", 200, "messages/s between random sessions on different gateways, in every step")
		duration = fs.Duration("duration", 10*time.Second, "length of each of the three steps: before, while and after the kill")
		killPID = fs.Int("kill-pid", 0, "the server process to kill with SIGKILL in the second step (a session manager instance)")
		killAfter = fs.Duration("kill-after", 3*time.Second, "when, into the second step, to kill --kill-pid")
		slow = fs.Duration("slow", 250*time.Millisecond, "a message sent from this long before the kill on and later than this counts as disrupted")
		loginRate = fs.Float64("login-rate", 20, "logins/s tried alongside the messages, as random sessions, each with a resource of its own")
		drain = fs.Duration("drain", 30*time.Second, "how long each step waits for its last messages")
		settle = fs.Duration("settle", 3*time.Second, "with --server-pids: wait after the last login before measuring the servers' memory")
		maxP99 = fs.Duration("max-p99", time.Second, "p99 latency a passing step stays within")
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
	case "churn":
		clients = fs.Int("clients", 10000, "clients cycling at once, an even number (accounts PREFIX0…PREFIX(clients-1); client i chats with client i^1)")
		duration = fs.Duration("duration", 30*time.Minute, "how long the clients keep cycling")
		sampleEvery = fs.Duration("sample-every", time.Minute, "interval of the server samples")
		metricsURL = fs.String("metrics-url", "", "the server's Prometheus `URL` to sample, e.g. http://127.0.0.1:9100/metrics (its metrics_addr or debug_addr); \"\" samples only the cycle counts")
		samplesPath = fs.String("samples", "", "write the samples as CSV to `FILE`")
		plotPath = fs.String("plot", "", "draw the samples as an SVG to `FILE`")
		settle = fs.Duration("settle", 10*time.Second, "wait after the last client left before the last sample")
	}
	if pos, err := fs.parse(args[1:]); err != nil {
		return err
	} else if len(pos) > 0 {
		return fs.wrongArgs(fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	if *useTLS && *directTLS {
		return fs.wrongArgs(errBothTLS.Error())
	}
	if mode == "failover" && *gateways == "" {
		return fs.wrongArgs("failover needs --gateways")
	}
	if gateways != nil && *gateways != "" {
		r := &fleetRun{mode: mode, gateways: parseFleetList(*gateways), sources: parseFleetList(*sources), workers: *workers,
			prefix: *prefix, domain: *domain, password: *password, tls: *useTLS || *directTLS, directTLS: *directTLS,
			caFile: *caFile, insecure: *insecure, timeout: *timeout, concurrency: *conc, retries: *retries, keepalive: *keepalive}
		if r.serverPIDs, err = parsePIDs(*serverPIDs); err != nil {
			return fs.wrongArgs(err.Error())
		}
		switch mode {
		case "idle":
			r.sessions, r.first, r.settle, r.hold = *count, *first, *settle, *hold
		case "logins":
			r.sessions, r.logins = *users, *count
			if r.sessions <= 0 {
				r.sessions = *count
			}
		case "messages":
			r.sessions, r.rate, r.duration, r.drain, r.findMax, r.maxSteps, r.maxP99 = *sessions, *rate, *duration, *drain, *findMax, *maxSteps, *maxP99
			r.settle = *settle
			if r.sessions <= 0 {
				r.sessions = 2 * *pairs
			}
			r.rateStep = *rateStep
			if r.rateStep <= 0 {
				r.rateStep = r.rate
			}
		case "failover":
			r.sessions, r.rate, r.duration, r.drain, r.maxP99 = *sessions, *rate, *duration, *drain, *maxP99
			r.killPID, r.killAfter, r.slow, r.loginRate = *killPID, *killAfter, *slow, *loginRate
			r.settle = *settle
			if r.killPID <= 0 {
				return fs.wrongArgs("failover needs --kill-pid")
			}
			if r.killAfter >= r.duration {
				return fs.wrongArgs("--kill-after must fall within --duration")
			}
		}
		return benchFleetCmd(ctx, fs, r, *jsonPath, *owned, stdout, stderr)
	}
	target, err := benchTarget(ctx, *addr, *domain, *directTLS)
	if err != nil {
		return err
	}
	loopback, err := guardTarget(ctx, "--addr", target, *owned, stderr)
	if err != nil {
		return err
	}
	if *pid != 0 && !loopback {
		return errors.New("--server-pid samples a process of this machine: the server at " + target + " is not on it")
	}
	out := stdout
	if *jsonPath == "-" {
		out = stderr // stdout is the JSON's
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
	meter := loadtest.NewMeter()
	o := loadtest.Options{
		Addr: target, Domain: *domain, Password: *password, TLS: *useTLS || *directTLS, DirectTLS: *directTLS,
		Timeout: *timeout, Keys: loadtest.NewKeyCache(), Meter: meter,
	}
	security, sec := "plain TCP (no TLS)", "plain"
	if *wsPath != "" {
		if *directTLS {
			return fs.wrongArgs("--websocket takes --tls for wss, not --direct-tls")
		}
		o.WebSocket = *wsPath
		security, sec = "plain WebSocket (RFC 7395) at "+*wsPath, "websocket"
	}
	if o.TLS {
		tc, verified, err := benchTLS(*domain, *caFile, *insecure, loopback, *directTLS)
		if err != nil {
			return err
		}
		o.TLSConfig = tc
		handshake := "full handshake per connection"
		if resume != nil && *resume {
			// One cache for every connection: the load client stands
			// for clients that reconnect with the ticket of their
			// last session.
			tc.ClientSessionCache = tls.NewLRUClientSessionCache(1024)
			handshake = "resumed with session tickets"
		}
		security, sec = "STARTTLS, "+handshake+", certificate "+verified, "starttls"
		if *directTLS {
			security, sec = "direct TLS, "+handshake+", certificate "+verified, "direct-tls"
		}
		if *wsPath != "" {
			security, sec = "WebSocket over TLS (wss) at "+*wsPath+", "+handshake+", certificate "+verified, "wss"
		}
	}
	started := time.Now()
	fmt.Fprintf(out, "bench %s: %s, SCRAM-SHA-1, server %s (%s), %s\n", mode, security, target, *domain, started.Format(time.RFC3339))
	rep := &benchReport{Mode: mode, Server: target, Domain: *domain, Security: sec, Mechanism: "SCRAM-SHA-1", Started: started.UTC(), Params: map[string]any{}}
	fs.VisitAll(func(f *flag.Flag) {
		switch f.Name {
		case "password", "cpuprofile", "json":
		default:
			rep.Params[f.Name] = f.Value.String()
		}
	})

	prog := startProgress(stderr, meter, mode)
	switch mode {
	case "idle":
		err = benchIdle(ctx, out, rep, prog, loadtest.IdleConfig{
			Options: o, Prefix: *prefix, First: *first, Count: *count, Concurrency: *conc,
			ServerPID: *pid, Settle: *settle, Samples: 5, Hold: *hold,
		})
	case "logins":
		r := loadtest.Logins(ctx, loadtest.LoginsConfig{
			Options: o, Prefix: *prefix, Users: *users, Count: *count, Concurrency: *conc,
			ServerPID: *pid,
		})
		prog.Stop()
		fmt.Fprintf(out, "logins: %d ok, %d failed, %d in flight, %.2fs wall\n", r.OK, r.Failed, *conc, r.Wall.Seconds())
		fmt.Fprintf(out, "rate: %.0f logins/s (connect+auth+bind+disconnect)\n", r.PerSecond())
		if o.TLS {
			fmt.Fprintf(out, "TLS sessions resumed: %d of %d\n", r.Resumed, r.OK)
		}
		printLatency(out, "login latency (first byte to bind result)", &r.Latency)
		if *pid != 0 && r.OK > 0 {
			fmt.Fprintf(out, "server CPU: %.3f ms per login (user %.3f, kernel %.3f; %.2fs in all)\n",
				ms(r.ServerCPUPerLogin()), ms(r.ServerUser/time.Duration(r.OK)), ms(r.ServerSys/time.Duration(r.OK)), (r.ServerUser + r.ServerSys).Seconds())
		}
		fmt.Fprintf(out, "closing: %v\n", &r.Closes)
		rep.Logins = &benchLogins{OK: r.OK, Failed: r.Failed, Seconds: r.Wall.Seconds(), PerSecond: r.PerSecond(), Latency: latencyOf(&r.Latency), Resumed: r.Resumed}
		if *pid != 0 {
			rep.Logins.ServerCPUms = ms(r.ServerCPUPerLogin())
		}
		if r.FirstErr != nil {
			fmt.Fprintf(out, "first error: %v\n", r.FirstErr)
			rep.Logins.FirstErr = r.FirstErr.Error()
		}
		rep.Closes = closesOf(&r.Closes)
	case "muc":
		err = benchMUC(ctx, out, rep, prog, loadtest.MUCConfig{
			Options: o, Prefix: *prefix, Rooms: *rooms, Occupants: *occupants,
			Service: *service, RoomPrefix: *roomPrefix,
			Concurrency: *conc, JoinConcurrency: *joinConc,
			Senders: *senders, Rate: *rate, Duration: *duration, ServerPID: *pid, Settle: *settle,
			FindMax: *findMax, RateStep: *rateStep, MaxSteps: *maxSteps, MaxP99: *maxP99, MaxLoss: *maxLoss,
		})
	case "churn":
		err = benchChurn(ctx, out, stderr, rep, prog, loadtest.ChurnConfig{
			Options: o, Prefix: *prefix, Clients: *clients, Concurrency: *conc,
			Duration: *duration, Every: *sampleEvery,
		}, *metricsURL, *settle, *samplesPath, *plotPath)
	default:
		var remote *loadtest.Options
		if *remoteAddr != "" {
			if remote, err = benchRemote(ctx, o, *remoteAddr, *remoteDomain, *remoteCA, *insecure, *owned, stderr); err != nil {
				break
			}
			fmt.Fprintf(out, "federated: odd accounts on %s (%s), messages cross server-to-server streams\n", *remoteDomain, *remoteAddr)
		}
		err = benchMessages(ctx, out, rep, prog, loadtest.MessagesConfig{
			Options: o, Prefix: *prefix, Pairs: *pairs, Concurrency: *conc,
			Rate: *rate, Duration: *duration, ServerPID: *pid,
			FindMax: *findMax, RateStep: *rateStep, MaxSteps: *maxSteps, MaxP99: *maxP99,
			Remote: remote,
		})
	}
	prog.Stop() // once the run is over, before the table; a no-op after the first
	rep.Seconds = time.Since(started).Seconds()
	if err != nil {
		rep.Error = err.Error()
	}
	rep.table(out)
	if *jsonPath != "" {
		if jerr := rep.writeJSON(*jsonPath, stdout); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

func benchUsers(ctx context.Context, fs *command, args []string, stdout io.Writer, domain, prefix, password *string) error {
	data := fs.String("data", "./data", "data directory `DIR` of the server")
	dsn := fs.String("postgres-dsn", "", "create the accounts in this PostgreSQL database (`DSN`, as storage.postgres_dsn) instead of DIR's SQLite one")
	conc := fs.Int("concurrency", 8, "accounts created at a time in PostgreSQL")
	count := fs.Int("count", 10000, "accounts to create")
	if pos, err := fs.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fs.wrongArgs(fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	start := time.Now()
	var created, existed int
	var err error
	if *dsn != "" {
		var store *postgres.Store
		if store, err = postgres.Open(ctx, *dsn); err != nil {
			return err
		}
		defer store.Close()
		created, existed, err = loadtest.CreateUsersIn(ctx, store, *domain, *prefix, *count, *password, *conc)
	} else {
		created, existed, err = loadtest.CreateUsers(ctx, filepath.Join(*data, "ambrosia.db"), *domain, *prefix, *count, *password)
	}
	fmt.Fprintf(stdout, "users: %d created, %d already existed (%s0…%s%d@%s) in %.2fs\n",
		created, existed, *prefix, *prefix, *count-1, *domain, time.Since(start).Seconds())
	return err
}

func benchIdle(ctx context.Context, stdout io.Writer, rep *benchReport, prog *progress, c loadtest.IdleConfig) error {
	r, err := loadtest.Idle(ctx, c)
	prog.Stop()
	if r == nil {
		return err
	}
	fmt.Fprintf(stdout, "connected: %d ok, %d failed, %d in flight, %.2fs\n", r.Connected, r.Failed, c.Concurrency, r.LoginWall.Seconds())
	fmt.Fprintf(stdout, "login rate: %.0f logins/s\n", r.LoginsPerSecond())
	printLatency(stdout, "login latency (first byte to bind result)", &r.Latency)
	rep.Logins = &benchLogins{OK: r.Connected, Failed: r.Failed, Seconds: r.LoginWall.Seconds(), PerSecond: r.LoginsPerSecond(), Latency: latencyOf(&r.Latency)}
	if c.ServerPID != 0 && r.RSSAfter.N > 0 {
		fmt.Fprintf(stdout, "server RSS before: min %d KiB, last %d KiB (%d samples)\n", r.RSSBefore.Min, r.RSSBefore.Last, r.RSSBefore.N)
		fmt.Fprintf(stdout, "server RSS idle:   min %d KiB, last %d KiB (%d samples, 1s apart, after %v settle)\n", r.RSSAfter.Min, r.RSSAfter.Last, r.RSSAfter.N, c.Settle)
		fmt.Fprintf(stdout, "RSS per connection: %.1f KiB (min-to-min), %.1f KiB (last-to-last)\n",
			r.RSSPerConn(), float64(r.RSSAfter.Last-r.RSSBefore.Last)/float64(max(r.Connected, 1)))
		rep.Memory = &benchMemory{BeforeKiB: r.RSSBefore.Min, AfterKiB: r.RSSAfter.Min, PerItemKiB: r.RSSPerConn()}
	}
	fmt.Fprintf(stdout, "closing: %v\n", &r.Closes)
	rep.Closes = closesOf(&r.Closes)
	if r.FirstErr != nil {
		fmt.Fprintf(stdout, "first error: %v\n", r.FirstErr)
		rep.Logins.FirstErr = r.FirstErr.Error()
	}
	return err
}

func benchMessages(ctx context.Context, stdout io.Writer, rep *benchReport, prog *progress, c loadtest.MessagesConfig) error {
	r, err := loadtest.Messages(ctx, c)
	prog.Stop()
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
		rep.Steps = append(rep.Steps, benchStep{Target: s.Target, Sent: s.Sent, SentPerSecond: s.Achieved(), Expected: s.Sent,
			Delivered: s.Delivered, DeliveredPerSecond: float64(s.Delivered) / max(s.Window.Seconds(), 1e-9), Loss: lossOf(s.Sent, s.Delivered),
			Errors: s.Errors, Seconds: s.Window.Seconds(), Latency: latencyOf(&s.Latency), ServerCPUms: s.ServerCPU.Milliseconds(),
			ClientCPUms: s.ClientCPU.Milliseconds(), Passed: s.Passed(c.MaxP99)})
		fmt.Fprintf(stdout, "  %s (delivered == sent, no errors, p99 <= %v, >= 95%% of target)\n", pass, c.MaxP99)
	}
	if c.FindMax {
		fmt.Fprintf(stdout, "highest passing rate: %.0f msg/s\n", r.MaxPassing)
		rep.MaxPassingRate = r.MaxPassing
	}
	fmt.Fprintf(stdout, "closing: %v\n", &r.Closes)
	rep.Closes = closesOf(&r.Closes)
	return err
}

// lossOf is the fraction of expected deliveries that did not arrive.
func lossOf(expected, delivered uint64) float64 {
	if expected == 0 || delivered >= expected {
		return 0
	}
	return float64(expected-delivered) / float64(expected)
}

func benchMUC(ctx context.Context, stdout io.Writer, rep *benchReport, prog *progress, c loadtest.MUCConfig) error {
	r, err := loadtest.MUC(ctx, c)
	prog.Stop()
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
	rep.Join = &benchJoin{Seated: j.Seated, Failed: j.Failed, Created: j.Created, Raised: j.Raised,
		FirstSeconds: j.First.Seconds(), LastSeconds: j.Last.Seconds(), Presences: j.Presences, Latency: latencyOf(&j.Latency),
		ServerCPUms: j.ServerCPU.Milliseconds(), ClientCPUms: j.ClientCPU.Milliseconds()}
	if c.ServerPID != 0 && r.RSSAfter.N > 0 {
		fmt.Fprintf(stdout, "server RSS logged in:      min %d KiB, last %d KiB (%d samples)\n", r.RSSBefore.Min, r.RSSBefore.Last, r.RSSBefore.N)
		fmt.Fprintf(stdout, "server RSS all seated:     min %d KiB, last %d KiB (%d samples, 1s apart, after %v settle)\n", r.RSSAfter.Min, r.RSSAfter.Last, r.RSSAfter.N, c.Settle)
		fmt.Fprintf(stdout, "RSS per occupant: %.2f KiB (min-to-min), %.2f KiB (last-to-last)\n",
			r.RSSPerOccupant(), float64(r.RSSAfter.Last-r.RSSBefore.Last)/float64(max(j.Seated, 1)))
		rep.Memory = &benchMemory{BeforeKiB: r.RSSBefore.Min, AfterKiB: r.RSSAfter.Min, PerItemKiB: r.RSSPerOccupant()}
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
		rep.Steps = append(rep.Steps, benchStep{Target: s.Target, Sent: s.Sent, SentPerSecond: s.Achieved(), Expected: s.Expected,
			Delivered: s.Delivered, DeliveredPerSecond: s.DeliveredPerSecond(), Loss: s.Loss(),
			Errors: s.Errors, Seconds: s.Window.Seconds(), Latency: latencyOf(&s.Latency), ServerCPUms: s.ServerCPU.Milliseconds(),
			ClientCPUms: s.ClientCPU.Milliseconds(), Passed: s.Passed(c.MaxP99, c.MaxLoss)})
		fmt.Fprintf(stdout, "  %s (loss <= %g%%, p99 < %v, >= 95%% of target)\n", pass, 100*c.MaxLoss, c.MaxP99)
	}
	if c.FindMax {
		fmt.Fprintf(stdout, "highest passing rate: %.0f msg/s, %.0f delivered/s\n", r.MaxPassing, r.MaxDelivered)
		rep.MaxPassingRate = r.MaxPassing
	}
	if r.Unmatched > 0 {
		fmt.Fprintf(stdout, "groupchat messages not sent by this run: %d\n", r.Unmatched)
	}
	fmt.Fprintf(stdout, "closing: %v\n", &r.Closes)
	rep.Closes = closesOf(&r.Closes)
	return err
}

func printLatency(w io.Writer, what string, h *loadtest.Histogram) {
	fmt.Fprintf(w, "%s: n=%d p50 %v p90 %v p99 %v max %v\n", what, h.Count(),
		h.Percentile(0.50).Round(10*time.Microsecond), h.Percentile(0.90).Round(10*time.Microsecond),
		h.Percentile(0.99).Round(10*time.Microsecond), h.Max().Round(10*time.Microsecond))
}

// benchRemote is o for the second server of a federated message run.
func benchRemote(ctx context.Context, o loadtest.Options, addr, domain, caFile string, insecure, owned bool, notes io.Writer) (*loadtest.Options, error) {
	if domain == "" {
		return nil, errors.New("--remote-addr needs --remote-domain")
	}
	loopback, err := guardTarget(ctx, "--remote-addr", addr, owned, notes)
	if err != nil {
		return nil, err
	}
	o.Addr, o.Domain = addr, domain
	if o.TLS {
		tc, _, err := benchTLS(domain, caFile, insecure, loopback, o.DirectTLS)
		if err != nil {
			return nil, err
		}
		o.TLSConfig = tc
	}
	return &o, nil
}

// ms is d in milliseconds with its fraction, for per-login figures well
// under one millisecond.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
