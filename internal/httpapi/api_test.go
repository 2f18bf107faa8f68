package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/appservice"
)

const (
	adminToken   = "admin-token-0123456789"
	serviceToken = "directory-token-0123456789"
	otherToken   = "other-token-0123456789"
)

// testService is the service of docs/appservices.md: it acts as
// dir-*@localhost, watches everyone at localhost and owns
// support@conference.localhost.
func testService(t testing.TB, name, token string) *appservice.Service {
	t.Helper()
	s, err := appservice.Compile(appservice.Config{
		Name:        name,
		URL:         "http://127.0.0.1:9000",
		Token:       token,
		ServerToken: name + "-server-token-0123456789",
		Users:       []string{`^dir-[a-z]+@localhost$`},
		Watch:       []string{`^[^@]+@localhost$`},
		Rooms:       []string{`^support@conference\.localhost$`},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newTestAPI builds an API with the admin token and the service of
// testService over a fake backend; edit changes the configuration first.
func newTestAPI(t testing.TB, edit func(*Config)) (*API, *fakeBackend) {
	t.Helper()
	cfg := Config{AdminToken: adminToken, Services: []*appservice.Service{testService(t, "directory", serviceToken)}}
	if edit != nil {
		edit(&cfg)
	}
	b := &fakeBackend{}
	a, err := New(cfg, b, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// do makes one request of a, with token unless it is empty.
func do(a http.Handler, token, method, path, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, r)
	return w
}

// errorOf returns the message of an error answer, failing the test when
// the answer is not one.
func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var e struct{ Error string }
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error: %q (%v)", w.Body.String(), err)
	}
	return e.Error
}

// apiCase is one request and what it must lead to: the status, the
// backend's one call (none when empty), and text the answer must hold.
type apiCase struct {
	name               string
	method, path, body string
	status             int
	call               string
	answer             string
}

func runCases(t *testing.T, token string, cases []apiCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := newTestAPI(t, nil)
			w := do(a, token, c.method, c.path, c.body)
			if w.Code != c.status {
				t.Fatalf("%s %s: status %d, want %d: %s", c.method, c.path, w.Code, c.status, w.Body)
			}
			calls := b.Calls()
			switch {
			case c.call == "" && len(calls) != 0:
				t.Errorf("backend called: %q", calls)
			case c.call != "" && (len(calls) != 1 || calls[0] != c.call):
				t.Errorf("backend calls %q, want [%q]", calls, c.call)
			}
			switch {
			case w.Code == http.StatusNoContent:
				if w.Body.Len() != 0 {
					t.Errorf("204 with a body: %q", w.Body)
				}
			case w.Code >= 400:
				if msg := errorOf(t, w); !strings.Contains(msg, c.answer) {
					t.Errorf("error %q, want it to hold %q", msg, c.answer)
				}
			default:
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				if !json.Valid(w.Body.Bytes()) || !strings.Contains(w.Body.String(), c.answer) {
					t.Errorf("answer %q, want JSON holding %q", w.Body, c.answer)
				}
			}
		})
	}
}

const sendStanza = `{"from": "dir-alice@localhost", "stanza": "<message to='bob@localhost' type='chat'><body>hi</body></message>"}`

