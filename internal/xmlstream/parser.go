package xmlstream

import (
	"bytes"
	"strings"
)

// Limits bounds the resources one stream may make the parser use. Zero fields
// take the defaults of DefaultLimits.
type Limits struct {
	MaxStanzaBytes int // default 256 KiB: bytes of one top-level element including its tags
	MaxDepth       int // default 32 nesting levels inside a stanza (the stanza is level 1)
	MaxAttrs       int // default 64 attributes (incl. ns declarations) per element
	MaxHeaderBytes int // default 4 KiB for the stream header / XML declaration
}

// DefaultLimits returns the limits used for client and server streams.
func DefaultLimits() Limits {
	return Limits{
		MaxStanzaBytes: 256 << 10,
		MaxDepth:       32,
		MaxAttrs:       64,
		MaxHeaderBytes: 4 << 10,
	}
}

// EventKind tells what an Event carries.
type EventKind uint8

// Event kinds, in the order a stream produces them.
const (
	EventStreamStart EventKind = iota + 1 // the stream header was parsed
	EventElement                          // a complete top-level child of the stream (stanza or nonza)
	EventStreamEnd                        // </stream:stream> (the closing tag of the root)
)

// Event is one result of Parser.Next.
type Event struct {
	Kind EventKind
	Elem *Element // EventStreamStart: the root element (Space/Local/Attrs; no Nodes); EventElement: the stanza
}

// Scanner states. The scanner only finds where a top-level element ends; the
// builder then validates it completely.
const (
	stProlog  uint8 = iota // before the end of the root start tag
	stContent              // between top-level elements
	stText                 // character data inside a top-level element
	stLT                   // after '<' inside a top-level element
	stTag                  // inside a start tag, outside quotes
	stQuote                // inside a quoted attribute value
	stEndTag               // inside an end tag
	stBang                 // after "<!", expecting "[CDATA["
	stCDATA                // inside a CDATA section
	stEnded                // after the root end tag
)

// Parser is fed bytes as they arrive from the network in arbitrary splits and
// returns the stream header, each top-level element and the stream end as
// events. It is not safe for concurrent use.
type Parser struct {
	lim Limits
	err *Error

	// buf holds fed bytes not yet consumed into an event. It is nil whenever
	// nothing is pending so idle streams cost no buffer.
	buf   []byte
	off   int // bytes of buf already consumed
	pos   int // scan position
	start int // start of the top-level element being scanned
	mark  int // position of '!' in stBang

	state   uint8
	quote   byte
	endNext bool // a self-closed root still owes EventStreamEnd
	depth   int32
	nElem   int32 // start tags seen in the current element
	nAttr   int32 // upper bound of attributes in the current element
	nText   int32 // upper bound of text nodes in the current element
	// names holds, for each open element of the current top-level element,
	// the offset of its name from start and its length (-1 until the end of
	// the name is seen), so that a wrong end tag fails at once instead of
	// leaving the stream waiting for an end that never comes.
	names []int32

	// Scope established by the stream header.
	rootName  string
	rootDef   string
	rootBinds []binding
}

