package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/loadtest"
)

// The server metrics a churn run samples: the figures that grow when
// something is not released as clients leave.
const (
	metricGoroutines = "go_goroutines"
	metricOpenFDs    = "process_open_fds"
	metricHeap       = "go_memstats_heap_inuse_bytes"
	metricRSS        = "process_resident_memory_bytes"
)

// churnSample is the server's state at one moment of a churn run. A
// metric the scrape did not give is NaN (empty in CSV, null in JSON).
type churnSample struct {
	Minute float64 `json:"minute"`
	// Cycles and Failed are the cumulative counts; CyclesPerSecond is the
	// rate since the previous sample.
	Cycles          int64      `json:"cycles"`
	Failed          int64      `json:"failed"`
	CyclesPerSecond float64    `json:"cycles_per_second"`
	Online          int64      `json:"online"`
	Goroutines      jsonNumber `json:"goroutines"`
	OpenFDs         jsonNumber `json:"open_fds"`
	HeapInuseMiB    jsonNumber `json:"heap_inuse_mib"`
	RSSMiB          jsonNumber `json:"rss_mib"`
	// Note says what this sample is when it is not one of the run's
	// regular ones, or why its metrics are missing.
	Note string `json:"note,omitempty"`
}

// jsonNumber is a float that is null in JSON when NaN.
type jsonNumber float64

// MarshalJSON writes NaN as null.
func (n jsonNumber) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(n), 'f', -1, 64), nil
}

func (n jsonNumber) csv(prec int) string {
	if math.IsNaN(float64(n)) {
		return ""
	}
	return strconv.FormatFloat(float64(n), 'f', prec, 64)
}

// benchChurnReport is a churn run's part of the JSON report.
type benchChurnReport struct {
	Clients   int           `json:"clients"`
	Cycles    int64         `json:"cycles"`
	Failed    int64         `json:"failed"`
	Skipped   int64         `json:"skipped"`
	PerSecond float64       `json:"cycles_per_second"`
	Cycle     benchLatency  `json:"cycle"` // dial to close of a completed cycle
	FirstErr  string        `json:"first_error,omitempty"`
	Samples   []churnSample `json:"samples"`
}

// churnSampler scrapes the server's metrics at each tick of a run.
type churnSampler struct {
	ctx     context.Context
	url     string
	client  *http.Client
	mu      sync.Mutex
	samples []churnSample
	prev    loadtest.ChurnTick
	notes   io.Writer
}

// sample records the server's state with the run's counts of t.
func (s *churnSampler) sample(t loadtest.ChurnTick, note string) {
	cs := churnSample{Minute: t.Elapsed.Minutes(), Cycles: t.Cycles, Failed: t.Failed, Online: t.Online, Note: note,
		Goroutines: jsonNumber(math.NaN()), OpenFDs: jsonNumber(math.NaN()), HeapInuseMiB: jsonNumber(math.NaN()), RSSMiB: jsonNumber(math.NaN())}
	if dt := (t.Elapsed - s.prev.Elapsed).Seconds(); dt > 0 && t.Cycles >= s.prev.Cycles {
		cs.CyclesPerSecond = float64(t.Cycles-s.prev.Cycles) / dt
	}
	if s.url != "" {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		m, err := loadtest.Scrape(ctx, s.client, s.url)
		cancel()
		if err != nil {
			fmt.Fprintf(s.notes, "bench churn: scrape: %v\n", err)
			cs.Note = strings.TrimSpace(cs.Note + " scrape failed")
		} else {
			get := func(name string, scale float64) jsonNumber {
				if v, ok := m[name]; ok {
					return jsonNumber(v / scale)
				}
				return jsonNumber(math.NaN())
			}
			cs.Goroutines, cs.OpenFDs = get(metricGoroutines, 1), get(metricOpenFDs, 1)
			cs.HeapInuseMiB, cs.RSSMiB = get(metricHeap, 1<<20), get(metricRSS, 1<<20)
		}
	}
	s.mu.Lock()
	s.samples = append(s.samples, cs)
	s.prev = t
	s.mu.Unlock()
}

