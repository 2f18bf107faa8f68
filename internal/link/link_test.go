package link

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/privilege"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

const (
	testDomain = "example.org"
	testSecret = "link test secret"
)

// logBuf collects a component's log, for waiting on what it reports.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// eventually waits until cond holds, failing the test after a while.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testGateway is a gateway serving services on a loopback listener.
type testGateway struct {
	g   *Gateway
	r   *router.Router
	log *logBuf
}

func startGateway(t *testing.T, cas *x509.CertPool) *testGateway {
	t.Helper()
	return startGatewayWith(t, cas, nil)
}

// startGatewayWith starts a gateway that hashes users over the instances
// of a cluster membership m (nil: over the linked instances).
func startGatewayWith(t *testing.T, cas *x509.CertPool, m router.Membership) *testGateway {
	t.Helper()
	cp, kp, err := certs.SelfSigned("gateway", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	lb := &logBuf{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := router.New(log)
	g, err := NewGateway(GatewayConfig{Secret: testSecret, TLS: &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}, ClientCAs: cas},
		GatewayDeps{Router: r, Log: log, Membership: m})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.cfg.Addr = l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Serve(ctx, l); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("gateway log:\n%s", lb.String())
		}
	})
	return &testGateway{g: g, r: r, log: lb}
}

// sm returns the gateway's stand-in for the session manager of testDomain.
func (tg *testGateway) sm(t *testing.T) router.SessionManager {
	t.Helper()
	var m router.SessionManager
	eventually(t, "the domain bound at the gateway", func() bool {
		var ok bool
		m, ok = tg.r.SessionManager(testDomain)
		return ok
	})
	return m
}

// members waits until n instances serve testDomain at the gateway.
func (tg *testGateway) members(t *testing.T, n int) {
	t.Helper()
	eventually(t, "instances bound", func() bool {
		tg.g.mu.Lock()
		rm := tg.g.remotes[testDomain]
		tg.g.mu.Unlock()
		if rm == nil {
			return false
		}
		rm.mu.Lock()
		defer rm.mu.Unlock()
		return len(rm.insts) == n
	})
}

// client is a client session held by the gateway.
type client struct {
	full jid.JID

	mu     sync.Mutex
	got    []*xmlstream.Element
	closed string
}

func newClient(t *testing.T, full string) *client {
	j, err := jid.Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	return &client{full: j}
}

func (c *client) JID() jid.JID { return c.full }
func (c *client) Deliver(el *xmlstream.Element) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, mustReparse(el))
}
func (c *client) Close(cond string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = cond
}

// bodies returns the bodies of the messages the client got.
func (c *client) bodies() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, el := range c.got {
		if b := el.Child(xmlstream.NSClient, "body"); b != nil {
			out = append(out, b.Text())
		} else {
			out = append(out, "<"+el.Local+">")
		}
	}
	return out
}

// recSM is a session manager that records what it is told. A message to
// one of its users is delivered to every session of that user, followed
// by an echo; a message from a session is routed on.
type recSM struct {
	r *router.Router

	mu       sync.Mutex
	sessions map[string][]router.Session // by bare JID
	flags    map[string]router.SessionFlags
	handled  []string // bodies of the messages handled
	grants   []string // the grants of the stanzas handled that had one
	// redelivered are the bodies of the messages handed back for a bare
	// JID (router.Redeliverer).
	redelivered []string
}

func (m *recSM) Redeliver(_ context.Context, s router.Stanza) {
	body := ""
	if b := s.El.Child(xmlstream.NSClient, "body"); b != nil {
		body = b.Text()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.redelivered = append(m.redelivered, body)
}

func newRecSM() *recSM {
	return &recSM{sessions: map[string][]router.Session{}, flags: map[string]router.SessionFlags{}}
}

func (m *recSM) Bind(_ context.Context, s router.Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := s.JID().BareString()
	m.sessions[b] = append(m.sessions[b], s)
	return nil
}

func (m *recSM) Unbind(_ context.Context, s router.Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := s.JID().BareString()
	ss := m.sessions[b]
	for i, x := range ss {
		if x == s {
			m.sessions[b] = append(ss[:i:i], ss[i+1:]...)
			break
		}
	}
}

func (m *recSM) RestoreSession(s router.Session, f router.SessionFlags) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flags[s.JID().String()] = f
}

func (m *recSM) HandleFromSession(ctx context.Context, _ router.Session, s router.Stanza) {
	if s.El.Local == stanza.Message && !s.To.IsZero() {
		m.r.Route(ctx, s)
	}
}

