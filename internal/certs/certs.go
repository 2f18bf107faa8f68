// Package certs provides the TLS certificates of the served domains: the
// operator's files when configured, otherwise a self-signed certificate per
// domain, generated once and kept in the data directory so that clients
// can pin it and a default start works with zero configuration.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Paths returns where the self-signed certificate of domain is kept.
func Paths(dataDir, domain string) (cert, key string) {
	d := filepath.Join(dataDir, "tls")
	return filepath.Join(d, domain+".crt"), filepath.Join(d, domain+".key")
}

// LoadOrCreate returns the certificate of domain from dataDir, generating a
// self-signed one valid for ten years if none exists.
func LoadOrCreate(dataDir, domain string, now time.Time) (tls.Certificate, error) {
	cf, kf := Paths(dataDir, domain)
	if c, err := tls.LoadX509KeyPair(cf, kf); err == nil {
		return c, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("certs: %s: %w", domain, err)
	}
	if err := os.MkdirAll(filepath.Dir(cf), 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: %w", err)
	}
	certPEM, keyPEM, err := SelfSigned(domain, now)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(kf, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: %w", err)
	}
	if err := os.WriteFile(cf, certPEM, 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: %w", err)
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// SelfSigned makes an ECDSA P-256 certificate for domain and its
// subdomains, PEM encoded.
func SelfSigned(domain string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: domain, Organization: []string{"Ambrosia self-signed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if ip := net.ParseIP(strings.Trim(domain, "[]")); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{domain, "*." + domain}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// Config returns a server TLS configuration that picks the certificate by
// SNI, falling back to the first one, and offers ALPN protos.
func Config(certs map[string]tls.Certificate, order []string, alpn ...string) *tls.Config {
	return NewStore(certs, order).Config(alpn...)
}
