package jid

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSeeds are shared by the fuzz targets; the files under testdata/fuzz
// hold the inputs that once found bugs or cover awkward corners.
func fuzzSeeds() []string {
	return []string{
		"juliet@example.com/balcony",
		"Juliet@Example.COM/Balcony",
		"alice@localhost/phone",
		"fußball@example.com",
		"Σ@example.com/♚",
		"example.com.",
		"xn--bcher-kva.example",
		"a@[::1]/r",
		"a@127.0.0.1",
		"a.example.com/b@example.net",
		`foo\20bar@example.com`,
		"ab--cd.example",
		"-a.example",
		"a@b/ foo",
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := Parse(s)
		if err != nil {
			return
		}
		if j.IsZero() || !utf8.ValidString(j.String()) {
			t.Fatalf("Parse(%q) = %#v", s, j)
		}
		j2, err := Parse(j.String())
		if err != nil || !j.Equal(j2) {
			t.Fatalf("unstable: %q -> %q -> %q (%v)", s, j, j2, err)
		}
		n, err := New(j.Local(), j.Domain(), j.Resource())
		if err != nil || n != j {
			t.Fatalf("New(parts of %q) = %q, %v", j, n, err)
		}
		if b := j.Bare(); b.String() != j.BareString() || !b.IsBare() || b != MustParse(j.BareString()) {
			t.Fatalf("Bare of %q = %#v", j, b)
		}
		if d := j.DomainJID(); d != MustParse(j.Domain()) {
			t.Fatalf("DomainJID of %q = %#v", j, d)
		}
		if len(j.Local()) > maxPart || len(j.Domain()) > maxPart || len(j.Resource()) > maxPart {
			t.Fatalf("part too long in %q", j)
		}
	})
}

// FuzzFastPathMatchesPRECIS checks that the ASCII shortcut gives exactly the
// result of full PRECIS and IDNA preparation, both for whole addresses and
// for each part fed the whole input.
func FuzzFastPathMatchesPRECIS(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkFastPath(t, s)
	})
}

func checkFastPath(t *testing.T, s string) {
	t.Helper()
	fj, ferr := parse(s, true)
	sj, serr := parse(s, false)
	if (ferr == nil) != (serr == nil) || fj != sj {
		t.Fatalf("parse(%q): fast %#v, %v; slow %#v, %v", s, fj, ferr, sj, serr)
	}
	preps := []struct {
		name string
		fn   func(string, bool) (part, error)
	}{
		{"local", prepareLocal},
		{"domain", prepareDomain},
		{"resource", prepareResource},
	}
	for _, p := range preps {
		fp, ferr := p.fn(s, true)
		sp, serr := p.fn(s, false)
		if (ferr == nil) != (serr == nil) || fp.String() != sp.String() {
			t.Fatalf("%s %q: fast %q, %v; slow %q, %v", p.name, s, fp, ferr, sp, serr)
		}
	}
}

// TestFastPathExhaustive runs every short ASCII string, and every longer one
// over the characters that matter to domain labels, through both paths.
func TestFastPathExhaustive(t *testing.T) {
	var ascii []string
	for c := 0; c < 0x80; c++ {
		ascii = append(ascii, string(rune(c)))
	}
	for _, a := range ascii {
		checkFastPath(t, a)
		for _, b := range ascii {
			checkFastPath(t, a+b)
		}
	}
	alphabet := []string{"a", "X", "n", "-", ".", "1", "@", "/"}
	n := 5
	if testing.Short() {
		n = 4
	}
	var walk func(prefix string, depth int)
	walk = func(prefix string, depth int) {
		checkFastPath(t, prefix)
		if depth == n {
			return
		}
		for _, c := range alphabet {
			walk(prefix+c, depth+1)
		}
	}
	walk("", 0)
	checkFastPath(t, "xn--"+strings.Repeat("a", 10))
}
