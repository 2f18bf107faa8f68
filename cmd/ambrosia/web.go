package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/web"
	"github.com/ambrosia-xmpp/ambrosia/internal/webadmin"
)

// webParts are what the [http] listener serves besides its own
// endpoints; nil fields are not mounted.
type webParts struct {
	edge   *c2s.Server
	upload http.Handler // the upload store (http.upload)
	api    http.Handler // the HTTP API (http.api)
	checks map[string]web.Check
}

// newWeb builds the [http] listener; nil when http.addr is empty. The
// WebSocket sessions it upgrades run on sessCtx and belong to the client
// edge, which ends them at shutdown like its other sessions.
func newWeb(sessCtx context.Context, cfg config.Config, tlsConf *tls.Config, p webParts, log *slog.Logger) (*web.Server, error) {
	h := cfg.HTTP
	if h.Addr == "" {
		return nil, nil
	}
	proxies, err := web.ParseProxies("http.trusted_proxies", h.TrustedProxies)
	if err != nil {
		return nil, err
	}
	wc := web.Config{Addr: h.Addr, TrustedProxies: proxies, CORSOrigins: h.CORSOrigins, PublicURL: h.PublicURL}
	if h.TLS {
		if tlsConf == nil {
			return nil, errors.New("http.tls: no certificates to serve HTTPS with")
		}
		wc.TLS = tlsConf
	}
	ws, err := web.New(wc, log)
	if err != nil {
		return nil, err
	}
	if h.WebSocket && p.edge != nil {
		ws.MountWebSocket(p.edge.WebSocketHandler(sessCtx, c2s.WebSocketOptions{Peer: ws.Peer, OriginAllowed: ws.OriginAllowed}))
	}
	if cfg.BOSH.Enabled && p.edge != nil {
		// BOSH sessions believe the listener's proxies as WebSocket
		// ones do.
		b, err := newBOSH(cfg, p.edge, ws.Peer, log)
		if err != nil {
			return nil, err
		}
		ws.MountBOSH(b)
	}
	if h.Upload && p.upload != nil {
		ws.Handle("/upload/", p.upload)
	}
	if h.API && p.api != nil {
		// The API's handler serves the web admin page too.
		ws.Handle("/api/", p.api)
		ws.Handle(webadmin.Prefix, p.api)
		ws.Handle("GET /admin", http.RedirectHandler(webadmin.Prefix, http.StatusMovedPermanently))
	}
	if p.edge != nil {
		ws.AddCheck("c2s", p.edge.Ready)
	}
	for name, c := range p.checks {
		ws.AddCheck(name, c)
	}
	return ws, nil
}

// storageCheck is the readiness check of the database: a lookup of an
// account that cannot exist must answer "not found".
func storageCheck(a storage.Accounts) web.Check {
	return func(ctx context.Context) error {
		_, err := a.Credential(ctx, "readiness-check@invalid", "SHA-256")
		if err == nil || errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("database: %w", err)
	}
}

// servicesCheck is the readiness check of a gateway: a service links it
// and serves a domain with a session manager.
func servicesCheck(r *router.Router) web.Check {
	return func(context.Context) error {
		for _, d := range r.Domains() {
			if _, ok := r.SessionManager(d); ok {
				return nil
			}
		}
		return errors.New("no session manager linked (ambrosia service sm)")
	}
}

// webRunner runs the [http] listener with the edge's TLS listener, under
// which WebSocket sessions are polled like direct TLS ones.
type webRunner struct {
	w    *web.Server
	edge *c2s.Server
}

func (r webRunner) Run(ctx context.Context) error { return r.w.Run(ctx, r.edge.TLSListener) }
