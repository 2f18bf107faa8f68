package s2s

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// testCA issues certificates for test domains.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &testCA{cert: c, key: key, pool: pool}
}

// issue returns a certificate for domain and the more names given.
func (ca *testCA) issue(t testing.TB, domain string, more ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    append([]string{domain}, more...),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// sink is a local component that records what it is given.
type sink chan router.Stanza

func (s sink) HandleStanza(_ context.Context, st router.Stanza) { s <- st }

func (s sink) next(t *testing.T) router.Stanza {
	t.Helper()
	select {
	case st := <-s:
		return st
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
		return router.Stanza{}
	}
}

func (s sink) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case st := <-s:
		t.Fatalf("unexpected delivery: %s", st.El)
	case <-time.After(d):
	}
}

// endpoint is one in-process server: a router with a sink for its domain
// and a federation service listening on loopback.
type endpoint struct {
	domain string
	secret []byte
	router *router.Router
	inbox  sink
	svc    *Service
	addr   string
}

type endpointOpts struct {
	roots   *x509.CertPool // nil: an empty pool, so that no certificate is valid
	cert    tls.Certificate
	hosts   map[string]string
	timeout time.Duration
	idle    time.Duration
	res     Resolver
	// more are local domains served besides domain, with their
	// certificates; their stanzas go to the inbox too.
	more    map[string]tls.Certificate
	rate    limit.Rate
	metrics Metrics
	conns   *limit.Conns
}

func startEndpoint(t testing.TB, domain string, o endpointOpts) *endpoint {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	r := router.New(log)
	e := &endpoint{domain: domain, secret: []byte("secret of " + domain + " 0123456789"), router: r, inbox: make(sink, 100)}
	domains, certs := []string{domain}, map[string]tls.Certificate{domain: o.cert}
	for d, c := range o.more {
		domains, certs[d] = append(domains, d), c
	}
	for _, d := range domains {
		if err := r.Register(d, e.inbox); err != nil {
			t.Fatal(err)
		}
	}
	if o.roots == nil {
		o.roots = x509.NewCertPool()
	}
	if o.res == nil {
		o.res = fakeResolver{}
	}
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	svc, err := New(Config{
		Domains: domains, Certs: certs,
		Roots: o.roots, Secret: e.secret, Hosts: o.hosts, Resolver: o.res,
		ConnectTimeout: o.timeout, IdleTimeout: o.idle, ReadRate: o.rate,
	}, Deps{Router: r, Log: log, Metrics: o.metrics, Conns: o.conns})
	if err != nil {
		t.Fatal(err)
	}
	r.SetFallback(svc)
	e.svc = svc
	done := make(chan struct{})
	go func() { defer close(done); svc.Serve(context.Background(), l, false) }()
	t.Cleanup(func() { svc.Shutdown(); <-done })
	return e
}

// fakeResolver answers from maps; anything else does not exist.
type fakeResolver struct {
	srv   map[string][]*net.SRV
	hosts map[string][]string
}

func (f fakeResolver) LookupSRV(_ context.Context, service, proto, name string) ([]*net.SRV, error) {
	return f.srv["_"+service+"._"+proto+"."+name], nil
}

