package config

import (
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/privilege"
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
		{name: "duration without unit", doc: "[c2s]\nnegotiation_timeout = 30", wantErr: "key c2s.negotiation_timeout: 30 is a number without a unit"},
		{name: "idle timeout without unit", doc: "[c2s]\nidle_timeout = 300", wantErr: "key c2s.idle_timeout"},
		{name: "fraction without unit", doc: "[archive]\nretention = 1.5", wantErr: "archive.retention"},
		{name: "dotted duration without unit", doc: "s2s.connect_timeout = 10", wantErr: "key s2s.connect_timeout"},
		{name: "zero needs no unit", doc: "[c2s]\nidle_timeout = 0", check: func(t *testing.T, c Config) {
			if c.C2S.IdleTimeout != 0 {
				t.Fatalf("idle_timeout %v", c.C2S.IdleTimeout)
			}
		}},
		{name: "bad domain", doc: "domains = ['a@b']", wantErr: "domains"},
		{name: "cluster", doc: "[cluster]\netcd = ['http://10.0.0.1:2379', 'https://etcd.example.org:2379']\nname = 'prod'\nlease_ttl = '5s'", check: func(t *testing.T, c Config) {
			if len(c.Cluster.Etcd) != 2 || c.Cluster.Name != "prod" || c.Cluster.LeaseTTL != Duration(5*time.Second) {
				t.Fatalf("got %+v", c.Cluster)
			}
		}},
		{name: "cluster etcd not a URL", doc: "[cluster]\netcd = ['10.0.0.1:2379']", wantErr: "cluster.etcd: \"10.0.0.1:2379\" is not an http:// or https:// URL"},
		{name: "cluster name with a slash", doc: "[cluster]\nname = 'a/b'", wantErr: "cluster.name"},
		{name: "cluster lease too short", doc: "[cluster]\nlease_ttl = '1s'", wantErr: "cluster.lease_ttl: 1s is below 2s"},
		{name: "no domain", doc: "domains = []", wantErr: "domains"},
		{name: "bad log level", doc: "[log]\nlevel = 'loud'", wantErr: "log.level"},
		{name: "bad addr", doc: "[c2s]\naddr = 'nowhere'", wantErr: "c2s.addr"},
		{name: "metrics off by default", doc: "", check: func(t *testing.T, c Config) {
			if c.MetricsAddr != "" {
				t.Fatalf("metrics_addr %q", c.MetricsAddr)
			}
		}},
		{name: "metrics addr", doc: "metrics_addr = '127.0.0.1:9100'", check: func(t *testing.T, c Config) {
			if c.MetricsAddr != "127.0.0.1:9100" {
				t.Fatalf("metrics_addr %q", c.MetricsAddr)
			}
		}},
		{name: "bad metrics addr", doc: "metrics_addr = '9100'", wantErr: "metrics_addr"},
		{name: "tiny stanza limit", doc: "[c2s]\nmax_stanza_size = 100", wantErr: "c2s.max_stanza_size"},
		{name: "limits", doc: "[limits]\nexempt = ['10.0.0.0/8', '2001:db8::1']\nc2s_rate = 1000\nlogin_failure_window = '1h'", check: func(t *testing.T, c Config) {
			l := c.Limits
			if len(l.Exempt) != 2 || l.C2SRate != 1000 || l.LoginFailureWindow != Duration(time.Hour) || l.MaxUnauthenticatedPerIP != 32 {
				t.Fatalf("got %+v", l)
			}
		}},
		{name: "loopback exempt by default", doc: "", check: func(t *testing.T, c Config) {
			if strings.Join(c.Limits.Exempt, ",") != "127.0.0.0/8,::1" {
				t.Fatalf("exempt %q", c.Limits.Exempt)
			}
		}},
		{name: "bad exempt", doc: "[limits]\nexempt = ['10.0.0.0/40']", wantErr: "limits.exempt"},
		{name: "negative limit", doc: "[limits]\nmax_connections_per_ip = -1", wantErr: "limits.max_connections_per_ip"},
		{name: "zero window", doc: "[limits]\nlogin_failure_window = '0s'", wantErr: "login_failure_window"},
		{name: "zero invite window", doc: "[limits]\ninvite_failure_window = '0s'", wantErr: "invite_failure_window"},
		{name: "negative invite failures", doc: "[limits]\ninvite_failures_per_ip = -1", wantErr: "limits.invite_failures_per_ip"},
		{name: "tiny preauth stanza limit", doc: "[limits]\npreauth_max_stanza_size = 100", wantErr: "limits.preauth_max_stanza_size"},
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
		{name: "component privileges", doc: "[[component.external]]\ndomain = 'irc.localhost'\nsecret = 's'\n[component.external.privileges]\nroster = 'both'\nmessage = 'outgoing'\npresence = 'roster'\niq = { 'jabber:iq:roster' = 'both', 'urn:xmpp:bookmarks:1' = 'set' }\n[[component.external]]\ndomain = 'echo.localhost'\nsecret = 't'", check: func(t *testing.T, c Config) {
			g, err := c.Component.External[0].Privileges.Grant()
			if err != nil || g.Roster != privilege.Both || !g.RosterPush || !g.Message || g.Presence != privilege.PresenceRoster ||
				g.IQ["jabber:iq:roster"] != privilege.Both || g.IQ["urn:xmpp:bookmarks:1"] != privilege.Set || g.NS() != privilege.NS2 {
				t.Fatalf("got %+v, %v", g, err)
			}
			if g, err := c.Component.External[1].Privileges.Grant(); err != nil || !g.Empty() {
				t.Fatalf("a component without privileges has %+v, %v", g, err)
			}
		}},
		{name: "component privileges version 1", doc: "[[component.external]]\ndomain = 'irc.localhost'\nsecret = 's'\nprivileges = { roster = 'get', namespace = 'urn:xmpp:privilege:1' }", check: func(t *testing.T, c Config) {
			g, err := c.Component.External[0].Privileges.Grant()
			if err != nil || g.Roster != privilege.Get || g.RosterPush || g.NS() != privilege.NS1 {
				t.Fatalf("got %+v, %v", g, err)
			}
		}},
		{name: "component roster pushes off", doc: "[[component.external]]\ndomain = 'irc.localhost'\nsecret = 's'\nprivileges = { roster = 'get', roster_push = false }", check: func(t *testing.T, c Config) {
			if g, err := c.Component.External[0].Privileges.Grant(); err != nil || g.RosterPush {
				t.Fatalf("got %+v, %v", g, err)
			}
		}},
		{name: "component bad roster privilege", doc: "[[component.external]]\ndomain = 'irc.localhost'\nsecret = 's'\nprivileges = { roster = 'all' }", wantErr: "component.external.privileges.roster: \"all\" is not none, get, set or both (component irc.localhost)"},
		{name: "component bad message privilege", doc: "[[component.external]]\ndomain = 'irc.localhost'\nsecret = 's'\nprivileges = { message = 'incoming' }", wantErr: "component.external.privileges.message"},
		{name: "component bad presence privilege", doc: "[[component.external]]\ndomain = 'irc.localhost'\nsecret = 's'\nprivileges = { presence = 'all' }", wantErr: "component.external.privileges.presence"},
		{name: "component roster presence without roster", doc: "[[component.external]]\ndomain = 'irc.localhost'\nsecret = 's'\nprivileges = { presence = 'roster', roster = 'set' }", wantErr: "component.external.privileges.presence: roster presence needs roster = get or both"},
		{name: "component bad iq privilege", doc: "[[component.external]]\ndomain = 'irc.localhost'\nsecret = 's'\nprivileges = { iq = { 'urn:x' = 'write' } }", wantErr: "component.external.privileges.iq: urn:x"},
		{name: "component iq in version 1", doc: "[[component.external]]\ndomain = 'irc.localhost'\nsecret = 's'\nprivileges = { iq = { 'urn:x' = 'set' }, namespace = 'urn:xmpp:privilege:1' }", wantErr: "component.external.privileges.iq"},
		{name: "component push without get", doc: "[[component.external]]\ndomain = 'irc.localhost'\nsecret = 's'\nprivileges = { roster = 'set', roster_push = true }", wantErr: "component.external.privileges.roster_push"},
		{name: "component bad privilege namespace", doc: "[[component.external]]\ndomain = 'irc.localhost'\nsecret = 's'\nprivileges = { namespace = 'urn:xmpp:privilege:0' }", wantErr: "component.external.privileges.namespace"},
		{name: "component unknown privilege", doc: "[[component.external]]\ndomain = 'irc.localhost'\nsecret = 's'\n[component.external.privileges]\npubsub = 'both'", wantErr: "unknown key component.external.privileges.pubsub"},
		{name: "s2s defaults", doc: "", check: func(t *testing.T, c Config) {
			if !c.S2S.Enabled || c.S2S.Addr != ":5269" || c.S2S.TLSAddr != "" || c.S2S.ConnectTimeout != Duration(30*time.Second) || c.S2S.IdleTimeout != Duration(10*time.Minute) {
				t.Fatalf("got %+v", c.S2S)
			}
		}},
		{name: "s2s values", doc: "[s2s]\nenabled = false\naddr = '127.0.0.1:5270'\ntls_addr = ':5270'\ndialback_secret = '0123456789abcdefgh'\ntrust_file = '/etc/ca.pem'\nconnect_timeout = '5s'\nidle_timeout = '1m'\n[s2s.hosts]\n'Prosody.test' = '127.0.0.1:5271'\n'direct.test' = 'tls://127.0.0.1:5272'", check: func(t *testing.T, c Config) {
			s := c.S2S
			if s.Enabled || s.Addr != "127.0.0.1:5270" || s.TLSAddr != ":5270" || s.TrustFile != "/etc/ca.pem" || s.ConnectTimeout != Duration(5*time.Second) || s.IdleTimeout != Duration(time.Minute) {
				t.Fatalf("got %+v", s)
			}
			if s.Hosts["prosody.test"] != "127.0.0.1:5271" || s.Hosts["direct.test"] != "tls://127.0.0.1:5272" || len(s.Hosts) != 2 {
				t.Fatalf("hosts %v", s.Hosts)
			}
		}},
		{name: "s2s bad addr", doc: "[s2s]\naddr = '5269'", wantErr: "s2s.addr"},
		{name: "s2s short secret", doc: "[s2s]\ndialback_secret = 'short'", wantErr: "s2s.dialback_secret"},
		{name: "s2s zero timeout", doc: "[s2s]\nconnect_timeout = '0s'", wantErr: "s2s.connect_timeout"},
		{name: "s2s bad idle", doc: "[s2s]\nidle_timeout = '-1s'", wantErr: "s2s.idle_timeout"},
		{name: "s2s bad host domain", doc: "[s2s.hosts]\n'a@b' = '127.0.0.1:1'", wantErr: "s2s.hosts"},
		{name: "s2s bad host addr", doc: "[s2s.hosts]\n'b.test' = 'nowhere'", wantErr: "s2s.hosts"},
		{name: "s2s unknown key", doc: "[s2s]\nport = 5269", wantErr: "unknown key s2s.port"},
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
		"AMBROSIA_METRICS_ADDR":        "127.0.0.1:9100",
	}
	c := Default()
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if len(c.Domains) != 2 || c.Domains[1] != "b.example" || c.C2S.Addr != "127.0.0.1:9" || !c.C2S.AllowPlain ||
		c.C2S.IdleTimeout != Duration(time.Minute) || c.C2S.MaxStanzaSize != 65536 || c.Component.Addr != "127.0.0.1:6000" || c.MetricsAddr != "127.0.0.1:9100" {
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

func TestApplyEnvS2S(t *testing.T) {
	env := map[string]string{
		"AMBROSIA_S2S_ENABLED":         "false",
		"AMBROSIA_S2S_ADDR":            "127.0.0.1:5999",
		"AMBROSIA_S2S_TLS_ADDR":        "127.0.0.1:5998",
		"AMBROSIA_S2S_CONNECT_TIMEOUT": "7s",
		"AMBROSIA_S2S_TRUST_FILE":      "/tmp/ca.pem",
		"AMBROSIA_S2S_HOSTS":           "ignored: tables are file-only",
	}
	c := Default()
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.S2S.Enabled || c.S2S.Addr != "127.0.0.1:5999" || c.S2S.TLSAddr != "127.0.0.1:5998" || c.S2S.ConnectTimeout != Duration(7*time.Second) || c.S2S.TrustFile != "/tmp/ca.pem" || c.S2S.Hosts != nil {
		t.Fatalf("got %+v", c.S2S)
	}
	names := strings.Join(EnvNames(), " ")
	if strings.Contains(names, "AMBROSIA_S2S_HOSTS") || !strings.Contains(names, "AMBROSIA_S2S_DIALBACK_SECRET") {
		t.Fatalf("EnvNames: %s", names)
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

func TestUploadConfig(t *testing.T) {
	cases := []struct {
		name, doc string
		wantErr   string // substring; "" means valid
		check     func(t *testing.T, u Upload)
	}{
		{name: "defaults", doc: "", check: func(t *testing.T, u Upload) {
			if !u.Enabled || u.Component != "upload" || u.Addr != ":5443" || u.PlainAddr != "" || u.PublicURL != "" ||
				u.MaxFileSize != 100<<20 || u.Quota != 1<<30 || u.ExpireAfter != Duration(7*24*time.Hour) {
				t.Fatalf("got %+v", u)
			}
		}},
		{name: "values", doc: "[upload]\ncomponent = 'files'\naddr = ''\nplain_addr = '127.0.0.1:8080'\npublic_url = 'https://example.org/files'\nmax_file_size = 1000\nquota = 0\nexpire_after = '0s'", check: func(t *testing.T, u Upload) {
			if u.Component != "files" || u.Addr != "" || u.PlainAddr != "127.0.0.1:8080" || u.PublicURL != "https://example.org/files" ||
				u.MaxFileSize != 1000 || u.Quota != 0 || u.ExpireAfter != 0 {
				t.Fatalf("got %+v", u)
			}
		}},
		{name: "disabled skips checks", doc: "[upload]\nenabled = false\naddr = 'nowhere'", check: func(t *testing.T, u Upload) {
			if u.Enabled {
				t.Fatal("enabled")
			}
		}},
		{name: "unknown key", doc: "[upload]\nmax_size = 1", wantErr: "unknown key upload.max_size"},
		{name: "bad component", doc: "[upload]\ncomponent = 'up.load'", wantErr: "upload.component"},
		{name: "empty component", doc: "[upload]\ncomponent = ''", wantErr: "upload.component"},
		{name: "component taken", doc: "domains = ['localhost', 'upload.localhost']", wantErr: "upload.component: upload.localhost is already"},
		{name: "component of an external component", doc: "[[component.external]]\ndomain = 'upload.localhost'\nsecret = 's'", wantErr: "upload.component"},
		{name: "bad addr", doc: "[upload]\naddr = '5443'", wantErr: "upload.addr"},
		{name: "bad plain addr", doc: "[upload]\nplain_addr = 'x'", wantErr: "upload.plain_addr"},
		{name: "no listener", doc: "[upload]\naddr = ''", wantErr: "upload.addr"},
		{name: "plain without public url", doc: "[upload]\naddr = ''\nplain_addr = '127.0.0.1:8080'", wantErr: "upload.public_url"},
		{name: "bad public url", doc: "[upload]\npublic_url = 'example.org/files'", wantErr: "upload.public_url"},
		{name: "public url with query", doc: "[upload]\npublic_url = 'https://example.org/?a=b'", wantErr: "upload.public_url"},
		{name: "zero max size", doc: "[upload]\nmax_file_size = 0", wantErr: "upload.max_file_size"},
		{name: "negative quota", doc: "[upload]\nquota = -1", wantErr: "upload.quota"},
		{name: "negative expiry", doc: "[upload]\nexpire_after = '-1h'", wantErr: "upload.expire_after"},
		{name: "bad expiry", doc: "[upload]\nexpire_after = 'a week'", wantErr: "upload.expire_after"},
		{name: "size as string", doc: "[upload]\nmax_file_size = '10MB'", wantErr: "upload.max_file_size"},
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
				tc.check(t, c.Upload)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
			}
		})
	}

	env := map[string]string{
		"AMBROSIA_UPLOAD_ENABLED":       "false",
		"AMBROSIA_UPLOAD_ADDR":          "127.0.0.1:9443",
		"AMBROSIA_UPLOAD_PUBLIC_URL":    "https://files.example.org",
		"AMBROSIA_UPLOAD_MAX_FILE_SIZE": "5000",
		"AMBROSIA_UPLOAD_QUOTA":         "9000",
		"AMBROSIA_UPLOAD_EXPIRE_AFTER":  "1h",
		"AMBROSIA_UPLOAD_COMPONENT":     "share",
	}
	c := Default()
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	u := c.Upload
	if u.Enabled || u.Addr != "127.0.0.1:9443" || u.PublicURL != "https://files.example.org" || u.MaxFileSize != 5000 ||
		u.Quota != 9000 || u.ExpireAfter != Duration(time.Hour) || u.Component != "share" {
		t.Fatalf("got %+v", u)
	}
	err := c.ApplyEnv(func(k string) (string, bool) { return "lots", k == "AMBROSIA_UPLOAD_QUOTA" })
	if err == nil || !strings.Contains(err.Error(), "AMBROSIA_UPLOAD_QUOTA") {
		t.Fatalf("error %v", err)
	}
}

