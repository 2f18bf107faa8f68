package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
)

// pebbleValidity is the lifetime of the certificates the test authority
// issues, in seconds: short, so that a renewal happens during the test
// (when a third of it is left).
const pebbleValidity = 60

// TestACME obtains certificates from pebble, Let's Encrypt's test
// authority, which checks control of every name for real: one server
// proves it with TLS-ALPN-01 on its direct TLS client listener, another
// with HTTP-01 on its HTTP port; a small DNS server points every name at
// loopback. Each domain's certificate covers its upload. and conference.
// services and verifies against pebble's root, and is renewed before it
// expires.
func TestACME(t *testing.T) {
	requireTools(t, "pebble")
	if buildErr != nil {
		t.Fatalf("building ./cmd/ambrosia failed: %v\n%s", buildErr, buildLog)
	}
	dir := t.TempDir()
	dnsAddr := startLoopbackDNS(t)
	tlsPort, httpPort := freePort(t), freePort(t)
	p := startPebble(t, dir, dnsAddr, tlsPort, httpPort)

	alpn := startACMEServer(t, p, "example.test", "tls-alpn-01", tlsPort, 0)
	http01 := startACMEServer(t, p, "chat.example.test", "http-01", freePort(t), httpPort)

	roots := p.roots(t)
	for _, s := range []*acmeServer{alpn, http01} {
		first := waitObtained(t, s, 1)
		for _, name := range []string{s.domain, "upload." + s.domain, "conference." + s.domain} {
			leaf := verifiedCert(t, s.tlsAddr, name, roots)
			if fmt.Sprint(leaf.SerialNumber) != first.serial {
				t.Errorf("%s: %s presents serial %s, the certificate obtained is %s", s.challenge, name, leaf.SerialNumber, first.serial)
			}
		}
		leaf := verifiedCert(t, s.uploadAddr, "upload."+s.domain, roots)
		if fmt.Sprint(leaf.SerialNumber) != first.serial {
			t.Errorf("%s: the upload HTTPS listener presents serial %s, want %s", s.challenge, leaf.SerialNumber, first.serial)
		}
		for _, f := range []string{s.domain + ".crt", s.domain + ".key", "account.key"} {
			if _, err := os.Stat(filepath.Join(s.dataDir, "acme", f)); err != nil {
				t.Errorf("%s: %v", s.challenge, err)
			}
		}
		// ambrosia check reports the certificate obtained (its short life
		// makes it fail, which is not the point here).
		out, _ := exec.Command(binPath, "check", "--config", s.conf).CombinedOutput()
		if !strings.Contains(string(out), `certificate: issuer "Pebble Intermediate CA`) {
			t.Errorf("%s: ambrosia check does not show pebble's certificate:\n%s", s.challenge, out)
		}
		t.Logf("%s: obtained for %s at %s, expires %s, renewal due %s", s.challenge, s.domain, first.at.Format(time.RFC3339), first.expires.Format(time.RFC3339), first.renewAt.Format(time.RFC3339))
	}
	// Renewal: a new certificate before the first expires, presented to
	// new connections.
	for _, s := range []*acmeServer{alpn, http01} {
		first := waitObtained(t, s, 1)
		second := waitObtained(t, s, 2)
		if !second.at.Before(first.expires) || second.serial == first.serial {
			t.Fatalf("%s: renewal at %s, serial %s; the first (serial %s) expired at %s", s.challenge, second.at, second.serial, first.serial, first.expires)
		}
		checkFor(t, 30*time.Second, func() error {
			leaf := verifiedCert(t, s.tlsAddr, s.domain, roots)
			if got := fmt.Sprint(leaf.SerialNumber); got == first.serial {
				return fmt.Errorf("%s: still the first certificate after the renewal", s.challenge)
			}
			return nil
		})
		if strings.Contains(s.d.logs(), `"msg":"acme: no certificate obtained"`) {
			t.Errorf("%s: an attempt failed (see the log)", s.challenge)
		}
		// The certificate kept in the data directory serves after a
		// restart, before anything is obtained again.
		if s.challenge == "tls-alpn-01" {
			latest := waitObtained(t, s, 2)
			s.restart(t)
			leaf := verifiedCert(t, s.tlsAddr, s.domain, roots)
			if got := fmt.Sprint(leaf.SerialNumber); got != latest.serial && !strings.Contains(s.d.logs(), `"msg":"acme: certificate obtained"`) {
				t.Errorf("after a restart: serial %s, want the stored %s", got, latest.serial)
			}
		}
		t.Logf("%s: renewed at %s, %s before the first certificate expired", s.challenge, second.at.Format(time.RFC3339), first.expires.Sub(second.at).Round(time.Second))
	}
}

// startLoopbackDNS answers every A query with 127.0.0.1 and every other
// with no record, over UDP on loopback; it returns its address.
func startLoopbackDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// pebble is a running test authority.
type pebble struct {
	dir, mgmt string
	caFile    string // the certificate of its HTTPS listeners
	client    *http.Client
}

