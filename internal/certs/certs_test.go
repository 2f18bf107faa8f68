package certs

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"
)

func TestLoadOrCreateKeepsTheCertificate(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	c1, err := LoadOrCreate(dir, "example.org", now)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := LoadOrCreate(dir, "example.org", now)
	if err != nil {
		t.Fatal(err)
	}
	if string(c1.Certificate[0]) != string(c2.Certificate[0]) {
		t.Fatal("certificate regenerated")
	}
	_, kf := Paths(dir, "example.org")
	if st, err := os.Stat(kf); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
	leaf, err := x509.ParseCertificate(c1.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"example.org", "muc.example.org"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestConfigPicksBySNI(t *testing.T) {
	now := time.Now()
	mk := func(d string) tls.Certificate {
		c, k, err := SelfSigned(d, now)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	certs := map[string]tls.Certificate{"a.example": mk("a.example"), "b.example": mk("b.example")}
	cfg := Config(certs, []string{"a.example", "b.example"}, "xmpp-client")
	for sni, want := range map[string]string{"b.example": "b.example", "muc.b.example": "b.example", "B.Example.": "b.example", "": "a.example", "other": "a.example"} {
		c, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(c.Certificate[0])
		if leaf.Subject.CommonName != want {
			t.Errorf("SNI %q: got %s, want %s", sni, leaf.Subject.CommonName, want)
		}
	}
}
