package jid

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
)

const (
	// maxPart is the RFC 7622 limit, in bytes, on each prepared part.
	maxPart = 1023
	// maxRawPart bounds a part before preparation so that hostile input
	// cannot make us run the Unicode machinery over megabytes. Preparation
	// can shrink text (width and case mapping, NFC composition of Hangul
	// jamo go down to a third), so the bound leaves room for that.
	maxRawPart = 4 * maxPart
)

// part is a prepared part. When lower is set, s still has ASCII upper-case
// letters that must be lowered on output; deferring that lets Parse make a
// single allocation for the whole address.
type part struct {
	s     string
	lower bool
}

func (p part) writeTo(b *strings.Builder) {
	if !p.lower {
		b.WriteString(p.s)
		return
	}
	for i := 0; i < len(p.s); i++ {
		c := p.s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
}

// String returns the final text of p; only tests need it, Parse uses writeTo.
func (p part) String() string {
	if !p.lower {
		return p.s
	}
	var b strings.Builder
	b.Grow(len(p.s))
	p.writeTo(&b)
	return b.String()
}

// errInvalidUTF8 is checked for up front because the Unicode libraries
// replace bad bytes with U+FFFD instead of failing.
const errInvalidUTF8 = "invalid UTF-8"

func malformed(name, reason string) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, name, reason)
}

func malformedBy(name string, cause error) error {
	return fmt.Errorf("%w: %s: %w", ErrMalformed, name, cause)
}

// localFastChar classifies ASCII bytes for the localpart shortcut: every
// printable ASCII character is PVALID in the PRECIS IdentifierClass, and
// RFC 7622 section 3.3.1 additionally forbids "&'/:<>@.
func localFastChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '"', '&', '\'', '/', ':', '<', '>', '@':
		return false
	}
	return true
}

// scanLocal reports whether UsernameCaseMapped would only lowercase s, and
// whether there is anything to lowercase.
func scanLocal(s string) (ok, upper bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !localFastChar(c) {
			return false, false
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	return true, upper
}

func prepareLocal(raw string, fast bool) (part, error) {
	const name = "localpart"
	if raw == "" {
		return part{}, malformed(name, "empty")
	}
	if len(raw) > maxRawPart {
		return part{}, malformed(name, "too long")
	}
	if fast {
		if ok, upper := scanLocal(raw); ok {
			if len(raw) > maxPart {
				return part{}, malformed(name, "too long")
			}
			return part{s: raw, lower: upper}, nil
		}
	}
	if !utf8.ValidString(raw) {
		return part{}, malformed(name, errInvalidUTF8)
	}
	s, err := precis.UsernameCaseMapped.String(raw)
	if err != nil {
		return part{}, malformedBy(name, err)
	}
	// The forbidden characters are checked after preparation because width
	// mapping turns their full-width forms into the ASCII ones.
	if s == "" {
		return part{}, malformed(name, "empty")
	}
	if strings.ContainsAny(s, "\"&'/:<>@") {
		return part{}, malformed(name, "contains a forbidden character")
	}
	if len(s) > maxPart {
		return part{}, malformed(name, "too long")
	}
	return part{s: s}, nil
}

// scanDomain reports whether the IDNA Lookup profile would only lowercase s:
// non-empty letter-digit-hyphen labels with no hyphen at either end and no
// "--" in the third and fourth positions (which also keeps out "xn--"
// labels, as those need Punycode decoding).
func scanDomain(s string) (ok, upper bool) {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			l := s[start:i]
			if l == "" || l[0] == '-' || l[len(l)-1] == '-' ||
				(len(l) >= 4 && l[2] == '-' && l[3] == '-') {
				return false, false
			}
			start = i + 1
			continue
		}
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		case 'A' <= c && c <= 'Z':
			upper = true
		default:
			return false, false
		}
	}
	return true, upper
}

func prepareDomain(raw string, fast bool) (part, error) {
	const name = "domainpart"
	// RFC 7622 section 3.2: one trailing dot names the same domain.
	d := strings.TrimSuffix(raw, ".")
	if d == "" {
		return part{}, malformed(name, "empty")
	}
	if len(d) > maxRawPart {
		return part{}, malformed(name, "too long")
	}
	if d[0] == '[' {
		return prepareIPLiteral(d)
	}
	if fast {
		if ok, upper := scanDomain(d); ok {
			if len(d) > maxPart {
				return part{}, malformed(name, "too long")
			}
			return part{s: d, lower: upper}, nil
		}
	}
	if !utf8.ValidString(d) {
		return part{}, malformed(name, errInvalidUTF8)
	}
	u, err := idna.Lookup.ToUnicode(d)
	if err != nil {
		return part{}, malformedBy(name, err)
	}
	// The Lookup profile tolerates empty labels (and mapping can create a
	// trailing one from U+3002), but a JID domainpart is a host name.
	if u == "" || u[0] == '.' || u[len(u)-1] == '.' || strings.Contains(u, "..") {
		return part{}, malformed(name, "empty label")
	}
	if len(u) > maxPart {
		return part{}, malformed(name, "too long")
	}
	return part{s: u}, nil
}

// prepareIPLiteral handles a bracketed IPv6 address. It is written in the
// RFC 5952 form so that equal addresses give equal JIDs.
func prepareIPLiteral(d string) (part, error) {
	const name = "domainpart"
	if len(d) < 2 || d[len(d)-1] != ']' {
		return part{}, malformed(name, "unterminated IP literal")
	}
	a, err := netip.ParseAddr(d[1 : len(d)-1])
	if err != nil {
		return part{}, malformedBy(name, err)
	}
	if !a.Is6() || a.Zone() != "" {
		return part{}, malformed(name, "IP literal is not a plain IPv6 address")
	}
	c := a.String()
	if len(c) == len(d)-2 && c == d[1:len(d)-1] {
		return part{s: d}, nil
	}
	return part{s: "[" + c + "]"}, nil
}

// scanResource reports whether OpaqueString would leave s unchanged: it
// maps only non-ASCII spaces, normalizes to NFC (a no-op on ASCII) and
// allows every printable ASCII character, space included.
func scanResource(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func prepareResource(raw string, fast bool) (part, error) {
	const name = "resourcepart"
	if raw == "" {
		return part{}, malformed(name, "empty")
	}
	if len(raw) > maxRawPart {
		return part{}, malformed(name, "too long")
	}
	if fast && scanResource(raw) {
		if len(raw) > maxPart {
			return part{}, malformed(name, "too long")
		}
		return part{s: raw}, nil
	}
	if !utf8.ValidString(raw) {
		return part{}, malformed(name, errInvalidUTF8)
	}
	s, err := precis.OpaqueString.String(raw)
	if err != nil {
		return part{}, malformedBy(name, err)
	}
	if len(s) > maxPart {
		return part{}, malformed(name, "too long")
	}
	return part{s: s}, nil
}
