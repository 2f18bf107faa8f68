package link

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/listen"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// AllDomains is the SASL username of the service secret that lets a service
// bind any domain; any other username is a domain, allowed only that
// domain.
const AllDomains = "service"

// GatewayConfig configures the gateway's side of the service protocol.
type GatewayConfig struct {
	// Addr is the service listener.
	Addr string
	// Secret lets a service that authenticates as AllDomains bind any
	// domain; "" accepts no such service.
	Secret string
	// DomainSecrets let a service that authenticates as the domain bind
	// that domain only.
	DomainSecrets map[string]string
	// TLS holds the listener's certificate. With ClientCAs set, services
	// may present a certificate instead of a secret (SASL EXTERNAL): they
	// may bind the DNS names it holds.
	TLS *tls.Config
	// ClientCAs verify service certificates; nil disables EXTERNAL.
	ClientCAs *x509.CertPool
	// ParkLimit bounds the events kept for a domain while no instance
	// serves it.
	ParkLimit int
	// MoveWindow bounds the sessions announced to a new owner and not
	// acknowledged yet when users change instance (a failover): default
	// 256.
	MoveWindow int
	// HandshakeTimeout bounds connect to bound.
	HandshakeTimeout time.Duration
}

// GatewayDeps are what the gateway uses.
type GatewayDeps struct {
	Router *router.Router
	Log    *slog.Logger
	// Metrics receives events for monitoring; nil records nothing.
	Metrics Metrics
	// Membership, when set, is the cluster membership users are hashed
	// over (see docs/cluster.md): the instances of its view, linked or
	// not, rather than the instances linked. Nil hashes over the linked
	// instances.
	Membership router.Membership
}

// Gateway accepts service links and stands in for their components in its
// router.
type Gateway struct {
	metrics    Metrics
	membership router.Membership

	cfg   GatewayConfig
	r     *router.Router
	log   *slog.Logger
	id    string
	auth  *auth.Authenticator
	orig  atomic.Uint64
	dedup dedup

	mu       sync.Mutex
	links    map[string]*glink    // live links by instance id
	received map[string]*runCount // events received from each instance id, for resumption
	remotes  map[string]*remote   // stand-ins by domain
	sessions map[string]*gsess    // by session id
	certs    map[string]*tls.Certificate
	view     router.View // the last cluster membership, with Membership
	wg       sync.WaitGroup
	// moveWait is how long a moved session's announcement keeps its slot
	// in the window at most (see remote.move).
	moveWait time.Duration
}

// NewGateway returns a gateway; Run or Serve starts it.
func NewGateway(cfg GatewayConfig, d GatewayDeps) (*Gateway, error) {
	if d.Router == nil || d.Log == nil {
		return nil, errors.New("link: router and logger are required")
	}
	if cfg.TLS == nil {
		return nil, errors.New("link: the service listener needs a certificate")
	}
	if cfg.Secret == "" && len(cfg.DomainSecrets) == 0 && cfg.ClientCAs == nil {
		return nil, errors.New("link: no way for a service to authenticate: set a secret or client CAs")
	}
	if cfg.ParkLimit <= 0 {
		cfg.ParkLimit = 100000
	}
	if cfg.MoveWindow <= 0 {
		cfg.MoveWindow = 256
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 15 * time.Second
	}
	tc := cfg.TLS.Clone()
	if cfg.ClientCAs != nil {
		tc.ClientCAs = cfg.ClientCAs
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	cfg.TLS = tc
	g := &Gateway{
		cfg: cfg, r: d.Router, log: d.Log.With("component", "gateway"), id: stanza.NewID(),
		links: map[string]*glink{}, received: map[string]*runCount{}, remotes: map[string]*remote{},
		sessions: map[string]*gsess{}, certs: map[string]*tls.Certificate{}, moveWait: 10 * time.Second,
	}
	g.dedup.init(1 << 16)
	g.metrics = orNone(d.Metrics)
	g.membership = d.Membership
	store := linkCreds{}
	add := func(name, secret string) error {
		cs, err := auth.DeriveCredentials(secret, auth.DefaultIterations)
		if err != nil {
			return err
		}
		store[name] = cs
		return nil
	}
	if cfg.Secret != "" {
		if err := add(AllDomains, cfg.Secret); err != nil {
			return nil, err
		}
	}
	for dom, sec := range cfg.DomainSecrets {
		if err := add(dom, sec); err != nil {
			return nil, err
		}
	}
	g.auth = auth.New(store, nil)
	return g, nil
}

// linkCreds are the SCRAM credentials of services, by username.
type linkCreds map[string][]storage.Credential

// Credential implements auth.CredentialStore; users are name@link.
func (l linkCreds) Credential(_ context.Context, user, hash string) (storage.Credential, error) {
	name, _, _ := strings.Cut(user, "@")
	for _, c := range l[name] {
		if c.Hash == hash {
			return c, nil
		}
	}
	return storage.Credential{}, storage.ErrNotFound
}

// runCount is how many events the gateway received from a run of an
// instance: what a reconnection of the same run resumes from.
type runCount struct {
	run string
	h   atomic.Uint64
}

// raise makes h at least n.
func (rc *runCount) raise(n uint64) {
	for {
		old := rc.h.Load()
		if n <= old || rc.h.CompareAndSwap(old, n) {
			return
		}
	}
}

// linkDomain is the pseudo-domain of service usernames in SASL.
const linkDomain = "link"

// Run listens on cfg.Addr until ctx is done.
func (g *Gateway) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", g.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: listen %s: %w", g.cfg.Addr, err)
	}
	g.log.Info("listening for services", "addr", l.Addr().String())
	g.Serve(ctx, l)
	return nil
}

