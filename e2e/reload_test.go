package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/loadtest"
)

// reloadSessions is how many sessions stay connected across the reloads.
const reloadSessions = 1000

// TestReloadCertificates holds 1,000 sessions while the certificate on
// disk is replaced and the server is told to reload, by SIGHUP and by
// ambrosia reload: every session stays and answers a ping, the metrics
// count them all, and a new TLS connection gets the new certificate;
// then through the HTTP API. A configuration file broken in between
// changes nothing and is logged.
func TestReloadCertificates(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	if _, _, err := loadtest.CreateUsers(ctx, filepath.Join(dataDir, "ambrosia.db"), domain, "r", reloadSessions, "secret"); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "ambrosia.toml")
	apiAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	const token = "reload-test-admin-token-0123456789"
	api := fmt.Sprintf("[api]\naddr = %q\nadmin_token = %q\n", apiAddr, token)
	writeFile(t, conf, api+"[c2s]\nmax_stanza_size = 262144\n")
	metricsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	s := startServer(t, ServerOptions{DataDir: dataDir, ExtraArgs: []string{"--config", conf, "--metrics-addr", metricsAddr}})
	certFile, keyFile := certs.Paths(dataDir, domain)

	first := fileFingerprint(t, certFile)
	if got := presented(t, s.TLSAddr, nil); got != first {
		t.Fatalf("before the reload: certificate %s, want the generated one %s", got, first)
	}
	conns := loginMany(ctx, t, s, reloadSessions)
	t.Cleanup(func() { closeAll(conns) })
	wantSessions(t, metricsAddr, reloadSessions)

	// A new certificate on disk, then SIGHUP.
	second := replaceCert(t, certFile, keyFile)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLogCount(t, s, `"msg":"reloaded"`, 1)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(mustRead(t, certFile)))
	if got := presented(t, s.TLSAddr, roots); got != second {
		t.Fatalf("after SIGHUP: certificate %s, want the new one %s (the old was %s)", got, second, first)
	}
	pingAll(t, conns, "hup")
	wantSessions(t, metricsAddr, reloadSessions)

	// A broken configuration: nothing changes, the error is logged.
	writeFile(t, conf, api+"[c2s\nmax_stanza_size = \n")
	replaceCert(t, certFile, keyFile)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	line := waitLogCount(t, s, `"msg":"reload failed: the running configuration and certificates stay"`, 1)
	if !strings.Contains(line, conf) {
		t.Errorf("the failed reload's log line does not name the file %s: %s", conf, line)
	}
	if got := presented(t, s.TLSAddr, nil); got != second {
		t.Fatalf("after a failed reload: certificate %s, want the one before %s", got, second)
	}
	pingAll(t, conns, "broken")

	// Fixed, with a setting that needs a restart, through ambrosia reload.
	writeFile(t, conf, api+"[c2s]\nmax_stanza_size = 100000\n")
	third := fileFingerprint(t, certFile)
	out := ambrosia(t, "", "reload", "--config", conf, "--data", dataDir)
	if !strings.HasPrefix(out, "reloaded:") || !strings.Contains(out, "at the next restart only: c2s.max_stanza_size") {
		t.Errorf("ambrosia reload said %q", out)
	}
	waitLogCount(t, s, `"msg":"reloaded"`, 2)
	if !strings.Contains(s.Log(), `"msg":"reload: these settings change only when the server restarts","keys":["c2s.max_stanza_size"]`) {
		t.Error("the log does not name the setting that waits for a restart")
	}
	if got := presented(t, s.TLSAddr, nil); got != third {
		t.Fatalf("after ambrosia reload: certificate %s, want %s", got, third)
	}
	pingAll(t, conns, "admin")
	wantSessions(t, metricsAddr, reloadSessions)

	// Through the HTTP API: a certificate that does not load is refused
	// with its error, then a good one reloads.
	ac := apiClient{t: t, base: "http://" + apiAddr, http: &http.Client{Timeout: time.Minute}}
	writeFile(t, conf, api+"[tls]\ncert_file = '/nonexistent.crt'\nkey_file = '/nonexistent.key'\n")
	if code, body := ac.call("Bearer "+token, "POST", "/api/v1/reload", nil); code != 409 || !strings.Contains(body, "/nonexistent.crt") {
		t.Errorf("POST /api/v1/reload with a missing certificate: %d %s, want 409 naming the file", code, body)
	}
	writeFile(t, conf, api+"[c2s]\nmax_stanza_size = 100000\n")
	fourth := replaceCert(t, certFile, keyFile)
	ac.must(token, "POST", "/api/v1/reload", nil, 204)
	if got := presented(t, s.TLSAddr, nil); got != fourth {
		t.Fatalf("after POST /api/v1/reload: certificate %s, want %s", got, fourth)
	}
	pingAll(t, conns, "api")
	wantSessions(t, metricsAddr, reloadSessions)
	if n := strings.Count(s.Log(), `"msg":"logout"`); n != 0 {
		t.Errorf("%d sessions ended during the reloads", n)
	}
	t.Logf("%d sessions stayed through 5 reloads (2 refused); certificates %s… → %s… → %s… → %s…", reloadSessions, first[:12], second[:12], third[:12], fourth[:12])
}

