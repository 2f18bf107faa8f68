package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
)

// TestCertDir: tls.cert_dir gives each domain and service name its own
// certificate, in Prosody's layout or certbot's, and names the files it
// looked for when a domain has none.
func TestCertDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, certFile, keyFile string) {
		c, k, err := certs.SelfSigned(name, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(certFile, c, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, k, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("example.org", filepath.Join(dir, "example.org.crt"), filepath.Join(dir, "example.org.key"))
	write("upload.example.org", filepath.Join(dir, "upload.example.org", "fullchain.pem"), filepath.Join(dir, "upload.example.org", "privkey.pem"))
	write("example.net", filepath.Join(dir, "example.net", "fullchain.pem"), filepath.Join(dir, "example.net", "privkey.pem"))

	cfg := config.Default()
	cfg.Domains, cfg.DataDir, cfg.TLS.CertDir = []string{"example.org", "example.net"}, t.TempDir(), dir
	tc, err := loadTLS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for sni, want := range map[string]string{"example.org": "example.org", "upload.example.org": "upload.example.org",
		"conference.example.org": "example.org", "example.net": "example.net", "upload.example.net": "example.net"} {
		c, err := tc.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if leaf.Subject.CommonName != want {
			t.Errorf("%s: certificate of %s, want %s", sni, leaf.Subject.CommonName, want)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "tls")); err == nil {
		t.Error("a certificate was generated although the directory has them")
	}
	// The service links present the same files.
	if c, _, err := domainPEM(cfg, "example.net"); err != nil || !strings.Contains(string(c), "CERTIFICATE") {
		t.Fatalf("domainPEM: %v", err)
	}

	cfg.Domains = []string{"example.org", "example.com"}
	_, err = loadTLS(cfg)
	if err == nil || !strings.Contains(err.Error(), "no certificate for example.com") || !strings.Contains(err.Error(), filepath.Join(dir, "example.com.crt")) {
		t.Fatalf("a domain without a certificate: %v", err)
	}
}
