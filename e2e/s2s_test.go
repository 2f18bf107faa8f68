package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
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

func newFedCA(t testing.TB) *fedCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Ambrosia federation test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
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

// issue writes a certificate and key for domain (and its subdomains),
// valid for 90 days, and returns their paths.
func (ca *fedCA) issue(t testing.TB, domain string) (certFile, keyFile string) {
	t.Helper()
	return ca.issueFor(t, domain, 90*24*time.Hour)
}

// issueFor is issue with the given validity.
func (ca *fedCA) issueFor(t testing.TB, domain string, validity time.Duration) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validity),
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
	// Several certificates for one domain may be in use at once.
	name := fmt.Sprintf("%s-%x", domain, serial)
	certFile = filepath.Join(ca.baseDir, name+".crt")
	keyFile = filepath.Join(ca.baseDir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kb)
	return certFile, keyFile
}

func writePEM(t testing.TB, path, typ string, der []byte) {
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
func (s *fedServer) addUser(t testing.TB, jid, password string) {
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
	// connectTimeout is [s2s] connect_timeout; empty means 5s.
	connectTimeout string
	// validity of the certificate; 0 means 90 days.
	validity time.Duration
}

// startFedServer starts Ambrosia for opts.domain with a certificate from
// ca. The clients' CA file (Server.CAFile) is the test CA.
func startFedServer(t testing.TB, ca *fedCA, o fedOptions) *fedServer {
	t.Helper()
	if o.validity == 0 {
		o.validity = 90 * 24 * time.Hour
	}
	certFile, keyFile := ca.issueFor(t, o.domain, o.validity)
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
	if o.connectTimeout == "" {
		o.connectTimeout = "5s"
	}
	fmt.Fprintf(&cfg, "[s2s]\naddr = %q\nconnect_timeout = %q\n", o.s2sAddr, o.connectTimeout)
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
				// Acknowledgements (XEP-0198) on both outgoing streams.
				if !logHas(s.Log(), "outgoing stream up", `"sm":true`) {
					t.Errorf("%s: outgoing stream without stream management", s.Domain)
				}
			}
		})
	}
}

// loopbackPair returns two loopback addresses no other test uses, so that
// federation peers can each listen on the standard port 5269, which they
// dial when a domain has no SRV record.
func loopbackPair(t testing.TB) (ambrosiaIP, peerIP string) {
	t.Helper()
	n, _ := rand.Int(rand.Reader, big.NewInt(250*250))
	x, y := 2+n.Int64()/250, 2+n.Int64()%250
	return fmt.Sprintf("127.%d.%d.1", x, y), fmt.Sprintf("127.%d.%d.2", x, y)
}

