package xmlstream

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

const diffHeader = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'>`

var diffSamples = []string{
	`<message to='bob@localhost' type='chat' id='abc123'><body>Hello there, how are you?</body></message>`,
	`<iq type='result'><query xmlns='jabber:iq:roster' ver='1'><item jid='a@b' name='A &amp; B' subscription='both'><group>Friends</group></item></query></iq>`,
	`<presence xml:lang='en'><status>Away &lt;brb&gt;</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>`,
	`<db:result from='a' to='b'>key</db:result>`,
	`<a xmlns:p='urn:p' p:x='1' y="2"><p:b><c xmlns='urn:c'>t<![CDATA[<d>]]>u</c></p:b></a>`,
	"<a b='x\ny\r\nz\tw'>line\r\nend\rx&#13;&#10;</a>",
	`<é ü='ö'>日本語 &#x1F600;</é>`,
	`<a><b/><b></b>  <c xmlns=''/></a>`,
}

// referenceTrees parses the children of the stream root with encoding/xml
// and dumps them. ok is false when the input is outside what the comparison
// covers: rejected by encoding/xml, or using constructs that RFC 6120
// forbids or that encoding/xml does not check (undeclared prefixes,
// duplicate attributes, reserved namespaces).
func referenceTrees(doc string) (trees []string, ok bool) {
	if !rawChecks(doc) {
		return nil, false
	}
	d := xml.NewDecoder(strings.NewReader(doc))
	type open struct{ e *Element }
	var stack []open
	depth := 0
	ended := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false
		}
		if ended {
			return nil, false
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				continue
			}
			// Namespace names come from attribute values, which
			// encoding/xml does not normalize: we do (XML §3.3.3).
			e := &Element{Space: attrWS.Replace(tok.Name.Space), Local: tok.Name.Local}
			for _, a := range tok.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				e.Attrs = append(e.Attrs, Attr{Space: attrWS.Replace(a.Name.Space), Local: a.Name.Local, Value: a.Value})
			}
			if len(stack) > 0 {
				stack[len(stack)-1].e.Nodes = append(stack[len(stack)-1].e.Nodes, Node{Elem: e})
			}
			stack = append(stack, open{e})
		case xml.EndElement:
			depth--
			if depth == 0 {
				ended = true
				continue
			}
			e := stack[len(stack)-1].e
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				trees = append(trees, dump(e))
			}
		case xml.CharData:
			if depth == 1 {
				if len(bytes.Trim(tok, " \t\r\n")) > 0 {
					return nil, false
				}
				continue
			}
			if len(tok) > 0 {
				top := stack[len(stack)-1].e
				top.Nodes = append(top.Nodes, Node{Text: string(tok)})
			}
		default:
			// Comments, processing instructions and directives are
			// restricted: not comparable.
			return nil, false
		}
	}
	if !ended {
		return nil, false
	}
	return trees, true
}

// rawChecks rejects the namespace errors that encoding/xml lets through.
func rawChecks(doc string) bool {
	d := xml.NewDecoder(strings.NewReader(doc))
	var scopes []map[string]bool
	declared := func(p string) bool {
		if p == "xml" {
			return true
		}
		for i := len(scopes) - 1; i >= 0; i-- {
			if scopes[i][p] {
				return true
			}
		}
		return false
	}
	goodName := func(n xml.Name) bool {
		return n.Local != "" && !strings.Contains(n.Local, ":") && !strings.Contains(n.Space, ":")
	}
	for {
		tok, err := d.RawToken()
		if err != nil {
			return true
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			scope := map[string]bool{}
			seen := map[xml.Name]bool{}
			for _, a := range tok.Attr {
				if !goodName(a.Name) || seen[a.Name] {
					return false
				}
				seen[a.Name] = true
				if a.Name.Space == "xmlns" {
					if a.Value == "" || a.Name.Local == "xmlns" || a.Name.Local == "xml" ||
						a.Value == NSXML || a.Value == nsXMLNS {
						return false
					}
					scope[a.Name.Local] = true
				}
				if a.Name.Space == "" && a.Name.Local == "xmlns" && (a.Value == NSXML || a.Value == nsXMLNS) {
					return false
				}
			}
			scopes = append(scopes, scope)
			if tok.Name.Space == "" && tok.Name.Local == "xmlns" {
				// An element named xmlns is in the default namespace, but
				// encoding/xml leaves it in none (Decoder.translate).
				return false
			}
			if !goodName(tok.Name) || tok.Name.Space == "xmlns" || (tok.Name.Space != "" && !declared(tok.Name.Space)) {
				return false
			}
			resolved := map[[2]string]bool{}
			for _, a := range tok.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				if a.Name.Space != "" && !declared(a.Name.Space) {
					return false
				}
				// Find the URI for the duplicate-after-resolution check.
				uri := a.Name.Space
				for _, b := range tok.Attr {
					if b.Name.Space == "xmlns" && b.Name.Local == a.Name.Space {
						uri = "=" + b.Value
					}
				}
				key := [2]string{uri, a.Name.Local}
				if resolved[key] {
					return false
				}
				resolved[key] = true
			}
		case xml.EndElement:
			if len(scopes) > 0 {
				scopes = scopes[:len(scopes)-1]
			}
		}
	}
}

