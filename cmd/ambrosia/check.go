package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/acmecert"
	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/s2s"
)

// federatedDomains returns the served domains that can federate: a
// domain other servers cannot resolve to us (localhost, an IP literal, a
// name without a dot) is left out.
func federatedDomains(cfg config.Config) []string {
	var out []string
	for _, d := range cfg.Domains {
		h := strings.Trim(d, "[]")
		if h == "localhost" || strings.HasSuffix(h, ".localhost") || net.ParseIP(h) != nil || !strings.Contains(h, ".") {
			continue
		}
		out = append(out, d)
	}
	return out
}

// newFederation builds the s2s service for cfg, reporting to m (nil for
// none), or nil when federation is off or no domain can federate.
func newFederation(cfg config.Config, r *router.Router, m s2s.Metrics, conns *limit.Conns, log *slog.Logger, store *certs.Store) (*s2s.Service, error) {
	domains := federatedDomains(cfg)
	if !cfg.S2S.Enabled || len(domains) == 0 {
		if cfg.S2S.Enabled {
			log.Info("federation off: no domain other servers could reach", "domains", cfg.Domains)
		}
		return nil, nil
	}
	sc, err := federationConfig(cfg, domains)
	if err != nil {
		return nil, err
	}
	sc.Store = store
	return s2s.New(sc, s2s.Deps{Router: r, Log: log, Metrics: m, Conns: conns})
}

// federationConfig turns the [s2s] section into the service's config.
func federationConfig(cfg config.Config, domains []string) (s2s.Config, error) {
	certMap, err := domainCerts(cfg)
	if err != nil {
		return s2s.Config{}, err
	}
	roots, err := trustRoots(cfg.S2S.TrustFile)
	if err != nil {
		return s2s.Config{}, err
	}
	secret, err := dialbackSecret(cfg)
	if err != nil {
		return s2s.Config{}, err
	}
	exempt, _ := limit.ParseNets(cfg.Limits.Exempt) // validated with the config
	return s2s.Config{
		ReadRate:       limit.Rate{Bytes: cfg.Limits.S2SRate, Burst: cfg.Limits.S2SBurst},
		ReadRateExempt: exempt,
		Addr:           cfg.S2S.Addr,
		TLSAddr:        cfg.S2S.TLSAddr,
		Domains:        domains,
		Certs:          certMap,
		Roots:          roots,
		Secret:         secret,
		ConnectTimeout: time.Duration(cfg.S2S.ConnectTimeout),
		IdleTimeout:    time.Duration(cfg.S2S.IdleTimeout),
		Hosts:          cfg.S2S.Hosts,
	}, nil
}

// domainCerts returns each domain's certificate as c2s presents it.
func domainCerts(cfg config.Config) (map[string]tls.Certificate, error) {
	tc, err := loadTLS(cfg)
	if err != nil {
		return nil, err
	}
	m := make(map[string]tls.Certificate, len(cfg.Domains))
	for _, d := range cfg.Domains {
		if cfg.TLS.ACME {
			// The certificate obtained over ACME, once there is one.
			if c, err := tls.LoadX509KeyPair(acmecert.Paths(acmeDir(cfg), d)); err == nil {
				m[d] = c
				continue
			}
		}
		c, err := tc.GetCertificate(&tls.ClientHelloInfo{ServerName: d})
		if err != nil {
			return nil, fmt.Errorf("tls: %s: %w", d, err)
		}
		m[d] = *c
	}
	return m, nil
}

// trustRoots is the system's roots plus those of file.
func trustRoots(file string) (*x509.CertPool, error) {
	pool, err := s2s.TrustRoots(file)
	if err != nil {
		return nil, fmt.Errorf("s2s.trust_file: %w", err)
	}
	return pool, nil
}

// dialbackSecret returns the configured secret, else the one kept in the
// data directory, generating it on first use.
func dialbackSecret(cfg config.Config) ([]byte, error) {
	return s2s.DialbackSecret(cfg.DataDir, cfg.S2S.DialbackSecret)
}

