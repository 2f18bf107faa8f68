package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync/atomic"

	"github.com/xdg-go/scram"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// DefaultIterations is the PBKDF2 iteration count for new credentials: the
// RFC 7677 minimum, which every XMPP client accepts.
const DefaultIterations = 4096

// Hashes lists the SCRAM hashes credentials are kept for, strongest first.
func Hashes() []string { return []string{"SHA-512", "SHA-256", "SHA-1"} }

// Channel binding types offered (XEP-0440), preferred first.
const (
	CBExporter       = "tls-exporter"
	CBServerEndPoint = "tls-server-end-point"
)

// CredentialStore is what authentication needs from storage.
type CredentialStore interface {
	Credential(ctx context.Context, user, hash string) (storage.Credential, error)
}

// Failure is a SASL failure; Condition is the RFC 6120 §6.5 element name.
type Failure struct {
	Condition string
	Text      string
	// Checked is true when the failure came from checking credentials. A
	// failure before that (an unknown mechanism, an unsupported channel
	// binding) teaches an attacker nothing, and clients that try -PLUS
	// with a binding we lack must be able to fall back at once.
	Checked bool
}

func (f *Failure) Error() string {
	if f.Text == "" {
		return "sasl: " + f.Condition
	}
	return "sasl: " + f.Condition + ": " + f.Text
}

func fail(cond, text string) error { return &Failure{Condition: cond, Text: text} }

// denied is a failure of the credentials themselves.
func denied(cond string) error { return &Failure{Condition: cond, Checked: true} }

func hashFunc(name string) scram.HashGeneratorFcn {
	switch name {
	case "SHA-1":
		return scram.SHA1
	case "SHA-256":
		return scram.SHA256
	case "SHA-512":
		return scram.SHA512
	}
	return nil
}

// DeriveCredentials computes the stored SCRAM keys of password for every
// supported hash, each with its own random salt.
func DeriveCredentials(password string, iterations int) ([]storage.Credential, error) {
	hs := Hashes()
	out := make([]storage.Credential, 0, len(hs))
	for _, h := range hs {
		salt := make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return nil, err
		}
		c, err := deriveOne(h, password, salt, iterations)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func deriveOne(hash, password string, salt []byte, iterations int) (storage.Credential, error) {
	cl, err := hashFunc(hash).NewClient("user", password, "")
	if err != nil {
		return storage.Credential{}, fmt.Errorf("password: %w", err)
	}
	sc, err := cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iterations})
	if err != nil {
		return storage.Credential{}, err
	}
	return storage.Credential{Hash: hash, Salt: salt, Iterations: iterations, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}, nil
}

// CheckPassword reports whether password matches the stored credential.
func CheckPassword(c storage.Credential, password string) bool {
	if hashFunc(c.Hash) == nil || c.Iterations <= 0 {
		return false
	}
	d, err := deriveOne(c.Hash, password, c.Salt, c.Iterations)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(d.StoredKey, c.StoredKey) == 1
}

// Authenticator runs SASL exchanges against a credential store.
type Authenticator struct {
	store  CredentialStore
	secret []byte // keys the fake credentials of unknown users

	// lookups and iterations count the credential lookups and the PBKDF2
	// iterations PLAIN computed: the same for an unknown account as for a
	// known one, which tests check instead of timing answers.
	lookups    atomic.Int64
	iterations atomic.Int64
}

// Work reports the credential lookups and PBKDF2 iterations spent on
// PLAIN so far. An attempt for an unknown account costs what one for a
// known account does, so that the answer's timing reveals nothing.
func (a *Authenticator) Work() (lookups, iterations int64) {
	return a.lookups.Load(), a.iterations.Load()
}

// New returns an Authenticator. secret makes the decoy credentials of
// unknown users stable per user and unpredictable to clients; a random one
// is drawn when it is empty.
func New(store CredentialStore, secret []byte) *Authenticator {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	return &Authenticator{store: store, secret: secret}
}

// TLSInfo is what channel binding needs to know of a server's TLS
// connection: its state, and the certificate the server presented, which
// tls.ConnectionState does not hold on the server side.
type TLSInfo struct {
	State *tls.ConnectionState
	Leaf  *x509.Certificate
}

// Mechanisms returns the mechanisms offered on a connection, strongest
// first. PLAIN and the -PLUS variants need TLS; cs is nil on a plain
// connection.
func (a *Authenticator) Mechanisms(cs *TLSInfo) []string {
	var m []string
	if cs != nil && len(ChannelBindings(cs)) > 0 {
		m = append(m, "SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS")
	}
	m = append(m, "SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1")
	if cs != nil {
		m = append(m, "PLAIN")
	}
	return m
}