// peerHosts writes the hosts file and resolv.conf a peer runs with: the
// test domains on their loopback addresses, and a name server that does not
// exist, so that SRV lookups fail at once and the peer falls back to
// addresses.
func peerHosts(t testing.TB, dir string, names map[string]string) (hostsFile string) {
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

// peerComponent is an external component (XEP-0114) a peer accepts on
// its address at peerComponentPort.
type peerComponent struct {
	domain, secret string
	// rosterPrivilege grants it the roster privilege of XEP-0356 (get
	// and set), where the peer can (ejabberd's mod_privilege).
	rosterPrivilege bool
}

// peerComponentPort is where peers listen for external components, when
// they accept any.
const peerComponentPort = "5347"

// startProsody runs a private Prosody for prosody.test on ip, accepting
// the external components comps, and returns its configuration file.
func startProsody(t testing.TB, ca *fedCA, ip, ambrosiaIP string, secure bool, comps ...peerComponent) (cfgFile string) {
	t.Helper()
	return startProsodyWith(t, ca, ip, ambrosiaIP, secure, peerOptions{comps: comps}).cfgFile
}

// peerOptions vary a real peer; the zero value is the peer of the
// federation tests. TestCompareLogins measures logins on peers that
// clients may reach without TLS, with many load accounts and no debug log.
type peerOptions struct {
	comps []peerComponent
	// loadAccounts is how many load accounts, benchPrefix0 … with
	// benchPassword, the peer has, all with one SCRAM salt (as
	// Ambrosia's `bench users` creates them) so that the load client
	// derives the salted password once, as each real client does for its
	// own account. 0: benchAccounts on ejabberd, none on Prosody.
	loadAccounts int
	// plain lets clients authenticate without TLS; STARTTLS stays
	// offered.
	plain bool
	// quiet logs at info level: Prosody logs at debug otherwise, which
	// costs more than a login.
	quiet bool
}

// peerProc is a running real peer.
type peerProc struct {
	// pid is the server process itself (the exec chain of unshare, sh
	// and erl ends in it), whose CPU time `bench --server-pid` reads.
	pid     int
	cfgFile string
}

// startProsodyWith is startProsody with options. Load accounts are
// written as internal_hashed account files before Prosody starts:
// `prosodyctl register` takes a tenth of a second each.
func startProsodyWith(t testing.TB, ca *fedCA, ip, ambrosiaIP string, secure bool, o peerOptions) peerProc {
	t.Helper()
	comps := o.comps
	dir := t.TempDir()
	certFile, keyFile := ca.issue(t, "prosody.test")
	tmpl, err := os.ReadFile(filepath.Join(moduleRoot, "e2e", "testdata", "s2s", "prosody.cfg.lua"))
	if err != nil {
		t.Fatal(err)
	}
	var ports, components string
	if len(comps) > 0 {
		ports = peerComponentPort
	}
	var modules, host string
	for _, c := range comps {
		components += fmt.Sprintf("\nComponent %q\n    component_secret = %q\n", c.domain, c.secret)
		if c.rosterPrivilege {
			// mod_privilege of prosody-modules (XEP-0356,
			// urn:xmpp:privilege:2), granted in the host's section;
			// the component's host needs the module too, to tell the
			// host the component logged in.
			modules = `, "privilege"`
			host += fmt.Sprintf("    privileged_entities = { [%q] = { roster = \"both\" } }\n", c.domain)
			components += "    modules_enabled = { \"privilege\" }\n"
		}
	}
	// internal_plain, the federation tests' store, would run PBKDF2 at
	// every SCRAM login; internal_hashed keeps the derived keys, as
	// Ambrosia and ejabberd do.
	auth, logLevel := "internal_plain", "debug"
	if o.loadAccounts > 0 {
		auth = "internal_hashed"
	}
	if o.quiet {
		logLevel = "info"
	}
	cfg := strings.NewReplacer("{{DIR}}", dir, "{{IP}}", ip, "{{SECURE}}", fmt.Sprint(secure),
		"{{CERT}}", certFile, "{{KEY}}", keyFile, "{{CA}}", ca.CAFile,
		"{{COMPONENT_PORTS}}", ports, "{{COMPONENTS}}", components,
		"{{MODULES}}", modules, "{{HOST}}", host,
		"{{AUTH}}", auth, "{{C2S_ENCRYPTION}}", fmt.Sprint(!o.plain), "{{LOG_LEVEL}}", logLevel).Replace(string(tmpl))
	cfgFile := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if o.loadAccounts > 0 {
		writeProsodyAccounts(t, filepath.Join(dir, "data"), "prosody.test", benchPrefix, benchPassword, o.loadAccounts)
	}
	hosts := peerHosts(t, dir, peerNames("prosody.test", ip, ambrosiaIP))
	if out, err := exec.Command("prosodyctl", "--config", cfgFile, "register", "bob", "prosody.test", "bob-pw").CombinedOutput(); err != nil {
		t.Fatalf("prosodyctl register: %v\n%s", err, out)
	}
	cmd := withHosts(dir, hosts, "prosody", "--config", cfgFile)
	d := runDaemon(t, "prosody", cmd, 10*time.Second, filepath.Join(dir, "prosody.log"), nil)
	waitListening(t, net.JoinHostPort(ip, "5222"), d.done, "prosody", d.logs)
	waitListening(t, net.JoinHostPort(ip, "5269"), d.done, "prosody", d.logs)
	if len(comps) > 0 {
		waitListening(t, net.JoinHostPort(ip, peerComponentPort), d.done, "prosody", d.logs)
	}
	return peerProc{pid: d.pid, cfgFile: cfgFile}
}

// realPeer is a kind of real server Ambrosia federates with in the tests.
type realPeer struct {
	domain string   // the domain it serves
	tools  []string // what it needs installed
	// start runs it for domain on ip, with certificates from ca and
	// s2s_secure_auth or the like when secure, and bob registered; it
	// finds ambrosia.test and its conference service at ambrosiaIP.
	start func(t testing.TB, ca *fedCA, ip, ambrosiaIP string, secure bool)
}

var (
	prosodyPeer = realPeer{domain: "prosody.test", tools: []string{"slixmpp", "prosody", "prosodyctl", "lunbound", "unshare"},
		start: func(t testing.TB, ca *fedCA, ip, ambrosiaIP string, secure bool) {
			startProsody(t, ca, ip, ambrosiaIP, secure)
		}}
	ejabberdPeer = realPeer{domain: "ejabberd.test", tools: []string{"slixmpp", "ejabberdctl", "erl", "unshare"},
		start: func(t testing.TB, ca *fedCA, ip, ambrosiaIP string, secure bool) {
			startEjabberd(t, ca, ip, ambrosiaIP, secure)
		}}
)

// conference is the domain of the multi-user chat service of domain, on
// Ambrosia and on the peers alike.
func conference(domain string) string { return "conference." + domain }

// peerNames are the names a peer for domain on ip resolves: its own, and
// on ambrosiaIP Ambrosia's domain and conference service, and the IRC
// bridge's domain when the bridge is a federated server of its own.
func peerNames(domain, ip, ambrosiaIP string) map[string]string {
	return map[string]string{domain: ip, "ambrosia.test": ambrosiaIP, conference("ambrosia.test"): ambrosiaIP,
		ircFedDomain: ambrosiaIP}
}

// peerRun is Ambrosia (ambrosia.test) federating with a running real
// peer, authenticating one way.
type peerRun struct {
	amb    *fedServer
	domain string // the peer's
	addr   string // the peer's client listener, host:port
	caFile string // the CA the peer's clients trust
	method string // how the streams between them authenticate
	trust  bool   // by certificates both trust
}

// bob is the peer's user, as the scripts take a user: JID PASSWORD
// HOST:PORT CA.
func (p peerRun) bob() []string { return []string{"bob@" + p.domain, "bob-pw", p.addr, p.caFile} }

// user is a user of Ambrosia, as the scripts take one.
func (p peerRun) user(jid, password string) []string {
	return []string{jid, password, fmt.Sprint(p.amb.Port), p.amb.CAFile}
}

// withPeer runs f with a fresh peer and a fresh Ambrosia federating with
// it, once with certificates both trust (SASL EXTERNAL) and once with
// dialback only (the peer's certificates come from a CA Ambrosia does not
// trust, and it does not trust Ambrosia's). Each finds the other's domain
// and conference service on the other's s2s listener.
func withPeer(t *testing.T, peer realPeer, f func(t *testing.T, p peerRun)) {
	requireTools(t, peer.tools...)
	for _, tc := range []struct {
		name, method string
		trust        bool
	}{
		{"sasl-external", "sasl-external", true},
		{"dialback", "dialback", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := newFedCA(t)
			ambIP, peerIP := loopbackPair(t)
			peerCA := ca
			if !tc.trust {
				peerCA = newFedCA(t)
			}
			peer.start(t, peerCA, peerIP, ambIP, tc.trust)
			peerS2S := net.JoinHostPort(peerIP, "5269")
			a := startFedServer(t, ca, fedOptions{domain: "ambrosia.test", trust: tc.trust, s2sAddr: net.JoinHostPort(ambIP, "5269"),
				hosts: map[string]string{peer.domain: peerS2S, conference(peer.domain): peerS2S}})
			f(t, peerRun{amb: a, domain: peer.domain, addr: net.JoinHostPort(peerIP, "5222"), caFile: peerCA.CAFile,
				method: tc.method, trust: tc.trust})
		})
	}
}

