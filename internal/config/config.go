// Package config is Ambrosia's configuration: one TOML document in which
// every key has a default, decoded strictly (an unknown key is an error
// naming it), overridable from the environment (AMBROSIA_ + the key path in
// capitals, e.g. AMBROSIA_C2S_ADDR) and validated before anything starts.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
	"github.com/ambrosia-xmpp/ambrosia/internal/privilege"
)

// Config is the whole configuration document.
type Config struct {
	// Domains served by the session manager. The first is the default for
	// commands that need one.
	Domains []string `toml:"domains"`
	// DataDir holds the database and generated certificates.
	DataDir string `toml:"data_dir"`
	// DebugAddr serves Go's profiler (/debug/pprof/) and runtime
	// statistics (/debug/vars) on host:port; empty (the default) disables.
	// Bind it to loopback: it is not authenticated.
	DebugAddr string `toml:"debug_addr"`
	// MetricsAddr serves Prometheus metrics at /metrics on host:port;
	// empty (the default) disables. The debug listener serves them too.
	MetricsAddr string `toml:"metrics_addr"`

	Log       Log       `toml:"log"`
	Archive   Archive   `toml:"archive"`
	Storage   Storage   `toml:"storage"`
	Contact   Contact   `toml:"contact"`
	TLS       TLS       `toml:"tls"`
	C2S       C2S       `toml:"c2s"`
	Limits    Limits    `toml:"limits"`
	Component Component `toml:"component"`
	S2S       S2S       `toml:"s2s"`
	Upload    Upload    `toml:"upload"`
	MUC       MUC       `toml:"muc"`
	API       API       `toml:"api"`
	BOSH      BOSH      `toml:"bosh"`
	HTTP      HTTP      `toml:"http"`
	Invites   Invites   `toml:"invites"`
	Cluster   Cluster   `toml:"cluster"`
	// AppServices are the application services (docs/appservices.md).
	AppServices []AppService `toml:"appservice"`
}

// Invites configures invitations (XEP-0401, XEP-0379, XEP-0445): the
// safe alternative to open registration. An invitation exists only if
// the operator (ambrosia invite) or, when Users allows it, a user made
// one, so accepting them is on by default.
type Invites struct {
	// Enabled lets a client with a valid invitation register in-band
	// although allow_registration is off.
	Enabled bool `toml:"enabled"`
	// Users lets local users create invitations with the ad-hoc command
	// urn:xmpp:invite#invite: to register an account and become their
	// contact.
	Users bool `toml:"users"`
}

// Cluster configures the membership of a split server in etcd
// (docs/cluster.md), read by `gateway` and `service`: without Etcd the
// gateways are listed to each service and gateways hash users over the
// instances linked to them.
type Cluster struct {
	// Etcd are the client URLs of the etcd members.
	Etcd []string `toml:"etcd"`
	// Name names the cluster: its keys are under /ambrosia/Name/.
	Name string `toml:"name"`
	// LeaseTTL is the lease of a process's registration: how long after
	// a crash its users move.
	LeaseTTL Duration `toml:"lease_ttl"`
}

func (c *Cluster) validate() error {
	if c.Name == "" || strings.ContainsAny(c.Name, "/ \t\r\n") {
		return fmt.Errorf("cluster.name: %q is empty or holds a slash or a space", c.Name)
	}
	if time.Duration(c.LeaseTTL) < 2*time.Second {
		return fmt.Errorf("cluster.lease_ttl: %v is below 2s", time.Duration(c.LeaseTTL))
	}
	for _, e := range c.Etcd {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("cluster.etcd: %q is not an http:// or https:// URL", e)
		}
	}
	return nil
}

// Component configures the listener for external components (XEP-0114).
type Component struct {
	// Addr is the listener. It is opened only when at least one component
	// is configured; empty disables it.
	Addr string `toml:"addr"`
	// External lists the components allowed to connect. It is read from
	// the file only: lists of tables have no environment form.
	External []ExternalComponent `toml:"external"`
}

// ExternalComponent is one external component: the domain it serves, the
// secret of its handshake and what it may do for the users of the served
// domains.
type ExternalComponent struct {
	Domain string `toml:"domain"`
	Secret string `toml:"secret"`
	// Privileges grants the component Privileged Entity (XEP-0356)
	// access to the users of every served domain; nothing by default.
	Privileges Privileges `toml:"privileges"`
}

// Privileges are an external component's permissions of Privileged Entity
// (XEP-0356), as [component.external.privileges] under its
// [[component.external]]. Every key defaults to nothing granted.
type Privileges struct {
	// Roster allows IQs on the users' rosters: "none", "get", "set" or
	// "both".
	Roster string `toml:"roster"`
	// RosterPush sends the component the users' roster pushes. Unset, it
	// is on when Roster allows get and Namespace is urn:xmpp:privilege:2
	// (the XEP's default); version 1 has no pushes.
	RosterPush *bool `toml:"roster_push"`
	// Message allows sending messages on behalf of the users: "none" or
	// "outgoing".
	Message string `toml:"message"`
	// Presence sends the component the users' presence ("managed_entity")
	// or, besides, their contacts' ("roster", which needs Roster to allow
	// get): "none", "managed_entity" or "roster".
	Presence string `toml:"presence"`
	// IQ allows IQs on behalf of the users, by the namespace of their
	// payload: "none", "get", "set" or "both" (urn:xmpp:privilege:2 only).
	IQ map[string]string `toml:"iq"`
	// Namespace is the version of XEP-0356 the component speaks, since
	// the XEP offers no negotiation: "urn:xmpp:privilege:2" (the default,
	// slixmpp's and Prosody's) or "urn:xmpp:privilege:1" (ejabberd's up to
	// 23.01, without iq and roster pushes).
	Namespace string `toml:"namespace"`
}