func TestAdmin(t *testing.T) {
	runCases(t, adminToken, []apiCase{
		{"send", "POST", "/api/v1/send", sendStanza, 204,
			"Send(dir-alice@localhost, <message xmlns='jabber:client' to='bob@localhost' type='chat'><body>hi</body></message>)", ""},
		{"send as anyone", "POST", "/api/v1/send", `{"from": "alice@localhost/phone", "stanza": "<presence/>"}`, 204,
			"Send(alice@localhost/phone, <presence xmlns='jabber:client'/>)", ""},
		{"send as a domain", "POST", "/api/v1/send", `{"from": "localhost", "stanza": "<message to='bob@localhost'><body>maintenance at noon</body></message>"}`, 204,
			"Send(localhost, <message xmlns='jabber:client' to='bob@localhost'><body>maintenance at noon</body></message>)", ""},
		{"set presence", "PUT", "/api/v1/users/alice@localhost/presence", `{"available": true, "show": "away", "status": "out", "priority": 5}`, 204,
			"SetPresence(, alice@localhost, {Available:true Show:away Status:out Priority:5})", ""},
		{"set presence unavailable", "PUT", "/api/v1/users/alice@localhost/presence", `{"available": false}`, 204,
			"SetPresence(, alice@localhost, {Available:false Show: Status: Priority:0})", ""},
		{"presence", "GET", "/api/v1/users/alice@localhost/presence", "", 200,
			"Presence(alice@localhost)", `{"presence":[{"resource":"phone","available":true,"show":"away"}]}`},
		{"escaped JID", "GET", "/api/v1/users/alice%40localhost/presence", "", 200,
			"Presence(alice@localhost)", `"presence"`},
		{"JID made canonical", "GET", "/api/v1/users/Alice@LocalHost/presence", "", 200,
			"Presence(alice@localhost)", `"presence"`},
		{"create user", "POST", "/api/v1/users", `{"jid": "alice@localhost", "password": "secret"}`, 204,
			"CreateUser(alice@localhost, secret)", ""},
		{"create a service's user", "POST", "/api/v1/users", `{"jid": "dir-bob@localhost"}`, 204,
			"CreateUser(dir-bob@localhost, )", ""},
		{"delete user", "DELETE", "/api/v1/users/alice@localhost", "", 204,
			"DeleteUser(alice@localhost)", ""},
		{"list users", "GET", "/api/v1/users?domain=localhost", "", 200,
			"Users(localhost)", `{"users":["alice@localhost"]}`},
		{"roster", "GET", "/api/v1/users/alice@localhost/roster", "", 200,
			"Roster(alice@localhost)", `{"roster":[{"jid":"bob@localhost","subscription":"both","groups":["Friends"]}]}`},
		{"set roster item", "PUT", "/api/v1/users/alice@localhost/roster/bob@localhost", `{"name": "Bob", "groups": ["Friends"], "subscription": "both"}`, 204,
			"SetRosterItem(alice@localhost, {JID:bob@localhost Name:Bob Subscription:both Ask:false Groups:[Friends]})", ""},
		{"remove roster item", "DELETE", "/api/v1/users/alice@localhost/roster/bob@localhost", "", 204,
			"SetRosterItem(alice@localhost, {JID:bob@localhost Name: Subscription:remove Ask:false Groups:[]})", ""},
		{"all sessions", "GET", "/api/v1/sessions", "", 200,
			"Sessions()", `{"sessions":[{"jid":"alice@localhost/phone","kind":"c2s","available":true}]}`},
		{"sessions of a user", "GET", "/api/v1/sessions?user=alice@localhost", "", 200,
			"Sessions(alice@localhost)", `"sessions"`},
		{"end session", "DELETE", "/api/v1/sessions/alice@localhost%2Fphone?reason=bye", "", 204,
			"EndSession(alice@localhost/phone, bye)", ""},
		{"end session, slash unescaped", "DELETE", "/api/v1/sessions/alice@localhost/phone/2", "", 204,
			"EndSession(alice@localhost/phone/2, )", ""},
		{"create room", "POST", "/api/v1/rooms", `{"jid": "lounge@conference.localhost", "owner": "alice@localhost", "config": {"muc#roomconfig_roomname": ["Lounge"]}}`, 204,
			"CreateRoom(lounge@conference.localhost, alice@localhost, map[muc#roomconfig_roomname:[Lounge]])", ""},
		{"set affiliation", "PUT", "/api/v1/rooms/lounge@conference.localhost/affiliations/bob@localhost", `{"affiliation": "member", "reason": "welcome"}`, 204,
			"SetAffiliation(lounge@conference.localhost, bob@localhost, member, welcome)", ""},
		{"list rooms", "GET", "/api/v1/rooms?service=conference.localhost", "", 200,
			"Rooms(conference.localhost)", `{"rooms":[{"jid":"support@conference.localhost","occupants":2,"public":false},{"jid":"lounge@conference.localhost","occupants":0,"public":true}]}`},
		{"components", "GET", "/api/v1/components", "", 200,
			"Components()", `{"components":[{"domain":"conference.localhost","kind":"muc","connected":true}]}`},
		{"s2s", "GET", "/api/v1/s2s", "", 200,
			"S2S()", `{"s2s":[{"local":"localhost","remote":"example.org","direction":"out","auth":"dialback"}]}`},
		{"reload", "POST", "/api/v1/reload", "", 204, "Reload()", ""},
	})
}