func (m *recSM) HandleStanza(_ context.Context, s router.Stanza) {
	if s.Grant != nil {
		b, _ := s.Grant.MarshalText()
		m.mu.Lock()
		m.grants = append(m.grants, string(b))
		m.mu.Unlock()
	}
	if s.El.Local != stanza.Message {
		return
	}
	m.mu.Lock()
	body := ""
	if b := s.El.Child(xmlstream.NSClient, "body"); b != nil {
		body = b.Text()
	}
	m.handled = append(m.handled, body)
	ss := append([]router.Session(nil), m.sessions[s.To.BareString()]...)
	m.mu.Unlock()
	for _, x := range ss {
		x.Deliver(s.El)
		echo := message(s.To.String(), x.JID().String(), "echo "+body)
		x.Deliver(echo)
	}
}

func (m *recSM) handledCount(body string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, b := range m.handled {
		if b == body {
			n++
		}
	}
	return n
}

func message(from, to, body string) *xmlstream.Element {
	el := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	if from != "" {
		el.SetAttr("from", from)
	}
	el.SetAttr("to", to)
	el.SetAttr("type", "chat")
	el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body")).AddText(body)
	return el
}

// creds knows one user, alice.
type creds struct{}

func (creds) Credential(_ context.Context, user, hash string) (storage.Credential, error) {
	if user != "alice@"+testDomain {
		return storage.Credential{}, storage.ErrNotFound
	}
	cs, err := auth.DeriveCredentials("pw", 4096)
	if err != nil {
		return storage.Credential{}, err
	}
	for _, c := range cs {
		if c.Hash == hash {
			return c, nil
		}
	}
	return storage.Credential{}, storage.ErrNotFound
}

// testService is a service instance linked to gateways.
type testService struct {
	s      *Service
	sm     *recSM
	cancel context.CancelFunc
	done   chan error
	log    *logBuf
	// stopped makes stop wait for Run once: the test and its cleanup
	// may both stop the service.
	stopped sync.Once
}

func startService(t *testing.T, instance string, gws []*testGateway, mod func(*ServiceConfig)) *testService {
	t.Helper()
	return startServiceWith(t, instance, gws, mod, nil)
}

// startServiceWith starts a service whose dependencies modDeps, if not
// nil, changes.
func startServiceWith(t *testing.T, instance string, gws []*testGateway, mod func(*ServiceConfig), modDeps func(*ServiceDeps)) *testService {
	t.Helper()
	lb := &logBuf{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := router.New(log)
	m := newRecSM()
	m.r = r
	cfg := ServiceConfig{Username: AllDomains, Secret: testSecret, Instance: instance, RetryDelay: 20 * time.Millisecond,
		Bindings: []Binding{{Domain: testDomain, Kind: "sm", Component: m}}}
	for _, g := range gws {
		cfg.Gateways = append(cfg.Gateways, g.g.cfg.Addr)
	}
	if mod != nil {
		mod(&cfg)
	}
	deps := ServiceDeps{Router: r, Credentials: creds{}, Log: log}
	if modDeps != nil {
		modDeps(&deps)
	}
	s, err := NewService(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	r.SetFallback(s.Forwarder())
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testService{s: s, sm: m, cancel: cancel, done: make(chan error, 1), log: lb}
	go func() { ts.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		ts.stop()
		if t.Failed() {
			t.Logf("service %s log:\n%s", instance, lb.String())
		}
	})
	return ts
}

func (ts *testService) stop() {
	ts.cancel()
	ts.stopped.Do(func() {
		select {
		case <-ts.done:
		case <-time.After(10 * time.Second):
		}
	})
}

// sent returns how many events the service sent on its first link.
func (ts *testService) sent() uint64 {
	n, _ := ts.s.links[0].out.state()
	return n
}

// usersOn picks n users of testDomain owned by instance among ids.
func usersOn(instance string, ids []string, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		u := "u" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "@" + testDomain
		if ids[router.Owner(u, ids)] == instance {
			out = append(out, u)
		}
	}
	return out
}

