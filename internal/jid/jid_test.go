package jid

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	tests := []struct {
		name            string
		in              string
		local, dom, res string
		want            string // canonical form; "" means same as in
	}{
		// RFC 7622 section 3.5, valid examples.
		{name: "rfc bare", in: "juliet@example.com", local: "juliet", dom: "example.com"},
		{name: "rfc full", in: "juliet@example.com/foo", local: "juliet", dom: "example.com", res: "foo"},
		{name: "rfc space in resource", in: "juliet@example.com/foo bar", local: "juliet", dom: "example.com", res: "foo bar"},
		{name: "rfc at in resource", in: "juliet@example.com/foo@bar", local: "juliet", dom: "example.com", res: "foo@bar"},
		{name: "rfc escaped local", in: `foo\20bar@example.com`, local: `foo\20bar`, dom: "example.com"},
		{name: "rfc fussball", in: "fussball@example.com", local: "fussball", dom: "example.com"},
		{name: "rfc sharp s kept", in: "fußball@example.com", local: "fußball", dom: "example.com"},
		{name: "rfc pi", in: "π@example.com", local: "π", dom: "example.com"},
		{name: "rfc capital sigma", in: "Σ@example.com/foo", local: "σ", dom: "example.com", res: "foo", want: "σ@example.com/foo"},
		{name: "rfc small sigma", in: "σ@example.com/foo", local: "σ", dom: "example.com", res: "foo"},
		{name: "rfc final sigma", in: "ς@example.com/foo", local: "ς", dom: "example.com", res: "foo"},
		{name: "rfc chess king resource", in: "king@example.com/♚", local: "king", dom: "example.com", res: "♚"},
		{name: "rfc domain only", in: "example.com", dom: "example.com"},
		{name: "rfc domain resource", in: "example.com/foobar", dom: "example.com", res: "foobar"},
		{name: "rfc resource like jid", in: "a.example.com/b@example.net", dom: "a.example.com", res: "b@example.net"},
		// The RFC calls this invalid; x/text's OpaqueString accepts it (see doc.go).
		{name: "rfc leading space resource", in: "juliet@example.com/ foo", local: "juliet", dom: "example.com", res: " foo"},

		// Case mapping: localpart and domainpart fold, resourcepart keeps case.
		{name: "case folding", in: "Juliet@Example.COM/Balcony", local: "juliet", dom: "example.com", res: "Balcony", want: "juliet@example.com/Balcony"},
		{name: "case folding unicode", in: "ÉLODIE@ÉXAMPLE.com", local: "élodie", dom: "éxample.com", want: "élodie@éxample.com"},
		{name: "full width local", in: "ｊｕｌｉｅｔ@example.com", local: "juliet", dom: "example.com", want: "juliet@example.com"},
		{name: "nfc resource", in: "a@b/e\u0301", local: "a", dom: "b", res: "é", want: "a@b/é"},
		{name: "non-ascii space in resource", in: "a@b/x\u00a0y", local: "a", dom: "b", res: "x y", want: "a@b/x y"},
		{name: "slash splits before at", in: "example.com/a@b/c", dom: "example.com", res: "a@b/c"},

		// Domainparts.
		{name: "trailing dot", in: "juliet@example.com./r", local: "juliet", dom: "example.com", res: "r", want: "juliet@example.com/r"},
		{name: "punycode", in: "XN--bcher-kva.example", dom: "bücher.example", want: "bücher.example"},
		{name: "idn", in: "user@Bücher.example", local: "user", dom: "bücher.example", want: "user@bücher.example"},
		{name: "ideographic stop", in: "a@example。com", local: "a", dom: "example.com", want: "a@example.com"},
		{name: "ipv4", in: "juliet@127.0.0.1/r", local: "juliet", dom: "127.0.0.1", res: "r"},
		{name: "ipv6", in: "juliet@[::1]/r", local: "juliet", dom: "[::1]", res: "r"},
		{name: "ipv6 canonical", in: "[2001:DB8:0:0::1]", dom: "[2001:db8::1]", want: "[2001:db8::1]"},
		{name: "ipv6 mapped v4", in: "[::ffff:192.0.2.1]", dom: "[::ffff:192.0.2.1]"},
		{name: "single label", in: "alice@localhost/phone", local: "alice", dom: "localhost", res: "phone"},

		// Length limits are inclusive.
		{name: "max localpart", in: long("a", 1023) + "@x", local: long("a", 1023), dom: "x"},
		{name: "max domainpart", in: long("a", 1023), dom: long("a", 1023)},
		{name: "max resourcepart", in: "x/" + long("r", 1023), dom: "x", res: long("r", 1023)},
		{name: "max unicode localpart", in: long("π", 511) + "@x", local: long("π", 511), dom: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			want := tt.want
			if want == "" {
				want = tt.in
			}
			if got := j.String(); got != want {
				t.Errorf("String() = %q, want %q", got, want)
			}
			if j.Local() != tt.local || j.Domain() != tt.dom || j.Resource() != tt.res {
				t.Errorf("parts = %q, %q, %q; want %q, %q, %q",
					j.Local(), j.Domain(), j.Resource(), tt.local, tt.dom, tt.res)
			}
			n, err := New(tt.local, tt.dom, tt.res)
			if err != nil || n != j {
				t.Errorf("New(parts) = %#v, %v; want %#v", n, err, j)
			}
			slow, err := parse(tt.in, false)
			if err != nil || slow != j {
				t.Errorf("slow parse = %#v, %v; want %#v", slow, err, j)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	tests := []struct {
		name string
		in   string
	}{
		// RFC 7622 section 3.5, invalid examples.
		{"rfc quotes", `"juliet"@example.com`},
		{"rfc space in localpart", "foo bar@example.com"},
		{"rfc empty local and resource", "@example.com/"},
		{"rfc compatibility character", "henryⅣ@example.com"},
		{"rfc symbol in localpart", "♚@example.com"},
		{"rfc empty domain", "juliet@"},
		{"rfc no domain", "/foobar"},

		{"empty", ""},
		{"empty localpart", "@example.com"},
		{"empty resourcepart", "example.com/"},
		{"empty domain before resource", "a@/r"},
		{"only dot", "."},
		{"two trailing dots", "example.com.."},
		{"empty label", "a..b"},
		{"leading dot", ".example.com"},
		{"second at", "a@b@c"},
		{"ampersand", "a&b@example.com"},
		{"apostrophe", "a'b@example.com"},
		{"colon", "a:b@example.com"},
		{"angle", "a<b@example.com"},
		{"full width at", "a＠b@example.com"},
		{"control in localpart", "a\x00b@example.com"},
		{"control in resource", "a@b/x\ty"},
		{"del in resource", "a@b/x\x7fy"},
		{"invalid utf8 local", "\xff@example.com"},
		{"invalid utf8 domain", "a@\xff"},
		{"invalid utf8 resource", "a@b/\xff"},
		{"underscore domain", "a@_xmpp.example.com"},
		{"space in domain", "a@exa mple.com"},
		{"leading hyphen label", "a@-example.com"},
		{"trailing hyphen label", "a@example-.com"},
		{"hyphens 3-4", "a@ab--cd.com"},
		{"bad punycode", "a@xn--a.com"},
		{"ascii punycode", "a@xn--abc-.com"},
		{"ipv6 unterminated", "a@[::1"},
		{"ipv6 zone", "a@[fe80::1%eth0]"},
		{"ipv4 in brackets", "a@[127.0.0.1]"},
		{"ipv6 garbage", "a@[nope]"},
		{"ipv6 unbracketed", "a@::1"},
		{"localpart too long", long("a", 1024) + "@x"},
		{"unicode localpart too long", long("π", 512) + "@x"},
		{"domainpart too long", long("a", 1024)},
		{"resourcepart too long", "x/" + long("r", 1024)},
		{"huge resourcepart", "x/" + long("é", 5000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, fast := range []bool{true, false} {
				j, err := parse(tt.in, fast)
				if err == nil {
					t.Fatalf("parse(%q, fast=%v) = %q, want error", tt.in, fast, j)
				}
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("error %v does not wrap ErrMalformed", err)
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		local, dom, res string
		want            string
		wantErr         bool
	}{
		{"", "example.com", "", "example.com", false},
		{"Juliet", "Example.com", "Balcony", "juliet@example.com/Balcony", false},
		{"juliet", "example.com.", "", "juliet@example.com", false},
		{"a@b", "example.com", "", "", true},
		{"a/b", "example.com", "", "", true},
		{"a", "b/c", "", "", true},
		{"a", "b@c", "", "", true},
		{"a", "", "r", "", true},
		{"", "example.com", "a/b@c", "example.com/a/b@c", false},
	}
	for _, tt := range tests {
		j, err := New(tt.local, tt.dom, tt.res)
		if (err != nil) != tt.wantErr || j.String() != tt.want {
			t.Errorf("New(%q, %q, %q) = %q, %v; want %q, error %v",
				tt.local, tt.dom, tt.res, j, err, tt.want, tt.wantErr)
		}
	}
}

func TestDerived(t *testing.T) {
	j := MustParse("Juliet@Example.com/Balcony")
	tests := []struct {
		name   string
		got    JID
		want   string
		isBare bool
	}{
		{"full", j, "juliet@example.com/Balcony", false},
		{"bare", j.Bare(), "juliet@example.com", true},
		{"domain", j.DomainJID(), "example.com", true},
		{"bare of bare", j.Bare().Bare(), "juliet@example.com", true},
		{"domain of domain", j.DomainJID().DomainJID(), "example.com", true},
		{"domain with resource", MustParse("example.com/r").DomainJID(), "example.com", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got.String() != tt.want || tt.got.IsBare() != tt.isBare {
				t.Errorf("got %q bare=%v, want %q bare=%v", tt.got, tt.got.IsBare(), tt.want, tt.isBare)
			}
			if p := MustParse(tt.want); p != tt.got || !p.Equal(tt.got) {
				t.Errorf("derived %#v differs from parsed %#v", tt.got, p)
			}
			if tt.got.IsZero() {
				t.Error("IsZero on a derived JID")
			}
		})
	}
	if got := j.BareString(); got != "juliet@example.com" {
		t.Errorf("BareString() = %q", got)
	}
	if j.Equal(j.Bare()) {
		t.Error("full JID equals its bare JID")
	}
}

func TestWithResource(t *testing.T) {
	j := MustParse("juliet@example.com/balcony")
	tests := []struct {
		res     string
		want    string
		wantErr bool
	}{
		{"orchard", "juliet@example.com/orchard", false},
		{"", "juliet@example.com", false},
		{"x\u00a0y", "juliet@example.com/x y", false},
		{"a/b", "juliet@example.com/a/b", false},
		{"\x00", "", true},
		{strings.Repeat("r", 1024), "", true},
	}
	for _, tt := range tests {
		got, err := j.WithResource(tt.res)
		if (err != nil) != tt.wantErr || got.String() != tt.want {
			t.Errorf("WithResource(%q) = %q, %v; want %q, error %v", tt.res, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got != MustParse(tt.want) {
			t.Errorf("WithResource(%q) = %#v, not equal to parsed form", tt.res, got)
		}
	}
	if _, err := (JID{}).WithResource("r"); err == nil {
		t.Error("WithResource on zero JID succeeded")
	}
}

func TestZero(t *testing.T) {
	var j JID
	if !j.IsZero() || !j.IsBare() || j.String() != "" || j.Local() != "" || j.Domain() != "" ||
		j.Resource() != "" || j.BareString() != "" || !j.Bare().IsZero() || !j.DomainJID().IsZero() {
		t.Errorf("zero JID misbehaves: %#v", j)
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse did not panic")
		}
	}()
	MustParse("@")
}

func TestXMLAttr(t *testing.T) {
	type msg struct {
		XMLName xml.Name `xml:"message"`
		To      JID      `xml:"to,attr"`
	}
	var m msg
	if err := xml.Unmarshal([]byte(`<message to="Juliet@Example.com/Balcony"/>`), &m); err != nil {
		t.Fatal(err)
	}
	if m.To != MustParse("juliet@example.com/Balcony") {
		t.Errorf("decoded %q", m.To)
	}
	out, err := xml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if want := `<message to="juliet@example.com/Balcony"></message>`; string(out) != want {
		t.Errorf("encoded %s, want %s", out, want)
	}
	if err := xml.Unmarshal([]byte(`<message to="a@"/>`), &m); !errors.Is(err, ErrMalformed) {
		t.Errorf("decoding a malformed JID: %v", err)
	}
}

func TestParseAllocs(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{
		{"alice@localhost/phone", 0},
		{"Alice@LocalHost/phone", 1},
		{"localhost", 0},
	}
	for _, tt := range tests {
		got := testing.AllocsPerRun(100, func() {
			if _, err := Parse(tt.in); err != nil {
				t.Fatal(err)
			}
		})
		if got > tt.want {
			t.Errorf("Parse(%q) makes %v allocations, want at most %v", tt.in, got, tt.want)
		}
	}
	j := MustParse("alice@localhost/phone")
	if got := testing.AllocsPerRun(100, func() { _ = j.Bare().String() + j.BareString() + j.DomainJID().String() }); got > 1 {
		t.Errorf("accessors allocate: %v", got)
	}
}
