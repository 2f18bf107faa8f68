package link

import (
	"context"
	"crypto/tls"
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

	"github.com/xdg-go/scram"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/privilege"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Binding is one (domain, kind) a service serves, with the component that
// serves it. For the kind "sm" the component must be a
// router.SessionManager.
type Binding struct {
	Domain    string
	Kind      string
	Component router.Component
	// CertPEM and KeyPEM, when set, are the domain's certificate chain and
	// key, handed to the gateways so that clients see the domain's own
	// certificate; without them a gateway makes a self-signed one.
	CertPEM, KeyPEM []byte
}

// ServiceConfig configures a service's links to its gateways.
type ServiceConfig struct {
	// Gateways are the service listeners of the gateways, host:port; the
	// service links to every one.
	Gateways []string
	// Username and Secret authenticate with SCRAM-SHA-256: Username is
	// AllDomains for the gateways' shared secret, or a domain.
	Username, Secret string
	// External authenticates with the client certificate in TLS instead.
	External bool
	// Instance names this instance; gateways hash users over instance ids.
	Instance string
	// TLS verifies gateways (RootCAs, ServerName) and may hold the client
	// certificate. Without RootCAs the gateway's certificate is not checked:
	// SCRAM's channel binding then still proves that nobody sits between
	// the service and a gateway that knows the secret.
	TLS *tls.Config
	// Bindings are the (domain, kind) pairs served.
	Bindings []Binding
	// RetryDelay is the pause before reconnecting.
	RetryDelay time.Duration
	// GatewayLoss is how long a gateway may stay unreachable before a
	// warning says so (once); the service keeps trying it. What was
	// queued for its clients is handed on as soon as its link drops.
	GatewayLoss time.Duration
	// StartWait bounds how long, after the start, the events of a gateway
	// wait for every other reachable gateway to announce its sessions
	// (default 10 s).
	StartWait time.Duration
	// SeeOtherHost, when set, is where a gateway sends the clients of
	// users this service does not know (the RFC 6120 see-other-host
	// stream error, host or host:port), instead of failing their
	// authentication.
	SeeOtherHost string
	// ViewWait bounds how long, under a cluster membership, a stanza for
	// a user waits for the gateways still on an older view of the
	// membership to switch to the view it was routed under (default 5 s).
	ViewWait time.Duration
}

// ServiceDeps are what a service uses.
type ServiceDeps struct {
	// Router is the service's own router: stanzas its components route to
	// domains they do not serve go to a gateway (see Forwarder).
	Router *router.Router
	// Credentials answer the gateways' credential lookups for users.
	Credentials auth.CredentialStore
	// Tokens answer the gateways' FAST token requests (XEP-0484); nil
	// refuses them with service-unavailable.
	Tokens storage.FastTokens
	Log    *slog.Logger
	// Metrics receives events for monitoring; nil records nothing.
	Metrics Metrics
	// Membership, when set, is the cluster membership: the service links
	// to the gateways of its views besides cfg.Gateways, and to a new
	// gateway as soon as a view lists it.
	Membership router.Membership
	// Ahead, when set, is told the bare JID of every session a gateway
	// announces (sbind) as the link reads it, before the event's turn to
	// be processed comes: a store may start reading what the processing
	// will need (see package prefetch).
	Ahead func(bare string)
}

// ErrRefused reports a gateway that refused a binding; retrying would not
// help.
var ErrRefused = errors.New("link: gateway refused")

// Service links components to gateways.
type Service struct {
	cfg   ServiceConfig
	deps  ServiceDeps
	log   *slog.Logger
	bound map[string]Binding

	// links are replaced, never changed in place, so that a reader may
	// range over what linkList returned; changed with procMu and linksMu
	// held.
	linksMu sync.Mutex
	links   []*slink

	// procMu serializes the processing of events from all gateways, so
	// that a delivery can be tied to the event that caused it (cur) and so
	// to the acknowledgement of that event.
	procMu sync.Mutex
	cur    atomic.Pointer[proc]
	seen   dedup // origins processed, for events a gateway sends again
	// Under a cluster membership, per domain: the newest revision any
	// gateway announced (members, changing or not) and the instances of
	// that view; viewCond is signalled when a gateway's view changes or a
	// link drops. Guarded by procMu.
	maxRev   map[string]int64
	idsAt    map[string][]string
	waited   map[string]int64 // the revision a wait for lagging gateways timed out at
	viewCond *sync.Cond
	fatal    chan error
	run      string // this run of the instance, told to gateways in hello

	// A restarted instance handles no stanza before every gateway it can
	// reach has announced its sessions: a message for a user on another
	// gateway would otherwise go to offline storage while the user is
	// online, and arrive after the messages sent after it.
	startMu sync.Mutex
	settled map[*slink]bool // links whose sessions are announced, or unreachable
	ready   chan struct{}   // closed once every link is settled, or after StartWait

	// handed holds, by resumption id, the messages handed on from the
	// sessions of lost links with their places in their clients' streams;
	// claims, the counts that gateways gave for sessions whose messages
	// were not handed on yet (see claim). Both with s.procMu held.
	handed recent[*handedSession]
	claims recent[claimed]
}

// handedSession is what was handed on from one session of a lost link
// whose client may resume elsewhere.
type handedSession struct {
	bare string
	msgs []handedMsg
}

// handedMsg is a message handed on to the bare JID: its place in the
// client's stream, and the event id it was stored offline with.
type handedMsg struct {
	pos   uint32
	event string
}

// claimed is a count a gateway gave for a session: its client had, or
// the gateway holds, the first h stanzas of it.
type claimed struct {
	bare string
	h    uint32
}

// proc is the event being processed.
type proc struct {
	o string
	// again: the gateway sent the event again, after the instance it
	// went to died (storage.EventAgain).
	again bool
	n     int // routes so far
	l     *slink
	// writes is how many writes made for the event are not durable yet
	// (storage.Pending: batched archive writes); shared with the events
	// handled locally on its behalf (see local).
	writes *atomic.Int32

	mu sync.Mutex
	k  map[*proxy]int // deliveries to each session so far
}

// next numbers a delivery to px caused by the event.
func (p *proc) next(px *proxy) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.k == nil {
		p.k = map[*proxy]int{}
	}
	p.k[px]++
	return p.k[px]
}

