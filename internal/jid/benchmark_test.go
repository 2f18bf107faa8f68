package jid

import "testing"

func BenchmarkParseASCII(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("alice@localhost/phone"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseASCIIUpper(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("Alice@LocalHost/phone"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseASCIISlow shows what the ASCII shortcut saves.
func BenchmarkParseASCIISlow(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parse("alice@localhost/phone", false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseUnicode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("fußball@münchen.example/♚"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkString(b *testing.B) {
	j := MustParse("alice@localhost/phone")
	b.ReportAllocs()
	for b.Loop() {
		_ = j.String()
		_ = j.BareString()
		_ = j.Bare()
	}
}
