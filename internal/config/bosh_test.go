package config

import (
	"strings"
	"testing"
	"time"
)

func TestBOSHConfig(t *testing.T) {
	cases := []struct {
		name, doc string
		wantErr   string // substring; "" means valid
		check     func(t *testing.T, c Config)
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			// On, and served once the [http] listener is; it opens no
			// listener of its own.
			if c.BOSH != defaultBOSH() || !c.BOSH.Enabled || c.APIEnabled() {
				t.Fatalf("got %+v", c.BOSH)
			}
		}},
		{name: "settings", doc: "[bosh]\nenabled = true\nmax_wait = '30s'\nmax_hold = 2\ninactivity = '2m'\nmax_pause = '0s'\nmax_body_size = 4096", check: func(t *testing.T, c Config) {
			b := c.BOSH
			if !b.Enabled || b.MaxWait != Duration(30*time.Second) || b.MaxHold != 2 || b.Inactivity != Duration(2*time.Minute) || b.MaxBodySize != 4096 || c.APIEnabled() {
				t.Fatalf("got %+v", b)
			}
		}},
		{name: "unknown key", doc: "[bosh]\nwait = '1s'", wantErr: "unknown key bosh.wait"},
		{name: "short wait", doc: "[bosh]\nmax_wait = '0s'", wantErr: "bosh.max_wait"},
		{name: "no hold", doc: "[bosh]\nmax_hold = 0", wantErr: "bosh.max_hold"},
		{name: "short inactivity", doc: "[bosh]\ninactivity = '10ms'", wantErr: "bosh.inactivity"},
		{name: "negative pause", doc: "[bosh]\nmax_pause = '-1s'", wantErr: "bosh.max_pause"},
		{name: "tiny body", doc: "[bosh]\nmax_body_size = 10", wantErr: "bosh.max_body_size"},
		{name: "off", doc: "[bosh]\nenabled = false", check: func(t *testing.T, c Config) {
			if c.BOSH.Enabled {
				t.Fatal("still on")
			}
		}},
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
