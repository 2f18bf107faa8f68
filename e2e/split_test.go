package e2e

import (
	"encoding/base64"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/postgres/pgtest"
)

const splitSecret = "split secret for tests"

// splitProc is one process of a split server: a gateway or a service.
type splitProc struct {
	name string
	args []string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	err  error
}

func startSplit(t *testing.T, name string, args ...string) *splitProc {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("building ./cmd/ambrosia failed: %v\n%s", buildErr, buildLog)
	}
	p := &splitProc{name: name, args: args, log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
				t.Errorf("%s still running 10 s after SIGTERM", name)
			}
		}
		if t.Failed() {
			t.Logf("--- %s log ---\n%s", name, p.log.String())
		}
	})
	return p
}

// kill ends the process with SIGKILL, as a crash would.
func (p *splitProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitLog waits until the log holds n lines containing s.
func (p *splitProc) waitLog(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(p.log.String(), s) < n {
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %d× %q after 20 s\n%s", p.name, n, s, p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exited waits for the process to end on its own and returns its log.
func (p *splitProc) exited(t *testing.T) (string, error) {
	t.Helper()
	select {
	case <-p.done:
		return p.log.String(), p.err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s still running\n%s", p.name, p.log.String())
	}
	return "", nil
}

type splitGateway struct {
	*splitProc
	port, svcPort int
}

func startGateway(t *testing.T, name string, extra ...string) *splitGateway {
	t.Helper()
	g := &splitGateway{port: freePort(t), svcPort: freePort(t)}
	args := append([]string{"gateway",
		"--c2s-addr", "127.0.0.1:" + strconv.Itoa(g.port), "--c2s-tls-addr", "127.0.0.1:" + strconv.Itoa(freePort(t)),
		"--service-addr", "127.0.0.1:" + strconv.Itoa(g.svcPort), "--service-secret", splitSecret,
		"--log-format", "json", "--log-level", "debug"}, extra...)
	g.splitProc = startSplit(t, name, args...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(g.port)), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening: %v\n%s", name, err, g.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return g
}

func (g *splitGateway) svcAddr() string { return "127.0.0.1:" + strconv.Itoa(g.svcPort) }

func startSM(t *testing.T, name, dataDir string, gws []*splitGateway, extra ...string) *splitProc {
	t.Helper()
	var addrs []string
	for _, g := range gws {
		addrs = append(addrs, g.svcAddr())
	}
	args := append([]string{"service", "sm", "--domain", domain, "--data", dataDir,
		"--gateway", strings.Join(addrs, ","), "--log-format", "json", "--log-level", "debug"}, extra...)
	if !strings.Contains(strings.Join(extra, " "), "--service-") {
		args = append(args, "--service-secret", splitSecret)
	}
	return startSplit(t, name, args...)
}

func flowArgs(dataDir string, from, to *splitGateway, fromJID, toJID string, extra ...string) []string {
	return append([]string{"--port", strconv.Itoa(from.port), "--to-port", strconv.Itoa(to.port),
		"--ca", filepath.Join(dataDir, "tls", domain+".crt"),
		"--from-jid", fromJID, "--from-password", "pw", "--to-jid", toJID, "--to-password", "pw",
		"--timeout", "80"}, extra...)
}

// TestSplitServer runs the server split in processes: two gateways and a
// session manager service linked to both, on PostgreSQL. Users on
// different gateways exchange presence and messages; the service is killed
// with SIGKILL while messages flow and restarted, and every message
// arrives exactly once; then a second instance joins, sharing the
// database, and users spread over both still reach each other.
func TestSplitServer(t *testing.T) {
	requireTools(t, "slixmpp")
	pg := pgtest.New(t)
	dsn := pg.Database(t, pgtest.DatabaseOptions{})
	dir := t.TempDir()
	conf := filepath.Join(dir, "ambrosia.toml")
	doc := "[storage]\nbackend = \"postgres\"\npostgres_dsn = " + strconv.Quote(dsn) + "\n"
	if err := os.WriteFile(conf, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob", "u1", "u2", "u3", "u4", "u5", "u6"} {
		ambrosia(t, "pw\n", "user", "add", u+"@"+domain, "--config", conf)
	}
	a, b := startGateway(t, "gateway A"), startGateway(t, "gateway B")
	gws := []*splitGateway{a, b}
	svc := startSM(t, "service sm", dir, gws, "--config", conf)
	a.waitLog(t, `"msg":"bound"`, 1)
	b.waitLog(t, `"msg":"bound"`, 1)

	flow := startPython(t, "split_flow", flowArgs(dir, a, b, "alice@"+domain, "bob@"+domain, "--count", "150", "--kill-after", "40")...)
	flow.waitLine(t, "KILL", 60*time.Second)
	svc.kill()
	svc = startSM(t, "service sm (restarted)", dir, gws, "--config", conf)
	out := flow.wait(t)
	if !strings.Contains(out, "received 150 duplicates [] gaps []") {
		t.Fatalf("messages not delivered exactly once:\n%s", out)
	}
	t.Logf("split_flow.py:\n%s", out)

	// A second instance: users move to the instance that owns them.
	startSM(t, "service sm 2", dir, gws, "--instance", "sm-2", "--config", conf)
	a.waitLog(t, `"msg":"bound"`, 3)
	b.waitLog(t, `"msg":"bound"`, 3)
	ids := []string{instanceOf(t, svc), "sm-2"}
	var from, to string
	for _, x := range []string{"u1", "u2", "u3", "u4", "u5", "u6"} {
		for _, y := range []string{"u1", "u2", "u3", "u4", "u5", "u6"} {
			if router.Owner(x+"@"+domain, ids) != router.Owner(y+"@"+domain, ids) && from == "" {
				from, to = x, y
			}
		}
	}
	if from == "" {
		t.Skip("all six users hash to one instance")
	}
	out = mustPython(t, "split_flow", flowArgs(dir, b, a, from+"@"+domain, to+"@"+domain, "--count", "20", "--interval", "0")...)
	if !strings.Contains(out, "received 20 duplicates [] gaps []") {
		t.Fatalf("users on two instances:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "ambrosia.db")); err == nil {
		t.Error("a service created a SQLite database although the backend is postgres")
	}
}

// TestSplitSeeOtherHost: a service started with --see-other-host sends
// the clients of users it does not know elsewhere: the gateway ends their
// stream with the see-other-host stream error carrying the value; a user
// it knows logs in.
func TestSplitSeeOtherHost(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	dir := t.TempDir()
	ambrosia(t, "pw\n", "user", "add", "alice@"+domain, "--data", dir, "--create")
	g := startGateway(t, "gateway")
	startSM(t, "service sm", dir, []*splitGateway{g}, "--see-other-host", "xmpp.other.example:5222")
	g.waitLog(t, `"msg":"bound"`, 1)
	ca := filepath.Join(dir, "tls", domain+".crt")
	tests := []struct {
		user string
		want *regexp.Regexp
	}{
		{"nobody", regexp.MustCompile(`<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>xmpp\.other\.example:5222</see-other-host></stream:error>`)},
		{"alice", regexp.MustCompile(`<success[ />]`)},
	}
	for _, tt := range tests {
		c, err := dialRaw("127.0.0.1:" + strconv.Itoa(g.port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.openStream(); err != nil {
			t.Fatal(err)
		}
		if err := c.startTLS(ca); err != nil {
			t.Fatal(err)
		}
		cred := base64.StdEncoding.EncodeToString([]byte("\x00" + tt.user + "\x00pw"))
		if err := c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + cred + "</auth>"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.expect(tt.want); err != nil {
			t.Fatalf("%s: %v", tt.user, err)
		}
	}
}

// instanceOf reads a service's random instance id from its log.
func instanceOf(t *testing.T, p *splitProc) string {
	t.Helper()
	p.waitLog(t, `"msg":"gateway linked"`, 1)
	l := p.log.String()
	i := strings.Index(l, `"instance":"`)
	if i < 0 {
		t.Fatalf("no instance id in the log")
	}
	rest := l[i+len(`"instance":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}

// TestSplitRefused: a service with a wrong secret, or binding a domain its
// secret does not cover, is refused and exits with the reason; nothing is
// bound.
func TestSplitRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	dir := t.TempDir()
	g := startGateway(t, "gateway", "--service-domain-secret", "other.example="+splitSecret)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"wrong secret", []string{"--service-secret", "wrong"}, "authentication failed"},
		{"domain not covered", []string{"--service-secret", splitSecret, "--service-user", "other.example"}, "bind localhost: not-authorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startSM(t, "service sm", dir, []*splitGateway{g}, tt.args...)
			log, err := p.exited(t)
			if err == nil || !strings.Contains(log, tt.want) {
				t.Fatalf("exit %v, want an error with %q:\n%s", err, tt.want, log)
			}
		})
	}
	if strings.Contains(g.log.String(), `"msg":"bound"`) {
		t.Fatalf("a refused service bound a domain:\n%s", g.log.String())
	}
}

// TestSplitMUC runs the conference service as two instances of `ambrosia
// service muc` behind two gateways, on PostgreSQL: a persistent room is
// created and used by users on different gateways, then the instance that
// owns the room is killed with SIGKILL. The other instance takes the room
// over from the database: a self-ping (XEP-0410) tells the occupants to
// rejoin, and the configuration, the membership and the archive are
// intact.
func TestSplitMUC(t *testing.T) {
	requireTools(t, "slixmpp")
	pg := pgtest.New(t)
	dsn := pg.Database(t, pgtest.DatabaseOptions{})
	dir := t.TempDir()
	conf := filepath.Join(dir, "ambrosia.toml")
	doc := "[storage]\nbackend = \"postgres\"\npostgres_dsn = " + strconv.Quote(dsn) + "\n"
	if err := os.WriteFile(conf, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		ambrosia(t, "pw\n", "user", "add", u+"@"+domain, "--config", conf)
	}
	a, b := startGateway(t, "gateway A"), startGateway(t, "gateway B")
	gws := []*splitGateway{a, b}
	startSM(t, "service sm", dir, gws, "--config", conf)
	ids := []string{"muc-1", "muc-2"}
	mucs := map[string]*splitProc{}
	for _, id := range ids {
		mucs[id] = startMUCService(t, "service muc "+id, dir, gws, "--instance", id, "--config", conf)
	}
	a.waitLog(t, `"msg":"bound"`, 3)
	b.waitLog(t, `"msg":"bound"`, 3)

	const room = "split@conference." + domain
	goFile := filepath.Join(dir, "go")
	flow := startPython(t, "split_muc", "--port", strconv.Itoa(a.port), "--bob-port", strconv.Itoa(b.port),
		"--ca", filepath.Join(dir, "tls", domain+".crt"), "--alice", "alice@"+domain+"/a", "--bob", "bob@"+domain+"/b",
		"--password", "pw", "--room", room, "--go-file", goFile, "--timeout", "80")
	flow.waitLine(t, "READY", 60*time.Second)
	owner := ids[router.Owner(room, ids)]
	mucs[owner].kill()
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out := flow.wait(t)
	t.Logf("split_muc.py (killed %s):\n%s", owner, out)
	if !strings.Contains(out, "configuration and membership intact") || !strings.Contains(out, "bob got 'after'") {
		t.Fatalf("the room did not come back on the other instance:\n%s", out)
	}
}

func startMUCService(t *testing.T, name, dataDir string, gws []*splitGateway, extra ...string) *splitProc {
	t.Helper()
	var addrs []string
	for _, g := range gws {
		addrs = append(addrs, g.svcAddr())
	}
	args := append([]string{"service", "muc", "--domain", domain, "--data", dataDir, "--service-secret", splitSecret,
		"--gateway", strings.Join(addrs, ","), "--log-format", "json", "--log-level", "debug"}, extra...)
	return startSplit(t, name, args...)
}