// replaceCert writes a new self-signed certificate for domain over the
// files, and returns its fingerprint.
func replaceCert(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	c, k, err := certs.SelfSigned(domain, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path string
		b    []byte
	}{{keyFile, k}, {certFile, c}} {
		tmp := f.path + ".new"
		if err := os.WriteFile(tmp, f.b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
	return fileFingerprint(t, certFile)
}

// fileFingerprint is the SHA-256 of the first certificate in a PEM file.
func fileFingerprint(t *testing.T, path string) string {
	t.Helper()
	b, _ := pem.Decode([]byte(mustRead(t, path)))
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	sum := sha256.Sum256(b.Bytes)
	return hex.EncodeToString(sum[:])
}

// presented opens a new direct TLS connection to addr and returns the
// fingerprint of the certificate it gets; with roots, the certificate
// must verify against them.
func presented(t *testing.T, addr string, roots *x509.CertPool) string {
	t.Helper()
	tc := &tls.Config{ServerName: domain, NextProtos: []string{"xmpp-client"}, RootCAs: roots, InsecureSkipVerify: roots == nil}
	c, err := tls.Dial("tcp", addr, tc)
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].Raw)
	return hex.EncodeToString(sum[:])
}

// loginMany logs in n load accounts over STARTTLS.
func loginMany(ctx context.Context, t *testing.T, s *Server, n int) []*loadtest.Conn {
	t.Helper()
	return loginManyAt(ctx, t, s.Addr, n)
}

// loginManyAt is loginMany against the client listener at addr.
func loginManyAt(ctx context.Context, t *testing.T, addr string, n int) []*loadtest.Conn {
	t.Helper()
	o := &loadtest.Options{Addr: addr, Domain: domain, Password: "secret", TLS: true,
		TLSConfig: &tls.Config{ServerName: domain, InsecureSkipVerify: true}, Keys: loadtest.NewKeyCache(),
		Resource: "reload", Timeout: time.Minute}
	conns := make([]*loadtest.Conn, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	next := atomic.Int64{}
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				c, _, err := loadtest.Login(ctx, o, loadtest.UserName("r", i))
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				c.Idle()
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		closeAll(conns)
		t.Fatalf("login: %v", err)
	}
	return conns
}

func closeAll(conns []*loadtest.Conn) {
	var wg sync.WaitGroup
	for _, c := range conns {
		if c != nil {
			wg.Go(func() { c.Close(5 * time.Second) })
		}
	}
	wg.Wait()
}

// pingAll sends an XEP-0199 ping on every connection and waits for every
// answer.
func pingAll(t *testing.T, conns []*loadtest.Conn, tag string) {
	t.Helper()
	var wg sync.WaitGroup
	var bad atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, 64)
	for i, c := range conns {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := ping(c, fmt.Sprintf("%s-%d", tag, i)); err != nil {
				bad.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Errorf("session %d: %w", i, err))
			}
		})
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d of %d sessions did not answer a ping (%s); first: %v", n, len(conns), tag, firstErr.Load())
	}
}

