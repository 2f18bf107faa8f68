package limit

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestParseNets(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		in1     string
		want    bool
		wantErr bool
	}{
		{in: []string{"10.0.0.0/8"}, in1: "10.1.2.3", want: true},
		{in: []string{"10.0.0.0/8"}, in1: "11.1.2.3", want: false},
		{in: []string{"192.0.2.7"}, in1: "192.0.2.7", want: true},
		{in: []string{"192.0.2.7"}, in1: "::ffff:192.0.2.7", want: true},
		{in: []string{"2001:db8::/32"}, in1: "2001:db8:1::1", want: true},
		{in: []string{"::ffff:10.0.0.0/104"}, in1: "10.9.9.9", want: true},
		{in: []string{"nonsense"}, wantErr: true},
		{in: []string{"fe80::1%eth0"}, wantErr: true},
		{in: []string{"10.0.0.0/99"}, wantErr: true},
	} {
		n, err := ParseNets(tc.in)
		if (err != nil) != tc.wantErr {
			t.Fatalf("ParseNets(%q): err %v", tc.in, err)
		}
		if err != nil {
			continue
		}
		if got := n.Contains(netip.MustParseAddr(tc.in1)); got != tc.want {
			t.Errorf("%q contains %s = %v, want %v", tc.in, tc.in1, got, tc.want)
		}
	}
}

func TestAddrOf(t *testing.T) {
	if got := AddrOf(&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 5}); got != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("AddrOf = %v", got)
	}
	if got := AddrOf(&net.UnixAddr{Name: "/x"}); got.IsValid() {
		t.Errorf("AddrOf(unix) = %v", got)
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestConns(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	ex := netip.MustParseAddr("10.0.0.1")
	c := NewConns(ConnConfig{MaxUnauthenticated: 3, MaxUnauthenticatedPerAddr: 2, MaxPerAddr: 3, Exempt: Nets{netip.MustParsePrefix("10.0.0.0/8")}})
	t1, r := c.Admit(a)
	t2, _ := c.Admit(a)
	if t1 == nil || t2 == nil || r != "" {
		t.Fatal("first two refused")
	}
	if _, r := c.Admit(a); r != TooManyUnauthenticatedPerAddr {
		t.Fatalf("third from a: %q", r)
	}
	t1.Authenticated()
	t1.Authenticated() // twice counts once
	t3, _ := c.Admit(a)
	if t3 == nil {
		t.Fatal("after authentication, refused")
	}
	if _, r := c.Admit(a); r != TooManyPerAddr {
		t.Fatalf("fourth from a: %q", r)
	}
	tb, _ := c.Admit(b)
	if _, r := c.Admit(b); r != TooManyUnauthenticated {
		t.Fatalf("global cap: %q", r)
	}
	for range 5 {
		if tk, _ := c.Admit(ex); tk == nil || !tk.Exempt() {
			t.Fatal("exempt address refused")
		}
	}
	t2.Release()
	t2.Release()
	tb.Release()
	t3.Release()
	t1.Release()
	if n := c.Unauthenticated(); n != 5 { // the exempt ones
		t.Fatalf("unauthenticated = %d", n)
	}
}

func TestConnsEvictFlooder(t *testing.T) {
	c := NewConns(ConnConfig{MaxUnauthenticated: 4})
	flooder := netip.MustParseAddr("192.0.2.66")
	var evicted []int
	var tickets []*Ticket
	for i := range 4 {
		tk, r := c.Admit(flooder)
		if tk == nil {
			t.Fatalf("flood %d refused: %q", i, r)
		}
		tk.OnEvict(func() { evicted = append(evicted, i) })
		tickets = append(tickets, tk)
	}
	// A newcomer takes the oldest flood connection's place, then another.
	for range 2 {
		if tk, r := c.Admit(netip.MustParseAddr("198.51.100.1")); tk == nil {
			t.Fatalf("newcomer refused: %q", r)
		}
	}
	if len(evicted) != 2 || evicted[0] != 0 || evicted[1] != 1 {
		t.Fatalf("evicted %v, want [0 1]", evicted)
	}
	// Now the flooder holds 2 and the newcomer 2: no more evictions.
	if _, r := c.Admit(netip.MustParseAddr("198.51.100.1")); r != TooManyUnauthenticated {
		t.Fatalf("balanced: %q", r)
	}
	if n := c.Unauthenticated(); n != 4 {
		t.Fatalf("unauthenticated %d", n)
	}
	for _, tk := range tickets {
		tk.Release()
	}
	if n := c.Unauthenticated(); n != 2 {
		t.Fatalf("after release: unauthenticated %d", n)
	}
}

func TestConnsMax(t *testing.T) {
	c := NewConns(ConnConfig{Max: 2, Exempt: Nets{netip.MustParsePrefix("10.0.0.0/8")}})
	a, _ := c.Admit(netip.MustParseAddr("10.0.0.1"))
	c.Admit(netip.MustParseAddr("192.0.2.1"))
	if _, r := c.Admit(netip.MustParseAddr("10.0.0.2")); r != ServerFull {
		t.Fatalf("third: %q", r)
	}
	a.Release()
	if tk, _ := c.Admit(netip.MustParseAddr("10.0.0.2")); tk == nil {
		t.Fatal("refused after a release")
	}
}

func TestConnsRate(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := NewConns(ConnConfig{NewPerSecond: 2, NewBurst: 3})
	c.now = clk.now
	a := netip.MustParseAddr("2001:db8::1")
	other := netip.MustParseAddr("2001:db8::2") // same /64
	for i := range 3 {
		tk, _ := c.Admit(a)
		if tk == nil {
			t.Fatalf("burst %d refused", i)
		}
		tk.Release()
	}
	if _, r := c.Admit(other); r != ConnectingTooOften {
		t.Fatalf("past the burst, same /64: %q", r)
	}
	clk.t = clk.t.Add(500 * time.Millisecond)
	if tk, _ := c.Admit(a); tk == nil {
		t.Fatal("refilled token refused")
	} else {
		tk.Release()
	}
	clk.t = clk.t.Add(10 * time.Second)
	c.Admit(netip.MustParseAddr("192.0.2.9"))
	if n := c.Tracked(); n != 1 {
		t.Fatalf("tracked %d addresses after the sweep, want 1", n)
	}
}

func TestFailures(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	f := NewFailures(FailureConfig{PerAddr: 5, PerAccount: 7, Window: time.Minute, Delay: time.Second, MaxDelay: 4 * time.Second, Exempt: Nets{netip.MustParsePrefix("10.0.0.0/8")}})
	f.now = clk.now
	a := netip.MustParseAddr("192.0.2.1")
	var delays []time.Duration
	for range 5 {
		d, r := f.Check(a, "juliet@example.com")
		if r != "" {
			t.Fatalf("refused early: %q", r)
		}
		delays = append(delays, d)
		f.Failed(a, "juliet@example.com")
	}
	want := []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("delays %v, want %v", delays, want)
		}
	}
	if _, r := f.Check(a, "romeo@example.com"); r != LoginsFromAddr {
		t.Fatalf("sixth attempt: %q", r)
	}
	// Other addresses for the same account: refused after 7 in all.
	b := netip.MustParseAddr("198.51.100.1")
	f.Failed(b, "juliet@example.com")
	f.Failed(b, "juliet@example.com")
	if _, r := f.Check(b, "juliet@example.com"); r != LoginsForAccount {
		t.Fatalf("account: %q", r)
	}
	if _, r := f.Check(b, "romeo@example.com"); r != "" {
		t.Fatalf("other account refused: %q", r)
	}
	if d, r := f.Check(netip.MustParseAddr("10.1.1.1"), "juliet@example.com"); d != 0 || r != "" {
		t.Fatalf("exempt: %v %q", d, r)
	}
	clk.t = clk.t.Add(time.Minute)
	if d, r := f.Check(a, "juliet@example.com"); d != 0 || r != "" {
		t.Fatalf("after the window: %v %q", d, r)
	}
	f.Failed(b, "romeo@example.com")
	f.Succeeded(b, "romeo@example.com")
	if _, n := f.Tracked(); n != 1 {
		t.Fatalf("accounts tracked %d", n)
	}
}

