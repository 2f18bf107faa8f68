package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCounts: passes, skips and failures are counted per test, and a
// failed test's output is reported.
func TestCounts(t *testing.T) {
	var out strings.Builder
	c := newCounter(&out)
	for _, e := range []event{
		{Action: "run", Package: "p", Test: "TestA"},
		{Action: "output", Package: "p", Test: "TestA", Output: "a says hello\n"},
		{Action: "pass", Package: "p", Test: "TestA"},
		{Action: "run", Package: "p", Test: "TestB"},
		{Action: "output", Package: "p", Test: "TestB", Output: "b broke\n"},
		{Action: "fail", Package: "p", Test: "TestB"},
		{Action: "skip", Package: "p", Test: "TestC"},
		{Action: "fail", Package: "p"},
	} {
		c.line(mustJSON(t, e))
	}
	c.report()
	if c.passed != 1 || c.failed != 1 || c.skipped != 1 {
		t.Fatalf("counted %d passed, %d failed, %d skipped; want 1 each", c.passed, c.failed, c.skipped)
	}
	if !strings.Contains(out.String(), "=== FAILED: p TestB\nb broke\n") || strings.Contains(out.String(), "a says hello") {
		t.Fatalf("report:\n%s", out.String())
	}
}

// TestTimeoutShowsRunningTests: a package that fails with no failed test,
// as when the test binary times out, is counted once and its report holds
// the output of the tests that were still running (the timeout's panic),
// bounded, and not that of the tests that passed.
func TestTimeoutShowsRunningTests(t *testing.T) {
	var out strings.Builder
	c := newCounter(&out)
	lines := []event{
		{Action: "run", Package: "e2e", Test: "TestDone"},
		{Action: "output", Package: "e2e", Test: "TestDone", Output: "done output\n"},
		{Action: "pass", Package: "e2e", Test: "TestDone"},
		{Action: "run", Package: "e2e", Test: "TestSlow"},
		{Action: "output", Package: "e2e", Test: "TestSlow", Output: "panic: test timed out after 10m0s\n"},
	}
	for i := 0; i < 2*maxUnfinishedLines; i++ {
		lines = append(lines, event{Action: "output", Package: "e2e", Test: "TestSlow", Output: "goroutine dump\n"})
	}
	lines = append(lines, event{Action: "output", Package: "e2e", Output: "FAIL\te2e\t600.1s\n"}, event{Action: "fail", Package: "e2e"})
	for _, e := range lines {
		c.line(mustJSON(t, e))
	}
	c.report()
	got := out.String()
	if c.failed != 1 || c.passed != 1 {
		t.Fatalf("counted %d passed, %d failed; want 1 and 1", c.passed, c.failed)
	}
	for _, want := range []string{"=== FAILED: e2e (package)", "--- unfinished: TestSlow\npanic: test timed out after 10m0s\n", "... 201 more lines"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%.2000s", want, got)
		}
	}
	if strings.Contains(got, "done output") {
		t.Errorf("report shows a passed test's output")
	}
}

func mustJSON(t *testing.T, e event) string {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
