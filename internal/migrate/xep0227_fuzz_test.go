package migrate

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzXEP0227: the reader never panics; what it accepts passes
// validation or fails it with an error, and once written as XEP-0227 and
// read again, writes the same file.
func FuzzXEP0227(f *testing.F) {
	f.Add([]byte("<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'><user name='a' password='p'><query xmlns='jabber:iq:roster'><item jid='b@example.com' subscription='both'><group>G</group></item></query></user></host></server-data>"))
	f.Add([]byte("<host xmlns='urn:xmpp:pie:0' jid='example.com'><user name='a'><vCard xmlns='vcard-temp'><FN xml:lang='en'>A &amp; B</FN></vCard><offline-messages><message xmlns='jabber:client' to='a@example.com'><body>hi</body></message></offline-messages></user></host>"))
	f.Fuzz(func(t *testing.T, in []byte) {
		d := &Data{}
		if err := ReadXEP0227(d, bytes.NewReader(in), "f.xml", nil, testNow); err != nil {
			return
		}
		if err := Validate(d); err != nil {
			return
		}
		var b1 bytes.Buffer
		if err := WriteXEP0227(&b1, d); err != nil {
			t.Fatalf("read, validated, but not written: %v", err)
		}
		d2 := &Data{}
		if err := ReadXEP0227(d2, bytes.NewReader(b1.Bytes()), "out.xml", nil, testNow); err != nil {
			t.Fatalf("the export of %q does not read: %v\n%s", in, err, b1.String())
		}
		var b2 bytes.Buffer
		if err := WriteXEP0227(&b2, d2); err != nil {
			t.Fatal(err)
		}
		if b1.String() != b2.String() {
			t.Fatalf("%q: export not stable:\n%s\n%s", in, b1.String(), b2.String())
		}
		if len(d2.Users) != len(d.Users) || strings.Count(b1.String(), "<user ") != len(d.Users) {
			t.Fatalf("%d users, then %d", len(d.Users), len(d2.Users))
		}
	})
}
