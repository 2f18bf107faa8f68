package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// TestSendMessage checks the message the second form of send builds.
func TestSendMessage(t *testing.T) {
	for _, c := range []struct {
		name, body         string
		typ, text, jsonTxt string
	}{
		{"body", `{"from": "dir-alice@localhost", "to": "bob@localhost", "type": "chat", "body": "a < b & c"}`,
			"chat", "a < b & c", ""},
		{"json", `{"from": "dir-alice@localhost", "to": "bob@localhost", "json": {"op": "lookup", "name": "<carol>", "n": [1, 2.5, null]}}`,
			"", "", `{"op":"lookup","name":"<carol>","n":[1,2.5,null]}`},
		{"both", `{"from": "dir-alice@localhost/directory", "to": "room@conference.localhost", "type": "groupchat", "body": "see data", "json": "just a string"}`,
			"groupchat", "see data", `"just a string"`},
		{"json number", `{"from": "dir-alice@localhost", "to": "bob@localhost", "type": "headline", "json": 42}`,
			"headline", "", `42`},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := newTestAPI(t, nil)
			w := do(a, serviceToken, "POST", "/api/v1/send", c.body)
			if w.Code != 204 || len(b.sent) != 1 {
				t.Fatalf("status %d, %d sent: %s", w.Code, len(b.sent), w.Body)
			}
			el := b.sent[0]
			if el.Space != xmlstream.NSClient || el.Local != "message" {
				t.Fatalf("sent %s", el)
			}
			if el.Attr("to") == "" || el.Attr("id") == "" || el.Attr("type") != c.typ || el.HasAttr("from") {
				t.Errorf("attributes of %s", el)
			}
			if body := el.Child(xmlstream.NSClient, "body"); (body == nil) != (c.text == "") || (body != nil && body.Text() != c.text) {
				t.Errorf("body of %s", el)
			}
			j := el.Child(NSJSON, "json")
			if (j == nil) != (c.jsonTxt == "") {
				t.Fatalf("json container of %s", el)
			}
			if j != nil && (j.Text() != c.jsonTxt || !json.Valid([]byte(j.Text()))) {
				t.Errorf("json %q, want %q", j.Text(), c.jsonTxt)
			}
			// What is sent survives serialization as it is.
			again, err := xmlstream.ParseStanza(el.AppendXML(nil, xmlstream.NSClient), xmlstream.NSClient)
			if err != nil || again.String() != el.String() {
				t.Errorf("round trip: %v\n%s\n%s", err, el, again)
			}
		})
	}
}

// TestSendIDs checks that each message gets its own id.
func TestSendIDs(t *testing.T) {
	a, b := newTestAPI(t, nil)
	for range 2 {
		do(a, serviceToken, "POST", "/api/v1/send", `{"from": "dir-alice@localhost", "to": "bob@localhost", "body": "x"}`)
	}
	if len(b.sent) != 2 || b.sent[0].Attr("id") == b.sent[1].Attr("id") {
		t.Errorf("ids of %v", b.sent)
	}
}

// TestSendStanza checks that a stanza given as XML is sent as parsed,
// payloads of other namespaces and surrounding space included.
func TestSendStanza(t *testing.T) {
	a, b := newTestAPI(t, nil)
	body := `{"from": "dir-alice@localhost", "stanza": "\n <message xmlns='jabber:client' to='bob@localhost' id='m1'><body>hi</body><x:markable xmlns:x='urn:xmpp:chat-markers:0'/></message>\n"}`
	if w := do(a, serviceToken, "POST", "/api/v1/send", body); w.Code != 204 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	el := b.sent[0]
	if el.Attr("id") != "m1" || el.Child("urn:xmpp:chat-markers:0", "markable") == nil || el.Child(xmlstream.NSClient, "body").Text() != "hi" {
		t.Errorf("sent %s", el)
	}
}