// Grant returns the permissions as the component listener takes them,
// checked; errors name the key under component.external.privileges.
func (p Privileges) Grant() (privilege.Grant, error) {
	g := privilege.Grant{Namespace: p.Namespace}
	var err error
	if p.Roster != "" {
		if g.Roster, err = privilege.ParseAccess(p.Roster); err != nil {
			return g, fmt.Errorf("roster: %w", err)
		}
	}
	switch p.Message {
	case "", "none":
	case "outgoing":
		g.Message = true
	default:
		return g, fmt.Errorf("message: %q is not none or outgoing", p.Message)
	}
	if p.Presence != "" {
		if g.Presence, err = privilege.ParsePresence(p.Presence); err != nil {
			return g, fmt.Errorf("presence: %w", err)
		}
	}
	for ns, v := range p.IQ {
		a, err := privilege.ParseAccess(v)
		if err != nil {
			return g, fmt.Errorf("iq: %s: %w", ns, err)
		}
		if g.IQ == nil {
			g.IQ = map[string]privilege.Access{}
		}
		g.IQ[ns] = a
	}
	if p.RosterPush != nil {
		g.RosterPush = *p.RosterPush
	} else {
		g.RosterPush = g.NS() == privilege.NS2 && g.Roster.Allows("get")
	}
	return g, g.Validate()
}

// Archive configures Message Archive Management (XEP-0313).
type Archive struct {
	// Enabled archives one-to-one messages for users (their preferences
	// still apply). Archiving costs a database write per message.
	Enabled bool `toml:"enabled"`
	// Retention is how long archived messages are kept; 0 keeps them.
	Retention Duration `toml:"retention"`
}

// Storage selects the database.
type Storage struct {
	// Backend is "sqlite" (the default: a file in DataDir, for one
	// process) or "postgres" (a database that several instances share).
	Backend string `toml:"backend"`
	// PostgresDSN is the PostgreSQL connection string, a postgres:// URL
	// or libpq keywords, e.g.
	// "postgres://ambrosia:secret@db.example.org/ambrosia?sslmode=verify-full".
	// Required with the postgres backend.
	PostgresDSN string `toml:"postgres_dsn"`
}

// Contact lists the server's contact addresses (XEP-0157), as URIs
// (mailto:, xmpp:, https:), published in the server's disco#info.
type Contact struct {
	Abuse    []string `toml:"abuse"`
	Admin    []string `toml:"admin"`
	Feedback []string `toml:"feedback"`
	Sales    []string `toml:"sales"`
	Security []string `toml:"security"`
	Status   []string `toml:"status"`
	Support  []string `toml:"support"`
}

// Addresses returns the configured addresses by XEP-0157 kind.
func (c Contact) Addresses() map[string][]string {
	m := map[string][]string{}
	for k, v := range map[string][]string{"abuse": c.Abuse, "admin": c.Admin, "feedback": c.Feedback, "sales": c.Sales,
		"security": c.Security, "status": c.Status, "support": c.Support} {
		if len(v) > 0 {
			m[k] = v
		}
	}
	return m
}

// Log configures logging.
type Log struct {
	// Format is "text" or "json".
	Format string `toml:"format"`
	// Level is "debug", "info", "warn" or "error".
	Level string `toml:"level"`
}

// TLS names the certificates. When empty, a self-signed certificate is
// generated for each domain under DataDir/tls.
type TLS struct {
	// CertFile and KeyFile are one certificate for every domain: its
	// names (SANs) should cover the domains and their services
	// (upload.<domain>, conference.<domain>).
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// CertDir holds a certificate per name, as Prosody's certificates
	// directory does: NAME.crt and NAME.key, or NAME/fullchain.pem and
	// NAME/privkey.pem (certbot's live directory), for each domain and,
	// when present, each service name. It wins over CertFile for the
	// names it has; a domain it lacks needs CertFile.
	CertDir string `toml:"cert_dir"`
	// ACME obtains and renews a certificate for every domain and its
	// service names (upload., conference.) from a certificate authority
	// over ACME, kept in data_dir/acme; the domains start with their
	// self-signed certificates until theirs arrive. Off by default.
	ACME bool `toml:"acme"`
	// ACMEDirectory is the authority's directory URL: Let's Encrypt by
	// default.
	ACMEDirectory string `toml:"acme_directory"`
	// ACMEEmail is the account's contact, for the authority's notices.
	ACMEEmail string `toml:"acme_email"`
	// ACMECAFile holds extra roots (PEM) trusted for the directory's
	// HTTPS, for a test authority.
	ACMECAFile string `toml:"acme_ca_file"`
	// ACMEChallenge is how control of a name is proved: "tls-alpn-01"
	// (the authority connects to port 443, which must reach one of the
	// server's TLS listeners) or "http-01" (port 80, ACMEHTTPAddr).
	ACMEChallenge string `toml:"acme_challenge"`
	// ACMEHTTPAddr is the plain HTTP listener of http-01 challenges.
	ACMEHTTPAddr string `toml:"acme_http_addr"`
	// PostQuantum offers the hybrid key exchange X25519MLKEM768 to the
	// clients that propose it, as Go does by default: a recorded session
	// stays safe from a future quantum computer. Turning it off saves
	// about an eighth of the server's CPU per login with a full TLS
	// handshake (0.60 → 0.53 ms measured; X25519 alone is what ejabberd
	// and Prosody offer), for servers that value logins over that.
	PostQuantum bool `toml:"post_quantum"`
}

