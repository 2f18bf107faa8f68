package main

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/metrics"
)

// startMonitoring opens the metrics listener (metrics_addr) and the debug
// listener (debug_addr) and serves them until ctx is done. It returns the
// metrics the components report to: nil, which records nothing, when both
// listeners are off. A listener that cannot be opened fails the start.
func startMonitoring(ctx context.Context, cfg config.Config, log *slog.Logger) (*metrics.Metrics, error) {
	// The API's stats, which the web admin page shows, are the metrics.
	if cfg.MetricsAddr == "" && cfg.DebugAddr == "" && !cfg.APIEnabled() {
		return nil, nil
	}
	m := metrics.New()
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", m.Handler())
		if err := serveHTTP(ctx, "metrics", cfg.MetricsAddr, mux, log); err != nil {
			return nil, err
		}
	}
	if cfg.DebugAddr != "" {
		if err := serveHTTP(ctx, "debug", cfg.DebugAddr, debugMux(m), log); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// debugMux serves the profiler, runtime statistics and the metrics. It is
// a mux of its own: the http package's default one is global state.
func debugMux(m *metrics.Metrics) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vars", expvar.Handler())
	mux.Handle("/metrics", m.Handler())
	return mux
}

// serveHTTP listens on addr now, so that a port in use fails the start,
// and serves h in the background until ctx is done.
func serveHTTP(ctx context.Context, name, addr string, h http.Handler, log *slog.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: listen %s: %w", name, addr, err)
	}
	log.Info(name+" listener", "addr", l.Addr().String())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	context.AfterFunc(ctx, func() { srv.Close() })
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(name+" listener", "err", err)
		}
	}()
	return nil
}
