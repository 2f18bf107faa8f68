// Package limit keeps the counters the edges of the server consult to
// refuse abuse from the network: connections per address, unauthenticated
// connections, new connections per second, failed logins per address and
// per account, and read-rate shaping. It knows nothing of XMPP; the edges
// turn its refusals into stream errors.
//
// Addresses are counted by network: an IPv4 address alone, an IPv6
// address by its /64, since one IPv6 host commonly holds a whole /64 and
// could otherwise rotate addresses past every per-address limit.
package limit

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Nets is a list of networks exempt from the limits (an operator's own
// monitoring, a trusted gateway in front of the server).
type Nets []netip.Prefix

// ParseNets parses CIDR prefixes ("10.0.0.0/8", "2001:db8::/32") or bare
// addresses, which stand for themselves.
func ParseNets(ss []string) (Nets, error) {
	var n Nets
	for _, s := range ss {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is neither an address nor a CIDR prefix", s)
			}
			a = a.Unmap()
			n = append(n, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix", s)
		}
		if p.Addr().Is4In6() {
			// An IPv4-mapped prefix stands for IPv4 addresses: one that
			// does not fit in the mapped range is a typo.
			if p.Bits() < 96 {
				return nil, fmt.Errorf("%q mixes an IPv4-mapped address with a prefix wider than /96", s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		n = append(n, p.Masked())
	}
	return n, nil
}

// Contains reports whether a lies in one of the networks.
func (n Nets) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range n {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// AddrOf returns the IP address of a remote address (a *net.TCPAddr, or
// anything whose String is host:port); the zero Addr when there is none,
// as for a Unix socket.
func AddrOf(a net.Addr) netip.Addr {
	if a == nil {
		return netip.Addr{}
	}
	if t, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(t.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// key is the network an address is counted under.
func key(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p
	}
	return netip.PrefixFrom(a, 32)
}

// Strings returns the networks as CIDR prefixes, for logs.
func (n Nets) Strings() []string {
	s := make([]string, len(n))
	for i, p := range n {
		s[i] = p.String()
	}
	return s
}