// ID is the gateway's id for this run, as services see it in hello.
func (g *Gateway) ID() string { return g.id }

// follow switches to every new view of the membership until ctx is done.
func (g *Gateway) follow(ctx context.Context) {
	var rev int64
	for {
		v, err := g.membership.Next(ctx, rev)
		if err != nil {
			if ctx.Err() == nil {
				g.log.Error("cluster membership ended: serving on the last one", "revision", rev, "err", err)
			}
			return
		}
		rev = v.Rev
		g.mu.Lock()
		g.view = v
		rms := make([]*remote, 0, len(g.remotes))
		for _, rm := range g.remotes {
			rms = append(rms, rm)
		}
		g.mu.Unlock()
		for _, rm := range rms {
			rm.setView(v.Rev, v.Instances[router.ServiceKey(rm.kind, rm.domain)])
		}
		g.log.Info("membership", "revision", v.Rev, "services", v.Instances)
	}
}

// Serve accepts services from l until ctx is done, then closes every link
// and waits for them.
func (g *Gateway) Serve(ctx context.Context, l net.Listener) {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	if g.membership != nil {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.follow(ctx)
		}()
	}
	listen.Accept(ctx, l, g.log, func(nc net.Conn) bool {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.serveConn(ctx, nc)
		}()
		return true
	})
	g.mu.Lock()
	var ls []*glink
	for _, gl := range g.links {
		ls = append(ls, gl)
	}
	g.mu.Unlock()
	for _, gl := range ls {
		gl.c.close(streamError("system-shutdown", ""))
	}
	g.wg.Wait()
}

// TLSConfig returns the client listener's TLS configuration: each domain a
// service binds gets a self-signed certificate, made when it is first
// bound and kept for the life of the gateway.
func (g *Gateway) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"xmpp-client"},
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			g.mu.Lock()
			defer g.mu.Unlock()
			name := strings.ToLower(strings.TrimSuffix(h.ServerName, "."))
			if c, ok := g.certs[name]; ok {
				return c, nil
			}
			// A client that names no known domain gets the certificate of
			// a domain users log in to, not that of a service such as a
			// conference domain; the same one every time.
			var pick string
			for d := range g.certs {
				rm := g.remotes[d]
				if pick == "" || (rm != nil && rm.kind == "sm") && (g.remotes[pick] == nil || g.remotes[pick].kind != "sm" || d < pick) {
					pick = d
				}
			}
			if pick != "" {
				return g.certs[pick], nil
			}
			return nil, errors.New("gateway: no domain bound yet")
		},
	}
}

// certLocked takes the certificate a service sent for domain, or makes a
// self-signed one if the domain has none yet.
func (g *Gateway) certLocked(domain string, sent *xmlstream.Element) {
	if sent != nil && sent.Child(NS, "cert") != nil && sent.Child(NS, "key") != nil {
		c, err := tls.X509KeyPair([]byte(sent.Child(NS, "cert").Text()), []byte(sent.Child(NS, "key").Text()))
		if err == nil {
			g.certs[domain] = &c
			return
		}
		g.log.Warn("certificate sent by a service unusable", "domain", domain, "err", err)
	}
	if _, ok := g.certs[domain]; ok {
		return
	}
	cp, kp, err := certs.SelfSigned(domain, time.Now())
	if err == nil {
		var c tls.Certificate
		if c, err = tls.X509KeyPair(cp, kp); err == nil {
			g.certs[domain] = &c
			return
		}
	}
	g.log.Error("certificate", "domain", domain, "err", err)
}

