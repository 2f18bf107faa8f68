package s2s

import (
	"net"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/miekg/dns"
)

// FuzzDialback feeds dialback elements, as they arrive on a server stream,
// to parseDialback: it must not panic, and what it accepts must survive a
// round trip through dbXML.
func FuzzDialback(f *testing.F) {
	for _, s := range []string{
		"<db:result from='a.test' to='b.test'>abc</db:result>",
		"<db:result from='b.test' to='a.test' type='valid'/>",
		"<db:verify from='a.test' to='b.test' id='x1'>key</db:verify>",
		"<db:verify from='b.test' to='a.test' id='x1' type='invalid'/>",
		"<db:result from='a@b' to='c'>k</db:result>",
		"<db:result to='b.test'>k</db:result>",
		"<db:verify from='a.test' to='b.test'>k</db:verify>",
		"<db:result from='a.test' to='b.test' type='bogus'/>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		el := parseOne(s)
		if el == nil {
			return
		}
		d, err := parseDialback(el)
		if err != nil {
			return
		}
		el2 := parseOne(string(dbXML(d.Verify, d.From, d.To, d.ID, d.Type, d.Key)))
		if el2 == nil {
			t.Fatalf("dbXML output does not parse: %q", dbXML(d.Verify, d.From, d.To, d.ID, d.Type, d.Key))
		}
		d2, err := parseDialback(el2)
		if err != nil || d2 != d {
			t.Fatalf("round trip: %+v -> %+v (%v)", d, d2, err)
		}
	})
}

// parseOne parses s as the first element of a server stream.
func parseOne(s string) *xmlstream.Element {
	p := xmlstream.NewParser(xmlstream.DefaultLimits())
	p.Feed(streamHeader("a.test", "b.test", "id"))
	// Split reads are where incremental parsers go wrong.
	half := len(s) / 2
	p.Feed([]byte(s[:half]))
	p.Feed([]byte(s[half:]))
	for {
		ev, err := p.Next()
		if err != nil {
			return nil
		}
		if ev.Kind == xmlstream.EventElement {
			return ev.Elem
		}
	}
}

// FuzzSRV feeds DNS replies to the SRV extraction and ordering: no panic,
// and ordering keeps every record and sorts by priority.
func FuzzSRV(f *testing.F) {
	m := new(dns.Msg)
	m.SetQuestion("_xmpp-server._tcp.a.test.", dns.TypeSRV)
	m.Answer = append(m.Answer,
		&dns.SRV{Hdr: dns.RR_Header{Name: "_xmpp-server._tcp.a.test.", Rrtype: dns.TypeSRV, Class: dns.ClassINET}, Priority: 10, Weight: 5, Port: 5269, Target: "x.a.test."},
		&dns.SRV{Hdr: dns.RR_Header{Name: "_xmpp-server._tcp.a.test.", Rrtype: dns.TypeSRV, Class: dns.ClassINET}, Priority: 5, Weight: 0, Port: 5270, Target: "y.a.test."})
	b, _ := m.Pack()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		in := new(dns.Msg)
		if in.Unpack(b) != nil {
			return
		}
		rs, err := srvRecords(in)
		if err != nil {
			return
		}
		recs := make([]srvRec, len(rs))
		for i, r := range rs {
			recs[i] = srvRec{SRV: net.SRV(*r), direct: i%2 == 0}
		}
		n := 0
		out := orderSRV(recs, func(k int) int { n++; return n % k })
		if len(out) != len(recs) {
			t.Fatalf("ordering lost records: %d of %d", len(out), len(recs))
		}
		for i := 1; i < len(out); i++ {
			if out[i].Priority < out[i-1].Priority {
				t.Fatalf("not sorted by priority: %v", out)
			}
		}
	})
}
