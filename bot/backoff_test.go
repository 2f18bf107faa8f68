package bot

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// TestReconnectBackoff: while the server cannot be reached, the bot
// tries again after a delay that doubles from ReconnectMin up to
// ReconnectMax, each with jitter in [delay/2, delay]. The test runs on
// the fake clock of testing/synctest, so the delays are exact.
func TestReconnectBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var dials []time.Time
		cfg := Config{
			JID: botJID, Password: botPass, Server: "127.0.0.1:5222",
			ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second,
			Dial: func(context.Context, string, string) (net.Conn, error) {
				dials = append(dials, time.Now())
				if len(dials) == 10 {
					cancel()
				}
				return nil, errors.New("connection refused")
			},
		}
		b, err := New(cfg, xmpptest.Discard())
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if len(dials) != 10 {
			t.Fatalf("%d dials, want 10", len(dials))
		}
		base := cfg.ReconnectMin
		for i := 1; i < len(dials); i++ {
			gap := dials[i].Sub(dials[i-1])
			if gap < base/2 || gap > base {
				t.Errorf("delay %d: %v, want between %v and %v", i, gap, base/2, base)
			}
			base = min(base*2, cfg.ReconnectMax)
		}
	})
}

// TestNextBase checks the doubling and its bounds.
func TestNextBase(t *testing.T) {
	lo, hi := time.Second, 10*time.Second
	var got []time.Duration
	var d time.Duration
	for range 6 {
		d = nextBase(d, lo, hi)
		got = append(got, d)
	}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("delays %v, want %v seconds", got, want)
		}
	}
	for range 1000 {
		if j := jitter(4 * time.Second); j < 2*time.Second || j > 4*time.Second {
			t.Fatalf("jitter(4s) = %v", j)
		}
	}
}
