package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/cluster/etcdtest"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/postgres/pgtest"
)

// clusterTTL is the lease of the processes of the cluster tests: how
// long after a crash an instance's users move.
const clusterTTL = "3s"

// clusterArgs are the flags that put a process in the test's cluster.
func clusterArgs(ec *etcdtest.Cluster) []string {
	return []string{"--etcd", strings.Join(ec.Endpoints(), ","), "--cluster", "e2e", "--lease-ttl", clusterTTL}
}

// startClusterSM starts a session manager instance that finds its
// gateways in etcd, as the [cluster] section of conf says.
func startClusterSM(t *testing.T, instance, dir, conf string, extra ...string) *splitProc {
	t.Helper()
	args := []string{"service", "sm", "--domain", domain, "--data", dir, "--config", conf, "--instance", instance,
		"--service-secret", splitSecret, "--log-format", "json", "--log-level", "debug"}
	return startSplit(t, "service "+instance, append(args, extra...)...)
}

// TestSplitCluster runs a split server whose membership is in etcd: a
// 3-member etcd cluster, two gateways and session manager instances on
// one PostgreSQL, none of them given another's address. Eight users, on
// both gateways, send each other messages in a ring while a third
// instance joins, then one instance is killed with SIGKILL (its users
// move once its lease expires), then one etcd member is killed. Gateway
// B speaks to one etcd member only, which is paused while the third
// instance joins: B learns of the join late, and the stanzas it sends
// meanwhile to the former owner of a user that moved are handed back
// (reroute) and reach the user through gateway A and the new owner.
// Every message arrives exactly once, nothing comes back as an error,
// and the presence of the users that moved is right afterwards. Then etcd
// goes away entirely: the server goes on serving on the last membership;
// and once etcd is back, a new instance joins and serves its users.
func TestSplitCluster(t *testing.T) {
	requireTools(t, "slixmpp", "etcd")
	ec := etcdtest.Start(t, 3)
	pg := pgtest.New(t)
	dsn := pg.Database(t, pgtest.DatabaseOptions{})
	dir := t.TempDir()
	conf := filepath.Join(dir, "ambrosia.toml")
	doc := "[storage]\nbackend = \"postgres\"\npostgres_dsn = " + strconv.Quote(dsn) + "\n" +
		"[cluster]\netcd = [\"" + strings.Join(ec.Endpoints(), "\", \"") + "\"]\nname = \"e2e\"\nlease_ttl = \"" + clusterTTL + "\"\n"
	if err := os.WriteFile(conf, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	users := []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"}
	for _, u := range append(users, "alice", "bob", "carol", "dave") {
		ambrosia(t, "pw\n", "user", "add", u+"@"+domain, "--config", conf)
	}
	// Gateway A and the joining instance speak to members 0 and 1,
	// gateway B to member 2 only (the flag wins over the file).
	aArgs, bArgs := clusterArgs(ec), clusterArgs(ec)
	aArgs[1], bArgs[1] = strings.Join(ec.Endpoints()[:2], ","), ec.Endpoints()[2]
	a := startGateway(t, "gateway A", append(aArgs, "--name", "gw-a")...)
	b := startGateway(t, "gateway B", append(bArgs, "--name", "gw-b")...)
	// The joining instance takes over users of gateway A whose messages
	// come from users of gateway B (the ring: u1 on A gets u8's, u8 on B).
	joiner := ""
	for i := 0; joiner == "" && i < 100; i++ {
		id := "sm-3-" + strconv.Itoa(i)
		moved := 0
		for k := 0; k < len(users); k += 2 {
			if router.Owner(users[k]+"@"+domain, []string{"sm-1", "sm-2", id}) == 2 {
				moved++
			}
		}
		if moved >= 2 {
			joiner = id
		}
	}
	sm1 := startClusterSM(t, "sm-1", dir, conf)
	startClusterSM(t, "sm-2", dir, conf)
	for _, g := range []*splitGateway{a, b} {
		g.waitLog(t, `"msg":"bound"`, 2)
	}

	flow := startPython(t, "cluster_flow", "--port", strconv.Itoa(a.port), "--to-port", strconv.Itoa(b.port),
		"--ca", filepath.Join(dir, "tls", domain+".crt"), "--domain", domain, "--users", strings.Join(users, ","), "--password", "pw",
		"--rounds", "240", "--interval", "0.05", "--mark", "40:JOIN", "--mark", "110:KILL", "--mark", "170:ETCD", "--timeout", "150")
	flow.waitLine(t, "JOIN", 90*time.Second)
	ec.Pause(2)
	startClusterSM(t, joiner, dir, conf, aArgs...)
	a.waitLog(t, `"`+joiner+`"]}`, 2) // gateway A switched to the view with the joiner
	time.Sleep(500 * time.Millisecond)
	ec.Resume(2)
	flow.waitLine(t, "KILL", 60*time.Second)
	sm1.kill()
	flow.waitLine(t, "ETCD", 60*time.Second)
	ec.Kill(0)
	out := flow.wait(t)
	t.Logf("cluster_flow.py:\n%s", out)
	for _, g := range []*splitGateway{a, b} {
		// sm-3 joined and sm-1 left the membership the gateway hashes over.
		if l := g.log.String(); !strings.Contains(l, joiner) || !strings.Contains(l, `"msg":"membership"`) {
			t.Errorf("%s never switched membership:\n%s", g.name, l)
		}
	}
	if !strings.Contains(a.log.String(), `"msg":"rerouted"`) {
		t.Errorf("no stanza of gateway B, late to switch, was handed back through gateway A")
	}

	// etcd gone entirely: serving goes on on the last membership.
	ec.StopAll()
	a.waitLog(t, "etcd unreachable: serving on the last membership", 1)
	out = mustPython(t, "split_flow", flowArgs(dir, a, b, "alice@"+domain, "bob@"+domain, "--count", "20", "--interval", "0")...)
	if !strings.Contains(out, "received 20 duplicates [] gaps []") {
		t.Fatalf("without etcd:\n%s", out)
	}

	// etcd back: an instance that starts now joins, and its users are
	// served.
	ec.StartAll(t)
	startClusterSM(t, "sm-4", dir, conf)
	for _, g := range []*splitGateway{a, b} {
		g.waitLog(t, `"sm-4"]}`, 2)
	}
	out = mustPython(t, "split_flow", flowArgs(dir, b, a, "carol@"+domain, "dave@"+domain, "--count", "20", "--interval", "0")...)
	if !strings.Contains(out, "received 20 duplicates [] gaps []") {
		t.Fatalf("after etcd came back:\n%s", out)
	}
}

// TestSplitClusterRefused: the bad inputs of a cluster membership. A
// process whose etcd is unreachable does not start and names the
// endpoints; a service for a domain that a service of another kind
// serves in the cluster is refused.
func TestSplitClusterRefused(t *testing.T) {
	requireTools(t, "etcd")
	dir := t.TempDir()
	dead := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	t.Run("etcd unreachable", func(t *testing.T) {
		for _, args := range [][]string{
			{"gateway", "--service-secret", splitSecret, "--c2s-addr", "127.0.0.1:" + strconv.Itoa(freePort(t)), "--c2s-tls-addr", "",
				"--service-addr", "127.0.0.1:" + strconv.Itoa(freePort(t)), "--etcd", dead, "--log-format", "json"},
			{"service", "sm", "--data", dir, "--service-secret", splitSecret, "--etcd", dead, "--log-format", "json"},
		} {
			p := startSplit(t, args[0], args...)
			log, err := p.exited(t)
			if err == nil || !strings.Contains(log, "etcd unreachable at "+dead) {
				t.Errorf("%s: exit %v, want an error naming %s:\n%s", args[0], err, dead, log)
			}
		}
	})
	t.Run("domain of another kind", func(t *testing.T) {
		ec := etcdtest.Start(t, 1)
		g := startGateway(t, "gateway", append(clusterArgs(ec), "--name", "gw")...)
		muc := startSplit(t, "service muc", append([]string{"service", "muc", "--domain", domain, "--data", dir,
			"--service-secret", splitSecret, "--instance", "muc-1", "--log-format", "json"}, clusterArgs(ec)...)...)
		g.waitLog(t, `"msg":"bound"`, 1)
		p := startSplit(t, "service sm", append([]string{"service", "sm", "--domain", "conference." + domain, "--data", dir,
			"--service-secret", splitSecret, "--instance", "sm-1", "--log-format", "json"}, clusterArgs(ec)...)...)
		log, err := p.exited(t)
		want := `conference.` + domain + ` is served by "muc" (instances muc-1)`
		if err == nil || !strings.Contains(log, want) {
			t.Fatalf("exit %v, want an error with %s:\n%s", err, want, log)
		}
		if strings.Count(g.log.String(), `"msg":"bound"`) != 1 {
			t.Errorf("the refused service bound a domain:\n%s", g.log.String())
		}
		_ = muc
	})
}
