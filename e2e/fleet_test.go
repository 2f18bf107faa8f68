package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage/postgres/pgtest"
)

// fleetReport is what TestFleetFailover reads of `bench failover --json`.
type fleetReport struct {
	Logins *struct{ OK, Failed int }
	Fleet  *struct {
		Workers  int `json:"load_processes"`
		Sessions int
	}
	Steps []struct {
		Sent, Delivered, Duplicates, Errors uint64
		LoginsOK                            int `json:"logins_ok"`
		LoginsFailed                        int `json:"logins_failed"`
	}
	Failover *struct {
		Disrupted    int     `json:"messages_disrupted"`
		Lost         int     `json:"messages_lost"`
		LoginsFailed int     `json:"logins_failed"`
		ServedAgainS float64 `json:"served_again_s"`
		ServedAfter  bool    `json:"served_after"`
		Error        string
	}
	Error string
}

// TestFleetFailover drives a small fleet with `ambrosia bench failover`:
// three gateways and two session manager instances on PostgreSQL, 2,000
// sessions held by two load processes, messages between random sessions
// on different gateways. Before the kill, while it happens and after, every
// message arrives exactly once; one instance is killed with SIGKILL in the
// second step, and in the third every login succeeds (also those of its
// users, now the other instance's) and every message arrives once.
func TestFleetFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	pg := pgtest.New(t)
	dsn := pg.Database(t, pgtest.DatabaseOptions{})
	const sessions = 2000
	ambrosia(t, "", "bench", "users", "--postgres-dsn", dsn, "--domain", domain, "--count", strconv.Itoa(sessions))
	dir := t.TempDir()
	conf := writeStoreConfig(t, dir, dsn)

	var gws []*splitGateway
	var addrs []string
	for i := range 3 {
		// Without TLS: the test is about delivery, and 2,000 TLS
		// handshakes take long under the race detector.
		g := startGateway(t, fmt.Sprintf("gateway %d", i), "--log-level", "info", "--allow-plain")
		gws = append(gws, g)
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(g.port))
	}
	// The first instance writes the domain's certificate, which the second
	// then reads from the same data directory.
	sm0 := startSM(t, "service sm-0", dir, gws, "--instance", "sm-0", "--config", conf, "--log-level", "info")
	for _, g := range gws {
		g.waitLog(t, `"msg":"bound"`, 1)
	}
	startSM(t, "service sm-1", dir, gws, "--instance", "sm-1", "--config", conf, "--log-level", "info")
	for _, g := range gws {
		g.waitLog(t, `"msg":"bound"`, 2)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "bench", "failover", "--gateways", strings.Join(addrs, ","),
		"--domain", domain, "--sessions", strconv.Itoa(sessions), "--workers", "2",
		"--rate", "150", "--duration", "3s", "--kill-after", "1s", "--kill-pid", strconv.Itoa(sm0.cmd.Process.Pid),
		"--login-rate", "20", "--json", "-")
	cmd.Env = oneShotEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	t.Logf("bench failover:\n%s", stderr.String())
	var rep fleetReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("bench failover: %v; JSON: %v\n%s", runErr, err, stdout.String())
	}
	if runErr != nil {
		t.Fatalf("bench failover: %v (%s)", runErr, rep.Error)
	}
	if rep.Logins == nil || rep.Logins.OK != sessions || rep.Fleet == nil || rep.Fleet.Workers != 2 {
		t.Fatalf("sessions: %+v, fleet %+v, want %d logged in by 2 load processes", rep.Logins, rep.Fleet, sessions)
	}
	if len(rep.Steps) != 3 || rep.Failover == nil {
		t.Fatalf("want three steps and the failover figures: %s", stdout.String())
	}
	for i, s := range rep.Steps {
		if s.Sent == 0 || s.Delivered != s.Sent || s.Duplicates != 0 || s.Errors != 0 {
			t.Errorf("step %d: sent %d, delivered once %d, duplicates %d, errors %d: want every message exactly once",
				i+1, s.Sent, s.Delivered, s.Duplicates, s.Errors)
		}
	}
	if fo := rep.Failover; !fo.ServedAfter || fo.Error != "" || fo.Lost != 0 || fo.ServedAgainS < 0 {
		t.Errorf("failover: %+v: want the killed instance's users served again", *fo)
	}
	if s := rep.Steps[2]; s.LoginsOK == 0 || s.LoginsFailed != 0 {
		t.Errorf("after the kill: %d logins ok, %d failed", s.LoginsOK, s.LoginsFailed)
	}
	select {
	case <-sm0.done:
	default:
		t.Errorf("sm-0 still runs: the bench did not kill it")
	}
}

// writeStoreConfig writes a configuration file in dir whose store is the
// PostgreSQL database dsn, and returns its path.
func writeStoreConfig(t *testing.T, dir, dsn string) string {
	t.Helper()
	conf := filepath.Join(dir, "ambrosia.toml")
	doc := "[storage]\nbackend = \"postgres\"\npostgres_dsn = " + strconv.Quote(dsn) + "\n"
	if err := os.WriteFile(conf, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}
