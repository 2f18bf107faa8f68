package xmlstream

import (
	"bytes"
	"math"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// binding is one namespace prefix declaration in scope. depth is the nesting
// level of the declaring element (0 for the stream root), which is what the
// forwarding rule needs to know whether a subtree is self-contained.
type binding struct {
	prefix string
	uri    string
	depth  int32
}

// noRef marks a subtree that uses no prefix declared outside of it.
const noRef = math.MaxInt32

// frame is one open element while building a tree.
type frame struct {
	el          *Element
	qname       string // as written, to match the end tag
	def         string // default namespace in scope inside the element
	bindMark    int32  // len(binds) before the element's own declarations
	scratchMark int32  // len(scratch) when the element opened
	innerStart  int32
	minRef      int32 // lowest binding depth used by a descendant
	prefixed    bool
}

// builder turns the complete bytes of one top-level element into a tree. All
// names and values are strings over src (which the parser never mutates) or
// over text; nodes, attributes and elements come from a few shared slabs so a
// stanza costs a handful of allocations whatever its size. The stacks used
// while building live in run's frame, not here, so that the builder and its
// stacks stay off the heap.
type builder struct {
	src []byte
	s   string // the same memory as src
	lim *Limits

	elems []Element
	attrs []Attr
	nodes []Node
	text  []byte // unescaped values; never grows past its capacity
}

func (b *builder) init(src []byte, lim *Limits) {
	b.src = src
	if len(src) > 0 {
		b.s = unsafe.String(&src[0], len(src))
	}
	b.lim = lim
}

func (b *builder) newElement() *Element {
	if len(b.elems) == cap(b.elems) {
		// A fresh chunk: growing with append would move elements that are
		// already referenced by pointer.
		b.elems = make([]Element, 0, 4)
	}
	b.elems = b.elems[:len(b.elems)+1]
	return &b.elems[len(b.elems)-1]
}

// store returns the bytes decoded into text since start as a string.
func (b *builder) store(start int) string {
	v := b.text[start:]
	if len(v) == 0 {
		return ""
	}
	return unsafe.String(&v[0], len(v))
}

// reserve makes room for up to n more bytes in text without reallocation,
// which would invalidate the strings already handed out.
func (b *builder) reserve(n int) {
	if cap(b.text)-len(b.text) < n {
		b.text = make([]byte, 0, max(len(b.src), n))
	}
}

// buildElement parses src, which must hold exactly one element, nested in a
// scope where def is the default namespace and root holds the prefixes. The
// counts size the slabs; they are hints gathered by the scanner.
func buildElement(src []byte, lim *Limits, def string, root []binding, nElem, nAttr, nText int) (*Element, *Error) {
	var b builder
	b.init(src, lim)
	b.elems = make([]Element, 0, nElem)
	if nAttr > 0 {
		b.attrs = make([]Attr, 0, nAttr)
	}
	if n := nElem - 1 + nText; n > 0 {
		b.nodes = make([]Node, 0, n)
	}
	return b.run(def, root)
}

func (b *builder) run(def string, root []binding) (*Element, *Error) {
	var (
		bindsArr   [8]binding
		scratchArr [32]Node
		framesArr  [8]frame
	)
	binds := append(bindsArr[:0], root...)
	scratch := scratchArr[:0] // children of the open elements
	frames := framesArr[:0]

	src := b.src
	n := len(src)
	if n == 0 || src[0] != '<' {
		return nil, errNWF("expected start tag")
	}
	top := b.newElement()
	i, empty, binds, f, err := b.open(0, top, def, 1, nil, binds)
	if err != nil {
		return nil, err
	}
	if !empty {
		f.scratchMark = 0
		frames = append(frames, f)
	}
	for len(frames) > 0 {
		if i >= n {
			return nil, errNWF("unexpected end of element")
		}
		if src[i] != '<' || bytes.HasPrefix(src[i:], cdataOpen) {
			var t string
			i, t, err = b.charData(i)
			if err != nil {
				return nil, err
			}
			if t != "" {
				scratch = append(scratch, Node{Text: t})
			}
			continue
		}
		if i+1 >= n {
			return nil, errNWF("unexpected end of element")
		}
		switch src[i+1] {
		case '/':
			i, err = b.close(i, frames, scratch)
			if err != nil {
				return nil, err
			}
			f := &frames[len(frames)-1]
			binds = binds[:f.bindMark]
			clear(scratch[f.scratchMark:])
			scratch = scratch[:f.scratchMark]
			frames = frames[:len(frames)-1]
		case '!':
			return nil, errRestricted("comments and declarations are not allowed")
		case '?':
			return nil, errRestricted("processing instructions are not allowed")
		default:
			depth := int32(len(frames)) + 1
			if int(depth) > b.lim.MaxDepth {
				return nil, errPolicy("element nesting too deep")
			}
			parent := &frames[len(frames)-1]
			el := b.newElement()
			el.parent = parent.el
			scratch = append(scratch, Node{Elem: el})
			i, empty, binds, f, err = b.open(i, el, parent.def, depth, parent, binds)
			if err != nil {
				return nil, err
			}
			if !empty {
				f.scratchMark = int32(len(scratch))
				frames = append(frames, f)
			}
		}
	}
	if i != n {
		return nil, errNWF("content after the end of the element")
	}
	return top, nil
}

var cdataOpen = []byte("<![CDATA[")

// open parses the start tag at src[i] for an element at depth, resolving its
// names against binds, to which it adds the element's declarations. It
// returns the index after the tag, whether the tag was empty, and the frame
// to push when it was not.
func (b *builder) open(i int, el *Element, def string, depth int32, parent *frame, binds []binding) (int, bool, []binding, frame, *Error) {
	src, s := b.src, b.s
	n := len(src)
	i++
	ns := i
	i, err := b.name(i)
	if err != nil {
		return 0, false, nil, frame{}, err
	}
	qname := s[ns:i]
	attrMark := len(b.attrs)
	bindMark := len(binds)
	count := 0
	defSet := false
	empty := false
	for {
		sp := i
		for i < n && byteClass[src[i]]&clsSpace != 0 {
			i++
		}
		if i >= n {
			return 0, false, nil, frame{}, errNWF("unterminated start tag")
		}
		c := src[i]
		if c == '>' {
			i++
			break
		}
		if c == '/' {
			if i+1 < n && src[i+1] == '>' {
				i += 2
				empty = true
				break
			}
			return 0, false, nil, frame{}, errNWF("expected '>' after '/'")
		}
		if i == sp {
			return 0, false, nil, frame{}, errNWF("missing whitespace before attribute")
		}
		as := i
		if i, err = b.name(i); err != nil {
			return 0, false, nil, frame{}, err
		}
		aname := s[as:i]
		for i < n && byteClass[src[i]]&clsSpace != 0 {
			i++
		}
		if i >= n || src[i] != '=' {
			return 0, false, nil, frame{}, errNWF("expected '=' after attribute name")
		}
		i++
		for i < n && byteClass[src[i]]&clsSpace != 0 {
			i++
		}
		if i >= n || (src[i] != '\'' && src[i] != '"') {
			return 0, false, nil, frame{}, errNWF("attribute value must be quoted")
		}
		var value string
		if i, value, err = b.attrValue(i+1, src[i]); err != nil {
			return 0, false, nil, frame{}, err
		}
		count++
		if count > b.lim.MaxAttrs {
			return 0, false, nil, frame{}, errPolicy("too many attributes")
		}
		switch {
		case aname == "xmlns":
			if defSet {
				return 0, false, nil, frame{}, errNWF("duplicate attribute xmlns")
			}
			if value == NSXML || value == nsXMLNS {
				return 0, false, nil, frame{}, errNWF("reserved namespace used as default")
			}
			defSet = true
			def = value
		case strings.HasPrefix(aname, "xmlns:"):
			p := aname[len("xmlns:"):]
			if strings.IndexByte(p, ':') >= 0 {
				return 0, false, nil, frame{}, errNWF("invalid prefix declaration")
			}
			if err := checkDecl(p, value); err != nil {
				return 0, false, nil, frame{}, err
			}
			for _, bd := range binds[bindMark:] {
				if bd.prefix == p {
					return 0, false, nil, frame{}, errNWF("duplicate attribute xmlns:" + p)
				}
			}
			if p != "xml" {
				binds = append(binds, binding{prefix: p, uri: value, depth: depth})
			}
		default:
			prefix, local, err := splitQName(aname)
			if err != nil {
				return 0, false, nil, frame{}, err
			}
			// Space holds the prefix until all declarations of the tag
			// have been seen.
			b.attrs = append(b.attrs, Attr{Space: prefix, Local: local, Value: value})
		}
	}

	ownRef := int32(noRef)
	prefix, local, err := splitQName(qname)
	if err != nil {
		return 0, false, nil, frame{}, err
	}
	el.Local = local
	if prefix == "" {
		el.Space = def
	} else {
		uri, d, err := lookup(binds, prefix)
		if err != nil {
			return 0, false, nil, frame{}, err
		}
		el.Space = uri
		ownRef = min(ownRef, d)
	}
	attrs := b.attrs[attrMark:len(b.attrs):len(b.attrs)]
	for k := range attrs {
		a := &attrs[k]
		if a.Space != "" {
			uri, d, err := lookup(binds, a.Space)
			if err != nil {
				return 0, false, nil, frame{}, err
			}
			a.Space = uri
			ownRef = min(ownRef, d)
		}
		for j := 0; j < k; j++ {
			if attrs[j].Local == a.Local && attrs[j].Space == a.Space {
				return 0, false, nil, frame{}, errNWF("duplicate attribute " + a.Local)
			}
		}
	}
	if len(attrs) > 0 {
		el.Attrs = attrs
	}
	if parent != nil {
		parent.minRef = min(parent.minRef, ownRef)
	}
	if empty {
		el.hasRaw = prefix == ""
		return i, true, binds[:bindMark], frame{}, nil
	}
	return i, false, binds, frame{
		el:         el,
		qname:      qname,
		def:        def,
		bindMark:   int32(bindMark),
		innerStart: int32(i),
		minRef:     noRef,
		prefixed:   prefix != "",
	}, nil
}

const nsXMLNS = "http://www.w3.org/2000/xmlns/"

// checkDecl enforces the reserved-prefix rules of Namespaces in XML 1.0.
func checkDecl(p, uri string) *Error {
	switch {
	case uri == "":
		return errNWF("prefix " + p + " bound to the empty namespace")
	case p == "xmlns":
		return errNWF("the xmlns prefix cannot be declared")
	case p == "xml" && uri != NSXML:
		return errNWF("the xml prefix cannot be rebound")
	case p != "xml" && (uri == NSXML || uri == nsXMLNS):
		return errNWF("reserved namespace bound to prefix " + p)
	}
	return nil
}

// lookup resolves a prefix and returns the depth of its declaration; the xml
// prefix never makes a subtree depend on its context.
func lookup(binds []binding, prefix string) (string, int32, *Error) {
	if prefix == "xml" {
		return NSXML, noRef, nil
	}
	if prefix == "xmlns" {
		return "", 0, errNWF("the xmlns prefix cannot be used on names")
	}
	for k := len(binds) - 1; k >= 0; k-- {
		if binds[k].prefix == prefix {
			return binds[k].uri, binds[k].depth, nil
		}
	}
	return "", 0, errNWF("undeclared namespace prefix " + prefix)
}

// splitQName splits a QName, rejecting names that are not namespace
// well-formed.
func splitQName(q string) (prefix, local string, err *Error) {
	k := strings.IndexByte(q, ':')
	if k < 0 {
		return "", q, nil
	}
	if k == 0 || k == len(q)-1 || strings.IndexByte(q[k+1:], ':') >= 0 {
		return "", "", errNWF("invalid qualified name " + q)
	}
	// The local part is an NCName of its own: it must start like a name,
	// or it could not be written back without its prefix.
	r, _ := utf8.DecodeRuneInString(q[k+1:])
	ascii := r < utf8.RuneSelf && (r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z'))
	if !ascii && !isNameStartRune(r) {
		return "", "", errNWF("invalid qualified name " + q)
	}
	return q[:k], q[k+1:], nil
}

// close parses the end tag at src[i] and finishes the innermost element of
// frames, whose children are at the end of scratch. The caller pops the
// frame.
func (b *builder) close(i int, frames []frame, scratch []Node) (int, *Error) {
	src := b.src
	f := &frames[len(frames)-1]
	lt := i
	i += 2
	ns := i
	i, err := b.name(i)
	if err != nil {
		return 0, err
	}
	if b.s[ns:i] != f.qname {
		return 0, errNWF("end tag " + b.s[ns:i] + " does not match " + f.qname)
	}
	for i < len(src) && byteClass[src[i]]&clsSpace != 0 {
		i++
	}
	if i >= len(src) || src[i] != '>' {
		return 0, errNWF("malformed end tag")
	}
	i++

	el := f.el
	if kids := scratch[f.scratchMark:]; len(kids) > 0 {
		if cap(b.nodes)-len(b.nodes) < len(kids) {
			b.nodes = make([]Node, 0, max(len(kids), 8))
		}
		at := len(b.nodes)
		b.nodes = append(b.nodes, kids...)
		el.Nodes = b.nodes[at:len(b.nodes):len(b.nodes)]
	}
	depth := int32(len(frames))
	if !f.prefixed && f.minRef > depth {
		el.raw = b.s[f.innerStart:lt]
		el.hasRaw = true
	}
	if len(frames) > 1 {
		p := &frames[len(frames)-2]
		p.minRef = min(p.minRef, f.minRef)
	}
	return i, nil
}

// name scans an XML Name starting at src[i] and returns its end.
func (b *builder) name(i int) (int, *Error) {
	src := b.src
	n := len(src)
	if i >= n {
		return 0, errNWF("expected a name")
	}
	if c := src[i]; c < utf8.RuneSelf {
		if byteClass[c]&clsStart == 0 {
			return 0, errNWF("invalid name start character")
		}
		i++
	} else {
		r, size := utf8.DecodeRune(src[i:])
		if !isNameStartRune(r) || (r == utf8.RuneError && size == 1) {
			return 0, errNWF("invalid name start character")
		}
		i += size
	}
	for i < n {
		c := src[i]
		if c < utf8.RuneSelf {
			if byteClass[c]&clsName == 0 {
				return i, nil
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && size == 1 {
			return 0, errNWF("invalid UTF-8")
		}
		if !isNameRune(r) {
			return i, nil
		}
		i += size
	}
	return i, nil
}

// checkRune validates the multi-byte character at src[i] and returns its size.
func checkRune(src []byte, i int) (int, *Error) {
	r, size := utf8.DecodeRune(src[i:])
	if r == utf8.RuneError && size == 1 {
		return 0, errNWF("invalid UTF-8")
	}
	if !isChar(r) {
		return 0, errNWF("character not allowed in XML")
	}
	return size, nil
}

// charData scans character data (text, references and CDATA sections) from
// src[i] up to the next tag and returns its end and unescaped value. Text
// without references, CDATA or carriage returns is returned without copying.
func (b *builder) charData(i int) (int, string, *Error) {
	src := b.src
	n := len(src)
	start := i
	plain := i // where the "]]>" check may look back to
	simple := true
	for i < n {
		c := src[i]
		if byteClass[c]&clsText == 0 {
			i++
			continue
		}
		switch {
		case c == '<':
			if !bytes.HasPrefix(src[i:], cdataOpen) {
				goto done
			}
			body := i + len(cdataOpen)
			k := bytes.Index(src[body:], []byte("]]>"))
			if k < 0 {
				return 0, "", errNWF("unterminated CDATA section")
			}
			for j := body; j < body+k; {
				if c := src[j]; c < utf8.RuneSelf {
					if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
						return 0, "", errNWF("character not allowed in XML")
					}
					j++
					continue
				}
				size, err := checkRune(src, j)
				if err != nil {
					return 0, "", err
				}
				j += size
			}
			simple = false
			i = body + k + 3
			plain = i
		case c == '&':
			simple = false
			var err *Error
			if _, i, err = b.reference(i); err != nil {
				return 0, "", err
			}
			plain = i
		case c == '>':
			if i-2 >= plain && src[i-1] == ']' && src[i-2] == ']' {
				return 0, "", errNWF("']]>' in character data")
			}
			i++
		case c == '\r':
			simple = false
			i++
		case c < utf8.RuneSelf:
			return 0, "", errNWF("character not allowed in XML")
		default:
			size, err := checkRune(src, i)
			if err != nil {
				return 0, "", err
			}
			i += size
		}
	}
done:
	if simple {
		return i, b.s[start:i], nil
	}
	return i, b.decodeText(start, i), nil
}

// decodeText unescapes the already validated character data src[start:end].
func (b *builder) decodeText(start, end int) string {
	src := b.src
	b.reserve(end - start)
	mark := len(b.text)
	for i := start; i < end; {
		c := src[i]
		switch c {
		case '<':
			body := i + len(cdataOpen)
			k := bytes.Index(src[body:end], []byte("]]>"))
			b.appendNormalized(src[body:body+k], '\n')
			i = body + k + 3
		case '&':
			r, j, _ := b.reference(i)
			b.text = utf8.AppendRune(b.text, r)
			i = j
		case '\r':
			b.text = append(b.text, '\n')
			i++
			if i < end && src[i] == '\n' {
				i++
			}
		default:
			j := i + 1
			for j < end && src[j] != '<' && src[j] != '&' && src[j] != '\r' {
				j++
			}
			b.text = append(b.text, src[i:j]...)
			i = j
		}
	}
	return b.store(mark)
}

// appendNormalized appends s with line ends normalized; ws replaces each line
// end (and, in attribute values, each tab or newline).
func (b *builder) appendNormalized(s []byte, ws byte) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\r':
			b.text = append(b.text, ws)
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
		case '\n', '\t':
			if ws == ' ' {
				c = ' '
			}
			b.text = append(b.text, c)
		default:
			b.text = append(b.text, c)
		}
	}
}

