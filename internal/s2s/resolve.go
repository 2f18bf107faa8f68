package s2s

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Resolver finds the servers of a domain. Tests inject one; the default is
// DNSResolver.
type Resolver interface {
	// LookupSRV returns the SRV records of _service._proto.name; no
	// records is not an error.
	LookupSRV(ctx context.Context, service, proto, name string) ([]*net.SRV, error)
	// LookupHost returns the addresses of host.
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// DNSResolver queries the name servers of a resolv.conf for SRV records
// (with github.com/miekg/dns) and the system resolver for addresses, so
// that the hosts file still applies to A and AAAA lookups.
type DNSResolver struct {
	conf   *dns.ClientConfig
	client *dns.Client
	hosts  *net.Resolver
}

// NewDNSResolver reads the name servers from path (normally
// /etc/resolv.conf).
func NewDNSResolver(path string) (*DNSResolver, error) {
	conf, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("s2s: resolver: %w", err)
	}
	return &DNSResolver{conf: conf, client: new(dns.Client), hosts: net.DefaultResolver}, nil
}

// LookupSRV implements Resolver.
func (r *DNSResolver) LookupSRV(ctx context.Context, service, proto, name string) ([]*net.SRV, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn("_"+service+"._"+proto+"."+name), dns.TypeSRV)
	m.RecursionDesired = true
	var lastErr error
	for _, srv := range r.conf.Servers {
		in, _, err := r.client.ExchangeContext(ctx, m, net.JoinHostPort(srv, r.conf.Port))
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		return srvRecords(in)
	}
	if lastErr == nil {
		lastErr = errors.New("no name server")
	}
	return nil, fmt.Errorf("srv %s: %w", name, lastErr)
}

// srvRecords extracts the SRV answers of a DNS reply.
func srvRecords(in *dns.Msg) ([]*net.SRV, error) {
	switch in.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return nil, fmt.Errorf("dns: %s", dns.RcodeToString[in.Rcode])
	}
	var out []*net.SRV
	for _, rr := range in.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, &net.SRV{Target: s.Target, Port: s.Port, Priority: s.Priority, Weight: s.Weight})
		}
	}
	return out, nil
}

// LookupHost implements Resolver.
func (r *DNSResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	return r.hosts.LookupHost(ctx, host)
}

// target is one place to connect to.
type target struct {
	host      string // for the record: the name it came from
	addr      string // host:port to dial
	directTLS bool
}

// errNoService means the domain declares that it has no XMPP service (a
// single SRV record whose target is ".", RFC 2782) or has no address.
var errNoService = errors.New("no server found")

// targets lists where to reach domain's server, in order of preference.
func targets(ctx context.Context, r Resolver, hosts map[string]string, domain string) ([]target, error) {
	if a, ok := hosts[domain]; ok {
		directTLS := false
		if rest, ok := strings.CutPrefix(a, "tls://"); ok {
			a, directTLS = rest, true
		}
		return []target{{host: domain, addr: a, directTLS: directTLS}}, nil
	}
	var recs []srvRec
	for _, s := range []struct {
		service string
		direct  bool
	}{{"xmpps-server", true}, {"xmpp-server", false}} {
		rs, err := r.LookupSRV(ctx, s.service, "tcp", domain)
		if err != nil {
			// A failed SRV lookup is treated as no record, as other
			// servers do, so that the address fallback still applies.
			continue
		}
		for _, x := range rs {
			recs = append(recs, srvRec{SRV: *x, direct: s.direct})
		}
	}
	var out []target
	if len(recs) > 0 {
		if len(recs) == 1 && (recs[0].Target == "." || recs[0].Target == "") {
			return nil, fmt.Errorf("%w: %s declares no XMPP service", errNoService, domain)
		}
		for _, rec := range orderSRV(recs, rand.IntN) {
			host := strings.TrimSuffix(rec.Target, ".")
			if host == "" {
				continue
			}
			addrs, err := r.LookupHost(ctx, host)
			if err != nil {
				continue
			}
			for _, a := range addrs {
				out = append(out, target{host: host, addr: net.JoinHostPort(a, strconv.Itoa(int(rec.Port))), directTLS: rec.direct})
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	addrs, err := r.LookupHost(ctx, domain)
	if err != nil || len(addrs) == 0 {
		return nil, fmt.Errorf("%w: %s: %v", errNoService, domain, err)
	}
	for _, a := range addrs {
		out = append(out, target{host: domain, addr: net.JoinHostPort(a, "5269")})
	}
	return out, nil
}

// srvRec is an SRV record and whether its service is direct TLS.
type srvRec struct {
	net.SRV
	direct bool
}

// orderSRV sorts records by priority and, within one priority, by the
// weighted random choice of RFC 2782; direct TLS goes first between
// records of equal priority and weight (XEP-0368 §3). intn is rand.IntN.
func orderSRV(recs []srvRec, intn func(int) int) []srvRec {
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b srvRec) int {
		if c := cmp.Compare(a.Priority, b.Priority); c != 0 {
			return c
		}
		if a.direct != b.direct {
			if a.direct {
				return -1
			}
			return 1
		}
		return 0
	})
	out := make([]srvRec, 0, len(recs))
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j].Priority == recs[i].Priority {
			j++
		}
		group := recs[i:j]
		for len(group) > 0 {
			total := 0
			for _, r := range group {
				total += int(r.Weight)
			}
			pick := 0
			if total > 0 {
				n := intn(total + 1)
				for k, r := range group {
					n -= int(r.Weight)
					if n <= 0 {
						pick = k
						break
					}
				}
			}
			out = append(out, group[pick])
			group = slices.Delete(slices.Clone(group), pick, pick+1)
		}
		i = j
	}
	return out
}
