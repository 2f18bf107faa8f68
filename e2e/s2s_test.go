package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fedCA is a private certificate authority for the federation tests.
type fedCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	CAFile  string
	baseDir string
}

func newFedCA(t *testing.T) *fedCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Ambrosia federation test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	ca := &fedCA{cert: c, key: key, CAFile: filepath.Join(dir, "ca.pem"), baseDir: dir}
	writePEM(t, ca.CAFile, "CERTIFICATE", der)
	return ca
}

// issue writes a certificate and key for domain (and its subdomains) and
// returns their paths.
func (ca *fedCA) issue(t *testing.T, domain string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{domain, "*." + domain},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(ca.baseDir, domain+".crt")
	keyFile = filepath.Join(ca.baseDir, domain+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kb)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fedServer is an Ambrosia instance serving one federating domain.
type fedServer struct {
	*Server
	Domain  string
	S2SPort int
	Config  string
}

// addUser creates an account on the federating server.
func (s *fedServer) addUser(t *testing.T, jid, password string) {
	t.Helper()
	ambrosia(t, password+"\n", "user", "add", jid, "--config", s.Config, "--data", s.DataDir)
}

// fedOptions shapes one federating Ambrosia.
type fedOptions struct {
	domain  string
	trust   bool              // trust the test CA for peers (SASL EXTERNAL)
	hosts   map[string]string // remote domain -> host:port
	s2sPort int
	s2sAddr string // instead of 127.0.0.1:s2sPort
}

// startFedServer starts Ambrosia for opts.domain with a certificate from
// ca. The clients' CA file (Server.CAFile) is the test CA.
func startFedServer(t *testing.T, ca *fedCA, o fedOptions) *fedServer {
	t.Helper()
	certFile, keyFile := ca.issue(t, o.domain)
	dir := t.TempDir()
	// The harness looks for the clients' root where Ambrosia keeps its
	// generated certificate: put the test CA there.
	if err := os.MkdirAll(filepath.Join(dir, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls", domain+".crt"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if o.s2sPort == 0 {
		o.s2sPort = freePort(t)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "domains = [%q]\n[tls]\ncert_file = %q\nkey_file = %q\n", o.domain, certFile, keyFile)
	if o.s2sAddr == "" {
		o.s2sAddr = fmt.Sprintf("127.0.0.1:%d", o.s2sPort)
	}
	fmt.Fprintf(&cfg, "[s2s]\naddr = %q\nconnect_timeout = \"5s\"\n", o.s2sAddr)
	if o.trust {
		fmt.Fprintf(&cfg, "trust_file = %q\n", ca.CAFile)
	}
	cfg.WriteString("[s2s.hosts]\n")
	for d, a := range o.hosts {
		fmt.Fprintf(&cfg, "%q = %q\n", d, a)
	}
	cfgFile := filepath.Join(dir, "ambrosia.toml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, ServerOptions{DataDir: dir, ExtraArgs: []string{"--config", cfgFile, "--domain", o.domain}})
	return &fedServer{Server: s, Domain: o.domain, S2SPort: o.s2sPort, Config: cfgFile}
}

// TestS2SAmbrosiaPair federates two Ambrosia instances, once with
// certificates both trust (SASL EXTERNAL) and once with dialback only.
func TestS2SAmbrosiaPair(t *testing.T) {
	requireTools(t, "slixmpp")
	for _, tc := range []struct {
		name, method string
		trust        bool
	}{
		{"sasl-external", "sasl-external", true},
		{"dialback", "dialback", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := newFedCA(t)
			pa, pb := freePort(t), freePort(t)
			a := startFedServer(t, ca, fedOptions{domain: "ambrosia.test", trust: tc.trust, s2sPort: pa,
				hosts: map[string]string{"ambrosia2.test": fmt.Sprintf("127.0.0.1:%d", pb)}})
			b := startFedServer(t, ca, fedOptions{domain: "ambrosia2.test", trust: tc.trust, s2sPort: pb,
				hosts: map[string]string{"ambrosia.test": fmt.Sprintf("127.0.0.1:%d", pa)}})
			a.addUser(t, "alice@ambrosia.test", "alice-pw")
			b.addUser(t, "bob@ambrosia2.test", "bob-pw")
			mustPython(t, "s2s_chat",
				"--a", "alice@ambrosia.test", "alice-pw", fmt.Sprint(a.Port), a.CAFile,
				"--b", "bob@ambrosia2.test", "bob-pw", fmt.Sprint(b.Port), b.CAFile)
			for _, s := range []*fedServer{a, b} {
				if !strings.Contains(s.Log(), `"auth":"`+tc.method+`"`) {
					t.Errorf("%s: no stream authenticated with %s", s.Domain, tc.method)
				}
			}
		})
	}
}

// loopbackPair returns two loopback addresses no other test uses, so that
// federation peers can each listen on the standard port 5269, which they
// dial when a domain has no SRV record.
func loopbackPair(t *testing.T) (ambrosiaIP, peerIP string) {
	t.Helper()
	n, _ := rand.Int(rand.Reader, big.NewInt(250*250))
	x, y := 2+n.Int64()/250, 2+n.Int64()%250
	return fmt.Sprintf("127.%d.%d.1", x, y), fmt.Sprintf("127.%d.%d.2", x, y)
}

// peerHosts writes the hosts file and resolv.conf a peer runs with: the
// test domains on their loopback addresses, and a name server that does not
// exist, so that SRV lookups fail at once and the peer falls back to
// addresses.
func peerHosts(t *testing.T, dir string, names map[string]string) (hostsFile string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n")
	for name, ip := range names {
		fmt.Fprintf(&b, "%s %s\n", ip, name)
	}
	hostsFile = filepath.Join(dir, "hosts")
	if err := os.WriteFile(hostsFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return hostsFile
}

// withHosts wraps a command so that it runs in a private mount namespace
// where hostsFile and dir/resolv.conf stand in for the machine's: the peer
// finds Ambrosia by name without touching /etc/hosts.
func withHosts(dir, hostsFile string, argv ...string) *exec.Cmd {
	script := fmt.Sprintf("mount --bind %s /etc/hosts && mount --bind %s /etc/resolv.conf && exec \"$@\"",
		shellQuote(hostsFile), shellQuote(filepath.Join(dir, "resolv.conf")))
	return exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh"}, argv...)...)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// waitListening waits until addr accepts connections or proc exits.
func waitListening(t *testing.T, addr string, done <-chan struct{}, what string, logf func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited before listening on %s\n%s", what, addr, logf())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s after 30 s\n%s", what, addr, logf())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startProsody runs a private Prosody for prosody.test on ip.
func startProsody(t *testing.T, ca *fedCA, ip, ambrosiaIP string, secure bool) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := ca.issue(t, "prosody.test")
	tmpl, err := os.ReadFile(filepath.Join(moduleRoot, "e2e", "testdata", "s2s", "prosody.cfg.lua"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("{{DIR}}", dir, "{{IP}}", ip, "{{SECURE}}", fmt.Sprint(secure),
		"{{CERT}}", certFile, "{{KEY}}", keyFile, "{{CA}}", ca.CAFile).Replace(string(tmpl))
	cfgFile := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	hosts := peerHosts(t, dir, map[string]string{"ambrosia.test": ambrosiaIP, "prosody.test": ip})
	if out, err := exec.Command("prosodyctl", "--config", cfgFile, "register", "bob", "prosody.test", "bob-pw").CombinedOutput(); err != nil {
		t.Fatalf("prosodyctl register: %v\n%s", err, out)
	}
	cmd := withHosts(dir, hosts, "prosody", "--config", cfgFile)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prosody: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	logs := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "prosody.log"))
		return out.String() + string(b)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("--- prosody log ---\n%s", logs())
		}
	})
	waitListening(t, net.JoinHostPort(ip, "5222"), done, "prosody", logs)
	waitListening(t, net.JoinHostPort(ip, "5269"), done, "prosody", logs)
}

