package bridgetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
)

// XMPP stands for the XMPP network around a bridge under test: it sends
// stanzas to the bridge and reads what the bridge sends, with no server.
type XMPP struct {
	t     testing.TB
	local *bridge.Local
	in    chan string
}

// Attach serves b with an XMPP side in the test (its store in a temporary
// directory of the test's) and stops it when the test ends. b's
// configuration needs a domain; its connection is not used.
func Attach(t testing.TB, b *bridge.Bridge) *XMPP {
	t.Helper()
	x := &XMPP{t: t, in: make(chan string, 10000)}
	l, err := b.ServeLocal(context.Background(), func(s []byte) {
		select {
		case x.in <- string(s):
		default:
			t.Error("bridgetest: more than 10,000 stanzas unread")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	x.local = l
	t.Cleanup(func() { l.Close() })
	return x
}

// Send sends the bridge a stanza from an XMPP address to one of the
// bridge's: xml is the stanza without its from and to.
func (x *XMPP) Send(from, to, xml string) {
	x.t.Helper()
	i := strings.IndexAny(xml, " />")
	if i < 0 {
		x.t.Fatalf("bridgetest: not a stanza: %s", xml)
	}
	s := xml[:i] + " from='" + from + "' to='" + to + "'" + xml[i:]
	if err := x.local.Send([]byte(s)); err != nil {
		x.t.Fatal(err)
	}
}

// Expect waits up to five seconds for a stanza the bridge sent that holds
// every one of subs, and returns it serialized; stanzas before it are
// skipped.
func (x *XMPP) Expect(what string, subs ...string) string {
	x.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case s := <-x.in:
			ok := true
			for _, sub := range subs {
				if !strings.Contains(s, sub) {
					ok = false
					break
				}
			}
			if ok {
				return s
			}
		case <-deadline:
			x.t.Fatalf("bridgetest: no %s (with %q)", what, subs)
		}
	}
}

// Next returns the next stanza the bridge sends, "" if none comes within
// d.
func (x *XMPP) Next(d time.Duration) string {
	select {
	case s := <-x.in:
		return s
	case <-time.After(d):
		return ""
	}
}