func bindClient(t *testing.T, m router.SessionManager, full string) *client {
	t.Helper()
	c := newClient(t, full)
	if err := m.Bind(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func sendFrom(m router.SessionManager, c *client, el *xmlstream.Element) {
	el.SetAttr("from", c.full.String())
	s := router.Stanza{El: el, From: c.full}
	if to := el.Attr("to"); to != "" {
		s.To, _ = jid.Parse(to)
	}
	m.HandleFromSession(context.Background(), c, s)
}

// TestLocalDelivery: a message between two users that one instance owns
// is delivered by that instance without a round trip through the gateway
// (the instance sends one event, the delivery, and no route), and still
// exactly once; between users of two instances it goes through the
// gateway.
func TestLocalDelivery(t *testing.T) {
	gw := startGateway(t, nil)
	a := startService(t, "sm-a", []*testGateway{gw}, nil)
	b := startService(t, "sm-b", []*testGateway{gw}, nil)
	gw.members(t, 2)
	m := gw.sm(t)
	ids := []string{"sm-a", "sm-b"}
	onA, onB := usersOn("sm-a", ids, 2), usersOn("sm-b", ids, 1)
	from, to, far := bindClient(t, m, onA[0]+"/r"), bindClient(t, m, onA[1]+"/r"), bindClient(t, m, onB[0]+"/r")
	eventually(t, "the view of the instances", func() bool {
		a.s.procMu.Lock()
		defer a.s.procMu.Unlock()
		return a.s.owns(testDomain, onA[1])
	})

	before := a.sent()
	sendFrom(m, from, message("", to.full.Bare().String(), "local"))
	eventually(t, "local message", func() bool { return len(to.bodies()) == 2 })
	if got := a.sent() - before; got != 2 {
		t.Errorf("instance a sent %d events for a local message, want 2 (the message and its echo, no route)", got)
	}
	sendFrom(m, from, message("", far.full.Bare().String(), "far"))
	eventually(t, "remote message", func() bool { return len(far.bodies()) == 2 })
	if got := b.sm.handledCount("far"); got != 1 {
		t.Errorf("instance b handled the message %d times", got)
	}
	if got := strings.Join(to.bodies(), ","); got != "local,echo local" {
		t.Errorf("local recipient got %s", got)
	}
}

// TestSeeOtherHost: a service configured with a see-other-host value
// answers a lookup of a user it does not know with it; a user it knows
// gets its credential, and without the setting an unknown user is just
// not found.
func TestSeeOtherHost(t *testing.T) {
	tests := []struct {
		name, other, user string
		wantHost          string
		wantFound         bool
	}{
		{"unknown user sent elsewhere", "other.example.net:5222", "nobody@" + testDomain, "other.example.net:5222", false},
		{"known user", "other.example.net:5222", "alice@" + testDomain, "", true},
		{"no setting", "", "nobody@" + testDomain, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := startGateway(t, nil)
			startService(t, "sm-1", []*testGateway{gw}, func(c *ServiceConfig) { c.SeeOtherHost = tt.other })
			gw.members(t, 1)
			c, err := gw.g.Credential(context.Background(), tt.user, "SHA-256")
			var so *SeeOtherHost
			switch {
			case tt.wantHost != "":
				if !errors.As(err, &so) || so.Host != tt.wantHost {
					t.Fatalf("got %v, want see-other-host %s", err, tt.wantHost)
				}
			case tt.wantFound:
				if err != nil || c.Iterations != 4096 {
					t.Fatalf("got %+v %v", c, err)
				}
			default:
				if !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("got %v, want not found", err)
				}
			}
		})
	}
}

// TestFailoverKeepsSessionFlags: when the instance owning a user goes,
// the next one is told what the user's session had asked for (carbons,
// roster and blocklist pushes), not only its presence.
func TestFailoverKeepsSessionFlags(t *testing.T) {
	gw := startGateway(t, nil)
	a := startService(t, "sm-a", []*testGateway{gw}, nil)
	gw.members(t, 1)
	m := gw.sm(t)
	c := bindClient(t, m, "alice@"+testDomain+"/phone")
	other := bindClient(t, m, "alice@"+testDomain+"/desk")
	iq := func(typ, space, local string) *xmlstream.Element {
		el := xmlstream.NewElement(xmlstream.NSClient, stanza.IQ)
		el.SetAttr("type", typ)
		el.SetAttr("id", stanza.NewID())
		el.AddChild(xmlstream.NewElement(space, local))
		return el
	}
	sendFrom(m, c, iq("set", nsCarbons, "enable"))
	sendFrom(m, c, iq("get", nsRoster, "query"))
	sendFrom(m, other, iq("get", nsBlocking, "blocklist"))
	sendFrom(m, other, iq("set", nsCarbons, "enable"))
	sendFrom(m, other, iq("set", nsCarbons, "disable"))
	eventually(t, "events acknowledged", func() bool {
		a.s.procMu.Lock()
		defer a.s.procMu.Unlock()
		a.sm.mu.Lock()
		defer a.sm.mu.Unlock()
		return len(a.sm.sessions["alice@"+testDomain]) == 2
	})
	a.stop()
	b := startService(t, "sm-b", []*testGateway{gw}, nil)
	eventually(t, "sessions announced to the new instance", func() bool {
		b.sm.mu.Lock()
		defer b.sm.mu.Unlock()
		return len(b.sm.flags) == 2
	})
	b.sm.mu.Lock()
	defer b.sm.mu.Unlock()
	want := map[string]router.SessionFlags{
		c.full.String():     {Carbons: true, Interested: true},
		other.full.String(): {BlockPushes: true},
	}
	for full, f := range want {
		if b.sm.flags[full] != f {
			t.Errorf("%s: flags %+v, want %+v", full, b.sm.flags[full], f)
		}
	}
}

