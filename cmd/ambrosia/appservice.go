package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/admin"
	"github.com/ambrosia-xmpp/ambrosia/internal/appservice"
	"github.com/ambrosia-xmpp/ambrosia/internal/component"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/httpapi"
	"github.com/ambrosia-xmpp/ambrosia/internal/metrics"
	"github.com/ambrosia-xmpp/ambrosia/internal/muc"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/s2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/webadmin"
	"github.com/prometheus/client_golang/prometheus"
)

// apps are the application services of `serve` and the HTTP API; nil when
// neither is configured.
type apps struct {
	cfg      config.Config
	m        *appservice.Manager
	senders  *appservice.Senders
	sms      map[string]*sm.SM // filled once the session managers are made
	accounts appservice.Accounts
	mon      *metrics.Metrics
	log      *slog.Logger
	api      atomic.Pointer[http.Handler] // the API once run built it
}

// apiHandler serves the API on another listener ([http] with http.api):
// until run has built it, Service Unavailable.
func (a *apps) apiHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := a.api.Load()
		if h == nil {
			http.Error(w, "the API is starting", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	})
}

// appStore is what the application services keep in the database.
type appStore interface {
	storage.Accounts
	storage.AppServiceQueue
}

func newApps(cfg config.Config, r *router.Router, store appStore, mon *metrics.Metrics, log *slog.Logger) (*apps, error) {
	if !cfg.APIEnabled() && len(cfg.AppServices) == 0 {
		return nil, nil
	}
	var svcs []*appservice.Service
	for _, a := range cfg.AppServices {
		hooks := make([]appservice.HookConfig, 0, len(a.Hooks))
		for _, h := range a.Hooks {
			hooks = append(hooks, appservice.HookConfig{Event: h.Event, Timeout: time.Duration(h.Timeout), OnTimeout: h.OnTimeout})
		}
		s, err := appservice.Compile(appservice.Config{Name: a.Name, URL: a.URL, Token: a.Token, ServerToken: a.ServerToken,
			Users: a.Users, Watch: a.Watch, Rooms: a.Rooms, Events: a.Events, Hooks: hooks, MaxBacklog: a.MaxBacklog, Batch: a.Batch})
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		svcs = append(svcs, s)
	}
	senders, err := appservice.NewSenders(svcs, appservice.SenderDeps{Queue: store, Log: log, Metrics: mon})
	if err != nil {
		return nil, err
	}
	a := &apps{cfg: cfg, senders: senders, sms: map[string]*sm.SM{}, mon: mon, log: log}
	a.m, err = appservice.New(svcs, appservice.Deps{Router: r, SMs: a.sms, Outbox: senders, Log: log})
	if err != nil {
		return nil, err
	}
	a.accounts = appservice.Accounts{Accounts: store, M: a.m}
	return a, nil
}

// smDeps makes the session managers report to the services and ask their
// hooks; nothing is asked when no service has a hook.
func (a *apps) smDeps(_ *sm.Config, d *sm.Deps) {
	if a == nil {
		return
	}
	d.Observer = a.m
	d.Accounts = a.accounts
	if a.m.HasHooks(appservice.HookMessage) || a.m.HasHooks(appservice.HookSubscription) {
		d.Hook = a.m
	}
}

// mucDeps makes the conference service report the services' rooms and
// ask their hooks about room messages.
func (a *apps) mucDeps(d *muc.Deps) {
	if a == nil {
		return
	}
	d.Observer = a.m
	if a.m.HasHooks(appservice.HookRoomMessage) {
		d.Hook = a.m
	}
}

// run sends the services' events and serves the API until ctx is done.
func (a *apps) run(ctx context.Context, sms []*sm.SM, conference *muc.Service, comps *component.Server, fed *s2s.Service, reload func(context.Context) (string, error)) error {
	for _, s := range sms {
		a.sms[s.Domain()] = s
	}
	errc := make(chan error, 2)
	go func() { errc <- a.senders.Run(ctx) }()
	if !a.cfg.APIEnabled() {
		return <-errc
	}
	var reg prometheus.Gatherer
	if a.mon != nil {
		reg = a.mon.Registry()
	}
	b, err := admin.New(admin.Deps{Manager: a.m, SMs: a.sms, Accounts: a.accounts, MUC: conference, Comps: comps, S2S: fed,
		Version: version(), Metrics: reg, Reload: reload})
	if err != nil {
		return err
	}
	api, err := httpapi.New(httpapi.Config{AdminToken: a.cfg.API.AdminToken, Admins: a.cfg.API.Admins, Services: a.m.Services()}, b, a.log)
	if err != nil {
		return err
	}
	h := http.NewServeMux()
	h.Handle("/", api)
	h.Handle(webadmin.Prefix, webadmin.Handler())
	h.Handle("GET /admin", http.RedirectHandler(webadmin.Prefix, http.StatusMovedPermanently))
	var handler http.Handler = h
	a.api.Store(&handler)
	if a.cfg.API.Addr == "" {
		// Served on the [http] listener only.
		select {
		case <-ctx.Done():
			return <-errc
		case err := <-errc:
			return err
		}
	}
	l, err := net.Listen("tcp", a.cfg.API.Addr)
	if err != nil {
		return fmt.Errorf("api: listen %s (api.addr moves it): %w", a.cfg.API.Addr, err)
	}
	a.log.Info("listening", "component", "api", "addr", l.Addr().String(), "services", len(a.cfg.AppServices), "admin", a.cfg.API.AdminToken != "")
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return <-errc
}
