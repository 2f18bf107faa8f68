package s2s

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// NSDialback is the namespace of the dialback elements (XEP-0220).
const NSDialback = "jabber:server:dialback"

// nsDialbackFeature announces dialback in stream features (XEP-0220 §2.1).
const nsDialbackFeature = "urn:xmpp:features:dialback"

// dbElem is a parsed <db:result/> or <db:verify/>.
type dbElem struct {
	Verify bool   // db:verify rather than db:result
	From   string // a domain
	To     string // a domain
	ID     string // db:verify only: the stream id the key was made for
	Type   string // "" for a request; valid, invalid or error for an answer
	Key    string // the key of a request
}

// errDialback is wrapped by every parse failure of a dialback element.
var errDialback = errors.New("dialback")

// parseDialback reads a dialback element, checking what XEP-0220 requires
// of it: domains in from and to, an id on db:verify, a key on a request.
func parseDialback(el *xmlstream.Element) (dbElem, error) {
	var d dbElem
	if el.Space != NSDialback {
		return d, fmt.Errorf("%w: namespace %q", errDialback, el.Space)
	}
	switch el.Local {
	case "result":
	case "verify":
		d.Verify = true
	default:
		return d, fmt.Errorf("%w: unknown element %q", errDialback, el.Local)
	}
	var err error
	if d.From, err = domainOf(el.Attr("from")); err != nil {
		return d, fmt.Errorf("%w: from: %v", errDialback, err)
	}
	if d.To, err = domainOf(el.Attr("to")); err != nil {
		return d, fmt.Errorf("%w: to: %v", errDialback, err)
	}
	d.ID = el.Attr("id")
	if d.Verify && d.ID == "" {
		return d, fmt.Errorf("%w: db:verify without id", errDialback)
	}
	d.Type = el.Attr("type")
	switch d.Type {
	case "":
		d.Key = strings.TrimSpace(el.Text())
		if d.Key == "" {
			return d, fmt.Errorf("%w: request without a key", errDialback)
		}
	case "valid", "invalid", "error":
	default:
		return d, fmt.Errorf("%w: type %q", errDialback, d.Type)
	}
	return d, nil
}

// domainOf returns the canonical form of s, which must be a bare domain.
func domainOf(s string) (string, error) {
	if s == "" {
		return "", errors.New("missing")
	}
	j, err := jid.Parse(s)
	if err != nil {
		return "", err
	}
	if j.Local() != "" || j.Resource() != "" {
		return "", fmt.Errorf("%q is not a domain", s)
	}
	return j.Domain(), nil
}

// dialbackKey is the XEP-0185 key: HMAC-SHA256 keyed with the SHA-256 of
// the secret over "receiving originating streamID", hex encoded. Only the
// authoritative server can make it, and it needs no state to check it.
func dialbackKey(secret []byte, receiving, originating, streamID string) string {
	k := sha256.Sum256(secret)
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(receiving + " " + originating + " " + streamID))
	return hex.EncodeToString(m.Sum(nil))
}

// checkKey reports whether key is the one we would make.
func checkKey(secret []byte, receiving, originating, streamID, key string) bool {
	want := dialbackKey(secret, receiving, originating, streamID)
	return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(key))) == 1
}

// dbXML serializes a dialback element.
func dbXML(verify bool, from, to, id, typ, key string) []byte {
	name := "db:result"
	if verify {
		name = "db:verify"
	}
	b := []byte("<" + name)
	attr := func(k, v string) {
		if v != "" {
			b = append(b, " "+k+"='"...)
			b = xmlstream.AppendEscapedAttr(b, v)
			b = append(b, '\'')
		}
	}
	attr("from", from)
	attr("to", to)
	attr("id", id)
	attr("type", typ)
	if key == "" {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = xmlstream.AppendEscapedText(b, key)
	return append(b, "</"+name+">"...)
}
