package jid

import "testing"

func TestEscapeLocal(t *testing.T) {
	tests := []struct{ in, want string }{
		{"space cadet", `space\20cadet`},
		{`call me "ishmael"`, `call\20me\20\22ishmael\22`},
		{"at&t guy", `at\26t\20guy`},
		{"d'artagnan", `d\27artagnan`},
		{"/.fanboy", `\2f.fanboy`},
		{"::foo::", `\3a\3afoo\3a\3a`},
		{"<foo>", `\3cfoo\3e`},
		{"user@host", `user\40host`},
		{`c:\net`, `c\3a\net`},
		{`c:\\net`, `c\3a\\net`},
		{`c:\cool stuff`, `c\3a\cool\20stuff`},
		{`c:\5commas`, `c\3a\5c5commas`},
		{"plain", "plain"},
		{"#chan%irc.example.org", "#chan%irc.example.org"},
	}
	for _, tt := range tests {
		got := EscapeLocal(tt.in)
		if got != tt.want {
			t.Errorf("EscapeLocal(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if back := UnescapeLocal(got); back != tt.in {
			t.Errorf("UnescapeLocal(%q) = %q, want %q", got, back, tt.in)
		}
		if _, err := New(got, "example.org", ""); err != nil {
			t.Errorf("%q is not a valid localpart: %v", got, err)
		}
	}
}

// FuzzEscapeLocal: escaping is reversible for any string.
func FuzzEscapeLocal(f *testing.F) {
	for _, s := range []string{"space cadet", `c:\5commas`, `\\\5c`, "@@", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if back := UnescapeLocal(EscapeLocal(s)); back != s {
			t.Fatalf("round trip of %q gave %q", s, back)
		}
	})
}