// rawService links to a gateway as an instance but writes what the test
// says, byte for byte, after the handshake.
type rawService struct {
	nc net.Conn
	r  *reader
}

func linkRaw(t *testing.T, gw *testGateway, instance string) *rawService {
	t.Helper()
	s, err := NewService(ServiceConfig{Gateways: []string{gw.g.cfg.Addr}, Secret: testSecret, Instance: instance},
		ServiceDeps{Router: router.New(slog.New(slog.DiscardHandler)), Credentials: creds{}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("tcp", gw.g.cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	nc, r, _, _, err := s.handshake(context.Background(), raw, gw.g.cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if _, err := nc.Write(frame("bind", nil, "id", testDomain, "domain", testDomain, "kind", "sm")); err != nil {
		t.Fatal(err)
	}
	return &rawService{nc: nc, r: r}
}

// next returns the next frame named local, skipping others.
func (rs *rawService) next(t *testing.T, local string) *xmlstream.Element {
	t.Helper()
	el, err := rs.frame(local)
	if err != nil {
		t.Fatalf("waiting for %s: %v", local, err)
	}
	return el
}

// frame reads up to the next frame named local.
func (rs *rawService) frame(local string) (*xmlstream.Element, error) {
	for {
		el, err := rs.r.element()
		if err != nil || el.Local == local {
			return el, err
		}
	}
}

// TestServiceVanishesMidFrame: an instance whose connection ends in the
// middle of a frame (a plain one, or a chunked event) delivers nothing of
// it; the events it did not acknowledge go to the next instance, and what
// it had already delivered whole is not delivered again.
func TestServiceVanishesMidFrame(t *testing.T) {
	gw := startGateway(t, nil)
	rs := linkRaw(t, gw, "sm-x")
	gw.members(t, 1)
	m := gw.sm(t)
	c := bindClient(t, m, "alice@"+testDomain+"/r")
	sbind := rs.next(t, "sbind")
	sid := sbind.Attr("sid")

	gw.r.Route(context.Background(), router.Stanza{El: message("bob@"+testDomain+"/x", c.full.Bare().String(), "hello"),
		From: jid.MustParse("bob@" + testDomain + "/x"), To: c.full.Bare()})
	to := rs.next(t, "to")
	o := to.Attr("o")
	// The instance delivers the message whole, then starts on the echo and
	// a large stanza and dies in the middle of both.
	whole := frame("deliver", payload(to), "sid", sid, "o", o, "k", "1")
	echo := frame("deliver", message(c.full.Bare().String(), c.full.String(), "echo hello"), "sid", sid, "o", o, "k", "2")
	big := frame("deliver", message(c.full.Bare().String(), c.full.String(), strings.Repeat("big ", ChunkThreshold)), "sid", sid, "o", o, "k", "3")
	var ch chunker
	parts := ch.split(big)
	var w []byte
	w = append(w, whole...)
	w = append(w, parts[0]...)
	w = append(w, echo[:len(echo)/2]...)
	if _, err := rs.nc.Write(w); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the whole delivery", func() bool { return len(c.bodies()) == 1 })
	rs.nc.Close()
	eventually(t, "the instance gone", func() bool {
		return strings.Contains(gw.log.String(), "service link ended")
	})
	if got := c.bodies(); len(got) != 1 || got[0] != "hello" {
		t.Fatalf("after the cut the client got %v", got)
	}

	// The next instance gets the session and the message again; its
	// deliveries carry the same origin: the first is dropped as delivered.
	next := startService(t, "sm-y", []*testGateway{gw}, nil)
	eventually(t, "redelivery by the next instance", func() bool { return len(c.bodies()) >= 2 })
	eventually(t, "events acknowledged", func() bool {
		_, acked := next.s.links[0].out.state()
		sent, _ := next.s.links[0].out.state()
		return sent > 0 && acked == sent
	})
	if got := strings.Join(c.bodies(), ","); got != "hello,echo hello" {
		t.Fatalf("client got %s, want hello once and the echo once", got)
	}
	if n := next.sm.handledCount("hello"); n != 1 {
		t.Fatalf("the next instance handled the message %d times", n)
	}
}

// mustReparse copies el, as a session that serializes what it is given.
func mustReparse(el *xmlstream.Element) *xmlstream.Element {
	cp, err := xmlstream.ParseStanza(el.AppendXML(nil, xmlstream.NSClient), xmlstream.NSClient)
	if err != nil {
		panic(err)
	}
	return cp
}

// testCA is a certificate authority for service certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a client certificate for names signed by the CA.
func (ca *testCA) issue(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestExternal: a service with a client certificate signed by the
// gateway's service CA authenticates with SASL EXTERNAL and binds the
// domain its certificate names; one whose certificate another CA signed
// fails the TLS handshake and binds nothing, and one whose certificate
// names another domain is refused the bind.
func TestExternal(t *testing.T) {
	trusted, stranger := newCA(t, "services"), newCA(t, "someone else")
	tests := []struct {
		name     string
		cert     tls.Certificate
		bound    bool
		wantLog  string // in the gateway's log
		wantExit string // the service's Run error
	}{
		{"trusted", trusted.issue(t, testDomain), true, `msg=bound`, ""},
		{"wrong CA", stranger.issue(t, testDomain), false, `service refused`, ""},
		{"other domain", trusted.issue(t, "other.example"), false, `bind refused: not allowed`, "bind example.org: not-authorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := startGateway(t, trusted.pool)
			ts := startService(t, "sm-1", []*testGateway{gw}, func(c *ServiceConfig) {
				c.Secret, c.External = "", true
				c.TLS = &tls.Config{Certificates: []tls.Certificate{tt.cert}}
			})
			eventually(t, "the gateway's verdict", func() bool { return strings.Contains(gw.log.String(), tt.wantLog) })
			if tt.wantExit != "" {
				select {
				case err := <-ts.done:
					if err == nil || !strings.Contains(err.Error(), tt.wantExit) {
						t.Fatalf("service ended with %v, want %q", err, tt.wantExit)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("a refused service kept running")
				}
				ts.done <- nil
			}
			if tt.bound {
				gw.members(t, 1)
				if _, ok := gw.r.SessionManager(testDomain); !ok {
					t.Fatal("the domain is not served after the bind")
				}
				return
			}
			if _, ok := gw.r.Lookup(testDomain); ok {
				t.Fatal("a refused service bound the domain")
			}
			if strings.Contains(gw.log.String(), "msg=bound") {
				t.Fatalf("a refused service bound something:\n%s", gw.log.String())
			}
		})
	}
}

// TestGrantCrossesTheLink: a privileged entity's grant (XEP-0356), which
// the component listener puts on its stanzas at the gateway, reaches the
// session manager of a service with the stanza; a stanza without one
// arrives without.
func TestGrantCrossesTheLink(t *testing.T) {
	gw := startGateway(t, nil)
	svc := startService(t, "sm-a", []*testGateway{gw}, nil)
	gw.members(t, 1)
	gw.sm(t)
	g := &privilege.Grant{Roster: privilege.Both, RosterPush: true, Message: true, Presence: privilege.PresenceRoster,
		IQ: map[string]privilege.Access{"urn:xmpp:bookmarks:1": privilege.Set}}
	from := jid.MustParse("irc.example.org")
	to := jid.MustParse("alice@" + testDomain)
	gw.r.Route(context.Background(), router.Stanza{El: message(from.String(), to.String(), "plain"), From: from, To: to})
	gw.r.Route(context.Background(), router.Stanza{El: message(from.String(), to.String(), "privileged"), From: from, To: to, Grant: g})
	eventually(t, "both handled", func() bool { return svc.sm.handledCount("privileged") == 1 && svc.sm.handledCount("plain") == 1 })
	want, _ := g.MarshalText()
	svc.sm.mu.Lock()
	defer svc.sm.mu.Unlock()
	if len(svc.sm.grants) != 1 || svc.sm.grants[0] != string(want) {
		t.Fatalf("grants %q, want one, %q", svc.sm.grants, want)
	}
}
