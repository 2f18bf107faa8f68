package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"sync"
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

// TestLoadOrCreateConcurrently starts, over and over, several creators of
// one domain's certificate in a fresh data directory at once, as
// instances of a service sharing it do: all must end with the same pair,
// the one on disk.
func TestLoadOrCreateConcurrently(t *testing.T) {
	for round := range 20 {
		dir := t.TempDir()
		const creators = 6
		got := make([]tls.Certificate, creators)
		errs := make([]error, creators)
		var wg sync.WaitGroup
		for i := range creators {
			wg.Go(func() { got[i], errs[i] = LoadOrCreate(dir, "example.org", time.Now()) })
		}
		wg.Wait()
		disk, err := tls.LoadX509KeyPair(Paths(dir, "example.org"))
		if err != nil {
			t.Fatalf("round %d: the pair on disk: %v", round, err)
		}
		for i := range creators {
			if errs[i] != nil {
				t.Fatalf("round %d, creator %d: %v", round, i, errs[i])
			}
			if !bytes.Equal(got[i].Certificate[0], disk.Certificate[0]) {
				t.Fatalf("round %d: creator %d has another certificate than the one on disk", round, i)
			}
		}
	}
}

// TestLoadOrCreateAfterADeadCreator finds a key without its certificate,
// as a creator that died between the two files leaves it: after waiting
// for the certificate in vain, it makes a new pair.
func TestLoadOrCreateAfterADeadCreator(t *testing.T) {
	dir := t.TempDir()
	_, kf := Paths(dir, "example.org")
	if err := os.MkdirAll(filepath.Dir(kf), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, []byte("half a pair"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadOrCreate(dir, "example.org", time.Now(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	disk, err := tls.LoadX509KeyPair(Paths(dir, "example.org"))
	if err != nil || !bytes.Equal(c.Certificate[0], disk.Certificate[0]) {
		t.Fatalf("the pair on disk (%v) is not the one returned", err)
	}
}
