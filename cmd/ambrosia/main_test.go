package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runCmd(t, "", "version"); code != 0 || !strings.HasPrefix(out, "ambrosia ") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, errOut := runCmd(t, "", "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
	if code, _, _ := runCmd(t, ""); code != 2 {
		t.Fatalf("no command: %d", code)
	}
}

func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	steps := []struct {
		stdin    string
		args     []string
		code     int
		out, err string
	}{
		{"secret\n", []string{"user", "add", "alice@localhost", "--data", dir}, 0, "", ""},
		{"", []string{"user", "add", "Bob@LocalHost", "--data", dir, "--password", "pw"}, 0, "", ""},
		{"again\n", []string{"user", "add", "alice@localhost", "--data", dir}, 1, "", "already exists"},
		{"", []string{"user", "list", "--data", dir}, 0, "alice@localhost\nbob@localhost\n", ""},
		{"new\n", []string{"user", "passwd", "alice@localhost", "--data", dir}, 0, "", ""},
		{"new\n", []string{"user", "passwd", "carol@localhost", "--data", dir}, 1, "", "no user"},
		{"", []string{"user", "del", "bob@localhost", "--data", dir}, 0, "", ""},
		{"", []string{"user", "del", "bob@localhost", "--data", dir}, 1, "", "no user"},
		{"", []string{"user", "list", "localhost", "--data", dir}, 0, "alice@localhost\n", ""},
		{"", []string{"user", "add", "not a jid", "--data", dir}, 1, "", "user add"},
		{"", []string{"user", "add", "localhost", "--data", dir}, 1, "", "want user@domain"},
		{"\n", []string{"user", "add", "dave@localhost", "--data", dir}, 1, "", "empty password"},
		{"pw\n", []string{"user", "add", "erin@elsewhere.example", "--data", dir}, 1, "", "not a served domain"},
		{"pw\n", []string{"user", "add", "erin@elsewhere.example", "--data", dir, "--domain", "elsewhere.example"}, 0, "", ""},
	}
	for _, s := range steps {
		code, out, errOut := runCmd(t, s.stdin, s.args...)
		if code != s.code || (s.out != "" && out != s.out) || !strings.Contains(errOut, s.err) {
			t.Fatalf("%v: code %d out %q err %q", s.args, code, out, errOut)
		}
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ambrosia.toml")
	if err := os.WriteFile(file, []byte("[c2s]\nadress = ':5222'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "", "serve", "--config", file, "--data", dir)
	if code != 1 || !strings.Contains(errOut, "c2s.adress") {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCmd(t, "", "serve", "--data", dir, "--log-level", "loud")
	if code != 1 || !strings.Contains(errOut, "log.level") {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	t.Setenv("AMBROSIA_C2S_ALLOW_PLAIN", "maybe")
	code, _, errOut = runCmd(t, "", "serve", "--data", dir)
	if code != 1 || !strings.Contains(errOut, "AMBROSIA_C2S_ALLOW_PLAIN") {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
}