// ChannelBindings returns the channel binding types usable on the TLS
// connection: tls-exporter needs TLS 1.3 or the extended master secret,
// which ExportKeyingMaterial reports by failing otherwise.
func ChannelBindings(cs *TLSInfo) []string {
	if cs == nil || cs.State == nil || !cs.State.HandshakeComplete {
		return nil
	}
	var out []string
	// TLS 1.3 always has an exporter: derive one only to learn whether
	// an older connection does (this runs at every stream's features).
	if cs.State.Version >= tls.VersionTLS13 {
		out = append(out, CBExporter)
	} else if _, err := scram.NewTLSExporterBinding(cs.State); err == nil {
		out = append(out, CBExporter)
	}
	if _, err := serverEndPoint(cs.Leaf); err == nil {
		out = append(out, CBServerEndPoint)
	}
	return out
}

// serverEndPoint computes tls-server-end-point (RFC 5929 §4.1) from the
// server's own certificate: its hash is the certificate's signature hash,
// with MD5 and SHA-1 replaced by SHA-256.
func serverEndPoint(leaf *x509.Certificate) (scram.ChannelBinding, error) {
	if leaf == nil {
		return scram.ChannelBinding{}, errors.New("no server certificate")
	}
	var h hash.Hash
	switch leaf.SignatureAlgorithm {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		h = sha512.New384()
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		h = sha512.New()
	case x509.PureEd25519:
		return scram.ChannelBinding{}, errors.New("tls-server-end-point undefined for Ed25519")
	default:
		h = sha256.New()
	}
	h.Write(leaf.Raw)
	return scram.ChannelBinding{Type: scram.ChannelBindingTLSServerEndpoint, Data: h.Sum(nil)}, nil
}

// Exchange is one SASL authentication in progress.
type Exchange struct {
	a      *Authenticator
	ctx    context.Context
	mech   string
	domain string
	cs     *TLSInfo
	plus   bool
	hash   string

	conv    scramConversation
	ssdp    string // XEP-0474 value for the server-first-message, "" for none
	user    jid.JID
	tried   string // the account named by the client, known or not
	decoy   bool
	success bool
	// other is the hash of the keys an account has instead of those
	// of the mechanism asked for (errOtherHash).
	other string
	// unavailable is set when the store could not answer the lookup (a
	// session manager instance that died, a timeout): the client is told
	// to try again (temporary-auth-failure), not that its password is
	// wrong.
	unavailable bool
}

// errOtherHash reports a SCRAM exchange for an account that has keys of
// other hashes only: one imported with the keys another server kept.
var errOtherHash = errors.New("auth: no keys for this hash, but for another")

// otherHashes are the hashes an imported account may have keys for,
// strongest first.
func otherHashes(except string) []string {
	var out []string
	for _, h := range Hashes() {
		if h != except {
			out = append(out, h)
		}
	}
	return out
}

// Start begins an exchange for mechanism mech on a connection for domain.
func (a *Authenticator) Start(ctx context.Context, mech, domain string, cs *TLSInfo) (*Exchange, error) {
	offered := false
	for _, m := range a.Mechanisms(cs) {
		if m == mech {
			offered = true
		}
	}
	if !offered {
		return nil, fail("invalid-mechanism", "")
	}
	x := &Exchange{a: a, ctx: ctx, mech: mech, domain: domain, cs: cs}
	if mech != "PLAIN" {
		rest := strings.TrimPrefix(mech, "SCRAM-")
		x.plus = strings.HasSuffix(rest, "-PLUS")
		x.hash = strings.TrimSuffix(rest, "-PLUS")
	}
	return x, nil
}

// StartSASL2 begins an exchange as Start does, for the SASL2 profile
// (XEP-0388): SCRAM's server-first-message then carries the downgrade
// protection of XEP-0474, computed over mechs, the mechanisms the client
// was offered, and the channel bindings of cs.
func (a *Authenticator) StartSASL2(ctx context.Context, mech, domain string, cs *TLSInfo, mechs []string) (*Exchange, error) {
	x, err := a.Start(ctx, mech, domain, cs)
	if err != nil || x.hash == "" {
		return x, err
	}
	x.ssdp = SSDPHash(x.hash, mechs, ChannelBindings(cs))
	return x, nil
}

