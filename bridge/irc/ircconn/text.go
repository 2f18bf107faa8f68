package ircconn

import (
	"strings"
	"unicode/utf8"
)

// MaxLine is the longest line RFC 1459 allows, CR LF included; message
// tags come on top, in a budget of their own.
const MaxLine = 512

// Split cuts text into pieces of at most limit bytes each, for a command
// whose line leaves that much room: a piece per line of the text (IRC
// lines cannot hold a line break), empty lines dropped, and a long line
// cut after its last space that fits, or else between two characters
// (never inside a UTF-8 sequence). limit below 16 is taken as 16.
func Split(text string, limit int) []string {
	if limit < 16 {
		limit = 16
	}
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.ContainsAny(line, "\r\x00") {
			line = strings.NewReplacer("\r", " ", "\x00", " ").Replace(line)
		}
		for len(line) > limit {
			cut := strings.LastIndexByte(line[:limit+1], ' ')
			if cut <= 0 {
				cut = limit
				for cut > 0 && !utf8.RuneStart(line[cut]) {
					cut--
				}
				if cut == 0 {
					cut = limit // not UTF-8: cut anyway
				}
				out = append(out, line[:cut])
				line = line[cut:]
				continue
			}
			if strings.TrimSpace(line[:cut]) != "" {
				out = append(out, line[:cut])
			}
			line = strings.TrimLeft(line[cut:], " ")
		}
		if strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	return out
}

// CTCP reads a client-to-client request or reply carried in a PRIVMSG or
// NOTICE: "\x01VERSION\x01" gives ("VERSION", "", true); the closing
// \x01 may be missing.
func CTCP(text string) (command, arg string, ok bool) {
	if len(text) < 2 || text[0] != 1 {
		return "", "", false
	}
	text = strings.TrimSuffix(text[1:], "\x01")
	command, arg, _ = strings.Cut(text, " ")
	if command == "" {
		return "", "", false
	}
	return strings.ToUpper(command), arg, true
}

// FormatCTCP writes a client-to-client message.
func FormatCTCP(command, arg string) string {
	if arg == "" {
		return "\x01" + command + "\x01"
	}
	return "\x01" + command + " " + arg + "\x01"
}

// StripFormatting removes the formatting codes of mIRC and others: bold,
// italics, underline, strike-through, monospace, reverse, reset, and
// colours with their numbers (\x03 with up to two digits and an optional
// comma and two more; \x04 with six hex digits and the same).
func StripFormatting(s string) string {
	if !strings.ContainsAny(s, "\x02\x03\x04\x0f\x11\x16\x1d\x1e\x1f") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0x02, 0x0f, 0x11, 0x16, 0x1d, 0x1e, 0x1f:
		case 0x03:
			i = skipColour(s, i, 2, isDigit)
		case 0x04:
			i = skipColour(s, i, 6, isHex)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// skipColour returns the index of the last byte of a colour code that
// starts at i: up to n digits, then a comma and up to n more only if a
// digit follows the comma.
func skipColour(s string, i, n int, ok func(byte) bool) int {
	j := i + 1
	k := 0
	for k < n && j < len(s) && ok(s[j]) {
		j++
		k++
	}
	if k > 0 && j+1 < len(s) && s[j] == ',' && ok(s[j+1]) {
		j++
		for k = 0; k < n && j < len(s) && ok(s[j]); k++ {
			j++
		}
	}
	return j - 1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
