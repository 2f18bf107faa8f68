package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/cluster"
	"github.com/ambrosia-xmpp/ambrosia/internal/component"
	"github.com/ambrosia-xmpp/ambrosia/internal/link"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/web"
)

// linkFlags are the service protocol's flags, shared by `gateway` and
// `service`.
type linkFlags struct {
	addr          string
	secret        string
	domainSecrets componentFlags
	cert, key     string
	ca            string
}

func (f *linkFlags) register(fs *flag.FlagSet, gateway bool) {
	fs.StringVar(&f.secret, "service-secret", "", "shared `SECRET` of services and gateways (or AMBROSIA_SERVICE_SECRET)")
	fs.StringVar(&f.cert, "service-cert", "", "certificate `FILE` (PEM) of this end of service links")
	fs.StringVar(&f.key, "service-key", "", "key `FILE` (PEM) of --service-cert")
	if gateway {
		fs.StringVar(&f.addr, "service-addr", "127.0.0.1:5270", "service listener, `HOST:PORT`")
		fs.Var(&f.domainSecrets, "service-domain-secret", "`DOMAIN=SECRET`: a secret that lets a service bind that domain only; repeatable")
		fs.StringVar(&f.ca, "service-ca", "", "CA `FILE` (PEM) for service certificates: a service presenting one signed by it may bind the DNS names it holds (SASL EXTERNAL)")
	} else {
		fs.StringVar(&f.ca, "gateway-ca", "", "CA `FILE` (PEM) that gateway certificates must be signed by (default: not checked; SCRAM channel binding protects the link)")
	}
}

func (f *linkFlags) secretValue() string {
	if f.secret != "" {
		return f.secret
	}
	return os.Getenv("AMBROSIA_SERVICE_SECRET")
}

func loadPool(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no certificate", file)
	}
	return p, nil
}

