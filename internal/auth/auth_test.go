package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/xdg-go/scram"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
)

func newAuth(t *testing.T) *Authenticator {
	t.Helper()
	return New(newStoreFor(t), []byte("test secret"))
}

// newStoreFor returns a store holding user@example.com with password
// "pencil".
func newStoreFor(t testing.TB) *memory.Store {
	t.Helper()
	st := memory.New()
	creds, err := DeriveCredentials("pencil", DefaultIterations)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAccount(context.Background(), "user@example.com", creds); err != nil {
		t.Fatal(err)
	}
	return st
}

// runSCRAM drives a whole exchange with the library's client and returns
// the server's verdict.
func runSCRAM(t *testing.T, a *Authenticator, mech, user, pass, authz string, sayY bool, first func(string) string) error {
	t.Helper()
	h := scram.SHA1
	if strings.Contains(mech, "256") {
		h = scram.SHA256
	} else if strings.Contains(mech, "512") {
		h = scram.SHA512
	}
	cl, err := h.NewClient(user, pass, authz)
	if err != nil {
		t.Fatal(err)
	}
	conv := cl.NewConversation()
	if sayY {
		conv = cl.NewConversationAdvertisingChannelBinding()
	}
	x, err := a.Start(context.Background(), mech, "example.com", nil)
	if err != nil {
		return err
	}
	msg, _ := conv.Step("")
	if first != nil {
		msg = first(msg)
	}
	for {
		out, done, err := x.Step([]byte(msg))
		if err != nil || done {
			if err == nil && !x.User().IsZero() && x.User().String() != "user@example.com" {
				t.Fatalf("user %s", x.User())
			}
			return err
		}
		msg, err = conv.Step(string(out))
		if err != nil {
			return err
		}
	}
}

