// Package web is the HTTP listener of the server: one address, with the
// domains' certificates or plain behind a reverse proxy that terminates
// TLS, onto which the server mounts its web endpoints: XMPP over WebSocket
// (/xmpp-websocket, the path Prosody uses), BOSH (/http-bind), the
// XEP-0156 discovery documents (/.well-known/host-meta and
// host-meta.json), liveness and readiness checks (/healthz, /readyz) and,
// where configured, the HTTP API and the upload store, so that one port
// and one certificate serve every browser client.
//
// The package knows no XMPP: the endpoints are http.Handlers that the
// caller mounts. What it owns is the policy shared by all of them: which
// peers are proxies whose X-Forwarded-For and X-Forwarded-Proto are
// believed, whether a request arrived encrypted, and which origins' pages
// may use the endpoints (CORS).
package web

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The paths of the endpoints.
const (
	WebSocketPath = "/xmpp-websocket"
	BOSHPath      = "/http-bind"
	HealthPath    = "/healthz"
	ReadyPath     = "/readyz"
)

// Config is the listener's configuration.
type Config struct {
	// Addr is the listener's address.
	Addr string
	// TLS serves HTTPS with these certificates; nil serves plain HTTP for
	// a reverse proxy in front.
	TLS *tls.Config
	// TrustedProxies are the networks of reverse proxies: their
	// X-Forwarded-For names the client, and a plain request from them
	// counts as encrypted (the proxy terminated TLS) unless their
	// X-Forwarded-Proto says http.
	TrustedProxies []netip.Prefix
	// CORSOrigins are the origins (scheme://host[:port]) whose pages may
	// use the endpoints; "*" allows any. A page served by this listener's
	// own origin is always allowed.
	CORSOrigins []string
	// PublicURL is the base URL clients reach the listener at (behind a
	// proxy, say), used in the discovery documents; empty builds them from
	// each request's Host.
	PublicURL string
}

// ParseProxies parses CIDRs (or single addresses) of trusted proxies;
// key names the setting in errors.
func ParseProxies(key string, list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is neither a CIDR such as 10.0.0.0/8 nor an address", key, s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// CheckOrigins checks CORS origins; key names the setting in errors.
func CheckOrigins(key string, list []string) error {
	for _, o := range list {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("%s: %q is not an origin such as https://chat.example.org", key, o)
		}
	}
	return nil
}

// Check is a readiness check: nil when the part it checks is ready.
type Check func(ctx context.Context) error

// Server is the HTTP listener and its mux.
type Server struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	public *url.URL

	mu     sync.Mutex
	checks map[string]Check
	links  map[string]string // discovery rel → path
	up     atomic.Bool       // the listener accepts
}

// New returns a Server with the health endpoints and the discovery
// documents mounted.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := CheckOrigins("http.cors_origins", cfg.CORSOrigins); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log.With("component", "http"), mux: http.NewServeMux(), checks: map[string]Check{}, links: map[string]string{}}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("http.public_url: %q is not an http(s) URL", cfg.PublicURL)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		s.public = u
	}
	s.mux.HandleFunc(HealthPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc(ReadyPath, s.ready)
	s.mux.HandleFunc("/.well-known/host-meta", s.hostMeta)
	s.mux.HandleFunc("/.well-known/host-meta.json", s.hostMeta)
	return s, nil
}

// Handle mounts h at pattern (http.ServeMux patterns).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// MountWebSocket mounts the XMPP WebSocket endpoint and announces it in
// the discovery documents.
func (s *Server) MountWebSocket(h http.Handler) {
	s.mux.Handle(WebSocketPath, h)
	s.mu.Lock()
	s.links["urn:xmpp:alt-connections:websocket"] = WebSocketPath
	s.mu.Unlock()
}

// MountBOSH mounts the BOSH endpoint (XEP-0206) with the listener's CORS
// policy, and announces it in the discovery documents.
func (s *Server) MountBOSH(h http.Handler) {
	s.mux.Handle(BOSHPath, s.CORS(h))
	s.mux.Handle(BOSHPath+"/", s.CORS(h))
	s.mu.Lock()
	s.links["urn:xmpp:alt-connections:xbosh"] = BOSHPath
	s.mu.Unlock()
}

// AddCheck adds a readiness check under name.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	s.checks[name] = c
	s.mu.Unlock()
}

// Handler is the listener's handler, for tests and for callers serving it
// themselves.
func (s *Server) Handler() http.Handler { return s.mux }

