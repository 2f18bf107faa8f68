package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"hash"
	"slices"
	"strconv"
	"strings"

	"github.com/xdg-go/scram"
)

// SSDPHash computes the SCRAM Downgrade Protection value of XEP-0474: the
// base64 hash, by the SCRAM mechanism's own hash function, of the offered
// mechanisms (sorted, joined by 0x1E), followed, if channel bindings were
// advertised with XEP-0440, by 0x1F and the sorted binding types joined the
// same way. hashName is "SHA-1", "SHA-256" or "SHA-512".
func SSDPHash(hashName string, mechs, cbs []string) string {
	gen := hashFunc(hashName)
	if gen == nil {
		return ""
	}
	m := slices.Clone(mechs)
	slices.Sort(m) // byte order is the i;octet collation
	s := strings.Join(m, "\x1e")
	if len(cbs) > 0 {
		c := slices.Clone(cbs)
		slices.Sort(c)
		s += "\x1f" + strings.Join(c, "\x1e")
	}
	h := gen()
	h.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// ssdpAttr names the server-first-message attribute that carries the
// SSDP value: "h" since XEP-0474 0.5.0, which this implements (earlier
// versions used "d").
const ssdpAttr = "h"

// scramConversation is a server SCRAM conversation: the library's, or
// ssdpConversation when the server-first-message must carry an attribute
// the library cannot add.
type scramConversation interface {
	Step(in string) (string, error)
	Valid() bool
	AuthzID() string
}

// ssdpConversation is the server side of SCRAM (RFC 5802) with the SSDP
// attribute in its server-first-message. The attribute is part of the
// AuthMessage both sides sign, which is why it cannot be appended to what
// the library produced.
type ssdpConversation struct {
	gen      scram.HashGeneratorFcn
	lookup   scram.CredentialLookup
	cb       scram.ChannelBinding // what a "p" flag must match
	required bool                 // a -PLUS mechanism: "p" only
	ssdp     string

	step   int
	gs2    string // the GS2 header as the client sent it
	flag   byte   // 'n', 'y' or 'p'
	authz  string
	nonce  string
	c1bare string
	s1     string
	cred   scram.StoredCredentials
	valid  bool
}

// Errors of the conversation; each answer string is the RFC 5802
// server-error that scramFailure maps to a SASL condition.
var errSCRAM = errors.New("scram: authentication failed")

func (c *ssdpConversation) Valid() bool     { return c.valid }
func (c *ssdpConversation) AuthzID() string { return c.authz }

func (c *ssdpConversation) Step(in string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		return c.first(in)
	case 2:
		return c.final(in)
	}
	return "", errSCRAM
}

// parseGS2 splits a client-first-message into its GS2 header parts and
// the bare message.
func parseGS2(msg string) (flag byte, cbName, authz, bare string, err error) {
	f, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return 0, "", "", "", errSCRAM
	}
	switch {
	case f == "n" || f == "y":
	case strings.HasPrefix(f, "p=") && len(f) > 2:
		cbName = f[2:]
	default:
		return 0, "", "", "", errSCRAM
	}
	a, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return 0, "", "", "", errSCRAM
	}
	if a != "" {
		if !strings.HasPrefix(a, "a=") {
			return 0, "", "", "", errSCRAM
		}
		if authz, ok = decodeSASLName(a[2:]); !ok || authz == "" {
			return 0, "", "", "", errSCRAM
		}
	}
	return f[0], cbName, authz, bare, nil
}

