package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/adminsock"
	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/component"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/datadir"
	"github.com/ambrosia-xmpp/ambrosia/internal/s2s"
)

// liveKeys are the settings a reload always applies to the running
// server; component.external and s2s.hosts are applied when their
// listener or federation runs, and [limits] but restartLimits by the
// limits. A change to any other is named in the log as waiting for a
// restart.
var liveKeys = []string{"log.level", "tls.cert_file", "tls.key_file", "tls.cert_dir"}

// reloader applies a configuration read again (on SIGHUP or an
// `ambrosia reload`) to the running server: it reads the certificates
// again and changes what can change without ending a session.
type reloader struct {
	mu    sync.Mutex // one reload at a time
	flags *configFlags
	cfg   config.Config // what runs: the start's, with the live keys applied
	certs *certs.Store
	level *slog.LevelVar
	log   *slog.Logger
	// components and federation, when they run, take new components and
	// s2s hosts.
	components *component.Server
	federation *s2s.Service
	// limits, when set, takes the new [limits]: the edges apply them at
	// their next decision, the open connections stay.
	limits *limits
}

// reload reads the configuration and the certificates again and applies
// them, or keeps all that runs when either cannot be read. It returns a
// summary for whoever asked; by names them in the log ("SIGHUP", "admin
// socket", "HTTP API").
func (r *reloader) reload(by string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fail := func(err error) (string, error) {
		r.log.Error("reload failed: the running configuration and certificates stay", "err", err, "asked_by", by)
		return "", err
	}
	cfg, err := r.flags.load()
	if err != nil {
		return fail(err)
	}
	// The certificates of the names served now (a new domain waits for
	// a restart), by the new [tls] settings.
	// A gateway (certs nil) has none of its own: the services send it
	// theirs.
	var m map[string]tls.Certificate
	if r.certs != nil {
		running := r.cfg
		running.TLS.CertFile, running.TLS.KeyFile, running.TLS.CertDir = cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.CertDir
		if m, err = loadCerts(running); err != nil {
			return fail(err)
		}
	}
	changed := config.Changed(r.cfg, cfg)
	live := slices.Clone(liveKeys)
	// The components first: a list the listener refuses fails the reload
	// before anything else changed.
	if slices.Contains(changed, "component.external") && r.components != nil {
		cc, err := componentConfig(cfg)
		if err != nil {
			return fail(err)
		}
		removed, err := r.components.SetComponents(cc.Components)
		if err != nil {
			return fail(err)
		}
		if len(removed) > 0 {
			r.log.Info("reload: components removed from the configuration disconnected", "domains", removed)
		}
		r.cfg.Component.External = cfg.Component.External
		live = append(live, "component.external")
	}
	if slices.Contains(changed, "s2s.hosts") && r.federation != nil {
		r.federation.SetHosts(cfg.S2S.Hosts)
		r.cfg.S2S.Hosts = cfg.S2S.Hosts
		live = append(live, "s2s.hosts")
	}
	if r.limits != nil {
		applied := r.limits.apply(r.cfg, cfg)
		// What runs now: the new [limits], but the keys that wait for a
		// restart keep their running values, so that the next reload
		// still names them.
		keep := r.cfg.Limits
		r.cfg.Limits = cfg.Limits
		r.cfg.Limits.S2SRate, r.cfg.Limits.S2SBurst = keep.S2SRate, keep.S2SBurst
		r.cfg.Limits.ComponentRate, r.cfg.Limits.ComponentBurst = keep.ComponentRate, keep.ComponentBurst
		live = append(live, applied...)
	}
	if r.certs != nil {
		r.certs.Set(m, r.cfg.Domains)
		for _, d := range r.cfg.Domains {
			if c, err := r.certs.Certificate(d); err == nil && c.Leaf != nil {
				r.log.Info("certificate", "domain", d, "sha256", fingerprint(c.Leaf.Raw), "expires", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
			}
		}
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level)) // valid: load checked it
	r.level.Set(lvl)

	var applied, pending []string
	for _, k := range changed {
		if slices.Contains(live, k) {
			applied = append(applied, k)
		} else {
			pending = append(pending, k)
		}
	}
	r.cfg.Log.Level = cfg.Log.Level
	r.cfg.TLS.CertFile, r.cfg.TLS.KeyFile, r.cfg.TLS.CertDir = cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.CertDir
	r.log.Info("reloaded", "asked_by", by, "certificates", len(m), "changed", applied)
	summary := "certificates read again (" + strconv.Itoa(len(m)) + " names)"
	if r.certs == nil {
		summary = "configuration read again (the certificates are the services')"
	}
	if len(applied) > 0 {
		summary += "; applied " + strings.Join(applied, ", ")
	}
	if len(pending) > 0 {
		r.log.Warn("reload: these settings change only when the server restarts", "keys", pending)
		summary += "; at the next restart only: " + strings.Join(pending, ", ")
	}
	return summary, nil
}

// notifyHangup catches SIGHUP from now on, so that one sent while the
// server starts (systemctl reload) waits for the reloader rather than
// ending the process, as SIGHUP does by default.
func notifyHangup() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// watchHangup reloads on every SIGHUP caught by hup until ctx is done, on
// wg.
func (r *reloader) watchHangup(ctx context.Context, wg *sync.WaitGroup, hup chan os.Signal) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_, _ = r.reload("SIGHUP")
			}
		}
	}()
}

// hangupRunner reloads on every SIGHUP caught by hup while it runs: a
// gateway's, among the parts runAll runs.
type hangupRunner struct {
	r   *reloader
	hup chan os.Signal
}

// Run reloads on each SIGHUP until ctx is done.
func (h hangupRunner) Run(ctx context.Context) error {
	defer signal.Stop(h.hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.hup:
			_, _ = h.r.reload("SIGHUP")
		}
	}
}

const reloadAbout = `Asks the server running on the data directory to read its configuration
and certificates again, as SIGHUP does: new connections get the new
certificates and the new [limits], sessions stay. The server reads the file, environment and
flags it was started with; what cannot change while it runs is named in
its answer and its log. A configuration that does not load changes
nothing.`

// reloadCmd asks the running server to reload through the admin socket.
func reloadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("reload", "[flags]", reloadAbout, stdout, stderr)
	var cf configFlags
	cf.register(c.FlagSet, groupStore)
	if pos, err := c.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return c.wrongArgs(fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	cfg, err := cf.load()
	if err != nil {
		return fmt.Errorf("%w (nothing reloaded)", err)
	}
	_, held, err := datadir.Holder(cfg.DataDir)
	if err != nil {
		return err
	}
	if !held {
		return fmt.Errorf("no server runs on %s", cfg.DataDir)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := adminsock.Call(ctx, filepath.Join(cfg.DataDir, adminsock.SocketName), "reload")
	if err != nil {
		if errors.Is(err, adminsock.ErrNoServer) {
			return fmt.Errorf("the server has no admin socket: send it SIGHUP")
		}
		return fmt.Errorf("reload failed, the server runs on as before: %w", err)
	}
	fmt.Fprintln(stdout, "reloaded:", out)
	return nil
}
