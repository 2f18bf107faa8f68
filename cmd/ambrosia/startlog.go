package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
)

// logStartup says at start what an operator must know before the first
// client connects: the generated certificates (where they are, and the
// fingerprint clients ask the user to compare), plain connections being
// allowed, and federating domains whose certificate other servers will
// not trust.
func logStartup(cfg config.Config, tlsConf *tls.Config, log *slog.Logger) {
	for _, d := range cfg.Domains {
		c, err := tlsConf.GetCertificate(&tls.ClientHelloInfo{ServerName: d})
		if err != nil || c == nil || len(c.Certificate) == 0 {
			continue
		}
		if cfg.TLS.CertFile == "" && cfg.TLS.CertDir == "" && (c.Leaf == nil || bytes.Equal(c.Leaf.RawIssuer, c.Leaf.RawSubject)) {
			file, _ := certs.Paths(cfg.DataDir, d)
			log.Info("self-signed certificate", "domain", d, "file", file, "sha256", fingerprint(c.Certificate[0]))
		}
	}
	if cfg.C2S.AllowPlain {
		log.Info("allow_plain is on: clients may log in without TLS, their passwords readable by anyone on the network")
	}
	if !cfg.S2S.Enabled {
		return
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	for _, d := range federatedDomains(cfg) {
		c, err := tlsConf.GetCertificate(&tls.ClientHelloInfo{ServerName: d})
		if err != nil || c == nil || len(c.Certificate) == 0 {
			continue
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			continue
		}
		inter := x509.NewCertPool()
		for _, der := range c.Certificate[1:] {
			if ic, err := x509.ParseCertificate(der); err == nil {
				inter.AddCert(ic)
			}
		}
		_, verr := leaf.Verify(x509.VerifyOptions{DNSName: d, Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: time.Now()})
		if verr != nil {
			log.Warn("federation with a certificate other servers will not trust: they refuse SASL EXTERNAL and fall back to dialback, and clients warn; set tls.cert_file and tls.key_file to a certificate from a public CA (ambrosia check tells more)",
				"domain", d, "err", verr.Error())
		}
	}
}

// fingerprint is the SHA-256 of a certificate as clients show it:
// colon-separated upper-case hex.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}
