// Package acmecert obtains and renews the server's certificates from a
// certificate authority over ACME (RFC 8555), such as Let's Encrypt, so
// that a public server needs no certbot: one certificate per served
// domain, covering its service names, proved with TLS-ALPN-01 (RFC 8737)
// on the server's TLS listeners or HTTP-01 on a plain HTTP listener, kept
// in a directory and renewed when a third of its lifetime is left.
package acmecert

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
)

// The challenge types a Manager can answer.
const (
	ChallengeTLSALPN = "tls-alpn-01"
	ChallengeHTTP    = "http-01"
)

// LetsEncrypt is the directory of Let's Encrypt's production service.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// Config says where to get certificates, for which names, and where to
// keep them.
type Config struct {
	// DirectoryURL is the certificate authority's ACME directory.
	DirectoryURL string
	// Email is the account's contact, optional.
	Email string
	// HTTPClient talks to the directory; nil is http.DefaultClient. A test
	// authority's own root goes in its transport's RootCAs.
	HTTPClient *http.Client
	// Challenge is ChallengeTLSALPN or ChallengeHTTP.
	Challenge string
	// Dir keeps the account key and the certificates, NAME.crt (the chain)
	// and NAME.key for the first name of each.
	Dir string
	// Certificates lists the names of each certificate; the first is the
	// subject and names its files.
	Certificates [][]string
	// RetryMin is the wait after a failed attempt, doubled after each
	// further failure up to RetryMax. Zero means one minute and six
	// hours.
	RetryMin, RetryMax time.Duration
}

// Installer puts certificates in service: the TLS configurations of the
// listeners read them at each handshake.
type Installer interface {
	// SetIssued makes c the certificate of names.
	SetIssued(names []string, c *tls.Certificate)
	// SetChallenge makes c the certificate presented to a TLS-ALPN-01
	// check for name; nil removes it.
	SetChallenge(name string, c *tls.Certificate)
}

// Deps are what a Manager works with.
type Deps struct {
	Installer Installer
	Log       *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Manager obtains, keeps and renews the certificates.
type Manager struct {
	cfg    Config
	deps   Deps
	client *acme.Client

	mu     sync.Mutex
	tokens map[string]string // HTTP-01 token -> key authorization
	certs  map[string]*tls.Certificate
	// registered is set once the account exists at the authority.
	registered bool
}

// New checks cfg, loads the account key (making one the first time) and
// installs the certificates kept from before that are still valid, so
// that the listeners start with them.
func New(cfg Config, d Deps) (*Manager, error) {
	switch {
	case cfg.DirectoryURL == "":
		return nil, errors.New("acme: no directory URL")
	case cfg.Challenge != ChallengeTLSALPN && cfg.Challenge != ChallengeHTTP:
		return nil, fmt.Errorf("acme: challenge %q is not %s or %s", cfg.Challenge, ChallengeTLSALPN, ChallengeHTTP)
	case cfg.Dir == "":
		return nil, errors.New("acme: no directory for the certificates")
	case d.Installer == nil || d.Log == nil:
		return nil, errors.New("acme: an installer and a logger are required")
	}
	for _, names := range cfg.Certificates {
		if len(names) == 0 {
			return nil, errors.New("acme: a certificate without names")
		}
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Minute
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(6*time.Hour, cfg.RetryMin)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	key, err := accountKey(filepath.Join(cfg.Dir, "account.key"))
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:    cfg,
		deps:   d,
		client: &acme.Client{Key: key, DirectoryURL: cfg.DirectoryURL, HTTPClient: cfg.HTTPClient, UserAgent: "ambrosia"},
		tokens: map[string]string{},
		certs:  map[string]*tls.Certificate{},
	}
	for _, names := range cfg.Certificates {
		c, err := m.load(names)
		if err != nil {
			d.Log.Info("acme: no stored certificate", "names", names, "err", err)
			continue
		}
		m.install(names, c)
	}
	return m, nil
}

// Run obtains the certificates that are missing and renews each when it
// is due, until ctx is done.
func (m *Manager) Run(ctx context.Context) error {
	type plan struct {
		due   time.Time
		fails int
	}
	plans := make([]plan, len(m.cfg.Certificates))
	for i, names := range m.cfg.Certificates {
		plans[i].due = m.renewAt(m.current(names[0]))
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := m.deps.Now()
		next := time.Time{}
		for i, names := range m.cfg.Certificates {
			p := &plans[i]
			if p.due.After(now) {
				if next.IsZero() || p.due.Before(next) {
					next = p.due
				}
				continue
			}
			c, err := m.obtain(ctx, names)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				wait := m.cfg.RetryMin << min(p.fails, 16)
				wait = min(wait, m.cfg.RetryMax)
				p.fails++
				p.due = m.deps.Now().Add(wait)
				m.deps.Log.Error("acme: no certificate obtained", "names", names, "err", err, "retry_in", wait.String())
			} else {
				p.fails = 0
				p.due = m.nextRenewal(c, m.deps.Now())
			}
			if next.IsZero() || p.due.Before(next) {
				next = p.due
			}
		}
		if next.IsZero() {
			<-ctx.Done()
			return nil
		}
		timer.Reset(max(next.Sub(m.deps.Now()), 0))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
	}
}