// newOrigin numbers an event entering the system at this gateway.
func (g *Gateway) newOrigin() string {
	return g.id + ":" + strconv.FormatUint(g.orig.Add(1), 10)
}

// glink is one authenticated service link.
type glink struct {
	g   *Gateway
	iid string
	run string // the instance's run, to tell a restart from a reconnection
	c   *conn
	out outbox
	log *slog.Logger
	// allowed says whether the service may bind a domain.
	allowed func(string) bool

	mu      sync.Mutex
	bound   map[string]string // kind by domain
	pending map[string]chan *xmlstream.Element
	asm     assembler

	// Events are acknowledged to the service (<a/>) once received, and
	// said done (<done/>), in order, once handled: a delivery to a client
	// with Stream Management once the client acknowledged it (see
	// ackedSession). The service keeps a delivery until then, to hand it
	// on if this gateway dies. amu guards these.
	amu  sync.Mutex
	recv uint64         // events received
	h    uint64         // events done with, all up to h
	busy map[uint64]int // events above h not done with yet: the holds on each
	rc   *runCount      // events received, for the instance's next link
}

// ackedSession is a client session that tells when a delivery is off the
// gateway's hands (c2s sessions; see their DeliverAcked).
type ackedSession interface {
	DeliverAcked(el *xmlstream.Element, done func()) bool
}

// countedSession is an ackedSession that also tells where a delivery
// goes in its client's stream, and holds its write until a batch is
// released (c2s sessions; see their DeliverCounted).
type countedSession interface {
	DeliverCounted(el *xmlstream.Element, b *router.Batch, done func()) (taken bool, rid string, pos uint32)
}

// received numbers a new event and holds it until release.
func (gl *glink) received() uint64 {
	gl.amu.Lock()
	defer gl.amu.Unlock()
	gl.recv++
	gl.busy[gl.recv] = 1
	return gl.recv
}

// hold keeps event n from being acknowledged until one more release.
func (gl *glink) hold(n uint64) {
	gl.amu.Lock()
	gl.busy[n]++
	gl.amu.Unlock()
}

// release drops one hold of event n, and says done what is.
func (gl *glink) release(n uint64) {
	gl.amu.Lock()
	if gl.busy[n]--; gl.busy[n] <= 0 {
		delete(gl.busy, n)
	}
	moved := false
	for gl.h < gl.recv {
		if _, ok := gl.busy[gl.h+1]; ok {
			break
		}
		gl.h++
		moved = true
	}
	h := gl.h
	gl.amu.Unlock()
	if moved {
		gl.c.setDone(h)
	}
}

func (gl *glink) binds(domain string) bool {
	gl.mu.Lock()
	defer gl.mu.Unlock()
	_, ok := gl.bound[domain]
	return ok
}