func TestServiceInNamespace(t *testing.T) {
	runCases(t, serviceToken, []apiCase{
		{"send", "POST", "/api/v1/send", sendStanza, 204,
			"Send(dir-alice@localhost, <message xmlns='jabber:client' to='bob@localhost' type='chat'><body>hi</body></message>)", ""},
		{"send from a full JID", "POST", "/api/v1/send", `{"from": "dir-alice@localhost/directory", "stanza": "<iq type='result' id='q1' to='bob@localhost/phone' from='dir-alice@localhost/directory'/>"}`, 204,
			"Send(dir-alice@localhost/directory, <iq xmlns='jabber:client' type='result' id='q1' to='bob@localhost/phone' from='dir-alice@localhost/directory'/>)", ""},
		{"set presence", "PUT", "/api/v1/users/dir-alice@localhost/presence", `{"available": true}`, 204,
			"SetPresence(directory, dir-alice@localhost, {Available:true Show: Status: Priority:0})", ""},
		{"presence of a watched user", "GET", "/api/v1/users/carol@localhost/presence", "", 200,
			"Presence(carol@localhost)", `"presence"`},
		{"create user", "POST", "/api/v1/users", `{"jid": "dir-bob@localhost"}`, 204,
			"CreateUser(dir-bob@localhost, )", ""},
		{"create user with a password", "POST", "/api/v1/users", `{"jid": "dir-bob@localhost", "password": "pw"}`, 204,
			"CreateUser(dir-bob@localhost, pw)", ""},
		{"delete user", "DELETE", "/api/v1/users/dir-bob@localhost", "", 204,
			"DeleteUser(dir-bob@localhost)", ""},
		{"roster of a watched user", "GET", "/api/v1/users/carol@localhost/roster", "", 200,
			"Roster(carol@localhost)", `"roster"`},
		{"friend watched users", "PUT", "/api/v1/users/carol@localhost/roster/dave@localhost", `{"subscription": "both"}`, 204,
			"SetRosterItem(carol@localhost, {JID:dave@localhost Name: Subscription:both Ask:false Groups:[]})", ""},
		{"unfriend watched users", "DELETE", "/api/v1/users/carol@localhost/roster/dave@localhost", "", 204,
			"SetRosterItem(carol@localhost, {JID:dave@localhost Name: Subscription:remove Ask:false Groups:[]})", ""},
		{"roster of its user", "GET", "/api/v1/users/dir-alice@localhost/roster", "", 200,
			"Roster(dir-alice@localhost)", `"roster"`},
		{"sessions of a watched user", "GET", "/api/v1/sessions?user=carol@localhost", "", 200,
			"Sessions(carol@localhost)", `"sessions"`},
		{"create its room", "POST", "/api/v1/rooms", `{"jid": "support@conference.localhost", "owner": "dir-alice@localhost"}`, 204,
			"CreateRoom(support@conference.localhost, dir-alice@localhost, map[])", ""},
		{"affiliation in its room", "PUT", "/api/v1/rooms/support@conference.localhost/affiliations/carol@localhost", `{"affiliation": "outcast"}`, 204,
			"SetAffiliation(support@conference.localhost, carol@localhost, outcast, )", ""},
		{"its rooms only", "GET", "/api/v1/rooms?service=conference.localhost", "", 200,
			"Rooms(conference.localhost)", `{"rooms":[{"jid":"support@conference.localhost","occupants":2,"public":false}]}`},
	})
}

func TestServiceOutsideNamespace(t *testing.T) {
	runCases(t, serviceToken, []apiCase{
		{"send as another user", "POST", "/api/v1/send", `{"from": "alice@localhost", "stanza": "<message to='bob@localhost'/>"}`, 403, "", "alice@localhost is not a user of appservice directory"},
		{"send as a watched user's session", "POST", "/api/v1/send", `{"from": "alice@localhost/phone", "to": "bob@localhost", "body": "hi"}`, 403, "", "not a user"},
		{"send as a domain", "POST", "/api/v1/send", `{"from": "localhost", "to": "bob@localhost", "body": "hi"}`, 403, "", "only the admin sends as a domain"},
		{"send as a user elsewhere", "POST", "/api/v1/send", `{"from": "dir-alice@example.org", "to": "bob@localhost", "body": "hi"}`, 403, "", "not a user"},
		{"set another's presence", "PUT", "/api/v1/users/alice@localhost/presence", `{"available": true}`, 403, "", "not a user"},
		{"presence of an unwatched user", "GET", "/api/v1/users/eve@example.org/presence", "", 403, "", "does not watch eve@example.org"},
		{"create another user", "POST", "/api/v1/users", `{"jid": "alice@localhost", "password": "pw"}`, 403, "", "not a user"},
		{"delete another user", "DELETE", "/api/v1/users/alice@localhost", "", 403, "", "not a user"},
		{"list users", "GET", "/api/v1/users?domain=localhost", "", 403, "", "only the admin"},
		{"roster of an unwatched user", "GET", "/api/v1/users/eve@example.org/roster", "", 403, "", "does not watch"},
		{"edit an unwatched roster", "PUT", "/api/v1/users/eve@example.org/roster/bob@localhost", `{"subscription": "both"}`, 403, "", "does not watch"},
		{"remove from an unwatched roster", "DELETE", "/api/v1/users/eve@example.org/roster/bob@localhost", "", 403, "", "does not watch"},
		{"all sessions", "GET", "/api/v1/sessions", "", 403, "", "only the admin"},
		{"sessions of an unwatched user", "GET", "/api/v1/sessions?user=eve@example.org", "", 403, "", "does not watch"},
		{"end session", "DELETE", "/api/v1/sessions/dir-alice@localhost%2Fdirectory", "", 403, "", "only the admin"},
		{"create another room", "POST", "/api/v1/rooms", `{"jid": "lounge@conference.localhost", "owner": "dir-alice@localhost"}`, 403, "", "lounge@conference.localhost is not a room of appservice directory"},
		{"affiliation in another room", "PUT", "/api/v1/rooms/lounge@conference.localhost/affiliations/bob@localhost", `{"affiliation": "owner"}`, 403, "", "not a room"},
		{"components", "GET", "/api/v1/components", "", 403, "", "only the admin"},
		{"s2s", "GET", "/api/v1/s2s", "", 403, "", "only the admin"},
		{"reload", "POST", "/api/v1/reload", "", 403, "", "only the admin"},
	})
}

