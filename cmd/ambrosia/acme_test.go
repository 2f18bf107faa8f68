package main

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/config"
)

func TestACMENames(t *testing.T) {
	tests := []struct {
		name    string
		domains []string
		edit    func(*config.Config)
		want    [][]string
		warned  string
	}{
		{"a domain and its services", []string{"example.org"}, nil,
			[][]string{{"example.org", "upload.example.org", "conference.example.org"}}, ""},
		{"without uploads", []string{"example.org", "example.net"}, func(c *config.Config) { c.Upload.Enabled = false },
			[][]string{{"example.org", "conference.example.org"}, {"example.net", "conference.example.net"}}, ""},
		{"names no authority checks", []string{"localhost", "chat.localhost", "127.0.0.1", "[::1]", "intranet", "example.org"}, func(c *config.Config) { c.Upload.Enabled, c.MUC.Enabled = false, false },
			[][]string{{"example.org"}}, "domain=chat.localhost"},
	}
	for _, tt := range tests {
		cfg := config.Default()
		cfg.Domains = tt.domains
		if tt.edit != nil {
			tt.edit(&cfg)
		}
		var logs bytes.Buffer
		got := acmeNames(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		if !slices.EqualFunc(got, tt.want, slices.Equal) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
		if !strings.Contains(logs.String(), tt.warned) {
			t.Errorf("%s: log %q, want %q in it", tt.name, logs.String(), tt.warned)
		}
	}
}
