package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

func TestParseHTInitial(t *testing.T) {
	mac := bytes.Repeat([]byte{7}, 32)
	for _, tc := range []struct {
		name string
		in   []byte
		user string
		ok   bool
	}{
		{"valid", append([]byte("alice\x00"), mac...), "alice", true},
		{"mac with NUL", append([]byte("alice\x00"), append([]byte{0}, mac[1:]...)...), "alice", true},
		{"no separator", []byte("alice"), "", false},
		{"empty user", append([]byte("\x00"), mac...), "", false},
		{"short mac", []byte("alice\x00abc"), "", false},
		{"long mac", append([]byte("alice\x00"), append(mac, 1)...), "", false},
		{"bad utf-8", append([]byte("\xff\x00"), mac...), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, m, err := ParseHTInitial(tc.in)
			if (err == nil) != tc.ok || u != tc.user {
				t.Fatalf("got %q %x %v", u, m, err)
			}
			var f *Failure
			if err != nil && (!errors.As(err, &f) || f.Condition != "malformed-request") {
				t.Fatalf("error %v, want malformed-request", err)
			}
		})
	}
}

// TestHTKeyEquivalence is what lets the server store only a token's hash:
// for a token longer than the block, HMAC with its hash equals HMAC with
// the token, as a client computes it.
func TestHTKeyEquivalence(t *testing.T) {
	token := strings.Repeat("t", 72)
	client := hmac.New(sha256.New, []byte(token))
	client.Write([]byte("Initiator"))
	client.Write([]byte("cb"))
	if !CheckHT(HTKey(token), []byte("cb"), client.Sum(nil)) {
		t.Fatal("the hash does not stand for the token")
	}
	if CheckHT(HTKey(token), []byte("other"), client.Sum(nil)) {
		t.Fatal("binding data ignored")
	}
	if bytes.Equal(HTInitiator(HTKey(token), nil), HTResponder(HTKey(token), nil)) {
		t.Fatal("initiator and responder agree")
	}
}

func TestHTMechanisms(t *testing.T) {
	if got := HTMechanisms(nil); len(got) != 1 || got[0] != HTNone {
		t.Fatalf("plain connection: %v", got)
	}
	if _, err := HTBinding(HTExporter, nil); err == nil {
		t.Fatal("exporter binding without TLS")
	}
	if _, err := HTBinding("HT-SHA-256-UNIQ", nil); err == nil {
		t.Fatal("unknown HT flavour accepted")
	}
	if cb, err := HTBinding(HTNone, nil); err != nil || cb != nil {
		t.Fatalf("NONE: %x %v", cb, err)
	}
}

// TestSSDPHash checks the value of the example in XEP-0474.
func TestSSDPHash(t *testing.T) {
	got := SSDPHash("SHA-1", []string{"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"}, []string{"tls-server-end-point", "tls-exporter"})
	if want := "G6k/rBLDqgOhRRaCuuatSDFkJ08="; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if SSDPHash("MD5", nil, nil) != "" {
		t.Fatal("unknown hash")
	}
}

// TestSASL2SCRAM runs the SSDP conversation against the SCRAM client
// library, which signs the whole server-first-message.
func TestSASL2SCRAM(t *testing.T) {
	a := New(newStoreFor(t), []byte("secret"))
	mechs := a.Mechanisms(nil)
	for _, tc := range []struct {
		name, mech, user, pass string
		authz                  string
		ok                     bool
	}{
		{"sha-256", "SCRAM-SHA-256", "user", "pencil", "", true},
		{"sha-1", "SCRAM-SHA-1", "user", "pencil", "", true},
		{"sha-512 with authzid", "SCRAM-SHA-512", "user", "pencil", "user@example.com", true},
		{"wrong password", "SCRAM-SHA-256", "user", "pen", "", false},
		{"unknown user", "SCRAM-SHA-256", "nobody", "pencil", "", false},
		{"foreign authzid", "SCRAM-SHA-256", "user", "pencil", "other@example.com", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := a.StartSASL2(context.Background(), tc.mech, "example.com", nil, mechs)
			if err != nil {
				t.Fatal(err)
			}
			h := hashFunc(strings.TrimPrefix(tc.mech, "SCRAM-"))
			cl, _ := h.NewClient(tc.user, tc.pass, tc.authz)
			conv := cl.NewConversation()
			first, _ := conv.Step("")
			s1, done, err := x.Step([]byte(first))
			if err != nil || done {
				t.Fatalf("first: %v", err)
			}
			if !strings.Contains(string(s1), ",h="+SSDPHash(strings.TrimPrefix(tc.mech, "SCRAM-"), mechs, nil)) {
				t.Fatalf("server-first %q lacks SSDP", s1)
			}
			final, err := conv.Step(string(s1))
			if err != nil {
				t.Fatal(err)
			}
			s2, done, err := x.Step([]byte(final))
			if (err == nil) != tc.ok || !done {
				t.Fatalf("final: %v", err)
			}
			if tc.ok {
				if _, err := conv.Step(string(s2)); err != nil || !conv.Valid() {
					t.Fatalf("server signature: %v", err)
				}
			}
		})
	}
}

func TestSASL2SCRAMMalformed(t *testing.T) {
	a := New(newStoreFor(t), []byte("secret"))
	for _, tc := range []struct{ first, final string }{
		{"x,,n=user,r=abc", ""},
		{"n,b=x,n=user,r=abc", ""},
		{"n,,m=ext,n=user,r=abc", ""},
		{"n,,n=us=3er,r=abc", ""},
		{"n,,r=abc,n=user", ""},
		{"n,,n=user,r=a b", ""},
		{"p=tls-unique,,n=user,r=abc", ""},
		{"n,,n=user,r=abc", "c=biws,r=abc,p=AAAA"},
		{"n,,n=user,r=abc", "c=eSws,r=WRONG,p=AAAA"},
		{"n,,n=user,r=abc", "r=abc,c=biws,p=AAAA"},
		{"n,,n=user,r=abc", "c=biws"},
	} {
		x, err := a.StartSASL2(context.Background(), "SCRAM-SHA-256", "example.com", nil, []string{"SCRAM-SHA-256"})
		if err != nil {
			t.Fatal(err)
		}
		s1, _, err := x.Step([]byte(tc.first))
		if tc.final == "" {
			if err == nil {
				t.Fatalf("%q accepted", tc.first)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.first, err)
		}
		final := tc.final
		if strings.Contains(final, "r=abc,") {
			// Echo the server's nonce where the case wants it right.
			nonce := strings.TrimPrefix(strings.Split(string(s1), ",")[0], "r=")
			final = strings.Replace(final, "r=abc", "r="+nonce, 1)
		}
		if _, _, err := x.Step([]byte(final)); err == nil {
			t.Fatalf("%q accepted", final)
		}
	}
}