// samplePath fills the wildcards of a route's path.
func samplePath(p string) string {
	r := strings.NewReplacer("{jid}", "dir-alice@localhost", "{jid...}", "dir-alice@localhost%2Fdirectory",
		"{contact}", "bob@localhost", "{user}", "bob@localhost")
	return r.Replace(p)
}

// sampleBody is a body every route that takes one would accept from the
// admin.
func sampleBody(rt route) string {
	switch {
	case rt.method == "GET" || rt.method == "DELETE":
		return ""
	case rt.path == "/api/v1/send":
		return `{"from": "dir-alice@localhost", "to": "bob@localhost", "body": "hi"}`
	case strings.HasSuffix(rt.path, "/presence"):
		return `{"available": true}`
	case rt.path == "/api/v1/users":
		return `{"jid": "dir-bob@localhost"}`
	case strings.Contains(rt.path, "/roster/"):
		return `{"subscription": "both"}`
	case rt.path == "/api/v1/rooms":
		return `{"jid": "support@conference.localhost", "owner": "dir-alice@localhost"}`
	case strings.Contains(rt.path, "/affiliations/"):
		return `{"affiliation": "member"}`
	case rt.path == "/api/v1/login":
		return `{"jid": "root@localhost", "password": "right"}`
	case strings.HasSuffix(rt.path, "/password"):
		return `{"password": "new"}`
	}
	return ""
}

func sampleQuery(rt route) string {
	switch rt.path {
	case "/api/v1/users":
		return "?domain=localhost"
	case "/api/v1/rooms":
		return "?service=conference.localhost"
	}
	return ""
}

func TestUnauthenticated(t *testing.T) {
	a, b := newTestAPI(t, nil)
	for _, rt := range a.routes() {
		if rt.public {
			continue
		}
		path := samplePath(rt.path) + sampleQuery(rt)
		for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong-token-0123456789", "Basic " + adminToken, "Bearer " + adminToken + "x", adminToken} {
			r := httptest.NewRequest(rt.method, path, strings.NewReader(sampleBody(rt)))
			if auth != "" {
				r.Header.Set("Authorization", auth)
			}
			w := httptest.NewRecorder()
			a.ServeHTTP(w, r)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("%s %s with %q: status %d, want 401", rt.method, path, auth, w.Code)
				continue
			}
			if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s: no WWW-Authenticate", rt.method, path)
			}
			errorOf(t, w)
		}
	}
	if calls := b.Calls(); len(calls) != 0 {
		t.Errorf("backend called: %q", calls)
	}
}

