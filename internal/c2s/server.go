package c2s

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
	"github.com/ambrosia-xmpp/ambrosia/internal/listen"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Config is the client edge's configuration.
type Config struct {
	// Addr is the STARTTLS listener ("" disables it).
	Addr string
	// TLSAddr is the direct TLS listener of XEP-0368 ("" disables it).
	TLSAddr string
	// AllowPlain lets clients authenticate without TLS (for benchmarks and
	// private networks). SCRAM then runs without channel binding.
	AllowPlain bool
	// AllowRegistration lets clients create accounts before logging in
	// (XEP-0077): one per connection. Off by default, as on other servers:
	// open registration attracts spammers.
	AllowRegistration bool
	// Limits bound what one connection may send.
	Limits xmlstream.Limits
	// PreAuthMaxStanzaBytes is the largest element accepted before the
	// client authenticates (SASL exchanges and registration forms are
	// small); 0 uses Limits.MaxStanzaBytes.
	PreAuthMaxStanzaBytes int
	// NegotiationTimeout bounds the time from connect to a bound resource.
	NegotiationTimeout time.Duration
	// AuthTimeout bounds the time from connect to a successful
	// authentication, so that silent connections without an account are
	// closed early; 0 uses NegotiationTimeout.
	AuthTimeout time.Duration
	// TLSHandshakeTimeout bounds a TLS handshake (direct TLS or
	// STARTTLS); 0 leaves it to AuthTimeout.
	TLSHandshakeTimeout time.Duration
	// IdleTimeout is how long a session may stay silent before the server
	// pings it; a ping left unanswered for PingTimeout closes it.
	IdleTimeout time.Duration
	// PingTimeout is how long an idle ping may stay unanswered.
	PingTimeout time.Duration
	// WriteTimeout bounds one write to a client that does not read.
	WriteTimeout time.Duration
	// ReadRate shapes what one client connection may send; the zero Rate
	// shapes nothing. Connections from exempt networks are not shaped.
	ReadRate limit.Rate
	// MaxSessionsPerAccount bounds the resources one account may bind at
	// once on this server; 0 is no bound.
	MaxSessionsPerAccount int
	// MaxAuthFailures closes the stream after that many failed attempts.
	MaxAuthFailures int
	// MaxQueuedBytes closes a session whose unsent output grows past it.
	MaxQueuedBytes int
	// ResumeTimeout is how long a session whose connection dropped waits
	// for a Stream Management resumption (XEP-0198); 0 offers none.
	ResumeTimeout time.Duration
	// SMMaxQueue bounds the stanzas kept for a session until the client
	// acknowledges them; more end the session with policy-violation.
	SMMaxQueue int
	// DisablePoller keeps a goroutine per connection for the whole session
	// instead of handing idle sessions to epoll (always so off Linux).
	DisablePoller bool
}

// DefaultConfig returns the defaults an operator of another XMPP server
// would expect.
func DefaultConfig() Config {
	return Config{
		Addr:               ":5222",
		TLSAddr:            ":5223",
		Limits:             xmlstream.DefaultLimits(),
		NegotiationTimeout: 30 * time.Second,
		// ejabberd and Prosody give 30 s to 5 min; a silent connection
		// without an account deserves less, and a real client on a slow
		// mobile network still makes it in 10 s.
		AuthTimeout:           10 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		PreAuthMaxStanzaBytes: 16 << 10,
		IdleTimeout:           5 * time.Minute,
		PingTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		MaxAuthFailures:       3,
		MaxQueuedBytes:        4 << 20,
		ResumeTimeout:         5 * time.Minute,
		SMMaxQueue:            1000,
	}
}

// Deps are the services the client edge uses.
type Deps struct {
	Router *router.Router
	Auth   *auth.Authenticator
	// TLS holds the certificates of the served domains.
	TLS *tls.Config
	// Accounts creates accounts for in-band registration; nil disables it.
	Accounts AccountCreator
	Log      *slog.Logger

	// Invites holds the invitations (XEP-0401, XEP-0445) that let a
	// connection register although registration is closed; nil accepts
	// none.
	Invites storage.Invites
	// Befriend makes an invitee and the user who invited it contacts
	// subscribed both ways (XEP-0379); nil leaves rosters alone.
	Befriend func(ctx context.Context, user, inviter jid.JID) error

	// Tokens keeps FAST tokens (XEP-0484); nil offers no FAST.
	Tokens storage.FastTokens
	// Metrics receives events for monitoring; nil records nothing.
	Metrics Metrics
	// Conns admits connections (caps per address and on unauthenticated
	// ones); nil admits all.
	Conns *limit.Conns
	// Failures counts failed logins across connections; nil leaves only
	// the per-connection MaxAuthFailures.
	Failures *limit.Failures
	// InviteFailures counts the invalid invitation tokens (XEP-0401,
	// XEP-0445) of each address, as Failures counts failed logins; nil
	// leaves tokens unlimited.
	InviteFailures *limit.Failures
	// Registrations counts in-band registrations per address; nil
	// allows any number (one per connection still).
	Registrations *limit.Events
}

// Server accepts and serves client connections.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	readPool  sync.Pool // *[]byte of readBufSize
	writePool sync.Pool // *[]byte, small, grown as needed
	flusher   flusher   // writes the bulk deliveries (out.go)

	// conns tracks each connection until c.finish, not just while its
	// goroutine runs: an idle session lives on in the poller.
	conns listen.Group[*conn]

	smu      sync.Mutex
	sessions map[string]*session // resumable sessions by resumption id

	listening atomic.Bool // Run's listeners are open and not shut down
	live      atomic.Pointer[LiveLimits]
	refusals  refusalLog
	accounts  accountSessions

	pollOnce   sync.Once
	poller     *poller // nil when sessions keep their goroutine
	pollCtx    context.Context
	pollCancel context.CancelFunc
	pollWG     sync.WaitGroup
}