func ping(c *loadtest.Conn, id string) error {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	defer func() { _ = c.SetDeadline(time.Time{}); c.Idle() }()
	if err := c.Write([]byte("<iq type='get' id='" + id + "' to='" + domain + "'><ping xmlns='urn:xmpp:ping'/></iq>")); err != nil {
		return err
	}
	for {
		el, err := c.Next()
		if err != nil {
			return err
		}
		if el.Local == "iq" && el.Attr("id") == id {
			if el.Attr("type") != "result" {
				return errors.New("ping answered with type " + el.Attr("type"))
			}
			return nil
		}
	}
}

// wantSessions checks the server's count of client sessions.
func wantSessions(t *testing.T, metricsAddr string, n int) {
	t.Helper()
	checkFor(t, 30*time.Second, func() error {
		v, ok := sample(scrape(t, metricsAddr), "ambrosia_c2s_sessions")
		if !ok || v != float64(n) {
			return fmt.Errorf("ambrosia_c2s_sessions = %v (present: %v), want %d", v, ok, n)
		}
		return nil
	})
}

// waitLogCount waits until the server's log has n lines containing s and
// returns the last of them.
func waitLogCount(t *testing.T, s *Server, sub string, n int) string {
	t.Helper()
	var last string
	checkFor(t, 30*time.Second, func() error {
		var found int
		for _, l := range strings.Split(s.Log(), "\n") {
			if strings.Contains(l, sub) {
				found++
				last = l
			}
		}
		if found < n {
			return fmt.Errorf("%d log lines with %s, want %d", found, sub, n)
		}
		return nil
	})
	return last
}