// attrWS is attribute-value normalization of whitespace.
var attrWS = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")

// normalizeAttrWS maps tab, newline and carriage return to space inside
// attribute values: encoding/xml does not apply attribute-value
// normalization, and after it only reference-produced whitespace differs.
func normalizeAttrWS(dumped string) string {
	var b strings.Builder
	for i := 0; i < len(dumped); {
		k := strings.Index(dumped[i:], `="`)
		if k < 0 {
			b.WriteString(dumped[i:])
			break
		}
		b.WriteString(dumped[i : i+k+1])
		i += k + 1
		q, err := strconv.QuotedPrefix(dumped[i:])
		if err != nil {
			b.WriteString(dumped[i:])
			break
		}
		v, _ := strconv.Unquote(q)
		v = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(v)
		b.WriteString(strconv.Quote(v))
		i += len(q)
	}
	return b.String()
}

// encodingXMLLax lists errors of ours for well-formedness rules that
// encoding/xml does not enforce.
var encodingXMLLax = []string{
	"missing whitespace before attribute",
	// XMPP allows only literal whitespace between stanzas; a character
	// reference there is character data at stream level.
	"text at stream level",
}

// laxLocalPart reports whether q is a qualified name that only
// encoding/xml's leniency accepts: it splits a name at its colon without
// checking that the local part starts as a name must (Namespaces in XML
// §4: both parts are NCNames), so "xml:0" or "p:-x" pass there. Only that:
// the prefix must be a name, the local part made of name characters, with
// one colon, so that any other disagreement on names still fails.
func laxLocalPart(q string) bool {
	prefix, local, ok := strings.Cut(q, ":")
	if !ok || prefix == "" || local == "" || strings.Contains(local, ":") {
		return false
	}
	for i, r := range prefix {
		if i == 0 && !nameStart(r) || !nameChar(r) {
			return false
		}
	}
	first, _ := utf8.DecodeRuneInString(local)
	if nameStart(first) {
		return false // a name we should have accepted: a real disagreement
	}
	for _, r := range local {
		if !nameChar(r) {
			return false
		}
	}
	return true
}

// surrogateRef reports whether s holds a character reference to a
// surrogate code point (U+D800 to U+DFFF), which XML forbids.
func surrogateRef(s string) bool {
	for {
		i := strings.Index(s, "&#")
		if i < 0 {
			return false
		}
		s = s[i+2:]
		end := strings.IndexByte(s, ';')
		if end < 0 {
			return false
		}
		num, base := s[:end], 10
		if strings.HasPrefix(num, "x") {
			num, base = num[1:], 16
		}
		if n, err := strconv.ParseUint(num, base, 32); err == nil && n >= 0xD800 && n <= 0xDFFF {
			return true
		}
	}
}

// nameStart and nameChar are NameStartChar and NameChar without the
// colon (NCName characters), ASCII included.
func nameStart(r rune) bool {
	return r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || isNameStartRune(r)
}