func condition(err error) string {
	var f *Failure
	if errors.As(err, &f) {
		return f.Condition
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

func TestSCRAM(t *testing.T) {
	a := newAuth(t)
	cases := []struct {
		name, mech, user, pass, authz string
		sayY                          bool
		first                         func(string) string
		want                          string
	}{
		{"sha1", "SCRAM-SHA-1", "user", "pencil", "", false, nil, ""},
		{"sha256", "SCRAM-SHA-256", "user", "pencil", "", false, nil, ""},
		{"sha512", "SCRAM-SHA-512", "user", "pencil", "", false, nil, ""},
		{"case-folded user", "SCRAM-SHA-256", "USER", "pencil", "", false, nil, ""},
		{"authzid of self", "SCRAM-SHA-256", "user", "pencil", "user@example.com", false, nil, ""},
		{"y flag: client can bind but saw no shared type", "SCRAM-SHA-256", "user", "pencil", "", true, nil, ""},
		{"wrong password", "SCRAM-SHA-256", "user", "pen", "", false, nil, "not-authorized"},
		{"unknown user fails like a wrong password", "SCRAM-SHA-256", "ghost", "pencil", "", false, nil, "not-authorized"},
		{"authzid of someone else", "SCRAM-SHA-256", "user", "pencil", "admin@example.com", false, nil, "invalid-authzid"},
		{"binding asked on a non-PLUS mechanism", "SCRAM-SHA-256", "user", "pencil", "", false, func(s string) string { return "p=tls-exporter" + strings.TrimPrefix(s, "n") }, "not-authorized"},
		{"garbage", "SCRAM-SHA-256", "user", "pencil", "", false, func(string) string { return "zzz" }, "malformed-request"},
		{"mechanism not offered", "SCRAM-MD5", "user", "pencil", "", false, nil, "invalid-mechanism"},
		{"PLUS without TLS is not offered", "SCRAM-SHA-256-PLUS", "user", "pencil", "", false, nil, "invalid-mechanism"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := condition(runSCRAM(t, a, tc.mech, tc.user, tc.pass, tc.authz, tc.sayY, tc.first))
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPlain(t *testing.T) {
	a := newAuth(t)
	for _, tc := range []struct{ name, msg, want string }{
		{"ok", "\x00user\x00pencil", ""},
		{"authzid self", "user@example.com\x00user\x00pencil", ""},
		{"authzid other", "admin@example.com\x00user\x00pencil", "invalid-authzid"},
		{"wrong", "\x00user\x00pen", "not-authorized"},
		{"unknown", "\x00ghost\x00pencil", "not-authorized"},
		{"malformed", "user pencil", "malformed-request"},
		{"empty user", "\x00\x00pencil", "malformed-request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := a.Start(context.Background(), "PLAIN", "example.com", &TLSInfo{State: &tls.ConnectionState{}})
			if err != nil {
				t.Fatal(err)
			}
			_, done, err := x.Step([]byte(tc.msg))
			if !done {
				t.Fatal("PLAIN takes one step")
			}
			if got := condition(err); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPlainSameWorkForUnknownAccounts checks, by counting instead of
// timing, that a wrong password costs the same whether the account exists:
// a lookup per hash (an imported account may have keys of one hash only)
// and as many PBKDF2 iterations.
func TestPlainSameWorkForUnknownAccounts(t *testing.T) {
	a := newAuth(t)
	cost := func(msg string) (lookups, iterations int64, attempted string) {
		t.Helper()
		l0, i0 := a.Work()
		x, err := a.Start(context.Background(), "PLAIN", "example.com", &TLSInfo{State: &tls.ConnectionState{}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := x.Step([]byte(msg)); condition(err) != "not-authorized" {
			t.Fatalf("%q: %v", msg, err)
		}
		l1, i1 := a.Work()
		return l1 - l0, i1 - i0, x.Attempted()
	}
	kl, ki, ka := cost("\x00user\x00wrong")
	for _, msg := range []string{"\x00ghost\x00wrong", "\x00in valid\x00wrong", "\x00user@other\x00wrong"} {
		ul, ui, _ := cost(msg)
		if ul != kl || ui != ki {
			t.Errorf("%q cost %d lookups and %d iterations; a known account %d and %d", msg, ul, ui, kl, ki)
		}
	}
	if kl != int64(len(Hashes())) || ki != DefaultIterations {
		t.Errorf("known account: %d lookups, %d iterations", kl, ki)
	}
	if ka != "user@example.com" {
		t.Errorf("Attempted = %q", ka)
	}
}

func TestMechanismsNeedTLSForPlain(t *testing.T) {
	a := newAuth(t)
	if m := strings.Join(a.Mechanisms(nil), " "); strings.Contains(m, "PLAIN") || strings.Contains(m, "PLUS") {
		t.Fatalf("plain connection offers %s", m)
	}
	if _, err := a.Start(context.Background(), "PLAIN", "example.com", nil); condition(err) != "invalid-mechanism" {
		t.Fatalf("PLAIN without TLS: %v", err)
	}
}

func TestCheckPassword(t *testing.T) {
	creds, err := DeriveCredentials("correct horse", 4096)
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 3 {
		t.Fatalf("%d credentials", len(creds))
	}
	for _, c := range creds {
		if !CheckPassword(c, "correct horse") || CheckPassword(c, "correct horse!") {
			t.Fatalf("%s: check failed", c.Hash)
		}
		if string(c.Salt) == string(creds[0].Salt) && c.Hash != creds[0].Hash {
			t.Fatalf("salts reused across hashes")
		}
	}
}

func BenchmarkSCRAMSHA1ServerSide(b *testing.B) {
	st := memory.New()
	creds, _ := DeriveCredentials("pencil", DefaultIterations)
	_ = st.CreateAccount(context.Background(), "user@example.com", creds)
	a := New(st, []byte("s"))
	cl, _ := scram.SHA1.NewClient("user", "pencil", "")
	b.ReportAllocs()
	for b.Loop() {
		conv := cl.NewConversation()
		x, _ := a.Start(context.Background(), "SCRAM-SHA-1", "example.com", nil)
		msg, _ := conv.Step("")
		for {
			out, done, err := x.Step([]byte(msg))
			if err != nil {
				b.Fatal(err)
			}
			if done {
				break
			}
			msg, _ = conv.Step(string(out))
		}
	}
}

// TestImportedSHA1Only: an account imported with the SCRAM-SHA-1 keys
// another server kept (Prosody keeps no others) logs in with SCRAM-SHA-1
// and PLAIN; the stronger mechanisms fail with invalid-mechanism, which
// lets a client move on to SCRAM-SHA-1, and a wrong password still fails.
func TestImportedSHA1Only(t *testing.T) {
	st := memory.New()
	creds, err := DeriveCredentials("pencil", DefaultIterations)
	if err != nil {
		t.Fatal(err)
	}
	var sha1 []storage.Credential
	for _, c := range creds {
		if c.Hash == "SHA-1" {
			sha1 = append(sha1, c)
		}
	}
	if err := st.CreateAccount(context.Background(), "user@example.com", sha1); err != nil {
		t.Fatal(err)
	}
	a := New(st, []byte("test secret"))
	for _, tc := range []struct{ mech, user, pass, want string }{
		{"SCRAM-SHA-1", "user", "pencil", ""},
		{"SCRAM-SHA-1", "user", "pen", "not-authorized"},
		{"SCRAM-SHA-256", "user", "pencil", "invalid-mechanism"},
		{"SCRAM-SHA-512", "user", "pencil", "invalid-mechanism"},
		{"SCRAM-SHA-256", "ghost", "pencil", "not-authorized"},
	} {
		if got := condition(runSCRAM(t, a, tc.mech, tc.user, tc.pass, "", false, nil)); got != tc.want {
			t.Errorf("%s %s/%s: got %q, want %q", tc.mech, tc.user, tc.pass, got, tc.want)
		}
	}
	tlsInfo := &TLSInfo{}
	for _, tc := range []struct{ pass, want string }{{"pencil", ""}, {"pen", "not-authorized"}} {
		x, err := a.Start(context.Background(), "PLAIN", "example.com", tlsInfo)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = x.Step([]byte("\x00user\x00" + tc.pass))
		if got := condition(err); got != tc.want {
			t.Errorf("PLAIN %s: got %q, want %q", tc.pass, got, tc.want)
		}
	}
}

// unavailableStore is a credential store that cannot answer, as a
// gateway whose session manager instance died or timed out.
type unavailableStore struct{}

func (unavailableStore) Credential(context.Context, string, string) (storage.Credential, error) {
	return storage.Credential{}, errors.New("gateway: service link lost")
}

// TestStoreUnavailable: when the credentials cannot be looked up, the
// client is told to try again (temporary-auth-failure), with SCRAM as
// with PLAIN, not that its password is wrong: a client that hears
// not-authorized stops reconnecting or asks its user for a password.
func TestStoreUnavailable(t *testing.T) {
	a := New(unavailableStore{}, []byte("test secret"))
	for _, mech := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256"} {
		if got := condition(runSCRAM(t, a, mech, "user", "pencil", "", false, nil)); got != "temporary-auth-failure" {
			t.Errorf("%s: got %q, want temporary-auth-failure", mech, got)
		}
	}
	x, err := a.Start(context.Background(), "PLAIN", "example.com", &TLSInfo{State: &tls.ConnectionState{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := x.Step([]byte("\x00user\x00pencil")); condition(err) != "temporary-auth-failure" {
		t.Errorf("PLAIN: got %q, want temporary-auth-failure", condition(err))
	}
}
