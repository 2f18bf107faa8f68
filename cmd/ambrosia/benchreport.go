package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/loadtest"
)

// benchReport is the outcome of a run as `--json` writes it, for plotting;
// the final table shows the same figures. Durations are in milliseconds
// or seconds as their names say; rates are per second.
type benchReport struct {
	Mode      string    `json:"mode"`
	Server    string    `json:"server"` // host:port
	Domain    string    `json:"domain"`
	Security  string    `json:"security"` // plain, starttls, direct-tls
	Mechanism string    `json:"mechanism"`
	Started   time.Time `json:"started"`
	Seconds   float64   `json:"seconds"`
	// Params are the run's settings (counts, rates).
	Params map[string]any `json:"params"`
	// Logins are the logins of idle and logins runs.
	Logins *benchLogins `json:"logins,omitempty"`
	// Memory is the server's RSS around the idle sessions or the seating
	// of the occupants, with --server-pid.
	Memory *benchMemory `json:"memory,omitempty"`
	Join   *benchJoin   `json:"join,omitempty"`  // muc
	Steps  []benchStep  `json:"steps,omitempty"` // messages, muc
	// MaxPassingRate is the highest rate whose step passed, with
	// --find-max.
	MaxPassingRate float64 `json:"max_passing_rate,omitempty"`
	// Churn is a churn run's cycles and server samples.
	Churn  *benchChurnReport `json:"churn,omitempty"`
	Closes benchCloses       `json:"closes"`
	// Fleet describes a run of several load processes over several
	// gateways; Processes are the server processes' memory by kind, with
	// --server-pids; Failover what a failover run saw of the kill.
	Fleet     *benchFleetInfo `json:"fleet,omitempty"`
	Processes []benchProc     `json:"processes,omitempty"`
	Failover  *benchFailover  `json:"failover,omitempty"`
	// ClientKiB is the load processes' own memory (PSS) with the sessions
	// open (fleet idle runs).
	ClientKiB int64 `json:"client_kib,omitempty"`
	// Error is why the run stopped early, if it did.
	Error string `json:"error,omitempty"`
}

