package config

import (
	"slices"
	"strings"
	"testing"
)

func TestHTTPConfig(t *testing.T) {
	const token = "api.admin_token = '0123456789abcdef0123'\n"
	cases := []struct {
		name, doc string
		wantErr   string // substring; "" means valid
		check     func(t *testing.T, h HTTP)
	}{
		{name: "defaults: off", doc: "", check: func(t *testing.T, h HTTP) {
			if h.Addr != "" || !h.TLS || !h.WebSocket || h.API || h.Upload || !slices.Equal(h.TrustedProxies, []string{"127.0.0.1/8", "::1/128"}) {
				t.Fatalf("got %+v", h)
			}
		}},
		{name: "behind a proxy", doc: "[http]\naddr = '127.0.0.1:5280'\ntls = false\ntrusted_proxies = ['10.0.0.0/8', '192.0.2.1']\ncors_origins = ['https://chat.example.org']\npublic_url = 'https://xmpp.example.org'\nupload = true\n[upload]\naddr = ''", check: func(t *testing.T, h HTTP) {
			if h.TLS || !h.Upload || len(h.TrustedProxies) != 2 {
				t.Fatalf("got %+v", h)
			}
		}},
		{name: "api here only", doc: "[http]\naddr = ':5281'\napi = true\n[api]\naddr = ''\n" + "admin_token = '0123456789abcdef0123'", check: func(t *testing.T, h HTTP) {}},
		{name: "bad addr", doc: "[http]\naddr = '5281'", wantErr: "http.addr"},
		{name: "bad proxy", doc: "[http]\naddr = ':5281'\ntrusted_proxies = ['10.0.0.0/40']", wantErr: "http.trusted_proxies"},
		{name: "bad origin", doc: "[http]\naddr = ':5281'\ncors_origins = ['chat.example.org']", wantErr: "http.cors_origins"},
		{name: "origin with path", doc: "[http]\naddr = ':5281'\ncors_origins = ['https://chat.example.org/app']", wantErr: "http.cors_origins"},
		{name: "bad public url", doc: "[http]\naddr = ':5281'\npublic_url = 'xmpp.example.org'", wantErr: "http.public_url"},
		{name: "api without addr", doc: token + "[http]\napi = true", wantErr: "http.addr"},
		{name: "api with nothing to serve", doc: "[http]\naddr = ':5281'\napi = true", wantErr: "http.api"},
		{name: "upload disabled", doc: "[http]\naddr = ':5281'\nupload = true\n[upload]\nenabled = false", wantErr: "http.upload"},
		{name: "plain upload without url", doc: "[http]\naddr = ':5281'\ntls = false\nupload = true", wantErr: "http.upload"},
		{name: "unknown key", doc: "[http]\nport = 5281", wantErr: "unknown key http.port"},
		{name: "prosody's key", doc: "http_ports = [5280]", wantErr: "http_ports → http.addr"},
		{name: "a websocket section", doc: "[websocket]\naddr = ':5280'", wantErr: "unknown key websocket; the setting is websocket → http.addr"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			err := Decode([]byte(tc.doc), &c)
			if err == nil {
				err = c.Validate()
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, c.HTTP)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
	c := Default()
	env := map[string]string{"AMBROSIA_HTTP_ADDR": ":5281", "AMBROSIA_HTTP_TRUSTED_PROXIES": "10.0.0.0/8, 172.16.0.0/12", "AMBROSIA_HTTP_TLS": "false"}
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != ":5281" || c.HTTP.TLS || len(c.HTTP.TrustedProxies) != 2 {
		t.Fatalf("env: %+v", c.HTTP)
	}
}
