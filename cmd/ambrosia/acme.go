package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/acmecert"
	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
)

// acmeNames groups the names of each certificate to obtain: one per
// domain an authority can check, with the domain's service names.
func acmeNames(cfg config.Config, log *slog.Logger) [][]string {
	var sets [][]string
	for _, d := range cfg.Domains {
		if !publicName(d) {
			log.Warn("acme: no certificate for a name no authority can check; it keeps its self-signed one", "domain", d)
			continue
		}
		names := []string{d}
		if cfg.Upload.Enabled {
			names = append(names, cfg.Upload.Component+"."+d)
		}
		if cfg.MUC.Enabled {
			names = append(names, cfg.MUC.Component+"."+d)
		}
		sets = append(sets, names)
	}
	return sets
}

// publicName reports whether an authority could check name: a DNS name
// with a dot, not an address nor localhost.
func publicName(name string) bool {
	if net.ParseIP(strings.Trim(name, "[]")) != nil || !strings.Contains(name, ".") {
		return false
	}
	return name != "localhost" && !strings.HasSuffix(name, ".localhost")
}

// acmeDir is where the ACME account and certificates are kept.
func acmeDir(cfg config.Config) string { return filepath.Join(cfg.DataDir, "acme") }

// acmeHTTPClient is the client of the authority's directory: it trusts
// the system's roots and, for a test authority, those of tls.acme_ca_file.
func acmeHTTPClient(cfg config.Config) (*http.Client, error) {
	if cfg.TLS.ACMECAFile == "" {
		return &http.Client{Timeout: time.Minute}, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	b, err := os.ReadFile(cfg.TLS.ACMECAFile)
	if err != nil {
		return nil, fmt.Errorf("tls.acme_ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls.acme_ca_file: %s holds no PEM certificate", cfg.TLS.ACMECAFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: time.Minute}, nil
}

// newACME builds the certificate manager of tls.acme, which installs
// the certificates kept from before in store at once; nil when off.
func newACME(cfg config.Config, store *certs.Store, log *slog.Logger) (*acmecert.Manager, error) {
	if !cfg.TLS.ACME {
		return nil, nil
	}
	hc, err := acmeHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	return acmecert.New(acmecert.Config{
		DirectoryURL: cfg.TLS.ACMEDirectory,
		Email:        cfg.TLS.ACMEEmail,
		HTTPClient:   hc,
		Challenge:    cfg.TLS.ACMEChallenge,
		Dir:          acmeDir(cfg),
		Certificates: acmeNames(cfg, log),
	}, acmecert.Deps{Installer: store, Log: log.With("component", "acme")})
}

// listenACME opens the HTTP-01 listener when that is the challenge; nil
// otherwise.
func listenACME(cfg config.Config) (net.Listener, error) {
	if !cfg.TLS.ACME || cfg.TLS.ACMEChallenge != acmecert.ChallengeHTTP {
		return nil, nil
	}
	l, err := net.Listen("tcp", cfg.TLS.ACMEHTTPAddr)
	if err != nil {
		return nil, listenError(listenerSetting{"tls.acme_http_addr", "", cfg.TLS.ACMEHTTPAddr}, err)
	}
	return l, nil
}

// runACME serves the HTTP-01 listener l when there is one, waits for a
// TLS listener to accept when the challenge is TLS-ALPN-01 (the
// authority connects to it at once), and then runs the manager until ctx
// is done, on wg.
func runACME(ctx context.Context, wg *sync.WaitGroup, cfg config.Config, m *acmecert.Manager, l net.Listener, log *slog.Logger) {
	if m == nil {
		return
	}
	if l != nil {
		srv := &http.Server{Handler: m.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
		log.Info("listening", "component", "acme", "addr", l.Addr().String(), "challenge", cfg.TLS.ACMEChallenge)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("acme: HTTP listener", "err", err)
			}
		}()
		context.AfterFunc(ctx, func() { srv.Close() })
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if cfg.TLS.ACMEChallenge == acmecert.ChallengeTLSALPN {
			waitAccepting(ctx, []string{cfg.C2S.TLSAddr, cfg.Upload.Addr, cfg.S2S.TLSAddr})
		}
		_ = m.Run(ctx)
	}()
}

// waitAccepting waits (a few seconds at most) until one of addrs accepts
// a connection.
func waitAccepting(ctx context.Context, addrs []string) {
	for range 200 {
		for _, a := range addrs {
			if a == "" {
				continue
			}
			host, port, err := net.SplitHostPort(a)
			if err != nil {
				continue
			}
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), time.Second)
			if err == nil {
				c.Close()
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(25 * time.Millisecond):
		}
	}
}
