package bosh

import (
	"bytes"
	"testing"
)

func TestParseBody(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
		check    func(*body) bool
	}{
		{"creation", "<body content='text/xml; charset=utf-8' hold='1' rid='1573741820' to='example.com' route='xmpp:example.com:9999' ver='1.6' wait='60' ack='1' xml:lang='en' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>", true,
			func(b *body) bool {
				return b.rid == 1573741820 && b.hasRID && b.to == "example.com" && b.wait == 60 && b.hasWait && b.hold == 1 && b.hasAck && b.ack == 1 &&
					b.xmppVersion == "1.0" && b.lang == "en" && b.content == "text/xml; charset=utf-8" && b.payload == nil
			}},
		{"payload", "<?xml version='1.0'?>\n<body rid='2' sid='s' xmlns=\"http://jabber.org/protocol/httpbind\"><message xmlns='jabber:client'><body>x</body></message></body>\r\n", true,
			func(b *body) bool {
				return b.sid == "s" && string(b.payload) == "<message xmlns='jabber:client'><body>x</body></message>"
			}},
		{"restart with another prefix", "<body rid='3' sid='s' xmlns='http://jabber.org/protocol/httpbind' xmlns:x='urn:xmpp:xbosh' x:restart='true'/>", true,
			func(b *body) bool { return b.restart }},
		{"foreign prefix ignored", "<body rid='3' xmlns='http://jabber.org/protocol/httpbind' xmlns:y='urn:other' y:restart='true'/>", true,
			func(b *body) bool { return !b.restart }},
		{"entities", "<body rid='3' to='a&amp;b&#x41;&#66;' xmlns='http://jabber.org/protocol/httpbind'/>", true,
			func(b *body) bool { return b.to == "a&bAB" }},
		{"pause and terminate", "<body rid='4' sid='s' pause='30' type='terminate' xmlns='http://jabber.org/protocol/httpbind'></body>", true,
			func(b *body) bool { return b.pause == 30 && b.hasPause && b.typ == "terminate" && len(b.payload) == 0 }},
		{"wrong namespace", "<body rid='1' xmlns='jabber:client'/>", false, nil},
		{"no namespace", "<body rid='1'/>", false, nil},
		{"unknown prefix", "<body rid='1' xmlns='http://jabber.org/protocol/httpbind' q:x='1'/>", false, nil},
		{"duplicate attribute", "<body rid='1' rid='2' xmlns='http://jabber.org/protocol/httpbind'/>", false, nil},
		{"negative rid", "<body rid='-1' xmlns='http://jabber.org/protocol/httpbind'/>", false, nil},
		{"huge wait", "<body rid='1' wait='99999999999' xmlns='http://jabber.org/protocol/httpbind'/>", false, nil},
		{"unclosed", "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'><message/>", false, nil},
		{"data after", "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'/><x/>", false, nil},
		{"unknown entity", "<body rid='1' to='&nbsp;' xmlns='http://jabber.org/protocol/httpbind'/>", false, nil},
		{"bad char ref", "<body rid='1' to='&#0;' xmlns='http://jabber.org/protocol/httpbind'/>", false, nil},
		{"lt in value", "<body rid='1' to='<' xmlns='http://jabber.org/protocol/httpbind'/>", false, nil},
		{"not body", "<bodyx rid='1' xmlns='http://jabber.org/protocol/httpbind'/>", false, nil},
		{"no space", "<body rid='1'xmlns='http://jabber.org/protocol/httpbind'/>", false, nil},
		{"empty", "", false, nil},
		{"unterminated decl", "<?xml version='1.0'", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := parseBody([]byte(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if tt.ok && !tt.check(b) {
				t.Fatalf("parsed %+v", b)
			}
		})
	}
}

// FuzzParseBody checks that any input is refused or parsed into a payload
// that is a part of it, whose wrapper survives being written again.
func FuzzParseBody(f *testing.F) {
	for _, s := range []string{
		"<body rid='1' to='localhost' wait='60' hold='1' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>",
		"<body rid='2' sid='abc' xmlns='http://jabber.org/protocol/httpbind'><iq type='get' xmlns='jabber:client'/></body>",
		"<?xml version='1.0'?><body rid='3' sid='a' to='a&amp;&#x41;' xmlns=\"http://jabber.org/protocol/httpbind\" type='terminate'></body>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := parseBody(in)
		if err != nil {
			return
		}
		if b.payload != nil && !bytes.Contains(in, b.payload) {
			t.Fatalf("payload %q is not from the input", b.payload)
		}
		// The attributes written back parse to the same values.
		out := []byte("<body xmlns='" + NSHTTPBind + "' to='")
		out = escapeAttr(out, b.to)
		out = append(out, "' sid='"...)
		out = escapeAttr(out, b.sid)
		out = append(out, "'/>"...)
		b2, err := parseBody(out)
		if err != nil || b2.to != b.to || b2.sid != b.sid {
			t.Fatalf("%q does not parse back: %v", out, err)
		}
	})
}
