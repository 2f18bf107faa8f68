package acmecert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// installer records what a Manager installs.
type installer struct {
	mu         sync.Mutex
	issued     map[string]*tls.Certificate
	challenges map[string]*tls.Certificate
}

func (in *installer) SetIssued(names []string, c *tls.Certificate) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.issued == nil {
		in.issued = map[string]*tls.Certificate{}
	}
	for _, n := range names {
		in.issued[n] = c
	}
}

func (in *installer) SetChallenge(name string, c *tls.Certificate) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.challenges == nil {
		in.challenges = map[string]*tls.Certificate{}
	}
	in.challenges[name] = c
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// issue makes a certificate for names valid from notBefore to notAfter,
// signed by itself.
func issue(t *testing.T, names []string, notBefore, notAfter time.Time) ([][]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{der}, key
}

func newManager(t *testing.T, dir string, in Installer, names ...[]string) (*Manager, error) {
	return New(Config{DirectoryURL: "https://ca.invalid/dir", Challenge: ChallengeHTTP, Dir: dir, Certificates: names},
		Deps{Installer: in, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return t0 }})
}

func TestRenewal(t *testing.T) {
	m, err := newManager(t, t.TempDir(), &installer{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                string
		notBefore, notAfter time.Time
		want                time.Time
	}{
		{"90 days: 30 days before the end", t0, t0.Add(90 * 24 * time.Hour), t0.Add(60 * 24 * time.Hour)},
		{"a minute: 20 s before the end", t0, t0.Add(time.Minute), t0.Add(40 * time.Second)},
		{"backdated: halfway through what is left", t0.Add(-time.Hour), t0.Add(time.Minute), t0.Add(30 * time.Second)},
	}
	for _, tt := range tests {
		der, key := issue(t, []string{"a.example"}, tt.notBefore, tt.notAfter)
		c, err := m.check(der, key, []string{"a.example"})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.nextRenewal(c, t0); !got.Equal(tt.want) {
			t.Errorf("%s: renewal at %s, want %s", tt.name, got, tt.want)
		}
	}
	if at := m.renewAt(nil); !at.IsZero() {
		t.Errorf("no certificate: renewal at %s, want now", at)
	}
}

// TestStored: a certificate kept from before is installed by New when it
// covers the names and is valid; otherwise it is obtained again.
func TestStored(t *testing.T) {
	names := []string{"a.example", "upload.a.example"}
	tests := []struct {
		name      string
		certNames []string
		notAfter  time.Time
		installed bool
	}{
		{"valid", names, t0.Add(time.Hour), true},
		{"expired", names, t0.Add(-time.Minute), false},
		{"a name missing", names[:1], t0.Add(time.Hour), false},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		m, err := newManager(t, dir, &installer{}, names)
		if err != nil {
			t.Fatal(err)
		}
		der, key := issue(t, tt.certNames, t0.Add(-time.Hour), tt.notAfter)
		if err := m.store(names[0], der, key); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(filepath.Join(dir, "a.example.key")); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: key file: %v %v", tt.name, st, err)
		}
		in := &installer{}
		m, err = newManager(t, dir, in, names)
		if err != nil {
			t.Fatal(err)
		}
		got := in.issued["upload.a.example"] != nil && m.Certificate("a.example") != nil
		if got != tt.installed {
			t.Errorf("%s: installed %v, want %v", tt.name, got, tt.installed)
		}
	}
}

func TestAccountKeyKept(t *testing.T) {
	dir := t.TempDir()
	a, err := accountKey(filepath.Join(dir, "account.key"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := accountKey(filepath.Join(dir, "account.key"))
	if err != nil {
		t.Fatal(err)
	}
	if !a.(*ecdsa.PrivateKey).Equal(b) {
		t.Error("a new account key on the second start")
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.key"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := accountKey(filepath.Join(dir, "bad.key")); err == nil {
		t.Error("a file without a key was accepted")
	}
}

func TestHTTPHandler(t *testing.T) {
	m, err := newManager(t, t.TempDir(), &installer{})
	if err != nil {
		t.Fatal(err)
	}
	m.tokens["tok"] = "tok.thumbprint"
	tests := []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/.well-known/acme-challenge/tok", 200, "tok.thumbprint"},
		{"GET", "/.well-known/acme-challenge/other", 404, ""},
		{"POST", "/.well-known/acme-challenge/tok", 404, ""},
		{"GET", "/tok", 404, ""},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		m.HTTPHandler().ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
		if w.Code != tt.code || (tt.body != "" && w.Body.String() != tt.body) {
			t.Errorf("%s %s: %d %q, want %d %q", tt.method, tt.path, w.Code, w.Body.String(), tt.code, tt.body)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ok := Config{DirectoryURL: "https://ca.invalid/dir", Challenge: ChallengeTLSALPN, Dir: t.TempDir()}
	tests := []struct {
		name   string
		change func(*Config, *Deps)
		want   string
	}{
		{"no directory", func(c *Config, _ *Deps) { c.DirectoryURL = "" }, "directory URL"},
		{"unknown challenge", func(c *Config, _ *Deps) { c.Challenge = "dns-01" }, "dns-01"},
		{"no installer", func(_ *Config, d *Deps) { d.Installer = nil }, "installer"},
		{"a certificate without names", func(c *Config, _ *Deps) { c.Certificates = [][]string{{}} }, "without names"},
	}
	for _, tt := range tests {
		c, d := ok, Deps{Installer: &installer{}, Log: log}
		tt.change(&c, &d)
		if _, err := New(c, d); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
	}
}

// syncBuffer is a log destination read while the manager writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunRetries: an authority that does not answer is logged with the
// names and the wait before the next attempt, and Run ends with its
// context.
func TestRunRetries(t *testing.T) {
	ca := httptest.NewTLSServer(http.NotFoundHandler())
	defer ca.Close()
	var logs syncBuffer
	m, err := New(Config{DirectoryURL: ca.URL + "/dir", HTTPClient: ca.Client(), Challenge: ChallengeTLSALPN, Dir: t.TempDir(),
		Certificates: [][]string{{"a.example", "upload.a.example"}}, RetryMin: time.Hour},
		Deps{Installer: &installer{}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "acme: no certificate obtained") {
		if time.Now().After(deadline) {
			t.Fatalf("no failure logged:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"names=\"[a.example upload.a.example]\"", "retry_in=1h0m0s"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, logs.String())
		}
	}
}
