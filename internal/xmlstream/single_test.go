package xmlstream

import "testing"

func TestParseStanza(t *testing.T) {
	m := NewElement(NSClient, "message")
	m.SetAttr("to", "bob@example.com")
	m.AddChild(NewElement(NSClient, "body")).AddText("a < b & c")
	m.AddChild(NewElement("urn:example", "x")).SetAttr("k", "v")
	b := m.AppendXML(nil, NSClient)
	el, err := ParseStanza(b, NSClient)
	if err != nil {
		t.Fatal(err)
	}
	if el.Space != NSClient || el.Child(NSClient, "body").Text() != "a < b & c" || el.Child("urn:example", "x").Attr("k") != "v" {
		t.Fatalf("got %s", el)
	}
	for _, bad := range []string{"", "<message>", "<message/><message/>x", "text"} {
		if _, err := ParseStanza([]byte(bad), NSClient); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