type procKey struct{}

// NewService returns a service; Run starts it.
func NewService(cfg ServiceConfig, d ServiceDeps) (*Service, error) {
	if d.Router == nil || d.Log == nil || d.Credentials == nil {
		return nil, errors.New("link: router, credentials and logger are required")
	}
	if len(cfg.Gateways) == 0 && d.Membership == nil {
		return nil, errors.New("link: no gateway to link to")
	}
	if !cfg.External && cfg.Secret == "" {
		return nil, errors.New("link: a secret or a client certificate is required")
	}
	if cfg.Username == "" {
		cfg.Username = AllDomains
	}
	if cfg.Instance == "" {
		cfg.Instance = stanza.NewID()
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 200 * time.Millisecond
	}
	if cfg.GatewayLoss <= 0 {
		cfg.GatewayLoss = time.Minute
	}
	if cfg.StartWait <= 0 {
		cfg.StartWait = 10 * time.Second
	}
	if cfg.ViewWait <= 0 {
		cfg.ViewWait = 5 * time.Second
	}
	if cfg.TLS == nil {
		cfg.TLS = &tls.Config{}
	}
	d.Metrics = orNone(d.Metrics)
	s := &Service{cfg: cfg, deps: d, log: d.Log.With("component", "service", "instance", cfg.Instance), bound: map[string]Binding{}, fatal: make(chan error, 1), run: stanza.NewID(),
		settled: map[*slink]bool{}, ready: make(chan struct{})}
	s.seen.init(1 << 16)
	s.maxRev, s.idsAt, s.waited = map[string]int64{}, map[string][]string{}, map[string]int64{}
	s.viewCond = sync.NewCond(&s.procMu)
	s.handed.init(handedWindow)
	s.claims.init(handedWindow)
	for _, b := range cfg.Bindings {
		if b.Kind == "sm" {
			if _, ok := b.Component.(router.SessionManager); !ok {
				return nil, fmt.Errorf("link: %s: an sm binding needs a session manager", b.Domain)
			}
		}
		s.bound[b.Domain] = b
	}
	for _, a := range cfg.Gateways {
		s.links = append(s.links, s.newLink(a, false))
	}
	return s, nil
}

func (s *Service) newLink(addr string, listed bool) *slink {
	l := &slink{s: s, addr: addr, listed: listed, proxies: map[string]*proxy{}, view: map[string][]string{}, vrev: map[string]int64{}, arev: map[string]int64{}}
	l.out.untilDone = true
	return l
}

// linkList returns the links; the slice is not changed afterwards.
func (s *Service) linkList() []*slink {
	s.linksMu.Lock()
	defer s.linksMu.Unlock()
	return s.links
}

// Forwarder is the component that takes, in the service's router, the
// stanzas for every domain: it hands them to a gateway, whose router finds
// the instance that owns the addressee, this one or another.
func (s *Service) Forwarder() router.Component { return forwarder{s} }

type forwarder struct{ s *Service }

func (f forwarder) HandleStanza(ctx context.Context, st router.Stanza) {
	s := f.s
	p, _ := ctx.Value(procKey{}).(*proc)
	o := ""
	var acked func()
	links := s.linkList()
	if len(links) == 0 {
		s.log.Warn("no gateway to route a stanza through: dropped", "to", st.To.String())
		return
	}
	l := links[0]
	if d, ok := ctx.Value(deliveryKey{}).(delivery); ok && p == nil {
		o, acked = d.origin, d.acked
	}
	if p != nil {
		p.n++
		if p.o != "" {
			o = p.o + "." + strconv.Itoa(p.n)
		}
		l = p.l
		if s.local(ctx, p, o, st) {
			return
		}
	}
	if !l.connected() {
		for _, x := range links {
			if x.connected() {
				l = x
				break
			}
		}
	}
	// Stanzas to one addressee keep their order.
	l.out.sendAcked(frame("route", st.El, "o", o), "to:"+st.To.BareString(), acked)
}

type deliveryKey struct{}

type delivery struct {
	origin string
	acked  func()
}

// WithDelivery returns ctx for routing, through a service's Forwarder, a
// stanza a component keeps until it is safe: origin names it, the same
// each time it is sent again (after a crash of the component), so that a
// gateway drops a copy it already had; acked runs once a gateway has
// acknowledged it. It applies to stanzas that are not the consequence of
// an event being processed, which carry their own origins.
func WithDelivery(ctx context.Context, origin string, acked func()) context.Context {
	return context.WithValue(ctx, deliveryKey{}, delivery{origin: origin, acked: acked})
}

// local hands st to this instance's own component when every gateway
// agrees that this instance owns the addressee: the stanza then takes no
// round trip through a gateway. It is processed as the event the gateway
// would have sent back (origin o), so that its consequences carry the
// same origins, and a gateway drops them alike if they come twice.
// s.procMu is held (p is being processed).
func (s *Service) local(ctx context.Context, p *proc, o string, st router.Stanza) bool {
	if st.To.Local() == "" {
		return false
	}
	domain := st.To.Domain()
	b, ok := s.bound[domain]
	if !ok || !router.Stateful(b.Kind) || !s.owns(domain, st.To.BareString()) {
		return false
	}
	if o != "" && s.seen.seen(o+"@to") {
		return true
	}
	sub := &proc{o: o, again: p.again, l: p.l, writes: p.writes}
	s.cur.Store(sub)
	defer s.cur.Store(p)
	b.Component.HandleStanza(procContext(ctx, sub), st)
	return true
}

// procContext returns ctx for processing the event p. Its origin, the
// same each time the event is sent, names it to the storage too, so that
// an offline message stored for it is not stored again when the event is
// processed again after a crash (storage.WithEventID).
func procContext(ctx context.Context, p *proc) context.Context {
	ctx = context.WithValue(ctx, procKey{}, p)
	if p.o != "" {
		ctx = storage.WithEventID(ctx, p.o)
		if p.again {
			ctx = storage.WithEventAgain(ctx)
		}
	}
	if p.writes != nil {
		s := p.l.s
		ctx = storage.WithPending(ctx, func() func() {
			p.writes.Add(1)
			return func() {
				if p.writes.Add(-1) == 0 {
					s.checkAcks()
				}
			}
		})
	}
	return ctx
}

