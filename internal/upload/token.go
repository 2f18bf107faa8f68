package upload

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// pathPrefix starts the path of every file: pathPrefix + id + "/" + name.
const pathPrefix = "/upload/"

// idLen is the length of a file id: 18 random bytes, base64url, so that
// URLs cannot be guessed (144 bits).
const idLen = 24

// maxNameLen bounds a file name, in bytes, as most file systems do.
const maxNameLen = 255

// maxTokenLen bounds the Authorization header value worth parsing: claims
// hold a path, a content type and a JID, each bounded.
const maxTokenLen = 8 << 10

// claims is what a slot grants: one PUT of Size bytes of ContentType at
// Path, for Owner, until Expires (Unix seconds). The token carries the
// claims in clear and their HMAC, so that the HTTP side needs no state to
// check a slot (it works across restarts) and nothing in it can be
// changed without the server's secret.
type claims struct {
	Path        string `json:"p"`
	Size        int64  `json:"s"`
	ContentType string `json:"t"`
	Owner       string `json:"o"`
	Expires     int64  `json:"e"`
}

// tokenDomain separates these MACs from any other use of the secret.
const tokenDomain = "ambrosia upload slot v1\x00"

func mac(secret, payload []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(tokenDomain))
	h.Write(payload)
	return h.Sum(nil)
}

// signToken returns the token granting c: base64url(JSON) "." base64url(MAC).
func signToken(secret []byte, c claims) string {
	payload, _ := json.Marshal(c) // plain strings and integers: cannot fail
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(mac(secret, payload))
}

// Token errors. They are told apart only for the log and the HTTP status;
// a client learns nothing from them that helps forging a token.
var (
	errTokenMalformed = errors.New("malformed token")
	errTokenSignature = errors.New("bad token signature")
)

// verifyToken checks tok's MAC and returns its claims. It checks nothing
// else: the caller compares the claims with the request.
func verifyToken(secret []byte, tok string) (claims, error) {
	var c claims
	if len(tok) > maxTokenLen {
		return c, errTokenMalformed
	}
	p, m, ok := strings.Cut(tok, ".")
	if !ok {
		return c, errTokenMalformed
	}
	enc := base64.RawURLEncoding
	payload, err := enc.DecodeString(p)
	if err != nil {
		return c, errTokenMalformed
	}
	sum, err := enc.DecodeString(m)
	if err != nil || len(sum) != sha256.Size {
		return c, errTokenMalformed
	}
	// The MAC is checked before the payload is decoded, so that only the
	// server's own JSON ever reaches the decoder.
	if !hmac.Equal(sum, mac(secret, payload)) {
		return c, errTokenSignature
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, errTokenMalformed
	}
	return c, nil
}

// bearerToken returns the token of an Authorization header value
// "Bearer TOKEN" (the scheme is case-insensitive, RFC 6750 §2.1).
func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// parsePath splits a request path, already relative to the public URL's
// path, into the file id and name. Only pathPrefix + a well-formed id +
// "/" + a valid name is accepted: nothing else can name a file, so no
// request can reach outside the store whatever it holds ("..", encoded
// slashes, NUL bytes).
func parsePath(p string) (id, name string, ok bool) {
	rest, ok := strings.CutPrefix(p, pathPrefix)
	if !ok {
		return "", "", false
	}
	id, name, ok = strings.Cut(rest, "/")
	if !ok || !validID(id) || !validName(name) {
		return "", "", false
	}
	return id, name, true
}

// validID reports whether id is a file id as newID makes them.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validName reports whether a client's file name may appear in a URL: one
// path segment of printable UTF-8. The name is only shown to users; the
// store names its files by id.
func validName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > maxNameLen || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r == '/' || r == '\\' || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