// TestEveryRoute checks that the admin reaches the backend through every
// route, and that the bearer scheme's name is case-insensitive.
func TestEveryRoute(t *testing.T) {
	a, b := newTestAPI(t, nil)
	n := 0
	for _, rt := range a.routes() {
		// Logging out asks the backend nothing (TestAdminLogin).
		if rt.public || rt.path == "/api/v1/login" {
			continue
		}
		n++
		path := samplePath(rt.path) + sampleQuery(rt)
		r := httptest.NewRequest(rt.method, path, strings.NewReader(sampleBody(rt)))
		r.Header.Set("Authorization", "bearer "+adminToken)
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		want := http.StatusNoContent
		if rt.method == "GET" {
			want = http.StatusOK
		}
		if w.Code != want {
			t.Errorf("%s %s: status %d, want %d: %s", rt.method, path, w.Code, want, w.Body)
		}
	}
	if calls := b.Calls(); len(calls) != n {
		t.Errorf("%d backend calls for %d routes: %q", len(calls), n, calls)
	}
}

func TestAdminDisabled(t *testing.T) {
	a, b := newTestAPI(t, func(c *Config) { c.AdminToken = "" })
	for _, tok := range []string{"", adminToken} {
		if w := do(a, tok, "GET", "/api/v1/s2s", ""); w.Code != http.StatusUnauthorized {
			t.Errorf("token %q: status %d, want 401", tok, w.Code)
		}
	}
	if w := do(a, serviceToken, "GET", "/api/v1/users/dir-alice@localhost/roster", ""); w.Code != http.StatusOK {
		t.Errorf("service: status %d: %s", w.Code, w.Body)
	}
	if calls := b.Calls(); len(calls) != 1 {
		t.Errorf("backend calls %q", calls)
	}
}

func TestTwoServices(t *testing.T) {
	a, b := newTestAPI(t, func(c *Config) {
		other, err := appservice.Compile(appservice.Config{Name: "other", URL: "http://127.0.0.1:9001", Token: otherToken,
			ServerToken: "other-server-token-0123456789", Users: []string{`^other-.*@localhost$`}})
		if err != nil {
			t.Fatal(err)
		}
		c.Services = append(c.Services, other)
	})
	if w := do(a, otherToken, "PUT", "/api/v1/users/other-x@localhost/presence", `{"available": true}`); w.Code != http.StatusNoContent {
		t.Errorf("status %d: %s", w.Code, w.Body)
	}
	if w := do(a, otherToken, "PUT", "/api/v1/users/dir-alice@localhost/presence", `{"available": true}`); w.Code != http.StatusForbidden {
		t.Errorf("another service's user: status %d: %s", w.Code, w.Body)
	}
	want := []string{"SetPresence(other, other-x@localhost, {Available:true Show: Status: Priority:0})"}
	if calls := b.Calls(); !slices.Equal(calls, want) {
		t.Errorf("calls %q, want %q", calls, want)
	}
}