func (g *Gateway) serveConn(ctx context.Context, nc net.Conn) {
	log := g.log.With("remote", nc.RemoteAddr().String())
	_ = nc.SetDeadline(time.Now().Add(g.cfg.HandshakeTimeout))
	gl, r, err := g.handshake(ctx, nc)
	if err != nil {
		log.Info("service refused", "err", err)
		nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	gl.log = log.With("instance", gl.iid)
	gl.log.Info("service linked")
	g.metrics.LinkUp()
	err = g.readLoop(ctx, gl, r)
	g.metrics.LinkDown()
	gl.log.Info("service link ended", "err", err)
	gl.c.kill()
	g.lost(gl)
}

// handshake runs the stream, STARTTLS, SASL and hello steps.
func (g *Gateway) handshake(ctx context.Context, raw net.Conn) (*glink, *reader, error) {
	nc := raw
	r := newReader(nc)
	fail := func(cond, text string) error {
		_, _ = nc.Write(streamError(cond, text))
		return &StreamError{Condition: cond, Text: text}
	}
	open := func(features string) error {
		ev, err := r.next()
		if err != nil {
			return err
		}
		_, _ = nc.Write(header("", "gateway", stanza.NewID()))
		if ev.Kind != xmlstream.EventStreamStart || ev.Elem.Space != xmlstream.NSStream || ev.Elem.Local != "stream" || r.p.DefaultNS() != NS {
			return fail("invalid-namespace", "")
		}
		if ev.Elem.Attr("version") != "1.0" {
			return fail("unsupported-version", "")
		}
		_, err = nc.Write([]byte("<stream:features>" + features + "</stream:features>"))
		return err
	}
	if err := open("<starttls xmlns='" + stanza.NSTLS + "'><required/></starttls>"); err != nil {
		return nil, nil, err
	}
	el, err := r.element()
	if err != nil {
		return nil, nil, err
	}
	if el.Space != stanza.NSTLS || el.Local != "starttls" {
		return nil, nil, fail("policy-violation", "STARTTLS is required")
	}
	if _, err := nc.Write([]byte("<proceed xmlns='" + stanza.NSTLS + "'/>")); err != nil {
		return nil, nil, err
	}
	tc := tls.Server(raw, g.cfg.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	nc = tc
	r.restart(nc)
	st := tc.ConnectionState()
	ti := &auth.TLSInfo{State: &st}
	if c := g.ownCert(st.ServerName); c != nil {
		ti.Leaf = c.Leaf
		if ti.Leaf == nil && len(c.Certificate) > 0 {
			ti.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
		}
	}
	mechs := ""
	for _, m := range []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"} {
		mechs += "<mechanism>" + m + "</mechanism>"
	}
	var peerNames []string
	if len(st.VerifiedChains) > 0 {
		mechs = "<mechanism>EXTERNAL</mechanism>" + mechs
		leaf := st.VerifiedChains[0][0]
		peerNames = leaf.DNSNames
	}
	if err := open("<mechanisms xmlns='" + stanza.NSSASL + "'>" + mechs + "</mechanisms>"); err != nil {
		return nil, nil, err
	}
	allowed, err := g.sasl(ctx, r, nc, ti, peerNames)
	if err != nil {
		return nil, nil, err
	}
	if err := open("<hello xmlns='" + NS + "'/>"); err != nil {
		return nil, nil, err
	}
	el, err = r.element()
	if err != nil {
		return nil, nil, err
	}
	iid, run := el.Attr("instance"), el.Attr("run")
	if el.Space != NS || el.Local != "hello" || iid == "" || len(iid) > 256 {
		return nil, nil, fail("policy-violation", "hello with an instance id expected")
	}
	gl := &glink{g: g, iid: iid, run: run, allowed: allowed, bound: map[string]string{}, pending: map[string]chan *xmlstream.Element{},
		busy: map[uint64]int{}}
	g.mu.Lock()
	old := g.links[iid]
	rc := g.received[iid]
	if rc == nil || rc.run != run {
		// Another run of the instance: it kept nothing of the last one.
		rc = &runCount{run: run}
		g.received[iid] = rc
	}
	h := rc.h.Load()
	g.mu.Unlock()
	if old != nil {
		// The same instance again: its old link is dead even if we did not
		// notice yet.
		old.c.kill()
		g.lost(old)
	}
	if _, err := nc.Write([]byte("<hello xmlns='" + NS + "' gateway='" + g.id + "' h='" + strconv.FormatUint(h, 10) + "'/>")); err != nil {
		return nil, nil, err
	}
	gl.h, gl.recv, gl.rc = h, h, rc
	gl.c = newConn(nc)
	_ = gl.out.attach(gl.c, 0)
	g.mu.Lock()
	g.links[iid] = gl
	g.mu.Unlock()
	return gl, r, nil
}

// ownCert returns the certificate the listener presented, for the
// tls-server-end-point channel binding.
func (g *Gateway) ownCert(serverName string) *tls.Certificate {
	if g.cfg.TLS.GetCertificate != nil {
		c, err := g.cfg.TLS.GetCertificate(&tls.ClientHelloInfo{ServerName: serverName})
		if err != nil {
			return nil
		}
		return c
	}
	if len(g.cfg.TLS.Certificates) > 0 {
		return &g.cfg.TLS.Certificates[0]
	}
	return nil
}

// sasl authenticates the service and returns what it may bind.
func (g *Gateway) sasl(ctx context.Context, r *reader, nc net.Conn, ti *auth.TLSInfo, peerNames []string) (func(string) bool, error) {
	failure := func(cond string) error {
		_, _ = nc.Write([]byte("<failure xmlns='" + stanza.NSSASL + "'><" + cond + "/></failure>"))
		_, _ = nc.Write(streamError("not-authorized", ""))
		return fmt.Errorf("sasl: %s", cond)
	}
	el, err := r.element()
	if err != nil {
		return nil, err
	}
	if el.Space != stanza.NSSASL || el.Local != "auth" {
		return nil, failure("malformed-request")
	}
	mech := el.Attr("mechanism")
	text := strings.TrimSpace(el.Text())
	if text == "=" {
		text = "" // RFC 6120 §6.4.2: an empty initial response
	}
	in, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, failure("incorrect-encoding")
	}
	if mech == "EXTERNAL" {
		if len(peerNames) == 0 && ti.State != nil && len(ti.State.VerifiedChains) == 0 {
			return nil, failure("invalid-mechanism")
		}
		if len(ti.State.VerifiedChains) == 0 {
			return nil, failure("not-authorized")
		}
		if _, err := nc.Write([]byte("<success xmlns='" + stanza.NSSASL + "'/>")); err != nil {
			return nil, err
		}
		r.restart(nc)
		names := append([]string(nil), peerNames...)
		return func(d string) bool {
			for _, n := range names {
				if strings.EqualFold(n, d) {
					return true
				}
			}
			return false
		}, nil
	}
	if mech != "SCRAM-SHA-256" && mech != "SCRAM-SHA-256-PLUS" {
		return nil, failure("invalid-mechanism")
	}
	x, err := g.auth.Start(ctx, mech, linkDomain, ti)
	if err != nil {
		return nil, failure("invalid-mechanism")
	}
	for {
		out, done, err := x.Step(in)
		if err != nil {
			var f *auth.Failure
			if errors.As(err, &f) {
				return nil, failure(f.Condition)
			}
			return nil, failure("temporary-auth-failure")
		}
		if done {
			b := []byte("<success xmlns='" + stanza.NSSASL + "'>" + base64.StdEncoding.EncodeToString(out) + "</success>")
			if _, err := nc.Write(b); err != nil {
				return nil, err
			}
			break
		}
		if _, err := nc.Write([]byte("<challenge xmlns='" + stanza.NSSASL + "'>" + base64.StdEncoding.EncodeToString(out) + "</challenge>")); err != nil {
			return nil, err
		}
		el, err := r.element()
		if err != nil {
			return nil, err
		}
		if el.Space != stanza.NSSASL || el.Local != "response" {
			return nil, failure("aborted")
		}
		if in, err = base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text())); err != nil {
			return nil, failure("incorrect-encoding")
		}
	}
	r.restart(nc)
	name := x.User().Local()
	if name == AllDomains {
		return func(string) bool { return true }, nil
	}
	return func(d string) bool { return subtle.ConstantTimeCompare([]byte(d), []byte(name)) == 1 }, nil
}

