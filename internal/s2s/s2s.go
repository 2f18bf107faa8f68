package s2s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
	"github.com/ambrosia-xmpp/ambrosia/internal/listen"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Config is the federation service's configuration.
type Config struct {
	// Addr is the listener with STARTTLS, host:port; empty disables it.
	Addr string
	// TLSAddr is the direct TLS listener (XEP-0368); empty disables it.
	TLSAddr string
	// Domains are the local domains, in order; the first certificate is
	// the fallback for a peer that names none.
	Domains []string
	// Certs are the certificates of the local domains, presented to peers
	// as servers and as clients.
	Certs map[string]tls.Certificate
	// Store, when set, provides the certificates at every handshake
	// instead of Certs, so that certificates reloaded or renewed reach the
	// streams opened afterwards (Certs still names the domains that must
	// have one).
	Store *certs.Store
	// Roots validate peer certificates; nil means the system's.
	Roots *x509.CertPool
	// Secret keys the dialback keys; it must stay the same across
	// restarts while keys are in flight, so it is kept on disk.
	Secret []byte
	// ConnectTimeout bounds everything from the DNS lookup to an
	// authenticated outgoing stream, and an incoming stream's negotiation.
	ConnectTimeout time.Duration
	// IdleTimeout closes an outgoing stream nothing was sent on for that
	// long.
	IdleTimeout time.Duration
	// Hosts maps a remote domain to host:port (tls://host:port for direct
	// TLS), bypassing DNS.
	Hosts map[string]string
	// Resolver finds remote servers; nil means DNS from /etc/resolv.conf.
	Resolver Resolver
	// Limits bound what one incoming stream may send.
	Limits xmlstream.Limits
	// MaxQueued bounds the stanzas waiting for one outgoing stream.
	MaxQueued int
	// ReadRate shapes what one stream may send us; the zero Rate shapes
	// nothing. Peers in ReadRateExempt are not shaped.
	ReadRate       limit.Rate
	ReadRateExempt limit.Nets
}

// Defaults for the zero values of Config.
const (
	DefaultConnectTimeout = 30 * time.Second
	DefaultIdleTimeout    = 10 * time.Minute
	defaultMaxQueued      = 10000
)

// Deps are the services federation uses.
type Deps struct {
	Router *router.Router
	Log    *slog.Logger
	// Metrics receives events for monitoring; nil records nothing.
	Metrics Metrics
	// Conns admits incoming streams (caps per address and on those not
	// authenticated yet); nil admits all.
	Conns *limit.Conns
}

// Service is the federation edge: incoming listeners and outgoing streams.
type Service struct {
	cfg       Config
	router    *router.Router
	log       *slog.Logger
	metrics   Metrics
	conns     *limit.Conns
	refusals  refusalLog
	serverTLS *tls.Config
	// ctx outlives any one sender: outgoing streams and dialback checks
	// run in it, and Shutdown cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	// ins tracks the listeners and incoming streams; its goroutines and
	// shutdown flag cover the outgoing streams too.
	ins listen.Group[*inStream]

	mu  sync.Mutex
	out map[pair]*outStream

	// hosts is cfg.Hosts, replaced by SetHosts.
	hosts atomic.Pointer[map[string]string]
}

// SetHosts replaces the fixed addresses of remote domains (Config.Hosts),
// as a reload of the configuration does: streams opened from then on use
// them; those open stay. The service keeps hosts: the caller gives it
// up.
func (s *Service) SetHosts(hosts map[string]string) {
	s.hosts.Store(&hosts)
}

// pair is an ordered (local, remote) or (remote, local) domain pair.
type pair struct{ local, remote string }

var _ router.Component = (*Service)(nil)

