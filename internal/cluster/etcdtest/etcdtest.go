// Package etcdtest runs a throwaway etcd cluster for tests: n members of
// the machine's etcd binary (Debian: etcd-server), each with its own data
// directory and its client and peer URLs on free loopback ports, stopped
// and removed when the test ends.
//
// When no etcd binary is installed the tests that ask for one are
// skipped, unless AMBROSIA_E2E=1 is set, which makes the skip a failure.
package etcdtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cluster is a running etcd cluster owned by the test.
type Cluster struct {
	t       testing.TB
	members []*Member
}

// Member is one etcd process.
type Member struct {
	Name      string
	ClientURL string
	peerURL   string
	dir       string
	args      []string
	cmd       *exec.Cmd
	log       *logBuffer
	done      chan struct{}
}

type logBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// Binary returns the path of etcd, or "" when it is not installed.
func Binary() string {
	p, err := exec.LookPath("etcd")
	if err != nil {
		return ""
	}
	return p
}

// Start runs an n-member cluster and waits until it has a leader.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "etcd not installed (Debian: apt-get install etcd-server)"
		if os.Getenv("AMBROSIA_E2E") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg + "; set AMBROSIA_E2E=1 to make this a failure")
	}
	c := &Cluster{t: t}
	var initial []string
	for i := range n {
		m := &Member{Name: "m" + strconv.Itoa(i), ClientURL: "http://127.0.0.1:" + strconv.Itoa(freePort(t)),
			peerURL: "http://127.0.0.1:" + strconv.Itoa(freePort(t)), dir: t.TempDir()}
		c.members = append(c.members, m)
		initial = append(initial, m.Name+"="+m.peerURL)
	}
	for _, m := range c.members {
		m.args = []string{"--name", m.Name, "--data-dir", filepath.Join(m.dir, "data"),
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "ambrosia-test-" + strconv.Itoa(os.Getpid()),
			"--heartbeat-interval", "50", "--election-timeout", "500"}
		m.start(t, bin)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.stop()
		}
		if t.Failed() {
			for _, m := range c.members {
				t.Logf("--- etcd %s log ---\n%s", m.Name, tail(m.log.String(), 4000))
			}
		}
	})
	c.waitHealthy(t, c.members)
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (m *Member) start(t testing.TB, bin string) {
	m.log = &logBuffer{}
	m.done = make(chan struct{})
	m.cmd = exec.Command(bin, m.args...)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	m.cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH=")
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("etcd %s: %v", m.Name, err)
	}
	go func() {
		_ = m.cmd.Wait()
		close(m.done)
	}()
}

func (m *Member) stop() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGCONT) // if paused
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// Kill ends member i with SIGKILL, as a crash would.
func (c *Cluster) Kill(i int) {
	m := c.members[i]
	_ = m.cmd.Process.Kill()
	<-m.done
}

// Pause stops member i with SIGSTOP: it neither answers nor fails, as a
// member on a machine that hangs; its clients wait on it.
func (c *Cluster) Pause(i int) { _ = c.members[i].cmd.Process.Signal(syscall.SIGSTOP) }

// Resume lets a paused member go on.
func (c *Cluster) Resume(i int) { _ = c.members[i].cmd.Process.Signal(syscall.SIGCONT) }

// StopAll stops every member, as an outage of the whole cluster.
func (c *Cluster) StopAll() {
	for _, m := range c.members {
		m.stop()
	}
}

// StartAll starts again every member that is not running, on its data
// directory, and waits until all of them answer.
func (c *Cluster) StartAll(t testing.TB) {
	t.Helper()
	for _, m := range c.members {
		select {
		case <-m.done:
			m.start(t, Binary())
		default:
		}
	}
	c.waitHealthy(t, c.members)
}

// Endpoints are the client URLs of the members.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.ClientURL)
	}
	return out
}

// waitHealthy waits until every member of ms answers its health endpoint.
func (c *Cluster) waitHealthy(t testing.TB, ms []*Member) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, m := range ms {
		for {
			out, err := health(m.ClientURL)
			if err == nil && strings.Contains(out, `"health":"true"`) {
				break
			}
			select {
			case <-m.done:
				t.Fatalf("etcd %s exited:\n%s", m.Name, m.log.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("etcd %s not healthy after 30 s (%v %s):\n%s", m.Name, err, out, tail(m.log.String(), 4000))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func health(url string) (string, error) {
	host := strings.TrimPrefix(url, "http://")
	c, err := net.DialTimeout("tcp", host, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /health HTTP/1.0\r\nHost: %s\r\n\r\n", host); err != nil {
		return "", err
	}
	var b []byte
	buf := make([]byte, 1024)
	for {
		n, err := c.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	return string(b), nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