// readLoop processes a linked service's frames until the link ends.
func (g *Gateway) readLoop(ctx context.Context, gl *glink, r *reader) error {
	for {
		ev, err := r.next()
		if err != nil {
			var xe *xmlstream.Error
			if errors.As(err, &xe) {
				gl.c.close(streamError(xe.Condition, ""))
			}
			return err
		}
		if ev.Kind != xmlstream.EventElement {
			continue
		}
		if err := gl.handle(ctx, ev.Elem); err != nil {
			var se *StreamError
			if errors.As(err, &se) {
				gl.c.close(streamError(se.Condition, se.Text))
			}
			return err
		}
	}
}

// handle processes one frame from the service.
func (gl *glink) handle(ctx context.Context, el *xmlstream.Element) error {
	g := gl.g
	if el.Space == nsSM {
		switch el.Local {
		case "a":
			h, err := parseUint(el.Attr("h"))
			if err != nil {
				return &StreamError{Condition: "undefined-condition", Text: "bad h"}
			}
			if err := gl.out.ack(h); err != nil {
				return &StreamError{Condition: "undefined-condition", Text: err.Error()}
			}
		case "r":
			gl.c.forceAck()
		}
		return nil
	}
	if el.Space != NS {
		return &StreamError{Condition: "invalid-namespace"}
	}
	switch el.Local {
	case "bind":
		gl.bind(el)
		return nil
	case "unbind":
		g.unbind(gl, el.Attr("domain"))
		return nil
	case "want":
		// Uncounted: the instance asks for the user's sessions still to
		// move to it (see remote.promoteLocked).
		if u, err := jid.Parse(el.Attr("jid")); err == nil && u.Local() != "" && gl.binds(u.Domain()) {
			if rm := g.remote(u.Domain()); rm != nil {
				rm.mu.Lock()
				rm.promoteLocked(u.BareString())
				rm.mu.Unlock()
			}
		}
		return nil
	case "cred-result", "fast-result":
		gl.mu.Lock()
		ch := gl.pending[el.Attr("id")]
		delete(gl.pending, el.Attr("id"))
		gl.mu.Unlock()
		if ch != nil {
			ch <- el
		}
		return nil
	case "chunk":
		whole, err := gl.asm.add(el)
		if err != nil {
			return &StreamError{Condition: "policy-violation", Text: err.Error()}
		}
		if whole == nil {
			return nil
		}
		el = whole
	}
	n := gl.received()
	if err := gl.event(ctx, el, n); err != nil {
		return err
	}
	gl.rc.raise(n)
	gl.c.setAck(n)
	gl.release(n)
	return nil
}

