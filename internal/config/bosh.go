package config

import (
	"errors"
	"time"
)

// BOSH configures XMPP over BOSH (XEP-0124, XEP-0206) for browser
// clients: served at /http-bind on the [http] listener when it is on.
type BOSH struct {
	// Enabled serves BOSH on the [http] listener, as WebSocket is.
	Enabled bool `toml:"enabled"`
	// MaxWait caps the time a request is held waiting for something to
	// send (the client's wait).
	MaxWait Duration `toml:"max_wait"`
	// MaxHold caps the requests held at once per session (hold).
	MaxHold int `toml:"max_hold"`
	// Inactivity ends a session left without a request that long.
	Inactivity Duration `toml:"inactivity"`
	// MaxPause caps the time a client may pause its session (pause).
	MaxPause Duration `toml:"max_pause"`
	// MaxBodySize is the largest request body, in bytes; bigger ones are
	// refused with HTTP 413.
	MaxBodySize int `toml:"max_body_size"`
}

// defaultBOSH is ejabberd's and Prosody's behaviour, near enough.
func defaultBOSH() BOSH {
	return BOSH{Enabled: true, MaxWait: Duration(60 * time.Second), MaxHold: 1, Inactivity: Duration(60 * time.Second),
		MaxPause: Duration(120 * time.Second), MaxBodySize: 1 << 20}
}

func (b *BOSH) validate() error {
	switch {
	case b.MaxWait < Duration(time.Second):
		return errors.New("bosh.max_wait: at least 1s")
	case b.MaxHold < 1:
		return errors.New("bosh.max_hold: at least 1")
	case b.Inactivity < Duration(time.Second):
		return errors.New("bosh.inactivity: at least 1s")
	case b.MaxPause < 0:
		return errors.New("bosh.max_pause: must not be negative")
	case b.MaxBodySize < 1024:
		return errors.New("bosh.max_body_size: at least 1024 bytes")
	}
	return nil
}
