package c2s

import (
	"bytes"
	"net"
	"sync"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// nsFraming is the namespace of RFC 7395's <open/> and <close/>.
const nsFraming = "urn:ietf:params:xml:ns:xmpp-framing"

// wsConn is the write side of a WebSocket session: the c2s code writes
// what it writes on a TCP stream, and wsConn turns it into RFC 7395
// messages, one text frame per top-level element: the stream header
// becomes <open/>, the stream end <close/> and a close frame, elements
// with the stream: prefix declare it, and elements without a namespace of
// their own get jabber:client (every message must stand alone). Doing this
// here, on bytes, keeps the session code one for both transports, and
// covers the queues of Stream Management, serialized once for whichever
// transport resumes them. Reads go to the embedded connection untouched:
// the reading side decodes frames itself (wsReader).
type wsConn struct {
	net.Conn // TLS on the socket, or the socket's write side
	pool     *sync.Pool

	// seeOther, when set before the stream end is written, goes into
	// <close/> as see-other-uri (RFC 7395 §3.6.1).
	seeOther string
	// closeCode is the code of the close frame after <close/>; 0 means
	// a normal closure.
	closeCode uint16
}

// Write frames p, which holds whole top-level elements (every write of the
// c2s code does), and writes all its frames at once.
func (w *wsConn) Write(p []byte) (int, error) {
	bp := w.pool.Get().(*[]byte)
	out := w.frames((*bp)[:0], p)
	_, err := w.Conn.Write(out)
	*bp = out
	if cap(out) <= 64<<10 {
		w.pool.Put(bp)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeControl writes a control frame (pong, close).
func (w *wsConn) writeControl(op byte, p []byte) error {
	_, err := w.Conn.Write(appendFrame(nil, op, p))
	return err
}

// frames appends the frames of the elements in p to dst.
func (w *wsConn) frames(dst, p []byte) []byte {
	for i := 0; i < len(p); {
		if p[i] != '<' {
			// Whitespace between elements: RFC 7395 has none.
			i++
			continue
		}
		if i+1 < len(p) && p[i+1] == '?' {
			// The XML declaration before the stream header.
			k := bytes.Index(p[i:], []byte("?>"))
			if k < 0 {
				break
			}
			i += k + 2
			continue
		}
		if i+1 < len(p) && p[i+1] == '/' {
			// The stream end, the only end tag at the top level.
			k := bytes.IndexByte(p[i:], '>')
			if k < 0 {
				k = len(p) - i - 1
			}
			i += k + 1
			dst = w.appendClose(dst)
			continue
		}
		tagEnd, self := scanTag(p, i)
		name := tagName(p[i:tagEnd])
		if string(name) == "stream:stream" {
			dst = appendOpen(dst, p[i+1+len(name):tagEnd])
			i = tagEnd + 1
			continue
		}
		end := tagEnd + 1
		if !self {
			end = elementEnd(p, end)
		}
		// The fix-ups go right after the name in the start tag.
		extra := ""
		start := p[i:tagEnd]
		if bytes.HasPrefix(name, []byte("stream:")) {
			if !bytes.Contains(start, []byte("xmlns:stream=")) {
				extra = " xmlns:stream='http://etherx.jabber.org/streams'"
			}
		} else if !hasDefaultNS(start) {
			extra = " xmlns='jabber:client'"
		}
		at := i + 1 + len(name)
		dst = appendFrameHeader(dst, wsText, end-i+len(extra))
		dst = append(dst, p[i:at]...)
		dst = append(dst, extra...)
		dst = append(dst, p[at:end]...)
		i = end
	}
	return dst
}

// appendClose appends <close/> and the close frame that ends the
// WebSocket connection after it.
func (w *wsConn) appendClose(dst []byte) []byte {
	msg := "<close xmlns='" + nsFraming + "'"
	if w.seeOther != "" {
		msg += " see-other-uri='" + string(xmlstream.AppendEscapedAttr(nil, w.seeOther)) + "'"
	}
	msg += "/>"
	dst = appendFrame(dst, wsText, []byte(msg))
	code := w.closeCode
	if code == 0 {
		code = wsCloseNormal
	}
	return appendCloseFrame(dst, code)
}

// appendOpen appends <open/> with the attributes of our stream header but
// its namespace declarations.
func appendOpen(dst, attrs []byte) []byte {
	msg := append([]byte(nil), "<open xmlns='"+nsFraming+"'"...)
	for len(attrs) > 0 {
		attrs = bytes.TrimLeft(attrs, " \t\r\n")
		eq := bytes.IndexByte(attrs, '=')
		if eq < 0 || eq+1 >= len(attrs) {
			break
		}
		q := attrs[eq+1]
		k := bytes.IndexByte(attrs[eq+2:], q)
		if k < 0 {
			break
		}
		a := attrs[:eq+2+k+1]
		attrs = attrs[len(a):]
		name := bytes.TrimSpace(a[:eq])
		if string(name) == "xmlns" || bytes.HasPrefix(name, []byte("xmlns:")) {
			continue
		}
		msg = append(msg, ' ')
		msg = append(msg, a...)
	}
	msg = append(msg, "/>"...)
	return appendFrame(dst, wsText, msg)
}

// scanTag returns the index of the '>' ending the tag that starts at
// p[i], skipping quoted attribute values, and whether the tag closes
// itself. A tag cut short ends at the end of p.
func scanTag(p []byte, i int) (end int, self bool) {
	var q byte
	for j := i + 1; j < len(p); j++ {
		c := p[j]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		case c == '>':
			return j, p[j-1] == '/'
		}
	}
	return len(p) - 1, false
}

// tagName returns the name of the tag in t, which starts with '<'.
func tagName(t []byte) []byte {
	n := 1
	for n < len(t) && t[n] != ' ' && t[n] != '/' && t[n] != '>' && t[n] != '\t' && t[n] != '\n' && t[n] != '\r' {
		n++
	}
	return t[1:n]
}

// elementEnd returns the index just past the end of the element whose
// start tag ends at p[from-1]. Text and attribute values hold no '<' in
// serialized XML, so counting tags is enough.
func elementEnd(p []byte, from int) int {
	depth := 1
	for i := from; i < len(p); {
		k := bytes.IndexByte(p[i:], '<')
		if k < 0 {
			return len(p)
		}
		i += k
		if i+1 < len(p) && p[i+1] == '/' {
			e := bytes.IndexByte(p[i:], '>')
			if e < 0 {
				return len(p)
			}
			i += e + 1
			depth--
			if depth == 0 {
				return i
			}
			continue
		}
		e, self := scanTag(p, i)
		i = e + 1
		if !self {
			depth++
		}
	}
	return len(p)
}

// hasDefaultNS reports whether the start tag t declares a default
// namespace.
func hasDefaultNS(t []byte) bool {
	var q byte
	for j := 1; j < len(t); j++ {
		c := t[j]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		case c == ' ' && bytes.HasPrefix(t[j+1:], []byte("xmlns=")):
			return true
		}
	}
	return false
}
