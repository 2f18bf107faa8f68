package sm

import (
	"errors"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

func mustParse(t testing.TB, s string) *xmlstream.Element {
	t.Helper()
	el, err := xmlstream.ParseStanza([]byte(s), xmlstream.NSClient)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return el
}

const (
	capsSimple = `<query xmlns='http://jabber.org/protocol/disco#info'>
<identity category='client' name='Exodus 0.9.1' type='pc'/>
<feature var='http://jabber.org/protocol/caps'/>
<feature var='http://jabber.org/protocol/disco#info'/>
<feature var='http://jabber.org/protocol/disco#items'/>
<feature var='http://jabber.org/protocol/muc'/>
</query>`
	capsComplex = `<query xmlns='http://jabber.org/protocol/disco#info'>
<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
<identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>
<feature var='http://jabber.org/protocol/caps'/>
<feature var='http://jabber.org/protocol/disco#info'/>
<feature var='http://jabber.org/protocol/disco#items'/>
<feature var='http://jabber.org/protocol/muc'/>
<x xmlns='jabber:x:data' type='result'>
<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
<field var='ip_version'><value>ipv4</value><value>ipv6</value></field>
<field var='os'><value>Mac</value></field>
<field var='os_version'><value>10.5.1</value></field>
<field var='software'><value>Psi</value></field>
<field var='software_version'><value>0.11</value></field>
</x>
</query>`
)

// TestCapsVer checks the verification string against the examples of
// XEP-0115 §5.2 and §5.3, and the refusal of malformed answers (§5.4).
func TestCapsVer(t *testing.T) {
	tests := []struct {
		name, query, want string
		err               bool
	}{
		{"simple", capsSimple, "QgayPKawpkPSDYmwT/WM94uAlu0=", false},
		{"complex", capsComplex, "q07IKJEyjvHSyhy//CH0CxmKi8w=", false},
		{"form without hidden FORM_TYPE is ignored", `<query xmlns='http://jabber.org/protocol/disco#info'>
<identity category='client' name='Exodus 0.9.1' type='pc'/>
<feature var='http://jabber.org/protocol/caps'/>
<feature var='http://jabber.org/protocol/disco#info'/>
<feature var='http://jabber.org/protocol/disco#items'/>
<feature var='http://jabber.org/protocol/muc'/>
<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>urn:x</value></field><field var='a'><value>b</value></field></x>
</query>`, "QgayPKawpkPSDYmwT/WM94uAlu0=", false},
		{"duplicate identity", `<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/><identity category='client' type='pc'/></query>`, "", true},
		{"duplicate feature", `<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/><feature var='a'/><feature var='a'/></query>`, "", true},
		{"feature without var", `<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/><feature/></query>`, "", true},
		{"no identity", `<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/></query>`, "", true},
		{"identity without type", `<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client'/></query>`, "", true},
		{"duplicate FORM_TYPE", `<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/>
<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:x</value></field></x>
<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:x</value></field></x></query>`, "", true},
		{"FORM_TYPE with two values", `<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/>
<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:x</value><value>urn:y</value></field></x></query>`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := capsVer(mustParse(t, tt.query))
			if tt.err {
				if !errors.Is(err, errCapsMalformed) {
					t.Fatalf("capsVer = %q, %v; want malformed", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("capsVer = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestPresenceCaps(t *testing.T) {
	tests := []struct {
		presence  string
		node, ver string
		ok        bool
	}{
		{`<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://x' ver='abc='/></presence>`, "https://x", "abc=", true},
		{`<presence><c xmlns='http://jabber.org/protocol/caps' hash='md5' node='https://x' ver='abc='/></presence>`, "", "", false},
		{`<presence><c xmlns='http://jabber.org/protocol/caps' node='https://x' ver='1.0'/></presence>`, "", "", false},
		{`<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://x'/></presence>`, "", "", false},
		{`<presence/>`, "", "", false},
	}
	for _, tt := range tests {
		node, ver, ok := presenceCaps(mustParse(t, tt.presence))
		if node != tt.node || ver != tt.ver || ok != tt.ok {
			t.Errorf("presenceCaps(%s) = %q, %q, %v", tt.presence, node, ver, ok)
		}
	}
}

// FuzzCapsVer feeds arbitrary disco#info answers to the verification: it
// must never panic, and an answer it accepts must hash the same twice.
func FuzzCapsVer(f *testing.F) {
	f.Add([]byte(capsSimple))
	f.Add([]byte(capsComplex))
	f.Fuzz(func(t *testing.T, b []byte) {
		el, err := xmlstream.ParseStanza(b, xmlstream.NSClient)
		if err != nil {
			return
		}
		v1, err1 := capsVer(el)
		v2, err2 := capsVer(el)
		if v1 != v2 || (err1 == nil) != (err2 == nil) {
			t.Fatalf("not deterministic: %q %v / %q %v", v1, err1, v2, err2)
		}
	})
}
