package ircconn

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Message
	}{
		{"PING :irc.test", Message{Command: "PING", Params: []string{"irc.test"}}},
		{":irc.test 001 alice :Welcome to IRC alice!a@h\r\n", Message{Source: "irc.test", Command: "001", Params: []string{"alice", "Welcome to IRC alice!a@h"}}},
		{":bob!b@127.0.0.1 PRIVMSG #go :hi there", Message{Source: "bob!b@127.0.0.1", Command: "PRIVMSG", Params: []string{"#go", "hi there"}}},
		{"@msgid=abc;time=2024-01-02T03:04:05.000Z :bob!b@h PRIVMSG alice :x", Message{
			Tags: map[string]string{"msgid": "abc", "time": "2024-01-02T03:04:05.000Z"}, Source: "bob!b@h", Command: "PRIVMSG", Params: []string{"alice", "x"}}},
		// Escapes, a tag without a value, a bad escape and a lone backslash.
		{`@a=x\sy\:z\\w;b;c=\q;d=end\ CMD`, Message{Tags: map[string]string{"a": `x y;z\w`, "b": "", "c": "q", "d": "end"}, Command: "CMD"}},
		// Tolerance: runs of spaces, lower-case commands, an empty trailing parameter.
		{"  :src   privmsg   #c   :", Message{Source: "src", Command: "PRIVMSG", Params: []string{"#c", ""}}},
		{"MODE #c +o-v  a b ", Message{Command: "MODE", Params: []string{"#c", "+o-v", "a", "b"}}},
		{":nick AWAY", Message{Source: "nick", Command: "AWAY"}},
		{"CMD ::colon", Message{Command: "CMD", Params: []string{":colon"}}},
	} {
		m, err := Parse(tc.line)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.line, err)
			continue
		}
		if !reflect.DeepEqual(*m, tc.want) {
			t.Errorf("Parse(%q) = %#v, want %#v", tc.line, *m, tc.want)
		}
		again, err := Parse(m.String())
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Errorf("round trip of %q through %q: %#v, %v", tc.line, m.String(), again, err)
		}
	}
	for _, bad := range []string{"", "   ", "@a=b", ":src", "@a :src", "@tags @cmd"} {
		if m, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %#v, want an error", bad, m)
		}
	}
}

func TestMessageAccessors(t *testing.T) {
	m, _ := Parse(":bob!b@h PRIVMSG #go :hello")
	if m.Nick() != "bob" || m.Param(0) != "#go" || m.Last() != "hello" || m.Param(5) != "" || m.FromServer() {
		t.Fatalf("%q %q %q %v", m.Nick(), m.Param(0), m.Last(), m.FromServer())
	}
	for src, server := range map[string]bool{"irc.test": true, "": true, "bob": false, "bob@h.example": false, "NickServ!s@services.": false} {
		m := &Message{Source: src, Command: "NOTICE"}
		if m.FromServer() != server {
			t.Errorf("FromServer of %q = %v", src, !server)
		}
	}
	if (&Message{Command: "X"}).Last() != "" {
		t.Error("Last of no parameters")
	}
}

func TestSupport(t *testing.T) {
	var s Support
	if m, sym := s.Prefix(); m != "ov" || sym != "@+" {
		t.Fatalf("default prefix %q %q", m, sym)
	}
	if s.ChanTypes() != "#&" || s.Int("NICKLEN", 9) != 9 {
		t.Fatal("defaults")
	}
	s.add([]string{"PREFIX=(qaohv)~&@%+", "CHANTYPES=#", "NICKLEN=30", "CASEMAPPING=ascii", "NETWORK=Fake\\x20Net", "EXCEPTS", "STATUSMSG=@+"})
	if m, sym := s.Prefix(); m != "qaohv" || sym != "~&@%+" {
		t.Fatalf("prefix %q %q", m, sym)
	}
	if v, ok := s.Get("NETWORK"); !ok || v != "Fake Net" {
		t.Fatalf("NETWORK %q", v)
	}
	if _, ok := s.Get("EXCEPTS"); !ok || s.ChanTypes() != "#" || s.Int("NICKLEN", 9) != 30 || s.StatusMsg() != "@+" {
		t.Fatal("tokens")
	}
	if s.Fold("Bob[x]") != "bob[x]" {
		t.Fatalf("ascii fold %q", s.Fold("Bob[x]"))
	}
	s.add([]string{"-CASEMAPPING", "PREFIX=(ov"})
	if s.Fold("Bob[x]^") != "bob{x}~" || Fold("strict-rfc1459", "A[^") != "a{^" {
		t.Fatalf("rfc1459 fold %q", s.Fold("Bob[x]^"))
	}
	if m, _ := s.Prefix(); m != "ov" {
		t.Fatal("a broken PREFIX falls back to the default")
	}
	list, always, set, never := s.ChanModes()
	if list != "beI" || always != "k" || set != "l" || never != "imnpst" {
		t.Fatal("default CHANMODES")
	}
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		text  string
		limit int
		want  []string
	}{
		{"hello", 100, []string{"hello"}},
		{"one\ntwo\r\n\nthree", 100, []string{"one", "two", "three"}},
		{"aaaa bbbb cccc dddd eeee", 16, []string{"aaaa bbbb cccc", "dddd eeee"}},
		{strings.Repeat("x", 20), 16, []string{strings.Repeat("x", 16), "xxxx"}},
		// A cut never splits a character: é is two bytes.
		{strings.Repeat("é", 10), 16, []string{strings.Repeat("é", 8), "éé"}},
		{"   \n  ", 100, nil},
		{"a\x00b\rc", 100, []string{"a b c"}},
	} {
		if got := Split(tc.text, tc.limit); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Split(%q, %d) = %q, want %q", tc.text, tc.limit, got, tc.want)
		}
	}
}

func TestCTCPAndFormatting(t *testing.T) {
	if c, a, ok := CTCP("\x01ACTION waves\x01"); !ok || c != "ACTION" || a != "waves" {
		t.Fatalf("%q %q %v", c, a, ok)
	}
	if c, a, ok := CTCP("\x01version"); !ok || c != "VERSION" || a != "" {
		t.Fatalf("%q %q %v", c, a, ok)
	}
	if _, _, ok := CTCP("plain"); ok {
		t.Fatal("plain text is no CTCP")
	}
	if FormatCTCP("ACTION", "x") != "\x01ACTION x\x01" || FormatCTCP("VERSION", "") != "\x01VERSION\x01" {
		t.Fatal("FormatCTCP")
	}
	for in, want := range map[string]string{
		"\x02bold\x02 \x0304,12red\x03 \x1ditalic\x0f": "bold red italic",
		"\x0312,x":               ",x",
		"\x03,5":                 ",5",
		"\x04ff0000red\x04":      "red",
		"1\x0399":                "1",
		"plain, 3 digits: \x031": "plain, 3 digits: ",
	} {
		if got := StripFormatting(in); got != want {
			t.Errorf("StripFormatting(%q) = %q, want %q", in, got, want)
		}
	}
}
