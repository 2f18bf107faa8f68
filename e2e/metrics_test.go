package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape returns the metrics served at addr/metrics.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d, %v", resp.StatusCode, err)
	}
	return string(b)
}

// sample returns the value of the series named exactly series (name and
// labels as exposed) and whether it is there.
func sample(body, series string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// TestMetrics logs users in and exchanges a message, then reads the
// session, authentication and stanza figures an operator watches from
// --metrics-addr, and the same page from the debug listener.
func TestMetrics(t *testing.T) {
	requireTools(t, "slixmpp")
	metricsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	debugAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	s := startServer(t, ServerOptions{ExtraArgs: []string{"--metrics-addr", metricsAddr, "--debug-addr", debugAddr}})
	addUser(t, s, alice, alicePass)
	addUser(t, s, bob, bobPass)

	before := scrape(t, metricsAddr)
	if v, ok := sample(before, "ambrosia_c2s_sessions"); !ok || v != 0 {
		t.Fatalf("sessions before any login: %v (present %v)", v, ok)
	}

	mustPython(t, "message", messageArgs(s, "msg-metrics-1", "counted", "")...)
	if code, out := runPython(t, "login", loginArgs(s, false, alice, "not-"+alicePass, "SCRAM-SHA-256")...); code != 3 {
		t.Fatalf("wrong password: exit code %d, want 3:\n%s", code, out)
	}

	// The clients are gone once the scripts exit, but the server notices
	// a moment later: poll until the gauges are back to zero.
	want := []struct {
		series string
		ok     func(v float64) bool
		what   string
	}{
		{`ambrosia_c2s_sessions`, func(v float64) bool { return v == 0 }, "0 once the clients left"},
		{`ambrosia_c2s_connections`, func(v float64) bool { return v == 0 }, "0 once the clients left"},
		{`ambrosia_c2s_authentications_total{mechanism="SCRAM-SHA-256",outcome="failure"}`, func(v float64) bool { return v == 1 }, "1"},
		{`ambrosia_c2s_stanzas_received_total{kind="message"}`, func(v float64) bool { return v >= 1 }, "at least 1"},
		{`ambrosia_c2s_stanzas_received_total{kind="presence"}`, func(v float64) bool { return v >= 2 }, "at least 2 (one initial presence each)"},
		{`ambrosia_sm_stanzas_routed_total{direction="out",kind="message"}`, func(v float64) bool { return v >= 1 }, "at least 1"},
		{`ambrosia_sm_stanzas_routed_total{direction="in",kind="message"}`, func(v float64) bool { return v >= 1 }, "at least 1"},
		{`ambrosia_sm_archive_entries_written_total`, func(v float64) bool { return v >= 1 }, "at least 1"},
		{`go_goroutines`, func(v float64) bool { return v > 0 }, "positive"},
	}
	var body string
	var bad []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		body = scrape(t, metricsAddr)
		bad = bad[:0]
		for _, w := range want {
			if v, ok := sample(body, w.series); !ok || !w.ok(v) {
				bad = append(bad, fmt.Sprintf("%s = %v (present %v), want %s", w.series, v, ok, w.what))
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(bad) > 0 {
		t.Fatalf("metrics:\n%s\n--- /metrics ---\n%s", strings.Join(bad, "\n"), body)
	}
	// Two successful logins at least (alice and bob), whatever SCRAM
	// variant slixmpp chose.
	var ok float64
	for _, m := range regexp.MustCompile(`(?m)^ambrosia_c2s_authentications_total\{mechanism="[^"]+",outcome="success"\} (\S+)$`).FindAllStringSubmatch(body, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		ok += v
	}
	if ok < 2 {
		t.Errorf("successful authentications %v, want at least 2:\n%s", ok, body)
	}

	if d := scrape(t, debugAddr); !strings.Contains(d, "ambrosia_c2s_authentications_total{") {
		t.Errorf("the debug listener's /metrics lacks the authentication counter:\n%s", d)
	}
}
