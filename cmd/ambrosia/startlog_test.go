package main

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
)

// TestLogStartup: at the default level the log gives the generated
// certificate's file and SHA-256 fingerprint, says that plain connections
// are allowed, and warns when a domain that federates runs on a
// certificate other servers will not trust.
func TestLogStartup(t *testing.T) {
	for _, tc := range []struct {
		domains    []string
		allowPlain bool
		want       []string
		not        []string
	}{
		{domains: []string{"localhost"}, want: []string{"level=INFO", `msg="self-signed certificate" domain=localhost`},
			not: []string{"level=WARN", "allow_plain"}},
		{domains: []string{"localhost"}, allowPlain: true, want: []string{`msg="allow_plain is on`}},
		{domains: []string{"example.org"}, want: []string{"domain=example.org", "level=WARN", "fall back to dialback", "tls.cert_file"}},
	} {
		cfg := config.Default()
		cfg.Domains, cfg.DataDir, cfg.C2S.AllowPlain = tc.domains, t.TempDir(), tc.allowPlain
		tlsConf, err := loadTLS(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		logStartup(cfg, tlsConf, newLogger(cfg.Log, &b))
		got := b.String()
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%v: no %q in\n%s", tc.domains, w, got)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(got, w) {
				t.Errorf("%v: %q in\n%s", tc.domains, w, got)
			}
		}
		// The file and the fingerprint are those of the certificate served.
		file, keyFile := certs.Paths(cfg.DataDir, tc.domains[0])
		c, err := tls.LoadX509KeyPair(file, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if want := "file=" + file + " sha256=" + fingerprint(c.Certificate[0]); !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
	if fp := fingerprint([]byte("x")); len(fp) != 95 || fp[2] != ':' || strings.ToUpper(fp) != fp {
		t.Errorf("fingerprint %q", fp)
	}
}