func TestNew(t *testing.T) {
	svc := testService(t, "directory", serviceToken)
	for _, c := range []struct {
		name string
		cfg  Config
		b    Backend
		err  string
	}{
		{"no backend", Config{}, nil, "no backend"},
		{"nil service", Config{Services: []*appservice.Service{nil}}, &fakeBackend{}, "service 0 is nil"},
		{"admin token of a service", Config{AdminToken: serviceToken, Services: []*appservice.Service{svc}}, &fakeBackend{}, "the same as admin_token's"},
		{"two services, one token", Config{Services: []*appservice.Service{svc, testService(t, "copy", serviceToken)}}, &fakeBackend{}, "appservice copy: token: the same as appservice directory's"},
	} {
		if _, err := New(c.cfg, c.b, nil); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.err)
		}
	}
	if _, err := New(Config{}, &fakeBackend{}, nil); err != nil {
		t.Errorf("empty config: %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	runCases(t, adminToken, []apiCase{
		{"empty body", "POST", "/api/v1/send", "", 400, "", "body: empty"},
		{"not an object", "POST", "/api/v1/send", `["from"]`, 400, "", "body: want an object"},
		{"cut short", "POST", "/api/v1/send", `{"from": "a@b"`, 400, "", "body: the JSON ends too soon"},
		{"malformed", "POST", "/api/v1/send", `{"from" "a@b"}`, 400, "", "body: malformed JSON at offset 9"},
		{"data after", "POST", "/api/v1/send", `{"from": "a@b", "to": "c@d", "body": "x"} {}`, 400, "", "body: data after the JSON object"},
		{"garbage after", "POST", "/api/v1/send", `{"from": "a@b", "to": "c@d", "body": "x"}]`, 400, "", "body: data after the JSON object"},
		{"unknown field", "POST", "/api/v1/send", `{"from": "a@b", "form": "x"}`, 400, "", "form: unknown field"},
		{"wrong type", "POST", "/api/v1/send", `{"from": 1}`, 400, "", "from: want a string, not a JSON number"},
		{"missing from", "POST", "/api/v1/send", `{"to": "bob@localhost", "body": "hi"}`, 400, "", "from: required"},
		{"malformed from", "POST", "/api/v1/send", `{"from": "a@@b", "to": "bob@localhost", "body": "hi"}`, 400, "", `from: "a@@b" is not a JID`},
		{"missing to", "POST", "/api/v1/send", `{"from": "a@b", "body": "hi"}`, 400, "", "to: required"},
		{"malformed to", "POST", "/api/v1/send", `{"from": "a@b", "to": "@b", "body": "hi"}`, 400, "", `to: "@b" is not a JID`},
		{"no body", "POST", "/api/v1/send", `{"from": "a@b", "to": "c@d"}`, 400, "", "body: required, unless json is given"},
		{"null json", "POST", "/api/v1/send", `{"from": "a@b", "to": "c@d", "json": null}`, 400, "", "body: required"},
		{"message type", "POST", "/api/v1/send", `{"from": "a@b", "to": "c@d", "type": "error", "body": "x"}`, 400, "", `type: "error" is not one of chat, normal, groupchat, headline`},
		{"control character", "POST", "/api/v1/send", `{"from": "a@b", "to": "c@d", "body": "a\u0000b"}`, 400, "", "body: U+0000 at byte 1 cannot be carried by XML"},
		{"both forms", "POST", "/api/v1/send", `{"from": "a@b", "to": "c@d", "stanza": "<presence/>"}`, 400, "", "stanza: give either stanza, or to"},
		{"stanza not XML", "POST", "/api/v1/send", `{"from": "a@b", "stanza": "<message>"}`, 400, "", "stanza: not a well-formed XML element"},
		{"two stanzas", "POST", "/api/v1/send", `{"from": "a@b", "stanza": "<presence/><presence/>"}`, 400, "", "stanza: not a well-formed XML element"},
		{"stanza kind", "POST", "/api/v1/send", `{"from": "a@b", "stanza": "<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>"}`, 400, "", "stanza: namespace"},
		{"not a stanza", "POST", "/api/v1/send", `{"from": "a@b", "stanza": "<auth/>"}`, 400, "", "stanza: <auth/> is not a message, presence or iq"},
		{"stanza namespace", "POST", "/api/v1/send", `{"from": "a@b", "stanza": "<message xmlns='urn:x'/>"}`, 400, "", `stanza: namespace "urn:x"`},
		{"iq without id", "POST", "/api/v1/send", `{"from": "a@b", "stanza": "<iq type='get' to='c@d'><ping xmlns='urn:xmpp:ping'/></iq>"}`, 400, "", "stanza: an iq needs an id"},
		{"iq type", "POST", "/api/v1/send", `{"from": "a@b", "stanza": "<iq type='put' id='1'/>"}`, 400, "", `stanza: iq type "put"`},
		{"stanza to", "POST", "/api/v1/send", `{"from": "a@b", "stanza": "<message to='@x'/>"}`, 400, "", `stanza: to="@x" is not a JID`},
		{"stanza from", "POST", "/api/v1/send", `{"from": "a@b", "stanza": "<message from='c@d'/>"}`, 400, "", `stanza: from="c@d" is not the request's from "a@b"`},
		{"stanza too large", "POST", "/api/v1/send", `{"from": "a@b", "stanza": "<message><body>` + strings.Repeat("x", 300<<10) + `</body></message>"}`, 400, "", "stanza: larger than 262144 bytes"},
		{"message too large", "POST", "/api/v1/send", `{"from": "a@b", "to": "c@d", "body": "` + strings.Repeat("x", 300<<10) + `"}`, 400, "", "body: the message would be"},
		{"missing available", "PUT", "/api/v1/users/a@b/presence", `{"show": "away"}`, 400, "", "available: required"},
		{"show", "PUT", "/api/v1/users/a@b/presence", `{"available": true, "show": "busy"}`, 400, "", `show: "busy" is not one of away, chat, dnd, xa`},
		{"show unavailable", "PUT", "/api/v1/users/a@b/presence", `{"available": false, "show": "dnd"}`, 400, "", "show: only with available: true"},
		{"priority", "PUT", "/api/v1/users/a@b/presence", `{"available": true, "priority": 128}`, 400, "", "priority: 128 is not within -128..127"},
		{"priority type", "PUT", "/api/v1/users/a@b/presence", `{"available": true, "priority": 1.5}`, 400, "", "priority: want an integer"},
		{"path JID", "PUT", "/api/v1/users/a@@b/presence", `{"available": true}`, 400, "", `{jid}: "a@@b" is not a JID`},
		{"path JID a domain", "GET", "/api/v1/users/localhost/presence", "", 400, "", `{jid}: "localhost" is not a bare JID local@domain`},
		{"path JID full", "GET", "/api/v1/users/a@b%2Fr/roster", "", 400, "", `{jid}: "a@b/r" is not a bare JID`},
		{"missing jid", "POST", "/api/v1/users", `{"password": "x"}`, 400, "", "jid: required"},
		{"missing password", "POST", "/api/v1/users", `{"jid": "alice@localhost"}`, 400, "", "password: required for alice@localhost"},
		{"missing domain", "GET", "/api/v1/users", "", 400, "", "?domain: required"},
		{"domain a user", "GET", "/api/v1/users?domain=a@b", "", 400, "", `?domain: "a@b" is not a domain`},
		{"subscription missing", "PUT", "/api/v1/users/a@b/roster/c@d", `{"name": "C"}`, 400, "", "subscription: required"},
		{"subscription remove", "PUT", "/api/v1/users/a@b/roster/c@d", `{"subscription": "remove"}`, 400, "", `subscription: "remove" is not one of none, to, from, both`},
		{"ask", "PUT", "/api/v1/users/a@b/roster/c@d", `{"subscription": "none", "ask": true}`, 400, "", "ask: unknown field"},
		{"empty group", "PUT", "/api/v1/users/a@b/roster/c@d", `{"subscription": "none", "groups": ["x", ""]}`, 400, "", "groups: group 1 is empty"},
		{"groups type", "PUT", "/api/v1/users/a@b/roster/c@d", `{"subscription": "none", "groups": "x"}`, 400, "", "groups: want an array"},
		{"contact", "PUT", "/api/v1/users/a@b/roster/c@d%2Fr", `{"subscription": "none"}`, 400, "", `{contact}: "c@d/r" has a resource`},
		{"sessions user", "GET", "/api/v1/sessions?user=x@", "", 400, "", `?user: "x@" is not a JID`},
		{"end a bare JID", "DELETE", "/api/v1/sessions/a@b", "", 400, "", `{jid}: "a@b" is not a session's full JID`},
		{"room jid", "POST", "/api/v1/rooms", `{"jid": "conference.localhost", "owner": "a@b"}`, 400, "", `jid: "conference.localhost" is not a bare JID`},
		{"room owner", "POST", "/api/v1/rooms", `{"jid": "r@conference.localhost"}`, 400, "", "owner: required"},
		{"room config", "POST", "/api/v1/rooms", `{"jid": "r@conference.localhost", "owner": "a@b", "config": {"x": "1"}}`, 400, "", "config: want an array"},
		{"affiliation missing", "PUT", "/api/v1/rooms/r@c/affiliations/a@b", `{"reason": "x"}`, 400, "", "affiliation: required"},
		{"affiliation", "PUT", "/api/v1/rooms/r@c/affiliations/a@b", `{"affiliation": "king"}`, 400, "", `affiliation: "king" is not one of owner, admin, member, outcast, none`},
		{"affiliated", "PUT", "/api/v1/rooms/r@c/affiliations/a@b%2Fr", `{"affiliation": "member"}`, 400, "", `{user}: "a@b/r" has a resource`},
		{"rooms service", "GET", "/api/v1/rooms", "", 400, "", "?service: required"},
		{"unknown call", "GET", "/api/v1/nothing", "", 404, "", "/api/v1/nothing: no such call"},
		{"outside the API", "GET", "/", "", 404, "", "no such call"},
		{"method", "PATCH", "/api/v1/users", "", 405, "", "method not allowed (allowed: GET, HEAD, POST)"},
	})
}

