package xmlstream

import (
	"strconv"
	"unicode/utf8"
)

// AppendXML appends the serialization of e to dst, assuming the enclosing
// default namespace is defaultNS, and returns the extended slice.
//
// Prefixes are not preserved: an element whose namespace differs from the
// enclosing default gets an xmlns attribute, attributes in NSXML are written
// with the xml: prefix and attributes in other namespaces get generated
// prefixes declared on the element itself. When both defaultNS and e.Space
// are content namespaces (NSClient, NSServer, NSComponent) no xmlns is
// written, so the stanza adopts the namespace of the stream it is written to.
// If e still holds its raw inner bytes they are copied verbatim.
func (e *Element) AppendXML(dst []byte, defaultNS string) []byte {
	if isContentNS(defaultNS) && isContentNS(e.Space) {
		// Pretending the enclosing default is e.Space suppresses xmlns.
		return e.appendXML(dst, e.Space)
	}
	return e.appendXML(dst, defaultNS)
}

// appendXML writes e where scope is the default namespace in effect in the
// output; children are written with e.Space as their scope.
func (e *Element) appendXML(dst []byte, scope string) []byte {
	dst = append(dst, '<')
	dst = append(dst, e.Local...)
	if e.Space != scope {
		dst = append(dst, " xmlns='"...)
		dst = AppendEscapedAttr(dst, e.Space)
		dst = append(dst, '\'')
	}
	for i := range e.Attrs {
		a := &e.Attrs[i]
		dst = append(dst, ' ')
		switch a.Space {
		case "":
		case NSXML:
			dst = append(dst, "xml:"...)
		default:
			// The prefix is named after the first attribute using the same
			// namespace, which makes it unique per namespace without a map.
			k := i
			for j := 0; j < i; j++ {
				if e.Attrs[j].Space == a.Space {
					k = j
					break
				}
			}
			if k == i {
				dst = append(dst, "xmlns:ns"...)
				dst = strconv.AppendInt(dst, int64(k), 10)
				dst = append(dst, "='"...)
				dst = AppendEscapedAttr(dst, a.Space)
				dst = append(dst, "' "...)
			}
			dst = append(dst, "ns"...)
			dst = strconv.AppendInt(dst, int64(k), 10)
			dst = append(dst, ':')
		}
		dst = append(dst, a.Local...)
		dst = append(dst, "='"...)
		dst = AppendEscapedAttr(dst, a.Value)
		dst = append(dst, '\'')
	}
	if e.hasRaw {
		if e.raw == "" {
			return append(dst, "/>"...)
		}
		dst = append(dst, '>')
		dst = append(dst, e.raw...)
	} else {
		if len(e.Nodes) == 0 {
			return append(dst, "/>"...)
		}
		dst = append(dst, '>')
		for i := range e.Nodes {
			n := &e.Nodes[i]
			if n.Elem == nil {
				dst = AppendEscapedText(dst, n.Text)
				continue
			}
			dst = n.Elem.appendXML(dst, e.Space)
		}
	}
	dst = append(dst, "</"...)
	dst = append(dst, e.Local...)
	return append(dst, '>')
}

// Escape classes for the serializer: 0 copies the byte, 1 needs an entity or
// character reference, 2 starts a multi-byte sequence that must be checked.
var (
	textEsc = escTable("<>&\r")
	attrEsc = escTable("<>&'\"\t\n\r")
)

func escTable(special string) (t [256]uint8) {
	for c := 0; c < 0x20; c++ {
		t[c] = 1
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = 2
	}
	t['\t'], t['\n'] = 0, 0
	for i := 0; i < len(special); i++ {
		t[special[i]] = 1
	}
	return t
}

// AppendEscapedText appends s escaped for use as character data. Carriage
// returns are written as references so they survive line-end normalization;
// characters that XML cannot carry (invalid UTF-8, most C0 controls, U+FFFE,
// U+FFFF) become U+FFFD so that the output is always well-formed.
func AppendEscapedText(dst []byte, s string) []byte {
	return appendEscaped(dst, s, &textEsc)
}

// AppendEscapedAttr appends s escaped for use inside a quoted attribute value
// (either quote style). Whitespace other than the space character is written
// as references so that attribute-value normalization does not change it.
func AppendEscapedAttr(dst []byte, s string) []byte {
	return appendEscaped(dst, s, &attrEsc)
}

func appendEscaped(dst []byte, s string, t *[256]uint8) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if t[c] == 0 {
			i++
			continue
		}
		var rep string
		size := 1
		switch c {
		case '<':
			rep = "&lt;"
		case '>':
			rep = "&gt;"
		case '&':
			rep = "&amp;"
		case '\'':
			rep = "&apos;"
		case '"':
			rep = "&quot;"
		case '\t':
			rep = "&#x9;"
		case '\n':
			rep = "&#xA;"
		case '\r':
			rep = "&#xD;"
		default:
			if c < 0x80 {
				rep = "\uFFFD"
				break
			}
			r, n := utf8.DecodeRuneInString(s[i:])
			if (r == utf8.RuneError && n == 1) || !isChar(r) {
				rep = "\uFFFD"
				size = n
				break
			}
			i += n
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, rep...)
		i += size
		last = i
	}
	return append(dst, s[last:]...)
}
