package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/cluster"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/link"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/prefetch"
)

// serviceCmd runs one service linked to gateways: `ambrosia service sm`
// or `ambrosia service muc`.
const serviceUsage = `usage: ambrosia service sm|muc --gateway HOST:PORT [flags]

Runs one service of a split server and links it to gateways:
  sm    the session manager of the domains: sessions, rosters, presence, archives
  muc   the conference service (multi-user chat) of the domains

Run 'ambrosia service sm -h' for the flags.
`

func serviceCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name, err := subcommand("service", args, []string{"sm", "muc"}, serviceUsage, stdout, stderr)
	if err != nil {
		return err
	}
	about := "Runs the session manager of the domains and links it to the gateways."
	if name == "muc" {
		about = "Runs the conference service (multi-user chat) of the domains and links it to the gateways."
	}
	fs := newCommand("service "+name, "--gateway HOST:PORT [flags]", about, stdout, stderr)
	var cf configFlags
	var lf linkFlags
	var clf clusterFlags
	var gateways, instance, user, seeOther string
	cf.register(fs.FlagSet, groupStore|groupLog|groupMonitor)
	lf.register(fs.FlagSet, false)
	clf.register(fs.FlagSet, false)
	fs.StringVar(&gateways, "gateway", "127.0.0.1:5270", "service listeners of the gateways to link to, `HOST:PORT,...` (with --etcd: besides those of the cluster; default none)")
	fs.StringVar(&instance, "instance", "", "instance `ID`, unique among the instances of the service (default: random)")
	fs.StringVar(&seeOther, "see-other-host", "", "`HOST[:PORT]` where gateways send the clients of users this service does not know (RFC 6120 see-other-host) instead of failing their login")
	fs.StringVar(&user, "service-user", link.AllDomains, "`NAME` to authenticate as: \""+link.AllDomains+"\" for the shared secret, or a domain for its own secret")
	if pos, err := fs.parse(args[1:]); err != nil {
		return err
	} else if len(pos) > 0 {
		return fs.wrongArgs(fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	if err := checkHostPort(seeOther); err != nil {
		return fmt.Errorf("--see-other-host: %w", err)
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	cf.warnEnv(log)
	clf.apply(cfg.Cluster)
	defer runtime.KeepAlive(tuneGC())
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if tc.RootCAs, err = loadPool(lf.ca); err != nil {
		return fmt.Errorf("--gateway-ca: %w", err)
	}
	if lf.cert != "" {
		c, err := tls.LoadX509KeyPair(lf.cert, lf.key)
		if err != nil {
			return fmt.Errorf("--service-cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	gatewayList := strings.Split(gateways, ",")
	if clf.etcd != "" {
		gatewayList = nil
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "gateway" && gateways != "" {
				gatewayList = strings.Split(gateways, ",")
			}
		})
		if instance == "" {
			instance = stanza.NewID()
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cl, err := clf.open(ctx, log)
	if err != nil {
		return err
	}
	if cl != nil {
		defer cl.Close()
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	r := router.New(log.With("component", "router"))
	mon, err := startMonitoring(ctx, cfg, log)
	if err != nil {
		return err
	}
	var bindings []link.Binding
	var stop func() error // after the links end: stops what runs here
	var ahead func(string)
	switch name {
	case "sm":
		// Users' state is read as the links read the sessions'
		// announcements, ahead of their processing.
		pf := prefetch.New(store, prefetchInFlight, prefetchKept, cfg.Archive.Enabled)
		ahead = pf.Ahead
		// The gateways ask the instances for their users' credentials.
		cacheSharedCredentials(ctx, store, log)
		sms, err := newSessionManagers(cfg, r, store, mon, log, func(c *sm.Config, d *sm.Deps) {
			c.LoadOnLogin = true
			d.Roster, d.Offline, d.Blocklist = pf, pf, pf
			if d.Archive != nil {
				d.Archive = pf
			}
		})
		if err != nil {
			return err
		}
		smDone := make(chan error, len(sms))
		for i, m := range sms {
			go func() { smDone <- m.Run(ctx) }()
			d := cfg.Domains[i]
			// The session manager registers itself for its domain; take
			// that back, so that stanzas to its users go through a
			// gateway, which knows the instance owning each user.
			for j := 0; j < 1000; j++ {
				if c, ok := r.Lookup(d); ok && c == router.Component(m) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			r.Unregister(d, m)
			certPEM, keyPEM, err := domainPEM(cfg, d)
			if err != nil {
				return err
			}
			bindings = append(bindings, link.Binding{Domain: d, Kind: "sm", Component: m, CertPEM: certPEM, KeyPEM: keyPEM})
		}
		stop = func() error {
			var err error
			for range sms {
				if e := <-smDone; e != nil && !errors.Is(e, context.Canceled) {
					err = errors.Join(err, e)
				}
			}
			return err
		}
	case "muc":
		conf, err := newMUC(cfg, r, store, mon, log, nil)
		if err != nil {
			return err
		}
		if conf == nil {
			return errors.New("service muc: [muc] enabled = false")
		}
		// Not registered with this process's router: stanzas to rooms go
		// through a gateway, which knows the instance owning each room.
		if err := conf.Start(ctx); err != nil {
			return err
		}
		for _, d := range conf.Domains() {
			bindings = append(bindings, link.Binding{Domain: d, Kind: "muc", Component: conf})
		}
		stop = func() error { conf.Stop(); return nil }
	}
	sd := link.ServiceDeps{Router: r, Credentials: store, Tokens: store, Log: log, Metrics: mon, Ahead: ahead}
	if cl != nil {
		sd.Membership = cl
	}
	svc, err := link.NewService(link.ServiceConfig{
		Gateways: gatewayList, Username: user, Secret: lf.secretValue(), External: lf.cert != "" && lf.secretValue() == "",
		Instance: instance, TLS: tc, Bindings: bindings, SeeOtherHost: seeOther,
	}, sd)
	if err != nil {
		cancel()
		return errors.Join(err, stop())
	}
	r.SetFallback(svc.Forwarder())
	keepDone := make(chan struct{})
	if cl != nil {
		var domains []string
		for _, b := range bindings {
			domains = append(domains, b.Domain)
		}
		// Registered before linking: a domain of another service stops
		// the start before any gateway sees this instance.
		keep, err := cl.Register(ctx, cluster.Entry{ID: instance, Kind: name, Domains: domains})
		if err != nil {
			cancel()
			return errors.Join(err, stop())
		}
		go func() {
			defer close(keepDone)
			keep()
		}()
	} else {
		close(keepDone)
	}
	log.Info("service starting", "version", version(), "service", name, "domains", cfg.Domains, "gateways", gatewayList, "etcd", clf.etcd)
	err = svc.Run(ctx)
	cancel()
	<-keepDone
	return errors.Join(err, stop())
}

// domainPEM returns the certificate and key of domain that the gateways
// present to its clients: the operator's files, or the one generated in
// the data directory, as `serve` uses.
func domainPEM(cfg config.Config, domain string) (certPEM, keyPEM []byte, err error) {
	cf, kf := cfg.TLS.CertFile, cfg.TLS.KeyFile
	if cfg.TLS.CertDir != "" {
		if f, k, ok := dirPEM(cfg.TLS.CertDir, domain); ok {
			cf, kf = f, k
		}
	}
	if cf == "" {
		if _, err := certs.LoadOrCreate(cfg.DataDir, domain, time.Now()); err != nil {
			return nil, nil, err
		}
		cf, kf = certs.Paths(cfg.DataDir, domain)
	}
	if certPEM, err = os.ReadFile(cf); err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	if keyPEM, err = os.ReadFile(kf); err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	return certPEM, keyPEM, nil
}

// checkHostPort accepts "", a host name or a host:port, as the
// see-other-host value of RFC 6120 §4.9.3.19.
func checkHostPort(v string) error {
	if v == "" {
		return nil
	}
	host := v
	if h, p, err := net.SplitHostPort(v); err == nil {
		n, perr := strconv.Atoi(p)
		if perr != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("bad port in %q", v)
		}
		host = h
	}
	if host == "" || len(v) > 1023 || strings.ContainsAny(host, " /@<>'\"&\t\r\n") {
		return fmt.Errorf("%q is not a host or host:port", v)
	}
	return nil
}

// A session manager instance reads ahead the state (roster, offline
// messages, blocklist, archive preferences) of at most prefetchInFlight
// users at a time (each holds a database connection meanwhile: the pool
// has at least 16, see postgres.Open) and keeps at most prefetchKept
// users' reads.
const (
	prefetchInFlight = 8
	prefetchKept     = 1 << 16
)