// NewParser returns a parser enforcing l.
func NewParser(l Limits) *Parser {
	d := DefaultLimits()
	if l.MaxStanzaBytes <= 0 {
		l.MaxStanzaBytes = d.MaxStanzaBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = d.MaxAttrs
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	return &Parser{lim: l}
}

// Feed appends input. b is copied as needed and not retained. Callers should
// call Next until it returns ErrNeedMore after each Feed: limits are enforced
// by Next.
func (p *Parser) Feed(b []byte) {
	if p.err != nil || len(b) == 0 {
		return
	}
	p.buf = append(p.buf, b...)
}

// SetLimits replaces the limits from the next call to Next on, and keeps
// them across Reset: a client stream allows bigger stanzas once the client
// has authenticated.
func (p *Parser) SetLimits(l Limits) {
	d := p.lim
	if l.MaxStanzaBytes <= 0 {
		l.MaxStanzaBytes = d.MaxStanzaBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = d.MaxAttrs
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	p.lim = l
}

// Buffered returns the number of bytes fed but not yet consumed into an
// event. Whitespace between top-level elements counts as consumed once Next
// has seen it.
func (p *Parser) Buffered() int { return len(p.buf) - p.off }

// Reset makes p expect a new stream header, forgetting all state and
// releasing buffers, as needed at stream restarts after STARTTLS and SASL.
func (p *Parser) Reset() {
	*p = Parser{lim: p.lim}
}

// DefaultNS returns the default namespace declared on the stream header (the
// content namespace, such as NSClient), or "" before the header.
func (p *Parser) DefaultNS() string { return p.rootDef }

// LookupPrefix returns the namespace bound to prefix on the stream header.
func (p *Parser) LookupPrefix(prefix string) (string, bool) {
	if prefix == "xml" {
		return NSXML, true
	}
	for _, b := range p.rootBinds {
		if b.prefix == prefix {
			return b.uri, true
		}
	}
	return "", false
}

// Next returns the next complete event, or ErrNeedMore when more input is
// needed. Any other error is an *Error; after one the parser stays failed.
// After EventStreamEnd only whitespace may follow and Next keeps returning
// ErrNeedMore.
func (p *Parser) Next() (Event, error) {
	if p.err != nil {
		return Event{}, p.err
	}
	if p.endNext {
		p.endNext = false
		return Event{Kind: EventStreamEnd}, nil
	}
	ev, err := p.next()
	if err != nil {
		p.err = err
		p.buf = nil
		p.off, p.pos, p.start = 0, 0, 0
		return Event{}, err
	}
	if ev.Kind == 0 {
		p.release()
		return Event{}, ErrNeedMore
	}
	return ev, nil
}

// release drops consumed bytes before waiting for input, so a waiting parser
// holds at most the incomplete tail.
func (p *Parser) release() {
	if p.off == 0 {
		return
	}
	if p.off == len(p.buf) {
		p.buf = nil
	} else {
		// Copy into a right-sized buffer: the old one may be a large read
		// that mostly held already delivered stanzas.
		rest := len(p.buf) - p.off
		nb := make([]byte, rest, rest+rest/2+64)
		copy(nb, p.buf[p.off:])
		p.buf = nb
	}
	p.pos -= p.off
	p.start -= p.off
	p.mark -= p.off
	p.off = 0
}

// take returns the bytes of a complete item as a private, never mutated
// copy. When the item is most of the buffer the buffer itself is handed over
// instead of copied.
func (p *Parser) take(start, end int) []byte {
	if end == len(p.buf) && (end-start)*2 >= cap(p.buf) {
		b := p.buf[start:end:end]
		p.buf = nil
		p.off, p.pos, p.start = 0, 0, 0
		return b
	}
	p.off, p.pos = end, end
	return bytes.Clone(p.buf[start:end])
}

func (p *Parser) next() (Event, *Error) {
	for {
		switch p.state {
		case stProlog:
			return p.prolog()
		case stContent:
			buf := p.buf
			i := p.pos
			for i < len(buf) && byteClass[buf[i]]&clsSpace != 0 {
				i++
			}
			p.off, p.pos = i, i
			if i+1 >= len(buf) {
				if i < len(buf) && buf[i] != '<' {
					return Event{}, errNWF("text at stream level")
				}
				return Event{}, nil
			}
			if buf[i] != '<' {
				return Event{}, errNWF("text at stream level")
			}
			switch buf[i+1] {
			case '/':
				return p.streamEnd(i)
			case '!':
				if i+2 < len(buf) && buf[i+2] == '[' {
					return Event{}, errNWF("character data at stream level")
				} else if i+2 >= len(buf) {
					return Event{}, nil
				}
				return Event{}, errRestricted("comments and declarations are not allowed")
			case '?':
				return Event{}, errRestricted("processing instructions are not allowed")
			}
			p.start = i
			p.pos = i + 1
			p.state = stTag
			p.names = append(p.names[:0], 1, -1)
			p.depth, p.nElem, p.nAttr, p.nText = 1, 1, 0, 0
		case stEnded:
			for i := p.pos; i < len(p.buf); i++ {
				if byteClass[p.buf[i]]&clsSpace == 0 {
					return Event{}, errNWF("data after the end of the stream")
				}
			}
			p.off, p.pos = len(p.buf), len(p.buf)
			return Event{}, nil
		default:
			end, err := p.scanElement()
			if err != nil || end < 0 {
				return Event{}, err
			}
			src := p.take(p.start, end)
			p.state = stContent
			el, err := buildElement(src, &p.lim, p.rootDef, p.rootBinds, int(p.nElem), int(p.nAttr), int(p.nText))
			if err != nil {
				return Event{}, err
			}
			return Event{Kind: EventElement, Elem: el}, nil
		}
	}
}

// scanElement advances over the current top-level element and returns its
// end, or -1 if it is not complete yet.
func (p *Parser) scanElement() (int, *Error) {
	buf := p.buf
	lim := len(buf)
	if m := p.start + p.lim.MaxStanzaBytes; lim > m {
		lim = m
	}
	i := p.pos
	for i < lim {
		switch p.state {
		case stText:
			k := bytes.IndexByte(buf[i:lim], '<')
			if k < 0 {
				i = lim
				break
			}
			if k > 0 || buf[i-1] != '>' {
				p.nText++
			}
			i += k + 1
			p.state = stLT
		case stLT:
			switch buf[i] {
			case '/':
				p.state = stEndTag
				p.mark = i + 1
			case '!':
				p.state = stBang
				p.mark = i
			case '?':
				return -1, errRestricted("processing instructions are not allowed")
			default:
				p.depth++
				p.nElem++
				if int(p.depth) > p.lim.MaxDepth {
					return -1, errPolicy("element nesting too deep")
				}
				p.state = stTag
				p.names = append(p.names, int32(i-p.start), -1)
			}
			i++
		case stTag:
			for i < lim {
				c := buf[i]
				if c == '>' || c == '\'' || c == '"' || c == '=' || c == '<' {
					break
				}
				i++
			}
			if i == lim {
				break
			}
			if n := len(p.names); n > 0 && p.names[n-1] < 0 {
				s := p.start + int(p.names[n-2])
				j := s
				for j < i && byteClass[buf[j]]&clsSpace == 0 && buf[j] != '/' {
					j++
				}
				p.names[n-1] = int32(j - s)
			}
			switch c := buf[i]; c {
			case '=':
				p.nAttr++
			case '<':
				return -1, errNWF("'<' in tag")
			case '>':
				if buf[i-1] == '/' {
					if n := len(p.names); n >= 2 {
						p.names = p.names[:n-2]
					}
					p.depth--
					if p.depth == 0 {
						return i + 1, nil
					}
				}
				p.state = stText
			default:
				p.quote = c
				p.state = stQuote
			}
			i++
		case stQuote:
			k := bytes.IndexByte(buf[i:lim], p.quote)
			if k < 0 {
				i = lim
				break
			}
			i += k + 1
			p.state = stTag
		case stEndTag:
			k := bytes.IndexByte(buf[i:lim], '>')
			if k < 0 {
				i = lim
				break
			}
			if n := len(p.names); n >= 2 {
				name := bytes.TrimRight(buf[p.mark:i+k], " \t\r\n")
				s := p.start + int(p.names[n-2])
				if int(p.names[n-1]) != len(name) || !bytes.Equal(buf[s:s+len(name)], name) {
					return -1, errNWF("end tag does not match its start tag")
				}
				p.names = p.names[:n-2]
			}
			i += k + 1
			p.depth--
			if p.depth == 0 {
				return i, nil
			}
			p.state = stText
		case stBang:
			const want = "[CDATA["
			k := i - p.mark - 1
			for ; k < len(want) && i < lim; k++ {
				if buf[i] != want[k] {
					return -1, errRestricted("comments and declarations are not allowed")
				}
				i++
			}
			if k == len(want) {
				p.state = stCDATA
				p.nText++
			}
		case stCDATA:
			k := bytes.Index(buf[i:lim], []byte("]]>"))
			if k < 0 {
				// Keep the last two bytes: they may begin the terminator.
				i = max(i, lim-2)
				p.pos = i
				return -1, p.checkSize()
			}
			i += k + 3
			p.state = stText
		}
	}
	p.pos = i
	return -1, p.checkSize()
}

func (p *Parser) checkSize() *Error {
	if len(p.buf)-p.start > p.lim.MaxStanzaBytes {
		return errPolicy("stanza too large")
	}
	return nil
}

// streamEnd handles "</" at stream level, which must close the root.
func (p *Parser) streamEnd(i int) (Event, *Error) {
	buf := p.buf
	lim := min(len(buf), i+p.lim.MaxHeaderBytes)
	k := bytes.IndexByte(buf[i:lim], '>')
	if k < 0 {
		if lim < len(buf) {
			return Event{}, errPolicy("stream end tag too long")
		}
		return Event{}, nil
	}
	tag := string(buf[i+2 : i+k])
	if strings.TrimRight(tag, " \t\r\n") != p.rootName {
		return Event{}, errNWF("end tag </" + tag + "> does not match the stream root")
	}
	p.off, p.pos = i+k+1, i+k+1
	p.state = stEnded
	return Event{Kind: EventStreamEnd}, nil
}

// prolog finds the end of the stream header (optional XML declaration and
// root start tag). The header is short and normally arrives at once, so it
// is rescanned from the start on each call.
func (p *Parser) prolog() (Event, *Error) {
	buf := p.buf
	lim := min(len(buf), p.lim.MaxHeaderBytes)
	more := func() (Event, *Error) {
		if len(buf) > p.lim.MaxHeaderBytes {
			return Event{}, errPolicy("stream header too long")
		}
		return Event{}, nil
	}
	i := 0
	declEnd := 0
	if lim >= 2 && buf[0] == '<' && buf[1] == '?' {
		k := bytes.Index(buf[2:lim], []byte("?>"))
		if k < 0 {
			return more()
		}
		declEnd = k + 4
		i = declEnd
	} else if lim == 1 && buf[0] == '<' {
		return more()
	}
	for i < lim && byteClass[buf[i]]&clsSpace != 0 {
		i++
	}
	if i+1 >= lim {
		if i < lim && buf[i] != '<' {
			return Event{}, errNWF("expected the stream header")
		}
		return more()
	}
	if buf[i] != '<' {
		return Event{}, errNWF("expected the stream header")
	}
	switch buf[i+1] {
	case '!':
		return Event{}, errRestricted("document type declarations and comments are not allowed")
	case '?':
		return Event{}, errRestricted("processing instructions are not allowed")
	case '/':
		return Event{}, errNWF("end tag before the stream header")
	}
	tagStart := i
	var q byte
	for i++; i < lim; i++ {
		c := buf[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		case c == '<':
			return Event{}, errNWF("'<' in tag")
		case c == '>':
			return p.header(declEnd, tagStart, i+1)
		}
	}
	return more()
}

// header builds the root element from the complete stream header.
func (p *Parser) header(declEnd, tagStart, end int) (Event, *Error) {
	src := p.take(0, end)
	if declEnd > 0 {
		if err := checkXMLDecl(src[:declEnd]); err != nil {
			return Event{}, err
		}
	}
	var b builder
	b.init(src, &p.lim)
	for i := declEnd; i < tagStart; i++ {
		if byteClass[src[i]]&clsSpace == 0 {
			return Event{}, errNWF("unexpected data before the stream header")
		}
	}
	root := &Element{}
	i, empty, binds, f, err := b.open(tagStart, root, "", 0, nil, nil)
	if err != nil {
		return Event{}, err
	}
	if i != end {
		return Event{}, errNWF("malformed stream header")
	}
	root.hasRaw = false
	if empty {
		p.endNext = true
		p.state = stEnded
	} else {
		// Own copies: the names would otherwise keep the whole header
		// buffer alive for the life of the stream.
		p.rootName = strings.Clone(f.qname)
		p.rootDef = internNS(f.def)
		p.state = stContent
	}
	p.rootBinds = make([]binding, len(binds))
	for i, bd := range binds {
		p.rootBinds[i] = binding{prefix: strings.Clone(bd.prefix), uri: internNS(bd.uri), depth: bd.depth}
	}
	return Event{Kind: EventStreamStart, Elem: root}, nil
}

// checkXMLDecl validates the XML declaration d ("<?xml ... ?>"): the only
// processing instruction allowed, which must declare version 1.0 and, if it
// names an encoding, UTF-8.
func checkXMLDecl(d []byte) *Error {
	s := string(d[2 : len(d)-2])
	if !strings.HasPrefix(s, "xml") || len(s) == 3 || byteClass[s[3]]&clsSpace == 0 {
		return errRestricted("processing instructions are not allowed")
	}
	s = s[3:]
	seen := 0
	for {
		t := strings.TrimLeft(s, " \t\r\n")
		if t == "" {
			break
		}
		if len(t) == len(s) {
			return errNWF("malformed XML declaration")
		}
		eq := strings.IndexByte(t, '=')
		if eq < 0 {
			return errNWF("malformed XML declaration")
		}
		name := strings.TrimRight(t[:eq], " \t\r\n")
		v := strings.TrimLeft(t[eq+1:], " \t\r\n")
		if v == "" || (v[0] != '\'' && v[0] != '"') {
			return errNWF("malformed XML declaration")
		}
		end := strings.IndexByte(v[1:], v[0])
		if end < 0 {
			return errNWF("malformed XML declaration")
		}
		val := v[1 : 1+end]
		s = v[end+2:]
		switch {
		case name == "version" && seen == 0:
			if val != "1.0" {
				return errNWF("unsupported XML version " + val)
			}
			seen = 1
		case name == "encoding" && seen == 1:
			if !strings.EqualFold(val, "UTF-8") {
				return &Error{Condition: CondUnsupportedEncoding, Msg: "encoding " + val}
			}
			seen = 2
		case name == "standalone" && seen >= 1 && seen < 3:
			if val != "yes" && val != "no" {
				return errNWF("malformed XML declaration")
			}
			seen = 3
		default:
			return errNWF("malformed XML declaration")
		}
	}
	if seen == 0 {
		return errNWF("XML declaration without version")
	}
	return nil
}

// internNS returns the constant for the namespaces every stream declares,
// and a private copy of any other.
func internNS(s string) string {
	switch s {
	case NSClient:
		return NSClient
	case NSServer:
		return NSServer
	case NSComponent:
		return NSComponent
	case NSStream:
		return NSStream
	}
	return strings.Clone(s)
}
