package ircconn

import (
	"strconv"
	"strings"
)

// Support is what the server announced in RPL_ISUPPORT (005): the tokens
// a client needs, with the defaults of RFC 1459 where the server says
// nothing.
type Support struct {
	// Tokens are every token, by name; a token without a value has "".
	Tokens map[string]string
}

// Get returns a token's value and whether the server sent it.
func (s Support) Get(name string) (string, bool) {
	v, ok := s.Tokens[name]
	return v, ok
}

// add reads the tokens of one 005 line (the parameters between the nick
// and the trailing text).
func (s *Support) add(params []string) {
	if s.Tokens == nil {
		s.Tokens = map[string]string{}
	}
	for _, t := range params {
		if strings.HasPrefix(t, "-") {
			delete(s.Tokens, t[1:])
			continue
		}
		k, v, _ := strings.Cut(t, "=")
		if k != "" {
			s.Tokens[k] = unescapeISupport(v)
		}
	}
}

// unescapeISupport undoes the \xHH escapes of ISUPPORT values.
func unescapeISupport(v string) string {
	if !strings.Contains(v, `\x`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+3 < len(v) && v[i+1] == 'x' {
			if n, err := strconv.ParseUint(v[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// Prefix returns the channel membership modes and their symbols, in
// order of rank: "ov" and "@+" unless the server said otherwise.
func (s Support) Prefix() (modes, symbols string) {
	v, ok := s.Tokens["PREFIX"]
	if !ok || !strings.HasPrefix(v, "(") {
		return "ov", "@+"
	}
	m, sym, ok := strings.Cut(v[1:], ")")
	if !ok || len(m) != len(sym) {
		return "ov", "@+"
	}
	return m, sym
}

// ChanTypes returns the characters that start a channel's name.
func (s Support) ChanTypes() string {
	if v, ok := s.Tokens["CHANTYPES"]; ok {
		return v
	}
	return "#&"
}

// ChanModes returns the four classes of CHANMODES: modes with a list
// (always a parameter), with a parameter always, with one when set only,
// and without.
func (s Support) ChanModes() (list, always, whenSet, never string) {
	v, ok := s.Tokens["CHANMODES"]
	if !ok {
		v = "beI,k,l,imnpst"
	}
	parts := strings.SplitN(v, ",", 4)
	for len(parts) < 4 {
		parts = append(parts, "")
	}
	return parts[0], parts[1], parts[2], parts[3]
}

// StatusMsg returns the prefixes a client may put before a channel to
// write to its members of that rank only (STATUSMSG).
func (s Support) StatusMsg() string { return s.Tokens["STATUSMSG"] }

// Int returns a numeric token, def when absent or not a number.
func (s Support) Int(name string, def int) int {
	if n, err := strconv.Atoi(s.Tokens[name]); err == nil && n > 0 {
		return n
	}
	return def
}

// Fold returns the form of a nick or channel name under the server's
// CASEMAPPING, for comparing names: "ascii", "rfc1459" (the default, where
// []\^ are the upper case of {}|~) or "strict-rfc1459" (without ^ and ~).
func (s Support) Fold(name string) string {
	mapping := s.Tokens["CASEMAPPING"]
	if mapping == "" {
		mapping = "rfc1459"
	}
	return Fold(mapping, name)
}

// Fold returns name in lower case under the case mapping.
func Fold(mapping, name string) string {
	upper := byte('Z')
	var extra string
	switch mapping {
	case "rfc1459":
		extra = "[]\\^"
	case "strict-rfc1459":
		extra = "[]\\"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= upper || strings.IndexByte(extra, c) >= 0 {
			return foldFrom(name, i, upper, extra)
		}
	}
	return name
}

func foldFrom(name string, from int, upper byte, extra string) string {
	b := []byte(name)
	for i := from; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= 'A' && c <= upper:
			b[i] = c + 'a' - 'A'
		case strings.IndexByte(extra, c) >= 0:
			b[i] = c + 32 // [ to {, ] to }, \ to |, ^ to ~
		}
	}
	return string(b)
}