func nameChar(r rune) bool {
	return nameStart(r) || r == '-' || r == '.' || '0' <= r && r <= '9' || isNameRune(r)
}

func firstError(doc string) string {
	p := NewParser(DefaultLimits())
	p.Feed([]byte(doc))
	for {
		_, err := p.Next()
		if err != nil {
			return err.Error()
		}
	}
}

// checkDifferential compares our trees with encoding/xml's on frag.
func checkDifferential(t *testing.T, frag string) {
	doc := diffHeader + frag + trailer
	want, ok := referenceTrees(doc)
	if !ok {
		return
	}
	got := parseChunks([]byte(doc))
	if len(got) > 0 && got[len(got)-1].cond != "" {
		msg := firstError(doc)
		for _, lax := range encodingXMLLax {
			if strings.Contains(msg, lax) {
				return
			}
		}
		if q, ok := strings.CutPrefix(msg, "xmlstream: not-well-formed: invalid qualified name "); ok && laxLocalPart(q) {
			return
		}
		if strings.HasSuffix(msg, "character reference to a character not allowed in XML") && surrogateRef(frag) {
			// encoding/xml turns a reference to a surrogate into U+FFFD
			// (string(rune(0xD800))) before checking the character.
			return
		}
		if strings.HasSuffix(msg, "character data at stream level") && strings.Contains(frag, "<![CDATA[") {
			// A CDATA section between stanzas, even an empty one: XMPP
			// allows only whitespace there (RFC 6120 §11.7); the reference
			// reports its (empty or blank) text like whitespace.
			return
		}
		t.Fatalf("rejected %q (%s), accepted by encoding/xml", frag, msg)
	}
	if len(got) != len(want)+2 {
		t.Fatalf("%q: got %d events, want %d trees\n%s", frag, len(got), len(want), joinRecords(got))
	}
	for i, w := range want {
		if g := got[i+1].tree; normalizeAttrWS(g) != normalizeAttrWS(w) {
			t.Fatalf("%q:\n got %s\nwant %s", frag, g, w)
		}
	}
}

func TestDifferential(t *testing.T) {
	for _, s := range diffSamples {
		if _, ok := referenceTrees(diffHeader + s + trailer); !ok {
			t.Fatalf("sample not comparable: %q", s)
		}
		checkDifferential(t, s)
	}
}

// TestDifferentialLeniencies: what encoding/xml accepts by leniency is
// not held against us, and nothing more.
func TestDifferentialLeniencies(t *testing.T) {
	for _, s := range []string{"<xmlns/>", "<a><xmlns xmlns='u'/></a>", "<é>&#xd800;</é>", "<a b='&#57343;'/>", "<![CDATA[]]>", "<![CDATA[ ]]><a/>", "<presence><A xmlns='\r'/></presence>", "<a xmlns:p='u\tv' p:b='1'/>", `<presence xml:0=''>…</presence>`, `<a xmlns:p='u' p:-x=''/>`, `<a xmlns:p='u'><p:0/></a>`, `<a xmlns:p='u' p:·=''/>`} {
		checkDifferential(t, s)
	}
	for _, tc := range []struct {
		q    string
		want bool
	}{
		{"xml:0", true}, {"p:-x", true}, {"p:.", true}, {"p:·", true},
		{"xml:a", false}, {":0", false}, {"0:a", false}, {"a:b:c", false}, {"a:", false}, {"a:0 x", false}, {"a:0<", false},
	} {
		if got := laxLocalPart(tc.q); got != tc.want {
			t.Errorf("laxLocalPart(%q) = %v", tc.q, got)
		}
	}
}

func FuzzDifferential(f *testing.F) {
	for _, s := range diffSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frag string) {
		checkDifferential(t, frag)
	})
}

func TestSurrogateRef(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"&#xd800;", true}, {"&#xDFFF;", true}, {"&#55296;", true}, {"a &amp; &#x0D800; b", true},
		{"&#xd7ff;", false}, {"&#xe000;", false}, {"&#0;", false}, {"&#xd800", false}, {"&amp;", false},
	} {
		if got := surrogateRef(tc.s); got != tc.want {
			t.Errorf("surrogateRef(%q) = %v", tc.s, got)
		}
	}
}