// TestReloadLimits: a limit tightened in the configuration file applies
// at SIGHUP without a restart. Four sessions from one address are
// connected when max_connections_per_ip goes from 100 to 4: a fifth
// connection from that address is refused with the documented stream
// error (policy-violation, "too many connections from your address") and
// counted, while the four stay connected and answer. The change is
// logged with its old and new values. Loosened again by ambrosia reload,
// the fifth client logs in.
func TestReloadLimits(t *testing.T) {
	requireTools(t)
	ctx, dataDir := reloadUsers(t)
	conf := filepath.Join(t.TempDir(), "ambrosia.toml")
	limits := func(perIP int) string {
		return fmt.Sprintf("[limits]\nexempt = []\nmax_connections_per_ip = %d\n", perIP)
	}
	writeFile(t, conf, limits(100))
	metricsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	s := startServer(t, ServerOptions{DataDir: dataDir, ExtraArgs: []string{"--config", conf, "--metrics-addr", metricsAddr}})
	conns := loginMany(ctx, t, s, 4)
	t.Cleanup(func() { closeAll(conns) })
	wantSessions(t, metricsAddr, 4)

	writeFile(t, conf, limits(4))
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	line := waitLogCount(t, s, `"msg":"reload: limit changed"`, 1)
	if !strings.Contains(line, `"key":"limits.max_connections_per_ip","from":100,"to":4`) {
		t.Errorf("the change is not logged with its values: %s", line)
	}
	if line := waitLogCount(t, s, `"msg":"reloaded"`, 1); !strings.Contains(line, "limits.max_connections_per_ip") {
		t.Errorf("the reload does not list the limit as applied: %s", line)
	}
	c, err := dialRaw(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.expect(streamErrorText("policy-violation", perIPRefusal)); err != nil {
		t.Fatalf("a fifth connection after the limit was tightened: %v", err)
	}
	if err := c.expectClosed(); err != nil {
		t.Fatalf("the refused connection stays open: %v", err)
	}
	if v := limitHits(t, metricsAddr, perIPRefusal); v != 1 {
		t.Errorf("limit hits %v, want 1", v)
	}
	pingAll(t, conns, "tightened")
	wantSessions(t, metricsAddr, 4)

	// Loosened through the admin socket: the fifth client gets in.
	writeFile(t, conf, limits(5))
	if out := ambrosia(t, "", "reload", "--config", conf, "--data", dataDir); !strings.Contains(out, "limits.max_connections_per_ip") {
		t.Errorf("ambrosia reload said %q", out)
	}
	fifth, _, err := loadtest.Login(ctx, &loadtest.Options{Addr: s.Addr, Domain: domain, Password: "secret", TLS: true,
		TLSConfig: &tls.Config{ServerName: domain, InsecureSkipVerify: true}, Keys: loadtest.NewKeyCache(), Resource: "fifth", Timeout: time.Minute}, "r4")
	if err != nil {
		t.Fatalf("a fifth client after the limit was loosened: %v", err)
	}
	defer fifth.Close(5 * time.Second)
	wantSessions(t, metricsAddr, 5)
	pingAll(t, conns, "loosened")
	if n := strings.Count(s.Log(), `"msg":"logout"`); n != 0 {
		t.Errorf("%d sessions ended during the reloads", n)
	}
}

// perIPRefusal is the text of the stream error refusing a connection past
// max_connections_per_ip.
const perIPRefusal = "too many connections from your address"

// reloadUsers returns a context for a reload test, ended with it, and a
// data directory with the accounts r0…r4 (password "secret").
func reloadUsers(t *testing.T) (context.Context, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	dataDir := t.TempDir()
	if _, _, err := loadtest.CreateUsers(ctx, filepath.Join(dataDir, "ambrosia.db"), domain, "r", 5, "secret"); err != nil {
		t.Fatal(err)
	}
	return ctx, dataDir
}

// TestReloadGatewayLimits: a gateway of a split server takes new [limits]
// and log level on SIGHUP, as serve does, while its sessions (whose
// service stays linked) stay connected and answer.
func TestReloadGatewayLimits(t *testing.T) {
	requireTools(t)
	ctx, dataDir := reloadUsers(t)
	conf := filepath.Join(t.TempDir(), "gateway.toml")
	limits := func(perIP int, level string) string {
		return fmt.Sprintf("[log]\nlevel = %q\nformat = \"json\"\n[limits]\nexempt = []\nmax_connections_per_ip = %d\n", level, perIP)
	}
	writeFile(t, conf, limits(100, "info"))
	metricsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	g := &splitGateway{port: freePort(t), svcPort: freePort(t)}
	g.splitProc = startSplit(t, "gateway", "gateway", "--config", conf,
		"--c2s-addr", "127.0.0.1:"+strconv.Itoa(g.port), "--c2s-tls-addr", "",
		"--service-addr", g.svcAddr(), "--service-secret", splitSecret, "--metrics-addr", metricsAddr)
	waitListening(t, "127.0.0.1:"+strconv.Itoa(g.port), g.done, "gateway", g.log.String)
	startSM(t, "service sm", dataDir, []*splitGateway{g})
	g.waitLog(t, `"msg":"bound"`, 1)
	addr := "127.0.0.1:" + strconv.Itoa(g.port)
	conns := loginManyAt(ctx, t, addr, 4)
	t.Cleanup(func() { closeAll(conns) })
	wantSessions(t, metricsAddr, 4)

	writeFile(t, conf, limits(4, "debug"))
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	g.waitLog(t, `"msg":"reloaded"`, 1)
	for _, want := range []string{`"key":"limits.max_connections_per_ip","from":100,"to":4`, `"changed":["log.level","limits.max_connections_per_ip"]`} {
		if !strings.Contains(g.log.String(), want) {
			t.Errorf("the gateway's log lacks %s:\n%s", want, g.log.String())
		}
	}
	c, err := dialRaw(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.expect(streamErrorText("policy-violation", perIPRefusal)); err != nil {
		t.Fatalf("a fifth connection after the limit was tightened: %v", err)
	}
	if v := limitHits(t, metricsAddr, perIPRefusal); v != 1 {
		t.Errorf("limit hits %v, want 1", v)
	}
	pingAll(t, conns, "tightened")
	wantSessions(t, metricsAddr, 4)
}