// owns reports whether every gateway, as far as this instance knows,
// hashes bare to this instance: then all of the user's sessions are bound
// here. A gateway not linked, or whose view is changing, makes it false.
// s.procMu is held.
func (s *Service) owns(domain, bare string) bool {
	links := s.linkList()
	if len(links) == 0 {
		return false
	}
	for _, l := range links {
		if !l.connected() {
			return false
		}
		ids := l.view[domain]
		if len(ids) == 0 || ids[router.Owner(bare, ids)] != s.cfg.Instance {
			return false
		}
		// Under a cluster membership, every gateway on the same view.
		if l.vrev[domain] != links[0].vrev[domain] || l.vrev[domain] < s.maxRev[domain] {
			return false
		}
	}
	return true
}

// Run links to every gateway until ctx is done. It returns an error when a
// gateway refuses a binding.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	var first router.View
	if s.deps.Membership != nil {
		// The gateways of the membership are known before the start gate
		// counts them.
		v, err := s.deps.Membership.Next(ctx, 0)
		if err != nil {
			return err
		}
		first = v
		s.addListed(ctx, &wg, v)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.discover(ctx, &wg, first.Rev)
		}()
	}
	start := time.AfterFunc(s.cfg.StartWait, func() { s.settle(nil) })
	defer start.Stop()
	for _, l := range s.linkList() {
		s.startLink(ctx, &wg, l)
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-s.fatal:
		cancel()
	}
	return err
}

func (s *Service) startLink(ctx context.Context, wg *sync.WaitGroup, l *slink) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.run(ctx)
	}()
}

// discover links to every gateway a new view of the membership lists.
func (s *Service) discover(ctx context.Context, wg *sync.WaitGroup, rev int64) {
	for {
		v, err := s.deps.Membership.Next(ctx, rev)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("cluster membership ended: linked to the gateways known", "err", err)
			}
			return
		}
		rev = v.Rev
		for _, l := range s.addListed(ctx, nil, v) {
			s.startLink(ctx, wg, l)
		}
	}
}

// addListed adds a link to every gateway of v not linked yet, and marks
// those v does not list any more: such a link ends when its connection
// does (a gateway that lost its lease but runs on is still served). It
// returns the new links; with wg nil they are not started.
func (s *Service) addListed(ctx context.Context, wg *sync.WaitGroup, v router.View) []*slink {
	want := map[string]bool{}
	for _, a := range v.Gateways {
		want[a] = true
	}
	s.procMu.Lock()
	defer s.procMu.Unlock()
	s.linksMu.Lock()
	defer s.linksMu.Unlock()
	have := map[string]*slink{}
	for _, l := range s.links {
		have[l.addr] = l
		if l.listed {
			l.unlisted.Store(!want[l.addr])
		}
	}
	var added []*slink
	links := slices.Clone(s.links)
	for a := range want {
		if l := have[a]; l != nil {
			continue
		}
		l := s.newLink(a, true)
		links = append(links, l)
		added = append(added, l)
		s.log.Info("gateway listed in the cluster", "gateway", a, "revision", v.Rev)
	}
	s.links = links
	return added
}

// drop removes a link that ended after its gateway left the membership.
func (s *Service) drop(l *slink) {
	s.procMu.Lock()
	s.linksMu.Lock()
	s.links = slices.DeleteFunc(slices.Clone(s.links), func(x *slink) bool { return x == l })
	s.linksMu.Unlock()
	s.viewCond.Broadcast()
	s.procMu.Unlock()
	s.startMu.Lock()
	delete(s.settled, l)
	s.startMu.Unlock()
	s.settle(l)
}

// settle marks l settled (nil: all of them), and opens the gate once
// every link is.
func (s *Service) settle(l *slink) {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	select {
	case <-s.ready:
		return
	default:
	}
	if l != nil && slices.Contains(s.linkList(), l) {
		s.settled[l] = true
	}
	if l == nil || len(s.settled) >= len(s.linkList()) {
		close(s.ready)
	}
}

// startGate waits, for an event of l, until the instance may handle it:
// l's own announcements pass, what follows waits for the other gateways'.
func (s *Service) startGate(ctx context.Context, l *slink) {
	select {
	case <-s.ready:
		return
	default:
	}
	s.startMu.Lock()
	mine := s.settled[l]
	s.startMu.Unlock()
	if !mine {
		return
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
	}
}

// slink is the service's link to one gateway. Its outbox outlives
// connections, but what it held when a connection dropped is handed on
// (see handOver): the next connection starts from the gateway's count.
type slink struct {
	s    *Service
	addr string
	out  outbox
	gwid string // the gateway's id, to tell a restarted gateway

	mu      sync.Mutex
	c       *conn
	h       uint64 // events received on this connection
	pending []pend
	proxies map[string]*proxy
	asm     assembler
	// view holds, per domain, the instances serving it as the gateway
	// last said (members), nil while it changes; vrev the revision of the
	// cluster membership of that view, if any. Only read and written with
	// s.procMu held.
	view map[string][]string
	vrev map[string]int64
	// arev is the revision the gateway last announced, switched to or
	// switching to: a gateway that announces a revision already routes
	// by it.
	arev map[string]int64
	// listed says the link was made for a gateway of the cluster
	// membership; unlisted that the membership no longer lists it: the
	// link then ends with its connection.
	listed   bool
	unlisted atomic.Bool
}

// pend is a received event whose acknowledgement waits for what it caused.
type pend struct {
	h      uint64
	deps   []dep
	writes *atomic.Int32 // see proc
}

// dep is an outbox position that must be acknowledged first.
type dep struct {
	l     *slink
	epoch uint64
	seq   uint64
}

func (l *slink) connected() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c != nil
}

