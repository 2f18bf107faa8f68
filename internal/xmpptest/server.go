package xmpptest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	log2 "log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
)

// Server is an in-process Ambrosia (router, session manager, client edge)
// on loopback ports, for tests.
type Server struct {
	Domain string
	// Addr is the STARTTLS listener, TLSAddr the direct TLS one.
	Addr, TLSAddr string
	// WSURL is the WebSocket endpoint (wss) on an HTTP listener of its
	// own, WSPlainURL the same without TLS (from loopback).
	WSURL, WSPlainURL string
	// Roots trusts the server's self-signed certificate.
	Roots  *x509.CertPool
	Store  *memory.Store
	Router *router.Router
	Edge   *c2s.Server
	SM     *sm.SM

	cancel context.CancelFunc
	wg     sync.WaitGroup
	https  []*http.Server
}

// StartServer starts a server for domain "localhost", its client edge
// configured by adjust, and stops it when the test ends.
func StartServer(t testing.TB, adjust func(*c2s.Config)) *Server {
	t.Helper()
	return StartServerWith(t, Options{C2S: adjust})
}

// Options adjust the components of a test server.
type Options struct {
	C2S func(*c2s.Config)
	SM  func(*sm.Config)
	// SMDeps adjusts the session manager's dependencies (an observer, a
	// hook) before it is made.
	SMDeps func(*sm.Deps)
	// Invites accepts invitations at registration (XEP-0445), kept in
	// Store, and makes invitees contacts of their inviters; with
	// sm.Config.UserInvites, users create them too.
	Invites bool
	// C2SDeps adjusts the client edge's dependencies (limits, metrics).
	C2SDeps func(*c2s.Deps)
}

// StartServerWith starts a server for domain "localhost" with components
// configured by o, and stops it when the test ends.
func StartServerWith(t testing.TB, o Options) *Server {
	t.Helper()
	adjust := o.C2S
	const domain = "localhost"
	certPEM, keyPEM, err := certs.SelfSigned(domain, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)

	s := &Server{Domain: domain, Roots: roots, Store: memory.New()}
	log := Discard()
	s.Router = router.New(log)
	smCfg := sm.Config{Domain: domain, Version: "test"}
	if o.SM != nil {
		o.SM(&smCfg)
	}
	deps := sm.Deps{Router: s.Router, Accounts: s.Store, Roster: s.Store, Offline: s.Store, Blocklist: s.Store, Private: s.Store, Archive: s.Store, Log: log}
	if o.Invites {
		deps.Invites = s.Store
	}
	if o.SMDeps != nil {
		o.SMDeps(&deps)
	}
	m, err := sm.New(smCfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	s.SM = m
	if err := s.Router.Register(domain, m); err != nil {
		t.Fatal(err)
	}
	cfg := c2s.DefaultConfig()
	cfg.Addr, cfg.TLSAddr = "", ""
	if adjust != nil {
		adjust(&cfg)
	}
	tlsConf := certs.Config(map[string]tls.Certificate{domain: cert}, []string{domain}, "xmpp-client")
	edgeDeps := c2s.Deps{
		Router:   s.Router,
		Auth:     auth.New(s.Store, nil),
		TLS:      tlsConf,
		Accounts: s.Store,
		Log:      log,
		Tokens:   s.Store,
	}
	if o.Invites {
		edgeDeps.Invites = s.Store
		edgeDeps.Befriend = m.Befriend
	}
	if o.C2SDeps != nil {
		o.C2SDeps(&edgeDeps)
	}
	s.Edge, err = c2s.New(cfg, edgeDeps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	l1 := listen(t)
	l2 := listen(t)
	s.Addr, s.TLSAddr = l1.Addr().String(), l2.Addr().String()
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.Edge.Serve(ctx, l1, false) }()
	go func() { defer s.wg.Done(); s.Edge.Serve(ctx, l2, true) }()
	ws := s.Edge.WebSocketHandler(ctx, c2s.WebSocketOptions{
		Peer: func(r *http.Request) (string, bool) {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			return r.RemoteAddr, r.TLS != nil || net.ParseIP(host).IsLoopback()
		},
		OriginAllowed: func(r *http.Request, origin string) bool { return origin == "https://allowed.example" },
	})
	for _, secure := range []bool{true, false} {
		l := listen(t)
		mux := http.NewServeMux()
		mux.Handle("/xmpp-websocket", ws)
		hs := &http.Server{Handler: mux, ErrorLog: log2.New(io.Discard, "", 0)}
		s.https = append(s.https, hs)
		u := "localhost:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port) + "/xmpp-websocket"
		if secure {
			s.WSURL = "wss://" + u
			l = s.Edge.TLSListener(l, tlsConf)
		} else {
			s.WSPlainURL = "ws://" + u
		}
		s.wg.Add(1)
		go func() { defer s.wg.Done(); _ = hs.Serve(l) }()
	}
	t.Cleanup(s.Stop)
	return s
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Stop closes every session with system-shutdown and waits for the edge.
func (s *Server) Stop() {
	s.cancel()
	for _, hs := range s.https {
		hs.Close()
	}
	s.Edge.Shutdown()
	s.wg.Wait()
}

// AddUser creates an account.
func (s *Server) AddUser(t testing.TB, bare, password string) {
	t.Helper()
	creds, err := auth.DeriveCredentials(password, auth.DefaultIterations)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.CreateAccount(ctxTimeout(t), bare, creds); err != nil {
		t.Fatal(err)
	}
}

// Login connects, upgrades to TLS, authenticates with SCRAM-SHA-256 and
// binds resource.
func (s *Server) Login(t testing.TB, user, password, resource string) *Client {
	t.Helper()
	c := s.Authenticate(t, user, password)
	c.Bind(resource)
	return c
}

// Authenticate connects, upgrades to TLS and authenticates with
// SCRAM-SHA-256, leaving the client to bind or resume a session.
func (s *Server) Authenticate(t testing.TB, user, password string) *Client {
	t.Helper()
	c := Dial(t, s.Addr, s.Domain)
	c.Open()
	c.StartTLS(s.Roots)
	if cond := c.AuthSCRAM("SCRAM-SHA-256", user, password, ""); cond != "" {
		t.Fatalf("login %s: %s", user, cond)
	}
	return c
}

// Befriend makes the bare JIDs a and b subscribed to each other's
// presence.
func (s *Server) Befriend(t testing.TB, a, b string) {
	t.Helper()
	for _, p := range [][2]string{{a, b}, {b, a}} {
		if _, err := s.Store.PutRosterItem(ctxTimeout(t), p[0], storage.RosterItem{Contact: p[1], Subscription: storage.SubscriptionBoth}); err != nil {
			t.Fatal(err)
		}
	}
}