// validate checks the [tls] section.
func (t *TLS) validate() error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("tls: cert_file and key_file go together")
	}
	if !t.ACME {
		return nil
	}
	if t.CertFile != "" || t.CertDir != "" {
		return errors.New("tls.acme: the certificates come from the authority: remove tls.cert_file and tls.cert_dir, or acme")
	}
	if u, err := url.Parse(t.ACMEDirectory); err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("tls.acme_directory: %q is not an https:// URL", t.ACMEDirectory)
	}
	switch t.ACMEChallenge {
	case "tls-alpn-01":
	case "http-01":
		if _, _, err := net.SplitHostPort(t.ACMEHTTPAddr); err != nil {
			return fmt.Errorf("tls.acme_http_addr: %q is not host:port: needed by acme_challenge = \"http-01\"", t.ACMEHTTPAddr)
		}
	default:
		return fmt.Errorf("tls.acme_challenge: %q is not tls-alpn-01 or http-01", t.ACMEChallenge)
	}
	if strings.ContainsAny(t.ACMEEmail, " \t\r\n") || (t.ACMEEmail != "" && !strings.Contains(t.ACMEEmail, "@")) {
		return fmt.Errorf("tls.acme_email: %q is not an email address", t.ACMEEmail)
	}
	return nil
}

// C2S configures the client edge.
type C2S struct {
	// Addr is the STARTTLS listener; empty disables it.
	Addr string `toml:"addr"`
	// TLSAddr is the direct TLS listener (XEP-0368); empty disables it.
	TLSAddr string `toml:"tls_addr"`
	// AllowPlain permits authentication without TLS. Off by default.
	AllowPlain bool `toml:"allow_plain"`
	// AllowRegistration lets anyone create an account in-band (XEP-0077).
	AllowRegistration bool `toml:"allow_registration"`
	// MaxStanzaSize is the largest stanza accepted, in bytes.
	MaxStanzaSize int `toml:"max_stanza_size"`
	// NegotiationTimeout bounds connect-to-bound time.
	NegotiationTimeout Duration `toml:"negotiation_timeout"`
	// IdleTimeout is the silence after which a session is pinged; 0 never.
	IdleTimeout Duration `toml:"idle_timeout"`
	// ResumeTimeout is how long a session whose connection dropped waits
	// for a stream-management resumption (XEP-0198); 0 disables resumption.
	ResumeTimeout Duration `toml:"resume_timeout"`
	// MaxAuthFailures ends a stream after that many failed attempts.
	MaxAuthFailures int `toml:"max_auth_failures"`
}

