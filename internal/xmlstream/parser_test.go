package xmlstream

import (
	"strings"
	"testing"
)

func TestParseGood(t *testing.T) {
	tests := []struct {
		name   string
		header string
		in     string
		want   []string // dumps of the EventElement trees
	}{
		{"message", c2sHeader,
			`<message to='bob@localhost' type='chat' id='abc123'><body>Hello there, how are you?</body></message>`,
			[]string{`<{jabber:client}message {}to="bob@localhost" {}type="chat" {}id="abc123"><{jabber:client}body>"Hello there, how are you?"</></>`}},
		{"entities and char refs", c2sHeader,
			`<m a="&lt;&gt;&amp;&quot;&apos;&#65;&#x42;">x &amp; y &#x1F600; &lt;z&gt;</m>`,
			[]string{`<{jabber:client}m {}a="<>&\"'AB">"x & y 😀 <z>"</>`}},
		{"cdata merges with text", c2sHeader,
			`<m>a<![CDATA[<b>&amp;]]>c</m>`,
			[]string{`<{jabber:client}m>"a<b>&amp;c"</>`}},
		{"line ends normalized", c2sHeader,
			"<m a='x\r\ny\tz'>a\r\nb\rc&#13;</m>",
			[]string{`<{jabber:client}m {}a="x y z">"a\nb\nc\r"</>`}},
		{"namespaces", c2sHeader,
			`<iq type='get'><query xmlns='jabber:iq:roster' xmlns:p='urn:p' p:ver='1' xml:lang='en'><p:item/><item xmlns=''/></query></iq>`,
			[]string{`<{jabber:client}iq {}type="get"><{jabber:iq:roster}query {urn:p}ver="1" {http://www.w3.org/XML/1998/namespace}lang="en"><{urn:p}item></><{}item></></></>`}},
		{"stream prefix from root", c2sHeader,
			`<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`,
			[]string{`<{http://etherx.jabber.org/streams}features><{urn:ietf:params:xml:ns:xmpp-tls}starttls><{urn:ietf:params:xml:ns:xmpp-tls}required></></></>`}},
		{"whitespace keepalives", c2sHeader,
			" \n\t<a/>\r\n <b/>  ",
			[]string{`<{jabber:client}a></>`, `<{jabber:client}b></>`}},
		{"dialback prefix", s2sHeader,
			`<db:result from='a.example' to='b.example'>abc</db:result>`,
			[]string{`<{jabber:server:dialback}result {}from="a.example" {}to="b.example">"abc"</>`}},
		{"component", cmpHeader,
			`<handshake>aaee</handshake>`,
			[]string{`<{jabber:component:accept}handshake>"aaee"</>`}},
		{"other stream prefix", `<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'>`,
			`<s:error><x/></s:error>`,
			[]string{`<{http://etherx.jabber.org/streams}error><{jabber:client}x></></>`}},
		{"utf8 names and text", c2sHeader,
			`<é ü='ö'>日本語</é>`,
			[]string{`<{jabber:client}é {}ü="ö">"日本語"</>`}},
		{"gt in text and quotes in attrs", c2sHeader,
			`<m a='"' b="'">a > b ]> ]]</m>`,
			[]string{`<{jabber:client}m {}a="\"" {}b="'">"a > b ]> ]]"</>`}},
		{"spaces in tags", c2sHeader,
			"<m  a = 'b'\n></m >",
			[]string{`<{jabber:client}m {}a="b"></>`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end := trailer
			if strings.HasPrefix(tt.header, "<s:") {
				end = "</s:stream>"
			}
			got := parseChunks([]byte(tt.header + tt.in + end))
			if len(got) != len(tt.want)+2 {
				t.Fatalf("got events\n%s", joinRecords(got))
			}
			if got[0].kind != EventStreamStart || got[len(got)-1].kind != EventStreamEnd {
				t.Fatalf("bad framing\n%s", joinRecords(got))
			}
			for i, w := range tt.want {
				if g := got[i+1]; g.kind != EventElement || g.tree != w {
					t.Errorf("element %d:\n got %s\nwant %s", i, g.tree, w)
				}
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	nwf, rx, pv := CondNotWellFormed, CondRestrictedXML, CondPolicyViolation
	deep := strings.Repeat("<a>", 33) + strings.Repeat("</a>", 33)
	manyAttrs := "<a"
	for i := 0; i < 65; i++ {
		manyAttrs += " a" + strings.Repeat("x", i) + "='1'"
	}
	manyAttrs += "/>"
	tests := []struct {
		name string
		in   string // appended to c2sHeader unless it starts with '!'
		cond string
	}{
		{"mismatched end", `<a></b>`, nwf},
		{"mismatched nested end", `<a><b></a></b>`, nwf},
		// The stanza never completes: the mismatch must still be caught.
		{"mismatched end before completion", `<message><body>hi</mesage>`, nwf},
		{"longer end name before completion", `<a><bb></bbb>`, nwf},
		{"prefixed end mismatch before completion", `<a><p:b xmlns:p='u'></b>`, nwf},
		{"duplicate attr", `<a x='1' x='2'/>`, nwf},
		{"duplicate attr after resolution", `<a xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>`, nwf},
		{"duplicate xmlns", `<a xmlns='u' xmlns='v'/>`, nwf},
		{"undeclared prefix", `<p:a/>`, nwf},
		{"undeclared attr prefix", `<a p:b='1'/>`, nwf},
		{"prefix out of scope", `<a><b xmlns:p='u'/><p:c/></a>`, nwf},
		{"empty prefix binding", `<a xmlns:p=''/>`, nwf},
		{"rebind xml", `<a xmlns:xml='urn:x'/>`, nwf},
		{"declare xmlns", `<a xmlns:xmlns='urn:x'/>`, nwf},
		{"bad qname", `<a:b:c xmlns:a='u'/>`, nwf},
		{"invalid utf8 text", "<a>\xff</a>", nwf},
		{"invalid utf8 attr", "<a b='\xc3'/>", nwf},
		{"nul char", "<a>\x00</a>", nwf},
		{"control char attr", "<a b='\x08'/>", nwf},
		{"U+FFFE", "<a>\uFFFE</a>", nwf},
		{"lt in attr", `<a b='<'/>`, nwf},
		{"bad char ref", `<a>&#0;</a>`, nwf},
		{"bad char ref surrogate", `<a>&#xD800;</a>`, nwf},
		{"huge char ref", `<a>&#99999999999999999999;</a>`, nwf},
		{"char ref no digits", `<a>&#x;</a>`, nwf},
		{"amp alone", `<a>a & b</a>`, nwf},
		{"unterminated entity", `<a>&amp</a>`, nwf},
		{"unknown entity", `<a>&nbsp;</a>`, rx},
		{"unknown entity attr", `<a b='&foo;'/>`, rx},
		{"comment", `<a><!-- x --></a>`, rx},
		{"comment at top", `<!-- x -->`, rx},
		{"pi", `<a><?php x ?></a>`, rx},
		{"pi at top", `<?x y?>`, rx},
		{"doctype", `<a><!DOCTYPE a></a>`, rx},
		{"text at top", `hello`, nwf},
		{"cdata at top", `<![CDATA[x]]>`, nwf},
		{"cdata end in text", `<a>]]></a>`, nwf},
		{"unquoted attr", `<a b=c/>`, nwf},
		{"no space between attrs", `<a b='1'c='2'/>`, nwf},
		{"bad name start", `<1a/>`, nwf},
		{"wrong stream end", `</stream:foo>`, nwf},
		{"too deep", deep, pv},
		{"too many attrs", manyAttrs, pv},
		{"stanza too large", "<a>" + strings.Repeat("x", 256<<10) + "</a>", pv},
		{"stanza too large unfinished", "<a>" + strings.Repeat("x", 300<<10), pv},
		{"!doctype before header", "!<!DOCTYPE stream><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>", rx},
		{"!comment before header", "!<!-- x --><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>", rx},
		{"!pi before header", "!<?foo?><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>", rx},
		{"!bad version", "!<?xml version='2.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>", nwf},
		{"!bad encoding", "!<?xml version='1.0' encoding='ISO-8859-1'?><s/>", CondUnsupportedEncoding},
		{"!header too long", "!<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='" + strings.Repeat("x", 5000) + "'>", pv},
		{"!header unfinished too long", "!<stream:stream a='" + strings.Repeat("x", 5000), pv},
		{"!text before header", "!hello", nwf},
		{"!undeclared stream prefix", "!<stream:stream>", nwf},
		{"!data after end", "!<s></s> x", nwf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := c2sHeader + tt.in
			if strings.HasPrefix(tt.in, "!") {
				in = tt.in[1:]
			}
			got := parseChunks([]byte(in))
			if len(got) == 0 || got[len(got)-1].cond != tt.cond {
				t.Fatalf("got\n%swant error %s", joinRecords(got), tt.cond)
			}
			// Byte by byte must fail the same way.
			var chunks [][]byte
			for i := 0; i < len(in); i++ {
				chunks = append(chunks, []byte{in[i]})
			}
			if got2 := parseChunks(chunks...); joinRecords(got2) != joinRecords(got) {
				t.Fatalf("byte by byte:\n%s\nwhole:\n%s", joinRecords(got2), joinRecords(got))
			}
		})
	}
}

func TestParserStaysFailed(t *testing.T) {
	p := NewParser(DefaultLimits())
	p.Feed([]byte(c2sHeader + "<a></b>"))
	got, failed := drain(p, nil)
	if !failed {
		t.Fatalf("no error: %s", joinRecords(got))
	}
	p.Feed([]byte("<c/>"))
	if _, err := p.Next(); err == nil || err == ErrNeedMore {
		t.Fatalf("parser recovered: %v", err)
	}
}

func TestIdleHoldsNoBuffer(t *testing.T) {
	p := NewParser(DefaultLimits())
	p.Feed([]byte(c2sHeader + "<a/><b>x</b> "))
	if _, failed := drain(p, nil); failed {
		t.Fatal("failed")
	}
	if p.buf != nil || p.Buffered() != 0 {
		t.Fatalf("idle parser holds %d bytes (cap %d)", p.Buffered(), cap(p.buf))
	}
	p.Feed([]byte("<c>partial"))
	drain(p, nil)
	if p.Buffered() != len("<c>partial") {
		t.Fatalf("Buffered = %d", p.Buffered())
	}
	p.Reset()
	if p.buf != nil || p.rootBinds != nil || p.Buffered() != 0 {
		t.Fatal("Reset kept state")
	}
}

func TestResetRestartsStream(t *testing.T) {
	p := NewParser(DefaultLimits())
	got := parseChunksWith(p, []byte(c2sHeader+"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"))
	if len(got) != 2 {
		t.Fatalf("got %s", joinRecords(got))
	}
	p.Reset()
	got = parseChunksWith(p, []byte(s2sHeader+"<db:verify id='1'/>"))
	if len(got) != 2 || got[1].tree != `<{jabber:server:dialback}verify {}id="1"></>` {
		t.Fatalf("after reset: %s", joinRecords(got))
	}
	if p.DefaultNS() != NSServer {
		t.Fatalf("DefaultNS = %q", p.DefaultNS())
	}
	if ns, ok := p.LookupPrefix("db"); !ok || ns != "jabber:server:dialback" {
		t.Fatalf("LookupPrefix(db) = %q %v", ns, ok)
	}
}

func TestStreamHeader(t *testing.T) {
	p := NewParser(DefaultLimits())
	p.Feed([]byte(c2sHeader))
	ev, err := p.Next()
	if err != nil || ev.Kind != EventStreamStart {
		t.Fatalf("Next = %v, %v", ev, err)
	}
	if ev.Elem.Space != NSStream || ev.Elem.Local != "stream" || ev.Elem.Attr("to") != "localhost" || ev.Elem.Attr("version") != "1.0" {
		t.Fatalf("root = %s", dump(ev.Elem))
	}
	if len(ev.Elem.Attrs) != 2 {
		t.Fatalf("namespace declarations leaked into Attrs: %s", dump(ev.Elem))
	}

	// A self-closed root opens and ends the stream.
	got := parseChunks([]byte(`<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>`))
	if len(got) != 2 || got[0].kind != EventStreamStart || got[1].kind != EventStreamEnd {
		t.Fatalf("self-closed root: %s", joinRecords(got))
	}
}