// checkCmd reports, for each served domain, its DNS records, its
// certificate and, with --remote, whether federation with that domain
// works.
func checkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("check", "[--remote DOMAIN] [flags]", `Reports, for each served domain, its SRV and A/AAAA records and its
certificate (issuer, expiry, whether other servers will trust it); with
--remote, connects to DOMAIN and authenticates as federation would. Exits
non-zero when a certificate expires within 14 days or federation fails.`, stdout, stderr)
	var cf configFlags
	cf.register(c.FlagSet, groupStore)
	var remote string
	c.StringVar(&remote, "remote", "", "also connect to this remote `DOMAIN` and authenticate, as federation would")
	if pos, err := c.parse(args); err != nil {
		return err
	} else if len(pos) > 0 {
		return c.wrongArgs(fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	cf.printEnvWarnings(stderr)
	res, err := s2s.NewDNSResolver("/etc/resolv.conf")
	if err != nil {
		return err
	}
	certMap, err := domainCerts(cfg)
	if err != nil {
		return err
	}
	roots, err := trustRoots(cfg.S2S.TrustFile)
	if err != nil {
		return err
	}
	failed := false
	now := time.Now()
	for _, d := range cfg.Domains {
		fmt.Fprintf(stdout, "%s\n", d)
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		for _, svc := range []string{"xmpp-client", "xmpps-client", "xmpp-server", "xmpps-server"} {
			recs, err := res.LookupSRV(lctx, svc, "tcp", d)
			switch {
			case err != nil:
				fmt.Fprintf(stdout, "  SRV _%s._tcp: lookup failed: %v\n", svc, err)
			case len(recs) == 0:
				fmt.Fprintf(stdout, "  SRV _%s._tcp: none\n", svc)
			}
			for _, r := range recs {
				fmt.Fprintf(stdout, "  SRV _%s._tcp: %s:%d (priority %d, weight %d)\n", svc, r.Target, r.Port, r.Priority, r.Weight)
			}
		}
		if addrs, err := res.LookupHost(lctx, d); err != nil {
			fmt.Fprintf(stdout, "  A/AAAA: %v\n", err)
		} else {
			fmt.Fprintf(stdout, "  A/AAAA: %s\n", strings.Join(addrs, " "))
		}
		cancel()
		c := certMap[d]
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			fmt.Fprintf(stdout, "  certificate: unreadable: %v\n", err)
			failed = true
			continue
		}
		inter := x509.NewCertPool()
		for _, der := range c.Certificate[1:] {
			if ic, err := x509.ParseCertificate(der); err == nil {
				inter.AddCert(ic)
			}
		}
		_, verr := leaf.Verify(x509.VerifyOptions{DNSName: d, Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: now})
		state := "valid"
		if verr != nil {
			state = "not trusted by other servers (" + verr.Error() + "); federation falls back to dialback"
		}
		fmt.Fprintf(stdout, "  certificate: issuer %q, expires %s (in %d days): %s\n", leaf.Issuer.CommonName, leaf.NotAfter.Format(time.RFC3339), int(leaf.NotAfter.Sub(now).Hours()/24), state)
		if leaf.NotAfter.Before(now.Add(14 * 24 * time.Hour)) {
			fmt.Fprintln(stdout, "  certificate: expires within 14 days")
			failed = true
		}
	}
	if remote != "" {
		domains := federatedDomains(cfg)
		if len(domains) == 0 {
			return errors.New("check: no served domain can federate (localhost and IP addresses cannot)")
		}
		sc, err := federationConfig(cfg, domains)
		if err != nil {
			return err
		}
		sc.Addr, sc.TLSAddr = "", ""
		sc.Resolver = res
		r := router.New(slog.New(slog.DiscardHandler))
		for _, d := range domains {
			// Only so that the service knows its own domains.
			_ = r.Register(d, nopComponent{})
		}
		svc, err := s2s.New(sc, s2s.Deps{Router: r, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		defer svc.Shutdown()
		for _, d := range domains {
			method, err := svc.Check(ctx, d, remote)
			if err != nil {
				fmt.Fprintf(stdout, "s2s %s -> %s: FAILED: %v\n", d, remote, err)
				failed = true
				continue
			}
			fmt.Fprintf(stdout, "s2s %s -> %s: ok (%s)\n", d, remote, method)
		}
	}
	if failed {
		return errors.New("check: problems found")
	}
	return nil
}

// nopComponent stands for a local domain when only federation runs.
type nopComponent struct{}

func (nopComponent) HandleStanza(context.Context, router.Stanza) {}
