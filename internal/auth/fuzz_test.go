package auth

import (
	"context"
	"testing"
)

// FuzzExchange feeds arbitrary client messages to every mechanism: the
// server must answer or fail, never panic, and never succeed for a user
// whose password it was not shown.
func FuzzExchange(f *testing.F) {
	f.Add("SCRAM-SHA-1", []byte("n,,n=user,r=abcdef"), []byte("c=biws,r=abcdef,p=AAAA"))
	f.Add("SCRAM-SHA-256", []byte("y,,n=us=2Cer,r=x"), []byte("c=eSws,r=x,p=="))
	f.Add("SCRAM-SHA-512", []byte("n,a=user@example.com,n=user,r=1"), []byte(""))
	f.Add("PLAIN", []byte("\x00user\x00pencil"), []byte(""))
	f.Add("PLAIN", []byte("user@example.com\x00user\x00x"), []byte("\x00"))
	f.Add("SCRAM-SHA-1", []byte("p=tls-unique,,n=user,r=1"), []byte(""))
	a := New(fuzzStore(f), []byte("secret"))
	f.Fuzz(func(t *testing.T, mech string, first, second []byte) {
		x, err := a.Start(context.Background(), mech, "example.com", nil)
		if err != nil {
			return
		}
		_, done, err := x.Step(first)
		if err != nil || done {
			if err == nil && mech != "PLAIN" {
				t.Fatalf("SCRAM done after one step")
			}
			if err == nil && mech == "PLAIN" && string(first) != "\x00user\x00pencil" && string(first) != "user@example.com\x00user\x00pencil" {
				t.Fatalf("PLAIN accepted %q", first)
			}
			return
		}
		if _, _, err := x.Step(second); err == nil {
			t.Fatalf("SCRAM succeeded without a valid proof: %q %q", first, second)
		}
	})
}

func fuzzStore(f *testing.F) CredentialStore {
	st := newStoreFor(f)
	return st
}