type benchLatency struct {
	N     uint64  `json:"n"`
	P50ms float64 `json:"p50_ms"`
	P90ms float64 `json:"p90_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

func latencyOf(h *loadtest.Histogram) benchLatency {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return benchLatency{N: h.Count(), P50ms: ms(h.Percentile(0.5)), P90ms: ms(h.Percentile(0.9)), P99ms: ms(h.Percentile(0.99)), MaxMs: ms(h.Max())}
}

type benchLogins struct {
	OK        int          `json:"ok"`
	Failed    int          `json:"failed"`
	Seconds   float64      `json:"seconds"`
	PerSecond float64      `json:"per_second"`
	Latency   benchLatency `json:"latency"` // first byte to bind result
	FirstErr  string       `json:"first_error,omitempty"`
	// Retried counts failed login attempts of fleet sessions that were
	// tried again (--retries).
	Retried int `json:"retried,omitempty"`
	// Resumed counts the logins whose TLS handshake resumed an earlier
	// session (logins --resume-tls): a server that issues no tickets, or
	// refuses them, shows 0 here and pays full handshakes.
	Resumed int `json:"tls_resumed,omitempty"`
	// ServerCPUms is the server's CPU time per login (--server-pid).
	ServerCPUms float64 `json:"server_cpu_ms_per_login,omitempty"`
}

type benchMemory struct {
	BeforeKiB  int64   `json:"before_kib"`
	AfterKiB   int64   `json:"after_kib"`
	PerItemKiB float64 `json:"per_item_kib"` // per session (idle) or occupant (muc)
}

type benchJoin struct {
	Seated       int          `json:"seated"`
	Failed       int          `json:"failed"`
	Created      int          `json:"rooms_created"`
	Raised       int          `json:"rooms_raised"`
	FirstSeconds float64      `json:"first_seated_s"`
	LastSeconds  float64      `json:"last_seated_s"`
	Presences    uint64       `json:"presences"`
	Latency      benchLatency `json:"latency"`
	ServerCPUms  int64        `json:"server_cpu_ms,omitempty"`
	ClientCPUms  int64        `json:"client_cpu_ms"`
}

type benchStep struct {
	Target             float64      `json:"target"`
	Sent               uint64       `json:"sent"`
	SentPerSecond      float64      `json:"sent_per_second"`
	Expected           uint64       `json:"expected"`
	Delivered          uint64       `json:"delivered"`
	DeliveredPerSecond float64      `json:"delivered_per_second"`
	Loss               float64      `json:"loss"`
	Errors             uint64       `json:"errors"`
	Seconds            float64      `json:"seconds"`
	Latency            benchLatency `json:"latency"` // send to receive
	ServerCPUms        int64        `json:"server_cpu_ms,omitempty"`
	ClientCPUms        int64        `json:"client_cpu_ms"`
	Passed             bool         `json:"passed"`
	// Duplicates are messages that arrived more than once (fleet runs),
	// LoginsOK and LoginsFailed the logins tried alongside (failover).
	Duplicates   uint64 `json:"duplicates"`
	LoginsOK     int    `json:"logins_ok,omitempty"`
	LoginsFailed int    `json:"logins_failed,omitempty"`
	// DeliveredByEnd is what had arrived (or bounced) by the end of a
	// failover run, its later steps' time and drains included.
	DeliveredByEnd uint64 `json:"delivered_by_end,omitempty"`
	// Unmatched are the messages the load processes received with ids
	// no step of the run sent (fleet runs; counted since the run began).
	Unmatched uint64 `json:"unmatched,omitempty"`
}

type benchFleetInfo struct {
	Gateways []string `json:"gateways"`
	Sources  []string `json:"sources,omitempty"`
	Workers  int      `json:"load_processes"`
	Sessions int      `json:"sessions"`
}

// benchProc is the memory of the server processes of one kind, their
// proportional set size (PSS) summed.
type benchProc struct {
	Name          string  `json:"name"`
	Procs         int     `json:"procs"`
	BeforeKiB     int64   `json:"before_kib"`
	AfterKiB      int64   `json:"after_kib"`
	PerSessionKiB float64 `json:"per_session_kib"`
}

// benchFailover is what a failover run saw: the process killed, the
// messages and logins disrupted, and when each was served again, in
// seconds after the kill.
type benchFailover struct {
	PID       int     `json:"pid"`
	SlowMs    float64 `json:"slow_ms"`
	Disrupted int     `json:"messages_disrupted"`
	// Lost are the messages of the kill's step missing at the end of its
	// drain, LostByEnd those still missing at the end of the run.
	Lost      int `json:"messages_lost"`
	LostByEnd int `json:"messages_lost_by_end"`
	// MaxLatencyMs is the slowest message sent from slow before the kill on.
	MaxLatencyMs         float64 `json:"max_latency_ms"`
	MessagesServedAfterS float64 `json:"messages_served_after_s"`
	LoginsFailed         int     `json:"logins_failed"`
	FirstLoginErr        string  `json:"first_login_error,omitempty"`
	LoginsServedAfterS   float64 `json:"logins_served_after_s"`
	// ServedAgainS is the later of the two; -1 if logins never came back.
	ServedAgainS float64 `json:"served_again_s"`
	// ServedAfter: in the step after the kill, every message arrived once
	// and every login succeeded.
	ServedAfter bool   `json:"served_after"`
	Error       string `json:"error,omitempty"`
}

type benchCloses struct {
	StreamEnd int64 `json:"stream_end"`
	EOF       int64 `json:"eof"`
	Other     int64 `json:"other"`
}

func closesOf(c *loadtest.Closes) benchCloses {
	return benchCloses{StreamEnd: c.StreamEnd.Load(), EOF: c.EOF.Load(), Other: c.Other.Load()}
}

// writeJSON writes the report to path, "-" for w.
func (r *benchReport) writeJSON(path string, w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = w.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// table prints the report's figures as a table.
func (r *benchReport) table(w io.Writer) {
	fmt.Fprintf(w, "\nresults: %s on %s (%s, %s, %s), %.1fs\n", r.Mode, r.Domain, r.Server, r.Security, r.Mechanism, r.Seconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	ms := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	if l := r.Logins; l != nil {
		fmt.Fprintln(tw, "logins ok\tfailed\tlogins/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\t")
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t\n", l.OK, l.Failed, l.PerSecond, ms(l.Latency.P50ms), ms(l.Latency.P90ms), ms(l.Latency.P99ms), ms(l.Latency.MaxMs))
		tw.Flush() // each table its own columns
	}
	if j := r.Join; j != nil {
		fmt.Fprintln(tw, "seated\tfailed\trooms created\tlast seated s\tjoin p50 ms\tp99 ms\tmax ms\t")
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.2f\t%s\t%s\t%s\t\n", j.Seated, j.Failed, j.Created, j.LastSeconds, ms(j.Latency.P50ms), ms(j.Latency.P99ms), ms(j.Latency.MaxMs))
		tw.Flush()
	}
	if m := r.Memory; m != nil {
		fmt.Fprintln(tw, "server RSS before KiB\tafter KiB\tper session KiB\t")
		fmt.Fprintf(tw, "%d\t%d\t%.1f\t\n", m.BeforeKiB, m.AfterKiB, m.PerItemKiB)
		tw.Flush()
	}
	if len(r.Processes) > 0 {
		fmt.Fprintln(tw, "server processes\tcount\tPSS before KiB\tafter KiB\tper session KiB\t")
		for _, p := range r.Processes {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t\n", p.Name, p.Procs, p.BeforeKiB, p.AfterKiB, p.PerSessionKiB)
		}
		tw.Flush()
	}
	if fo := r.Failover; fo != nil {
		fmt.Fprintln(tw, "killed pid\tmessages disrupted\tmissing after drain\tlost by end\tlogins failed\tmessages back s\tlogins back s\tserved again s\tserved after\t")
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%.3f\t%.3f\t%.3f\t%v\t\n", fo.PID, fo.Disrupted, fo.Lost, fo.LostByEnd, fo.LoginsFailed, fo.MessagesServedAfterS, fo.LoginsServedAfterS, fo.ServedAgainS, fo.ServedAfter)
		tw.Flush()
	}
	if len(r.Steps) > 0 {
		fmt.Fprintln(tw, "step\ttarget/s\tsent\tsent/s\tdelivered\tdelivered/s\tloss %\tdup\terrors\tp50 ms\tp99 ms\tmax ms\tserver CPU ms\tresult\t")
		for i, s := range r.Steps {
			result := "pass"
			if !s.Passed {
				result = "FAIL"
			}
			cpu := "-"
			if s.ServerCPUms > 0 {
				cpu = strconv.FormatInt(s.ServerCPUms, 10)
			}
			fmt.Fprintf(tw, "%d\t%.0f\t%d\t%.0f\t%d\t%.0f\t%.3f\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", i+1, s.Target, s.Sent, s.SentPerSecond,
				s.Delivered, s.DeliveredPerSecond, 100*s.Loss, s.Duplicates, s.Errors, ms(s.Latency.P50ms), ms(s.Latency.P99ms), ms(s.Latency.MaxMs), cpu, result)
		}
	}
	tw.Flush()
	if r.Churn != nil {
		churnTable(w, r.Churn)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "stopped early: %s\n", r.Error)
	}
}
