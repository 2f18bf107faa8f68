package upload

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParsePath checks that whatever a request path holds, only a path
// naming one well-formed id and one harmless name is accepted, and that
// accepted paths rebuild exactly.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"/upload/AAAAAAAAAAAAAAAAAAAAAAAA/a.txt",
		"/upload/abcdefghijklmnopqrstuvwx/r\u00e9sum\u00e9.pdf",
		"/upload/../secret",
		"/upload/AAAAAAAAAAAAAAAAAAAAAAAA/../../x",
		"/upload/AAAAAAAAAAAAAAAAAAAAAAAA/a\\b",
		"/upload/AAAAAAAAAAAAAAAAAAAAAAAA/a\x00b",
		"/upload/AAAAAAAAAAAAAAAAAAAAAA.json/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		id, name, ok := parsePath(p)
		if !ok {
			return
		}
		if pathPrefix+id+"/"+name != p {
			t.Fatalf("%q parsed as %q %q", p, id, name)
		}
		if !validID(id) || strings.ContainsAny(id, "./\\") || len(id) != idLen {
			t.Fatalf("id %q accepted", id)
		}
		if name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
			t.Fatalf("name %q accepted", name)
		}
	})
}

// FuzzToken checks that arbitrary Authorization values never verify
// without the secret and never crash the parser, and that every token the
// server signs verifies to its own claims.
func FuzzToken(f *testing.F) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	good := signToken(secret, claims{Path: "/upload/AAAAAAAAAAAAAAAAAAAAAAAA/a.txt", Size: 10, ContentType: "text/plain", Owner: "alice@example.org", Expires: 1})
	for _, s := range []string{
		"Bearer " + good,
		"bearer  " + good + " ",
		"Bearer " + good + "x",
		"Basic YWxpY2U6c2VjcmV0",
		"Bearer a.b",
		"Bearer ..",
		"Bearer e30.AAAA",
	} {
		f.Add(s, "/upload/x/y", int64(3), "a/b")
	}
	f.Fuzz(func(t *testing.T, header, path string, size int64, ctype string) {
		if tok, ok := bearerToken(header); ok {
			c, err := verifyToken(secret, tok)
			if err == nil && tok != good && signToken(secret, c) != tok {
				// Only the server's own encodings of claims verify.
				t.Fatalf("foreign token %q verified as %+v", tok, c)
			}
		}
		c := claims{Path: path, Size: size, ContentType: ctype, Owner: header, Expires: size}
		got, err := verifyToken(secret, signToken(secret, c))
		if len(signToken(secret, c)) <= maxTokenLen && (err != nil || got != c) {
			// JSON replaces invalid UTF-8; such claims are never signed
			// since names, types and JIDs are valid UTF-8.
			if validUTF8(path, ctype, header) {
				t.Fatalf("round trip of %+v: %+v, %v", c, got, err)
			}
		}
		if _, err := verifyToken([]byte("another secret, thirty-two bytes"), signToken(secret, c)); err == nil {
			t.Fatal("verified under another secret")
		}
	})
}

func validUTF8(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}