func benchChurn(ctx context.Context, stdout, notes io.Writer, rep *benchReport, prog *progress, c loadtest.ChurnConfig,
	metricsURL string, settle time.Duration, samplesPath, plotPath string) error {
	s := &churnSampler{ctx: ctx, url: metricsURL, client: &http.Client{Timeout: 10 * time.Second}, notes: notes}
	c.Tick = func(t loadtest.ChurnTick) { s.sample(t, "") }
	r, err := loadtest.Churn(ctx, c)
	prog.Stop()
	if r == nil {
		return err
	}
	s.sample(loadtest.ChurnTick{Elapsed: r.Wall, Cycles: r.Cycles, Failed: r.Failed}, "end of the run")
	// Once every client has left and the server has had time to let go,
	// its figures should be back where they started.
	if err == nil && settle > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(settle):
		}
	}
	s.sample(loadtest.ChurnTick{Elapsed: r.Wall + settle, Cycles: r.Cycles, Failed: r.Failed}, fmt.Sprintf("all clients gone, after %v", settle))
	fmt.Fprintf(stdout, "churn: %d clients, %d negotiations in flight, %.0fs\n", c.Clients, c.Concurrency, r.Wall.Seconds())
	fmt.Fprintf(stdout, "cycles: %d completed (%.1f/s), %d failed, %d skipped (partner failed)\n", r.Cycles, r.PerSecond(), r.Failed, r.Skipped)
	printLatency(stdout, "cycle (dial to close)", &r.Cycle)
	fmt.Fprintf(stdout, "closing: %v\n", &r.Closes)
	if r.FirstErr != nil {
		fmt.Fprintf(stdout, "first error: %v\n", r.FirstErr)
	}
	cr := &benchChurnReport{Clients: c.Clients, Cycles: r.Cycles, Failed: r.Failed, Skipped: r.Skipped, PerSecond: r.PerSecond(),
		Cycle: latencyOf(&r.Cycle), Samples: s.samples}
	if r.FirstErr != nil {
		cr.FirstErr = r.FirstErr.Error()
	}
	rep.Churn = cr
	rep.Closes = closesOf(&r.Closes)
	if samplesPath != "" {
		if werr := writeChurnCSV(samplesPath, s.samples); werr != nil && err == nil {
			err = werr
		}
	}
	if plotPath != "" {
		if werr := writeChurnPlot(plotPath, c, r, s.samples); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

// churnCSVHeader names the columns of --samples.
var churnCSVHeader = []string{"minute", "cycles", "failed", "cycles_per_second", "online", "goroutines", "open_fds", "heap_inuse_mib", "rss_mib", "note"}

func writeChurnCSV(path string, samples []churnSample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write(churnCSVHeader)
	for _, s := range samples {
		_ = w.Write([]string{strconv.FormatFloat(s.Minute, 'f', 2, 64), strconv.FormatInt(s.Cycles, 10), strconv.FormatInt(s.Failed, 10),
			strconv.FormatFloat(s.CyclesPerSecond, 'f', 1, 64), strconv.FormatInt(s.Online, 10),
			s.Goroutines.csv(0), s.OpenFDs.csv(0), s.HeapInuseMiB.csv(1), s.RSSMiB.csv(1), s.Note})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// churnSeries are the panels of the plot: the four figures that reveal a
// leak, and the cycle rate that says how hard the server was churned.
func churnSeries(samples []churnSample) []loadtest.Series {
	series := []loadtest.Series{
		{Name: "server goroutines (" + metricGoroutines + ")", Unit: "goroutines"},
		{Name: "server open files (" + metricOpenFDs + ")", Unit: "descriptors"},
		{Name: "server heap in use (" + metricHeap + ")", Unit: "MiB"},
		{Name: "server resident memory (" + metricRSS + ")", Unit: "MiB"},
		{Name: "cycles per second since the previous sample", Unit: "cycles/s"},
	}
	for i, s := range samples {
		for k, v := range []jsonNumber{s.Goroutines, s.OpenFDs, s.HeapInuseMiB, s.RSSMiB} {
			if !math.IsNaN(float64(v)) {
				series[k].Points = append(series[k].Points, loadtest.Point{X: s.Minute, Y: float64(v)})
			}
		}
		if i > 0 {
			series[4].Points = append(series[4].Points, loadtest.Point{X: s.Minute, Y: s.CyclesPerSecond})
		}
	}
	return series
}

func writeChurnPlot(path string, c loadtest.ChurnConfig, r *loadtest.ChurnResult, samples []churnSample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	title := fmt.Sprintf("ambrosia bench churn: %d clients for %v, %d cycles (%.0f/s), %d failed",
		c.Clients, c.Duration, r.Cycles, r.PerSecond(), r.Failed)
	if err := loadtest.PlotSVG(f, title, "minutes since the start", churnSeries(samples)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// churnTable prints the samples of a churn run.
func churnTable(w io.Writer, c *benchChurnReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "cycles\tfailed\tskipped\tcycles/s\tcycle p50 ms\tp99 ms\tmax ms\t")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t\n", c.Cycles, c.Failed, c.Skipped, c.PerSecond, c.Cycle.P50ms, c.Cycle.P99ms, c.Cycle.MaxMs)
	tw.Flush()
	fmt.Fprintln(tw, "minute\tcycles/s\tonline\tgoroutines\topen fds\theap MiB\tRSS MiB\t")
	for _, s := range c.Samples {
		fmt.Fprintf(tw, "%.1f\t%.1f\t%d\t%s\t%s\t%s\t%s\t  %s\n", s.Minute, s.CyclesPerSecond, s.Online,
			s.Goroutines.csv(0), s.OpenFDs.csv(0), s.HeapInuseMiB.csv(1), s.RSSMiB.csv(1), s.Note)
	}
	tw.Flush()
}
