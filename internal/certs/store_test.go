package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"sync"
	"testing"
	"time"
)

// selfSigned returns a key pair whose subject's common name is cn.
func selfSigned(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	c, k, err := SelfSigned(cn, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func commonName(t testing.TB, c *tls.Certificate) string {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

func TestStoreLayers(t *testing.T) {
	a, b, b2, acme := selfSigned(t, "a.example"), selfSigned(t, "b.example"), selfSigned(t, "b.example (new)"), selfSigned(t, "acme")
	s := NewStore(map[string]tls.Certificate{"a.example": a, "b.example": b}, []string{"a.example", "b.example"})
	steps := []struct {
		name string
		do   func()
		want map[string]string // SNI -> common name
	}{
		{"files", func() {}, map[string]string{"b.example": "b.example", "upload.b.example": "b.example", "": "a.example", "other": "a.example"}},
		{"reloaded", func() {
			s.Set(map[string]tls.Certificate{"a.example": a, "B.example": b2}, []string{"a.example", "b.example"})
		}, map[string]string{"b.example": "b.example (new)", "upload.b.example": "b.example (new)", "a.example": "a.example"}},
		{"issued wins", func() { s.SetIssued([]string{"b.example", "upload.b.example"}, &acme) },
			map[string]string{"b.example": "acme", "upload.b.example": "acme", "conference.b.example": "acme", "a.example": "a.example"}},
		{"issued for the first domain", func() { s.SetIssued([]string{"a.example"}, &acme) }, map[string]string{"other": "acme"}},
		{"issued removed", func() { s.SetIssued([]string{"a.example", "b.example", "upload.b.example"}, nil) },
			map[string]string{"b.example": "b.example (new)", "other": "a.example"}},
	}
	for _, st := range steps {
		st.do()
		for sni, want := range st.want {
			c, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
			if err != nil {
				t.Fatalf("%s: %q: %v", st.name, sni, err)
			}
			if got := commonName(t, c); got != want {
				t.Errorf("%s: SNI %q: got %s, want %s", st.name, sni, got, want)
			}
		}
	}
	if _, err := NewStore(nil, nil).Certificate("x"); err == nil {
		t.Error("an empty store gave a certificate")
	}
}

// handshake runs a TLS handshake between a client offering protos and a
// server with cfg, returning the server's certificate and protocol.
func handshake(t *testing.T, cfg *tls.Config, sni string, protos ...string) (string, string, error) {
	t.Helper()
	cc, sc := net.Pipe()
	defer cc.Close()
	defer sc.Close()
	go func() {
		_ = tls.Server(sc, cfg).Handshake()
		sc.Close()
	}()
	c := tls.Client(cc, &tls.Config{ServerName: sni, NextProtos: protos, InsecureSkipVerify: true})
	if err := c.Handshake(); err != nil {
		return "", "", err
	}
	st := c.ConnectionState()
	leaf := st.PeerCertificates[0]
	return leaf.Subject.CommonName, st.NegotiatedProtocol, nil
}

func TestStoreHandshakes(t *testing.T) {
	s := NewStore(map[string]tls.Certificate{"a.example": selfSigned(t, "a.example")}, []string{"a.example"})
	cfg := s.Config("xmpp-client")
	clone := cfg.Clone() // as listeners that set their own ALPN do
	clone.NextProtos = []string{"xmpp-server"}

	if cn, proto, err := handshake(t, cfg, "a.example", "xmpp-client"); err != nil || cn != "a.example" || proto != "xmpp-client" {
		t.Fatalf("client: %s %s %v", cn, proto, err)
	}
	if _, _, err := handshake(t, cfg, "a.example", ALPNProto); err == nil {
		t.Fatal("a TLS-ALPN-01 check without a challenge succeeded")
	}
	s.SetChallenge("A.example", new(selfSigned(t, "challenge")))
	for _, c := range []*tls.Config{cfg, clone} {
		if cn, proto, err := handshake(t, c, "a.example", ALPNProto); err != nil || cn != "challenge" || proto != ALPNProto {
			t.Fatalf("challenge: %s %s %v", cn, proto, err)
		}
	}
	s.Set(map[string]tls.Certificate{"a.example": selfSigned(t, "a.example 2")}, []string{"a.example"})
	if cn, proto, err := handshake(t, clone, "a.example", "xmpp-server"); err != nil || cn != "a.example 2" || proto != "xmpp-server" {
		t.Fatalf("after a reload: %s %s %v", cn, proto, err)
	}
	s.SetChallenge("a.example", nil)
	if _, _, err := handshake(t, cfg, "a.example", ALPNProto); err == nil {
		t.Fatal("a removed challenge was answered")
	}
}

// TestStoreConcurrent replaces certificates while handshakes read them
// (run with -race).
func TestStoreConcurrent(t *testing.T) {
	a, b := selfSigned(t, "a"), selfSigned(t, "b")
	s := NewStore(map[string]tls.Certificate{"x": a}, []string{"x"})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				switch (i + j) % 4 {
				case 0:
					s.Set(map[string]tls.Certificate{"x": b}, []string{"x"})
				case 1:
					s.SetIssued([]string{"x"}, &a)
				case 2:
					s.SetChallenge("x", &b)
				default:
					if _, err := s.Certificate("x"); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkStoreCertificate(b *testing.B) {
	s := NewStore(map[string]tls.Certificate{"example.org": selfSigned(b, "example.org")}, []string{"example.org"})
	s.SetIssued([]string{"other.example"}, new(selfSigned(b, "other")))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Certificate("upload.example.org"); err != nil {
			b.Fatal(err)
		}
	}
}