func TestMethodNotAllowed(t *testing.T) {
	a, _ := newTestAPI(t, nil)
	w := do(a, adminToken, "POST", "/api/v1/users/alice@localhost/roster/bob@localhost", "{}")
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "DELETE, PUT" {
		t.Errorf("status %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
	errorOf(t, w)
}

func TestTooLarge(t *testing.T) {
	big := `{"from": "dir-alice@localhost", "to": "bob@localhost", "body": "` + strings.Repeat("x", DefaultMaxBody) + `"}`
	a, b := newTestAPI(t, nil)
	w := do(a, adminToken, "POST", "/api/v1/send", big)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", w.Code)
	}
	if msg := errorOf(t, w); msg != "body: larger than 1048576 bytes" {
		t.Errorf("error %q", msg)
	}

	small, b2 := newTestAPI(t, func(c *Config) { c.MaxBody = 64 })
	body := `{"from": "dir-alice@localhost", "to": "bob@localhost", "body": "hi"}`
	if w := do(small, adminToken, "POST", "/api/v1/send", body); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("over MaxBody: status %d, want 413", w.Code)
	}
	// The limit applies to what follows the object too.
	body = `{"available": true}` + strings.Repeat(" ", 64)
	if w := do(small, adminToken, "PUT", "/api/v1/users/dir-alice@localhost/presence", body); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("spaces over MaxBody: status %d, want 413", w.Code)
	}
	if calls := append(b.Calls(), b2.Calls()...); len(calls) != 0 {
		t.Errorf("backend called: %q", calls)
	}
}