// Limits bounds what the network may make the server do, as Prosody's
// mod_limits and mod_limit_auth and ejabberd's shapers, max_fsm_queue and
// mod_fail2ban do. A limit of 0 is no limit; exempt networks are never
// limited.
type Limits struct {
	// Exempt lists networks (CIDR prefixes or addresses) no limit applies
	// to: monitoring, a trusted proxy, the operator's own network.
	Exempt []string `toml:"exempt"`
	// MaxUnauthenticated bounds the client connections not authenticated
	// yet, all addresses together; 0 picks a quarter of the process's
	// file limit, so that a flood of silent connections leaves
	// descriptors for the listeners and the authenticated users.
	MaxUnauthenticated int `toml:"max_unauthenticated"`
	// MaxUnauthenticatedPerIP is that bound for one address (an IPv6
	// address counts by its /64).
	MaxUnauthenticatedPerIP int `toml:"max_unauthenticated_per_ip"`
	// MaxConnectionsPerIP bounds one address's open client connections.
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// NewConnectionsPerIP is how many new client connections one address
	// may open a second, after a burst of NewConnectionsBurst.
	NewConnectionsPerIP float64 `toml:"new_connections_per_ip"`
	NewConnectionsBurst int     `toml:"new_connections_burst"`
	// AuthTimeout bounds the time from connect to authentication.
	AuthTimeout Duration `toml:"auth_timeout"`
	// TLSHandshakeTimeout bounds a TLS handshake.
	TLSHandshakeTimeout Duration `toml:"tls_handshake_timeout"`
	// PreAuthMaxStanzaSize is the largest element accepted before
	// authentication, in bytes.
	PreAuthMaxStanzaSize int `toml:"preauth_max_stanza_size"`
	// LoginFailuresPerIP and LoginFailuresPerAccount are the failed logins
	// within LoginFailureWindow after which further attempts from the
	// address, or for the account, are refused until the window ends.
	// Attempts after the second failure wait ever longer first.
	LoginFailuresPerIP      int      `toml:"login_failures_per_ip"`
	LoginFailuresPerAccount int      `toml:"login_failures_per_account"`
	LoginFailureWindow      Duration `toml:"login_failure_window"`
	// MaxSessionsPerAccount bounds the resources bound at once by one
	// account; one more is refused.
	MaxSessionsPerAccount int `toml:"max_sessions_per_account"`
	// RegistrationsPerIP bounds the in-band registration attempts (taken
	// names included) of one address within RegistrationWindow, when
	// c2s.allow_registration is on.
	RegistrationsPerIP int      `toml:"registrations_per_ip"`
	RegistrationWindow Duration `toml:"registration_window"`
	// InviteFailuresPerIP is the invalid invitation tokens (XEP-0401,
	// XEP-0445) within InviteFailureWindow after which an address's
	// further tokens are refused and its stream ended until the window
	// ends; tokens after the second invalid one wait ever longer first.
	InviteFailuresPerIP int      `toml:"invite_failures_per_ip"`
	InviteFailureWindow Duration `toml:"invite_failure_window"`
	// C2SRate, S2SRate and ComponentRate shape what one connection may
	// send, in bytes a second, after a burst of the matching *Burst.
	C2SRate        int `toml:"c2s_rate"`
	C2SBurst       int `toml:"c2s_burst"`
	S2SRate        int `toml:"s2s_rate"`
	S2SBurst       int `toml:"s2s_burst"`
	ComponentRate  int `toml:"component_rate"`
	ComponentBurst int `toml:"component_burst"`
	// MaxQueuedBytes ends a client session whose unsent output grows past
	// it (a client that stopped reading).
	MaxQueuedBytes int `toml:"max_queued_bytes"`
	// MaxUnackedStanzas ends a client session holding more stanzas its
	// client has not acknowledged (XEP-0198).
	MaxUnackedStanzas int `toml:"max_unacked_stanzas"`
}

// validate checks the limits.
func (l *Limits) validate() error {
	if _, err := limit.ParseNets(l.Exempt); err != nil {
		return fmt.Errorf("limits.exempt: %w", err)
	}
	for key, v := range map[string]int{
		"limits.max_unauthenticated": l.MaxUnauthenticated, "limits.max_unauthenticated_per_ip": l.MaxUnauthenticatedPerIP,
		"limits.max_connections_per_ip": l.MaxConnectionsPerIP, "limits.new_connections_burst": l.NewConnectionsBurst,
		"limits.login_failures_per_ip": l.LoginFailuresPerIP, "limits.login_failures_per_account": l.LoginFailuresPerAccount,
		"limits.max_sessions_per_account": l.MaxSessionsPerAccount, "limits.registrations_per_ip": l.RegistrationsPerIP,
		"limits.invite_failures_per_ip": l.InviteFailuresPerIP,
		"limits.c2s_rate":               l.C2SRate, "limits.c2s_burst": l.C2SBurst, "limits.s2s_rate": l.S2SRate, "limits.s2s_burst": l.S2SBurst,
		"limits.component_rate": l.ComponentRate, "limits.component_burst": l.ComponentBurst,
		"limits.max_queued_bytes": l.MaxQueuedBytes, "limits.max_unacked_stanzas": l.MaxUnackedStanzas,
	} {
		if v < 0 {
			return fmt.Errorf("%s: must not be negative", key)
		}
	}
	if l.NewConnectionsPerIP < 0 {
		return errors.New("limits.new_connections_per_ip: must not be negative")
	}
	if l.AuthTimeout <= 0 || l.TLSHandshakeTimeout <= 0 || l.LoginFailureWindow <= 0 || l.RegistrationWindow <= 0 || l.InviteFailureWindow <= 0 {
		return errors.New("limits.auth_timeout, tls_handshake_timeout, login_failure_window, registration_window and invite_failure_window: must be positive")
	}
	if l.PreAuthMaxStanzaSize != 0 && l.PreAuthMaxStanzaSize < 4<<10 {
		return fmt.Errorf("limits.preauth_max_stanza_size: %d is below 4 KiB, too small for a SASL exchange", l.PreAuthMaxStanzaSize)
	}
	return nil
}