func (f fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if a, ok := f.hosts[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func message(t testing.TB, from, to, body string) router.Stanza {
	t.Helper()
	el := xmlstream.NewElement(xmlstream.NSClient, "message")
	el.SetAttr("from", from)
	el.SetAttr("to", to)
	el.SetAttr("id", "m1")
	el.SetAttr("type", "chat")
	el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body")).AddText(body)
	return router.Stanza{El: el, From: jid.MustParse(from), To: jid.MustParse(to)}
}

// pairUp starts a.test and b.test knowing each other's address.
func pairUp(t testing.TB, ca *testCA, trust bool) (a, b *endpoint) {
	t.Helper()
	var roots *x509.CertPool
	if trust {
		roots = ca.pool
	}
	hostsA, hostsB := map[string]string{}, map[string]string{}
	a = startEndpoint(t, "a.test", endpointOpts{roots: roots, cert: ca.issue(t, "a.test"), hosts: hostsA})
	b = startEndpoint(t, "b.test", endpointOpts{roots: roots, cert: ca.issue(t, "b.test"), hosts: hostsB})
	hostsA["b.test"] = b.addr
	hostsB["a.test"] = a.addr
	return a, b
}

// TestServiceSubdomain: a service of a local domain, such as the
// conference service conference.c.test, federates as a domain of its
// own. Its outgoing streams present the certificate of its parent domain
// (not that of the first domain), so that a peer trusting it takes SASL
// EXTERNAL; without trust, dialback works for it, the peer asking the
// subdomain's authoritative server; and incoming streams to it are
// accepted.
func TestServiceSubdomain(t *testing.T) {
	for _, tc := range []struct {
		trust  bool
		method string
	}{{true, MethodSASLExternal}, {false, MethodDialback}} {
		t.Run(tc.method, func(t *testing.T) {
			ca := newTestCA(t)
			var roots *x509.CertPool
			if tc.trust {
				roots = ca.pool
			}
			const conf = "conference.c.test"
			hostsA := map[string]string{}
			a := startEndpoint(t, "a.test", endpointOpts{roots: roots, cert: ca.issue(t, "a.test"), hosts: hostsA,
				more: map[string]tls.Certificate{"c.test": ca.issue(t, "c.test", "*.c.test")}})
			rooms := make(sink, 10)
			if err := a.router.Register(conf, rooms); err != nil {
				t.Fatal(err)
			}
			b := startEndpoint(t, "b.test", endpointOpts{roots: roots, cert: ca.issue(t, "b.test"),
				hosts: map[string]string{"c.test": a.addr, conf: a.addr}})
			hostsA["b.test"] = b.addr

			leaf, err := x509.ParseCertificate(a.svc.cert(conf).Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if leaf.VerifyHostname(conf) != nil {
				t.Errorf("%s presents a certificate for %v", conf, leaf.DNSNames)
			}
			method, err := a.svc.Check(context.Background(), conf, "b.test")
			if err != nil || method != tc.method {
				t.Fatalf("check from %s: %q, %v; want %s", conf, method, err, tc.method)
			}
			a.router.Route(context.Background(), message(t, "room@"+conf+"/nick", "bob@b.test/r", "from the room"))
			if got := b.inbox.next(t); got.From.String() != "room@"+conf+"/nick" {
				t.Fatalf("b got %s", got.El)
			}
			b.router.Route(context.Background(), message(t, "bob@b.test/r", "room@"+conf, "to the room"))
			if got := rooms.next(t); got.From.String() != "bob@b.test/r" {
				t.Fatalf("the room got %s", got.El)
			}
		})
	}
}

func TestFederationBothWays(t *testing.T) {
	for _, tc := range []struct {
		name  string
		trust bool
	}{
		{"dialback", false},
		{"sasl-external", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := newTestCA(t)
			a, b := pairUp(t, ca, tc.trust)
			a.router.Route(context.Background(), message(t, "alice@a.test/x", "bob@b.test", "hello"))
			got := b.inbox.next(t)
			if got.From.String() != "alice@a.test/x" || got.To.String() != "bob@b.test" {
				t.Fatalf("got %s", got.El)
			}
			if body := got.El.Child(got.El.Space, "body"); body == nil || body.Text() != "hello" {
				t.Fatalf("body lost: %s", got.El)
			}
			b.router.Route(context.Background(), message(t, "bob@b.test/y", "alice@a.test/x", "hi back"))
			if got := a.inbox.next(t); got.From.String() != "bob@b.test/y" {
				t.Fatalf("got %s", got.El)
			}
			// The second stanza reuses the stream.
			a.router.Route(context.Background(), message(t, "alice@a.test/x", "bob@b.test", "again"))
			b.inbox.next(t)
			if n := len(a.svc.Outgoing()); n != 1 {
				t.Fatalf("%d outgoing streams, want 1", n)
			}
			method, err := a.svc.Check(context.Background(), "a.test", "b.test")
			want := MethodDialback
			if tc.trust {
				want = MethodSASLExternal
			}
			if err != nil || method != want {
				t.Fatalf("Check = %q, %v; want %q", method, err, want)
			}
		})
	}
}

// limitCounter counts the limits crossed.
type limitCounter struct {
	noMetrics
	mu   sync.Mutex
	hits map[string]int
}

func (m *limitCounter) LimitHit(edge, limit string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hits[edge+": "+limit]++
}

// TestReadRate: a peer sending more than the burst is held back, which is
// counted once, and nothing is lost.
func TestReadRate(t *testing.T) {
	ca := newTestCA(t)
	m := &limitCounter{hits: map[string]int{}}
	hostsA, hostsB := map[string]string{}, map[string]string{}
	a := startEndpoint(t, "a.test", endpointOpts{roots: ca.pool, cert: ca.issue(t, "a.test"), hosts: hostsA})
	b := startEndpoint(t, "b.test", endpointOpts{roots: ca.pool, cert: ca.issue(t, "b.test"), hosts: hostsB,
		rate: limit.Rate{Bytes: 64 << 10, Burst: 16 << 10}, metrics: m})
	hostsA["b.test"] = b.addr
	hostsB["a.test"] = a.addr
	body := strings.Repeat("x", 4<<10)
	const n = 25
	for range n {
		a.router.Route(context.Background(), message(t, "alice@a.test/x", "bob@b.test", body))
	}
	for range n {
		b.inbox.next(t)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if got := m.hits["s2s: read rate"]; got != 1 {
		t.Fatalf("read rate hits %d, want 1", got)
	}
}

// TestIncomingStreamLimits: silent connections to the server port take
// the places of streams not authenticated yet; one more is refused and
// counted; once they are gone a peer gets in.
func TestIncomingStreamLimits(t *testing.T) {
	ca := newTestCA(t)
	m := &limitCounter{hits: map[string]int{}}
	conns := limit.NewConns(limit.ConnConfig{MaxUnauthenticatedPerAddr: 2})
	hostsA, hostsB := map[string]string{}, map[string]string{}
	a := startEndpoint(t, "a.test", endpointOpts{roots: ca.pool, cert: ca.issue(t, "a.test"), hosts: hostsA})
	b := startEndpoint(t, "b.test", endpointOpts{roots: ca.pool, cert: ca.issue(t, "b.test"), hosts: hostsB, metrics: m, conns: conns})
	hostsA["b.test"] = b.addr
	hostsB["a.test"] = a.addr
	var silent []net.Conn
	for range 2 {
		nc, err := net.Dial("tcp", b.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		silent = append(silent, nc)
	}
	checkFor(t, func() bool { return conns.Unauthenticated() == 2 })
	nc, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := nc.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("third connection not closed: %d %v", n, err)
	}
	m.mu.Lock()
	hits := m.hits["s2s: "+limit.TooManyUnauthenticatedPerAddr]
	m.mu.Unlock()
	if hits != 1 {
		t.Fatalf("limit hits %d", hits)
	}
	for _, c := range silent {
		c.Close()
	}
	checkFor(t, func() bool { return conns.Unauthenticated() == 0 })
	a.router.Route(context.Background(), message(t, "alice@a.test/x", "bob@b.test", "hello"))
	b.inbox.next(t)
	if n := conns.Unauthenticated(); n != 0 {
		t.Fatalf("an authenticated stream still counts as unauthenticated: %d", n)
	}
}

func TestDirectTLSBySRV(t *testing.T) {
	ca := newTestCA(t)
	b := startEndpoint(t, "b.test", endpointOpts{cert: ca.issue(t, "b.test"), roots: ca.pool})
	// b's listener only speaks STARTTLS; add a direct TLS one.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); b.svc.Serve(context.Background(), l, true) }()
	t.Cleanup(func() { l.Close(); <-done })
	host, port, _ := net.SplitHostPort(l.Addr().String())
	p := 0
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	res := fakeResolver{
		srv:   map[string][]*net.SRV{"_xmpps-server._tcp.b.test": {{Target: "xmpp.b.test.", Port: uint16(p)}}},
		hosts: map[string][]string{"xmpp.b.test": {host}},
	}
	a := startEndpoint(t, "a.test", endpointOpts{cert: ca.issue(t, "a.test"), roots: ca.pool, res: res})
	// Set after the start, as a reload does.
	b.svc.SetHosts(map[string]string{"a.test": a.addr})
	a.router.Route(context.Background(), message(t, "alice@a.test", "bob@b.test", "over direct TLS"))
	b.inbox.next(t)
}

func TestBounces(t *testing.T) {
	ca := newTestCA(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	// A peer that accepts and then says nothing.
	stall, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	go func() {
		for {
			c, err := stall.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	// A peer that answers the header and then stalls.
	half, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	go func() {
		for {
			c, err := half.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = c.Write(streamHeader("half.test", "a.test", "x"))
		}
	}()
	a := startEndpoint(t, "a.test", endpointOpts{cert: ca.issue(t, "a.test"), timeout: 500 * time.Millisecond, hosts: map[string]string{
		"refused.test": closedAddr, "stall.test": stall.Addr().String(), "half.test": half.Addr().String(),
	}})
	for _, tc := range []struct{ to, cond string }{
		{"nowhere.test", stanza.RemoteServerNotFound},
		{"refused.test", stanza.RemoteServerNotFound},
		{"stall.test", stanza.RemoteServerTimeout},
		{"half.test", stanza.RemoteServerTimeout},
	} {
		t.Run(tc.to, func(t *testing.T) {
			a.router.Route(context.Background(), message(t, "alice@a.test/r", "x@"+tc.to, "lost"))
			a.router.Route(context.Background(), message(t, "alice@a.test/r", "y@"+tc.to, "lost too"))
			for range 2 {
				got := a.inbox.next(t)
				if got.El.Attr("type") != "error" || stanza.ErrorCondition(got.El) != tc.cond || got.To.String() != "alice@a.test/r" {
					t.Fatalf("got %s, want %s", got.El, tc.cond)
				}
			}
		})
	}
	// Errors are never bounced.
	e := message(t, "alice@a.test/r", "x@nowhere.test", "")
	e.El.SetAttr("type", "error")
	a.router.Route(context.Background(), e)
	a.inbox.none(t, 100*time.Millisecond)
}

func TestIdleStreamCloses(t *testing.T) {
	ca := newTestCA(t)
	hosts := map[string]string{}
	a := startEndpoint(t, "a.test", endpointOpts{cert: ca.issue(t, "a.test"), hosts: hosts, idle: 50 * time.Millisecond})
	b := startEndpoint(t, "b.test", endpointOpts{cert: ca.issue(t, "b.test"), hosts: map[string]string{"a.test": a.addr}})
	hosts["b.test"] = b.addr
	a.router.Route(context.Background(), message(t, "alice@a.test", "bob@b.test", "1"))
	b.inbox.next(t)
	checkFor(t, func() bool { return len(a.svc.Outgoing()) == 0 })
	// A new stream comes up for the next stanza.
	a.router.Route(context.Background(), message(t, "alice@a.test", "bob@b.test", "2"))
	b.inbox.next(t)
}

func checkFor(t *testing.T, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatal("condition not met in time")
}

// rawPeer drives an incoming stream by hand.
type rawPeer struct {
	t  *testing.T
	nc net.Conn
	p  *xmlstream.Parser
}

func dialRaw(t *testing.T, addr string, cert *tls.Certificate, from, to string) (*rawPeer, string) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	rp := &rawPeer{t: t, nc: nc, p: xmlstream.NewParser(xmlstream.DefaultLimits())}
	rp.send(string(streamHeader(from, to, "")))
	rp.expectHeader()
	if f := rp.expect(); f.Child(stanza.NSTLS, "starttls") == nil {
		t.Fatalf("no starttls in %s", f)
	}
	rp.send("<starttls xmlns='" + stanza.NSTLS + "'/>")
	rp.expect()
	tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if cert == nil {
			return &tls.Certificate{}, nil
		}
		return cert, nil
	}})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	rp.nc = tc
	rp.p.Reset()
	rp.send(string(streamHeader(from, to, "")))
	id := rp.expectHeader()
	rp.expect() // features
	return rp, id
}

func (rp *rawPeer) send(s string) {
	rp.t.Helper()
	if _, err := rp.nc.Write([]byte(s)); err != nil {
		rp.t.Fatal(err)
	}
}

func (rp *rawPeer) event() xmlstream.Event {
	rp.t.Helper()
	buf := make([]byte, 4096)
	for {
		ev, err := rp.p.Next()
		if err == nil {
			return ev
		}
		n, rerr := rp.nc.Read(buf)
		if n > 0 {
			rp.p.Feed(buf[:n])
			continue
		}
		if rerr != nil {
			return xmlstream.Event{}
		}
	}
}

func (rp *rawPeer) expectHeader() string {
	rp.t.Helper()
	ev := rp.event()
	if ev.Kind != xmlstream.EventStreamStart {
		rp.t.Fatalf("no stream header")
	}
	return ev.Elem.Attr("id")
}

func (rp *rawPeer) expect() *xmlstream.Element {
	rp.t.Helper()
	ev := rp.event()
	if ev.Kind != xmlstream.EventElement {
		rp.t.Fatalf("expected an element, got event %d", ev.Kind)
	}
	return ev.Elem
}

// expectStreamError reads until a stream error and returns its condition.
func (rp *rawPeer) expectStreamError() string {
	rp.t.Helper()
	for {
		ev := rp.event()
		switch ev.Kind {
		case xmlstream.EventElement:
			if ev.Elem.Local == "error" && ev.Elem.Space == xmlstream.NSStream {
				return streamErrorCondition(ev.Elem)
			}
		case xmlstream.EventStreamStart:
		default:
			rp.t.Fatal("stream ended without a stream error")
		}
	}
}

func TestIncomingRejects(t *testing.T) {
	ca := newTestCA(t)
	a, b := pairUp(t, ca, false)
	aCert := ca.issue(t, "a.test")

	t.Run("from outside the authenticated domain", func(t *testing.T) {
		rp, id := dialRaw(t, b.addr, nil, "a.test", "b.test")
		rp.send(string(dbXML(false, "a.test", "b.test", "", "", dialbackKey(a.secret, "b.test", "a.test", id))))
		if r := rp.expect(); r.Attr("type") != "valid" {
			t.Fatalf("dialback: %s", r)
		}
		rp.send("<message from='alice@a.test' to='bob@b.test'><body>fine</body></message>")
		b.inbox.next(t)
		rp.send("<message from='mallory@evil.test' to='bob@b.test'><body>forged</body></message>")
		if c := rp.expectStreamError(); c != "invalid-from" {
			t.Fatalf("stream error %q", c)
		}
		b.inbox.none(t, 100*time.Millisecond)
	})
	t.Run("wrong dialback key", func(t *testing.T) {
		rp, _ := dialRaw(t, b.addr, nil, "a.test", "b.test")
		rp.send(string(dbXML(false, "a.test", "b.test", "", "", "0123456789abcdef")))
		if r := rp.expect(); r.Attr("type") != "invalid" {
			t.Fatalf("dialback: %s", r)
		}
		if c := rp.expectStreamError(); c != "not-authorized" {
			t.Fatalf("stream error %q", c)
		}
	})
	t.Run("certificate for another domain", func(t *testing.T) {
		// The peer shows a.test's certificate but claims c.test, whose
		// dialback fails: c.test has no server.
		roots := ca.pool
		b2 := startEndpoint(t, "b.test", endpointOpts{roots: roots, cert: ca.issue(t, "b.test"), timeout: time.Second})
		rp, _ := dialRaw(t, b2.addr, &aCert, "c.test", "b.test")
		rp.send("<auth xmlns='" + stanza.NSSASL + "' mechanism='EXTERNAL'>" + base64.StdEncoding.EncodeToString([]byte("c.test")) + "</auth>")
		if r := rp.expect(); r.Local != "failure" {
			t.Fatalf("sasl: %s", r)
		}
		rp.send(string(dbXML(false, "c.test", "b.test", "", "", "0123456789abcdef")))
		if r := rp.expect(); r.Attr("type") != "invalid" {
			t.Fatalf("dialback: %s", r)
		}
		if c := rp.expectStreamError(); c != "not-authorized" {
			t.Fatalf("stream error %q", c)
		}
	})
	t.Run("stanza before authentication", func(t *testing.T) {
		rp, _ := dialRaw(t, b.addr, nil, "a.test", "b.test")
		rp.send("<message from='alice@a.test' to='bob@b.test'><body>early</body></message>")
		if c := rp.expectStreamError(); c != "invalid-from" {
			t.Fatalf("stream error %q", c)
		}
		b.inbox.none(t, 100*time.Millisecond)
	})
	t.Run("missing to", func(t *testing.T) {
		rp, id := dialRaw(t, b.addr, nil, "a.test", "b.test")
		rp.send(string(dbXML(false, "a.test", "b.test", "", "", dialbackKey(a.secret, "b.test", "a.test", id))))
		rp.expect()
		rp.send("<message from='alice@a.test'><body>?</body></message>")
		if c := rp.expectStreamError(); c != "improper-addressing" {
			t.Fatalf("stream error %q", c)
		}
	})
	t.Run("unknown host", func(t *testing.T) {
		nc, err := net.Dial("tcp", b.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		rp := &rawPeer{t: t, nc: nc, p: xmlstream.NewParser(xmlstream.DefaultLimits())}
		rp.send(string(streamHeader("a.test", "elsewhere.test", "")))
		if c := rp.expectStreamError(); c != "host-unknown" {
			t.Fatalf("stream error %q", c)
		}
	})
	t.Run("stall in negotiation", func(t *testing.T) {
		b3 := startEndpoint(t, "b.test", endpointOpts{cert: ca.issue(t, "b.test"), timeout: 200 * time.Millisecond})
		nc, err := net.Dial("tcp", b3.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		rp := &rawPeer{t: t, nc: nc, p: xmlstream.NewParser(xmlstream.DefaultLimits())}
		rp.send(string(streamHeader("a.test", "b.test", "")))
		if c := rp.expectStreamError(); c != "connection-timeout" {
			t.Fatalf("stream error %q", c)
		}
	})
}
