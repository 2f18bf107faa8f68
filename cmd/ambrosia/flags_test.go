package main

import (
	"io"
	"strings"
	"testing"
)

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
			fs := newFlagSet("serve", io.Discard)
			var cf configFlags
			cf.register(fs)
			_, err := parse(fs, append([]string{"--data", t.TempDir()}, tc.args...))
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