// event processes one counted event from the service.
func (gl *glink) event(ctx context.Context, el *xmlstream.Element, n uint64) error {
	g := gl.g
	switch el.Local {
	case "deliver", "close":
		gs := g.session(el.Attr("sid"))
		if gs == nil {
			// The session ended meanwhile: a message goes back to the
			// user's bare JID, another resource or offline storage.
			if p := payload(el); p != nil && el.Local == "deliver" {
				gl.redeliver(ctx, p)
			}
			return nil
		}
		if !gl.binds(gs.r.domain) {
			gl.log.Warn("delivery to a session of a domain not bound", "domain", gs.r.domain)
			return nil
		}
		if el.Local == "close" {
			gs.s.Close(el.Attr("condition"))
			return nil
		}
		p := payload(el)
		if p == nil {
			return &StreamError{Condition: "bad-format", Text: "deliver without a stanza"}
		}
		if o := el.Attr("o"); o != "" && g.dedup.seen(o+"/"+el.Attr("k")+"/"+gs.id) {
			return nil
		}
		// One link carries the deliveries to every session of the
		// gateway: their socket writes are left to the edge's writers.
		if cs, ok := gs.s.(countedSession); ok {
			gl.hold(n)
			b := new(router.Batch)
			taken, rid, pos := cs.DeliverCounted(p, b, func() { gl.release(n) })
			switch {
			case !taken:
				b.Release()
				gl.release(n)
				gl.redeliver(ctx, p)
			case rid != "":
				// The service learns where the message went in the
				// client's stream before the client can have it: if this
				// gateway dies, the h of the client's failed resumption
				// tells the service which messages it had (see
				// remote.ResumeFailed).
				gl.c.enqueueThen(frame("at", nil, "n", strconv.FormatUint(n, 10), "id", rid, "h", strconv.FormatUint(uint64(pos), 10)), b.Release)
			default:
				b.Release()
			}
		} else if a, ok := gs.s.(ackedSession); ok {
			gl.hold(n)
			if !a.DeliverAcked(p, func() { gl.release(n) }) {
				gl.release(n)
				gl.redeliver(ctx, p)
			}
		} else if b, ok := gs.s.(router.BulkSession); ok {
			b.DeliverBulk(p, nil)
		} else {
			gs.s.Deliver(p)
		}
	case "route":
		p := payload(el)
		if p == nil {
			return &StreamError{Condition: "bad-format", Text: "route without a stanza"}
		}
		from, err := jid.Parse(p.Attr("from"))
		if err != nil || !gl.binds(from.Domain()) {
			// A service speaks only for the domains it bound.
			gl.log.Warn("stanza from a domain not bound dropped", "from", p.Attr("from"))
			return nil
		}
		s := router.Stanza{El: p, From: from}
		if t := p.Attr("to"); t != "" {
			if s.To, err = jid.Parse(t); err != nil {
				g.r.Bounce(ctx, s, stanza.JIDMalformed, "")
				return nil
			}
		}
		g.r.Route(withOrigin(ctx, el.Attr("o")), s)
	case "reroute":
		gl.reroute(el)
	default:
		return &StreamError{Condition: "unsupported-stanza-type", Text: el.Local}
	}
	return nil
}

