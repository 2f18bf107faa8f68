package component

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
	"github.com/ambrosia-xmpp/ambrosia/internal/listen"
	"github.com/ambrosia-xmpp/ambrosia/internal/privilege"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// External is one component allowed to connect.
type External struct {
	// Domain is the domain the component serves.
	Domain string
	// Secret is the shared secret of the handshake.
	Secret string
	// Privileges is what the component may do for the users of every
	// domain a session manager serves (XEP-0356); the zero Grant, the
	// default, allows nothing and announces nothing.
	Privileges privilege.Grant
}

// Config is the component listener's configuration.
type Config struct {
	// Addr is the listener, host:port.
	Addr string
	// Components are the components that may connect.
	Components []External
	// Limits bound what one connection may send.
	Limits xmlstream.Limits
	// HandshakeTimeout bounds the time from connect to a completed
	// handshake.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one write to a component that does not read.
	WriteTimeout time.Duration
	// MaxQueued and MaxQueuedBytes bound the stanzas waiting to be written
	// to one component; past either the component is closed with
	// policy-violation.
	MaxQueued      int
	MaxQueuedBytes int
	// CloseGrace is how long a closed stream waits for the component's own
	// stream end before the socket is closed.
	CloseGrace time.Duration
	// ReadRate shapes what one component may send; the zero Rate shapes
	// nothing (the default: components are the operator's own).
	ReadRate limit.Rate
}

// DefaultConfig returns the defaults: the port Prosody and ejabberd use for
// components, on loopback, since the stream is not encrypted.
func DefaultConfig() Config {
	return Config{
		Addr:             "127.0.0.1:5347",
		Limits:           xmlstream.DefaultLimits(),
		HandshakeTimeout: 30 * time.Second,
		WriteTimeout:     30 * time.Second,
		MaxQueued:        10000,
		MaxQueuedBytes:   16 << 20,
		CloseGrace:       2 * time.Second,
	}
}

// Deps are the services the listener uses.
type Deps struct {
	Router *router.Router
	Log    *slog.Logger
	// Metrics receives events for monitoring; nil records nothing.
	Metrics Metrics
}

// Server accepts and serves component connections.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	// table holds the components allowed to connect; SetComponents
	// replaces it while the server runs.
	table atomic.Pointer[table]

	conns listen.Group[*conn]
}

// New validates cfg and returns a Server.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Router == nil || d.Log == nil {
		return nil, errors.New("component: router and logger are required")
	}
	if d.Metrics == nil {
		d.Metrics = noMetrics{}
	}
	def := DefaultConfig()
	if cfg.Limits.MaxStanzaBytes == 0 {
		cfg.Limits = def.Limits
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = def.HandshakeTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = def.WriteTimeout
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = def.MaxQueued
	}
	if cfg.MaxQueuedBytes <= 0 {
		cfg.MaxQueuedBytes = def.MaxQueuedBytes
	}
	if cfg.CloseGrace <= 0 {
		cfg.CloseGrace = def.CloseGrace
	}
	t, err := newTable(cfg.Components)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:  cfg,
		deps: d,
		log:  d.Log.With("component", "component"),
	}
	s.table.Store(t)
	return s, nil
}

// table is the components allowed to connect: their secrets and
// privileges.
type table struct {
	secrets map[string]string           // domain -> secret
	grants  map[string]*privilege.Grant // domain -> privileges, for privileged components only
}

// newTable checks list and makes its table.
func newTable(list []External) (*table, error) {
	t := &table{secrets: make(map[string]string, len(list)), grants: map[string]*privilege.Grant{}}
	for _, c := range list {
		j, err := jid.Parse(c.Domain)
		if err != nil || j.Local() != "" || j.Resource() != "" {
			return nil, fmt.Errorf("component: %q is not a domain", c.Domain)
		}
		if c.Secret == "" {
			return nil, fmt.Errorf("component %s: empty secret", c.Domain)
		}
		if _, dup := t.secrets[j.Domain()]; dup {
			return nil, fmt.Errorf("component %s: listed twice", c.Domain)
		}
		t.secrets[j.Domain()] = c.Secret
		if !c.Privileges.Empty() {
			if err := c.Privileges.Validate(); err != nil {
				return nil, fmt.Errorf("component %s: privileges: %w", c.Domain, err)
			}
			g := c.Privileges
			t.grants[j.Domain()] = &g
		}
	}
	return t, nil
}

// SetComponents replaces the components allowed to connect, as a reload
// of the configuration does. A new secret or new privileges apply from
// the component's next connection; a component no longer listed is
// disconnected (not-authorized). It returns the domains disconnected.
func (s *Server) SetComponents(list []External) ([]string, error) {
	t, err := newTable(list)
	if err != nil {
		return nil, err
	}
	s.table.Store(t)
	var removed []string
	s.conns.Each(func(c *conn) {
		if d := c.boundDomain(); d != "" {
			if _, ok := t.secrets[d]; !ok {
				removed = append(removed, d)
				c.close("not-authorized", "the component was removed from the server's configuration")
			}
		}
	})
	return removed, nil
}

// Run listens on the configured address and serves until ctx is done, then
// closes every stream with system-shutdown and returns once all
// connections are gone.
func (s *Server) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("component: listen %s: %w", s.cfg.Addr, err)
	}
	s.log.Info("listening", "addr", l.Addr().String(), "components", len(s.table.Load().secrets))
	s.Serve(ctx, l)
	s.Shutdown()
	return nil
}

// Serve serves connections accepted from l until ctx is done or Shutdown
// is called. It is Run's building block and lets tests pass a listener; it
// does not wait for the connections (Shutdown does).
func (s *Server) Serve(ctx context.Context, l net.Listener) {
	s.conns.Serve(ctx, l, s.log,
		func(nc net.Conn) *conn { return newConn(s, nc) },
		func(c *conn) { c.serve(ctx) })
}

// Shutdown stops the listeners, closes every stream with system-shutdown
// and waits until every connection is gone.
func (s *Server) Shutdown() {
	s.conns.Shutdown(func(c *conn) { c.close("system-shutdown", "") })
}

// Connected lists the domains of the components connected now, in no
// particular order.
func (s *Server) Connected() []string {
	var out []string
	s.conns.Each(func(c *conn) {
		if d := c.boundDomain(); d != "" {
			out = append(out, d)
		}
	})
	return out
}

// managedDomains lists the domains whose users a privileged component
// manages: those a session manager serves now.
func (s *Server) managedDomains() []string {
	var out []string
	for _, d := range s.deps.Router.Domains() {
		if _, ok := s.deps.Router.SessionManager(d); ok {
			out = append(out, d)
		}
	}
	return out
}

// announce tells the session managers of the managed domains that the
// privileged component of domain, granted g, is there (typ "") or gone
// ("unavailable"): a presence from its domain to each, carrying its grant
// as every stanza of the component does. From it they learn where to send
// what the grant lets the component see (users' presence, roster pushes).
func (s *Server) announce(ctx context.Context, domain string, g *privilege.Grant, managed []string, typ string) {
	from, err := jid.New("", domain, "")
	if g == nil || err != nil {
		return
	}
	for _, d := range managed {
		to, err := jid.New("", d, "")
		if err != nil {
			continue
		}
		p := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
		p.SetAttr("from", domain)
		p.SetAttr("to", d)
		if typ != "" {
			p.SetAttr("type", typ)
		}
		s.deps.Router.Route(ctx, router.Stanza{El: p, From: from, To: to, Grant: g})
	}
}
