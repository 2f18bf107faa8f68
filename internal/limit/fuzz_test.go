package limit

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzParseNets: whatever ParseNets accepts contains the address it was
// written with.
func FuzzParseNets(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::ffff:10.0.0.0/104", "::1", "fe80::1%eth0", "1.2.3.4/33"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNets([]string{s})
		if err != nil {
			return
		}
		if len(n) != 1 {
			t.Fatalf("%q: %d networks", s, len(n))
		}
		addr, _, _ := strings.Cut(strings.TrimSpace(s), "/")
		a, err := netip.ParseAddr(addr)
		if err != nil {
			t.Fatalf("%q accepted, but %q is no address", s, addr)
		}
		if !n.Contains(a) {
			t.Fatalf("%q does not contain %s", s, a)
		}
	})
}
