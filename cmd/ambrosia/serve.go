package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/component"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/sqlite"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// serve runs every component in this process until ctx is done.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var cf configFlags
	cf.register(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	if os.Getenv("GOGC") == "" {
		// Idle sessions are most of an XMPP server's memory: a tighter heap
		// goal keeps the memory the runtime holds on to near what is live,
		// for a few percent more collector work under load.
		debug.SetGCPercent(defaultGCPercent)
	}
	log.Info("starting", "version", version(), "domains", cfg.Domains, "data", cfg.DataDir)

	store, err := sqlite.Open(ctx, dbPath(cfg))
	if err != nil {
		return err
	}
	defer store.Close()

	tlsConf, err := loadTLS(cfg)
	if err != nil {
		return err
	}
	r := router.New(log.With("component", "router"))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type runner interface{ Run(context.Context) error }
	var comps []runner
	for _, d := range cfg.Domains {
		deps := sm.Deps{Router: r, Accounts: store, Roster: store, Offline: store, Blocklist: store, Private: store, Log: log}
		if cfg.Archive.Enabled {
			deps.Archive = store
		}
		m, err := sm.New(sm.Config{Domain: d, Version: version(), ArchiveRetention: time.Duration(cfg.Archive.Retention), ContactAddresses: cfg.Contact.Addresses()}, deps)
		if err != nil {
			return err
		}
		// Register now rather than in Run, so that no client can connect
		// before its domain is served.
		comps = append(comps, m)
	}
	c2sCfg := c2s.DefaultConfig()
	c2sCfg.Addr, c2sCfg.TLSAddr = cfg.C2S.Addr, cfg.C2S.TLSAddr
	c2sCfg.AllowPlain = cfg.C2S.AllowPlain
	c2sCfg.AllowRegistration = cfg.C2S.AllowRegistration
	c2sCfg.Limits = xmlstream.DefaultLimits()
	c2sCfg.Limits.MaxStanzaBytes = cfg.C2S.MaxStanzaSize
	c2sCfg.NegotiationTimeout = time.Duration(cfg.C2S.NegotiationTimeout)
	c2sCfg.IdleTimeout = time.Duration(cfg.C2S.IdleTimeout)
	c2sCfg.ResumeTimeout = time.Duration(cfg.C2S.ResumeTimeout)
	c2sCfg.MaxAuthFailures = cfg.C2S.MaxAuthFailures
	edge, err := c2s.New(c2sCfg, c2s.Deps{Router: r, Auth: auth.New(store, nil), TLS: tlsConf, Accounts: store, Log: log})
	if err != nil {
		return err
	}

	var components *component.Server
	if len(cfg.Component.External) > 0 && cfg.Component.Addr != "" {
		cc := component.DefaultConfig()
		cc.Addr = cfg.Component.Addr
		for _, e := range cfg.Component.External {
			cc.Components = append(cc.Components, component.External{Domain: e.Domain, Secret: e.Secret})
		}
		components, err = component.New(cc, component.Deps{Router: r, Log: log})
		if err != nil {
			return err
		}
	}

	var wg sync.WaitGroup
	errc := make(chan error, len(comps)+3)
	if cfg.DebugAddr != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serveDebug(ctx, cfg.DebugAddr, log); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	for _, c := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	// The session managers register with the router first: wait for it.
	for _, d := range cfg.Domains {
		for i := 0; i < 1000; i++ {
			if _, ok := r.SessionManager(d); ok {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	if components != nil {
		// After the session managers, so that a component's first stanzas
		// find its users' domains served.
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := components.Run(ctx); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := edge.Run(ctx); err != nil {
			errc <- err
			cancel()
		}
	}()
	<-ctx.Done()
	log.Info("shutting down")
	wg.Wait()
	close(errc)
	var errs []error
	for e := range errc {
		errs = append(errs, e)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// defaultGCPercent is the collector's GOGC unless the environment sets one.
const defaultGCPercent = 40

func dbPath(cfg config.Config) string { return filepath.Join(cfg.DataDir, "ambrosia.db") }

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// loadTLS loads the operator's certificate or the generated ones.
func loadTLS(cfg config.Config) (*tls.Config, error) {
	m := map[string]tls.Certificate{}
	if cfg.TLS.CertFile != "" {
		c, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		for _, d := range cfg.Domains {
			m[d] = c
		}
	} else {
		for _, d := range cfg.Domains {
			c, err := certs.LoadOrCreate(cfg.DataDir, d, time.Now())
			if err != nil {
				return nil, err
			}
			m[d] = c
		}
	}
	return certs.Config(m, cfg.Domains, "xmpp-client"), nil
}