// readBufSize holds a whole TLS record's plaintext, so that one read drains
// what crypto/tls decrypted.
const readBufSize = 16<<10 + 512

// New validates cfg and returns a Server.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Router == nil || d.Auth == nil || d.Log == nil {
		return nil, errors.New("c2s: router, authenticator and logger are required")
	}
	if d.TLS == nil && !cfg.AllowPlain {
		return nil, errors.New("c2s: TLS certificates are required unless plain connections are allowed")
	}
	if cfg.Limits.MaxStanzaBytes == 0 {
		cfg.Limits = xmlstream.DefaultLimits()
	}
	if cfg.SMMaxQueue <= 0 {
		cfg.SMMaxQueue = DefaultConfig().SMMaxQueue
	}
	s := &Server{cfg: cfg, deps: d, log: d.Log.With("component", "c2s"), sessions: make(map[string]*session)}
	s.SetLimits(LiveLimits{ReadRate: cfg.ReadRate, MaxSessionsPerAccount: cfg.MaxSessionsPerAccount, AuthTimeout: cfg.AuthTimeout,
		TLSHandshakeTimeout: cfg.TLSHandshakeTimeout, PreAuthMaxStanzaBytes: cfg.PreAuthMaxStanzaBytes,
		MaxQueuedBytes: cfg.MaxQueuedBytes, SMMaxQueue: cfg.SMMaxQueue})
	s.pollCtx, s.pollCancel = context.WithCancel(context.Background())
	s.readPool.New = func() any { b := make([]byte, readBufSize); return &b }
	s.writePool.New = func() any { b := make([]byte, 0, 2048); return &b }
	return s, nil
}

// Run listens on the configured addresses and serves until ctx is done,
// then closes every stream with system-shutdown and returns once all
// connections are gone.
func (s *Server) Run(ctx context.Context) error {
	listenOn := func(addr string, direct bool) error {
		if addr == "" {
			return nil
		}
		l, err := listenClients(ctx, addr)
		if err != nil {
			return fmt.Errorf("c2s: listen %s: %w", addr, err)
		}
		s.log.Info("listening", "addr", l.Addr().String(), "direct_tls", direct)
		if !s.conns.Go(func() { s.Serve(ctx, l, direct) }) {
			l.Close()
		}
		return nil
	}
	err := listenOn(s.cfg.Addr, false)
	if err == nil && s.cfg.TLSAddr != "" && s.deps.TLS != nil {
		err = listenOn(s.cfg.TLSAddr, true)
	}
	if err == nil {
		s.listening.Store(true)
		<-ctx.Done()
	}
	s.Shutdown()
	return err
}

// listenClients listens for client connections. TCP keepalive is on for
// them with the system's timers (on Linux, probes after two hours of
// silence), as Prosody's tcp_keepalives, not Go's default of a probe
// every 15 seconds: the server's own ping after IdleTimeout finds a
// silent client, a mobile client's radio is not woken four times a
// minute, and an accepted connection costs one setsockopt instead of four.
func listenClients(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}}
	return lc.Listen(ctx, "tcp", addr)
}

// Shutdown closes every stream with system-shutdown, refuses new ones and
// waits until every connection is gone; then it ends the sessions waiting
// for a resumption, whose unacknowledged messages go to offline storage.
// Listeners passed to Serve are closed too.
func (s *Server) Shutdown() {
	// No poller starts after this: a Serve that has not started one yet
	// (its goroutine may not have run) finds it done, and one starting
	// it now finishes first, so that s.poller is read after it is set.
	s.pollOnce.Do(func() {})
	s.listening.Store(false)
	s.conns.Shutdown(func(c *conn) { c.Close("system-shutdown") })
	s.endDetached()
	s.pollCancel()
	if s.poller != nil {
		s.poller.stop()
	}
	s.pollWG.Wait()
	if s.poller != nil {
		s.poller.close()
	}
}

// Serve serves connections accepted from l until ctx is done or Shutdown
// is called; direct selects direct TLS. It is Run's building block and lets
// tests pass a listener.
func (s *Server) Serve(ctx context.Context, l net.Listener, direct bool) {
	s.startPoller()
	s.conns.ServeDetached(ctx, l, s.log,
		func(nc net.Conn) *conn { return newConn(s, nc) },
		func(c *conn) {
			if c.refused != "" {
				c.refuse(direct)
				return
			}
			c.serve(ctx, direct)
		})
}

// startPoller starts the poller once, before the first connection.
func (s *Server) startPoller() {
	s.pollOnce.Do(func() {
		if s.cfg.DisablePoller {
			return
		}
		p, err := newPoller()
		if err != nil {
			s.log.Info("no poller: one goroutine per session", "err", err)
			return
		}
		s.poller = p
		s.pollWG.Add(1)
		go func() {
			defer s.pollWG.Done()
			p.run(s.pollCtx, s)
		}()
	})
}

// Ready reports whether Run's listeners are open, for readiness checks.
func (s *Server) Ready(context.Context) error {
	if !s.listening.Load() {
		return errors.New("client listeners not open")
	}
	return nil
}

// ConnCount reports the number of open client connections.
func (s *Server) ConnCount() int {
	return s.conns.Len()
}