// peerChat is the scenario of the real-peer tests, run with each way of
// authenticating: a slixmpp user on each side subscribe, see presence and
// chat both ways; check looks at Ambrosia's log for the method used.
func peerChat(t *testing.T, peer realPeer, check func(t *testing.T, log, method string, trust bool)) {
	withPeer(t, peer, func(t *testing.T, p peerRun) {
		p.amb.addUser(t, "alice@ambrosia.test", "alice-pw")
		mustPython(t, "s2s_chat", slices.Concat([]string{"--a"}, p.user("alice@ambrosia.test", "alice-pw"), []string{"--b"}, p.bob())...)
		check(t, p.amb.Log(), p.method, p.trust)
	})
}

// TestS2SProsody federates Ambrosia with a real Prosody, once with
// certificates both trust (SASL EXTERNAL, Prosody's s2s_secure_auth) and
// once with dialback only (neither trusts the other's certificate).
func TestS2SProsody(t *testing.T) {
	peerChat(t, prosodyPeer, func(t *testing.T, log, method string, trust bool) {
		if !strings.Contains(log, `"auth":"`+method+`"`) {
			t.Errorf("no stream authenticated with %s", method)
		}
		// Prosody's mod_smacks acknowledges stanzas on server streams,
		// but only on streams authenticated before their features, that
		// is, after SASL EXTERNAL and not with dialback.
		if trust && !logHas(log, "outgoing stream up", `"sm":true`) {
			t.Error("outgoing stream without stream management")
		}
		if trust && !logHas(log, "incoming stream management enabled", `"from":"prosody.test"`) {
			t.Error("Prosody did not enable stream management on its stream")
		}
	})
}

// ejabberdLibs is where Debian installs ejabberd's Erlang applications.
const ejabberdLibs = "/usr/lib/x86_64-linux-gnu"

