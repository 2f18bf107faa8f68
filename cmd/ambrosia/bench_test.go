package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/loadtest"
)

func TestBenchGuard(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		addr     string
		owned    bool
		loopback bool
		refused  bool
	}{
		{"127.0.0.1:5222", false, true, false},
		{"127.33.4.2:5222", false, true, false},
		{"[::1]:5222", false, true, false},
		{"localhost:5222", false, true, false},
		{"192.0.2.1:5222", false, false, true},
		{"[2001:db8::1]:5222", false, false, true},
		{"192.0.2.1:5222", true, false, false},
	} {
		var notes bytes.Buffer
		loopback, err := guardTarget(ctx, "--addr", tc.addr, tc.owned, &notes)
		if loopback != tc.loopback || (err != nil) != tc.refused {
			t.Errorf("%s owned %v: loopback %v, err %v; want %v, refused %v", tc.addr, tc.owned, loopback, err, tc.loopback, tc.refused)
		}
		if err != nil && (!strings.Contains(err.Error(), "refusing to load "+tc.addr) || !strings.Contains(err.Error(), ownServerFlag)) {
			t.Errorf("%s: refusal %q does not say what and how", tc.addr, err)
		}
		if tc.owned && !strings.Contains(notes.String(), "not on this machine") {
			t.Errorf("%s: no note of a far target: %q", tc.addr, notes.String())
		}
	}
	if _, err := guardTarget(ctx, "--addr", "no-port", false, io.Discard); err == nil || !strings.Contains(err.Error(), "--addr") {
		t.Errorf("an address without port: %v", err)
	}
}

// TestBenchRefusesFarServer: without the flag, nothing is dialled and the
// operator reads why.
func TestBenchRefusesFarServer(t *testing.T) {
	code, out, errOut := runCmd(t, "", "bench", "logins", "--addr", "192.0.2.1:5222", "--count", "1")
	if code == 0 || out != "" || !strings.Contains(errOut, "refusing to load 192.0.2.1:5222") || !strings.Contains(errOut, "--yes-i-own-this-server") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = runCmd(t, "", "bench", "logins", "--tls", "--direct-tls")
	if code != 2 || !strings.Contains(errOut, "exclude each other") {
		t.Errorf("--tls --direct-tls: exit %d, stderr %q", code, errOut)
	}
}

func TestBenchTarget(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		addr, domain string
		direct       bool
		want         string
	}{
		{"10.0.0.1:5333", "example.org", false, "10.0.0.1:5333"},
		{"", "localhost", false, "127.0.0.1:5222"},
		{"", "localhost", true, "127.0.0.1:5223"},
	} {
		got, err := benchTarget(ctx, tc.addr, tc.domain, tc.direct)
		if err != nil || got != tc.want {
			t.Errorf("benchTarget(%q, %q, %v) = %q, %v; want %q", tc.addr, tc.domain, tc.direct, got, err, tc.want)
		}
	}
	if _, err := benchTarget(ctx, "nocolon", "x", false); err == nil {
		t.Error("an address without port accepted")
	}
}

func TestBenchTLS(t *testing.T) {
	for _, tc := range []struct {
		insecure, loopback, direct bool
		skip                       bool
		says                       string
	}{
		{false, true, false, true, "not verified"},
		{true, false, false, true, "not verified"},
		{false, false, true, false, "system's roots"},
	} {
		c, says, err := benchTLS("example.org", "", tc.insecure, tc.loopback, tc.direct)
		if err != nil || c.InsecureSkipVerify != tc.skip || !strings.Contains(says, tc.says) || c.ServerName != "example.org" {
			t.Errorf("%+v: skip %v, %q, %v", tc, c.InsecureSkipVerify, says, err)
		}
		if tc.direct != (len(c.NextProtos) == 1 && c.NextProtos[0] == "xmpp-client") {
			t.Errorf("%+v: ALPN %v", tc, c.NextProtos)
		}
	}
	if _, _, err := benchTLS("example.org", "/nonexistent.pem", false, false, false); err == nil {
		t.Error("a missing CA file accepted")
	}
}

func TestProgressText(t *testing.T) {
	prev := loadtest.MeterReading{Elapsed: time.Second, LoggedIn: 10, Sent: 100, Delivered: 100}
	r := loadtest.MeterReading{Phase: "step 1 at 100 msg/s", Elapsed: 2 * time.Second, LoggedIn: 10, Failed: 1, Seated: 10, Sent: 200, Delivered: 1100, Errors: 2}
	got := progressText("muc", r, prev)
	want := "bench muc    2.0s step 1 at 100 msg/s: logged in 10 (1 failed), seated 10, sent 200 (100/s), delivered 1100 (1000/s), errors 2"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// Not a terminal: plain lines, the last one at the end.
	var b syncWriter
	m := loadtest.NewMeter()
	m.SetPhase("logging in")
	p := startProgress(&b, m, "logins")
	p.Stop()
	p.Stop()
	if s := b.String(); strings.Contains(s, "\r") || !strings.HasSuffix(s, "\n") || !strings.Contains(s, "done: logged in 0") {
		t.Errorf("progress on a pipe: %q", s)
	}
}

func TestBenchReport(t *testing.T) {
	var h loadtest.Histogram
	h.Record(2 * time.Millisecond)
	r := &benchReport{Mode: "muc", Server: "127.0.0.1:5222", Domain: "localhost", Security: "starttls", Mechanism: "SCRAM-SHA-1",
		Logins: &benchLogins{OK: 4, PerSecond: 100, Latency: latencyOf(&h)},
		Join:   &benchJoin{Seated: 4, Latency: latencyOf(&h)},
		Steps:  []benchStep{{Target: 20, Sent: 20, Expected: 80, Delivered: 80, Latency: latencyOf(&h), Passed: true}},
		Error:  "interrupted"}
	var out bytes.Buffer
	r.table(&out)
	for _, w := range []string{"results: muc on localhost", "logins ok", "seated", "delivered/s", "pass", "stopped early: interrupted"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("no %q in the table:\n%s", w, out.String())
		}
	}
	var js bytes.Buffer
	if err := r.writeJSON("-", &js); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	steps, _ := back["steps"].([]any)
	if len(steps) != 1 || back["mode"] != "muc" || back["logins"].(map[string]any)["latency"].(map[string]any)["p50_ms"] != 2.0 {
		t.Errorf("JSON: %s", js.String())
	}
}

// syncWriter is a buffer the progress goroutine writes to.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