// TestS2SProsody federates Ambrosia with a real Prosody, once with
// certificates both trust (SASL EXTERNAL, Prosody's s2s_secure_auth) and
// once with dialback only (neither trusts the other's certificate).
func TestS2SProsody(t *testing.T) {
	requireTools(t, "slixmpp", "prosody", "prosodyctl", "unshare")
	for _, tc := range []struct {
		name, method string
		trust        bool
	}{
		{"sasl-external", "sasl-external", true},
		{"dialback", "dialback", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := newFedCA(t)
			ambIP, proIP := loopbackPair(t)
			prosodyCA := ca
			if !tc.trust {
				// Prosody gets certificates from a CA Ambrosia does not
				// trust, and does not trust Ambrosia's.
				prosodyCA = newFedCA(t)
			}
			startProsody(t, prosodyCA, proIP, ambIP, tc.trust)
			a := startFedServer(t, ca, fedOptions{domain: "ambrosia.test", trust: tc.trust, s2sAddr: net.JoinHostPort(ambIP, "5269"),
				hosts: map[string]string{"prosody.test": net.JoinHostPort(proIP, "5269")}})
			a.addUser(t, "alice@ambrosia.test", "alice-pw")
			mustPython(t, "s2s_chat",
				"--a", "alice@ambrosia.test", "alice-pw", fmt.Sprint(a.Port), a.CAFile,
				"--b", "bob@prosody.test", "bob-pw", net.JoinHostPort(proIP, "5222"), prosodyCA.CAFile)
			if !strings.Contains(a.Log(), `"auth":"`+tc.method+`"`) {
				t.Errorf("no stream authenticated with %s", tc.method)
			}
		})
	}
}
