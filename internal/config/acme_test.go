package config

import (
	"strings"
	"testing"
)

func TestACMEValidate(t *testing.T) {
	tests := []struct {
		name, doc, wantErr string
	}{
		{"off by default", "", ""},
		{"defaults", "[tls]\nacme = true\n", ""},
		{"http-01", "[tls]\nacme = true\nacme_challenge = 'http-01'\nacme_http_addr = '127.0.0.1:8080'\nacme_email = 'admin@example.org'\n", ""},
		{"with a certificate file", "[tls]\nacme = true\ncert_file = 'a.crt'\nkey_file = 'a.key'\n", "tls.acme"},
		{"with a certificate directory", "[tls]\nacme = true\ncert_dir = '/etc/certs'\n", "tls.acme"},
		{"plain http directory", "[tls]\nacme = true\nacme_directory = 'http://ca.example/dir'\n", "tls.acme_directory"},
		{"unknown challenge", "[tls]\nacme = true\nacme_challenge = 'dns-01'\n", "tls.acme_challenge"},
		{"http-01 without a listener", "[tls]\nacme = true\nacme_challenge = 'http-01'\nacme_http_addr = ''\n", "tls.acme_http_addr"},
		{"bad email", "[tls]\nacme = true\nacme_email = 'nobody'\n", "tls.acme_email"},
	}
	for _, tt := range tests {
		c := Default()
		if err := Decode([]byte(tt.doc), &c); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		err := c.Validate()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: %v, want an error naming %s", tt.name, err, tt.wantErr)
		}
	}
	if c := Default(); c.TLS.ACMEDirectory != "https://acme-v02.api.letsencrypt.org/directory" || c.TLS.ACMEChallenge != "tls-alpn-01" || c.TLS.ACMEHTTPAddr != ":80" {
		t.Errorf("defaults: %+v", c.TLS)
	}
}