// decodeSASLName undoes RFC 5802's escaping of ',' and '='.
func decodeSASLName(s string) (string, bool) {
	if !strings.Contains(s, "=") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

// attrs splits "k=v,k=v" into its attributes, in order; every key is one
// letter.
func attrs(s string) ([][2]string, bool) {
	var out [][2]string
	for _, p := range strings.Split(s, ",") {
		if len(p) < 2 || p[1] != '=' || !(p[0] >= 'a' && p[0] <= 'z' || p[0] >= 'A' && p[0] <= 'Z') {
			return nil, false
		}
		out = append(out, [2]string{p[:1], p[2:]})
	}
	return out, true
}

func (c *ssdpConversation) first(msg string) (string, error) {
	flag, cbName, authz, bare, err := parseGS2(msg)
	if err != nil {
		return scram.ErrInvalidEncoding, err
	}
	as, ok := attrs(bare)
	if !ok || len(as) < 2 {
		return scram.ErrInvalidEncoding, errSCRAM
	}
	if as[0][0] == "m" {
		return scram.ErrExtensionsNotSupported, errSCRAM
	}
	if as[0][0] != "n" || as[1][0] != "r" || as[1][1] == "" {
		return scram.ErrInvalidEncoding, errSCRAM
	}
	user, ok := decodeSASLName(as[0][1])
	if !ok || user == "" {
		return scram.ErrInvalidUsernameEncoding, errSCRAM
	}
	for _, r := range as[1][1] {
		if r < 0x21 || r > 0x7e {
			return scram.ErrInvalidEncoding, errSCRAM
		}
	}
	switch {
	case flag == 'p' && (!c.cb.IsSupported() || string(c.cb.Type) != cbName):
		return scram.ErrUnsupportedChannelBindingType, errSCRAM
	case flag != 'p' && c.required:
		return scram.ErrServerDoesSupportChannelBinding, errSCRAM
	}
	c.flag, c.authz = flag, authz
	c.gs2 = msg[:len(msg)-len(bare)]
	c.c1bare = bare
	c.cred, err = c.lookup(user)
	if err != nil {
		return scram.ErrUnknownUser, err
	}
	var rnd [18]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return scram.ErrOtherError, err
	}
	c.nonce = as[1][1] + base64.RawURLEncoding.EncodeToString(rnd[:])
	c.s1 = "r=" + c.nonce + ",s=" + base64.StdEncoding.EncodeToString([]byte(c.cred.Salt)) + ",i=" + strconv.Itoa(c.cred.Iters)
	if c.ssdp != "" {
		c.s1 += "," + ssdpAttr + "=" + c.ssdp
	}
	return c.s1, nil
}

func (c *ssdpConversation) final(msg string) (string, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return scram.ErrInvalidEncoding, errSCRAM
	}
	withoutProof, proof64 := msg[:i], msg[i+3:]
	as, ok := attrs(withoutProof)
	if !ok || len(as) < 2 || as[0][0] != "c" || as[1][0] != "r" {
		return scram.ErrInvalidEncoding, errSCRAM
	}
	cbind, err := base64.StdEncoding.DecodeString(as[0][1])
	if err != nil {
		return scram.ErrInvalidEncoding, errSCRAM
	}
	want := []byte(c.gs2)
	if c.flag == 'p' {
		want = append(want, c.cb.Data...)
	}
	if !hmac.Equal(cbind, want) {
		return scram.ErrChannelBindingsDontMatch, errSCRAM
	}
	if as[1][1] != c.nonce {
		return scram.ErrOtherError, errSCRAM
	}
	proof, err := base64.StdEncoding.DecodeString(proof64)
	if err != nil {
		return scram.ErrInvalidEncoding, errSCRAM
	}
	authMsg := []byte(c.c1bare + "," + c.s1 + "," + withoutProof)
	sig := mac(c.gen, c.cred.StoredKey, authMsg)
	if len(proof) != len(sig) {
		return scram.ErrInvalidProof, errSCRAM
	}
	clientKey := make([]byte, len(sig))
	for i := range sig {
		clientKey[i] = proof[i] ^ sig[i]
	}
	h := c.gen()
	h.Write(clientKey)
	if !hmac.Equal(h.Sum(nil), c.cred.StoredKey) {
		return scram.ErrInvalidProof, errSCRAM
	}
	c.valid = true
	return "v=" + base64.StdEncoding.EncodeToString(mac(c.gen, c.cred.ServerKey, authMsg)), nil
}

func mac(gen scram.HashGeneratorFcn, key, msg []byte) []byte {
	m := hmac.New(func() hash.Hash { return gen() }, key)
	m.Write(msg)
	return m.Sum(nil)
}
