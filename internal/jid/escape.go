package jid

import (
	"strings"
)

// escapes are the characters XEP-0106 (JID Escaping) replaces in a
// localpart, with their escape sequences; the backslash comes first so
// that it is escaped before it appears in other sequences.
var escapes = [...]struct {
	c   byte
	seq string
}{
	{'\\', `\5c`}, {' ', `\20`}, {'"', `\22`}, {'&', `\26`}, {'\'', `\27`},
	{'/', `\2f`}, {':', `\3a`}, {'<', `\3c`}, {'>', `\3e`}, {'@', `\40`},
}

// EscapeLocal turns an identifier from another system, such as a legacy
// user name with spaces or an '@', into a localpart (XEP-0106): the
// characters a localpart may not hold become escape sequences. A
// backslash that starts what would read as a sequence is escaped too,
// so that UnescapeLocal gives back exactly s. Leading and trailing spaces
// are escaped as well (XEP-0106 §4.3 forbids them unescaped).
func EscapeLocal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case ' ', '"', '&', '\'', '/', ':', '<', '>', '@':
			b.WriteString(seqOf(c))
		case '\\':
			// Only a backslash that starts a sequence needs escaping;
			// escaping all of them keeps the rule simple and reversible.
			if isSeq(s[i:]) {
				b.WriteString(`\5c`)
			} else {
				b.WriteByte(c)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// UnescapeLocal reverses EscapeLocal: every escape sequence of XEP-0106
// becomes its character; a backslash not followed by one stays.
func UnescapeLocal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && isSeq(s[i:]) {
			b.WriteByte(charOf(s[i : i+3]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func seqOf(c byte) string {
	for _, e := range escapes {
		if e.c == c {
			return e.seq
		}
	}
	return string(c)
}

func charOf(seq string) byte {
	for _, e := range escapes {
		if e.seq == seq {
			return e.c
		}
	}
	return seq[0]
}

// isSeq reports whether s starts with one of the escape sequences.
func isSeq(s string) bool {
	if len(s) < 3 {
		return false
	}
	for _, e := range escapes {
		if s[:3] == e.seq {
			return true
		}
	}
	return false
}
