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
// self-signed one valid for ten years if none exists. Processes sharing
// the data directory (instances of a service started together) agree on
// one pair: the key file is claimed by a hard link, which fails for all
// but the first, and the others wait for its certificate.
func LoadOrCreate(dataDir, domain string, now time.Time) (tls.Certificate, error) {
	return loadOrCreate(dataDir, domain, now, claimWait)
}

// loadOrCreate is LoadOrCreate waiting at most wait for the certificate of
// a key file without one before it takes the key for a dead creator's.
func loadOrCreate(dataDir, domain string, now time.Time, wait time.Duration) (tls.Certificate, error) {
	cf, kf := Paths(dataDir, domain)
	for waited := time.Duration(0); ; {
		c, err := tls.LoadX509KeyPair(cf, kf)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return tls.Certificate{}, fmt.Errorf("certs: %s: %w", domain, err)
		}
		if _, err := os.Stat(kf); err == nil {
			// The key without its certificate: another process is
			// writing the pair, or died between the two files.
			if waited < wait {
				time.Sleep(claimPoll)
				waited += claimPoll
				continue
			}
			if err := os.Remove(kf); err != nil && !errors.Is(err, os.ErrNotExist) {
				return tls.Certificate{}, fmt.Errorf("certs: %w", err)
			}
		}
		if err := create(cf, kf, domain, now); err != nil {
			return tls.Certificate{}, err
		}
	}
}

// How long LoadOrCreate waits for the certificate of a key another process
// claimed, and how often it looks.
const (
	claimWait = 10 * time.Second
	claimPoll = 20 * time.Millisecond
)

// create writes a new self-signed pair for domain, unless another process
// claimed the key file first (then it returns nil: the caller loads
// theirs).
func create(cf, kf, domain string, now time.Time) error {
	dir := filepath.Dir(cf)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	certPEM, keyPEM, err := SelfSigned(domain, now)
	if err != nil {
		return err
	}
	keyTmp, err := writeTemp(dir, keyPEM, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(keyTmp)
	if err := os.Link(keyTmp, kf); errors.Is(err, os.ErrExist) {
		return nil
	} else if err != nil {
		// No hard links here: the last writer's key wins, as before.
		if err := os.Rename(keyTmp, kf); err != nil {
			return fmt.Errorf("certs: %w", err)
		}
	}
	certTmp, err := writeTemp(dir, certPEM, 0o644)
	if err != nil {
		return err
	}
	if err := os.Rename(certTmp, cf); err != nil {
		os.Remove(certTmp)
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

// writeTemp writes b to a new file of dir with mode perm and returns its
// path.
func writeTemp(dir string, b []byte, perm os.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, ".new-*")
	if err != nil {
		return "", fmt.Errorf("certs: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("certs: %w", err)
	}
	return f.Name(), nil
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
