package xmlstream

import (
	"strings"
	"testing"
)

const benchMessage = `<message to='bob@localhost' type='chat' id='abc123'><body>Hello there, how are you?</body></message>`

// BenchmarkParseMessage parses a long stream of small chat messages fed in
// 4 KiB reads; one op is one stanza.
func BenchmarkParseMessage(b *testing.B) {
	stream := []byte(c2sHeader + strings.Repeat(benchMessage, 4000))
	const readSize = 4096
	p := NewParser(DefaultLimits())
	off := 0
	feed := func() {
		if off == len(stream) {
			p.Reset()
			off = 0
		}
		end := min(off+readSize, len(stream))
		p.Feed(stream[off:end])
		off = end
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchMessage)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for {
			ev, err := p.Next()
			if err == ErrNeedMore {
				feed()
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			if ev.Kind == EventElement {
				break
			}
		}
	}
}

// BenchmarkParseMessageOnePerRead feeds each message in its own read, the
// usual pattern of an interactive client.
func BenchmarkParseMessageOnePerRead(b *testing.B) {
	p := NewParser(DefaultLimits())
	p.Feed([]byte(c2sHeader))
	if _, err := p.Next(); err != nil {
		b.Fatal(err)
	}
	msg := []byte(benchMessage)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Feed(msg)
		if _, err := p.Next(); err != nil {
			b.Fatal(err)
		}
		if _, err := p.Next(); err != ErrNeedMore {
			b.Fatal(err)
		}
	}
}

// largeStanza is a ~10 KiB stanza with a nested payload.
func largeStanza() string {
	var s strings.Builder
	s.WriteString(`<iq type='result' id='pubsub1' to='juliet@localhost/balcony'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:microblog:0'>`)
	for i := 0; s.Len() < 10<<10; i++ {
		s.WriteString(`<item id='entry-`)
		s.WriteString(strings.Repeat("x", i%7))
		s.WriteString(`'><entry xmlns='http://www.w3.org/2005/Atom'><title type='text'>Post about &lt;XML&gt; &amp; friends</title>`)
		s.WriteString(`<content type='xhtml'><div xmlns='http://www.w3.org/1999/xhtml'><p>Some <b>bold</b> and <i>italic</i> text, caf&#xE9; ☕</p></div></content>`)
		s.WriteString(`<published>2024-01-01T12:00:00Z</published></entry></item>`)
	}
	s.WriteString(`</items></pubsub></iq>`)
	return s.String()
}

func BenchmarkParseLarge(b *testing.B) {
	stanza := []byte(largeStanza())
	p := NewParser(DefaultLimits())
	p.Feed([]byte(c2sHeader))
	if _, err := p.Next(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(stanza)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Feed(stanza)
		if _, err := p.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendXML(b *testing.B) {
	parsed := parseOne(b, benchMessage)
	built := NewElement(NSClient, "message")
	built.SetAttr("to", "bob@localhost")
	built.SetAttr("type", "chat")
	built.SetAttr("id", "abc123")
	built.AddChild(NewElement(NSClient, "body")).AddText("Hello there, how are you?")
	large := parseOne(b, largeStanza())
	largeBuilt := parseOne(b, largeStanza())
	dropAllRaw(largeBuilt)
	for _, bc := range []struct {
		name string
		e    *Element
	}{{"message-raw", parsed}, {"message-built", built}, {"large-raw", large}, {"large-built", largeBuilt}} {
		b.Run(bc.name, func(b *testing.B) {
			buf := bc.e.AppendXML(nil, NSServer)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				buf = bc.e.AppendXML(buf[:0], NSServer)
			}
		})
	}
}