// attrValue scans the attribute value starting at src[i] and ending with the
// quote q; it returns the index after the closing quote and the normalized
// value.
func (b *builder) attrValue(i int, q byte) (int, string, *Error) {
	src := b.src
	n := len(src)
	start := i
	simple := true
	for {
		if i >= n {
			return 0, "", errNWF("unterminated attribute value")
		}
		c := src[i]
		if byteClass[c]&clsAttr == 0 {
			i++
			continue
		}
		switch {
		case c == q:
			if simple {
				return i + 1, b.s[start:i], nil
			}
			return i + 1, b.decodeAttr(start, i), nil
		case c == '\'' || c == '"':
			i++
		case c == '<':
			return 0, "", errNWF("'<' in attribute value")
		case c == '&':
			simple = false
			var err *Error
			if _, i, err = b.reference(i); err != nil {
				return 0, "", err
			}
		case c == '\t' || c == '\n' || c == '\r':
			simple = false
			i++
		case c < utf8.RuneSelf:
			return 0, "", errNWF("character not allowed in XML")
		default:
			size, err := checkRune(src, i)
			if err != nil {
				return 0, "", err
			}
			i += size
		}
	}
}

// decodeAttr applies reference replacement and attribute-value normalization
// (XML 1.0 §3.3.3) to the validated value src[start:end].
func (b *builder) decodeAttr(start, end int) string {
	src := b.src
	b.reserve(end - start)
	mark := len(b.text)
	for i := start; i < end; {
		if src[i] == '&' {
			r, j, _ := b.reference(i)
			b.text = utf8.AppendRune(b.text, r)
			i = j
			continue
		}
		j := i + 1
		for j < end && src[j] != '&' {
			j++
		}
		b.appendNormalized(src[i:j], ' ')
		i = j
	}
	return b.store(mark)
}

