package main

import (
	"bytes"
	"context"
	"net"
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
		{"secret\n", []string{"user", "add", "alice@localhost", "--data", dir}, 1, "", "no database at " + filepath.Join(dir, "ambrosia.db")},
		{"", []string{"user", "list", "--data", dir}, 1, "", "no database at " + filepath.Join(dir, "ambrosia.db")},
		{"secret\n", []string{"user", "add", "alice@localhost", "--data", dir, "--create"}, 0, "created alice@localhost\n", ""},
		{"", []string{"user", "add", "Bob@LocalHost", "--data", dir, "--password", "pw"}, 0, "created bob@localhost\n", ""},
		{"again\n", []string{"user", "add", "alice@localhost", "--data", dir}, 1, "", "already exists"},
		{"", []string{"user", "list", "--data", dir}, 0, "alice@localhost\nbob@localhost\n", ""},
		{"new\n", []string{"user", "passwd", "alice@localhost", "--data", dir}, 0, "changed the password of alice@localhost\n", ""},
		{"new\n", []string{"user", "passwd", "carol@localhost", "--data", dir}, 1, "", "no user"},
		{"", []string{"user", "del", "bob@localhost", "--data", dir}, 0, "deleted bob@localhost\n", ""},
		{"", []string{"user", "del", "bob@localhost", "--data", dir}, 1, "", "no user"},
		{"", []string{"user", "list", "localhost", "--data", dir}, 0, "alice@localhost\n", ""},
		{"", []string{"user", "list", "LocalHost", "--data", dir}, 0, "alice@localhost\n", ""},
		{"", []string{"user", "list", "example.org", "--data", dir}, 1, "", "example.org is not a served domain (localhost)"},
		{"", []string{"user", "list", "a@b", "--data", dir}, 1, "", "not a domain"},
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

// TestHelp: every command and subcommand shows its own usage and only the
// flags it reads, -h and --help exit 0 everywhere, and a mistyped command
// or flag is answered with the closest known one.
func TestHelp(t *testing.T) {
	helps := []struct {
		args    []string
		usage   string   // the usage line's start
		has     []string // flags listed
		hasNot  []string // flags the command does not read
		comment string
	}{
		{args: []string{"-h"}, usage: "usage: ambrosia <command>"},
		{args: []string{"help"}, usage: "usage: ambrosia <command>"},
		{args: []string{"serve", "-h"}, usage: "usage: ambrosia serve", has: []string{"--c2s-addr", "--allow-registration", "--domain", "--component"}},
		{args: []string{"gateway", "--help"}, usage: "usage: ambrosia gateway", has: []string{"--c2s-addr", "--service-secret", "--service-ca"}, hasNot: []string{"--domain", "--allow-registration", "--data"}},
		{args: []string{"service", "-h"}, usage: "usage: ambrosia service sm|muc"},
		{args: []string{"service", "sm", "-h"}, usage: "usage: ambrosia service sm", has: []string{"--gateway", "--domain", "--data"}, hasNot: []string{"--c2s-addr", "--allow-plain", "--component"}},
		{args: []string{"service", "muc", "--help"}, usage: "usage: ambrosia service muc"},
		{args: []string{"user", "--help"}, usage: "usage: ambrosia user add|passwd|del|list"},
		{args: []string{"user", "-h"}, usage: "usage: ambrosia user add|passwd|del|list"},
		{args: []string{"user", "add", "-h"}, usage: "usage: ambrosia user add JID", has: []string{"--password", "--data", "--domain", "--config"}, hasNot: []string{"--c2s-addr", "--allow-plain", "--log-level", "--component"}},
		{args: []string{"user", "passwd", "--help"}, usage: "usage: ambrosia user passwd JID", has: []string{"--password"}},
		{args: []string{"user", "del", "-h"}, usage: "usage: ambrosia user del JID", hasNot: []string{"--password", "--c2s-addr"}},
		{args: []string{"user", "list", "-h"}, usage: "usage: ambrosia user list [DOMAIN]", hasNot: []string{"--password"}},
		{args: []string{"check", "-h"}, usage: "usage: ambrosia check", has: []string{"--remote"}, hasNot: []string{"--c2s-addr"}},
		{args: []string{"bench", "-h"}, usage: "usage: ambrosia bench <mode>"},
		{args: []string{"bench", "idle", "-h"}, usage: "usage: ambrosia bench idle", has: []string{"--count", "--addr"}},
		{args: []string{"bench", "users", "--help"}, usage: "usage: ambrosia bench users", has: []string{"--data", "--count"}, hasNot: []string{"--addr"}},
		{args: []string{"bridge", "-h"}, usage: "usage: ambrosia bridge run|check"},
		{args: []string{"bridge", "run", "-h"}, usage: "usage: ambrosia bridge run NAME", has: []string{"--config"}},
		{args: []string{"bridge", "list", "-h"}, usage: "usage: ambrosia bridge list"},
		{args: []string{"version", "-h"}, usage: "usage: ambrosia version", has: []string{"--data", "--config"}},
		{args: []string{"backup", "-h"}, usage: "usage: ambrosia backup DIR", has: []string{"--data", "--config"}, hasNot: []string{"--c2s-addr", "--force"}},
		{args: []string{"restore", "--help"}, usage: "usage: ambrosia restore DIR", has: []string{"--force", "--data"}, hasNot: []string{"--c2s-addr"}},
		{args: []string{"import", "-h"}, usage: "usage: ambrosia import FILE|DIR", has: []string{"--data", "--dry-run", "--muc-service"}, hasNot: []string{"--c2s-addr", "--force"}},
		{args: []string{"export", "--help"}, usage: "usage: ambrosia export FILE", has: []string{"--data", "--force"}, hasNot: []string{"--c2s-addr"}},
		{args: []string{"help", "user", "add"}, usage: "usage: ambrosia user add JID"},
		{args: []string{"reload", "-h"}, usage: "usage: ambrosia reload", has: []string{"--data", "--config"}, hasNot: []string{"--c2s-addr"}},
	}
	for _, h := range helps {
		code, out, errOut := runCmd(t, "", h.args...)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, h.usage) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 0 and a usage starting %q", h.args, code, out, errOut, h.usage)
			continue
		}
		for _, f := range h.has {
			if !strings.Contains(out, "\n  "+f+" ") && !strings.Contains(out, "\n  "+f+"\n") {
				t.Errorf("%q: no %s in\n%s", h.args, f, out)
			}
		}
		for _, f := range h.hasNot {
			if strings.Contains(out, f+" ") || strings.Contains(out, f+"\n") {
				t.Errorf("%q: lists %s, which it does not read:\n%s", h.args, f, out)
			}
		}
	}

	mistakes := []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"serv"}, 2, `unknown command "serv" (did you mean "serve"?)`},
		{[]string{"usr", "list"}, 2, `(did you mean "user"?)`},
		{[]string{"user"}, 2, "ambrosia user: missing subcommand (add, passwd, del, list)"},
		{[]string{"user", "ad", "a@localhost"}, 2, `unknown subcommand "ad" (did you mean "add"?)`},
		{[]string{"user", "lsit"}, 2, `(did you mean "list"?)`},
		{[]string{"bench", "idl"}, 2, `(did you mean "idle"?)`},
		{[]string{"service", "mcu"}, 2, `(did you mean "muc"?)`},
		{[]string{"serve", "--c2s-adr", ":1"}, 2, "unknown flag --c2s-adr (did you mean --c2s-addr?)"},
		{[]string{"user", "add", "a@localhost", "--pasword", "x"}, 2, "(did you mean --password?)"},
		{[]string{"user", "list", "--c2s-addr", ":1"}, 2, "unknown flag --c2s-addr\n"},
		{[]string{"gateway", "--domain", "example.org"}, 2, "unknown flag --domain"},
		{[]string{"user", "add"}, 2, "usage: ambrosia user add JID"},
		{[]string{"serve", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"relaod"}, 2, `(did you mean "reload"?)`},
	}
	for _, m := range mistakes {
		code, _, errOut := runCmd(t, "", m.args...)
		if code != m.code || !strings.Contains(errOut, m.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", m.args, code, errOut, m.code, m.want)
		}
	}
}