func TestStorageConfig(t *testing.T) {
	cases := []struct {
		name, doc string
		wantErr   string // substring; "" means valid
		want      Storage
	}{
		{name: "default", doc: "", want: Storage{Backend: "sqlite"}},
		{name: "postgres url", doc: "[storage]\nbackend = 'postgres'\npostgres_dsn = 'postgres://ambrosia@db.example/ambrosia'",
			want: Storage{Backend: "postgres", PostgresDSN: "postgres://ambrosia@db.example/ambrosia"}},
		{name: "postgres keywords", doc: "[storage]\nbackend = 'postgres'\npostgres_dsn = 'host=/run/postgresql dbname=ambrosia'",
			want: Storage{Backend: "postgres", PostgresDSN: "host=/run/postgresql dbname=ambrosia"}},
		{name: "sqlite ignores the dsn", doc: "[storage]\npostgres_dsn = 'postgres://db.example/x'",
			want: Storage{Backend: "sqlite", PostgresDSN: "postgres://db.example/x"}},
		{name: "postgres without dsn", doc: "[storage]\nbackend = 'postgres'", wantErr: "storage.postgres_dsn: required"},
		{name: "unknown backend", doc: "[storage]\nbackend = 'mysql'", wantErr: "storage.backend: \"mysql\""},
		{name: "empty backend", doc: "[storage]\nbackend = ''", wantErr: "storage.backend"},
		{name: "bad url", doc: "[storage]\nbackend = 'postgres'\npostgres_dsn = 'postgres://u:p%zz@h/db'", wantErr: "storage.postgres_dsn: not a valid"},
		{name: "unknown key", doc: "[storage]\ndsn = 'x'", wantErr: "unknown key storage.dsn"},
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
				if c.Storage != tc.want {
					t.Fatalf("got %+v, want %+v", c.Storage, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "p%zz") {
				t.Fatalf("error %q quotes the password", err)
			}
		})
	}
}

func TestApplyEnvStorage(t *testing.T) {
	env := map[string]string{
		"AMBROSIA_STORAGE_BACKEND":      "postgres",
		"AMBROSIA_STORAGE_POSTGRES_DSN": "postgres://ambrosia@127.0.0.1/ambrosia",
	}
	c := Default()
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Storage.Backend != "postgres" || c.Storage.PostgresDSN != env["AMBROSIA_STORAGE_POSTGRES_DSN"] {
		t.Fatalf("got %+v", c.Storage)
	}
	names := strings.Join(EnvNames(), " ")
	for n := range env {
		if !strings.Contains(names, n) {
			t.Errorf("EnvNames lacks %s", n)
		}
	}
}