// reference parses the entity or character reference at src[i] == '&'.
func (b *builder) reference(i int) (rune, int, *Error) {
	src := b.src
	n := len(src)
	i++
	if i < n && src[i] == '#' {
		i++
		base := rune(10)
		if i < n && src[i] == 'x' {
			base = 16
			i++
		}
		var r rune
		digits := 0
		for ; i < n; i++ {
			c := src[i]
			var d rune
			switch {
			case '0' <= c && c <= '9':
				d = rune(c - '0')
			case base == 16 && 'a' <= c && c <= 'f':
				d = rune(c-'a') + 10
			case base == 16 && 'A' <= c && c <= 'F':
				d = rune(c-'A') + 10
			default:
				d = -1
			}
			if d < 0 {
				break
			}
			r = r*base + d
			if r > utf8.MaxRune {
				r = utf8.MaxRune + 1 // stays invalid without overflowing
			}
			digits++
		}
		if digits == 0 || i >= n || src[i] != ';' {
			return 0, 0, errNWF("malformed character reference")
		}
		if !isChar(r) {
			return 0, 0, errNWF("character reference to a character not allowed in XML")
		}
		return r, i + 1, nil
	}
	j := i
	for j < n && j-i < 8 && byteClass[src[j]]&clsName != 0 {
		j++
	}
	if j < n && src[j] == ';' {
		switch string(src[i:j]) {
		case "lt":
			return '<', j + 1, nil
		case "gt":
			return '>', j + 1, nil
		case "amp":
			return '&', j + 1, nil
		case "quot":
			return '"', j + 1, nil
		case "apos":
			return '\'', j + 1, nil
		}
	}
	if e, err := b.name(i); err == nil && e < n && src[e] == ';' {
		return 0, 0, errRestricted("entity references are not allowed")
	}
	return 0, 0, errNWF("malformed entity reference")
}
