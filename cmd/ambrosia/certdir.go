package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ambrosia-xmpp/ambrosia/internal/config"
)

// certNames are the names a certificate directory may have a
// certificate for: the domains and their services.
func certNames(cfg config.Config) []string {
	names := append([]string(nil), cfg.Domains...)
	for _, d := range cfg.Domains {
		if cfg.Upload.Enabled {
			names = append(names, cfg.Upload.Component+"."+d)
		}
		if cfg.MUC.Enabled {
			names = append(names, cfg.MUC.Component+"."+d)
		}
	}
	return names
}

// certPaths are where a certificate directory keeps name's certificate
// and key, in the order they are looked for.
func certPaths(dir, name string) [][2]string {
	return [][2]string{
		{filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")},
		{filepath.Join(dir, name, "fullchain.pem"), filepath.Join(dir, name, "privkey.pem")},
	}
}

// dirPEM returns the certificate and key files of name in dir; ok is
// false when dir has none for it.
func dirPEM(dir, name string) (certFile, keyFile string, ok bool) {
	for _, p := range certPaths(dir, name) {
		if _, err := os.Stat(p[0]); err == nil {
			return p[0], p[1], true
		}
	}
	return "", "", false
}

// dirCerts loads the certificates of tls.cert_dir, with tls.cert_file for
// the domains it has none for.
func dirCerts(cfg config.Config) (map[string]tls.Certificate, error) {
	m := map[string]tls.Certificate{}
	for _, name := range certNames(cfg) {
		cf, kf, ok := dirPEM(cfg.TLS.CertDir, name)
		if !ok {
			continue
		}
		c, err := tls.LoadX509KeyPair(cf, kf)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_dir: %s: %w", name, err)
		}
		m[name] = c
	}
	var fallback *tls.Certificate
	for _, d := range cfg.Domains {
		if _, ok := m[d]; ok {
			continue
		}
		if cfg.TLS.CertFile == "" {
			p := certPaths(cfg.TLS.CertDir, d)
			return nil, fmt.Errorf("tls.cert_dir: no certificate for %s: looked for %s and %s, then %s and %s (or set tls.cert_file for the domains without one)",
				d, p[0][0], p[0][1], p[1][0], p[1][1])
		}
		if fallback == nil {
			c, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("tls: %w", err)
			}
			fallback = &c
		}
		m[d] = *fallback
	}
	if len(m) == 0 {
		return nil, errors.New("tls.cert_dir: no certificate")
	}
	return m, nil
}
