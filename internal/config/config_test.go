package config

import (
	"strings"
	"testing"
	"time"
)

func TestDecodeAndValidate(t *testing.T) {
	cases := []struct {
		name, doc string
		wantErr   string // substring; "" means valid
		check     func(t *testing.T, c Config)
	}{
		{name: "empty document keeps defaults", doc: "", check: func(t *testing.T, c Config) {
			if c.Domains[0] != "localhost" || c.DataDir != "./data" || c.C2S.Addr != ":5222" || c.C2S.AllowPlain {
				t.Fatalf("defaults changed: %+v", c)
			}
		}},
		{name: "values", doc: "domains = ['Example.ORG']\ndata_dir = '/var/lib/x'\n[c2s]\naddr = '127.0.0.1:1'\nidle_timeout = '90s'\nallow_plain = true\n[log]\nformat = 'json'", check: func(t *testing.T, c Config) {
			if c.Domains[0] != "example.org" || c.C2S.IdleTimeout != Duration(90*time.Second) || !c.C2S.AllowPlain || c.Log.Format != "json" {
				t.Fatalf("got %+v", c)
			}
		}},
		{name: "unknown top-level key", doc: "domian = ['x']", wantErr: "unknown key domian"},
		{name: "unknown nested key", doc: "[c2s]\nadress = ':1'", wantErr: "unknown key c2s.adress"},
		{name: "bad type", doc: "[c2s]\nallow_plain = 'yes'", wantErr: "c2s.allow_plain"},
		{name: "bad duration", doc: "[c2s]\nidle_timeout = 'soon'", wantErr: "idle_timeout"},
		{name: "bad domain", doc: "domains = ['a@b']", wantErr: "domains"},
		{name: "no domain", doc: "domains = []", wantErr: "domains"},
		{name: "bad log level", doc: "[log]\nlevel = 'loud'", wantErr: "log.level"},
		{name: "bad addr", doc: "[c2s]\naddr = 'nowhere'", wantErr: "c2s.addr"},
		{name: "tiny stanza limit", doc: "[c2s]\nmax_stanza_size = 100", wantErr: "c2s.max_stanza_size"},
		{name: "cert without key", doc: "[tls]\ncert_file = 'a.pem'", wantErr: "tls"},
		{name: "components", doc: "[component]\naddr = '127.0.0.1:5555'\n[[component.external]]\ndomain = 'IRC.localhost'\nsecret = 's'\n[[component.external]]\ndomain = 'echo.localhost'\nsecret = 't'", check: func(t *testing.T, c Config) {
			ex := c.Component.External
			if c.Component.Addr != "127.0.0.1:5555" || len(ex) != 2 || ex[0].Domain != "irc.localhost" || ex[0].Secret != "s" || ex[1].Domain != "echo.localhost" {
				t.Fatalf("got %+v", c.Component)
			}
		}},
		{name: "component default addr", doc: "", check: func(t *testing.T, c Config) {
			if c.Component.Addr != "127.0.0.1:5347" || len(c.Component.External) != 0 {
				t.Fatalf("got %+v", c.Component)
			}
		}},
		{name: "component bad domain", doc: "[[component.external]]\ndomain = 'a@b'\nsecret = 's'", wantErr: "component.external"},
		{name: "component no secret", doc: "[[component.external]]\ndomain = 'irc.localhost'", wantErr: "empty secret"},
		{name: "component twice", doc: "[[component.external]]\ndomain = 'irc.localhost'\nsecret = 's'\n[[component.external]]\ndomain = 'IRC.localhost'\nsecret = 't'", wantErr: "component.external"},
		{name: "component is a served domain", doc: "[[component.external]]\ndomain = 'localhost'\nsecret = 's'", wantErr: "already a served domain"},
		{name: "component unknown key", doc: "[[component.external]]\ndomain = 'irc.localhost'\npassword = 's'", wantErr: "unknown key component.external.password"},
		{name: "component bad addr", doc: "[component]\naddr = '5347'", wantErr: "component.addr"},
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
				tc.check(t, c)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"AMBROSIA_DOMAINS":             "a.example, b.example",
		"AMBROSIA_C2S_ADDR":            "127.0.0.1:9",
		"AMBROSIA_C2S_ALLOW_PLAIN":     "true",
		"AMBROSIA_C2S_IDLE_TIMEOUT":    "1m",
		"AMBROSIA_C2S_MAX_STANZA_SIZE": "65536",
		"AMBROSIA_COMPONENT_ADDR":      "127.0.0.1:6000",
		"AMBROSIA_COMPONENT_EXTERNAL":  "ignored: lists of tables are file-only",
	}
	c := Default()
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if len(c.Domains) != 2 || c.Domains[1] != "b.example" || c.C2S.Addr != "127.0.0.1:9" || !c.C2S.AllowPlain ||
		c.C2S.IdleTimeout != Duration(time.Minute) || c.C2S.MaxStanzaSize != 65536 || c.Component.Addr != "127.0.0.1:6000" {
		t.Fatalf("got %+v", c)
	}
	bad := func(k string) (string, bool) {
		if k == "AMBROSIA_C2S_ALLOW_PLAIN" {
			return "perhaps", true
		}
		return "", false
	}
	if err := c.ApplyEnv(bad); err == nil || !strings.Contains(err.Error(), "AMBROSIA_C2S_ALLOW_PLAIN") {
		t.Fatalf("error %v", err)
	}
	names := strings.Join(EnvNames(), " ")
	if strings.Contains(names, "AMBROSIA_COMPONENT_EXTERNAL") {
		t.Error("EnvNames lists the file-only component list")
	}
	for _, n := range []string{"AMBROSIA_DATA_DIR", "AMBROSIA_LOG_FORMAT", "AMBROSIA_TLS_CERT_FILE", "AMBROSIA_C2S_TLS_ADDR", "AMBROSIA_COMPONENT_ADDR"} {
		if !strings.Contains(names, n) {
			t.Errorf("EnvNames lacks %s", n)
		}
	}
}

func TestContactAddressesConfig(t *testing.T) {
	c := Default()
	if err := Decode([]byte("[contact]\nabuse = ['mailto:abuse@example.org']\nadmin = ['xmpp:admin@example.org']"), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if a := c.Contact.Addresses(); len(a) != 2 || a["abuse"][0] != "mailto:abuse@example.org" {
		t.Fatalf("addresses %v", a)
	}
	c = Default()
	_ = Decode([]byte("[contact]\nabuse = ['abuse at example dot org']"), &c)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "contact.abuse") {
		t.Fatalf("error %v", err)
	}
}
