package e2e

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestBenchMUC runs a small `ambrosia bench muc` against the server with
// its default configuration and checks the counts it reports, never its
// timing: every occupant seated, every room created by the run, and
// every message delivered to every occupant of its room.
func TestBenchMUC(t *testing.T) {
	requireTools(t)
	const rooms, occupants, senders = 3, 4, 3
	s := startServer(t, ServerOptions{AllowPlain: true})
	ambrosia(t, "", "bench", "users", "--data", s.DataDir, "--count", strconv.Itoa(rooms*occupants))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// 15 messages/s over 3 senders stays within the rooms' default limit
	// of 5 messages/s per occupant.
	out, err := exec.CommandContext(ctx, binPath, "bench", "muc", "--addr", s.Addr,
		"--rooms", strconv.Itoa(rooms), "--occupants", strconv.Itoa(occupants),
		"--senders", strconv.Itoa(senders), "--join-concurrency", "5",
		"--rate", "15", "--duration", "2s", "--settle", "0s").CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("ambrosia bench muc: %v", err)
	}
	join := regexp.MustCompile(`join: (\d+) seated, (\d+) failed, \d+ in flight; rooms created (\d+)`).FindSubmatch(out)
	if join == nil {
		t.Fatal("no join line in the report")
	}
	if string(join[1]) != strconv.Itoa(rooms*occupants) || string(join[2]) != "0" || string(join[3]) != strconv.Itoa(rooms) {
		t.Errorf("seated %s, failed %s, rooms created %s; want %d, 0, %d", join[1], join[2], join[3], rooms*occupants, rooms)
	}
	step := regexp.MustCompile(`step 1: target \d+ msg/s, sent (\d+) in [\d.]+s \(\d+ msg/s\) by \d+ senders, delivered (\d+) of (\d+) \(\d+/s\), loss [\d.]+%, errors (\d+)`).FindSubmatch(out)
	if step == nil {
		t.Fatal("no step in the report")
	}
	sent, _ := strconv.Atoi(string(step[1]))
	delivered, _ := strconv.Atoi(string(step[2]))
	expected, _ := strconv.Atoi(string(step[3]))
	if sent == 0 || expected != sent*occupants || delivered != expected || string(step[4]) != "0" {
		t.Errorf("sent %d, delivered %d of %d, errors %s: want every message delivered to all %d occupants", sent, delivered, expected, step[4], occupants)
	}
	if regexp.MustCompile(`not sent by this run`).Match(out) {
		t.Error("foreign groupchat messages counted")
	}
}