// gatewayCmd runs the network edge: client listeners, the external
// component listener and the service listener. Domains, certificates and
// accounts come from the services that link to it.
func gatewayCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("gateway", "[flags]", `Runs the network edge of a split server: the client listeners, the
external component listener and the listener services link to (ambrosia
service sm|muc). Domains, certificates and accounts come from the services.`, stdout, stderr)
	// Caught from the start, so that a SIGHUP while the gateway starts
	// waits for the reloader instead of ending the process.
	hup := notifyHangup()
	var cf configFlags
	var lf linkFlags
	var clf clusterFlags
	cf.register(c.FlagSet, groupLog|groupMonitor|groupClients|groupComponents)
	lf.register(c.FlagSet, true)
	clf.register(c.FlagSet, true)
	if pos, err := c.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return c.wrongArgs(fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	log := newLevelLogger(cfg.Log, level, stderr)
	cf.warnEnv(log)
	clf.apply(cfg.Cluster)
	var listenTLS *tls.Config
	if lf.cert != "" {
		c, err := tls.LoadX509KeyPair(lf.cert, lf.key)
		if err != nil {
			return fmt.Errorf("--service-cert: %w", err)
		}
		listenTLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c}}
	} else {
		cp, kp, err := certs.SelfSigned("gateway", time.Now())
		if err != nil {
			return err
		}
		c, err := tls.X509KeyPair(cp, kp)
		if err != nil {
			return err
		}
		listenTLS = certs.Config(map[string]tls.Certificate{"gateway": c}, []string{"gateway"})
	}
	cas, err := loadPool(lf.ca)
	if err != nil {
		return fmt.Errorf("--service-ca: %w", err)
	}
	ds := map[string]string{}
	for _, e := range lf.domainSecrets {
		ds[strings.ToLower(e.Domain)] = e.Secret
	}
	if lf.secretValue() == "" && len(ds) == 0 && cas == nil {
		return errors.New("gateway: services have no way to authenticate: set a shared secret with --service-secret or AMBROSIA_SERVICE_SECRET, a secret per domain with --service-domain-secret, or a CA for service certificates with --service-ca")
	}
	ls := []listenerSetting{{"service listener", "service-addr", lf.addr}, {"c2s.addr", "c2s-addr", cfg.C2S.Addr}, {"c2s.tls_addr", "c2s-tls-addr", cfg.C2S.TLSAddr},
		{"metrics_addr", "metrics-addr", cfg.MetricsAddr}, {"debug_addr", "debug-addr", cfg.DebugAddr}, {"http.addr", "http-addr", cfg.HTTP.Addr}}
	if len(cfg.Component.External) > 0 {
		ls = append(ls, listenerSetting{"component.addr", "component-addr", cfg.Component.Addr})
	}
	if err := checkListeners(ls); err != nil {
		return err
	}
	var advertise string
	if clf.etcd != "" {
		if advertise, err = clf.advertised(lf.addr); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cl, err := clf.open(ctx, log)
	if err != nil {
		return err
	}
	r := router.New(log.With("component", "router"))
	mon, err := startMonitoring(ctx, cfg, log)
	if err != nil {
		return err
	}
	gd := link.GatewayDeps{Router: r, Log: log, Metrics: mon}
	if cl != nil {
		defer cl.Close()
		gd.Membership = cl
	}
	gw, err := link.NewGateway(link.GatewayConfig{Addr: lf.addr, Secret: lf.secretValue(), DomainSecrets: ds, TLS: listenTLS, ClientCAs: cas}, gd)
	if err != nil {
		return err
	}
	lim := newLimits(cfg, raiseFileLimit(log), log)
	edge, err := c2s.New(c2sConfig(cfg), c2s.Deps{Router: r, Auth: auth.New(redirectingCreds{gw}, nil), TLS: gw.TLSConfig(), Tokens: gw.FastTokens(), Log: log, Metrics: mon,
		Conns: lim.conns, Failures: lim.failures, Registrations: lim.registrations, InviteFailures: lim.invites})
	if err != nil {
		return err
	}
	lim.edge = edge
	type runner interface{ Run(context.Context) error }
	comps := []runner{gw, edge}
	if cl != nil {
		id := clf.id
		if id == "" {
			id = advertise
		}
		keep, err := cl.Register(ctx, cluster.Entry{ID: id, Gateway: advertise})
		if err != nil {
			return err
		}
		comps = append(comps, registrar{keep})
	}
	var components *component.Server
	if len(cfg.Component.External) > 0 && cfg.Component.Addr != "" {
		cc, err := componentConfig(cfg)
		if err != nil {
			return err
		}
		cs, err := component.New(cc, component.Deps{Router: r, Log: log, Metrics: mon})
		if err != nil {
			return err
		}
		comps = append(comps, cs)
		components = cs
	}
	// SIGHUP applies a new log level, [limits] and external components
	// (when their listener runs) as serve's reload does; the client
	// certificates are the services', which they send on linking.
	comps = append(comps, hangupRunner{&reloader{flags: &cf, cfg: cfg, level: level, log: log, components: components, limits: lim}, hup})
	// The [http] listener: WebSocket sessions are the edge's like TCP
	// ones; ready once a session manager is linked.
	webSrv, err := newWeb(ctx, cfg, gw.TLSConfig(), webParts{edge: edge, checks: map[string]web.Check{"services": servicesCheck(r)}}, log)
	if err != nil {
		return err
	}
	if webSrv != nil {
		comps = append(comps, webRunner{webSrv, edge})
	}
	log.Info("gateway starting", "version", version(), "services", lf.addr)
	return runAll(ctx, comps, func(c runner) func(context.Context) error { return c.Run })
}

// runAll runs every component until ctx is done or one fails.
func runAll[T any](ctx context.Context, comps []T, run func(T) func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(comps))
	for _, c := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(c)(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errc)
	var errs []error
	for e := range errc {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// redirectingCreds asks the services for credentials; a service that sends
// a user elsewhere makes the client edge end the stream with
// see-other-host.
type redirectingCreds struct{ gw *link.Gateway }

func (r redirectingCreds) Credential(ctx context.Context, user, hash string) (storage.Credential, error) {
	c, err := r.gw.Credential(ctx, user, hash)
	var so *link.SeeOtherHost
	if errors.As(err, &so) {
		c2s.SeeOtherHost(ctx, so.Host)
	}
	return c, err
}