// TestFailuresOwnerNotLockedOut: guesses from elsewhere lock an account,
// but not for the networks its owner logged in from.
func TestFailuresOwnerNotLockedOut(t *testing.T) {
	f := NewFailures(FailureConfig{PerAddr: 100, PerAccount: 3, Window: time.Hour, Delay: time.Second, MaxDelay: time.Second})
	home := netip.MustParseAddr("2001:db8:1:2::7")
	f.Succeeded(home, "juliet@example.com")
	for i := range 5 {
		f.Failed(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), "juliet@example.com")
	}
	if _, r := f.Check(netip.MustParseAddr("203.0.113.1"), "juliet@example.com"); r != LoginsForAccount {
		t.Fatalf("from elsewhere: %q", r)
	}
	// The same /64 as before: neither refused nor delayed.
	if d, r := f.Check(netip.MustParseAddr("2001:db8:1:2::99"), "juliet@example.com"); d != 0 || r != "" {
		t.Fatalf("from home: %v %q", d, r)
	}
}

func TestFailuresBounded(t *testing.T) {
	f := NewFailures(DefaultFailureConfig())
	a := netip.MustParseAddr("192.0.2.1")
	for i := range maxTracked + 10 {
		f.Failed(a, "u"+string(rune('a'+i%26))+itoa(i))
	}
	if _, n := f.Tracked(); n > maxTracked {
		t.Fatalf("%d accounts tracked", n)
	}
}

func itoa(i int) string {
	b := []byte{}
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBucket(Rate{Bytes: 1000, Burst: 2000}, now)
	if d := b.Take(2000, now); d != 0 {
		t.Fatalf("burst delayed %v", d)
	}
	if d := b.Take(500, now); d != 500*time.Millisecond {
		t.Fatalf("over burst: %v", d)
	}
	if d := b.Take(0, now.Add(500*time.Millisecond)); d != 0 {
		t.Fatalf("after the pause: %v", d)
	}
	var none Bucket
	if d := none.Take(1<<20, now); d != 0 {
		t.Fatalf("zero rate delayed %v", d)
	}
}

func TestEvents(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	e := NewEvents(2, time.Hour, Nets{netip.MustParsePrefix("10.0.0.0/8")})
	e.now = clk.now
	a := netip.MustParseAddr("192.0.2.1")
	for range 2 {
		if !e.Allow(a) {
			t.Fatal("refused early")
		}
		e.Add(a)
	}
	if e.Allow(a) {
		t.Fatal("third allowed")
	}
	if !e.Allow(netip.MustParseAddr("192.0.2.2")) {
		t.Fatal("other address refused")
	}
	ex := netip.MustParseAddr("10.0.0.1")
	for range 5 {
		e.Add(ex)
	}
	if !e.Allow(ex) {
		t.Fatal("exempt address refused")
	}
	clk.t = clk.t.Add(time.Hour)
	if !e.Allow(a) {
		t.Fatal("refused after the window")
	}
	var none *Events
	if !none.Allow(a) {
		t.Fatal("nil refused")
	}
}
