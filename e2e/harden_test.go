package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startLimitedServer starts a server whose [limits] section is limits
// (loopback is then not exempt unless limits says so), with a metrics
// listener, and returns it with the metrics address.
func startLimitedServer(t *testing.T, limits string, opts ServerOptions) (*Server, string) {
	t.Helper()
	metricsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	conf := filepath.Join(t.TempDir(), "ambrosia.toml")
	if err := os.WriteFile(conf, []byte("[limits]\n"+limits+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts.ExtraArgs = append(opts.ExtraArgs, "--config", conf, "--metrics-addr", metricsAddr)
	return startServer(t, opts), metricsAddr
}

// serverFigures are the resources the server process holds, read from
// its metrics (runtime and process collectors).
type serverFigures struct {
	goroutines, fds, heap, rss float64
}

func (f serverFigures) String() string {
	return fmt.Sprintf("%.0f goroutines, %.0f open files, heap in use %.1f MB, RSS %.1f MB", f.goroutines, f.fds, f.heap/1e6, f.rss/1e6)
}

func figures(t *testing.T, metricsAddr string) serverFigures {
	t.Helper()
	m := scrape(t, metricsAddr)
	get := func(name string) float64 {
		v, ok := sample(m, name)
		if !ok {
			t.Fatalf("metric %s missing", name)
		}
		return v
	}
	return serverFigures{get("go_goroutines"), get("process_open_fds"), get("go_memstats_heap_inuse_bytes"), get("process_resident_memory_bytes")}
}

// limitHits sums the limit_hits_total series of the c2s edge whose limit
// is text.
func limitHits(t *testing.T, metricsAddr, text string) float64 {
	t.Helper()
	v, _ := sample(scrape(t, metricsAddr), `ambrosia_limit_hits_total{edge="c2s",limit="`+text+`"}`)
	return v
}

// dialFrom opens n silent connections to addr from the loopback address
// from, in parallel; the ones the server refused are among them.
func dialFrom(t *testing.T, from, addr string, n int) []net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: rawTimeout}
	out := make([]net.Conn, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				nc, err := d.Dial("tcp", addr)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				out[i] = nc
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("dial from %s: %v", from, firstErr)
	}
	return out
}

// TestHardenSilentFlood is the flood of issue 14 at the scale of this
// machine's file limit: 2,000 silent connections from two addresses
// against a cap of 500 unauthenticated connections (400 per address).
// The server refuses what is past the caps, holds no goroutine per
// waiting connection, lets a normal client log in during the flood, and
// goes back to its baseline of goroutines, descriptors and heap after.
func TestHardenSilentFlood(t *testing.T) {
	requireTools(t)
	s, metricsAddr := startLimitedServer(t, `exempt = []
max_unauthenticated = 500
max_unauthenticated_per_ip = 400
max_connections_per_ip = 1000
new_connections_per_ip = 0
auth_timeout = "20s"`, ServerOptions{})
	addUser(t, s, alice, alicePass)
	login := func(resource string) {
		t.Helper()
		c, err := dialRaw(s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.login(s, "alice", alicePass, resource); err != nil {
			t.Fatalf("login during the flood: %v", err)
		}
	}
	login("warmup") // starts the poller, whose goroutines are baseline
	var base serverFigures
	checkFor(t, 10*time.Second, func() error {
		base = figures(t, metricsAddr)
		if v, _ := sample(scrape(t, metricsAddr), "ambrosia_c2s_connections"); v != 0 {
			return fmt.Errorf("%v connections before the flood", v)
		}
		return nil
	})
	t.Logf("baseline: %s", base)

	flood := append(dialFrom(t, "127.0.0.2", s.Addr, 1000), dialFrom(t, "127.0.0.3", s.Addr, 1000)...)
	defer func() {
		for _, nc := range flood {
			nc.Close()
		}
	}()
	var during serverFigures
	checkFor(t, 20*time.Second, func() error {
		v, _ := sample(scrape(t, metricsAddr), "ambrosia_c2s_connections")
		if v != 500 {
			return fmt.Errorf("%v connections open, want the cap of 500", v)
		}
		return nil
	})
	during = figures(t, metricsAddr)
	t.Logf("during the flood: %s", during)
	if perAddr, global := limitHits(t, metricsAddr, "too many unauthenticated connections from your address"), limitHits(t, metricsAddr, "too many unauthenticated connections"); perAddr == 0 || global == 0 {
		t.Fatalf("limit hits: per address %v, global %v; both caps should have been crossed", perAddr, global)
	}
	// The waiting connections hold descriptors, not goroutines.
	if during.goroutines > base.goroutines+50 {
		t.Errorf("%v goroutines during the flood, %v before", during.goroutines, base.goroutines)
	}
	if during.fds > base.fds+500+20 {
		t.Errorf("%v open files during the flood, %v before: more than the cap", during.fds, base.fds)
	}
	login("during")
	if !strings.Contains(s.Log(), `"msg":"connection refused"`) {
		t.Error("no log line for the refused connections")
	}

	for _, nc := range flood {
		nc.Close()
	}
	var after serverFigures
	checkFor(t, 30*time.Second, func() error {
		after = figures(t, metricsAddr)
		switch {
		case after.goroutines > base.goroutines+5:
			return fmt.Errorf("goroutines %v, baseline %v", after.goroutines, base.goroutines)
		case after.fds > base.fds+5:
			return fmt.Errorf("open files %v, baseline %v", after.fds, base.fds)
		case after.heap > base.heap+8e6:
			return fmt.Errorf("heap in use %.1f MB, baseline %.1f MB", after.heap/1e6, base.heap/1e6)
		}
		return nil
	})
	t.Logf("after the flood: %s", after)
	login("after")
}

// TestHardenPasswordGuessing guesses alice's password with one wrong
// guess per new connection, as the guesser of issue 14 did: the attempts
// after the second failure wait, and past login_failures_per_ip the
// address is refused, even with the right password, with a log line
// naming the address and the account. From an exempt address nothing is
// refused.
func TestHardenPasswordGuessing(t *testing.T) {
	requireTools(t)
	for _, tc := range []struct {
		name, exempt string
		refused      bool
	}{
		{"limited", "[]", true},
		{"exempt", `["127.0.0.0/8"]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, metricsAddr := startLimitedServer(t, "exempt = "+tc.exempt+"\nlogin_failures_per_ip = 3\nlogin_failure_window = \"1h\"", ServerOptions{})
			addUser(t, s, alice, alicePass)
			for i := range 3 {
				c, res, err := dialTLSAuth(s, "alice", fmt.Sprintf("guess-%d", i))
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				if !reNotAuth.MatchString(res) {
					t.Fatalf("guess %d: %s", i, res)
				}
			}
			c, res, err := dialTLSAuth(s, "alice", alicePass)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if !tc.refused {
				if !strings.HasPrefix(res, "<success") {
					t.Fatalf("right password from an exempt address: %s", res)
				}
				return
			}
			if !reNotAuth.MatchString(res) || !strings.Contains(res, "too many failed logins from your address") {
				t.Fatalf("right password after the guesses: %s", res)
			}
			if _, err := c.expect(streamError("policy-violation")); err != nil {
				t.Fatalf("no policy-violation: %v", err)
			}
			if v := limitHits(t, metricsAddr, "too many failed logins from your address, try again later"); v != 1 {
				t.Fatalf("limit hits %v", v)
			}
			log := s.Log()
			for _, want := range []string{`"msg":"login refused"`, `"remote":"127.0.0.1:`, `"user":"alice@localhost"`} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %s", want)
				}
			}
		})
	}
}