// reroute takes back a <to/> event an instance was sent under an older
// membership than it knows, and that a newer one gives to another
// instance: it goes, as it was, to the owner by this gateway's view.
func (gl *glink) reroute(el *xmlstream.Element) {
	p := payload(el)
	if p == nil {
		return
	}
	to, err1 := jid.Parse(p.Attr("to"))
	from, err2 := jid.Parse(p.Attr("from"))
	if err1 != nil || err2 != nil || !gl.binds(to.Domain()) {
		gl.log.Warn("reroute of a stanza to a domain not bound dropped", "to", p.Attr("to"))
		return
	}
	rm := gl.g.remote(to.Domain())
	if rm == nil {
		return
	}
	data := frame("to", p, "o", el.Attr("o"), "grant", el.Attr("grant"), "redeliver", el.Attr("redeliver"))
	rm.mu.Lock()
	rm.dispatchLocked(data, rm.key(router.Stanza{El: p, From: from, To: to}), nil)
	rm.mu.Unlock()
	gl.log.Debug("rerouted", "to", p.Attr("to"), "o", el.Attr("o"))
}

// redeliver hands a message for a session that has ended back to the
// session manager of its addressee's bare JID, as the client edge does
// with what an ended session's client did not acknowledge.
func (gl *glink) redeliver(ctx context.Context, p *xmlstream.Element) {
	if p.Local != stanza.Message || p.Attr("type") == "error" {
		return
	}
	to, err := jid.Parse(p.Attr("to"))
	if err != nil {
		return
	}
	from, err := jid.Parse(p.Attr("from"))
	if err != nil {
		return
	}
	rm := gl.g.remote(to.Domain())
	if rm == nil || rm.kind != "sm" {
		return
	}
	bare := to.Bare()
	p.SetAttr("to", bare.String())
	rm.Redeliver(ctx, router.Stanza{El: p, From: from, To: bare})
}

// bind answers a bind request.
func (gl *glink) bind(el *xmlstream.Element) {
	g := gl.g
	id, domain, kind := el.Attr("id"), el.Attr("domain"), el.Attr("kind")
	reply := func(cond string) {
		b := "<result xmlns='" + NS + "' id='" + string(xmlstream.AppendEscapedAttr(nil, id)) + "'"
		if cond != "" {
			b += " error='" + cond + "'"
		}
		gl.c.enqueue([]byte(b + "/>"))
	}
	d, err := jid.New("", domain, "")
	if err != nil || kind == "" || len(kind) > 64 {
		reply(stanza.BadRequest)
		return
	}
	domain = d.Domain()
	if !gl.allowed(domain) {
		gl.log.Warn("bind refused: not allowed", "domain", domain)
		reply(stanza.NotAuthorized)
		return
	}
	g.mu.Lock()
	rm := g.remotes[domain]
	if rm == nil {
		rm = newRemote(g, domain, kind)
		if err := g.r.Register(domain, rm.component()); err != nil {
			g.mu.Unlock()
			gl.log.Warn("bind refused: domain served here", "domain", domain)
			reply(stanza.Conflict)
			return
		}
		g.remotes[domain] = rm
	}
	g.certLocked(domain, el.Child(NS, "tls"))
	g.mu.Unlock()
	if rm.kind != kind {
		gl.log.Warn("bind refused: domain bound with another kind", "domain", domain, "kind", kind, "bound", rm.kind)
		reply(stanza.Conflict)
		return
	}
	gl.mu.Lock()
	gl.bound[domain] = kind
	gl.mu.Unlock()
	reply("")
	rm.join(gl)
	gl.log.Info("bound", "domain", domain, "kind", kind)
}

// unbind removes gl from domain.
func (g *Gateway) unbind(gl *glink, domain string) {
	g.mu.Lock()
	rm := g.remotes[domain]
	g.mu.Unlock()
	gl.mu.Lock()
	_, ok := gl.bound[domain]
	delete(gl.bound, domain)
	gl.mu.Unlock()
	if rm != nil && ok {
		rm.leave(gl, nil)
	}
}

// lost hands what a dead link had not acknowledged to the instances that
// own it now.
func (g *Gateway) lost(gl *glink) {
	g.mu.Lock()
	if g.links[gl.iid] == gl {
		delete(g.links, gl.iid)
	}
	var rms []*remote
	gl.mu.Lock()
	for d := range gl.bound {
		if rm := g.remotes[d]; rm != nil {
			rms = append(rms, rm)
		}
	}
	gl.bound = map[string]string{}
	for id, ch := range gl.pending {
		close(ch)
		delete(gl.pending, id)
	}
	gl.mu.Unlock()
	g.mu.Unlock()
	// Every event sent to gl goes through one of these remotes, under its
	// lock. Holding them all, the outbox is detached with everything ever
	// sent to it, and gl is forgotten as an owner before any other event
	// can be sent to it: one sent between the two, never handed on, would
	// be lost. The locks are taken in the order of the domains, and no
	// remote takes another's while holding its own.
	slices.SortFunc(rms, func(a, b *remote) int { return strings.Compare(a.domain, b.domain) })
	for _, rm := range rms {
		rm.mu.Lock()
	}
	items := gl.out.detach()
	for _, rm := range rms {
		rm.leaveLocked(gl, items)
	}
	for _, rm := range rms {
		rm.mu.Unlock()
	}
}