func TestBackendErrors(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		msg    string
	}{
		{fmt.Errorf("user dir-x@localhost: %w", ErrNotFound), 404, "user dir-x@localhost: not found"},
		{fmt.Errorf("user dir-x@localhost: %w", ErrConflict), 409, "user dir-x@localhost: conflict"},
		{fmt.Errorf("room config muc#roomconfig_x: %w", ErrInvalid), 400, "room config muc#roomconfig_x: invalid"},
		{errors.New("database is locked at /var/lib/ambrosia/db"), 500, "internal error"},
	} {
		var logs bytes.Buffer
		b := &fakeBackend{err: c.err}
		cfg := Config{AdminToken: adminToken, Services: []*appservice.Service{testService(t, "directory", serviceToken)}}
		a, err := New(cfg, b, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		for _, rt := range a.routes() {
			// Logging out asks the backend nothing.
			if rt.public || rt.path == "/api/v1/login" {
				continue
			}
			logs.Reset()
			w := do(a, adminToken, rt.method, samplePath(rt.path)+sampleQuery(rt), sampleBody(rt))
			if w.Code != c.status {
				t.Errorf("%s %s, %v: status %d, want %d", rt.method, rt.path, c.err, w.Code, c.status)
			}
			if msg := errorOf(t, w); msg != c.msg {
				t.Errorf("%s %s, %v: error %q, want %q", rt.method, rt.path, c.err, msg, c.msg)
			}
			if logged := strings.Contains(logs.String(), "database is locked"); logged != (c.status == 500) {
				t.Errorf("%s %s, %v: logged %v: %q", rt.method, rt.path, c.err, logged, logs.String())
			}
		}
	}
}

func TestEmptyLists(t *testing.T) {
	a, b := newTestAPI(t, nil)
	b.empty = true
	for path, want := range map[string]string{
		"/api/v1/users?domain=localhost":             `{"users":[]}`,
		"/api/v1/users/alice@localhost/presence":     `{"presence":[]}`,
		"/api/v1/users/alice@localhost/roster":       `{"roster":[]}`,
		"/api/v1/sessions":                           `{"sessions":[]}`,
		"/api/v1/rooms?service=conference.localhost": `{"rooms":[]}`,
		"/api/v1/components":                         `{"components":[]}`,
		"/api/v1/s2s":                                `{"s2s":[]}`,
	} {
		w := do(a, adminToken, "GET", path, "")
		if got := strings.TrimSpace(w.Body.String()); w.Code != 200 || got != want {
			t.Errorf("%s: %d %s, want %s", path, w.Code, got, want)
		}
	}
	w := do(a, serviceToken, "GET", "/api/v1/rooms?service=conference.localhost", "")
	if got := strings.TrimSpace(w.Body.String()); got != `{"rooms":[]}` {
		t.Errorf("a service's rooms: %s", got)
	}
}

// TestLogNamesCaller: the log of a call names its caller and the
// component once.
func TestLogNamesCaller(t *testing.T) {
	var buf bytes.Buffer
	a, err := New(Config{AdminToken: adminToken, Services: []*appservice.Service{testService(t, "directory", serviceToken)}},
		&fakeBackend{}, slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ token, want string }{{adminToken, "admin"}, {serviceToken, "appservice directory"}} {
		buf.Reset()
		if w := do(a, c.token, "PUT", "/api/v1/users/dir-bob@localhost/presence", `{"available": true}`); w.Code != http.StatusNoContent {
			t.Fatalf("%s: %d %s", c.want, w.Code, w.Body)
		}
		line := buf.String()
		if !strings.Contains(line, `"caller":"`+c.want+`"`) || strings.Count(line, `"component"`) != 1 || !strings.Contains(line, `"component":"api"`) {
			t.Errorf("log %s, want one component api and caller %q", line, c.want)
		}
	}
}
