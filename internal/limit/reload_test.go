package limit

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestConnsSetConfig: bounds changed while connections are open apply to
// the next connections; the open ones stay counted and stay open.
func TestConnsSetConfig(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	c := NewConns(ConnConfig{MaxPerAddr: 5})
	var open []*Ticket
	for range 3 {
		tk, r := c.Admit(a)
		if r != "" {
			t.Fatalf("under the first cap: %s", r)
		}
		tk.Authenticated()
		open = append(open, tk)
	}
	tb, _ := c.Admit(b)
	tb.Authenticated()

	// Tightened below what a holds: a's next is refused, b still fits.
	c.SetConfig(ConnConfig{MaxPerAddr: 2})
	if _, r := c.Admit(a); r != TooManyPerAddr {
		t.Fatalf("a over the tightened cap: %q, want %q", r, TooManyPerAddr)
	}
	if tk, r := c.Admit(b); r != "" {
		t.Fatalf("b under the tightened cap: %q", r)
	} else {
		tk.Release()
	}
	// a's connections were not touched: releasing two brings a under
	// the cap again.
	open[0].Release()
	if _, r := c.Admit(a); r != TooManyPerAddr {
		t.Fatalf("a at the cap: %q", r)
	}
	open[1].Release()
	if tk, r := c.Admit(a); r != "" {
		t.Fatalf("a under the cap again: %q", r)
	} else {
		tk.Release()
	}

	// An exemption added live covers the next connections.
	c.SetConfig(ConnConfig{MaxPerAddr: 1, Exempt: Nets{netip.MustParsePrefix("192.0.2.1/32")}})
	if tk, r := c.Admit(a); r != "" || !tk.Exempt() {
		t.Fatalf("a exempt: %q, exempt %v", r, tk.Exempt())
	}
	if got := c.Config().MaxPerAddr; got != 1 {
		t.Errorf("Config().MaxPerAddr = %d", got)
	}
}

// TestConnsSetRate: a rate set by a reload shapes the next connections
// at once.
func TestConnsSetRate(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	a := netip.MustParseAddr("192.0.2.1")
	c := NewConns(ConnConfig{})
	c.now = clk.now
	for range 10 {
		tk, r := c.Admit(a)
		if r != "" {
			t.Fatalf("no rate: %q", r)
		}
		tk.Release()
	}
	c.SetConfig(ConnConfig{NewPerSecond: 1, NewBurst: 2})
	clk.t = clk.t.Add(time.Minute)
	got := 0
	for range 5 {
		if tk, r := c.Admit(a); r == "" {
			got++
			tk.Release()
		} else if r != ConnectingTooOften {
			t.Fatalf("refused for %q", r)
		}
	}
	if got != 2 {
		t.Errorf("%d admitted at once after the rate was set, want the burst of 2", got)
	}
}

// TestFailuresSetConfig: a bound lowered live refuses an address whose
// failures already reach it; an exemption added live lets it in.
func TestFailuresSetConfig(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	a := netip.MustParseAddr("192.0.2.1")
	f := NewFailures(FailureConfig{PerAddr: 10, Window: time.Hour})
	f.now = clk.now
	for range 3 {
		f.Failed(a, "")
	}
	if _, r := f.Check(a, ""); r != "" {
		t.Fatalf("3 of 10: %q", r)
	}
	f.SetConfig(FailureConfig{PerAddr: 3, Window: time.Hour})
	if _, r := f.Check(a, ""); r != LoginsFromAddr {
		t.Fatalf("3 of 3 after the reload: %q, want %q", r, LoginsFromAddr)
	}
	// A shorter window: the failures are older than it.
	clk.t = clk.t.Add(2 * time.Minute)
	f.SetConfig(FailureConfig{PerAddr: 3, Window: time.Minute})
	if _, r := f.Check(a, ""); r != "" {
		t.Fatalf("failures out of the shortened window still count: %q", r)
	}
	f.SetConfig(FailureConfig{PerAddr: 3, Window: time.Hour, Exempt: Nets{netip.MustParsePrefix("192.0.2.0/24")}})
	if _, r := f.Check(a, ""); r != "" {
		t.Fatalf("exempt: %q", r)
	}
	if f.Config().PerAddr != 3 {
		t.Errorf("Config().PerAddr = %d", f.Config().PerAddr)
	}
}

// TestEventsSet: a bound set live applies to the next event.
func TestEventsSet(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	e := NewEvents(5, time.Hour, nil)
	e.Add(a)
	e.Add(a)
	if !e.Allow(a) {
		t.Fatal("2 of 5 refused")
	}
	e.Set(2, time.Hour, nil)
	if e.Allow(a) {
		t.Fatal("2 of 2 allowed after the bound was lowered")
	}
	e.Set(2, time.Hour, Nets{netip.MustParsePrefix("192.0.2.1/32")})
	if !e.Allow(a) {
		t.Fatal("exempt address refused")
	}
}

// TestSetConfigConcurrent: decisions and reloads at once are race-free
// (run with -race).
func TestSetConfigConcurrent(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	c := NewConns(ConnConfig{MaxPerAddr: 50})
	f := NewFailures(DefaultFailureConfig())
	e := NewEvents(3, time.Hour, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				if g == 0 {
					c.SetConfig(ConnConfig{MaxPerAddr: 10 + i%40, NewPerSecond: float64(i % 3), NewBurst: 5})
					cfg := DefaultFailureConfig()
					cfg.PerAddr = i % 7
					f.SetConfig(cfg)
					e.Set(i%4, time.Hour, nil)
					continue
				}
				if tk, _ := c.Admit(a); tk != nil {
					tk.Release()
				}
				f.Failed(a, "x")
				f.Check(a, "x")
				e.Allow(a)
				e.Add(a)
			}
		})
	}
	wg.Wait()
}