func (l *slink) run(ctx context.Context) {
	log := l.s.log.With("gateway", l.addr)
	lastUp := time.Now()
	delay := l.s.cfg.RetryDelay
	warned := false
	for ctx.Err() == nil {
		linked, err := l.connect(ctx, log)
		if errors.Is(err, ErrRefused) {
			select {
			case l.s.fatal <- err:
			default:
			}
			return
		}
		if linked {
			lastUp = time.Now()
			delay = l.s.cfg.RetryDelay
			warned = false
		} else {
			l.s.settle(l) // unreachable: nothing to wait for
		}
		if ctx.Err() != nil {
			return
		}
		if l.unlisted.Load() {
			log.Info("gateway left the cluster: link ended")
			l.s.drop(l)
			return
		}
		// What the link carried was handed on when it dropped (see
		// connect); the gateway is tried again for as long as the service
		// runs, quietly after the first failure and after one warning.
		switch down := time.Since(lastUp); {
		case linked:
			log.Info("gateway link down, retrying", "err", err)
		case down > l.s.cfg.GatewayLoss && !warned:
			log.Warn("gateway unreachable, still retrying", "for", down.Round(time.Second).String(), "every", (2 * time.Second).String(), "err", err)
			warned = true
		default:
			log.Debug("gateway unreachable", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// connect runs one connection to the gateway until it drops.
func (l *slink) connect(ctx context.Context, log *slog.Logger) (bool, error) {
	s := l.s
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	raw, err := d.DialContext(dctx, "tcp", l.addr)
	cancel()
	if err != nil {
		return false, err
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	_ = raw.SetDeadline(time.Now().Add(15 * time.Second))
	nc, r, gwid, h, err := s.handshake(ctx, raw, l.addr)
	if err != nil {
		raw.Close()
		return false, err
	}
	_ = nc.SetDeadline(time.Time{})
	// A restarted gateway (another id) lost its clients; what it had not
	// acknowledged was handed on when its link dropped, as for any drop.
	l.gwid = gwid
	c := newConn(nc)
	if err := l.out.attach(c, h); err != nil {
		c.close(streamError("undefined-condition", err.Error()))
		return false, err
	}
	l.mu.Lock()
	l.c, l.h, l.pending, l.asm = c, 0, nil, assembler{}
	l.mu.Unlock()
	for _, b := range s.cfg.Bindings {
		var tlsEl *xmlstream.Element
		if len(b.CertPEM) > 0 && len(b.KeyPEM) > 0 {
			tlsEl = xmlstream.NewElement(NS, "tls")
			tlsEl.AddChild(xmlstream.NewElement(NS, "cert")).AddText(string(b.CertPEM))
			tlsEl.AddChild(xmlstream.NewElement(NS, "key")).AddText(string(b.KeyPEM))
		}
		c.enqueue(frame("bind", tlsEl, "id", b.Domain, "domain", b.Domain, "kind", b.Kind))
	}
	log.Info("gateway linked", "gateway_id", gwid, "resumed_from", h)
	l.s.deps.Metrics.LinkUp()
	err = l.readLoop(ctx, r)
	l.s.deps.Metrics.LinkDown()
	l.mu.Lock()
	l.c = nil
	l.pending = nil
	proxies := l.proxies
	l.proxies = map[string]*proxy{}
	l.mu.Unlock()
	items := l.out.detach()
	c.kill()
	// The gateway announces its sessions again on the next link.
	s.procMu.Lock()
	l.view = map[string][]string{}
	l.vrev = map[string]int64{}
	l.arev = map[string]int64{}
	s.viewCond.Broadcast()
	for _, px := range proxies {
		if b, ok := s.bound[px.full.Domain()]; ok {
			b.Component.(router.SessionManager).Unbind(ctx, px)
		}
	}
	if ctx.Err() == nil {
		// A gateway acknowledges a delivery once its client did: what is
		// unacknowledged now may never reach the client if the gateway is
		// dead, and its sessions are gone from here anyway. Messages go to
		// the users' other resources or offline storage, in order, before
		// anything that comes for them after; routes go to another gateway.
		l.out.reset()
		moved, routed, had := s.handOver(ctx, l, items)
		log.Warn("gateway link lost: its sessions ended here", "sessions", len(proxies), "messages_rerouted", moved, "routes_moved", routed, "messages_clients_had", had, "err", err)
	}
	s.procMu.Unlock()
	s.checkAcks()
	return true, err
}

// handOver hands on what a lost link to l had not acknowledged: messages
// delivered to its sessions back to their session managers for the
// addressees' bare JIDs, routes to another gateway (or to l again, once
// it is back). had counts the messages not handed on because their
// clients said they had them (see claim). s.procMu is held.
func (s *Service) handOver(ctx context.Context, l *slink, items []item) (moved, routed, had int) {
	var other *slink
	for _, x := range s.linkList() {
		if x != l && x.connected() {
			other = x
			break
		}
	}
	for _, it := range items {
		el, err := xmlstream.ParseStanza(it.data, NS)
		if err != nil {
			continue
		}
		switch el.Local {
		case "route":
			to := other
			if to == nil {
				to = l
			}
			to.out.sendAcked(it.data, it.user, it.acked)
			routed++
		case "deliver":
			p := payload(el)
			if p == nil || p.Local != stanza.Message || p.Attr("type") == "error" {
				continue
			}
			from, err1 := jid.Parse(p.Attr("from"))
			to, err2 := jid.Parse(p.Attr("to"))
			if err1 != nil || err2 != nil {
				continue
			}
			r, ok := s.sessionManager(to.Domain()).(router.Redeliverer)
			if !ok {
				continue
			}
			bare := to.Bare()
			c := ctx
			if it.rid != "" {
				// Its client may say, resuming elsewhere, that it had it.
				if cl, ok := s.claims.get(it.rid); ok && cl.bare == bare.String() && it.pos <= cl.h {
					had++
					continue // it said so already
				}
				ev := "handed:" + s.run + ":" + stanza.NewID()
				hs, ok := s.handed.get(it.rid)
				if !ok {
					hs = &handedSession{bare: bare.String()}
					s.handed.put(it.rid, hs)
				}
				hs.msgs = append(hs.msgs, handedMsg{pos: it.pos, event: ev})
				c = storage.WithEventID(ctx, ev)
			}
			p.SetAttr("to", bare.String())
			r.Redeliver(c, router.Stanza{El: p, From: from, To: bare})
			moved++
		}
	}
	return moved, routed, had
}

// handshake runs the client side of stream, STARTTLS, SASL and hello.
func (s *Service) handshake(ctx context.Context, raw net.Conn, addr string) (net.Conn, *reader, string, uint64, error) {
	nc := raw
	r := newReader(nc)
	host, _, _ := net.SplitHostPort(addr)
	open := func() (*xmlstream.Element, error) {
		if _, err := nc.Write(header(host, "", "")); err != nil {
			return nil, err
		}
		ev, err := r.next()
		if err != nil {
			return nil, err
		}
		if ev.Kind != xmlstream.EventStreamStart {
			return nil, errors.New("link: no stream header")
		}
		f, err := r.element()
		if err != nil {
			return nil, err
		}
		if f.Space != xmlstream.NSStream || f.Local != "features" {
			return nil, errors.New("link: no stream features")
		}
		return f, nil
	}
	f, err := open()
	if err != nil {
		return nil, nil, "", 0, err
	}
	if f.Child(stanza.NSTLS, "starttls") == nil {
		return nil, nil, "", 0, errors.New("link: the gateway offers no STARTTLS")
	}
	if _, err := nc.Write([]byte("<starttls xmlns='" + stanza.NSTLS + "'/>")); err != nil {
		return nil, nil, "", 0, err
	}
	el, err := r.element()
	if err != nil {
		return nil, nil, "", 0, err
	}
	if el.Local != "proceed" {
		return nil, nil, "", 0, errors.New("link: STARTTLS refused")
	}
	tc := s.cfg.TLS.Clone()
	if tc.RootCAs == nil {
		tc.InsecureSkipVerify = true
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	tlsConn := tls.Client(raw, tc)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		return nil, nil, "", 0, fmt.Errorf("link: tls: %w", err)
	}
	nc = tlsConn
	r.restart(nc)
	if f, err = open(); err != nil {
		return nil, nil, "", 0, err
	}
	mechs := map[string]bool{}
	if m := f.Child(stanza.NSSASL, "mechanisms"); m != nil {
		for _, c := range m.Children() {
			mechs[strings.TrimSpace(c.Text())] = true
		}
	}
	if err := s.sasl(r, nc, tlsConn, mechs); err != nil {
		return nil, nil, "", 0, err
	}
	r.restart(nc)
	if _, err = open(); err != nil {
		return nil, nil, "", 0, err
	}
	if _, err := nc.Write(frame("hello", nil, "xmlns", NS, "instance", s.cfg.Instance, "run", s.run)); err != nil {
		return nil, nil, "", 0, err
	}
	el, err = r.element()
	if err != nil {
		return nil, nil, "", 0, err
	}
	if el.Local != "hello" || el.Attr("gateway") == "" {
		return nil, nil, "", 0, errors.New("link: no hello from the gateway")
	}
	h, err := parseUint(el.Attr("h"))
	if err != nil {
		return nil, nil, "", 0, err
	}
	return nc, r, el.Attr("gateway"), h, nil
}

func (s *Service) sasl(r *reader, nc net.Conn, tc *tls.Conn, mechs map[string]bool) error {
	if s.cfg.External {
		if !mechs["EXTERNAL"] {
			return fmt.Errorf("%w: certificate not accepted (no EXTERNAL offered)", ErrRefused)
		}
		if _, err := nc.Write([]byte("<auth xmlns='" + stanza.NSSASL + "' mechanism='EXTERNAL'>=</auth>")); err != nil {
			return err
		}
		el, err := r.element()
		if err != nil {
			return err
		}
		if el.Local != "success" {
			return fmt.Errorf("%w: authentication failed", ErrRefused)
		}
		return nil
	}
	cl, err := scram.SHA256.NewClient(s.cfg.Username, s.cfg.Secret, "")
	if err != nil {
		return err
	}
	mech := "SCRAM-SHA-256"
	var conv *scram.ClientConversation
	st := tc.ConnectionState()
	if cb, err := scram.NewTLSExporterBinding(&st); err == nil && mechs["SCRAM-SHA-256-PLUS"] {
		mech += "-PLUS"
		conv = cl.NewConversationWithChannelBinding(cb)
	} else if mechs[mech] {
		conv = cl.NewConversation()
	} else {
		return fmt.Errorf("%w: no common SASL mechanism", ErrRefused)
	}
	out, err := conv.Step("")
	if err != nil {
		return err
	}
	if _, err := nc.Write([]byte("<auth xmlns='" + stanza.NSSASL + "' mechanism='" + mech + "'>" + base64.StdEncoding.EncodeToString([]byte(out)) + "</auth>")); err != nil {
		return err
	}
	for {
		el, err := r.element()
		if err != nil {
			return err
		}
		in, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text()))
		if derr != nil {
			return derr
		}
		switch el.Local {
		case "challenge":
			out, err := conv.Step(string(in))
			if err != nil {
				return err
			}
			if _, err := nc.Write([]byte("<response xmlns='" + stanza.NSSASL + "'>" + base64.StdEncoding.EncodeToString([]byte(out)) + "</response>")); err != nil {
				return err
			}
		case "success":
			if _, err := conv.Step(string(in)); err != nil || !conv.Valid() {
				return errors.New("link: the gateway did not prove the secret")
			}
			return nil
		default:
			return fmt.Errorf("%w: authentication failed", ErrRefused)
		}
	}
}

// eventQueue bounds the events of one link read but not processed yet.
// The reader takes frames off the connection ahead of processing so that
// requests (credential lookups, FAST) and acknowledgements are answered
// while a long run of events (a failover's session announcements) is being
// processed; past this many it stops reading, and the gateway's writes
// wait on the connection.
const eventQueue = 1 << 16

// readLoop reads the link's frames: requests and acknowledgements are
// handled as they come, events (and members, which keep their place among
// them) go in order to one processing goroutine.
func (l *slink) readLoop(ctx context.Context, r *reader) error {
	events := make(chan *xmlstream.Element, eventQueue)
	// stop ends the processing when the connection ends; the event being
	// processed then completes under ctx, as it did when read.
	stop, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop.Done():
				return
			case el := <-events:
				if err := l.process(ctx, stop, el); err != nil {
					cancel(err)
					r.nc.Close()
					return
				}
			}
		}
	}()
	err := l.readFrames(stop, r, events)
	// Events read but not processed go with the connection: not
	// acknowledged, the gateway sends them again.
	cancel(err)
	wg.Wait()
	if cause := context.Cause(stop); cause != nil && !errors.Is(cause, err) && !errors.Is(cause, context.Canceled) {
		return cause // the processing failed and closed the connection
	}
	return err
}

