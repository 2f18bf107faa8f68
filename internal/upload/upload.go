package upload

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
)

// Config configures the upload service.
type Config struct {
	// Domains are the served domains; the service of each is
	// Component + "." + domain, and only the domain's users may upload.
	Domains []string
	// Component is the first label of the service's domain.
	Component string
	// Dir is the store's directory.
	Dir string
	// Addr is the HTTPS listener; empty disables it.
	Addr string
	// PlainAddr is a listener without TLS, for a reverse proxy in front;
	// empty disables it.
	PlainAddr string
	// PublicURL is the base of the URLs handed out, such as
	// "https://upload.example.org"; any path it has is where a reverse
	// proxy forwards to the listener. Empty: https://<service domain> and
	// the port of Addr.
	PublicURL string
	// URLAddr is another HTTPS listener that serves the files (the
	// server's [http] listener, with Handler mounted): when set, the
	// default URLs take its port rather than Addr's.
	URLAddr string
	// MaxFileSize is the largest file accepted, in bytes.
	MaxFileSize int64
	// Quota bounds the bytes one user may keep stored (files not expired
	// and slots not used yet); 0 means no bound.
	Quota int64
	// ExpireAfter is how long a file is kept after its upload; 0 keeps
	// files forever.
	ExpireAfter time.Duration
	// SlotTimeout is how long a slot waits for its PUT.
	SlotTimeout time.Duration
	// SweepInterval is how often expired files are removed.
	SweepInterval time.Duration
}

// Defaults: Prosody's mod_http_file_share keeps files a week; the size
// limit is ejabberd's default, large enough for phone videos.
const (
	DefaultMaxFileSize = 100 << 20
	DefaultQuota       = 1 << 30
	DefaultExpireAfter = 7 * 24 * time.Hour
	DefaultSlotTimeout = 5 * time.Minute
)

// DefaultConfig returns the defaults, without domains or directory.
func DefaultConfig() Config {
	return Config{
		Component:     "upload",
		Addr:          ":5443",
		MaxFileSize:   DefaultMaxFileSize,
		Quota:         DefaultQuota,
		ExpireAfter:   DefaultExpireAfter,
		SlotTimeout:   DefaultSlotTimeout,
		SweepInterval: time.Minute,
	}
}

// Router is what the service needs of the router.
type Router interface {
	Register(domain string, c router.Component) error
	Unregister(domain string, c router.Component)
	Route(ctx context.Context, s router.Stanza)
}

// Deps are the service's dependencies.
type Deps struct {
	Router Router
	// TLS serves Addr; required when Addr is set. Its certificates are
	// picked by SNI, so the served domains' certificates (which cover
	// their subdomains) do.
	TLS *tls.Config
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service is the upload component and its HTTP server.
type Service struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	store   *store
	parents map[string]string // service domain -> served domain
	base    *url.URL          // PublicURL, or nil for the default per domain
	port    string            // of Addr, for the default URLs
}

var _ router.Component = (*Service)(nil)

// New validates cfg, opens the store and returns the service.
func New(cfg Config, d Deps) (*Service, error) {
	if d.Router == nil || d.Log == nil {
		return nil, errors.New("upload: router and logger are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	def := DefaultConfig()
	if cfg.Component == "" {
		cfg.Component = def.Component
	}
	if cfg.SlotTimeout <= 0 {
		cfg.SlotTimeout = def.SlotTimeout
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = def.SweepInterval
	}
	switch {
	case cfg.Dir == "":
		return nil, errors.New("upload: a directory is required")
	case cfg.MaxFileSize <= 0:
		return nil, errors.New("upload: the maximum file size must be positive")
	case cfg.Quota < 0 || cfg.ExpireAfter < 0:
		return nil, errors.New("upload: quota and expiry must not be negative")
	case cfg.Addr != "" && d.TLS == nil:
		return nil, errors.New("upload: a TLS configuration is required for the HTTPS listener")
	case cfg.PublicURL == "" && cfg.Addr == "" && cfg.URLAddr == "":
		return nil, errors.New("upload: a public URL is required without the HTTPS listener")
	}
	s := &Service{cfg: cfg, deps: d, log: d.Log.With("component", "upload"), parents: make(map[string]string)}
	for _, dom := range cfg.Domains {
		j, err := jid.New("", cfg.Component+"."+dom, "")
		if err != nil {
			return nil, fmt.Errorf("upload: service domain of %s: %w", dom, err)
		}
		s.parents[j.Domain()] = dom
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("upload: public URL %q is not an http(s) URL without query", cfg.PublicURL)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		u.RawPath = ""
		s.base = u
	} else {
		a := cfg.URLAddr
		if a == "" {
			a = cfg.Addr
		}
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("upload: %q is not host:port", a)
		}
		s.port = port
	}
	st, err := openStore(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s.store = st
	return s, nil
}

// Domains lists the service domains, one per served domain.
func (s *Service) Domains() []string {
	out := make([]string, 0, len(s.parents))
	for d := range s.parents {
		out = append(out, d)
	}
	return out
}

// Run opens the HTTP listeners, registers the service domains with the
// router and serves until ctx is done. A listener that cannot be opened
// (its port taken) is logged and leaves the service off, so that the rest
// of the server keeps running: HTTP upload is an addition, not a reason
// for an XMPP server not to start.
func (s *Service) Run(ctx context.Context) error {
	var ls []net.Listener
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	if s.cfg.Addr != "" {
		l, err := net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			s.log.Error("HTTP upload disabled: cannot listen", "addr", s.cfg.Addr, "err", err)
			return nil
		}
		tc := s.deps.TLS.Clone()
		tc.NextProtos = []string{"h2", "http/1.1"}
		ls = append(ls, tls.NewListener(l, tc))
	}
	if s.cfg.PlainAddr != "" {
		l, err := net.Listen("tcp", s.cfg.PlainAddr)
		if err != nil {
			closeAll()
			s.log.Error("HTTP upload disabled: cannot listen", "addr", s.cfg.PlainAddr, "err", err)
			return nil
		}
		ls = append(ls, l)
	}
	var registered []string
	for d := range s.parents {
		if err := s.deps.Router.Register(d, s); err != nil {
			closeAll()
			for _, r := range registered {
				s.deps.Router.Unregister(r, s)
			}
			return fmt.Errorf("upload: %w", err)
		}
		registered = append(registered, d)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	var wg sync.WaitGroup
	for _, l := range ls {
		s.log.Info("listening", "addr", l.Addr().String(), "domains", registered)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("serve", "err", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.sweepLoop(ctx)
	}()
	<-ctx.Done()
	for _, d := range registered {
		s.deps.Router.Unregister(d, s)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Uploads still running after the grace period are cut; their
		// partial files are removed as the handlers return.
		srv.Close()
	}
	wg.Wait()
	return nil
}

func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		if n := s.store.sweep(s.deps.Now()); n > 0 {
			s.log.Info("expired files removed", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
