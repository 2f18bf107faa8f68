package main

import (
	"io"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/privilege"
)

const allGroups = groupStore | groupLog | groupMonitor | groupClients | groupRegistration | groupComponents

func TestComponentFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string // substring; "" means valid
		want    string // domains as componentFlags prints them
	}{
		{name: "none", args: nil, want: ""},
		{name: "two", args: []string{"--component", "echo.localhost=s", "--component", "IRC.localhost=a=b"}, want: "echo.localhost=...,irc.localhost=..."},
		{name: "no secret", args: []string{"--component", "echo.localhost="}, wantErr: "usage"},
		{name: "no equals", args: []string{"--component", "echo.localhost"}, wantErr: "usage"},
		{name: "served domain", args: []string{"--component", "localhost=s"}, wantErr: "component.external"},
		{name: "bad addr", args: []string{"--component", "e.localhost=s", "--component-addr", "nowhere"}, wantErr: "component.addr"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AMBROSIA_CONFIG", "")
			fs := newCommand("serve", "", "", io.Discard, io.Discard)
			var cf configFlags
			cf.register(fs.FlagSet, allGroups)
			_, err := fs.parse(append([]string{"--data", t.TempDir()}, tc.args...))
			if err == nil {
				c, lerr := cf.load()
				err = lerr
				if err == nil {
					got := componentFlags(c.Component.External)
					if got.String() != tc.want {
						t.Fatalf("components %q, want %q", got.String(), tc.want)
					}
					if len(got) > 0 && got[len(got)-1].Secret != "a=b" {
						t.Fatalf("secret %q", got[len(got)-1].Secret)
					}
				}
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestComponentPrivilegeFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string // substring; "" means valid
		check   func(t *testing.T, g privilege.Grant)
	}{
		{name: "granted", args: []string{"--component", "irc.localhost=s", "--component-privileges", "IRC.localhost=roster:both,message:outgoing,presence:roster,iq:urn:xmpp:bookmarks:1:set"},
			check: func(t *testing.T, g privilege.Grant) {
				if g.Roster != privilege.Both || !g.RosterPush || !g.Message || g.Presence != privilege.PresenceRoster || g.IQ["urn:xmpp:bookmarks:1"] != privilege.Set {
					t.Fatalf("got %+v", g)
				}
			}},
		{name: "version 1", args: []string{"--component", "irc.localhost=s", "--component-privileges", "irc.localhost=roster:set,namespace:urn:xmpp:privilege:1"},
			check: func(t *testing.T, g privilege.Grant) {
				if g.Roster != privilege.Set || g.NS() != privilege.NS1 {
					t.Fatalf("got %+v", g)
				}
			}},
		{name: "none without the flag", args: []string{"--component", "irc.localhost=s"},
			check: func(t *testing.T, g privilege.Grant) {
				if !g.Empty() {
					t.Fatalf("got %+v", g)
				}
			}},
		{name: "unknown component", args: []string{"--component", "irc.localhost=s", "--component-privileges", "echo.localhost=roster:both"}, wantErr: "no external component echo.localhost"},
		{name: "unknown key", args: []string{"--component", "irc.localhost=s", "--component-privileges", "irc.localhost=pubsub:both"}, wantErr: "usage"},
		{name: "bad value", args: []string{"--component", "irc.localhost=s", "--component-privileges", "irc.localhost=roster:all"}, wantErr: "component.external.privileges.roster"},
		{name: "no values", args: []string{"--component", "irc.localhost=s", "--component-privileges", "irc.localhost"}, wantErr: "usage"},
		{name: "bad push", args: []string{"--component", "irc.localhost=s", "--component-privileges", "irc.localhost=roster_push:maybe"}, wantErr: "usage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AMBROSIA_CONFIG", "")
			fs := newCommand("serve", "", "", io.Discard, io.Discard)
			var cf configFlags
			cf.register(fs.FlagSet, allGroups)
			_, err := fs.parse(append([]string{"--data", t.TempDir()}, tc.args...))
			if err == nil {
				var c config.Config
				if c, err = cf.load(); err == nil {
					g, gerr := c.Component.External[0].Privileges.Grant()
					if gerr != nil {
						t.Fatal(gerr)
					}
					tc.check(t, g)
				}
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestEmptyAddressFlags: an empty address flag disables its listener, as
// the same empty value in the file or the environment does.
func TestEmptyAddressFlags(t *testing.T) {
	cases := []struct {
		args []string
		get  func(c config.Config) string
	}{
		{[]string{"--c2s-tls-addr", ""}, func(c config.Config) string { return c.C2S.TLSAddr }},
		{[]string{"--c2s-tls-addr="}, func(c config.Config) string { return c.C2S.TLSAddr }},
		{[]string{"-c2s-tls-addr="}, func(c config.Config) string { return c.C2S.TLSAddr }},
		{[]string{"--c2s-addr", ""}, func(c config.Config) string { return c.C2S.Addr }},
		{[]string{"--component-addr", ""}, func(c config.Config) string { return c.Component.Addr }},
	}
	for _, tc := range cases {
		t.Setenv("AMBROSIA_CONFIG", "")
		fs := newCommand("serve", "", "", io.Discard, io.Discard)
		var cf configFlags
		cf.register(fs.FlagSet, allGroups)
		if _, err := fs.parse(append([]string{"--data", t.TempDir()}, tc.args...)); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		c, err := cf.load()
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got := tc.get(c); got != "" {
			t.Errorf("%q: listener address %q, want it disabled", tc.args, got)
		}
	}
	// Without the flag, the default stays.
	fs := newCommand("serve", "", "", io.Discard, io.Discard)
	var cf configFlags
	cf.register(fs.FlagSet, allGroups)
	if _, err := fs.parse([]string{"--data", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if c, err := cf.load(); err != nil || c.C2S.TLSAddr != ":5223" || c.C2S.Addr != ":5222" {
		t.Fatalf("defaults: %q %q %v", c.C2S.Addr, c.C2S.TLSAddr, err)
	}
}

// TestUnknownEnv: an AMBROSIA_* variable nothing reads is warned about,
// with the closest known one, as the same typo in the file is refused.
func TestUnknownEnv(t *testing.T) {
	got := unknownEnv([]string{"AMBROSIA_C2S_ADR=:5222", "AMBROSIA_C2S_ADDR=:5222", "AMBROSIA_CONFIG=x", "HOME=/root", "AMBROSIA_SERVICE_SECRET=s", "AMBROSIA_WHATEVER_THIS_IS=1"})
	want := []string{
		"unknown environment variable AMBROSIA_C2S_ADR (did you mean AMBROSIA_C2S_ADDR?); it is ignored",
		"unknown environment variable AMBROSIA_WHATEVER_THIS_IS; it is ignored",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %q\nwant %q", got, want)
	}

	// serve logs it at warn; the user commands print it.
	t.Setenv("AMBROSIA_CONFIG", "")
	t.Setenv("AMBROSIA_C2S_ADR", ":5222")
	fs := newCommand("serve", "", "", io.Discard, io.Discard)
	var cf configFlags
	cf.register(fs.FlagSet, allGroups)
	if _, err := fs.parse([]string{"--data", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if _, err := cf.load(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	cf.warnEnv(newLogger(config.Log{Format: "text", Level: "info"}, &b))
	if !strings.Contains(b.String(), "level=WARN") || !strings.Contains(b.String(), "AMBROSIA_C2S_ADR (did you mean AMBROSIA_C2S_ADDR?)") {
		t.Fatalf("log %q", b.String())
	}
	dir := t.TempDir()
	runCmd(t, "", "user", "add", "a@localhost", "--password", "pw", "--data", dir, "--create")
	if _, _, errOut := runCmd(t, "", "user", "list", "--data", dir); !strings.Contains(errOut, "warning: unknown environment variable AMBROSIA_C2S_ADR (did you mean AMBROSIA_C2S_ADDR?)") {
		t.Fatalf("user list: stderr %q", errOut)
	}
}
