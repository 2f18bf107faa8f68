package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The load accounts of TestBenchRealServers on every server:
// benchPrefix0 … benchPrefix(benchAccounts-1), password benchPassword.
const (
	benchPrefix   = "load"
	benchPassword = "loadpass"
	benchAccounts = 4
)

// benchServer is a server `ambrosia bench` loads in the test.
type benchServer struct {
	name string
	// args are the connection flags: --addr, --domain, TLS, --ca.
	args []string
}

// benchReportJSON is what the test reads of `--json`.
type benchReportJSON struct {
	Mode     string
	Server   string
	Domain   string
	Security string
	Logins   *struct{ OK, Failed int }
	Join     *struct{ Seated, Failed int }
	Steps    []struct {
		Sent, Expected, Delivered, Errors uint64
		Latency                           struct {
			N     uint64
			P50ms float64 `json:"p50_ms"`
		}
	}
	Churn *struct {
		Cycles, Failed int64
		Samples        []struct{ Cycles int64 }
	}
	Closes struct {
		StreamEnd int64 `json:"stream_end"`
	}
	Error string
}

// TestBenchRealServers runs `ambrosia bench` in each mode, with small
// counts, against Ambrosia (direct TLS), a real Prosody 0.12 and a real
// ejabberd 23.01 (STARTTLS, which both require), each with four load
// accounts: the report's figures and final table are printed for each,
// and the --json file parses with the same figures.
func TestBenchRealServers(t *testing.T) {
	servers := []struct {
		name  string
		tools []string
		start func(t *testing.T) benchServer
	}{
		{"ambrosia", nil, func(t *testing.T) benchServer {
			s := startServer(t, ServerOptions{})
			ambrosia(t, "", "bench", "users", "--data", s.DataDir, "--domain", domain, "--count", fmt.Sprint(benchAccounts))
			return benchServer{"ambrosia", []string{"--addr", s.TLSAddr, "--domain", domain, "--direct-tls", "--ca", s.CAFile}}
		}},
		{"prosody", []string{"prosody", "prosodyctl", "lunbound", "unshare"}, func(t *testing.T) benchServer {
			ca := newFedCA(t)
			ambIP, ip := loopbackPair(t)
			cfg := startProsody(t, ca, ip, ambIP, false)
			for i := range benchAccounts {
				if out, err := exec.Command("prosodyctl", "--config", cfg, "register", fmt.Sprintf("%s%d", benchPrefix, i), "prosody.test", benchPassword).CombinedOutput(); err != nil {
					t.Fatalf("prosodyctl register: %v\n%s", err, out)
				}
			}
			return benchServer{"prosody", []string{"--addr", net.JoinHostPort(ip, "5222"), "--domain", "prosody.test", "--tls", "--ca", ca.CAFile}}
		}},
		{"ejabberd", []string{"ejabberdctl", "erl", "unshare"}, func(t *testing.T) benchServer {
			ca := newFedCA(t)
			ambIP, ip := loopbackPair(t)
			startEjabberd(t, ca, ip, ambIP, false)
			return benchServer{"ejabberd", []string{"--addr", net.JoinHostPort(ip, "5222"), "--domain", "ejabberd.test", "--tls", "--ca", ca.CAFile}}
		}},
	}
	modes := []struct {
		mode string
		args []string
		// figures are lines the report must have.
		figures []*regexp.Regexp
	}{
		{"logins", []string{"--count", "8", "--users", fmt.Sprint(benchAccounts), "--concurrency", "2"}, []*regexp.Regexp{
			regexp.MustCompile(`(?m)^logins: 8 ok, 0 failed`), regexp.MustCompile(`(?m)^rate: \d+ logins/s`),
			regexp.MustCompile(`(?m)^login latency \(first byte to bind result\): n=8 p50 \S+ p90`)}},
		{"idle", []string{"--count", fmt.Sprint(benchAccounts), "--concurrency", "2"}, []*regexp.Regexp{
			regexp.MustCompile(`(?m)^connected: 4 ok, 0 failed`), regexp.MustCompile(`(?m)^closing: 4 answered </stream:stream>`)}},
		{"messages", []string{"--pairs", "2", "--rate", "20", "--duration", "1s"}, []*regexp.Regexp{
			regexp.MustCompile(`(?m)^step 1: target 20 msg/s, sent ([1-9]\d*) in [\d.]+s \(\d+ msg/s\), delivered ([1-9]\d*), errors 0`)}},
		{"muc", []string{"--rooms", "1", "--occupants", fmt.Sprint(benchAccounts), "--senders", "2", "--rate", "8", "--duration", "1s", "--join-concurrency", "2"}, []*regexp.Regexp{
			regexp.MustCompile(`(?m)^join: 4 seated, 0 failed`),
			regexp.MustCompile(`(?m)^step 1: target 8 msg/s, sent ([1-9]\d*) in [\d.]+s \(\d+ msg/s\) by 2 senders, delivered (\d+) of (\d+) \(\d+/s\), loss 0\.0000%, errors 0`)}},
		{"churn", []string{"--clients", fmt.Sprint(benchAccounts), "--concurrency", "2", "--duration", "3s", "--sample-every", "1s", "--settle", "0s"}, []*regexp.Regexp{
			regexp.MustCompile(`(?m)^cycles: ([1-9]\d*) completed \([\d.]+/s\), 0 failed, 0 skipped`)}},
	}
	for _, sv := range servers {
		t.Run(sv.name, func(t *testing.T) {
			requireTools(t, sv.tools...)
			srv := sv.start(t)
			for _, m := range modes {
				jsonFile := filepath.Join(t.TempDir(), m.mode+".json")
				args := append(append([]string{"bench", m.mode, "--prefix", benchPrefix, "--password", benchPassword, "--json", jsonFile}, srv.args...), m.args...)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				cmd := exec.CommandContext(ctx, binPath, args...)
				var stdout, stderr syncBuffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				cancel()
				out := stdout.String()
				t.Logf("ambrosia %s\n%s--- stderr ---\n%s", strings.Join(args, " "), out, stderr.String())
				if err != nil {
					t.Errorf("%s: %v\nstderr:\n%s", m.mode, err, stderr.String())
					continue
				}
				for _, re := range m.figures {
					if !re.MatchString(out) {
						t.Errorf("%s on %s: no line matching %s", m.mode, sv.name, re)
					}
				}
				if !strings.Contains(out, "\nresults: "+m.mode+" on ") {
					t.Errorf("%s on %s: no final table", m.mode, sv.name)
				}
				// stderr is no terminal here: plain progress lines, no
				// carriage returns.
				if e := stderr.String(); !strings.Contains(e, "bench "+m.mode+" ") || strings.Contains(e, "\r") {
					t.Errorf("%s on %s: progress on a pipe:\n%q", m.mode, sv.name, e)
				}
				b, err := os.ReadFile(jsonFile)
				if err != nil {
					t.Fatal(err)
				}
				var r benchReportJSON
				if err := json.Unmarshal(b, &r); err != nil {
					t.Fatalf("%s: --json: %v\n%s", m.mode, err, b)
				}
				if r.Mode != m.mode || r.Error != "" || r.Server == "" {
					t.Errorf("%s: JSON %s", m.mode, b)
				}
				switch m.mode {
				case "logins", "idle":
					if r.Logins == nil || r.Logins.Failed != 0 || r.Logins.OK == 0 {
						t.Errorf("%s: JSON logins %s", m.mode, b)
					}
				case "churn":
					if r.Churn == nil || r.Churn.Cycles == 0 || r.Churn.Failed != 0 || len(r.Churn.Samples) < 3 {
						t.Errorf("churn: JSON %s", b)
					}
				case "muc":
					if r.Join == nil || r.Join.Seated != benchAccounts {
						t.Errorf("muc: JSON join %s", b)
					}
					fallthrough
				case "messages":
					if len(r.Steps) != 1 || r.Steps[0].Sent == 0 || r.Steps[0].Delivered != r.Steps[0].Expected || r.Steps[0].Errors != 0 || r.Steps[0].Latency.N != r.Steps[0].Delivered {
						t.Errorf("%s: JSON steps %s", m.mode, b)
					}
				}
			}
		})
	}
}