// startEjabberd runs a private ejabberd for ejabberd.test on ip, with bob
// (and bot, the account of TestBotJSON, and the load accounts of
// TestBenchRealServers) registered, accepting the
// external components comps. It runs the Erlang VM directly, without
// distribution, so that no epmd starts and the only process to stop is
// the VM itself.
func startEjabberd(t testing.TB, ca *fedCA, ip, ambrosiaIP string, secure bool, comps ...peerComponent) {
	t.Helper()
	startEjabberdWith(t, ca, ip, ambrosiaIP, secure, peerOptions{comps: comps})
}

// startEjabberdWith is startEjabberd with options; quiet changes nothing,
// ejabberd logs at info level always.
func startEjabberdWith(t testing.TB, ca *fedCA, ip, ambrosiaIP string, secure bool, o peerOptions) peerProc {
	t.Helper()
	comps := o.comps
	loadAccounts := o.loadAccounts
	if loadAccounts == 0 {
		loadAccounts = benchAccounts
	}
	dir := t.TempDir()
	certFile, keyFile := ca.issue(t, "ejabberd.test")
	tmpl, err := os.ReadFile(filepath.Join(moduleRoot, "e2e", "testdata", "s2s", "ejabberd.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dialback := "  mod_s2s_dialback: {}"
	if secure {
		// Without dialback, certificates are the only way in or out.
		dialback = ""
	}
	var services string
	if len(comps) > 0 {
		services = fmt.Sprintf("  -\n    port: %s\n    ip: %q\n    module: ejabberd_service\n    backlog: 128\n    hosts:\n", peerComponentPort, ip)
		for _, c := range comps {
			services += fmt.Sprintf("      %q:\n        password: %q\n", c.domain, c.secret)
		}
	}
	var privilege string
	for _, c := range comps {
		if c.rosterPrivilege {
			// ejabberd 23.01 speaks the first version of XEP-0356
			// (urn:xmpp:privilege:1); only components can use it.
			privilege = "  mod_privilege:\n    roster:\n      both: all"
		}
	}
	cfg := strings.NewReplacer("{{IP}}", ip, "{{CERT}}", certFile, "{{KEY}}", keyFile,
		"{{CA}}", ca.CAFile, "{{DIALBACK}}", dialback, "{{SERVICES}}", services, "{{PRIVILEGE}}", privilege,
		"{{STARTTLS_REQUIRED}}", fmt.Sprint(!o.plain)).Replace(string(tmpl))
	cfgFile := filepath.Join(dir, "ejabberd.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"spool", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	hosts := peerHosts(t, dir, peerNames("ejabberd.test", ip, ambrosiaIP))
	const ready = "ambrosia-e2e-ready"
	cmd := withHosts(dir, hosts, "erl", "-noinput", "-noshell", "+K", "true",
		"-mnesia", "dir", `"`+filepath.Join(dir, "spool")+`"`,
		"-s", "ejabberd",
		"-eval", `ok = ejabberd_auth:try_register(<<"bob">>, <<"ejabberd.test">>, <<"bob-pw">>), `+
			`ok = ejabberd_auth:try_register(<<"bot">>, <<"ejabberd.test">>, <<"bot-pw">>), `+
			// The load accounts of TestBenchRealServers and
			// TestCompareLogins, with the SCRAM credentials of the
			// first: one salt, derived once.
			`LoadScram = ejabberd_auth:password_to_scram(<<"ejabberd.test">>, <<"`+benchPassword+`">>), `+
			`[ok = ejabberd_auth:try_register(list_to_binary("`+benchPrefix+`" ++ integer_to_list(I)), <<"ejabberd.test">>, LoadScram) || I <- lists:seq(0, `+fmt.Sprint(loadAccounts-1)+`)], `+
			`io:format("`+ready+`~n")`)
	cmd.Env = append(os.Environ(),
		"EJABBERD_CONFIG_PATH="+cfgFile,
		"EJABBERD_LOG_PATH="+filepath.Join(dir, "logs", "ejabberd.log"),
		"EJABBERD_PID_PATH="+filepath.Join(dir, "ejabberd.pid"),
		"ERL_LIBS="+ejabberdLibs,
		"ERL_CRASH_DUMP_BYTES=0",
		"HOME="+dir)
	// The VM stops cleanly on SIGTERM; its port helpers end with it.
	d := runDaemon(t, "ejabberd", cmd, 10*time.Second, filepath.Join(dir, "logs", "ejabberd.log"), func() {
		for _, port := range []string{"5222", "5269"} {
			if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, port), time.Second); err == nil {
				c.Close()
				t.Errorf("something still listens on %s:%s after ejabberd stopped", ip, port)
			}
		}
	})
	out, done, logs := d.out, d.done, d.logs
	// The Erlang VM starts slowly on a busy machine: the wait is long,
	// and the test goes on as soon as ejabberd says it is ready. Load
	// accounts take about a millisecond each.
	wait := 90*time.Second + time.Duration(loadAccounts)*5*time.Millisecond
	deadline := time.Now().Add(wait)
	for !strings.Contains(out.String(), ready) {
		select {
		case <-done:
			t.Fatalf("ejabberd exited before it was ready\n%s", logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ejabberd not ready after %v\n%s", wait, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitListening(t, net.JoinHostPort(ip, "5222"), done, "ejabberd", logs)
	waitListening(t, net.JoinHostPort(ip, "5269"), done, "ejabberd", logs)
	if len(comps) > 0 {
		waitListening(t, net.JoinHostPort(ip, peerComponentPort), done, "ejabberd", logs)
	}
	return peerProc{pid: d.pid, cfgFile: cfgFile}
}

// TestS2SEjabberd federates Ambrosia with a real ejabberd, once with
// certificates both trust (SASL EXTERNAL, ejabberd without dialback) and
// once with dialback only (neither trusts the other's certificate).
func TestS2SEjabberd(t *testing.T) {
	peerChat(t, ejabberdPeer, func(t *testing.T, log, method string, _ bool) {
		for _, msg := range []string{"incoming stream authenticated", "outgoing stream up"} {
			if !logHas(log, msg, `"auth":"`+method+`"`) {
				t.Errorf("no %q with %s", msg, method)
			}
		}
	})
}

// logHas reports whether a line of log has the message msg and all of
// fields.
func logHas(log, msg string, fields ...string) bool {
	for line := range strings.SplitSeq(log, "\n") {
		if !strings.Contains(line, `"msg":"`+msg+`"`) {
			continue
		}
		ok := true
		for _, f := range fields {
			ok = ok && strings.Contains(line, f)
		}
		if ok {
			return true
		}
	}
	return false
}

// rawS2S is a hand-driven server-to-server stream, for peers that do what
// no well-behaved server does.
type rawS2S struct {
	*rawClient
	from, to string
}

var (
	reStreamErr  = regexp.MustCompile(`(?s)<stream:error>.*?</stream:error>`)
	reDBResult   = regexp.MustCompile(`<db:result[^>]*?type=['"](\w+)['"][^>]*/?>`)
	reSASLFailed = regexp.MustCompile(`(?s)<failure[^>]*>.*?</failure>`)
)

// dialS2S opens a server stream from one domain to another on addr and,
// when cert is not nil, secures it with STARTTLS presenting cert. It
// returns the stream features.
func dialS2S(t *testing.T, addr, from, to string, cert *tls.Certificate, roots *x509.CertPool) (*rawS2S, string) {
	t.Helper()
	rc, err := dialRaw(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	c := &rawS2S{rawClient: rc, from: from, to: to}
	feats := c.open(t)
	if cert == nil {
		return c, feats
	}
	if err := c.send(`<starttls xmlns='` + nsTLS + `'/>`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.expect(reProceed); err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(c.conn, &tls.Config{ServerName: to, RootCAs: roots, MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{*cert}})
	_ = tc.SetDeadline(time.Now().Add(rawTimeout))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	_ = tc.SetDeadline(time.Time{})
	c.conn = tc
	return c, c.open(t)
}

// open sends the stream header and returns the features.
func (c *rawS2S) open(t *testing.T) string {
	t.Helper()
	hdr := fmt.Sprintf(`<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='%s' xmlns:db='jabber:server:dialback' version='1.0' from='%s' to='%s'>`, nsStreams, c.from, c.to)
	if err := c.send(hdr); err != nil {
		t.Fatal(err)
	}
	f, err := c.expect(reFeatures)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// expectStreamError waits for a stream error with condition cond and the
// end of the connection.
func (c *rawS2S) expectStreamError(t *testing.T, cond string) {
	t.Helper()
	e, err := c.expect(reStreamErr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e, "<"+cond+" ") && !strings.Contains(e, "<"+cond+"/>") {
		t.Fatalf("stream error %s, want %s", e, cond)
	}
	if err := c.expectClosed(); err != nil {
		t.Fatal(err)
	}
}

// issueLoaded issues a certificate for domain and loads it.
func (ca *fedCA) issueLoaded(t testing.TB, domain string) *tls.Certificate {
	t.Helper()
	certFile, keyFile := ca.issue(t, domain)
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

func (ca *fedCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// stallingPeer listens like a server that answers a stream header with
// its own and STARTTLS, then never answers again: a peer stuck
// mid-handshake. It returns its address.
func stallingPeer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			go func() {
				buf := make([]byte, 4096)
				if _, err := nc.Read(buf); err != nil {
					return
				}
				_, _ = io.WriteString(nc, `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='`+nsStreams+
					`' version='1.0' id='stall'><stream:features><starttls xmlns='`+nsTLS+`'><required/></starttls></stream:features>`)
				_, _ = io.Copy(io.Discard, nc)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String()
}

// TestS2SBadPeers runs peers that misbehave against a real pair of
// Ambrosia servers: each is refused with the right error, and nothing
// they send reaches a user.
func TestS2SBadPeers(t *testing.T) {
	requireTools(t, "slixmpp")
	ca := newFedCA(t)
	pa, pb := freePort(t), freePort(t)
	dead := freePort(t) // nothing listens there
	a := startFedServer(t, ca, fedOptions{domain: "ambrosia.test", trust: true, s2sPort: pa, connectTimeout: "2s",
		hosts: map[string]string{
			"ambrosia2.test": fmt.Sprintf("127.0.0.1:%d", pb),
			"dead.test":      fmt.Sprintf("127.0.0.1:%d", dead),
			"stall.test":     stallingPeer(t),
		}})
	b := startFedServer(t, ca, fedOptions{domain: "ambrosia2.test", trust: true, s2sPort: pb,
		hosts: map[string]string{"ambrosia.test": fmt.Sprintf("127.0.0.1:%d", pa)}})
	a.addUser(t, "alice@ambrosia.test", "alice-pw")
	s2sAddr := fmt.Sprintf("127.0.0.1:%d", pa)

	t.Run("impostor", func(t *testing.T) {
		// A certificate from a CA Ambrosia trusts, but for another domain
		// than the one claimed, and a made-up dialback key.
		cert := ca.issueLoaded(t, "impostor.test")
		c, feats := dialS2S(t, s2sAddr, "ambrosia2.test", "ambrosia.test", cert, ca.pool())
		if strings.Contains(feats, "EXTERNAL") {
			t.Fatalf("SASL EXTERNAL offered for a certificate that does not cover the claimed domain: %s", feats)
		}
		if err := c.send(`<auth xmlns='` + nsSASL + `' mechanism='EXTERNAL'>` + base64.StdEncoding.EncodeToString([]byte("ambrosia2.test")) + `</auth>`); err != nil {
			t.Fatal(err)
		}
		f, err := c.expect(reSASLFailed)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(f, "not-authorized") {
			t.Fatalf("SASL EXTERNAL answer %s, want not-authorized", f)
		}
		if err := c.send(`<db:result from='ambrosia2.test' to='ambrosia.test'>0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef</db:result>`); err != nil {
			t.Fatal(err)
		}
		// The real ambrosia2.test is asked (db:verify) and says no.
		m, err := c.expect(reDBResult)
		if err != nil {
			t.Fatal(err)
		}
		if typ := reDBResult.FindStringSubmatch(m)[1]; typ != "invalid" {
			t.Fatalf("dialback answer %s, want type invalid", m)
		}
		c.expectStreamError(t, "not-authorized")
		// The log reaches the test through a pipe: give it a moment.
		for deadline := time.Now().Add(5 * time.Second); !logHas(a.Log(), "incoming dialback refused", `"from":"ambrosia2.test"`); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no refused dialback in the log")
			}
		}
	})

	t.Run("foreign-from", func(t *testing.T) {
		recv := startPython(t, "s2s_receive", "--port", fmt.Sprint(a.Port), "--ca", a.CAFile,
			"--jid", "alice@ambrosia.test", "--password", "alice-pw", "--body", "genuine", "--forbid", "forged")
		recv.waitLine(t, "READY", 30*time.Second)
		cert := ca.issueLoaded(t, "raw.test")
		external := func() *rawS2S {
			c, feats := dialS2S(t, s2sAddr, "raw.test", "ambrosia.test", cert, ca.pool())
			if !strings.Contains(feats, "EXTERNAL") {
				t.Fatalf("SASL EXTERNAL not offered for a valid certificate: %s", feats)
			}
			if err := c.send(`<auth xmlns='` + nsSASL + `' mechanism='EXTERNAL'>=</auth>`); err != nil {
				t.Fatal(err)
			}
			if r, err := c.expect(reSASLResult); err != nil || !strings.HasPrefix(r, "<success") {
				t.Fatalf("SASL EXTERNAL: %q %v", r, err)
			}
			c.open(t)
			return c
		}
		// Authenticated as raw.test, it speaks for ambrosia2.test.
		c := external()
		if err := c.send(`<message from='mallory@ambrosia2.test/x' to='alice@ambrosia.test' type='chat' id='f1'><body>forged</body></message>`); err != nil {
			t.Fatal(err)
		}
		c.expectStreamError(t, "invalid-from")
		// A stanza within its own domain on a new stream goes through.
		c = external()
		if err := c.send(`<message from='bob@raw.test/x' to='alice@ambrosia.test' type='chat' id='g1'><body>genuine</body></message>`); err != nil {
			t.Fatal(err)
		}
		recv.wait(t)
		_ = c.send(`</stream:stream>`)
	})

	t.Run("stall-incoming", func(t *testing.T) {
		// One peer says nothing at all, one stops after its stream header,
		// one after TLS: each is closed after connect_timeout.
		silent, err := dialRaw(s2sAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		header := &rawS2S{}
		header.rawClient, err = dialRaw(s2sAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer header.Close()
		header.from, header.to = "stall.test", "ambrosia.test"
		header.open(t)
		tlsOnly, _ := dialS2S(t, s2sAddr, "stall.test", "ambrosia.test", ca.issueLoaded(t, "stall.test"), ca.pool())
		if err := silent.expectClosed(); err != nil {
			t.Errorf("silent peer: %v", err)
		}
		header.expectStreamError(t, "connection-timeout")
		tlsOnly.expectStreamError(t, "connection-timeout")
	})

	t.Run("bounce", func(t *testing.T) {
		// Within connect_timeout (2 s) and a margin for the client.
		mustPython(t, "s2s_bounce", "--port", fmt.Sprint(a.Port), "--ca", a.CAFile,
			"--jid", "alice@ambrosia.test", "--password", "alice-pw", "--count", "3", "--within", "6",
			"--expect", "nobody@dead.test", "remote-server-not-found",
			"--expect", "nobody@stall.test", "remote-server-timeout")
	})
	_ = b
}

// TestS2SCheck runs `ambrosia check` against a running pair: it reports
// the certificate, that federation with the peer works, and fails with a
// non-zero status for a peer that cannot be reached or a certificate
// about to expire.
func TestS2SCheck(t *testing.T) {
	requireTools(t, "unshare")
	ca := newFedCA(t)
	pa, pb := freePort(t), freePort(t)
	hosts := map[string]string{
		"ambrosia2.test": fmt.Sprintf("127.0.0.1:%d", pb),
		"dead.test":      fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}
	a := startFedServer(t, ca, fedOptions{domain: "ambrosia.test", trust: true, s2sPort: pa, connectTimeout: "2s", hosts: hosts})
	startFedServer(t, ca, fedOptions{domain: "ambrosia2.test", trust: true, s2sPort: pb,
		hosts: map[string]string{"ambrosia.test": fmt.Sprintf("127.0.0.1:%d", pa)}})
	short := startFedServer(t, ca, fedOptions{domain: "ambrosia.test", trust: true, validity: 3 * 24 * time.Hour, hosts: hosts})
	dir := t.TempDir()
	// DNS fails at once, so that the report does not depend on the
	// machine's network.
	hostsFile := peerHosts(t, dir, nil)
	check := func(s *fedServer, remote string) (string, int) {
		cmd := withHosts(dir, hostsFile, binPath, "check", "--config", s.Config, "--data", s.DataDir, "--remote", remote)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &ee):
			return string(out), ee.ExitCode()
		}
		t.Fatalf("ambrosia check: %v\n%s", err, out)
		return "", -1
	}
	for _, tc := range []struct {
		name     string
		server   *fedServer
		remote   string
		fail     bool
		contains []string
	}{
		{"ok", a, "ambrosia2.test", false, []string{
			`certificate: issuer "Ambrosia federation test CA", expires `, "(in 89 days): valid",
			"s2s ambrosia.test -> ambrosia2.test: ok (sasl-external)"}},
		{"unreachable", a, "dead.test", true, []string{
			"(in 89 days): valid", "s2s ambrosia.test -> dead.test: FAILED: ", "connection refused"}},
		{"expiring", short, "ambrosia2.test", true, []string{
			"(in 2 days): valid", "certificate: expires within 14 days",
			"s2s ambrosia.test -> ambrosia2.test: ok (sasl-external)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := check(tc.server, tc.remote)
			t.Logf("ambrosia check --remote %s (exit %d):\n%s", tc.remote, code, out)
			if (code != 0) != tc.fail {
				t.Errorf("exit status %d, want failure %v", code, tc.fail)
			}
			for _, want := range tc.contains {
				if !strings.Contains(out, want) {
					t.Errorf("report lacks %q", want)
				}
			}
		})
	}
}

// fedBenchPair is a running pair of servers with load accounts: the even
// ones (load0, load2, …) on the first, the odd ones on the second.
type fedBenchPair struct {
	addr, domain, ca                   string
	remoteAddr, remoteDomain, remoteCA string
}

// ambrosiaBenchPair starts two federating Ambrosia servers with pairs
// load accounts on each.
func ambrosiaBenchPair(tb testing.TB, pairs int) fedBenchPair {
	tb.Helper()
	ca := newFedCA(tb)
	pa, pb := freePort(tb), freePort(tb)
	a := startFedServer(tb, ca, fedOptions{domain: "ambrosia.test", s2sPort: pa,
		hosts: map[string]string{"ambrosia2.test": fmt.Sprintf("127.0.0.1:%d", pb)}})
	b := startFedServer(tb, ca, fedOptions{domain: "ambrosia2.test", s2sPort: pb,
		hosts: map[string]string{"ambrosia.test": fmt.Sprintf("127.0.0.1:%d", pa)}})
	for _, s := range []*fedServer{a, b} {
		ambrosia(tb, "", "bench", "users", "--data", s.DataDir, "--domain", s.Domain, "--count", fmt.Sprint(2*pairs))
	}
	return fedBenchPair{a.Addr, a.Domain, a.CAFile, b.Addr, b.Domain, b.CAFile}
}

// prosodyBenchPair starts Ambrosia and Prosody federating by dialback,
// with pairs load accounts on each.
func prosodyBenchPair(tb testing.TB, pairs int) fedBenchPair {
	tb.Helper()
	requireTools(tb, "prosody", "prosodyctl", "lunbound", "unshare")
	ca := newFedCA(tb)
	ambIP, proIP := loopbackPair(tb)
	proCA := newFedCA(tb)
	cfg := startProsody(tb, proCA, proIP, ambIP, false)
	a := startFedServer(tb, ca, fedOptions{domain: "ambrosia.test", s2sAddr: net.JoinHostPort(ambIP, "5269"),
		hosts: map[string]string{"prosody.test": net.JoinHostPort(proIP, "5269")}})
	ambrosia(tb, "", "bench", "users", "--data", a.DataDir, "--domain", a.Domain, "--count", fmt.Sprint(2*pairs))
	for i := 1; i < 2*pairs; i += 2 {
		if out, err := exec.Command("prosodyctl", "--config", cfg, "register", fmt.Sprintf("load%d", i), "prosody.test", "loadpass").CombinedOutput(); err != nil {
			tb.Fatalf("prosodyctl register: %v\n%s", err, out)
		}
	}
	return fedBenchPair{a.Addr, a.Domain, a.CAFile, net.JoinHostPort(proIP, "5222"), "prosody.test", proCA.CAFile}
}

// benchMessages runs `ambrosia bench messages` across p and returns its
// report.
func (p fedBenchPair) benchMessages(tb testing.TB, pairs int, args ...string) string {
	tb.Helper()
	// Longer than the 30 s the one-shot commands get: a rate search
	// takes several steps.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, append([]string{"bench", "messages", "--tls",
		"--addr", p.addr, "--domain", p.domain, "--ca", p.ca,
		"--remote-addr", p.remoteAddr, "--remote-domain", p.remoteDomain, "--remote-ca", p.remoteCA,
		"--pairs", fmt.Sprint(pairs)}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("ambrosia bench messages: %v\n%s", err, out)
	}
	return string(out)
}

var reBenchStep = regexp.MustCompile(`step \d+: target \d+ msg/s, sent (\d+) in [\d.]+s \(\d+ msg/s\), delivered (\d+), errors (\d+)`)

// TestS2SBenchMessages checks the federated load mode of `ambrosia bench
// messages`: every message crosses to the other server and arrives.
func TestS2SBenchMessages(t *testing.T) {
	requireTools(t)
	p := ambrosiaBenchPair(t, 2)
	out := p.benchMessages(t, 2, "--rate", "100", "--duration", "1s")
	t.Logf("%s", out)
	m := reBenchStep.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no step in the report")
	}
	if m[1] == "0" || m[1] != m[2] || m[3] != "0" {
		t.Errorf("sent %s, delivered %s, errors %s", m[1], m[2], m[3])
	}
}

// BenchmarkS2SMessages measures the highest message rate one
// server-to-server stream per direction carries with p99 latency under
// 100 ms: between two Ambrosia servers, and between Ambrosia and
// Prosody. Run with -benchtime 1x; each takes at most a minute.
func BenchmarkS2SMessages(b *testing.B) {
	const pairs = 10
	re := regexp.MustCompile(`highest passing rate: (\d+) msg/s`)
	for _, bc := range []struct {
		name  string
		setup func(testing.TB, int) fedBenchPair
	}{
		{"ambrosia-ambrosia", ambrosiaBenchPair},
		{"ambrosia-prosody", prosodyBenchPair},
	} {
		b.Run(bc.name, func(b *testing.B) {
			requireTools(b)
			p := bc.setup(b, pairs)
			for b.Loop() {
				out := p.benchMessages(b, pairs, "--find-max", "--rate", "6000", "--rate-step", "6000",
					"--max-steps", "12", "--duration", "2s")
				b.Logf("%s", out)
				m := re.FindStringSubmatch(out)
				if m == nil {
					b.Fatal("no highest passing rate in the report")
				}
				var rate float64
				fmt.Sscan(m[1], &rate)
				b.ReportMetric(rate, "msg/s")
			}
		})
	}
}
