package xmlstream

// Byte classes used by the scanners. Keeping them in tables lets the hot loops
// skip ordinary bytes with a single load and compare.
const (
	clsName  = 1 << iota // ASCII NameChar (letters, digits, '-', '.', '_', ':')
	clsStart             // ASCII NameStartChar
	clsSpace             // XML whitespace
	clsText              // byte needs attention inside character data
	clsAttr              // byte needs attention inside an attribute value
)

var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', b == '_', b == ':':
			t[c] |= clsName | clsStart
		case '0' <= b && b <= '9', b == '-', b == '.':
			t[c] |= clsName
		}
		if b == ' ' || b == '\t' || b == '\n' || b == '\r' {
			t[c] |= clsSpace
		}
		if b < 0x20 || b >= 0x80 {
			t[c] |= clsText | clsAttr
		}
	}
	t['\t'] &^= clsText
	t['\n'] &^= clsText
	for _, b := range []byte("<&>") {
		t[b] |= clsText
	}
	for _, b := range []byte("<&'\"") {
		t[b] |= clsAttr
	}
	return t
}()

// isChar reports whether r is allowed by the Char production of XML 1.0.
func isChar(r rune) bool {
	switch {
	case r < 0x20:
		return r == 0x9 || r == 0xA || r == 0xD
	case r <= 0xD7FF:
		return true
	case r < 0xE000:
		return false
	case r <= 0xFFFD:
		return true
	default:
		return 0x10000 <= r && r <= 0x10FFFF
	}
}

// isNameStartRune implements NameStartChar of XML 1.0 fifth edition for
// non-ASCII runes.
func isNameStartRune(r rune) bool {
	switch {
	case r < 0xC0:
		return false
	case r <= 0x2FF:
		return r != 0xD7 && r != 0xF7
	case r < 0x370:
		return false
	case r <= 0x1FFF:
		return r != 0x37E
	case r == 0x200C || r == 0x200D:
		return true
	case 0x2070 <= r && r <= 0x218F:
		return true
	case 0x2C00 <= r && r <= 0x2FEF:
		return true
	case 0x3001 <= r && r <= 0xD7FF:
		return true
	case 0xF900 <= r && r <= 0xFDCF:
		return true
	case 0xFDF0 <= r && r <= 0xFFFD:
		return true
	default:
		return 0x10000 <= r && r <= 0xEFFFF
	}
}

// isNameRune implements NameChar for non-ASCII runes.
func isNameRune(r rune) bool {
	return r == 0xB7 || (0x300 <= r && r <= 0x36F) || r == 0x203F || r == 0x2040 || isNameStartRune(r)
}
