package config

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestChanged(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"nothing", func(*Config) {}, nil},
		{"log level", func(c *Config) { c.Log.Level = "debug" }, []string{"log.level"}},
		{"certificates and a listener", func(c *Config) {
			c.TLS.CertFile, c.TLS.KeyFile = "a.crt", "a.key"
			c.C2S.Addr = ":15222"
		}, []string{"tls.cert_file", "tls.key_file", "c2s.addr"}},
		{"a duration", func(c *Config) { c.C2S.IdleTimeout = Duration(time.Second) }, []string{"c2s.idle_timeout"}},
		{"a table", func(c *Config) { c.S2S.Hosts = map[string]string{"a.example": "127.0.0.1:5269"} }, []string{"s2s.hosts"}},
		{"the domains", func(c *Config) { c.Domains = []string{"example.org"} }, []string{"domains"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := Default(), Default()
			tt.change(&b)
			got := Changed(a, b)
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestValue(t *testing.T) {
	c := Default()
	for key, want := range map[string]any{
		"limits.max_connections_per_ip": 100,
		"limits.invite_failure_window":  "1h0m0s",
		"limits.exempt":                 []string{"127.0.0.0/8", "::1"},
		"log.level":                     "info",
		"limits.nonexistent":            nil,
		"nonexistent.key":               nil,
		"log.level.deeper":              nil,
	} {
		if got := Value(c, key); !reflect.DeepEqual(got, want) {
			t.Errorf("Value(%q) = %#v, want %#v", key, got, want)
		}
	}
}