// Run listens on Addr (with TLS unless Config.TLS is nil) and serves until
// ctx is done. wrap, if not nil, wraps the TLS listener instead of
// tls.NewListener (the c2s edge's, under which WebSocket sessions are
// polled without a goroutine).
func (s *Server) Run(ctx context.Context, wrap func(net.Listener, *tls.Config) net.Listener) error {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("http: listen %s (http.addr moves it): %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, l, wrap)
}

// Serve serves on l until ctx is done.
func (s *Server) Serve(ctx context.Context, l net.Listener, wrap func(net.Listener, *tls.Config) net.Listener) error {
	s.log.Info("listening", "addr", l.Addr().String(), "tls", s.cfg.TLS != nil, "endpoints", strings.Join(s.endpoints(), " "))
	if s.cfg.TLS != nil {
		if wrap != nil {
			l = wrap(l, s.cfg.TLS)
		} else {
			c := s.cfg.TLS.Clone()
			c.NextProtos = []string{"http/1.1"}
			l = tls.NewListener(l, c)
		}
	}
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	s.up.Store(true)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		s.up.Store(false)
		return err
	}
	s.up.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// endpoints lists what is announced, for the start log.
func (s *Server) endpoints() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.links {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// ready answers 200 when every check passes, 503 with the failures
// otherwise; ?verbose lists every check.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	checks := make([]Check, 0, len(names))
	sort.Strings(names)
	for _, n := range names {
		checks = append(checks, s.checks[n])
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var b strings.Builder
	ok := true
	if !s.up.Load() {
		ok = false
		b.WriteString("http: not serving\n")
	}
	for i, c := range checks {
		if err := c(ctx); err != nil {
			ok = false
			fmt.Fprintf(&b, "%s: %v\n", names[i], err)
		} else if r.URL.Query().Has("verbose") {
			fmt.Fprintf(&b, "%s: ok\n", names[i])
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	} else {
		b.WriteString("ok\n")
	}
	_, _ = w.Write([]byte(b.String()))
}

// hostMeta serves XEP-0156's host-meta (XRD) and host-meta.json with the
// mounted endpoints' URLs. Any page may read them: they are what the
// server announces anyway.
func (s *Server) hostMeta(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rels := make([]string, 0, len(s.links))
	for rel := range s.links {
		rels = append(rels, rel)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(rels))) // websocket first
	paths := make([]string, len(rels))
	for i, rel := range rels {
		paths[i] = s.links[rel]
	}
	s.mu.Unlock()
	base := s.baseURL(r)
	type link struct {
		Rel  string `json:"rel"`
		Href string `json:"href"`
	}
	links := make([]link, len(rels))
	for i, rel := range rels {
		u := *base
		u.Path += paths[i]
		if strings.HasSuffix(rel, ":websocket") {
			u.Scheme = map[string]string{"https": "wss", "http": "ws"}[u.Scheme]
		}
		links[i] = link{rel, u.String()}
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "max-age=3600")
	if strings.HasSuffix(r.URL.Path, ".json") {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Links []link `json:"links"`
		}{links})
		return
	}
	w.Header().Set("Content-Type", "application/xrd+xml")
	var b strings.Builder
	b.WriteString("<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n")
	for _, l := range links {
		b.WriteString("  <Link rel='" + l.Rel + "' href='" + xmlEscape(l.Href) + "'/>\n")
	}
	b.WriteString("</XRD>\n")
	_, _ = w.Write([]byte(b.String()))
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "'", "&apos;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// baseURL is where clients reach the listener: the public URL, else the
// request's Host with the scheme it arrived with.
func (s *Server) baseURL(r *http.Request) *url.URL {
	if s.public != nil {
		u := *s.public
		return &u
	}
	scheme := "http"
	if _, secure := s.Peer(r); secure && (r.TLS != nil || s.fromProxy(r)) {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = s.cfg.Addr
	}
	return &url.URL{Scheme: scheme, Host: host}
}

// remoteIP is the socket's peer address.
func remoteIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (s *Server) trusted(a netip.Addr) bool {
	return slices.ContainsFunc(s.cfg.TrustedProxies, func(p netip.Prefix) bool { return p.Contains(a) })
}

// fromProxy reports whether the request came through a trusted proxy
// that said it was HTTPS.
func (s *Server) fromProxy(r *http.Request) bool {
	return s.trusted(remoteIP(r)) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// Peer returns the client's address, the socket's or, from a trusted
// proxy, the last address of X-Forwarded-For that is not a trusted proxy;
// and whether the connection is encrypted: TLS to this listener, a plain
// one from loopback, or one from a trusted proxy unless its
// X-Forwarded-Proto says http.
func (s *Server) Peer(r *http.Request) (addr string, secure bool) {
	ip := remoteIP(r)
	addr = r.RemoteAddr
	if r.TLS != nil {
		return addr, true
	}
	if !s.trusted(ip) {
		return addr, ip.IsLoopback()
	}
	for _, v := range slices.Backward(forwardedFor(r.Header)) {
		a, err := netip.ParseAddr(v)
		if err != nil {
			break
		}
		a = a.Unmap()
		addr = a.String()
		if !s.trusted(a) {
			break
		}
	}
	return addr, !strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "http")
}

// forwardedFor lists the addresses of X-Forwarded-For, first (the client)
// to last (the proxy nearest to us).
func forwardedFor(h http.Header) []string {
	var out []string
	for _, v := range h.Values("X-Forwarded-For") {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	return out
}

// OriginAllowed reports whether a page of origin may use the endpoints:
// it is listed in http.cors_origins (or "*" is), or it is this listener's
// own origin.
func (s *Server) OriginAllowed(r *http.Request, origin string) bool {
	for _, o := range s.cfg.CORSOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// CORS answers preflights and adds the CORS headers of an allowed origin
// to h's answers; a request from an origin that is not allowed gets no
// CORS headers, which keeps the browser from giving the page the answer.
func (s *Server) CORS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && s.OriginAllowed(r, origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
				w.Header().Set("Access-Control-Max-Age", "86400")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