// New validates cfg and returns a Service.
func New(cfg Config, d Deps) (*Service, error) {
	if d.Router == nil || d.Log == nil {
		return nil, errors.New("s2s: router and logger are required")
	}
	if len(cfg.Domains) == 0 {
		return nil, errors.New("s2s: no local domain")
	}
	for _, dom := range cfg.Domains {
		if _, ok := cfg.Certs[dom]; !ok {
			return nil, fmt.Errorf("s2s: no certificate for %s", dom)
		}
	}
	if len(cfg.Secret) < 16 {
		return nil, errors.New("s2s: the dialback secret must have at least 16 bytes")
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = defaultMaxQueued
	}
	if cfg.Limits.MaxStanzaBytes == 0 {
		cfg.Limits = xmlstream.DefaultLimits()
	}
	if cfg.Resolver == nil {
		r, err := NewDNSResolver("/etc/resolv.conf")
		if err != nil {
			return nil, err
		}
		cfg.Resolver = r
	}
	st := certs.Config(cfg.Certs, cfg.Domains)
	if cfg.Store != nil {
		st = cfg.Store.Config()
	}
	// Peer certificates are checked by hand against the domain the peer
	// claims, which the TLS handshake does not know yet; a peer without a
	// valid one can still use dialback.
	st.ClientAuth = tls.RequestClientCert
	if d.Metrics == nil {
		d.Metrics = noMetrics{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc := &Service{
		metrics:   d.Metrics,
		conns:     d.Conns,
		ctx:       ctx,
		cancel:    cancel,
		cfg:       cfg,
		router:    d.Router,
		log:       d.Log.With("component", "s2s"),
		serverTLS: st,
		out:       make(map[pair]*outStream),
	}
	svc.SetHosts(cfg.Hosts)
	return svc, nil
}

// Run listens on the configured addresses and serves until ctx is done,
// then closes every stream and returns once all are gone.
func (s *Service) Run(ctx context.Context) error {
	var ls []net.Listener
	for _, a := range []struct {
		addr   string
		direct bool
	}{{s.cfg.Addr, false}, {s.cfg.TLSAddr, true}} {
		if a.addr == "" {
			continue
		}
		l, err := net.Listen("tcp", a.addr)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return fmt.Errorf("s2s: listen %s: %w", a.addr, err)
		}
		s.log.Info("listening", "addr", l.Addr().String(), "direct_tls", a.direct)
		ls = append(ls, l)
		direct := a.direct
		if !s.ins.Go(func() { s.Serve(ctx, l, direct) }) {
			l.Close()
		}
	}
	<-ctx.Done()
	s.Shutdown()
	return nil
}

// Serve accepts incoming streams from l until ctx is done or Shutdown is
// called; directTLS says the listener speaks TLS from the first byte.
func (s *Service) Serve(ctx context.Context, l net.Listener, directTLS bool) {
	s.ins.Serve(ctx, l, s.log,
		func(nc net.Conn) *inStream { return newInStream(s, nc) },
		func(in *inStream) {
			if in.refused != "" {
				in.refuse()
				return
			}
			in.serve(s.ctx, directTLS)
		})
}

// Shutdown closes the listeners and every stream with system-shutdown,
// bounces what waits in outgoing queues, and waits for every goroutine.
func (s *Service) Shutdown() {
	// Stopping the group first makes send refuse new outgoing streams, so
	// the snapshot below holds every one that will ever start.
	ins := s.ins.Stop()
	s.mu.Lock()
	var outs []*outStream
	for _, o := range s.out {
		outs = append(outs, o)
	}
	s.mu.Unlock()
	s.cancel()
	for _, in := range ins {
		in.close("system-shutdown")
	}
	for _, o := range outs {
		o.stop()
	}
	s.ins.Wait()
}

// HandleStanza implements router.Component: s goes to a remote domain over
// the outgoing stream of its (from, to) domain pair.
func (s *Service) HandleStanza(ctx context.Context, st router.Stanza) {
	s.send(ctx, queued{st: st})
}

// send queues q on the outgoing stream of its domain pair, starting the
// stream if needed.
func (s *Service) send(ctx context.Context, q queued) {
	st := q.st
	local, remote := st.From.Domain(), st.To.Domain()
	if remote == "" {
		return
	}
	if !s.isLocal(local) {
		// Only the served domains federate; anything else would be
		// relaying for strangers.
		s.log.Debug("not federating a stanza from a foreign domain", "from", local, "to", remote)
		return
	}
	if s.isLocal(remote) {
		s.router.Bounce(ctx, st, stanza.ItemNotFound, "")
		return
	}
	for {
		s.mu.Lock()
		k := pair{local, remote}
		o := s.out[k]
		if o == nil {
			o = newOutStream(s, k)
			// Go refuses once Shutdown has begun; it checks under s.mu so
			// that Shutdown's snapshot of s.out misses no stream.
			if !s.ins.Go(func() { o.run(s.ctx) }) {
				o = nil
			} else {
				s.out[k] = o
			}
		}
		s.mu.Unlock()
		if o == nil || s.ins.Stopped() {
			s.router.Bounce(ctx, st, stanza.RemoteServerNotFound, "The server is shutting down.")
			return
		}
		switch o.enqueue(q) {
		case enqueued:
			return
		case queueFull:
			s.router.Bounce(ctx, st, stanza.ResourceConstraint, "Too many stanzas wait for this server.")
			return
		}
		// The stream is ending: take the next one.
	}
}

// forget removes o from the outgoing streams if it is still there.
func (s *Service) forget(o *outStream) {
	s.mu.Lock()
	if s.out[o.key] == o {
		delete(s.out, o.key)
	}
	s.mu.Unlock()
}

// isLocal reports whether this server serves domain.
func (s *Service) isLocal(domain string) bool {
	return s.router.Serves(domain)
}

// cert returns the certificate to present for the local domain: the
// one a peer asking for it by name gets, that is, the domain's own, else
// that of the nearest parent domain (conference.example.org, a service of
// example.org, presents example.org's), else the first domain's.
func (s *Service) cert(domain string) *tls.Certificate {
	c, err := s.serverTLS.GetCertificate(&tls.ClientHelloInfo{ServerName: domain})
	if err != nil {
		// New made sure the first domain has one.
		c := s.cfg.Certs[s.cfg.Domains[0]]
		return &c
	}
	return c
}

// validFor reports whether chain is a certificate valid for domain.
func (s *Service) validFor(chain []*x509.Certificate, domain string) bool {
	if len(chain) == 0 {
		return false
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		DNSName:       domain,
		Roots:         s.cfg.Roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err == nil
}

// Stream describes a server-to-server stream, for the admin API.
type Stream struct {
	Local, Remote string
	Incoming      bool
	// Auth is MethodSASLExternal or MethodDialback; "" for an outgoing
	// stream still coming up.
	Auth string
}

// Streams lists the streams: each outgoing one, and each (local, remote)
// pair an incoming one authenticated.
func (s *Service) Streams() []Stream {
	var out []Stream
	s.mu.Lock()
	for k, o := range s.out {
		o.mu.Lock()
		out = append(out, Stream{Local: k.local, Remote: k.remote, Auth: o.method})
		o.mu.Unlock()
	}
	s.mu.Unlock()
	s.ins.Each(func(in *inStream) {
		in.mu.Lock()
		for p, method := range in.authed {
			out = append(out, Stream{Local: p.local, Remote: p.remote, Incoming: true, Auth: method})
		}
		in.mu.Unlock()
	})
	return out
}

// Outgoing lists the (local, remote) pairs with an outgoing stream, up or
// coming up, for tests and diagnostics.
func (s *Service) Outgoing() [][2]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][2]string
	for k := range s.out {
		out = append(out, [2]string{k.local, k.remote})
	}
	return out
}