// S2S configures federation with other servers (RFC 6120 server-to-server
// streams, XEP-0220 dialback, XEP-0178 SASL EXTERNAL, XEP-0368).
type S2S struct {
	// Enabled federates the served domains. On by default, as with other
	// servers, but a server whose only domains are localhost or IP
	// addresses has nothing to federate and opens no listener.
	Enabled bool `toml:"enabled"`
	// Addr is the listener with STARTTLS; empty accepts no incoming
	// streams (outgoing ones still work).
	Addr string `toml:"addr"`
	// TLSAddr is the direct TLS listener (XEP-0368); empty disables it.
	TLSAddr string `toml:"tls_addr"`
	// DialbackSecret keys the dialback keys (XEP-0185). Empty: a random
	// one generated once and kept in data_dir/s2s.secret. Servers sharing
	// a domain must share it.
	DialbackSecret string `toml:"dialback_secret"`
	// TrustFile is a PEM file of extra certificate authorities trusted for
	// peer certificates besides the system's, for private deployments.
	TrustFile string `toml:"trust_file"`
	// ConnectTimeout bounds bringing an outgoing stream up (and an
	// incoming one's negotiation); stanzas waiting for it are then bounced.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// IdleTimeout closes an outgoing stream unused for that long.
	IdleTimeout Duration `toml:"idle_timeout"`
	// Hosts maps a remote domain to the host:port of its server
	// (tls://host:port for direct TLS), bypassing DNS. File only.
	Hosts map[string]string `toml:"hosts"`
}

// validate checks the federation keys.
func (s *S2S) validate() error {
	for key, a := range map[string]string{"s2s.addr": s.Addr, "s2s.tls_addr": s.TLSAddr} {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%s: %q is not host:port", key, a)
		}
	}
	if s.DialbackSecret != "" && len(s.DialbackSecret) < 16 {
		return errors.New("s2s.dialback_secret: use at least 16 characters")
	}
	if s.ConnectTimeout <= 0 {
		return errors.New("s2s.connect_timeout: must be positive")
	}
	if s.IdleTimeout <= 0 {
		return errors.New("s2s.idle_timeout: must be positive")
	}
	hosts := make(map[string]string, len(s.Hosts))
	for d, a := range s.Hosts {
		j, err := jid.Parse(d)
		if err != nil || j.Local() != "" || j.Resource() != "" {
			return fmt.Errorf("s2s.hosts: %q is not a valid domain", d)
		}
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(a, "tls://")); err != nil {
			return fmt.Errorf("s2s.hosts: %s: %q is not host:port", d, a)
		}
		hosts[j.Domain()] = a
	}
	if s.Hosts != nil {
		s.Hosts = hosts
	}
	return nil
}

// Duration is a time.Duration written as a string such as "30s" or "5m".
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Default returns the configuration used when nothing is set: localhost,
// data in ./data, the standard client ports on all interfaces.
func Default() Config {
	return Config{
		Domains: []string{"localhost"},
		DataDir: "./data",
		Log:     Log{Format: "text", Level: "info"},
		TLS:     TLS{PostQuantum: true, ACMEDirectory: "https://acme-v02.api.letsencrypt.org/directory", ACMEChallenge: "tls-alpn-01", ACMEHTTPAddr: ":80"},
		Archive: Archive{Enabled: true},
		Invites: Invites{Enabled: true},
		Cluster: Cluster{Name: "default", LeaseTTL: Duration(10 * time.Second)},
		Storage: Storage{Backend: "sqlite"},
		C2S: C2S{
			Addr:               ":5222",
			TLSAddr:            ":5223",
			MaxStanzaSize:      256 << 10,
			NegotiationTimeout: Duration(30 * time.Second),
			IdleTimeout:        Duration(5 * time.Minute),
			ResumeTimeout:      Duration(5 * time.Minute),
			MaxAuthFailures:    3,
		},
		// Generous for people, tight for floods: the per-address caps
		// leave room for a household or an office behind one NAT, the
		// read rates for a client's history sync (ejabberd's default c2s
		// shaper is 3 kB/s, Prosody's mod_limits example 10 kB/s).
		// Loopback is exempt: what connects from there is the operator's
		// own (a bot, a bridge, a proxy, the bench tool).
		Limits: Limits{
			Exempt:                  []string{"127.0.0.0/8", "::1"},
			MaxUnauthenticatedPerIP: 32,
			MaxConnectionsPerIP:     100,
			NewConnectionsPerIP:     10,
			NewConnectionsBurst:     30,
			AuthTimeout:             Duration(10 * time.Second),
			TLSHandshakeTimeout:     Duration(10 * time.Second),
			PreAuthMaxStanzaSize:    16 << 10,
			LoginFailuresPerIP:      10,
			LoginFailuresPerAccount: 30,
			LoginFailureWindow:      Duration(10 * time.Minute),
			MaxSessionsPerAccount:   10,
			RegistrationsPerIP:      3,
			RegistrationWindow:      Duration(time.Hour),
			InviteFailuresPerIP:     10,
			InviteFailureWindow:     Duration(time.Hour),
			C2SRate:                 64 << 10,
			C2SBurst:                512 << 10,
			S2SRate:                 256 << 10,
			S2SBurst:                1 << 20,
			MaxQueuedBytes:          4 << 20,
			MaxUnackedStanzas:       1000,
		},
		// Loopback: the component protocol is not encrypted.
		Component: Component{Addr: "127.0.0.1:5347"},
		S2S: S2S{
			Enabled:        true,
			Addr:           ":5269",
			ConnectTimeout: Duration(30 * time.Second),
			IdleTimeout:    Duration(10 * time.Minute),
		},
		// Prosody's mod_muc and mod_muc_limits defaults, near enough.
		MUC: MUC{
			Enabled:         true,
			Component:       "conference",
			Create:          "local",
			MaxRoomsPerUser: 100,
			MaxOccupants:    10000,
			MaxHistory:      50,
			MessageRate:     5,
			MessageBurst:    20,
		},
		// ejabberd's HTTP port; opened only when something uses it.
		API:  API{Addr: "127.0.0.1:5280"},
		BOSH: defaultBOSH(),
		// Off until an address is set; WebSocket on once it is, and
		// reverse proxies on the same host believed.
		HTTP: HTTP{TLS: true, WebSocket: true, TrustedProxies: []string{"127.0.0.1/8", "::1/128"}},
		// Prosody keeps shared files a week; 100 MiB is ejabberd's limit.
		Upload: Upload{
			Enabled:     true,
			Component:   "upload",
			Addr:        ":5443",
			MaxFileSize: 100 << 20,
			Quota:       1 << 30,
			ExpireAfter: Duration(7 * 24 * time.Hour),
		},
	}
}