// readFrames reads until the connection fails, queueing events.
func (l *slink) readFrames(ctx context.Context, r *reader, events chan<- *xmlstream.Element) error {
	for {
		ev, err := r.next()
		if err != nil {
			return err
		}
		if ev.Kind != xmlstream.EventElement {
			continue
		}
		el, err := l.handle(ctx, ev.Elem)
		if err != nil {
			return err
		}
		if el == nil {
			continue
		}
		if el.Local == "sbind" && l.s.deps.Ahead != nil {
			if full, err := jid.Parse(el.Attr("jid")); err == nil && full.Local() != "" {
				l.s.deps.Ahead(full.BareString())
			}
		}
		select {
		case events <- el:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// handle takes one frame of the link as it is read: it returns the event
// (or members frame) to process in order, nil when the frame was handled.
func (l *slink) handle(ctx context.Context, el *xmlstream.Element) (*xmlstream.Element, error) {
	s := l.s
	if el.Space == nsSM {
		switch el.Local {
		case "a":
			h, err := parseUint(el.Attr("h"))
			if err != nil {
				return nil, err
			}
			if err := l.out.ack(h); err != nil {
				return nil, err
			}
			s.checkAcks()
		case "r":
			l.mu.Lock()
			c := l.c
			l.mu.Unlock()
			if c != nil {
				c.forceAck()
			}
		}
		return nil, nil
	}
	switch el.Local {
	case "at":
		n, err := parseUint(el.Attr("n"))
		if err != nil {
			return nil, err
		}
		pos, err := strconv.ParseUint(el.Attr("h"), 10, 32)
		if err != nil {
			return nil, err
		}
		l.out.place(n, el.Attr("id"), uint32(pos))
		return nil, nil
	case "done":
		h, err := parseUint(el.Attr("h"))
		if err != nil {
			return nil, err
		}
		if err := l.out.done(h); err != nil {
			return nil, err
		}
		s.checkAcks()
		return nil, nil
	case "result":
		if e := el.Attr("error"); e != "" {
			return nil, fmt.Errorf("%w: bind %s: %s", ErrRefused, el.Attr("id"), e)
		}
		s.log.Info("bound", "gateway", l.addr, "domain", el.Attr("id"))
		return nil, nil
	case "cred":
		go l.credential(ctx, el)
		return nil, nil
	case "fast":
		go l.fast(ctx, el)
		return nil, nil
	case "members":
		return el, nil
	case "chunk":
		whole, err := l.asm.add(el)
		if err != nil || whole == nil {
			return nil, err
		}
		el = whole
	}
	return el, nil
}

// process handles, in order, one event of the link or a members frame.
func (l *slink) process(ctx, stop context.Context, el *xmlstream.Element) error {
	s := l.s
	if el.Local == "members" {
		return l.members(el)
	}
	s.startGate(stop, l)
	if stop.Err() != nil {
		return nil // the connection ended while the event waited
	}
	s.procMu.Lock()
	before := s.positions()
	writes := new(atomic.Int32)
	s.process(ctx, l, el, writes)
	deps := s.changed(before)
	s.procMu.Unlock()
	l.mu.Lock()
	l.h++
	l.pending = append(l.pending, pend{h: l.h, deps: deps, writes: writes})
	l.mu.Unlock()
	s.checkAcks()
	return nil
}

// members takes note of the instances serving a domain as the gateway says.
func (l *slink) members(el *xmlstream.Element) error {
	s := l.s
	var ids []string
	for _, c := range el.Children() {
		if c.Local == "i" && c.Attr("id") != "" {
			ids = append(ids, c.Attr("id"))
		}
	}
	domain := el.Attr("domain")
	changing := el.Attr("changing") == "1"
	s.procMu.Lock()
	if r := el.Attr("rev"); r != "" {
		rev, err := strconv.ParseInt(r, 10, 64)
		if err != nil {
			s.procMu.Unlock()
			return fmt.Errorf("link: bad members revision %q", r)
		}
		if rev > s.maxRev[domain] || s.idsAt[domain] == nil {
			s.maxRev[domain], s.idsAt[domain] = rev, ids
		}
		l.arev[domain] = rev
		if !changing {
			l.vrev[domain] = rev
		}
	}
	if changing {
		ids = nil
	}
	l.view[domain] = ids
	s.viewCond.Broadcast()
	s.procMu.Unlock()
	if len(ids) > 0 {
		// The gateway announced its sessions before (sbind).
		s.settle(l)
	}
	return nil
}

// positions returns every outbox's epoch and last sequence number.
func (s *Service) positions() []dep {
	links := s.linkList()
	ds := make([]dep, len(links))
	for i, l := range links {
		ds[i] = dep{l: l, epoch: l.out.epoch()}
		ds[i].seq, _ = l.out.state()
	}
	return ds
}

// changed returns the outbox positions written since before.
func (s *Service) changed(before []dep) []dep {
	var out []dep
	for _, d := range s.positions() {
		i := slices.IndexFunc(before, func(b dep) bool { return b.l == d.l })
		if i < 0 || d.epoch != before[i].epoch || d.seq > before[i].seq {
			out = append(out, d)
		}
	}
	return out
}

// checkAcks acknowledges every received event whose consequences have all
// been acknowledged.
func (s *Service) checkAcks() {
	for _, l := range s.linkList() {
		l.mu.Lock()
		var h uint64
		for len(l.pending) > 0 {
			ok := l.pending[0].writes == nil || l.pending[0].writes.Load() == 0
			for _, d := range l.pending[0].deps {
				if d.l.out.epoch() == d.epoch {
					if _, acked := d.l.out.state(); acked < d.seq {
						ok = false
						break
					}
				}
			}
			if !ok {
				break
			}
			h = l.pending[0].h
			l.pending = l.pending[1:]
		}
		if h > 0 && l.c != nil {
			l.c.setAck(h)
		}
		l.mu.Unlock()
	}
}

// process runs one event; s.procMu is held.
func (s *Service) process(ctx context.Context, l *slink, el *xmlstream.Element, writes *atomic.Int32) {
	o := el.Attr("o")
	if el.Local == "to" {
		if via := s.place(l, el); via != nil {
			via.out.sendAcked(frame("reroute", payload(el), "o", o, "grant", el.Attr("grant"), "redeliver", el.Attr("redeliver")),
				"to:"+payload(el).Attr("to"), nil)
			return
		}
	}
	if o != "" && s.seen.seen(o+"@"+el.Local) {
		return
	}
	p := &proc{o: o, again: el.Attr("again") == "1", l: l, writes: writes}
	s.cur.Store(p)
	defer s.cur.Store(nil)
	ctx = procContext(ctx, p)
	pl := payload(el)
	switch el.Local {
	case "sbind":
		full, err := jid.Parse(el.Attr("jid"))
		sid := el.Attr("sid")
		if err != nil || full.Resource() == "" || sid == "" {
			return
		}
		sm := s.sessionManager(full.Domain())
		if sm == nil {
			return
		}
		l.mu.Lock()
		_, dup := l.proxies[sid]
		px := &proxy{l: l, sid: sid, full: full}
		if !dup {
			l.proxies[sid] = px
		}
		l.mu.Unlock()
		if dup {
			return
		}
		if rid := el.Attr("id"); rid != "" {
			if h, err := strconv.ParseUint(el.Attr("h"), 10, 32); err == nil {
				s.claim(ctx, full.Bare(), rid, uint32(h))
			}
		}
		if err := sm.Bind(ctx, px); err != nil {
			s.log.Warn("bind", "jid", full.String(), "err", err)
			return
		}
		if fr, ok := sm.(router.SessionRestorer); ok {
			fr.RestoreSession(px, router.SessionFlags{
				Carbons: el.Attr("carbons") == "1", Interested: el.Attr("interested") == "1", BlockPushes: el.Attr("blocklist") == "1",
			})
		}
		if pl != nil {
			pl.SetAttr("from", full.String())
			sm.HandleFromSession(ctx, px, router.Stanza{El: pl, From: full})
		}
	case "lost":
		user, err := jid.Parse(el.Attr("jid"))
		h, err2 := strconv.ParseUint(el.Attr("h"), 10, 32)
		if err != nil || err2 != nil || user.Local() == "" || el.Attr("id") == "" {
			return
		}
		s.claim(ctx, user.Bare(), el.Attr("id"), uint32(h))
	case "sunbind":
		l.mu.Lock()
		px := l.proxies[el.Attr("sid")]
		delete(l.proxies, el.Attr("sid"))
		l.mu.Unlock()
		if px != nil {
			if sm := s.sessionManager(px.full.Domain()); sm != nil {
				sm.Unbind(ctx, px)
			}
		}
	case "from":
		l.mu.Lock()
		px := l.proxies[el.Attr("sid")]
		l.mu.Unlock()
		if px == nil || pl == nil {
			return
		}
		st := router.Stanza{El: pl, From: px.full}
		if t := pl.Attr("to"); t != "" {
			to, err := jid.Parse(t)
			if err != nil {
				return
			}
			st.To = to
		}
		pl.SetAttr("from", px.full.String())
		if sm := s.sessionManager(px.full.Domain()); sm != nil {
			sm.HandleFromSession(ctx, px, st)
		}
	case "to":
		if pl == nil {
			return
		}
		var st router.Stanza
		var err error
		st.El = pl
		if st.From, err = jid.Parse(pl.Attr("from")); err != nil {
			return
		}
		if st.To, err = jid.Parse(pl.Attr("to")); err != nil {
			return
		}
		b, ok := s.bound[st.To.Domain()]
		if !ok {
			return
		}
		if g := el.Attr("grant"); g != "" {
			// The gateway vouches for the sender's privileges as its edge
			// did; a grant it cannot read is no grant.
			st.Grant = new(privilege.Grant)
			if err := st.Grant.UnmarshalText([]byte(g)); err != nil {
				s.log.Warn("bad grant from the gateway", "grant", g, "err", err)
				st.Grant = nil
			}
		}
		if rd, ok := b.Component.(router.Redeliverer); ok && el.Attr("redeliver") == "1" {
			rd.Redeliver(ctx, st)
			return
		}
		if b.Kind == "sm" && st.To.Local() != "" {
			s.want(st.To.Domain(), st.To.BareString())
		}
		b.Component.HandleStanza(ctx, st)
	}
}

// want asks, while sessions move to new owners, every gateway to announce
// at once the sessions of bare it has still to announce: a stanza for a
// user whose session on another gateway is still to move finds the user
// offline here (a message is stored, and delivered when the session
// arrives), and that session should not wait for the others. s.procMu is
// held.
func (s *Service) want(domain, bare string) {
	links := s.linkList()
	moving := false
	for _, l := range links {
		if l.connected() && l.view[domain] == nil {
			moving = true
			break
		}
	}
	if !moving {
		return
	}
	b := frame("want", nil, "jid", bare)
	for _, l := range links {
		l.mu.Lock()
		c := l.c
		l.mu.Unlock()
		if c != nil {
			c.enqueueUrgent(b)
		}
	}
}

// place decides, under a cluster membership, where a <to/> event of l
// for a user (or room) of a stateful domain is handled. A gateway on an
// older view than another gateway announced may have sent it to the
// user's former owner: if the newer view gives the user to another
// instance, place returns the link to hand it back through (reroute): a
// gateway on the newer view; with none linked, it is handled here, where
// the older gateway's sessions of the user still are. A gateway on the newest view
// sent it to the user's owner under that view: it is handled once every
// other gateway has switched to that view too, and so announced to this
// instance the sessions of the user it holds (or after ViewWait, once
// per revision: a gateway cut from etcd must not hold every stanza up).
// nil: handle it here. s.procMu is held; it is released while waiting.
func (s *Service) place(l *slink, el *xmlstream.Element) *slink {
	p := payload(el)
	if p == nil {
		return nil
	}
	to, err := jid.Parse(p.Attr("to"))
	if err != nil || to.Local() == "" {
		return nil
	}
	domain := to.Domain()
	b, ok := s.bound[domain]
	if !ok || !router.Stateful(b.Kind) {
		return nil
	}
	key := to.BareString()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	timedOut := false
	for {
		r, ok := l.vrev[domain]
		if !ok {
			return nil // no cluster membership
		}
		m := s.maxRev[domain]
		if r < m {
			ids := s.idsAt[domain]
			if len(ids) == 0 || ids[router.Owner(key, ids)] == s.cfg.Instance {
				return nil
			}
			for _, x := range s.linkList() {
				if x != l && x.connected() && x.arev[domain] >= m {
					return x
				}
			}
			// The gateway that announced the newer view is gone; handed
			// back to l, it would come straight back. The sessions l
			// holds are here.
			return nil
		}
		if timedOut || s.waited[domain] >= m {
			return nil
		}
		behind := false
		for _, x := range s.linkList() {
			if x.connected() && x.vrev[domain] < m {
				behind = true
				break
			}
		}
		if !behind {
			return nil
		}
		if timer == nil {
			timer = time.AfterFunc(s.cfg.ViewWait, func() {
				s.procMu.Lock()
				timedOut = true
				s.viewCond.Broadcast()
				s.procMu.Unlock()
			})
		}
		s.viewCond.Wait()
		if timedOut {
			s.waited[domain] = m
			s.log.Warn("a gateway is still on an older cluster membership: going on without it", "domain", domain, "revision", m)
		}
	}
}

// claim takes note that the client of the session rid, of user bare,
// had the first h stanzas of it (it said so in a resumption that failed,
// its gateway being gone), or that its gateway still holds them (the
// session announced again after a link dropped). The messages handed on
// from it that h covers are withdrawn from offline storage; those not
// handed on yet will not be. s.procMu is held.
func (s *Service) claim(ctx context.Context, bare jid.JID, rid string, h uint32) {
	hs, ok := s.handed.get(rid)
	if !ok {
		s.log.Debug("count noted for a session not handed on", "user", bare.String(), "h", h)
		s.claims.put(rid, claimed{bare: bare.String(), h: h})
		return
	}
	if hs.bare != bare.String() {
		return // not that user's session
	}
	s.log.Debug("count for a session handed on", "user", bare.String(), "h", h, "handed", len(hs.msgs))
	var evs []string
	kept := hs.msgs[:0]
	for _, m := range hs.msgs {
		if m.pos <= h {
			evs = append(evs, m.event)
		} else {
			kept = append(kept, m)
		}
	}
	hs.msgs = kept
	if len(evs) == 0 {
		return
	}
	w, ok := s.sessionManager(bare.Domain()).(router.Withdrawer)
	if !ok {
		return
	}
	n := w.WithdrawOffline(ctx, bare, evs)
	s.log.Info("messages its client had withdrawn from offline storage", "user", bare.String(), "withdrawn", n, "claimed", len(evs))
}

func (s *Service) sessionManager(domain string) router.SessionManager {
	b, ok := s.bound[domain]
	if !ok {
		return nil
	}
	sm, _ := b.Component.(router.SessionManager)
	return sm
}

// credential answers a gateway's credential lookup.
func (l *slink) credential(ctx context.Context, el *xmlstream.Element) {
	id, user, hash := el.Attr("id"), el.Attr("user"), el.Attr("hash")
	var b []byte
	u, err := jid.Parse(user)
	if err != nil || u.Local() == "" || u.Resource() != "" {
		b = frame("cred-result", nil, "id", id, "error", stanza.ItemNotFound)
	} else if _, ok := l.s.bound[u.Domain()]; !ok {
		b = frame("cred-result", nil, "id", id, "error", stanza.ItemNotFound)
	} else {
		c, err := l.s.deps.Credentials.Credential(ctx, u.String(), hash)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			b = frame("cred-result", nil, "id", id, "error", stanza.ItemNotFound, "see-other-host", l.s.cfg.SeeOtherHost)
		case err != nil:
			l.s.log.Warn("credential lookup", "user", user, "err", err)
			b = frame("cred-result", nil, "id", id, "error", stanza.InternalServerError)
		default:
			enc := base64.StdEncoding.EncodeToString
			b = frame("cred-result", nil, "id", id, "hash", c.Hash, "iterations", strconv.Itoa(c.Iterations),
				"salt", enc(c.Salt), "stored-key", enc(c.StoredKey), "server-key", enc(c.ServerKey))
		}
	}
	l.mu.Lock()
	c := l.c
	l.mu.Unlock()
	if c != nil {
		c.enqueueUrgent(b)
	}
}

// proxy is a client session held by a gateway, as the service's session
// manager sees it.
type proxy struct {
	l    *slink
	sid  string
	full jid.JID
}

var _ router.Session = (*proxy)(nil)

// JID implements router.Session.
func (p *proxy) JID() jid.JID { return p.full }

// Deliver implements router.Session: the stanza goes to the gateway that
// holds the client, tagged with the event that caused it so that the
// gateway can drop it if a restarted service delivers it again.
func (p *proxy) Deliver(el *xmlstream.Element) {
	o, k := "", ""
	if c := p.l.s.cur.Load(); c != nil && c.o != "" {
		o, k = c.o, strconv.Itoa(c.next(p))
	}
	p.l.out.send(frame("deliver", el, "sid", p.sid, "o", o, "k", k), p.sid)
}

// DeliverFor implements router.EventSession: a message stored offline for
// event goes out as the first delivery of that event to the session. An
// instance that delivered it to this session before dying made the same
// delivery (the message is the first thing a message event delivers to
// an addressee's session), so the gateway, which drops a delivery it has
// made, does not give it twice; a message sent again after that
// instance died finds the user's session not moved yet, goes offline,
// and comes out here.
func (p *proxy) DeliverFor(el *xmlstream.Element, event string) {
	p.l.out.send(frame("deliver", el, "sid", p.sid, "o", event, "k", "1"), p.sid)
}

// Close implements router.Session.
func (p *proxy) Close(condition string) {
	p.l.out.send(frame("close", nil, "sid", p.sid, "condition", condition), p.sid)
}