// renewAt is when c is due for renewal: when a third of its lifetime is
// left, as Let's Encrypt advises (30 days before a 90-day certificate
// ends); now when there is none.
func (m *Manager) renewAt(c *tls.Certificate) time.Time {
	if c == nil || c.Leaf == nil {
		return time.Time{}
	}
	life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
	return c.Leaf.NotAfter.Add(-life / 3)
}

// nextRenewal is when the certificate c, just obtained, is renewed: at
// renewAt, but not before half of what is left of its life has passed,
// so that a certificate whose lifetime began long before it was issued
// (backdated) does not make a loop of renewals.
func (m *Manager) nextRenewal(c *tls.Certificate, now time.Time) time.Time {
	at := m.renewAt(c)
	if floor := now.Add(c.Leaf.NotAfter.Sub(now) / 2); at.Before(floor) {
		return floor
	}
	return at
}

// current returns the certificate installed under name, nil if none.
func (m *Manager) current(name string) *tls.Certificate {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.certs[name]
}

// Certificate returns the certificate obtained for the certificate named
// name (its first name), nil if none yet.
func (m *Manager) Certificate(name string) *tls.Certificate { return m.current(name) }

func (m *Manager) install(names []string, c *tls.Certificate) {
	m.mu.Lock()
	m.certs[names[0]] = c
	m.mu.Unlock()
	m.deps.Installer.SetIssued(names, c)
}

// HTTPHandler answers the authority's HTTP-01 requests under
// /.well-known/acme-challenge/ and nothing else.
func (m *Manager) HTTPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, "/.well-known/acme-challenge/")
		m.mu.Lock()
		body, found := m.tokens[token]
		m.mu.Unlock()
		if !ok || !found || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(body))
	})
}

// obtain gets a new certificate for names, stores and installs it.
func (m *Manager) obtain(ctx context.Context, names []string) (*tls.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := m.register(ctx); err != nil {
		return nil, err
	}
	order, err := m.client.AuthorizeOrder(ctx, acme.DomainIDs(names...))
	if err != nil {
		return nil, fmt.Errorf("new order: %w", err)
	}
	for _, u := range order.AuthzURLs {
		if err := m.authorize(ctx, u); err != nil {
			return nil, err
		}
	}
	if order, err = m.client.WaitOrder(ctx, order.URI); err != nil {
		return nil, fmt.Errorf("order: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, key)
	if err != nil {
		return nil, err
	}
	der, _, err := m.client.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		return nil, fmt.Errorf("finalize: %w", err)
	}
	c, err := m.check(der, key, names)
	if err != nil {
		return nil, err
	}
	if err := m.store(names[0], der, key); err != nil {
		return nil, err
	}
	m.install(names, c)
	sum := sha256.Sum256(c.Leaf.Raw)
	m.deps.Log.Info("acme: certificate obtained", "names", names, "expires", c.Leaf.NotAfter.UTC().Format(time.RFC3339),
		"renew_at", m.nextRenewal(c, m.deps.Now()).UTC().Format(time.RFC3339), "serial", c.Leaf.SerialNumber.String(), "sha256", hex.EncodeToString(sum[:]))
	return c, nil
}

// register creates the account once per run; an existing one is fine.
func (m *Manager) register(ctx context.Context) error {
	m.mu.Lock()
	done := m.registered
	m.mu.Unlock()
	if done {
		return nil
	}
	a := &acme.Account{}
	if m.cfg.Email != "" {
		a.Contact = []string{"mailto:" + m.cfg.Email}
	}
	if _, err := m.client.Register(ctx, a, acme.AcceptTOS); err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
		return fmt.Errorf("account: %w", err)
	}
	m.mu.Lock()
	m.registered = true
	m.mu.Unlock()
	return nil
}

