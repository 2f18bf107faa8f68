package irc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/irc/internal/fakeircd"
)

// tlsFront puts a TLS listener with a certificate for 127.0.0.1 in front
// of addr; it returns its address and the certificate's PEM file.
func tlsFront(t *testing.T, addr string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "irc.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(b, c); b.Close() }()
			go func() { io.Copy(c, b); c.Close() }()
		}
	}()
	return l.Addr().String(), file
}

func TestTLS(t *testing.T) {
	srv := fakeircd.Start(t, fakeircd.Options{})
	addr, ca := tlsFront(t, srv.Addr())
	s, _ := login(t, network(t, addr, "puppet", func(c *Config) { c.TLS, c.TLSCAFile = true, ca }), "alice@example.org", nil)
	bob := fakeircd.Dial(t, srv.Addr(), "bob")
	if _, err := s.SendMessage(ctx(t), "bob", bridge.Message{Body: "over TLS"}); err != nil {
		t.Fatal(err)
	}
	bob.Expect(`PRIVMSG bob :over TLS$`)
	// Without the authority, the certificate is refused.
	n := network(t, addr, "puppet", func(c *Config) { c.TLS = true })
	if _, err := n.Login(ctx(t), bridge.Account{JID: "carol@example.org"}, newRecorder(t)); !errors.Is(err, bridge.ErrUnavailable) {
		t.Fatalf("an unknown authority: %v", err)
	}
}
