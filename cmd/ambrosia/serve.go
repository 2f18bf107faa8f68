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
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/component"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/datadir"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/postgres"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/sqlite"
	"github.com/ambrosia-xmpp/ambrosia/internal/upload"
	"github.com/ambrosia-xmpp/ambrosia/internal/web"
)

const serveAbout = `Runs the whole server in one process until SIGTERM or SIGINT: client
listeners, the session manager of every domain, multi-user chat, HTTP
upload, federation and external components. Settings come from the
defaults, the --config file, AMBROSIA_* environment variables and these
flags, each stronger than the one before.`

// serve runs every component in this process until ctx is done.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("serve", "[flags]", serveAbout, stdout, stderr)
	var cf configFlags
	cf.register(c.FlagSet, groupStore|groupLog|groupMonitor|groupClients|groupRegistration|groupComponents)
	if pos, err := c.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return c.wrongArgs(fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	hup := notifyHangup()
	defer signal.Stop(hup)
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	log := newLevelLogger(cfg.Log, level, stderr)
	cf.warnEnv(log)
	defer runtime.KeepAlive(tuneGC())
	log.Info("starting", "version", version(), "domains", cfg.Domains, "data", cfg.DataDir)

	// One server per data directory: two would share the database but
	// not their sessions, and messages between them would stop.
	lock, err := datadir.Acquire(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	if err := checkListeners(serveListeners(cfg)); err != nil {
		return err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	// Closed before "stopped" is logged, so that the line means the end:
	// closing checkpoints SQLite's write-ahead log, which can take a while.
	closeStore := sync.OnceValue(store.Close)
	defer closeStore()

	certMap, err := loadCerts(cfg)
	if err != nil {
		return err
	}
	certStore := certs.NewStore(certMap, cfg.Domains)
	tlsConf := certStore.Config("xmpp-client")
	keyExchanges(tlsConf, cfg.TLS)
	// With tls.acme, the certificates obtained before are in place before
	// the listeners open.
	acmeCerts, err := newACME(cfg, certStore, log)
	if err != nil {
		return err
	}
	acmeHTTP, err := listenACME(cfg)
	if err != nil {
		return err
	}
	if acmeHTTP != nil {
		defer acmeHTTP.Close()
	}
	logStartup(cfg, tlsConf, log)
	r := router.New(log.With("component", "router"))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The components that carry the users' sessions run until the
	// conference service has stopped, so that what it sends on its way out
	// (status 332 to every occupant) still reaches them.
	sessCtx, stopSessions := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSessions()
	mon, err := startMonitoring(ctx, cfg, log)
	if err != nil {
		return err
	}

	type runner interface{ Run(context.Context) error }
	var comps []runner
	// Application services and the HTTP API, when configured: they hear of
	// what the session managers and the conference service do.
	applications, err := newApps(cfg, r, store, mon, log)
	if err != nil {
		return err
	}
	var accounts c2s.AccountCreator = store
	if applications != nil {
		accounts = applications.accounts
	}
	sms, err := newSessionManagers(cfg, r, store, mon, log, applications.smDeps)
	if err != nil {
		return err
	}
	for _, m := range sms {
		comps = append(comps, m)
	}
	c2sCfg := c2sConfig(cfg)
	files := raiseFileLimit(log)
	lim := newLimits(cfg, files, log)
	c2sDeps := c2s.Deps{Router: r, Auth: auth.New(store, nil), TLS: resumeClassical(tlsConf, cfg.TLS), Accounts: accounts, Tokens: store, Log: log, Metrics: mon,
		Conns: lim.conns, Failures: lim.failures, Registrations: lim.registrations, InviteFailures: lim.invites}
	if cfg.Invites.Enabled {
		c2sDeps.Invites = store
		c2sDeps.Befriend = befriender(sms)
	}
	edge, err := c2s.New(c2sCfg, c2sDeps)
	if err != nil {
		return err
	}
	lim.edge = edge

	var uploads *upload.Service
	if cfg.Upload.Enabled {
		uploads, err = newUpload(cfg, r, tlsConf, log)
		if err != nil {
			return err
		}
	}

	// The [http] listener: WebSocket, discovery, health, and the API and
	// upload where asked, and BOSH.
	parts := webParts{edge: edge, checks: map[string]web.Check{"storage": storageCheck(store)}}
	if uploads != nil {
		parts.upload = uploads.Handler()
	}
	if applications != nil && cfg.APIEnabled() {
		parts.api = applications.apiHandler()
	}
	webSrv, err := newWeb(sessCtx, cfg, tlsConf, parts, log)
	if err != nil {
		return err
	}

	conference, err := newMUC(cfg, r, store, mon, log, applications.mucDeps)
	if err != nil {
		return err
	}

	var components *component.Server
	if len(cfg.Component.External) > 0 && cfg.Component.Addr != "" {
		cc, err := componentConfig(cfg)
		if err != nil {
			return err
		}
		components, err = component.New(cc, component.Deps{Router: r, Log: log, Metrics: mon})
		if err != nil {
			return err
		}
	}

	federation, err := newFederation(cfg, r, mon, lim.servers, log, certStore)
	if err != nil {
		return err
	}

	// SIGHUP, ambrosia reload and the HTTP API read the configuration and
	// certificates again through it.
	rl := &reloader{flags: &cf, cfg: cfg, certs: certStore, level: level, log: log, components: components, federation: federation, limits: lim}

	var wg sync.WaitGroup
	errc := make(chan error, len(comps)+8)
	for _, c := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(sessCtx); err != nil {
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
	if federation != nil {
		// Stanzas for domains nobody serves here leave through federation.
		r.SetFallback(federation)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := federation.Run(sessCtx); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	conferenceDone := make(chan struct{})
	if conference != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(conferenceDone)
			if err := conference.Run(ctx); err != nil {
				errc <- err
				cancel()
			}
		}()
	} else {
		close(conferenceDone)
	}
	if uploads != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := uploads.Run(ctx); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	if components != nil {
		// After the session managers, so that a component's first stanzas
		// find its users' domains served.
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := components.Run(sessCtx); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	if applications != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := applications.run(sessCtx, sms, conference, components, federation, func(context.Context) (string, error) { return rl.reload("HTTP API") }); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := edge.Run(sessCtx); err != nil {
			errc <- err
			cancel()
		}
	}()
	runACME(ctx, &wg, cfg, acmeCerts, acmeHTTP, log)
	rl.watchHangup(ctx, &wg, hup)
	if webSrv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := webSrv.Run(sessCtx, edge.TLSListener); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	// ambrosia user del reaches the sessions through it, ambrosia reload
	// the reloader.
	if sq, ok := store.(*sqlite.Store); ok {
		if startAdmin(ctx, &wg, cfg, sms, rl, sq, log) {
			// The user command announces its changes on the socket: only
			// then may the credentials be kept between logins.
			sq.CacheCredentials(credentialCacheUsers, credentialCacheTTL)
		}
	} else {
		startAdmin(ctx, &wg, cfg, sms, rl, nil, log)
		cacheSharedCredentials(ctx, store, log)
	}
	<-ctx.Done()
	log.Info("shutting down")
	<-conferenceDone
	stopSessions()
	wg.Wait()
	close(errc)
	var errs []error
	for e := range errc {
		errs = append(errs, e)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := closeStore(); err != nil {
		return err
	}
	lock.Release()
	log.Info("stopped")
	return nil
}

// defaultGCPercent is the collector's GOGC unless the environment sets one.
const defaultGCPercent = 40

// gcFloor is the size of the ballast tuneGC keeps.
const gcFloor = 8 << 20

// tuneGC sets the collector's GOGC to defaultGCPercent unless the
// environment sets one: idle sessions are most of an XMPP server's
// memory, and a tighter heap goal keeps the memory the runtime holds on
// to near what is live. With a small live heap that goal is tiny (1.6 MB
// above it at the runtime's 4 MB minimum), and a burst of logins, each
// allocating some 60 KB, ran a collection every twenty logins, a fifth of
// their CPU. So the collector also counts gcFloor bytes of ballast,
// returned for the caller to keep alive as long as it serves: a byte
// slice holds no pointers, so it is never scanned, and its pages, never
// written, are not resident. A collection then comes at most every
// gcFloor*GOGC/100 (3.2 MB) of allocation; with a large live heap the
// ballast moves the goal by the same 3.2 MB, a few percent.
func tuneGC() []byte {
	if os.Getenv("GOGC") != "" {
		return nil
	}
	debug.SetGCPercent(defaultGCPercent)
	return make([]byte, gcFloor)
}

func dbPath(cfg config.Config) string { return filepath.Join(cfg.DataDir, "ambrosia.db") }

// The credentials of the last logins are kept in memory, so that a
// client that reconnects costs no query: up to credentialCacheUsers users
// (some 250 bytes each, 4 MB at most: enough for a reconnection wave of
// a gateway's sessions), each for at most credentialCacheTTL. Changes
// made in this process forget them at once, and so do those of the user
// command, through the admin socket; the TTL bounds only a change whose
// announcement was lost. On PostgreSQL every
// process announces its changes to the others through the database
// (LISTEN/NOTIFY, see postgres.Store.CacheCredentials).
const (
	credentialCacheUsers = 16384
	credentialCacheTTL   = time.Minute
)

// cacheSharedCredentials turns the credential cache on when store is
// PostgreSQL; where the database cannot announce changes, every login
// reads it, as before.
func cacheSharedCredentials(ctx context.Context, store storeBackend, log *slog.Logger) {
	pg, ok := store.(*postgres.Store)
	if !ok {
		return
	}
	if err := pg.CacheCredentials(ctx, credentialCacheUsers, credentialCacheTTL, log.With("component", "storage")); err != nil {
		log.Warn("credentials are read from the database at every login", "err", err)
	}
}

// storeBackend is everything the commands take from the storage backend.
type storeBackend interface {
	storage.Store
	storage.FastTokens
	storage.PEP
	storage.MUC
	storage.AppServiceQueue
	storage.Invites
	Close() error
}

// openStore opens the backend that [storage] selects: the SQLite file in
// the data directory, or the PostgreSQL database that several instances
// share.
func openStore(ctx context.Context, cfg config.Config) (storeBackend, error) {
	if cfg.Storage.Backend == "postgres" {
		s, err := postgres.Open(ctx, cfg.Storage.PostgresDSN)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := sqlite.Open(ctx, dbPath(cfg))
	if err != nil {
		return nil, err
	}
	return s, nil
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	return newLevelLogger(c, new(slog.LevelVar), w)
}

// newLevelLogger is newLogger whose level is level, set from c and
// changeable later.
func newLevelLogger(c config.Log, level *slog.LevelVar, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	level.Set(lvl)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// loadTLS loads the operator's certificates or the generated ones.
func loadTLS(cfg config.Config) (*tls.Config, error) {
	m, err := loadCerts(cfg)
	if err != nil {
		return nil, err
	}
	tc := certs.Config(m, cfg.Domains, "xmpp-client")
	keyExchanges(tc, cfg.TLS)
	return tc, nil
}

// keyExchanges sets the key exchanges the client listeners accept: the
// classical ones, or with tls.post_quantum also the hybrid with ML-KEM,
// which Go would otherwise pick first whenever a client proposes it. A
// client that proposes both (as Go's does) sends a share of each, so
// leaving out the hybrid costs no extra round trip.
func keyExchanges(tc *tls.Config, c config.TLS) {
	if c.PostQuantum {
		return
	}
	tc.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}
}

// extensionPreSharedKey is TLS 1.3's pre_shared_key extension (RFC 8446
// §4.2.11): the ClientHello of a client resuming with a session ticket.
const extensionPreSharedKey = 41

// resumeClassical returns the configuration of the client listeners:
// tc, whose resumed handshakes, with tls.post_quantum, use X25519 rather
// than the hybrid with ML-KEM, which cost a fifth of a resumed STARTTLS
// login's CPU. The session keys of a resumed handshake come from the
// ticket's secret, agreed by the first handshake with the hybrid, and
// from the new exchange: an eavesdropper who breaks X25519 later still
// lacks that secret. A client whose ticket the server no longer knows
// (older than 7 days) gets a full handshake with X25519 only. Clients
// that propose X25519 send a share of it along with the hybrid's (Go,
// OpenSSL, browsers), so that no extra round trip is needed. The
// WebSocket and HTTPS listeners, which clone tc for their own protocols,
// keep tc unchanged.
func resumeClassical(tc *tls.Config, c config.TLS) *tls.Config {
	if !c.PostQuantum {
		return tc
	}
	classical := tc.Clone()
	classical.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}
	classical.GetConfigForClient = nil
	out := tc.Clone()
	prev := tc.GetConfigForClient
	out.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		if prev != nil {
			if c, err := prev(h); c != nil || err != nil {
				return c, err
			}
		}
		if slices.Contains(h.Extensions, extensionPreSharedKey) && slices.Contains(h.SupportedCurves, tls.X25519) {
			return classical, nil
		}
		return nil, nil
	}
	return out
}

// loadCerts loads the operator's certificates or the generated ones, by
// name.
func loadCerts(cfg config.Config) (map[string]tls.Certificate, error) {
	if cfg.TLS.CertDir != "" {
		return dirCerts(cfg)
	}
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
	return m, nil
}

// newUpload builds the HTTP File Upload service (XEP-0363), its files in
// data_dir/upload.
func newUpload(cfg config.Config, r *router.Router, tlsConf *tls.Config, log *slog.Logger) (*upload.Service, error) {
	uc := upload.DefaultConfig()
	uc.Domains = cfg.Domains
	uc.Component = cfg.Upload.Component
	uc.Dir = filepath.Join(cfg.DataDir, "upload")
	uc.Addr, uc.PlainAddr, uc.PublicURL = cfg.Upload.Addr, cfg.Upload.PlainAddr, cfg.Upload.PublicURL
	if cfg.HTTP.Upload && cfg.HTTP.Addr != "" && uc.PublicURL == "" {
		// The files are (also) served by the [http] listener: the URLs
		// point there.
		if cfg.HTTP.PublicURL != "" {
			uc.PublicURL = cfg.HTTP.PublicURL
		} else {
			uc.URLAddr = cfg.HTTP.Addr
		}
	}
	uc.MaxFileSize = int64(cfg.Upload.MaxFileSize)
	uc.Quota = int64(cfg.Upload.Quota)
	uc.ExpireAfter = time.Duration(cfg.Upload.ExpireAfter)
	return upload.New(uc, upload.Deps{Router: r, TLS: tlsConf, Log: log})
}
