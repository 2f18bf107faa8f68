package ircconn

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSeeds are lines of real servers and odd corners; the files under
// testdata/fuzz hold more.
func fuzzSeeds() []string {
	return []string{
		":irc.test 001 alice :Welcome to the Internet Relay Network alice!alice@127.0.0.1",
		":irc.test 005 alice PREFIX=(qaohv)~&@%+ CHANTYPES=#& NETWORK=Fake\\x20Net :are supported by this server",
		":irc.test 353 alice = #go :@bob +carol ~dave alice",
		"@msgid=63E1033A051D4B41B1AB1FA3CF4B243E;time=2023-02-06T13:24:58.000Z :nick!ident@host.com PRIVMSG #channel :Hello",
		"@+draft/reply=abc;+typing=active :bob!b@h TAGMSG #go",
		`@a=\\\:\s\r\n\ :src CMD`,
		":bob!b@h PRIVMSG alice :\x01ACTION waves\x01",
		"PING :1234",
		"ERROR :Closing link: (alice@127.0.0.1) [Quit: bye]",
		"CAP * LS * :multi-prefix sasl=PLAIN,EXTERNAL",
		"   :src   cmd   a  b   :c d ",
		"CMD ::",
		"@ :src CMD",
	}
}

// FuzzParse: whatever Parse accepts, String writes so that Parse reads
// back the same message, on one line.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		m, err := Parse(line)
		if err != nil {
			if !errors.Is(err, ErrEmpty) {
				t.Fatalf("Parse(%q): unexpected error %v", line, err)
			}
			return
		}
		if m.Command == "" || m.Command != strings.ToUpper(m.Command) {
			t.Fatalf("Parse(%q): command %q", line, m.Command)
		}
		for i, p := range m.Params[:max(len(m.Params)-1, 0)] {
			if p == "" || p[0] == ':' || strings.IndexByte(p, ' ') >= 0 {
				t.Fatalf("Parse(%q): middle parameter %d is %q", line, i, p)
			}
		}
		s := m.String()
		again, err := Parse(s)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("Parse(%q) = %#v; String %q; again %#v, %v", line, m, s, again, err)
		}
		if !strings.ContainsAny(line, "\r\n") && strings.ContainsAny(s, "\n") {
			t.Fatalf("String of %q breaks the line: %q", line, s)
		}
		if utf8.ValidString(line) && !utf8.ValidString(s) {
			t.Fatalf("String of %q is not UTF-8", line)
		}
	})
}

// chunks reads its data in the pieces given, as TCP segments come.
type chunks struct{ parts [][]byte }

func (c *chunks) Read(p []byte) (int, error) {
	for len(c.parts) > 0 && len(c.parts[0]) == 0 {
		c.parts = c.parts[1:]
	}
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.parts[0])
	c.parts[0] = c.parts[0][n:]
	return n, nil
}

// FuzzLineReader feeds the reader its input in two halves, split where
// the fuzzer says, and checks it gives the same lines as the whole input
// split on LF: a line cut by TCP is read whole.
func FuzzLineReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s+"\r\n"+s+"\n", uint16(len(s)/2))
	}
	f.Add("a\r\n\r\n\nb", uint16(2))
	f.Add(strings.Repeat("x", maxRead+10)+"\r\nshort\r\n", uint16(4000))
	f.Fuzz(func(t *testing.T, data string, cut uint16) {
		at := int(cut) % (len(data) + 1)
		lr := lineReader{r: bufio.NewReaderSize(&chunks{parts: [][]byte{[]byte(data[:at]), []byte(data[at:])}}, 4096)}
		var got []string
		var err error
		for {
			var line string
			line, err = lr.next()
			if err != nil {
				break
			}
			got = append(got, line)
		}
		var want []string
		parts := strings.Split(data, "\n")
		for i, p := range parts {
			if i == len(parts)-1 {
				break // no LF: not a line
			}
			p = strings.TrimRight(p, "\r\n")
			if p != "" && len(p) <= maxRead {
				want = append(want, p)
			}
		}
		// A line longer than the limit is skipped whole, but how much of
		// it is left behind depends on the reads; compare only without.
		for _, p := range parts {
			if len(p) > maxRead {
				return
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("lines %q, want %q", got, want)
		}
		if last := parts[len(parts)-1]; last != "" && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("a partial last line %q ended with %v", last, err)
		}
	})
}