// authorize answers the challenge of one authorization and waits for the
// authority's verdict.
func (m *Manager) authorize(ctx context.Context, url string) error {
	z, err := m.client.GetAuthorization(ctx, url)
	if err != nil {
		return fmt.Errorf("authorization: %w", err)
	}
	if z.Status == acme.StatusValid {
		return nil
	}
	name := z.Identifier.Value
	var chal *acme.Challenge
	for _, c := range z.Challenges {
		if c.Type == m.cfg.Challenge {
			chal = c
		}
	}
	if chal == nil {
		return fmt.Errorf("%s: the authority offers no %s challenge", name, m.cfg.Challenge)
	}
	switch chal.Type {
	case ChallengeTLSALPN:
		c, err := m.client.TLSALPN01ChallengeCert(chal.Token, name)
		if err != nil {
			return err
		}
		m.deps.Installer.SetChallenge(name, &c)
		defer m.deps.Installer.SetChallenge(name, nil)
	case ChallengeHTTP:
		body, err := m.client.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return err
		}
		m.mu.Lock()
		m.tokens[chal.Token] = body
		m.mu.Unlock()
		defer func() {
			m.mu.Lock()
			delete(m.tokens, chal.Token)
			m.mu.Unlock()
		}()
	}
	if _, err := m.client.Accept(ctx, chal); err != nil {
		return fmt.Errorf("%s: %s: %w", name, chal.Type, err)
	}
	if _, err := m.client.WaitAuthorization(ctx, z.URI); err != nil {
		return fmt.Errorf("%s: %s: %w", name, chal.Type, err)
	}
	return nil
}

// check makes a certificate of the chain der and key, and makes sure it
// covers names and is valid now.
func (m *Manager) check(der [][]byte, key crypto.Signer, names []string) (*tls.Certificate, error) {
	if len(der) == 0 {
		return nil, errors.New("the authority sent no certificate")
	}
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if err := leaf.VerifyHostname(n); err != nil {
			return nil, fmt.Errorf("the certificate sent: %w", err)
		}
	}
	if now := m.deps.Now(); now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("the certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &tls.Certificate{Certificate: der, PrivateKey: key, Leaf: leaf}, nil
}

// paths are where the certificate whose first name is name is kept.
func (m *Manager) paths(name string) (cert, key string) { return Paths(m.cfg.Dir, name) }

// Paths are where a Manager keeping its files in dir keeps the
// certificate (the chain) and key whose first name is name.
func Paths(dir, name string) (cert, key string) {
	return filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
}

// load reads the stored certificate of names; it must cover them all and
// be valid now.
func (m *Manager) load(names []string) (*tls.Certificate, error) {
	cf, kf := m.paths(names[0])
	kp, err := tls.LoadX509KeyPair(cf, kf)
	if err != nil {
		return nil, err
	}
	signer, ok := kp.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	return m.check(kp.Certificate, signer, names)
}

// store writes the chain and key, each replacing the old file at once.
func (m *Manager) store(name string, der [][]byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	var chain []byte
	for _, d := range der {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	cf, kf := m.paths(name)
	if err := writeFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeFile(cf, chain, 0o644)
}

// writeFile replaces path with b through a temporary file, so that a
// reader never sees half of it.
func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	return nil
}

// accountKey reads the account's key, making and saving one the first
// time.
func accountKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("acme: %s: no PEM key", path)
		}
		k, err := x509.ParseECPrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("acme: %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("acme: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}
