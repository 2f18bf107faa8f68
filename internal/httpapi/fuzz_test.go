package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/appservice"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// FuzzRequestBody sends arbitrary bodies to the calls that take one
// (kind/2 picks the call), as the admin (even kinds) or as a service (odd
// kinds). Whatever the body,
// the answer is 204 with the backend called once, or an error naming
// what is wrong with the backend not called; and a stanza that is sent
// survives serialization unchanged.
func FuzzRequestBody(f *testing.F) {
	routes := []struct{ method, path string }{
		{"POST", "/api/v1/send"},
		{"PUT", "/api/v1/users/dir-alice@localhost/presence"},
		{"POST", "/api/v1/users"},
		{"PUT", "/api/v1/users/dir-alice@localhost/roster/bob@localhost"},
		{"POST", "/api/v1/rooms"},
		{"PUT", "/api/v1/rooms/support@conference.localhost/affiliations/bob@localhost"},
	}
	svc := testService(f, "directory", serviceToken)
	for i, body := range []string{
		sendStanza,
		`{"available": true, "show": "chat", "status": "here", "priority": -3}`,
		`{"jid": "dir-bob@localhost", "password": "pw"}`,
		`{"name": "Bob", "groups": ["Friends", "Work"], "subscription": "to"}`,
		`{"jid": "support@conference.localhost", "owner": "dir-alice@localhost", "config": {"muc#roomconfig_persistentroom": ["1"]}}`,
		`{"affiliation": "admin", "reason": "helps"}`,
	} {
		f.Add(uint8(2*i), []byte(body))
		f.Add(uint8(2*i+1), []byte(body))
	}
	f.Add(uint8(0), []byte(`{"from": "dir-alice@localhost", "to": "bob@localhost", "type": "chat", "body": "hi", "json": {"a": [1, {"b": null}]}}`))
	f.Add(uint8(1), []byte(`{"from": "dir-alice@localhost/x", "stanza": "<iq type='get' id='1' to='localhost'><query xmlns='jabber:iq:version'/></iq>"}`))
	f.Add(uint8(0), []byte(`{"from": "localhost", "stanza": "<presence><status>a &amp; b</status></presence>"}`))
	f.Add(uint8(2), []byte(`{"available": true} x`))
	f.Add(uint8(4), []byte(`{"jid": 1}`))
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		rt := routes[int(kind/2)%len(routes)]
		token := adminToken
		if kind%2 == 1 {
			token = serviceToken
		}
		a, b := newTestAPI(t, func(c *Config) { c.Services = []*appservice.Service{svc} })
		w := do(a, token, rt.method, rt.path, string(body))
		calls := b.Calls()
		switch w.Code {
		case http.StatusNoContent:
			if len(calls) != 1 {
				t.Fatalf("204 with calls %q", calls)
			}
		case http.StatusBadRequest, http.StatusForbidden:
			if len(calls) != 0 {
				t.Fatalf("%d with calls %q", w.Code, calls)
			}
			var e errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatalf("error answer %q: %v", w.Body, err)
			}
			if field, _, ok := strings.Cut(e.Error, ": "); w.Code == http.StatusBadRequest && (!ok || field == "") {
				t.Fatalf("400 naming no field: %q", e.Error)
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if token == adminToken && w.Code == http.StatusForbidden {
			t.Fatalf("admin refused: %s", w.Body)
		}
		for _, el := range b.sent {
			checkSent(t, el)
		}
	})
}

// checkSent checks that a stanza the API sent is one the server can
// route and that serializing it loses nothing.
func checkSent(t *testing.T, el *xmlstream.Element) {
	t.Helper()
	if el.Space != xmlstream.NSClient || (el.Local != stanza.Message && el.Local != stanza.Presence && el.Local != stanza.IQ) {
		t.Fatalf("sent %s", el)
	}
	b := el.AppendXML(nil, xmlstream.NSClient)
	again, err := xmlstream.ParseStanza(b, xmlstream.NSClient)
	if err != nil {
		t.Fatalf("sent %q, which does not parse: %v", b, err)
	}
	if again.String() != el.String() {
		t.Fatalf("sent %s, which parses as %s", el, again)
	}
	if j := el.Child(NSJSON, "json"); j != nil && !json.Valid([]byte(j.Text())) {
		t.Fatalf("json container %q", j.Text())
	}
}