// Pseudonym returns a short identifier derived from parts and the
// server's secret: the same for the same parts, and revealing nothing of
// them (Bind 2 resources from a client's user-agent id).
func (a *Authenticator) Pseudonym(parts ...string) string {
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte("pseudonym"))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:9])
}

// User is the authenticated bare JID, valid once Step reported done.
func (x *Exchange) User() jid.JID { return x.user }

// Attempted is the account the client tried to log into, as a bare JID
// when it is a valid one and as sent otherwise; "" before the client named
// one. It is for logs and for counting failures per account.
func (x *Exchange) Attempted() string { return x.tried }

// attempt remembers the account the client named.
func (x *Exchange) attempt(username string) {
	if u, err := jid.New(username, x.domain, ""); err == nil {
		x.tried = u.String()
		return
	}
	// Unparsable: kept short, since it is logged.
	if len(username) > 64 {
		username = username[:64]
	}
	x.tried = username + "@" + x.domain
}

// Step consumes one client message (the decoded initial response or
// response) and returns the server's next data. done with a nil error means
// success; out then holds the additional data for <success/>.
func (x *Exchange) Step(in []byte) (out []byte, done bool, err error) {
	if x.mech == "PLAIN" {
		return x.plain(in)
	}
	if x.conv == nil {
		if err := x.startSCRAM(in); err != nil {
			return nil, true, err
		}
		resp, err := x.conv.Step(string(in))
		if errors.Is(err, errOtherHash) {
			// An account imported from a server that kept keys of
			// another hash only (Prosody: SCRAM-SHA-1): the client may
			// try the mechanism the keys serve, as it would after any
			// mechanism the server cannot do.
			return nil, true, fail("invalid-mechanism", "this account has keys for SCRAM-"+x.other+" only")
		}
		if err != nil {
			if x.unavailable {
				return nil, true, fail("temporary-auth-failure", "")
			}
			return nil, true, x.scramFailure(resp)
		}
		return []byte(resp), false, nil
	}
	resp, err := x.conv.Step(string(in))
	if err != nil || !x.conv.Valid() || x.decoy {
		if f, ok := x.scramFailure(resp).(*Failure); ok && f.Condition == "not-authorized" {
			return nil, true, denied(f.Condition)
		}
		return nil, true, x.scramFailure(resp)
	}
	if az := x.conv.AuthzID(); az != "" {
		if j, err := jid.Parse(az); err != nil || !j.Equal(x.user) {
			return nil, true, denied("invalid-authzid")
		}
	}
	x.success = true
	return []byte(resp), true, nil
}

func (x *Exchange) scramFailure(resp string) error {
	switch {
	case strings.HasPrefix(resp, scram.ErrInvalidEncoding):
		return fail("malformed-request", "")
	case strings.HasPrefix(resp, "e=channel-binding"), strings.HasPrefix(resp, "e=unsupported-channel-binding"),
		strings.HasPrefix(resp, scram.ErrServerDoesSupportChannelBinding):
		return fail("not-authorized", "channel binding")
	}
	return fail("not-authorized", "")
}

// startSCRAM reads the GS2 header of the client-first message to pick the
// channel binding the client asked for: the SCRAM library checks one
// binding per conversation, while we offer two types.
func (x *Exchange) startSCRAM(first []byte) error {
	flag, rest, ok := bytes.Cut(first, []byte(","))
	if !ok || len(flag) == 0 {
		return fail("malformed-request", "")
	}
	authz, _, ok := bytes.Cut(rest, []byte(","))
	if !ok {
		return fail("malformed-request", "")
	}
	if len(authz) > 0 && !bytes.HasPrefix(authz, []byte("a=")) {
		return fail("malformed-request", "")
	}
	var cbType string
	switch {
	case flag[0] == 'p':
		cbType = strings.TrimPrefix(string(flag), "p=")
		if !x.plus {
			// A client requesting binding must use a -PLUS mechanism.
			return fail("not-authorized", "channel binding with a non-PLUS mechanism")
		}
	case x.plus:
		return fail("not-authorized", "a -PLUS mechanism requires channel binding")
	}
	var cb scram.ChannelBinding
	var err error
	switch {
	case cbType == CBExporter:
		cb, err = scram.NewTLSExporterBinding(x.cs.State)
	case cbType == CBServerEndPoint:
		cb, err = serverEndPoint(x.cs.Leaf)
	case cbType != "":
		return fail("not-authorized", "unsupported channel binding "+cbType)
	}
	// A client that picked a mechanism without -PLUS and says "y" (it can
	// bind, but saw no binding it supports) is accepted: XEP-0440 tells it
	// our types, and clients that only know tls-unique, which TLS 1.3 lacks,
	// legitimately say "y" here. Downgrades of the mechanism list itself
	// are the business of XEP-0474.
	if err != nil {
		return fail("not-authorized", "channel binding unavailable")
	}
	srv, err := hashFunc(x.hash).NewServer(x.lookup)
	if err != nil {
		return fail("temporary-auth-failure", "")
	}
	if x.ssdp != "" {
		x.conv = &ssdpConversation{gen: hashFunc(x.hash), lookup: x.lookup, cb: cb, required: x.plus, ssdp: x.ssdp}
		return nil
	}
	if cb.IsSupported() {
		if x.plus {
			x.conv = srv.NewConversationWithChannelBindingRequired(cb)
		} else {
			x.conv = srv.NewConversationWithChannelBinding(cb)
		}
	} else {
		x.conv = srv.NewConversation()
	}
	return nil
}