func TestClosest(t *testing.T) {
	known := []string{"serve", "gateway", "service", "user", "version"}
	for w, want := range map[string]string{"serv": "serve", "gatewya": "gateway", "vers": "version", "xyzzy": "", "sevrice": "service", "s": ""} {
		if got := closest(w, known); got != want {
			t.Errorf("closest(%q) = %q, want %q", w, got, want)
		}
	}
}

// TestListenerInUse: a listener that cannot bind is reported once, before
// anything else starts, naming the listener and the settings that move
// it.
func TestListenerInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().String()
	t.Setenv("AMBROSIA_UPLOAD_ADDR", freeAddr(t))
	code, _, errOut := runCmd(t, "", "serve", "--data", t.TempDir(), "--c2s-addr", busy, "--c2s-tls-addr", "")
	if code != 1 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, w := range []string{"c2s.addr: cannot listen on " + busy, "address already in use", "AMBROSIA_C2S_ADDR", "--c2s-addr"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("no %q in %q", w, errOut)
		}
	}
	for _, w := range []string{"shutting down", "upload", "muc"} {
		if strings.Contains(errOut, w) {
			t.Errorf("%q in %q: the failure comes after a start", w, errOut)
		}
	}
	if n := strings.Count(errOut, busy); n != 1 {
		t.Errorf("the address is named %d times in %q", n, errOut)
	}

	// The gateway says which settings let services authenticate.
	t.Setenv("AMBROSIA_SERVICE_SECRET", "")
	code, _, errOut = runCmd(t, "", "gateway", "--c2s-addr", freeAddr(t), "--c2s-tls-addr", "", "--service-addr", freeAddr(t))
	if code != 1 {
		t.Fatalf("gateway without a secret: exit %d, stderr %q", code, errOut)
	}
	for _, w := range []string{"--service-secret", "AMBROSIA_SERVICE_SECRET", "--service-ca"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("gateway without a secret: no %q in %q", w, errOut)
		}
	}
	code, _, errOut = runCmd(t, "", "gateway", "--c2s-addr", freeAddr(t), "--c2s-tls-addr", "", "--service-addr", busy, "--service-secret", "s3cret-s3cret-s3cret")
	if code != 1 || !strings.Contains(errOut, "service listener: cannot listen on "+busy) || !strings.Contains(errOut, "--service-addr") || strings.Contains(errOut, "AMBROSIA_SERVICE") {
		t.Fatalf("gateway with its service listener in use: exit %d, stderr %q", code, errOut)
	}
}

