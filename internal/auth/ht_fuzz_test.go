package auth

import (
	"context"
	"strings"
	"testing"
)

// FuzzHTInitial: the parser accepts exactly a non-empty UTF-8 name, a NUL
// and a 32-byte HMAC, and never panics.
func FuzzHTInitial(f *testing.F) {
	f.Add([]byte("alice\x00" + strings.Repeat("m", 32)))
	f.Add([]byte("\x00\x00"))
	f.Add([]byte("alice"))
	f.Fuzz(func(t *testing.T, in []byte) {
		u, mac, err := ParseHTInitial(in)
		if err != nil {
			return
		}
		if u == "" || strings.ContainsRune(u, 0) || len(mac) != 32 || len(u)+1+len(mac) != len(in) {
			t.Fatalf("accepted %q as %q %x", in, u, mac)
		}
	})
}

// FuzzSASL2SCRAM feeds arbitrary client messages to the SCRAM
// conversation that carries XEP-0474's attribute: it must answer or fail,
// never panic, and never succeed without a valid proof.
func FuzzSASL2SCRAM(f *testing.F) {
	f.Add([]byte("n,,n=user,r=abcdef"), []byte("c=biws,r=abcdef,p=AAAA"))
	f.Add([]byte("y,a=user@example.com,n=us=2Cer,r=x"), []byte("c=eSws,r=x,e=1,p=="))
	f.Add([]byte("n,,m=x,n=user,r=1"), []byte(""))
	f.Add([]byte("p=tls-exporter,,n=user,r=1"), []byte(",p="))
	a := New(newStoreFor(f), []byte("secret"))
	f.Fuzz(func(t *testing.T, first, second []byte) {
		x, err := a.StartSASL2(context.Background(), "SCRAM-SHA-256", "example.com", nil, []string{"SCRAM-SHA-256"})
		if err != nil {
			t.Fatal(err)
		}
		if _, done, err := x.Step(first); err != nil || done {
			return
		}
		if _, _, err := x.Step(second); err == nil {
			t.Fatalf("succeeded without a valid proof: %q %q", first, second)
		}
	})
}
