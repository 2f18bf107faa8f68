package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAdminLogin: an administrator's account logs in with its password
// and acts as the admin with the token it gets, until it logs out or the
// login expires; a wrong password, a user who is no administrator and an
// unknown token get the same 401.
func TestAdminLogin(t *testing.T) {
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	a, b := newTestAPI(t, func(c *Config) { c.Admins = []string{"root@localhost"}; c.LoginTTL = time.Minute })
	a.logins.now = func() time.Time { return now }

	for _, c := range []struct{ name, body string }{
		{"wrong password", `{"jid":"root@localhost","password":"wrong"}`},
		{"not an administrator", `{"jid":"alice@localhost","password":"right"}`},
	} {
		w := do(a, "", "POST", "/api/v1/login", c.body)
		if w.Code != http.StatusUnauthorized || !strings.Contains(errorOf(t, w), "api.admins") {
			t.Errorf("%s: status %d %s", c.name, w.Code, w.Body)
		}
	}
	// The password is checked for someone who is no administrator too.
	if calls := b.Calls(); len(calls) != 2 || calls[1] != "CheckPassword(alice@localhost)" {
		t.Errorf("calls %q", calls)
	}
	if w := do(a, "", "POST", "/api/v1/login", `{"jid":"root@localhost"}`); w.Code != http.StatusBadRequest || !strings.HasPrefix(errorOf(t, w), "password:") {
		t.Errorf("no password: %d %s", w.Code, w.Body)
	}

	w := do(a, "", "POST", "/api/v1/login", `{"jid":"root@localhost","password":"right"}`)
	if w.Code != http.StatusOK {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	var ans loginAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || ans.JID != "root@localhost" || !ans.Expires.Equal(now.Add(time.Minute)) {
		t.Fatalf("answer %s (%v)", w.Body, err)
	}
	if w := do(a, ans.Token, "GET", "/api/v1/stats", ""); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"ambrosia_sessions":3`) {
		t.Errorf("stats as the logged-in admin: %d %s", w.Code, w.Body)
	}
	// Each call pushes the end back; a minute of silence ends it.
	now = now.Add(50 * time.Second)
	if w := do(a, ans.Token, "GET", "/api/v1/stats", ""); w.Code != http.StatusOK {
		t.Errorf("50 s later: %d", w.Code)
	}
	now = now.Add(61 * time.Second)
	if w := do(a, ans.Token, "GET", "/api/v1/stats", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("after the TTL: %d", w.Code)
	}

	w = do(a, "", "POST", "/api/v1/login", `{"jid":"root@localhost","password":"right"}`)
	_ = json.Unmarshal(w.Body.Bytes(), &ans)
	if w := do(a, ans.Token, "DELETE", "/api/v1/login", ""); w.Code != http.StatusNoContent {
		t.Errorf("logout: %d %s", w.Code, w.Body)
	}
	if w := do(a, ans.Token, "GET", "/api/v1/stats", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("after logout: %d", w.Code)
	}
	if w := do(a, adminToken, "DELETE", "/api/v1/login", ""); w.Code != http.StatusBadRequest {
		t.Errorf("logout with the admin token: %d", w.Code)
	}
	if w := do(a, "login-forged", "GET", "/api/v1/stats", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("forged login token: %d", w.Code)
	}
}

// TestPasswordAndStats: both are the admin's calls.
func TestPasswordAndStats(t *testing.T) {
	runCases(t, adminToken, []apiCase{
		{name: "password", method: "PUT", path: "/api/v1/users/alice@localhost/password", body: `{"password":"new","end_sessions":true}`,
			status: 204, call: "SetPassword(alice@localhost, new, true)"},
		{name: "no password", method: "PUT", path: "/api/v1/users/alice@localhost/password", body: `{}`, status: 400, answer: "password: required"},
		{name: "server", method: "GET", path: "/api/v1/server", status: 200, call: "Server()", answer: `"conference":["conference.localhost"]`},
		{name: "stats", method: "GET", path: "/api/v1/stats", status: 200, call: "Stats()", answer: `"ambrosia_sessions":3`},
	})
	runCases(t, serviceToken, []apiCase{
		{name: "service password", method: "PUT", path: "/api/v1/users/alice@localhost/password", body: `{"password":"new"}`, status: 403, answer: "only the admin"},
		{name: "service stats", method: "GET", path: "/api/v1/stats", status: 403, answer: "only the admin"},
	})
}