func (g *Gateway) session(sid string) *gsess {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sessions[sid]
}

// Credential implements auth.CredentialStore for the client edge: the
// service that owns the user's domain looks the credential up.
func (g *Gateway) Credential(ctx context.Context, user, hash string) (storage.Credential, error) {
	domain := user
	if _, d, ok := strings.Cut(user, "@"); ok {
		domain = d
	}
	rm := g.remote(domain)
	if rm == nil {
		return storage.Credential{}, storage.ErrNotFound
	}
	el, err := g.ask(ctx, rm, user, func(id string) []byte {
		return frame("cred", nil, "id", id, "user", user, "hash", hash)
	})
	if err != nil {
		return storage.Credential{}, err
	}
	if h := el.Attr("see-other-host"); h != "" {
		return storage.Credential{}, &SeeOtherHost{User: user, Host: h}
	}
	if e := el.Attr("error"); e != "" {
		if e == stanza.ItemNotFound {
			return storage.Credential{}, storage.ErrNotFound
		}
		return storage.Credential{}, errors.New("gateway: credential lookup: " + e)
	}
	return parseCredential(el)
}

// remote returns the stand-in of domain, nil if no service bound it.
func (g *Gateway) remote(domain string) *remote {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.remotes[domain]
}

// ask sends the uncounted request that req builds with a fresh id to the
// instance of rm that owns user, and waits for the answer carrying that
// id. Requests are not kept like events: one lost with its link fails,
// and the client retries its login.
func (g *Gateway) ask(ctx context.Context, rm *remote, user string, req func(id string) []byte) (*xmlstream.Element, error) {
	gl := rm.owner(user)
	if gl == nil {
		return nil, errors.New("gateway: no service for " + rm.domain)
	}
	id := stanza.NewID()
	ch := make(chan *xmlstream.Element, 1)
	gl.mu.Lock()
	gl.pending[id] = ch
	gl.mu.Unlock()
	gl.c.enqueueUrgent(req(id))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	select {
	case el := <-ch:
		if el == nil {
			return nil, errors.New("gateway: service link lost")
		}
		return el, nil
	case <-ctx.Done():
		gl.mu.Lock()
		delete(gl.pending, id)
		gl.mu.Unlock()
		return nil, ctx.Err()
	}
}

// SeeOtherHost is the answer of a service that does not know a user and
// sends it elsewhere: the gateway ends the client's stream with the RFC
// 6120 see-other-host stream error carrying Host.
type SeeOtherHost struct {
	User string
	Host string
}

func (e *SeeOtherHost) Error() string { return "gateway: " + e.User + " is served at " + e.Host }

func parseCredential(el *xmlstream.Element) (storage.Credential, error) {
	c := storage.Credential{Hash: el.Attr("hash")}
	var err error
	it, err := strconv.Atoi(el.Attr("iterations"))
	if err != nil || it <= 0 {
		return c, errors.New("gateway: bad credential")
	}
	c.Iterations = it
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{"salt", &c.Salt}, {"stored-key", &c.StoredKey}, {"server-key", &c.ServerKey}} {
		if *f.dst, err = base64.StdEncoding.DecodeString(el.Attr(f.name)); err != nil || len(*f.dst) == 0 {
			return c, errors.New("gateway: bad credential")
		}
	}
	return c, nil
}

// dedup remembers recent delivery keys, so that a stanza a restarted
// service delivers again reaches the client once.
type dedup struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

func (d *dedup) init(n int) {
	d.set = make(map[string]struct{}, n)
	d.ring = make([]string, n)
}

// seen records key and reports whether it was there already.
func (d *dedup) seen(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.set[key]; ok {
		return true
	}
	if old := d.ring[d.next]; old != "" {
		delete(d.set, old)
	}
	d.ring[d.next] = key
	d.next = (d.next + 1) % len(d.ring)
	d.set[key] = struct{}{}
	return false
}
