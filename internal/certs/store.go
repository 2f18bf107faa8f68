package certs

import (
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ALPNProto is the protocol a certificate authority offers when it checks
// a TLS-ALPN-01 challenge (RFC 8737).
const ALPNProto = "acme-tls/1"

// Store holds the certificates of the served names and can replace them
// while listeners run: the configurations it makes look a certificate up
// at every handshake, so that a new connection gets the newest one and
// the connections already open keep theirs.
//
// It has two layers: the certificates loaded from files (replaced as a
// whole by Set, when the configuration is reloaded) and those issued
// over ACME (set one name at a time by SetIssued), which win. It also
// answers the TLS-ALPN-01 challenges of a certificate authority with the
// challenge certificates given to SetChallenge.
type Store struct {
	files  atomic.Pointer[layer]
	issued atomic.Pointer[map[string]*tls.Certificate]

	mu         sync.Mutex // serializes writers of issued and challenges
	challenges atomic.Pointer[map[string]*tls.Certificate]
}

// layer is one immutable set of certificates: readers load it without a
// lock, writers replace it.
type layer struct {
	certs map[string]*tls.Certificate
	order []string
}

// NewStore returns a store holding certs, by name; order[0] is the
// certificate of a client that names nothing known.
func NewStore(certs map[string]tls.Certificate, order []string) *Store {
	s := &Store{}
	s.Set(certs, order)
	return s
}

// Set replaces the certificates loaded from files.
func (s *Store) Set(certs map[string]tls.Certificate, order []string) {
	l := &layer{certs: make(map[string]*tls.Certificate, len(certs)), order: slices.Clone(order)}
	for n, c := range certs {
		l.certs[strings.ToLower(n)] = &c
	}
	s.files.Store(l)
}

// SetIssued makes c the certificate of names, over the files' ones; a nil
// c removes it.
func (s *Store) SetIssued(names []string, c *tls.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued.Store(with(s.issued.Load(), names, c))
}

// SetChallenge makes c the certificate presented to a certificate
// authority checking a TLS-ALPN-01 challenge for name; a nil c removes it.
func (s *Store) SetChallenge(name string, c *tls.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.challenges.Store(with(s.challenges.Load(), []string{name}, c))
}

// with returns a copy of m with names set to c, or removed when c is nil.
func with(m *map[string]*tls.Certificate, names []string, c *tls.Certificate) *map[string]*tls.Certificate {
	n := map[string]*tls.Certificate{}
	if m != nil {
		for k, v := range *m {
			n[k] = v
		}
	}
	for _, name := range names {
		name = strings.ToLower(name)
		if c == nil {
			delete(n, name)
		} else {
			n[name] = c
		}
	}
	return &n
}

// Certificate returns the certificate for a client asking for name: the
// name's own, else that of its nearest parent domain, else the first
// domain's.
func (s *Store) Certificate(name string) (*tls.Certificate, error) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	l := s.files.Load()
	var issued map[string]*tls.Certificate
	if p := s.issued.Load(); p != nil {
		issued = *p
	}
	for n := name; n != ""; {
		if c, ok := issued[n]; ok {
			return c, nil
		}
		if c, ok := l.certs[n]; ok {
			return c, nil
		}
		_, rest, ok := strings.Cut(n, ".")
		if !ok {
			break
		}
		n = rest
	}
	if len(l.order) == 0 {
		return nil, errors.New("no certificate")
	}
	first := strings.ToLower(l.order[0])
	if c, ok := issued[first]; ok {
		return c, nil
	}
	if c, ok := l.certs[first]; ok {
		return c, nil
	}
	return nil, errors.New("no certificate")
}

// GetCertificate is tls.Config's GetCertificate.
func (s *Store) GetCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.Certificate(h.ServerName)
}

// getConfigForClient answers a certificate authority's TLS-ALPN-01 check
// with the challenge certificate, and lets every other handshake go on
// with the listener's configuration.
func (s *Store) getConfigForClient(h *tls.ClientHelloInfo) (*tls.Config, error) {
	if !slices.Contains(h.SupportedProtos, ALPNProto) {
		return nil, nil
	}
	var c *tls.Certificate
	if p := s.challenges.Load(); p != nil {
		c = (*p)[strings.ToLower(strings.TrimSuffix(h.ServerName, "."))]
	}
	if c == nil {
		return nil, errors.New("certs: no TLS-ALPN-01 challenge for " + h.ServerName)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{ALPNProto},
		Certificates: []tls.Certificate{*c},
	}, nil
}

// Config returns a server TLS configuration that takes its certificates
// from s at every handshake and offers the ALPN protocols alpn.
func (s *Store) Config(alpn ...string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         alpn,
		GetCertificate:     s.GetCertificate,
		GetConfigForClient: s.getConfigForClient,
	}
}