func TestInviteCommand(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runCmd(t, "", "invite", "localhost", "--data", dir); code != 1 || !strings.Contains(errOut, "no database") {
		t.Fatalf("invite without a database: code %d, stderr %q", code, errOut)
	}
	runCmd(t, "", "user", "add", "alice@localhost", "--password", "pw", "--data", dir, "--create")
	steps := []struct {
		args []string
		code int
		out  string // a prefix of the URI
		err  string
	}{
		{[]string{"invite", "localhost", "--data", dir}, 0, "xmpp:localhost?register;preauth=", "valid until"},
		{[]string{"invite", "--contact", "alice@localhost", "--expires", "2h", "--data", dir}, 0, "xmpp:alice@localhost?roster;preauth=", ""},
		{[]string{"invite", "localhost", "--contact", "alice@localhost", "--data", dir}, 0, "xmpp:alice@localhost?roster;preauth=", ""},
		{[]string{"invite", "--contact", "bob@localhost", "--data", dir}, 1, "", "no user bob@localhost"},
		{[]string{"invite", "example.org", "--data", dir}, 1, "", "not a served domain"},
		{[]string{"invite", "example.org", "--contact", "alice@localhost", "--data", dir}, 1, "", "contact's domain"},
		{[]string{"invite", "localhost", "--expires", "soon", "--data", dir}, 1, "", "invalid expiry"},
		{[]string{"invite", "--data", dir}, 2, "", "want one domain"},
	}
	for _, s := range steps {
		code, out, errOut := runCmd(t, "", s.args...)
		if code != s.code || !strings.HasPrefix(out, s.out) || !strings.Contains(errOut, s.err) {
			t.Fatalf("%v: code %d out %q err %q", s.args, code, out, errOut)
		}
	}
}
