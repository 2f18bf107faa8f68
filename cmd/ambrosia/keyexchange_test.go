package main

import (
	"crypto/tls"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
)

func TestKeyExchanges(t *testing.T) {
	for _, tc := range []struct {
		name        string
		postQuantum bool
		want        []tls.CurveID // nil: Go's defaults
	}{
		{"classical without post_quantum", false, []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}},
		{"post_quantum keeps Go's defaults", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &tls.Config{}
			keyExchanges(c, config.TLS{PostQuantum: tc.postQuantum})
			if !slices.Equal(c.CurvePreferences, tc.want) {
				t.Errorf("CurvePreferences = %v, want %v", c.CurvePreferences, tc.want)
			}
			if slices.Contains(c.CurvePreferences, tls.X25519MLKEM768) {
				t.Error("the hybrid is listed")
			}
		})
	}
}

// TestResumeClassical runs full and resumed handshakes against the client
// listeners' configuration: the full one agrees the hybrid with ML-KEM,
// the resumed one X25519, and without tls.post_quantum neither uses the
// hybrid.
func TestResumeClassical(t *testing.T) {
	c, err := certs.LoadOrCreate(t.TempDir(), "localhost", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		postQuantum bool
		full, again tls.CurveID
	}{
		{"post_quantum", true, tls.X25519MLKEM768, tls.X25519},
		{"classical", false, tls.X25519, tls.X25519},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := certs.Config(map[string]tls.Certificate{"localhost": c}, []string{"localhost"}, "xmpp-client")
			keyExchanges(base, config.TLS{PostQuantum: tc.postQuantum})
			srv := resumeClassical(base, config.TLS{PostQuantum: tc.postQuantum})
			client := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"xmpp-client"},
				ClientSessionCache: tls.NewLRUClientSessionCache(1)}
			for i, want := range []tls.CurveID{tc.full, tc.again} {
				st := handshake(t, srv, client)
				if st.DidResume != (i == 1) {
					t.Fatalf("handshake %d: DidResume = %v", i+1, st.DidResume)
				}
				if st.CurveID != want {
					t.Errorf("handshake %d: key exchange %v, want %v", i+1, st.CurveID, want)
				}
				if st.NegotiatedProtocol != "xmpp-client" {
					t.Errorf("handshake %d: ALPN %q", i+1, st.NegotiatedProtocol)
				}
			}
		})
	}
}

// handshake connects client to a server with srv over a pipe and returns
// the client's view once the server's session ticket has arrived.
func handshake(t *testing.T, srv, client *tls.Config) tls.ConnectionState {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	errc := make(chan error, 1)
	go func() {
		s := tls.Server(b, srv)
		if err := s.Handshake(); err != nil {
			errc <- err
			return
		}
		_, err := s.Write([]byte("x"))
		errc <- err
	}()
	cl := tls.Client(a, client)
	if err := cl.Handshake(); err != nil {
		t.Fatal(err)
	}
	// The ticket follows the handshake: reading the byte after it stores
	// the ticket in the client's cache.
	if _, err := io.ReadFull(cl, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return cl.ConnectionState()
}
