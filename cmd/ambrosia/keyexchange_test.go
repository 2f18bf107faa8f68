package main

import (
	"crypto/tls"
	"slices"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/config"
)

func TestKeyExchanges(t *testing.T) {
	for _, tc := range []struct {
		name        string
		postQuantum bool
		want        []tls.CurveID // nil: Go's defaults
	}{
		{"classical without post_quantum", false, []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}},
		{"post_quantum keeps Go's defaults", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &tls.Config{}
			keyExchanges(c, config.TLS{PostQuantum: tc.postQuantum})
			if !slices.Equal(c.CurvePreferences, tc.want) {
				t.Errorf("CurvePreferences = %v, want %v", c.CurvePreferences, tc.want)
			}
			if slices.Contains(c.CurvePreferences, tls.X25519MLKEM768) {
				t.Error("the hybrid is listed")
			}
		})
	}
}