// startPebble runs pebble on loopback, checking challenges on tlsPort and
// httpPort of the names dnsAddr resolves.
func startPebble(t *testing.T, dir, dnsAddr string, tlsPort, httpPort int) *pebble {
	t.Helper()
	c, k, err := certs.SelfSigned("localhost", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caFile, keyFile := filepath.Join(dir, "pebble.crt"), filepath.Join(dir, "pebble.key")
	writeFile(t, caFile, string(c))
	writeFile(t, keyFile, string(k))
	listen, mgmt := "127.0.0.1:"+strconv.Itoa(freePort(t)), "127.0.0.1:"+strconv.Itoa(freePort(t))
	conf, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":             listen,
		"managementListenAddress":   mgmt,
		"certificate":               caFile,
		"privateKey":                keyFile,
		"httpPort":                  httpPort,
		"tlsPort":                   tlsPort,
		"ocspResponderURL":          "",
		"certificateValidityPeriod": pebbleValidity,
	}})
	confFile := filepath.Join(dir, "pebble.json")
	writeFile(t, confFile, string(conf))
	cmd := exec.Command("pebble", "-config", confFile, "-dnsserver", dnsAddr)
	// No artificial delays, no nonces refused at random, and no reuse of
	// a valid authorization: every order checks its names again.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	d := runDaemon(t, "pebble", cmd, 5*time.Second, "", nil)
	waitListening(t, listen, d.done, "pebble", d.logs)
	waitListening(t, mgmt, d.done, "pebble", d.logs)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c)
	return &pebble{
		dir: "https://" + strings.Replace(listen, "127.0.0.1", "localhost", 1) + "/dir", mgmt: strings.Replace(mgmt, "127.0.0.1", "localhost", 1), caFile: caFile,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	}
}

// roots returns the root of the certificates pebble issues, which it
// makes anew at every start.
func (p *pebble) roots(t *testing.T) *x509.CertPool {
	t.Helper()
	resp, err := p.client.Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble's root: %d %v", resp.StatusCode, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("pebble's root: no PEM in %q", b)
	}
	return pool
}

// acmeServer is an ambrosia server that gets its certificates from
// pebble.
type acmeServer struct {
	domain, challenge   string
	dataDir             string
	tlsAddr, uploadAddr string
	conf                string // the configuration file
	cmd                 *exec.Cmd
	d                   *daemon
}

// startACMEServer runs ambrosia serve for domain with tls.acme on, its
// direct TLS client listener on tlsPort and, for http-01, the challenge
// listener on httpPort.
func startACMEServer(t *testing.T, p *pebble, domain, challenge string, tlsPort, httpPort int) *acmeServer {
	t.Helper()
	s := &acmeServer{domain: domain, challenge: challenge, dataDir: t.TempDir(),
		tlsAddr: "127.0.0.1:" + strconv.Itoa(tlsPort), uploadAddr: "127.0.0.1:" + strconv.Itoa(freePort(t))}
	conf := fmt.Sprintf(`domains = [%q]
data_dir = %q
[log]
format = "json"
level = "debug"
[c2s]
addr = "127.0.0.1:%d"
tls_addr = %q
[s2s]
enabled = false
[upload]
addr = %q
[tls]
acme = true
acme_directory = %q
acme_ca_file = %q
acme_email = "admin@%s"
acme_challenge = %q
acme_http_addr = "127.0.0.1:%d"
`, domain, s.dataDir, freePort(t), s.tlsAddr, s.uploadAddr, p.dir, p.caFile, domain, challenge, httpPort)
	s.conf = filepath.Join(t.TempDir(), "ambrosia.toml")
	writeFile(t, s.conf, conf)
	s.run(t)
	return s
}

// run starts the server.
func (s *acmeServer) run(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(binPath, "serve", "--config", s.conf)
	s.cmd.Env = oneShotEnv()
	s.d = runDaemon(t, "ambrosia "+s.challenge, s.cmd, 10*time.Second, "", nil)
	waitListening(t, s.tlsAddr, s.d.done, "ambrosia", s.d.logs)
}

// restart stops the server and starts it again on the same data
// directory.
func (s *acmeServer) restart(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.d.done:
	case <-time.After(10 * time.Second):
		t.Fatal("ambrosia still running 10 s after SIGTERM")
	}
	s.run(t)
}

// obtained is one "certificate obtained" line of a server's log.
type obtained struct {
	at, expires, renewAt time.Time
	serial               string
}

// waitObtained waits for the n-th certificate obtained for the server's
// domain and returns what its log line says.
func waitObtained(t *testing.T, s *acmeServer, n int) obtained {
	t.Helper()
	var got []obtained
	deadline := time.Now().Add(90 * time.Second)
	for {
		got = got[:0]
		for _, l := range strings.Split(s.d.logs(), "\n") {
			if !strings.Contains(l, `"msg":"acme: certificate obtained"`) {
				continue
			}
			var e struct {
				Time    time.Time `json:"time"`
				Expires time.Time `json:"expires"`
				RenewAt time.Time `json:"renew_at"`
				Serial  string    `json:"serial"`
			}
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			got = append(got, obtained{at: e.Time, expires: e.Expires, renewAt: e.RenewAt, serial: e.Serial})
		}
		if len(got) >= n {
			return got[n-1]
		}
		select {
		case <-s.d.done:
			t.Fatalf("%s: ambrosia exited", s.challenge)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d certificates obtained after 90 s, want %d", s.challenge, len(got), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verifiedCert connects to addr with TLS for name and returns the
// certificate presented, which must verify against roots.
func verifiedCert(t *testing.T, addr, name string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		t.Fatalf("TLS to %s for %s: %v", addr, name, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}
