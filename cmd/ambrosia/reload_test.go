package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/component"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
)

// TestReloader reads a changed file: the log level and certificates
// apply, a listener's address waits for a restart, a broken file changes
// nothing.
func TestReloader(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ambrosia.toml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("data_dir = '" + filepath.Join(dir, "data") + "'\n")
	cf := &configFlags{file: conf}
	cfg, err := cf.load()
	if err != nil {
		t.Fatal(err)
	}
	m, err := loadCerts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	level := new(slog.LevelVar)
	rl := &reloader{flags: cf, cfg: cfg, certs: certs.NewStore(m, cfg.Domains), level: level, log: newLevelLogger(cfg.Log, level, &logs)}

	tests := []struct {
		name, file string
		wantErr    string
		wantLevel  slog.Level
		wantOut    string
	}{
		{"unchanged", "data_dir = '" + filepath.Join(dir, "data") + "'\n", "", slog.LevelInfo, "certificates read again (1 names)"},
		{"log level", "data_dir = '" + filepath.Join(dir, "data") + "'\n[log]\nlevel = 'debug'\n", "", slog.LevelDebug, "applied log.level"},
		{"listener", "data_dir = '" + filepath.Join(dir, "data") + "'\n[log]\nlevel = 'debug'\n[c2s]\naddr = ':15222'\n", "", slog.LevelDebug, "at the next restart only: c2s.addr"},
		{"broken", "data_dir = '" + filepath.Join(dir, "data") + "'\n[log]\nlevel = 'warn'\n[c2s\n", "ambrosia.toml", slog.LevelDebug, ""},
		{"invalid", "data_dir = '" + filepath.Join(dir, "data") + "'\n[log]\nlevel = 'loud'\n", "log.level", slog.LevelDebug, ""},
		{"missing certificate", "data_dir = '" + filepath.Join(dir, "data") + "'\n[log]\nlevel = 'warn'\n[tls]\ncert_file = '/nonexistent.crt'\nkey_file = '/nonexistent.key'\n", "nonexistent", slog.LevelDebug, ""},
	}
	for _, tt := range tests {
		write(tt.file)
		out, err := rl.reload("test")
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error %v, want one naming %s", tt.name, err, tt.wantErr)
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case !strings.Contains(out, tt.wantOut):
			t.Errorf("%s: summary %q, want %q in it", tt.name, out, tt.wantOut)
		}
		if got := level.Level(); got != tt.wantLevel {
			t.Errorf("%s: level %v, want %v", tt.name, got, tt.wantLevel)
		}
	}
	if !strings.Contains(logs.String(), "reload failed: the running configuration and certificates stay") {
		t.Errorf("no failed reload logged:\n%s", logs.String())
	}

	// Components and s2s hosts: applied when their listener and
	// federation run, else at the next restart.
	comps := "data_dir = '" + filepath.Join(dir, "data") + "'\n[log]\nlevel = 'debug'\n[[component.external]]\ndomain = 'bot.localhost'\nsecret = 'x'\n[s2s.hosts]\n'example.net' = '127.0.0.1:5269'\n"
	write(comps)
	if out, err := rl.reload("test"); err != nil || !strings.Contains(out, "at the next restart only: component.external, s2s.hosts") {
		t.Errorf("without a component listener nor federation: %q %v", out, err)
	}
	rl.components, err = component.New(component.DefaultConfig(), component.Deps{Router: router.New(rl.log), Log: rl.log})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := rl.reload("test"); err != nil || !strings.Contains(out, "applied component.external;") {
		t.Errorf("with a component listener: %q %v", out, err)
	}
	if out, err := rl.reload("test"); err != nil || strings.Contains(out, "component.external") {
		t.Errorf("components applied before are still named: %q %v", out, err)
	}
}
