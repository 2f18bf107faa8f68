package config

import (
	"strings"
	"testing"
	"time"
)

func TestAppServices(t *testing.T) {
	const doc = `
[api]
admin_token = "admin-token-0123456789"

[[appservice]]
name = "directory"
url = "http://127.0.0.1:9000"
users = ['^dir-.*@localhost$']
events = ["message"]
[[appservice.hook]]
event = "message"
timeout = "150ms"
on_timeout = "deny"
`
	c := Default()
	if err := Decode([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"AMBROSIA_APPSERVICE_DIRECTORY_TOKEN":        "service-token-0123456789",
		"AMBROSIA_APPSERVICE_DIRECTORY_SERVER_TOKEN": "server-token-0123456789",
	}
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	a := c.AppServices[0]
	if a.Token != env["AMBROSIA_APPSERVICE_DIRECTORY_TOKEN"] || a.ServerToken != env["AMBROSIA_APPSERVICE_DIRECTORY_SERVER_TOKEN"] {
		t.Fatalf("tokens %q %q", a.Token, a.ServerToken)
	}
	if len(a.Hooks) != 1 || time.Duration(a.Hooks[0].Timeout) != 150*time.Millisecond || a.Hooks[0].OnTimeout != "deny" {
		t.Fatalf("hooks %+v", a.Hooks)
	}
	if !c.APIEnabled() {
		t.Fatal("the API is off with an admin token and a service")
	}
	if d := Default(); d.APIEnabled() {
		t.Fatal("the API is on by default")
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"short token", "[[appservice]]\nname='a'\nurl='http://x'\ntoken='short'\nserver_token='server-token-0123456789'", "at least 16"},
		{"twice", "[[appservice]]\nname='a'\nurl='http://x'\ntoken='aaaaaaaaaaaaaaaa1'\nserver_token='bbbbbbbbbbbbbbbb1'\n[[appservice]]\nname='a'\nurl='http://x'\ntoken='aaaaaaaaaaaaaaaa2'\nserver_token='bbbbbbbbbbbbbbbb2'", "twice"},
		{"shared token", "[api]\nadmin_token='aaaaaaaaaaaaaaaa1'\n[[appservice]]\nname='a'\nurl='http://x'\ntoken='aaaaaaaaaaaaaaaa1'\nserver_token='bbbbbbbbbbbbbbbb1'", "its own"},
		{"bad name", "[[appservice]]\nname='a b'\nurl='http://x'", "appservice[0].name"},
		{"short admin", "[api]\nadmin_token='x'", "api.admin_token"},
		{"unknown key", "[[appservice]]\nname='a'\nurls='http://x'", "unknown key appservice.urls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			err := Decode([]byte(tc.doc), &c)
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}
