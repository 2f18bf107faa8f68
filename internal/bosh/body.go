package bosh

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Namespaces of XEP-0124 and XEP-0206.
const (
	// NSHTTPBind qualifies <body/> (XEP-0124).
	NSHTTPBind = "http://jabber.org/protocol/httpbind"
	// NSXBOSH qualifies the xmpp: attributes of XEP-0206.
	NSXBOSH  = "urn:xmpp:xbosh"
	nsStream = "http://etherx.jabber.org/streams"
)

// maxBodyAttrs bounds the attributes of one <body/>: XEP-0124 defines
// about twenty.
const maxBodyAttrs = 32

// body is a request's <body/> wrapper: its attributes, read without a
// DOM, and its content as the bytes the client sent, which go to the
// stream's parser unparsed here.
type body struct {
	sid, to, ver, content, lang, typ, xmppVersion, route, from string
	rid, ack                                                   int64
	wait, hold, pause                                          int
	hasRID, hasAck, hasWait, hasHold, hasPause, restart        bool
	// payload is the content between <body ...> and </body>.
	payload []byte
}

var errBadBody = errors.New("bosh: not a BOSH body")

// parseBody reads a request. It checks the wrapper only; the payload is
// checked by the stream's parser, to which it is fed as is.
func parseBody(b []byte) (*body, error) {
	i := skipSpace(b, 0)
	if bytes.HasPrefix(b[i:], []byte("<?xml")) {
		end := bytes.Index(b[i:], []byte("?>"))
		if end < 0 {
			return nil, errBadBody
		}
		i = skipSpace(b, i+end+2)
	}
	if !bytes.HasPrefix(b[i:], []byte("<body")) {
		return nil, errBadBody
	}
	i += len("<body")
	type attr struct{ name, value string }
	var attrs []attr
	selfClosed := false
	for {
		j := skipSpace(b, i)
		if j >= len(b) {
			return nil, errBadBody
		}
		if b[j] == '>' {
			i = j + 1
			break
		}
		if b[j] == '/' {
			if j+1 >= len(b) || b[j+1] != '>' {
				return nil, errBadBody
			}
			i, selfClosed = j+2, true
			break
		}
		if j == i {
			return nil, errBadBody // no space before the attribute
		}
		k := j
		for k < len(b) && isNameByte(b[k]) {
			k++
		}
		if k == j {
			return nil, errBadBody
		}
		name := string(b[j:k])
		k = skipSpace(b, k)
		if k >= len(b) || b[k] != '=' {
			return nil, errBadBody
		}
		k = skipSpace(b, k+1)
		if k >= len(b) || (b[k] != '\'' && b[k] != '"') {
			return nil, errBadBody
		}
		q := b[k]
		end := bytes.IndexByte(b[k+1:], q)
		if end < 0 {
			return nil, errBadBody
		}
		v, ok := unescape(b[k+1 : k+1+end])
		if !ok {
			return nil, errBadBody
		}
		for _, a := range attrs {
			if a.name == name {
				return nil, errBadBody
			}
		}
		if len(attrs) == maxBodyAttrs {
			return nil, errBadBody
		}
		attrs = append(attrs, attr{name, v})
		i = k + 1 + end + 1
	}
	bd := &body{}
	if selfClosed {
		if skipSpace(b, i) != len(b) {
			return nil, errBadBody
		}
	} else {
		end := bytes.LastIndex(b, []byte("</body"))
		if end < i {
			return nil, errBadBody
		}
		k := skipSpace(b, end+len("</body"))
		if k >= len(b) || b[k] != '>' || skipSpace(b, k+1) != len(b) {
			return nil, errBadBody
		}
		bd.payload = b[i:end]
	}
	// Prefixes of the wrapper's attributes; those of the payload are the
	// stream parser's business.
	prefixes := map[string]string{}
	defNS := ""
	for _, a := range attrs {
		switch {
		case a.name == "xmlns":
			defNS = a.value
		case strings.HasPrefix(a.name, "xmlns:"):
			prefixes[a.name[len("xmlns:"):]] = a.value
		}
	}
	if defNS != NSHTTPBind {
		return nil, errBadBody
	}
	var err error
	num := func(s string) int64 {
		n, e := strconv.ParseInt(s, 10, 64)
		if e != nil || n < 0 {
			err = errBadBody
		}
		return n
	}
	small := func(s string) int {
		n := num(s)
		if n > 1<<20 {
			err = errBadBody
		}
		return int(n)
	}
	for _, a := range attrs {
		name := a.name
		if p, local, ok := strings.Cut(name, ":"); ok {
			if p == "xmlns" || p == "xml" {
				if name == "xml:lang" {
					bd.lang = a.value
				}
				continue
			}
			ns, known := prefixes[p]
			if !known {
				return nil, errBadBody
			}
			if ns != NSXBOSH {
				continue
			}
			switch local {
			case "version":
				bd.xmppVersion = a.value
			case "restart":
				bd.restart = a.value == "true" || a.value == "1"
			}
			continue
		}
		switch name {
		case "sid":
			bd.sid = a.value
		case "rid":
			bd.rid, bd.hasRID = num(a.value), true
		case "ack":
			bd.ack, bd.hasAck = num(a.value), true
		case "to":
			bd.to = a.value
		case "from":
			bd.from = a.value
		case "route":
			bd.route = a.value
		case "ver":
			bd.ver = a.value
		case "content":
			bd.content = a.value
		case "type":
			bd.typ = a.value
		case "wait":
			bd.wait, bd.hasWait = small(a.value), true
		case "hold":
			bd.hold, bd.hasHold = small(a.value), true
		case "pause":
			bd.pause, bd.hasPause = small(a.value), true
		}
	}
	if err != nil {
		return nil, err
	}
	return bd, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// isNameByte accepts the bytes of attribute names; names outside ASCII
// are not BOSH's.
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '_' || c == '-' || c == '.'
}

// unescape decodes an attribute value: the five predefined entities and
// character references, nothing else (RFC 6120 §11).
func unescape(v []byte) (string, bool) {
	if !utf8.Valid(v) || bytes.IndexByte(v, '<') >= 0 {
		return "", false
	}
	if bytes.IndexByte(v, '&') < 0 {
		return string(v), true
	}
	var sb strings.Builder
	for len(v) > 0 {
		i := bytes.IndexByte(v, '&')
		if i < 0 {
			sb.Write(v)
			break
		}
		sb.Write(v[:i])
		v = v[i:]
		end := bytes.IndexByte(v, ';')
		if end < 0 {
			return "", false
		}
		ref := string(v[1:end])
		v = v[end+1:]
		switch ref {
		case "lt":
			sb.WriteByte('<')
		case "gt":
			sb.WriteByte('>')
		case "amp":
			sb.WriteByte('&')
		case "quot":
			sb.WriteByte('"')
		case "apos":
			sb.WriteByte('\'')
		default:
			if !strings.HasPrefix(ref, "#") {
				return "", false
			}
			var n uint64
			var err error
			if strings.HasPrefix(ref, "#x") {
				n, err = strconv.ParseUint(ref[2:], 16, 32)
			} else {
				n, err = strconv.ParseUint(ref[1:], 10, 32)
			}
			r := rune(n)
			if err != nil || !isXMLChar(r) {
				return "", false
			}
			sb.WriteRune(r)
		}
	}
	return sb.String(), true
}

func isXMLChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// escapeAttr writes s for a single-quoted attribute value.
func escapeAttr(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '&':
			dst = append(dst, "&amp;"...)
		case '\'':
			dst = append(dst, "&apos;"...)
		case '"':
			dst = append(dst, "&quot;"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
