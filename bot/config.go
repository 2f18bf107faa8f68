package bot

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
)

// Config says which account the bot logs in to and how. Only JID and
// Password are required; every other field has a default.
type Config struct {
	// JID is the bot's account, such as bot@example.org.
	JID string
	// Password is the account's password. After the first login on a
	// server that offers FAST (XEP-0484) the bot logs in with a token
	// instead, and uses the password again only when the token is refused.
	Password string
	// Resource is the resource the bot asks for (with Bind 2, the tag the
	// server builds one from). Default "bot".
	Resource string

	// Server is the server's client listener, host:port. When empty the
	// bot looks up the SRV records of the JID's domain (_xmpps-client and
	// _xmpp-client), and falls back to the domain on port 5222.
	Server string
	// DirectTLS makes the connection to Server TLS from the first byte
	// (XEP-0368) instead of STARTTLS. SRV records say it for themselves.
	DirectTLS bool
	// RootCAs are the certificate authorities the bot trusts; nil means
	// the system's. The certificate must be valid for the JID's domain.
	RootCAs *x509.CertPool
	// TLS, when not nil, is the base of the TLS configuration (client
	// certificates, minimum version); RootCAs, when set, replaces its
	// RootCAs, and ServerName is always the JID's domain.
	TLS *tls.Config
	// Plaintext skips TLS altogether, even when the server offers it. It
	// is for tests against a server on a loopback address: New refuses it
	// unless Server is one.
	Plaintext bool
	// Dial, when not nil, opens the TCP connections instead of a
	// net.Dialer: for a proxy, or a test that cuts connections.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Tokens keeps the FAST token between logins. nil keeps it in memory,
	// so that it lasts as long as the process.
	Tokens TokenStore

	// Workers is how many handlers may run at once (default 4); each has
	// a queue of QueueLength events (default 64). See the package
	// documentation for how events are spread over them.
	Workers     int
	QueueLength int
	// MaxQueued bounds the stanzas waiting to be sent or to be
	// acknowledged by the server (default 1000); past it, sending waits.
	MaxQueued int

	// ReconnectMin and ReconnectMax bound the delay before connecting
	// again after a connection ended or failed (defaults 1 s and 1 min);
	// it doubles from one to the other, with jitter.
	ReconnectMin, ReconnectMax time.Duration
	// Timeout bounds connecting, logging in, one write, and the answer to
	// a keepalive (default 30 s).
	Timeout time.Duration
	// KeepAlive is how long the server may stay silent before the bot
	// checks that the connection still works (default 1 min).
	KeepAlive time.Duration
	// StopGrace is how long Run, once its context is done, lets handlers
	// finish what they were given and sends their replies before closing
	// the stream (default 5 s).
	StopGrace time.Duration
}

// account is the validated configuration.
type account struct {
	Config
	bare   jid.JID
	domain string
}

func (c Config) validate() (*account, error) {
	j, err := jid.Parse(c.JID)
	if err != nil || j.Local() == "" {
		return nil, fmt.Errorf("bot: JID %q is not an account such as bot@example.org", c.JID)
	}
	if j.Resource() != "" {
		return nil, fmt.Errorf("bot: JID %q: give the resource in Config.Resource", c.JID)
	}
	if c.Password == "" {
		return nil, errors.New("bot: Password is required")
	}
	if c.Resource == "" {
		c.Resource = "bot"
	}
	if _, err := j.WithResource(c.Resource); err != nil {
		return nil, fmt.Errorf("bot: Resource %q: %v", c.Resource, err)
	}
	if c.Server != "" {
		if _, _, err := net.SplitHostPort(c.Server); err != nil {
			return nil, fmt.Errorf("bot: Server %q: %v", c.Server, err)
		}
	}
	if c.Plaintext && !loopback(c.Server) {
		return nil, errors.New("bot: Plaintext needs Server on a loopback address")
	}
	if c.Plaintext && c.DirectTLS {
		return nil, errors.New("bot: Plaintext and DirectTLS exclude each other")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Workers, 4)
	def(&c.QueueLength, 64)
	def(&c.MaxQueued, 1000)
	defDur(&c.ReconnectMin, time.Second)
	defDur(&c.ReconnectMax, time.Minute)
	defDur(&c.Timeout, 30*time.Second)
	defDur(&c.KeepAlive, time.Minute)
	defDur(&c.StopGrace, 5*time.Second)
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.Tokens == nil {
		c.Tokens = &MemoryTokens{}
	}
	return &account{Config: c, bare: j, domain: j.Domain()}, nil
}

// loopback reports whether addr (host:port) names this machine.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tlsConfig is the TLS configuration of a connection to the account's
// domain; alpn is set for direct TLS (XEP-0368).
func (a *account) tlsConfig(alpn bool) *tls.Config {
	var c *tls.Config
	if a.TLS != nil {
		c = a.TLS.Clone()
	} else {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if a.RootCAs != nil {
		c.RootCAs = a.RootCAs
	}
	c.ServerName = a.domain
	if alpn {
		c.NextProtos = []string{"xmpp-client"}
	}
	return c
}
