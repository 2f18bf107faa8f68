package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage/postgres/pgtest"
)

// resultLine is the summary split_exactly.py prints.
var resultLine = regexp.MustCompile(`(?m)^RESULT .*$`)

// TestSplitExactlyOnce kills one process of a split server (two gateways,
// one session manager service on SQLite) with SIGKILL while alice, on
// gateway A, sends 300 numbered messages to bob, on gateway B; both use
// Stream Management. The killed service is restarted after 2 s; a client
// whose gateway died reconnects through the other one, and alice sends
// again, with the same origin-id, what the server had not acknowledged.
// A fourth case runs the service on PostgreSQL and kills the database
// server instead, restarting it after 2 s. Every message must reach bob
// exactly once and in order (live or offline), and be in his archive
// exactly once and in order (docs/service-protocol.md, Exactly once).
// AMBROSIA_EXACTLY_RUNS repeats every case that many times (default 1).
func TestSplitExactlyOnce(t *testing.T) {
	requireTools(t, "slixmpp")
	runs := 1
	if v := os.Getenv("AMBROSIA_EXACTLY_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("AMBROSIA_EXACTLY_RUNS=%q: want a positive number", v)
		}
		runs = n
	}
	for _, kill := range []string{"service", "receiver-gateway", "sender-gateway", "database"} {
		t.Run(kill, func(t *testing.T) {
			bad := 0
			for i := 1; i <= runs; i++ {
				// A subtest per run stops its processes before the next.
				t.Run(strconv.Itoa(i), func(t *testing.T) {
					res, ok := exactlyOnce(t, kill)
					t.Logf("%s run %d/%d: %s", kill, i, runs, res)
					if !ok {
						// Failed, the run shows its processes' logs.
						t.Errorf("%s run %d/%d lost, doubled or reordered a message", kill, i, runs)
						bad++
					}
				})
			}
			if bad > 0 {
				t.Errorf("%d of %d runs lost, doubled or reordered a message", bad, runs)
			}
		})
	}
}

// exactlyOnce runs one case on a fresh server and returns the script's
// RESULT line and whether it was clean.
func exactlyOnce(t *testing.T, kill string) (string, bool) {
	dir := t.TempDir()
	store := []string{"--data", dir}
	var pg *pgtest.Cluster
	if kill == "database" {
		// The sm service on PostgreSQL, whose server is killed.
		pg = pgtest.New(t)
		_, dsn, err := pg.CreateDatabase(t.Context(), pgtest.DatabaseOptions{Durable: true})
		if err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, "ambrosia.toml")
		doc := "[storage]\nbackend = \"postgres\"\npostgres_dsn = " + strconv.Quote(dsn) + "\n"
		if err := os.WriteFile(conf, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		store = []string{"--config", conf}
	}
	for _, u := range []string{"alice", "bob"} {
		ambrosia(t, "pw\n", append([]string{"user", "add", u + "@" + domain, "--create"}, store...)...)
	}
	a, b := startGateway(t, "gateway A"), startGateway(t, "gateway B")
	gws := []*splitGateway{a, b}
	svc := startSM(t, "service sm", dir, gws, store...)
	a.waitLog(t, `"msg":"bound"`, 1)
	b.waitLog(t, `"msg":"bound"`, 1)

	args := flowArgs(dir, a, b, "alice@"+domain, "bob@"+domain, "--count", "300", "--kill-after", "100", "--timeout", "85")
	switch kill {
	case "receiver-gateway":
		args = append(args, "--bob-reconnect-port", strconv.Itoa(a.port))
	case "sender-gateway":
		args = append(args, "--alice-reconnect-port", strconv.Itoa(b.port))
	}
	flow := startPython(t, "split_exactly", args...)
	flow.waitLine(t, "KILL", 60*time.Second)
	var restarted *splitProc
	switch kill {
	case "service":
		svc.kill()
		time.Sleep(2 * time.Second)
		restarted = startSM(t, "service sm (restarted)", dir, gws, store...)
	case "receiver-gateway":
		b.kill()
	case "sender-gateway":
		a.kill()
	case "database":
		pg.Crash()
		time.Sleep(2 * time.Second)
		if err := pg.Restart(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	<-flow.done
	if n := withdrawn(svc.log.String()); n > 0 {
		// The messages bob's client had when its gateway died, which
		// the h of its failed resumption took back from offline storage
		// (or kept from being handed on).
		t.Logf("messages bob's client had, withdrawn: %d", n)
	}
	if restarted != nil {
		// Messages the killed instance archived but did not acknowledge:
		// the gateways sent their events again, and the restarted
		// instance found them archived.
		if n := strings.Count(restarted.log.String(), `"msg":"event sent again archived already"`); n > 0 {
			t.Logf("archive entries found by an event sent again: %d", n)
		}
	}
	out := flow.out.String()
	res := resultLine.FindString(out)
	if res == "" {
		t.Errorf("split_exactly.py: %v\n%s", flow.err, out)
		return "no result", false
	}
	archiveClean := strings.HasSuffix(res, "archive_dup=[] archive_lost=[] archive_reordered=[]")
	clean := flow.err == nil && strings.Contains(res, " dup=[] lost=[] reordered=[] ") && archiveClean
	if !clean {
		t.Logf("split_exactly.py (%v):\n%s", flow.err, out)
	}
	return res, clean
}

// withdrawnLine is the service's report of messages it took back from
// offline storage, or did not hand on, because their client had them
// (link.Service.claim).
var withdrawnLine = regexp.MustCompile(`(?:"msg":"messages its client had withdrawn from offline storage"[^\n]*"withdrawn"|"messages_clients_had"):(\d+)`)

// withdrawn sums the messages a service's log says it withdrew.
func withdrawn(log string) int {
	n := 0
	for _, m := range withdrawnLine.FindAllStringSubmatch(log, -1) {
		k, _ := strconv.Atoi(m[1])
		n += k
	}
	return n
}
