package xmlstream

import (
	"strings"
	"testing"
)

// parseStanzas returns the EventElement trees of a stream.
func parseStanzas(t testing.TB, stream string) []*Element {
	t.Helper()
	p := NewParser(DefaultLimits())
	p.Feed([]byte(stream))
	var out []*Element
	for {
		ev, err := p.Next()
		if err == ErrNeedMore {
			return out
		}
		if err != nil {
			t.Fatalf("parse %q: %v", stream, err)
		}
		if ev.Kind == EventElement {
			out = append(out, ev.Elem)
		}
	}
}

func parseOne(t testing.TB, stanza string) *Element {
	t.Helper()
	els := parseStanzas(t, c2sHeader+stanza)
	if len(els) != 1 {
		t.Fatalf("got %d elements from %q", len(els), stanza)
	}
	return els[0]
}

func dropAllRaw(e *Element) {
	e.raw, e.hasRaw = "", false
	for _, n := range e.Nodes {
		if n.Elem != nil {
			dropAllRaw(n.Elem)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, s := range streamSamples {
		p := NewParser(DefaultLimits())
		p.Feed([]byte(s))
		var hdr *Element
		var els []*Element
		for {
			ev, err := p.Next()
			if err != nil {
				break
			}
			switch ev.Kind {
			case EventStreamStart:
				hdr = ev.Elem
			case EventElement:
				els = append(els, ev.Elem)
			}
		}
		if hdr == nil {
			continue
		}
		def := p.DefaultNS()
		for _, raw := range []bool{true, false} {
			for _, el := range els {
				if !raw {
					dropAllRaw(el)
				}
				out := el.AppendXML(nil, def)
				back := parseStanzas(t, `<stream:stream xmlns='`+def+`' xmlns:stream='`+NSStream+`'>`+string(out))
				if len(back) != 1 || dump(back[0]) != dump(el) {
					t.Errorf("raw=%v round trip of %s\nserialized %s", raw, dump(el), out)
				}
			}
		}
	}
}

func TestAppendXML(t *testing.T) {
	tests := []struct {
		name  string
		build func() *Element
		ns    string
		want  string
	}{
		{"stanza adopts stream ns", func() *Element {
			m := NewElement(NSClient, "message")
			m.SetAttr("to", "a@b")
			m.AddChild(NewElement(NSClient, "body")).AddText("<hi> & 'bye'\r")
			return m
		}, NSServer, `<message to='a@b'><body>&lt;hi&gt; &amp; 'bye'&#xD;</body></message>`},
		{"foreign ns declared", func() *Element {
			e := NewElement(NSClient, "iq")
			q := e.AddChild(NewElement("jabber:iq:roster", "query"))
			q.AddChild(NewElement("jabber:iq:roster", "item")).SetAttr("jid", "x")
			q.AddChild(NewElement("", "bare"))
			return e
		}, NSClient, `<iq><query xmlns='jabber:iq:roster'><item jid='x'/><bare xmlns=''/></query></iq>`},
		{"non content ns at top", func() *Element {
			return NewElement(NSStream, "features")
		}, NSClient, `<features xmlns='http://etherx.jabber.org/streams'/>`},
		{"namespaced attrs", func() *Element {
			e := NewElement("urn:a", "x")
			e.SetAttrNS(NSXML, "lang", "en")
			e.SetAttrNS("urn:p", "a", "1")
			e.SetAttrNS("urn:q", "b", "2")
			e.SetAttrNS("urn:p", "c", "3\t\n\"'")
			return e
		}, "", `<x xmlns='urn:a' xml:lang='en' xmlns:ns1='urn:p' ns1:a='1' xmlns:ns2='urn:q' ns2:b='2' ns1:c='3&#x9;&#xA;&quot;&apos;'/>`},
		{"invalid chars replaced", func() *Element {
			return NewElement("", "x").AddText("a\x00b\xffc\uFFFEd")
		}, "", "<x>a\uFFFDb\uFFFDc\uFFFDd</x>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.build().AppendXML(nil, tt.ns)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestRawForwarding(t *testing.T) {
	tests := []struct {
		in      string
		topRaw  bool
		kidsRaw []bool
	}{
		{`<message><body>hi</body><x xmlns='urn:x'><y/></x></message>`, true, []bool{true, true}},
		{`<message><p:x xmlns:p='urn:p'/><y xmlns:q='urn:q'><q:z/></y></message>`, true, []bool{false, false}},
		{`<message xmlns:p='urn:p'><p:x/></message>`, false, []bool{false}},
		{`<message><stream:x/><b xml:lang='en'/></message>`, false, []bool{false, true}},
		{`<message><a><b xmlns:p='urn:p' p:c='1'/></a></message>`, true, []bool{true}},
		{`<message><a xmlns:p='urn:p'><b p:c='1'/></a></message>`, true, []bool{false}},
	}
	for _, tt := range tests {
		e := parseOne(t, tt.in)
		if e.HasRaw() != tt.topRaw {
			t.Errorf("%s: top raw = %v", tt.in, e.HasRaw())
		}
		for i, c := range e.Children() {
			if c.HasRaw() != tt.kidsRaw[i] {
				t.Errorf("%s: child %d raw = %v", tt.in, i, c.HasRaw())
			}
		}
	}

	// Formatting inside a raw payload survives forwarding verbatim.
	in := `<message to='a'><x xmlns='urn:x'>  <y  a="1"/><![CDATA[z]]>&#65;</x></message>`
	e := parseOne(t, in)
	e.SetAttr("from", "b")
	e.RemoveAttr("to")
	want := `<message from='b'><x xmlns='urn:x'>  <y  a="1"/><![CDATA[z]]>&#65;</x></message>`
	if got := string(e.AppendXML(nil, NSServer)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if !e.HasRaw() {
		t.Fatal("SetAttr on the stanza dropped its raw bytes")
	}
	// Changing a descendant must not be hidden by the ancestors' raw bytes.
	e.Child("urn:x", "x").SetAttr("n", "1")
	if e.HasRaw() || !e.Child("urn:x", "x").HasRaw() {
		t.Fatal("SetAttr on a child did not drop the parent's raw bytes only")
	}
	if got := e.String(); !strings.Contains(got, `<x xmlns='urn:x' n='1'>  <y  a="1"/>`) {
		t.Fatalf("child change lost: %s", got)
	}
	e.Child("urn:x", "x").AddText("more")
	if got := e.String(); !strings.Contains(got, `<y a='1'/>zAmore</x>`) {
		t.Fatalf("AddText lost: %s", got)
	}
}

func TestElementAccessors(t *testing.T) {
	e := parseOne(t, `<m a='1' xml:lang='en'>x<b>y</b>z<c/></m>`)
	if e.Attr("a") != "1" || e.AttrNS(NSXML, "lang") != "en" || e.Attr("lang") != "" || !e.HasAttr("a") {
		t.Fatal("attribute lookup")
	}
	if e.Text() != "xz" || e.Child(NSClient, "b").Text() != "y" || e.Child(NSClient, "nope") != nil {
		t.Fatal("text or child lookup")
	}
	var names []string
	for c := range e.ChildElements {
		names = append(names, c.Local)
	}
	if strings.Join(names, ",") != "b,c" || len(e.Children()) != 2 {
		t.Fatalf("children %v", names)
	}
	// Appending an attribute must not clobber the shared attribute slab.
	e2 := parseOne(t, `<m><a x='1'/><b y='2'/></m>`)
	a := e2.Child(NSClient, "a")
	a.SetAttr("z", "3")
	if e2.Child(NSClient, "b").Attr("y") != "2" {
		t.Fatal("SetAttr overwrote a sibling's attributes")
	}
	a.RemoveAttr("x")
	if a.HasAttr("x") || a.Attr("z") != "3" {
		t.Fatal("RemoveAttr")
	}
}

func TestEscaping(t *testing.T) {
	tests := []struct{ in, text, attr string }{
		{"plain", "plain", "plain"},
		{`<&>"'`, `&lt;&amp;&gt;"'`, `&lt;&amp;&gt;&quot;&apos;`},
		{"a\tb\nc\rd", "a\tb\nc&#xD;d", "a&#x9;b&#xA;c&#xD;d"},
		{"\x01\xc3(\U0001F600", "\uFFFD\uFFFD(\U0001F600", "\uFFFD\uFFFD(\U0001F600"},
	}
	for _, tt := range tests {
		if got := string(AppendEscapedText(nil, tt.in)); got != tt.text {
			t.Errorf("text %q = %q want %q", tt.in, got, tt.text)
		}
		if got := string(AppendEscapedAttr(nil, tt.in)); got != tt.attr {
			t.Errorf("attr %q = %q want %q", tt.in, got, tt.attr)
		}
	}
}

// A frozen element serializes as before, from its kept bytes, and so do
// its shallow copies with another 'to'; changing it through its methods
// drops the bytes.
func TestFreeze(t *testing.T) {
	el, err := ParseStanza([]byte("<presence from='a@b/c'><show>away</show><c xmlns='urn:x' v='1 &amp; 2'/></presence>"), NSClient)
	if err != nil {
		t.Fatal(err)
	}
	p := NewElement(NSClient, "presence")
	p.SetAttr("from", "room@muc/nick")
	p.Nodes = append(p.Nodes, el.Nodes...)
	p.AddChild(NewElement("urn:y", "y")).AddText("<&>")
	want := string(p.AppendXML(nil, NSClient))
	p.Freeze()
	if !p.HasRaw() {
		t.Fatal("not frozen")
	}
	if got := string(p.AppendXML(nil, NSClient)); got != want {
		t.Fatalf("frozen: %s\nwant %s", got, want)
	}
	c := p.ShallowCopy()
	c.SetAttr("to", "x@y/z")
	if got, w := string(c.AppendXML(nil, NSServer)), strings.Replace(want, "'>", "' to='x@y/z'>", 1); got != w {
		t.Fatalf("copy: %s\nwant %s", got, w)
	}
	p.AddText("more")
	if p.HasRaw() || !strings.HasSuffix(string(p.AppendXML(nil, NSClient)), "more</presence>") {
		t.Fatalf("a change kept the frozen bytes: %s", p.AppendXML(nil, NSClient))
	}
}

// A stamp added to a parsed stanza serializes as AddChild would, with the
// stanza's raw bytes kept, on the copy only; a change to the stamp drops
// them. SizeHint covers the serialization.
func TestAddStamp(t *testing.T) {
	tests := []struct{ name, in string }{
		{"raw", `<message to='a@b'><body>hi &amp; bye</body><x xmlns='urn:x'><y/></x></message>`},
		{"empty", `<message to='a@b'/>`},
		{"prefixed, no raw", `<message xmlns:p='urn:p'><p:x/><body>b</body></message>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := parseOne(t, tt.in)
			stamp := func() *Element {
				s := NewElement("urn:xmpp:sid:0", "stanza-id")
				s.SetAttr("by", "a@b")
				s.SetAttr("id", "0123456789abc")
				return s
			}
			ref := orig.ShallowCopy()
			ref.AddChild(stamp())
			want := string(ref.AppendXML(nil, NSClient))

			c := orig.ShallowCopy()
			sid := c.AddStamp(stamp())
			if c.HasRaw() != orig.HasRaw() {
				t.Fatalf("raw kept = %v, stanza's = %v", c.HasRaw(), orig.HasRaw())
			}
			if got := string(c.AppendXML(nil, NSClient)); got != want {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
			if h := c.SizeHint(); h < len(want) {
				t.Errorf("SizeHint %d < %d", h, len(want))
			}
			if got := orig.String(); strings.Contains(got, "stanza-id") {
				t.Fatalf("the original changed: %s", got)
			}
			sid.SetAttr("id", "other")
			if c.HasRaw() || !strings.Contains(c.String(), "id='other'") {
				t.Fatalf("a change to the stamp kept the raw bytes: %s", c.String())
			}
		})
	}
}
