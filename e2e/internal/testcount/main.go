// Command testcount reads `go test -json` output on stdin, prints a line per
// finished top-level test and package while the run goes on, and then the
// full log of every failed test so a human can read why it failed.
//
// The final "N passed, N failed" line is left to the caller (test.sh), which
// also knows the exit status of go test: the counts go to the file named by
// -counts as "PASSED FAILED SKIPPED".
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	Elapsed     float64
	ImportPath  string // build-output and build-fail events
	FailedBuild string
}

type failure struct {
	pkg, test string
	output    []string
}

type counter struct {
	out                     io.Writer
	passed, failed, skipped int
	logs                    map[string][]string // "pkg\x00test" -> output lines
	build                   map[string][]string // import path -> build output
	failedIn                map[string]bool     // packages with a failed test
	failures                []failure
}

func newCounter(out io.Writer) *counter {
	return &counter{
		out:      out,
		logs:     make(map[string][]string),
		build:    make(map[string][]string),
		failedIn: make(map[string]bool),
	}
}

func (c *counter) line(raw string) {
	var e event
	if !strings.HasPrefix(raw, "{") || json.Unmarshal([]byte(raw), &e) != nil {
		// go test writes some errors (bad flags, missing packages) as text.
		fmt.Fprintln(c.out, raw)
		return
	}
	key := e.Package + "\x00" + e.Test
	switch e.Action {
	case "build-output":
		c.build[e.ImportPath] = append(c.build[e.ImportPath], e.Output)
	case "output":
		c.logs[key] = append(c.logs[key], e.Output)
	case "pass", "fail", "skip":
		if e.Test == "" {
			c.packageDone(e)
		} else {
			c.testDone(e, key)
		}
	}
}

func (c *counter) testDone(e event, key string) {
	switch e.Action {
	case "pass":
		c.passed++
	case "skip":
		c.skipped++
	case "fail":
		c.failed++
		c.failedIn[e.Package] = true
		c.failures = append(c.failures, failure{e.Package, e.Test, c.logs[key]})
	}
	if !strings.Contains(e.Test, "/") {
		fmt.Fprintf(c.out, "%-4s %s %s (%.2fs)\n", strings.ToUpper(e.Action), e.Package, e.Test, e.Elapsed)
	}
	delete(c.logs, key)
}

func (c *counter) packageDone(e event) {
	key := e.Package + "\x00"
	switch {
	case e.Action == "fail" && !c.failedIn[e.Package]:
		// A package that fails without a failed test did not build, or
		// crashed, or failed in TestMain: count it once, with its output.
		c.failed++
		out := append(c.build[e.FailedBuild], c.logs[key]...)
		out = append(out, c.unfinished(e.Package)...)
		c.failures = append(c.failures, failure{e.Package, "(package)", out})
		fmt.Fprintf(c.out, "FAIL %s (package)\n", e.Package)
	case e.Action == "fail":
		fmt.Fprintf(c.out, "FAIL %s (%.2fs)\n", e.Package, e.Elapsed)
	case e.Action == "pass":
		fmt.Fprintf(c.out, "ok   %s (%.2fs)\n", e.Package, e.Elapsed)
	}
	delete(c.logs, key)
}

// maxUnfinishedLines bounds what is shown of each test that never finished:
// a timeout's panic names the running tests in its first lines, and then
// dumps every goroutine, which can be thousands of lines.
const maxUnfinishedLines = 200

// unfinished returns the output of pkg's tests that started and never
// ended, such as those running when the test binary timed out or crashed,
// and forgets it. Without it, a timeout showed only the package's name.
func (c *counter) unfinished(pkg string) []string {
	var keys []string
	for k := range c.logs {
		if p, test, _ := strings.Cut(k, "\x00"); p == pkg && test != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		_, test, _ := strings.Cut(k, "\x00")
		lines := c.logs[k]
		out = append(out, "--- unfinished: "+test+"\n")
		if len(lines) > maxUnfinishedLines {
			lines = append(lines[:maxUnfinishedLines:maxUnfinishedLines], fmt.Sprintf("... %d more lines\n", len(c.logs[k])-maxUnfinishedLines))
		}
		out = append(out, lines...)
		delete(c.logs, k)
	}
	return out
}

func (c *counter) report() {
	for _, f := range c.failures {
		fmt.Fprintf(c.out, "\n=== FAILED: %s %s\n", f.pkg, f.test)
		for _, l := range f.output {
			fmt.Fprint(c.out, l)
			if !strings.HasSuffix(l, "\n") {
				fmt.Fprintln(c.out)
			}
		}
	}
	if len(c.failures) > 0 {
		fmt.Fprintln(c.out)
	}
	fmt.Fprintf(c.out, "%d skipped\n", c.skipped)
}

func main() {
	countsFile := flag.String("counts", "", "write `PASSED FAILED SKIPPED` to this file")
	flag.Parse()
	c := newCounter(os.Stdout)
	sc := bufio.NewScanner(os.Stdin)
	// Test output lines can be long (stream dumps); do not stop at 64 KiB.
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		c.line(sc.Text())
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "testcount: reading input:", err)
		c.failed++
	}
	c.report()
	if *countsFile != "" {
		counts := fmt.Sprintf("%d %d %d\n", c.passed, c.failed, c.skipped)
		if err := os.WriteFile(*countsFile, []byte(counts), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "testcount:", err)
			os.Exit(2)
		}
	}
	if c.failed > 0 {
		os.Exit(1)
	}
}
