package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchChurn runs `ambrosia bench churn` against a server started
// here, with four clients for a few seconds: every cycle completes,
// nothing fails, the server's metrics are sampled at the start, at each
// interval, at the end and after the clients left, and the CSV, the JSON
// report and the SVG plot say so.
func TestBenchChurn(t *testing.T) {
	dir := t.TempDir()
	addr, metricsAddr := freeAddr(t), freeAddr(t)
	t.Setenv("AMBROSIA_UPLOAD_ADDR", freeAddr(t))
	if code, out, errOut := runCmd(t, "", "bench", "users", "--data", dir, "--count", "4"); code != 0 {
		t.Fatalf("bench users: %s %s", out, errOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, []string{"--domain", "localhost", "--data", dir, "--c2s-addr", addr, "--c2s-tls-addr", freeAddr(t),
			"--metrics-addr", metricsAddr}, io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve still running 20 s after its context ended")
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range []string{addr, metricsAddr} {
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve not listening on %s after 20 s", a)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	csvPath, svgPath, jsonPath := filepath.Join(dir, "churn.csv"), filepath.Join(dir, "churn.svg"), filepath.Join(dir, "churn.json")
	var out, errOut bytes.Buffer
	err := benchCmd(context.Background(), []string{"churn", "--addr", addr, "--tls", "--clients", "4", "--concurrency", "2",
		"--duration", "3s", "--sample-every", "1s", "--settle", "100ms", "--metrics-url", "http://" + metricsAddr + "/metrics",
		"--samples", csvPath, "--plot", svgPath, "--json", jsonPath}, &out, &errOut)
	if err != nil {
		t.Fatalf("bench churn: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "0 failed") || !strings.Contains(out.String(), "results: churn on localhost") {
		t.Errorf("report:\n%s", out.String())
	}

	var rep struct {
		Churn struct {
			Clients int   `json:"clients"`
			Cycles  int64 `json:"cycles"`
			Failed  int64 `json:"failed"`
			Samples []struct {
				Goroutines *float64 `json:"goroutines"`
				RSS        *float64 `json:"rss_mib"`
			} `json:"samples"`
		} `json:"churn"`
		Closes struct {
			StreamEnd int64 `json:"stream_end"`
		} `json:"closes"`
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	c := rep.Churn
	// Each completed cycle closed its stream cleanly; a cycle cut short
	// by the end of the run may add a close. (How many cycles fit in the
	// run depends on the machine: one is enough here.)
	if c.Clients != 4 || c.Cycles < 1 || c.Failed != 0 || rep.Closes.StreamEnd < c.Cycles {
		t.Fatalf("churn report: %s", b)
	}
	// The start, one each second the run lasted (as many as the
	// machine's speed let the ticker fire), the end, and after the
	// clients left.
	if len(c.Samples) < 3 {
		t.Fatalf("%d samples: %s", len(c.Samples), b)
	}
	for i, s := range c.Samples {
		if s.Goroutines == nil || *s.Goroutines <= 0 || s.RSS == nil || *s.RSS <= 0 {
			t.Fatalf("sample %d has no server figures: %s", i, b)
		}
	}

	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(c.Samples)+1 || strings.Join(rows[0], ",") != strings.Join(churnCSVHeader, ",") {
		t.Fatalf("CSV:\n%v", rows)
	}
	last := rows[len(rows)-1]
	if n, _ := strconv.ParseInt(last[1], 10, 64); n != c.Cycles || !strings.Contains(last[9], "all clients gone") {
		t.Errorf("last CSV row %v, want %d cycles and the note", last, c.Cycles)
	}

	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(svg, new(struct{})); err != nil {
		t.Fatalf("plot is not XML: %v", err)
	}
	for _, want := range []string{"go_goroutines", "process_open_fds", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes", "minutes since the start", "cycles/s"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("plot lacks %q", want)
		}
	}
	if n := bytes.Count(svg, []byte(`class="panel"`)); n != 5 {
		t.Errorf("%d panels, want 5", n)
	}
}
