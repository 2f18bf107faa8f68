package fakeircd

import (
	"bufio"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Peer is a raw IRC client that stands for another person in a test: it
// writes what it is told and waits for the lines it expects, answering
// the server's PINGs meanwhile. It works with any server.
type Peer struct {
	tb   testing.TB
	c    net.Conn
	Nick string
	// Timeout bounds Expect; five seconds unless set. A real server may
	// need more: ngircd handles three commands a second of each client.
	Timeout time.Duration
	lines   chan string
	seen    []string
}

// Dial connects a peer and registers it with nick; it returns once the
// server has sent the end of its message of the day.
func Dial(tb testing.TB, addr, nick string) *Peer {
	tb.Helper()
	return DialPassword(tb, addr, nick, "")
}

// DialPassword is Dial with a server password.
func DialPassword(tb testing.TB, addr, nick, password string) *Peer {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	p := &Peer{tb: tb, c: c, Nick: nick, Timeout: 5 * time.Second, lines: make(chan string, 10000)}
	go p.read()
	tb.Cleanup(func() { c.Close() })
	if password != "" {
		p.Send("PASS %s", password)
	}
	p.Send("NICK %s", nick)
	p.Send("USER %s 0 * :Peer %s", strings.ToLower(nick), nick)
	p.Expect(` (376|422) `)
	return p
}

func (p *Peer) read() {
	defer close(p.lines)
	r := bufio.NewReader(p.c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		if rest, ok := strings.CutPrefix(line, "PING "); ok {
			fmt.Fprintf(p.c, "PONG %s\r\n", rest)
			continue
		}
		p.lines <- line
	}
}

// Lines gives the lines the peer reads from now on, for a caller that
// reads them itself instead of with Expect.
func (p *Peer) Lines() <-chan string { return p.lines }

// Send writes a line.
func (p *Peer) Send(format string, args ...any) {
	p.tb.Helper()
	p.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(p.c, format+"\r\n", args...); err != nil {
		p.tb.Fatalf("%s: %v", p.Nick, err)
	}
}

// Expect reads lines until one matches the regular expression, for up
// to Timeout, and returns it.
func (p *Peer) Expect(pattern string) string {
	p.tb.Helper()
	re := regexp.MustCompile(pattern)
	t := time.NewTimer(p.Timeout)
	defer t.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				p.tb.Fatalf("%s: connection closed while waiting for %q; got:\n%s", p.Nick, pattern, strings.Join(p.seen, "\n"))
			}
			p.seen = append(p.seen, line)
			if re.MatchString(line) {
				return line
			}
		case <-t.C:
			p.tb.Fatalf("%s: no line matching %q; got:\n%s", p.Nick, pattern, strings.Join(p.seen, "\n"))
		}
	}
}

// Close quits.
func (p *Peer) Close() {
	fmt.Fprintf(p.c, "QUIT :bye\r\n")
	p.c.Close()
}