// Load returns the defaults overlaid with the file at path ("" for none).
func Load(path string) (Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if err := Decode(b, &c); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Decode overlays the TOML document b on c, rejecting unknown keys.
func Decode(b []byte, c *Config) error {
	// The decoder takes a number for a Duration as nanoseconds: refuse it,
	// rather than run with a 30 ns timeout that fails every login. A
	// document that does not parse is reported by the decoder below.
	var raw map[string]any
	if toml.Unmarshal(b, &raw) == nil {
		if err := numberDurations(reflect.TypeFor[Config](), raw, nil); err != nil {
			return err
		}
	}
	d := toml.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	err := d.Decode(c)
	var sm *toml.StrictMissingError
	if errors.As(err, &sm) {
		var keys []string
		for _, e := range sm.Errors {
			keys = append(keys, strings.Join(e.Key(), "."))
		}
		return fmt.Errorf("unknown key %s%s", strings.Join(keys, ", "), movedHint(keys))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		if k := de.Key(); len(k) > 0 {
			return fmt.Errorf("key %s (line %d, column %d): %s", strings.Join(k, "."), row, col, de.Error())
		}
		return fmt.Errorf("line %d, column %d: %s", row, col, de.Error())
	}
	return err
}

// numberDurations returns an error naming the first key of the document m
// that holds a number where t has a Duration. Zero is accepted: it needs
// no unit.
func numberDurations(t reflect.Type, m map[string]any, path []string) error {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("toml")
		v, ok := m[tag]
		if tag == "" || tag == "-" || !ok {
			continue
		}
		key := append(slices.Clip(path), tag)
		switch {
		case f.Type == reflect.TypeFor[Duration]():
			switch n := v.(type) {
			case int64:
				if n != 0 {
					return fmt.Errorf("key %s: %d is a number without a unit; write a duration such as \"%ds\" or \"%dm\"", strings.Join(key, "."), n, n, n)
				}
			case float64:
				if n != 0 {
					return fmt.Errorf("key %s: %v is a number without a unit; write a duration such as \"%vs\"", strings.Join(key, "."), n, n)
				}
			}
		case f.Type.Kind() == reflect.Struct:
			if sub, ok := v.(map[string]any); ok {
				if err := numberDurations(f.Type, sub, key); err != nil {
					return err
				}
			}
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			list, _ := v.([]any)
			for _, e := range list {
				if sub, ok := e.(map[string]any); ok {
					if err := numberDurations(f.Type.Elem(), sub, key); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// ApplyEnv overrides keys from environment variables named AMBROSIA_ and
// the key path in capitals with dots as underscores. Lists are
// comma-separated.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	c.applyAppServiceEnv(lookup)
	return walk(reflect.ValueOf(c).Elem(), "AMBROSIA", func(name string, v reflect.Value) error {
		s, ok := lookup(name)
		if !ok {
			return nil
		}
		if err := setFromString(v, s); err != nil {
			return fmt.Errorf("environment %s: %w", name, err)
		}
		return nil
	})
}

// EnvNames lists every environment variable ApplyEnv reads.
func EnvNames() []string {
	var out []string
	c := Default()
	_ = walk(reflect.ValueOf(&c).Elem(), "AMBROSIA", func(name string, _ reflect.Value) error {
		out = append(out, name)
		return nil
	})
	return out
}

func walk(v reflect.Value, prefix string, f func(string, reflect.Value) error) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("toml")
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		fv := v.Field(i)
		if fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct {
			continue // lists of tables are file-only
		}
		if fv.Kind() == reflect.Map {
			continue // so are tables of arbitrary keys
		}
		if fv.Kind() == reflect.Struct {
			if err := walk(fv, name, f); err != nil {
				return err
			}
			continue
		}
		if err := f(name, fv); err != nil {
			return err
		}
	}
	return nil
}

func setFromString(v reflect.Value, s string) error {
	switch {
	case v.Type() == reflect.TypeFor[Duration]():
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// Validate checks every value and names the key of the first bad one.
func (c *Config) Validate() error {
	if len(c.Domains) == 0 {
		return errors.New("domains: at least one domain is required")
	}
	seen := map[string]bool{}
	for i, d := range c.Domains {
		j, err := jid.Parse(d)
		if err != nil || j.Local() != "" || j.Resource() != "" {
			return fmt.Errorf("domains: %q is not a valid domain", d)
		}
		if seen[j.Domain()] {
			return fmt.Errorf("domains: %q listed twice", d)
		}
		seen[j.Domain()] = true
		c.Domains[i] = j.Domain()
	}
	if c.DataDir == "" {
		return errors.New("data_dir: must not be empty")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format: %q is not text or json", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	if err := c.TLS.validate(); err != nil {
		return err
	}
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	for key, a := range map[string]string{"c2s.addr": c.C2S.Addr, "c2s.tls_addr": c.C2S.TLSAddr, "debug_addr": c.DebugAddr, "metrics_addr": c.MetricsAddr, "component.addr": c.Component.Addr} {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%s: %q is not host:port", key, a)
		}
	}
	if c.C2S.MaxStanzaSize < 10<<10 {
		return fmt.Errorf("c2s.max_stanza_size: %d is below the 10 KiB RFC 6120 requires", c.C2S.MaxStanzaSize)
	}
	if c.C2S.NegotiationTimeout <= 0 {
		return errors.New("c2s.negotiation_timeout: must be positive")
	}
	if c.C2S.IdleTimeout < 0 {
		return errors.New("c2s.idle_timeout: must not be negative")
	}
	if c.C2S.ResumeTimeout < 0 {
		return errors.New("c2s.resume_timeout: must not be negative")
	}
	for kind, addrs := range c.Contact.Addresses() {
		for _, a := range addrs {
			if u, err := url.Parse(a); err != nil || u.Scheme == "" {
				return fmt.Errorf("contact.%s: %q is not a URI such as mailto:abuse@example.org", kind, a)
			}
		}
	}
	if c.Archive.Retention < 0 {
		return errors.New("archive.retention: must not be negative")
	}
	switch c.Storage.Backend {
	case "sqlite":
	case "postgres":
		if c.Storage.PostgresDSN == "" {
			return errors.New("storage.postgres_dsn: required with storage.backend = \"postgres\" (or set AMBROSIA_STORAGE_POSTGRES_DSN)")
		}
		if d := c.Storage.PostgresDSN; strings.HasPrefix(d, "postgres://") || strings.HasPrefix(d, "postgresql://") {
			// The URL is not quoted: it may hold a password.
			if _, err := url.Parse(d); err != nil {
				return errors.New("storage.postgres_dsn: not a valid postgres:// URL (percent-encode special characters in the password)")
			}
		}
	default:
		return fmt.Errorf("storage.backend: %q is not sqlite or postgres", c.Storage.Backend)
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if c.C2S.MaxAuthFailures < 1 {
		return errors.New("c2s.max_auth_failures: must be at least 1")
	}
	if err := c.S2S.validate(); err != nil {
		return err
	}
	for i := range c.Component.External {
		e := &c.Component.External[i]
		j, err := jid.Parse(e.Domain)
		if err != nil || j.Local() != "" || j.Resource() != "" {
			return fmt.Errorf("component.external: %q is not a valid domain", e.Domain)
		}
		if seen[j.Domain()] {
			// seen holds the served domains and the components so far.
			return fmt.Errorf("component.external: %q is already a served domain or another component", e.Domain)
		}
		seen[j.Domain()] = true
		e.Domain = j.Domain()
		if e.Secret == "" {
			return fmt.Errorf("component.external: %s has an empty secret", e.Domain)
		}
		if _, err := e.Privileges.Grant(); err != nil {
			return fmt.Errorf("component.external.privileges.%w (component %s)", err, e.Domain)
		}
	}
	if err := c.HTTP.validate(c); err != nil {
		return err
	}
	if err := c.Upload.validate(c.Domains, seen, c.HTTP.Upload && c.HTTP.Addr != ""); err != nil {
		return err
	}
	if err := c.BOSH.validate(); err != nil {
		return err
	}
	if err := c.validateAPI(); err != nil {
		return err
	}
	if err := c.MUC.validate(c.Domains, seen, c.Upload); err != nil {
		return err
	}
	return nil
}

// MUC configures the multi-user chat service (XEP-0045) on
// Component.<domain> for each domain.
type MUC struct {
	Enabled bool `toml:"enabled"`
	// Component is the first label of the service's domain.
	Component string `toml:"component"`
	// Create says who may create rooms: "anyone" (remote users too),
	// "local" (users of the domain), "admins" or "nobody".
	Create string `toml:"create"`
	// Admins are bare JIDs that may always create rooms.
	Admins []string `toml:"admins"`
	// MaxRoomsPerUser bounds the rooms one user may have created; 0 does
	// not limit.
	MaxRoomsPerUser int `toml:"max_rooms_per_user"`
	// MaxOccupants is the most occupants any room may allow.
	MaxOccupants int `toml:"max_occupants"`
	// MaxHistory is the most messages of history a room sends newcomers.
	MaxHistory int `toml:"max_history"`
	// MessageRate is how many messages per second an occupant may send
	// on average, MessageBurst how many at once; 0 does not limit.
	MessageRate  float64 `toml:"message_rate"`
	MessageBurst int     `toml:"message_burst"`
}

// validate checks the [muc] section; seen holds the domains taken by the
// served domains and the external components.
func (m *MUC) validate(domains []string, seen map[string]bool, up Upload) error {
	if !m.Enabled {
		return nil
	}
	if m.Component == "" || strings.ContainsAny(m.Component, "@/. ") {
		return fmt.Errorf("muc.component: %q is not a domain label such as conference", m.Component)
	}
	if up.Enabled && up.Component == m.Component {
		return fmt.Errorf("muc.component: %q is also upload.component", m.Component)
	}
	for _, d := range domains {
		j, err := jid.New("", m.Component+"."+d, "")
		if err != nil {
			return fmt.Errorf("muc.component: %s.%s is not a valid domain", m.Component, d)
		}
		if seen[j.Domain()] {
			return fmt.Errorf("muc.component: %s is already a served domain or an external component", j.Domain())
		}
	}
	switch m.Create {
	case "anyone", "local", "admins", "nobody":
	default:
		return fmt.Errorf("muc.create: %q is not anyone, local, admins or nobody", m.Create)
	}
	for i, a := range m.Admins {
		j, err := jid.Parse(a)
		if err != nil || j.Local() == "" || j.Resource() != "" {
			return fmt.Errorf("muc.admins: %q is not a bare JID such as admin@example.org", a)
		}
		m.Admins[i] = j.String()
	}
	switch {
	case m.MaxRoomsPerUser < 0:
		return errors.New("muc.max_rooms_per_user: must not be negative (0 means no limit)")
	case m.MaxOccupants < 1:
		return errors.New("muc.max_occupants: must be at least 1")
	case m.MaxHistory < 0:
		return errors.New("muc.max_history: must not be negative")
	case m.MessageRate < 0 || m.MessageBurst < 0:
		return errors.New("muc.message_rate, muc.message_burst: must not be negative")
	case m.MessageRate > 0 && m.MessageBurst < 1:
		return errors.New("muc.message_burst: must be at least 1 when muc.message_rate is set")
	}
	return nil
}

// Upload configures HTTP File Upload (XEP-0363): a service on
// Component.<domain> for each domain and the HTTP(S) server of its files.
type Upload struct {
	Enabled bool `toml:"enabled"`
	// Component is the first label of the service's domain.
	Component string `toml:"component"`
	// Addr is the HTTPS listener, with the domains' certificates; empty
	// disables it.
	Addr string `toml:"addr"`
	// PlainAddr is an HTTP listener without TLS, for a reverse proxy in
	// front; empty (the default) disables it.
	PlainAddr string `toml:"plain_addr"`
	// PublicURL is the base of the URLs handed to clients, for a server
	// behind a reverse proxy; empty means https://<component>.<domain>
	// and the port of Addr.
	PublicURL string `toml:"public_url"`
	// MaxFileSize is the largest file accepted, in bytes.
	MaxFileSize int `toml:"max_file_size"`
	// Quota bounds the bytes one user keeps stored; 0 means no bound.
	Quota int `toml:"quota"`
	// ExpireAfter is how long a file is kept; 0 keeps files forever.
	ExpireAfter Duration `toml:"expire_after"`
}

// validate checks the [upload] section; seen holds the domains taken by
// the served domains and the external components.
func (u *Upload) validate(domains []string, seen map[string]bool, onHTTP bool) error {
	if !u.Enabled {
		return nil
	}
	if u.Component == "" || strings.ContainsAny(u.Component, "@/. ") {
		return fmt.Errorf("upload.component: %q is not a domain label such as upload", u.Component)
	}
	for _, d := range domains {
		j, err := jid.New("", u.Component+"."+d, "")
		if err != nil {
			return fmt.Errorf("upload.component: %s.%s is not a valid domain", u.Component, d)
		}
		if seen[j.Domain()] {
			return fmt.Errorf("upload.component: %s is already a served domain or an external component", j.Domain())
		}
	}
	for key, a := range map[string]string{"upload.addr": u.Addr, "upload.plain_addr": u.PlainAddr} {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%s: %q is not host:port", key, a)
		}
	}
	if u.Addr == "" && u.PlainAddr == "" && !onHTTP {
		return errors.New("upload.addr: empty with upload.plain_addr empty too; set one or disable upload with upload.enabled = false")
	}
	if u.PublicURL != "" {
		p, err := url.Parse(u.PublicURL)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.RawQuery != "" || p.Fragment != "" {
			return fmt.Errorf("upload.public_url: %q is not an http(s) URL such as https://upload.example.org", u.PublicURL)
		}
	} else if u.Addr == "" && !onHTTP {
		return errors.New("upload.public_url: required when upload.addr is empty (the URL clients reach the plain listener through)")
	}
	if u.MaxFileSize < 1 {
		return fmt.Errorf("upload.max_file_size: %d must be at least 1 byte", u.MaxFileSize)
	}
	if u.Quota < 0 {
		return errors.New("upload.quota: must not be negative (0 means no quota)")
	}
	if u.ExpireAfter < 0 {
		return errors.New("upload.expire_after: must not be negative (0 keeps files forever)")
	}
	return nil
}
