package bridge

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/link"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/s2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// connector returns what links the bridge's router to the XMPP network:
// it sets the router's fallback (where stanzas for other domains go) and
// routes what comes in; it runs until ctx is done.
func (b *Bridge) connector(rt *router.Router) (func(context.Context) error, error) {
	c := b.cfg.Connect
	switch c.Mode {
	case "component":
		return b.componentConnector(rt)
	case "service":
		// Ambrosia's service protocol: a service binding the bridge's
		// domain with the kind "bridge" (see docs/service-protocol.md).
		svc, err := link.NewService(link.ServiceConfig{
			Gateways: strings.Split(c.Server, ","), Secret: c.Secret, Instance: c.Instance,
			TLS:      &tls.Config{MinVersion: tls.VersionTLS12},
			Bindings: []link.Binding{{Domain: b.cfg.Domain, Kind: "bridge", Component: b}},
		}, link.ServiceDeps{Router: rt, Credentials: noCredentials{}, Log: b.log})
		if err != nil {
			return nil, fmt.Errorf("bridge: %w", err)
		}
		rt.SetFallback(svc.Forwarder())
		return svc.Run, nil
	case "server":
		cert, err := b.certificate()
		if err != nil {
			return nil, err
		}
		roots, err := s2s.TrustRoots(c.TrustFile)
		if err != nil {
			return nil, fmt.Errorf("bridge: connect.trust_file: %w", err)
		}
		secret, err := s2s.DialbackSecret(b.cfg.DataDir, c.Dialback)
		if err != nil {
			return nil, fmt.Errorf("bridge: %w", err)
		}
		fed, err := s2s.New(s2s.Config{
			Addr: c.Listen, Domains: []string{b.cfg.Domain}, Certs: map[string]tls.Certificate{b.cfg.Domain: cert},
			Roots: roots, Secret: secret, Hosts: c.Hosts,
		}, s2s.Deps{Router: rt, Log: b.log})
		if err != nil {
			return nil, fmt.Errorf("bridge: %w", err)
		}
		rt.SetFallback(fed)
		return fed.Run, nil
	}
	return nil, fmt.Errorf("bridge: connect.mode %q", c.Mode)
}

// certificate is the bridge's own, as a federated server: the configured
// one, or one made for the domain in the data directory.
func (b *Bridge) certificate() (tls.Certificate, error) {
	c := b.cfg.Connect
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return cert, fmt.Errorf("bridge: connect.cert_file: %w", err)
		}
		return cert, nil
	}
	cert, err := certs.LoadOrCreate(b.cfg.DataDir, b.cfg.Domain, time.Now())
	if err != nil {
		return cert, fmt.Errorf("bridge: %w", err)
	}
	return cert, nil
}

// noCredentials answers the gateways' credential lookups: a bridge has no
// users who log in to it.
type noCredentials struct{}

func (noCredentials) Credential(context.Context, string, string) (storage.Credential, error) {
	return storage.Credential{}, storage.ErrNotFound
}