// lookup finds the stored keys of a SCRAM username. An unknown user gets
// decoy keys derived from the server secret, so the exchange runs to the
// end and fails exactly as a wrong password does.
func (x *Exchange) lookup(username string) (scram.StoredCredentials, error) {
	x.attempt(username)
	u, err := jid.New(username, x.domain, "")
	if err == nil {
		x.user = u
		c, err := x.a.store.Credential(x.ctx, u.String(), x.hash)
		if err == nil {
			return scram.StoredCredentials{
				KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations},
				StoredKey:  c.StoredKey,
				ServerKey:  c.ServerKey,
			}, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			x.unavailable = true
			return scram.StoredCredentials{}, err
		}
		for _, h := range otherHashes(x.hash) {
			if _, err := x.a.store.Credential(x.ctx, u.String(), h); err == nil {
				x.other = h
				return scram.StoredCredentials{}, errOtherHash
			}
		}
	}
	x.decoy = true
	m := hmac.New(sha256.New, x.a.secret)
	m.Write([]byte(x.hash + "\x00" + username))
	sum := m.Sum(nil)
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(sum[:16]), Iters: DefaultIterations},
		StoredKey:  sum[16:],
		ServerKey:  sum[:16],
	}, nil
}

func (x *Exchange) plain(in []byte) ([]byte, bool, error) {
	parts := bytes.Split(in, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return nil, true, fail("malformed-request", "")
	}
	x.attempt(string(parts[1]))
	// Every checked answer below costs the same lookups and one key
	// derivation, whether the account exists or not: an unknown account
	// is checked against decoy keys, as SCRAM's are. An imported account
	// may have keys of another hash only (Prosody's and ejabberd's
	// SCRAM-SHA-1), so every hash is looked up, SHA-256's first, for
	// every account: the count does not tell a native account from an
	// imported or an unknown one.
	u, err := jid.New(string(parts[1]), x.domain, "")
	valid := err == nil
	var c storage.Credential
	found := false
	for _, h := range append([]string{"SHA-256"}, otherHashes("SHA-256")...) {
		x.a.lookups.Add(1) // an invalid name counts the lookups it would have cost
		if !valid {
			continue
		}
		cand, lerr := x.a.store.Credential(x.ctx, u.String(), h)
		switch {
		case lerr == nil:
			if !found {
				c, found = cand, true
			}
		case !errors.Is(lerr, storage.ErrNotFound):
			return nil, true, fail("temporary-auth-failure", "")
		}
	}
	if !found {
		c = x.a.decoy(string(parts[1]))
	}
	x.a.iterations.Add(int64(c.Iterations))
	ok := CheckPassword(c, string(parts[2]))
	if !found || !ok {
		return nil, true, denied("not-authorized")
	}
	if len(parts[0]) > 0 {
		az, err := jid.Parse(string(parts[0]))
		if err != nil || !az.Equal(u) {
			return nil, true, denied("invalid-authzid")
		}
	}
	x.user = u
	x.success = true
	return nil, true, nil
}

// decoy is the credential an unknown account is checked against: keyed by
// the server secret, so no password matches it in practice, and with the
// iterations of a new account's.
func (a *Authenticator) decoy(username string) storage.Credential {
	m := hmac.New(sha256.New, a.secret)
	m.Write([]byte("plain\x00" + username))
	sum := m.Sum(nil)
	return storage.Credential{Hash: "SHA-256", Salt: sum[:16], Iterations: DefaultIterations, StoredKey: sum, ServerKey: sum}
}
