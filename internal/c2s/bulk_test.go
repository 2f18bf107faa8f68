package c2s_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// fanout is a component that answers a message with count messages to
// bob, routed in turn as a fan-out with a batch (bulk writes held until
// its release, which comes after an immediate write), immediately, and as
// a fan-out without a batch (written at once): as a room's deliveries and a contact's chat
// may interleave.
type fanout struct {
	r     *router.Router
	count int
	body  string
	done  chan struct{}
}

func (f *fanout) HandleStanza(ctx context.Context, s router.Stanza) {
	to := jid.MustParse("bob@localhost/b")
	from := jid.MustParse("fan.localhost")
	var b router.Batch
	for i := 0; i < f.count; i++ {
		el := xmlstream.NewElement(xmlstream.NSClient, "message")
		el.SetAttr("from", from.String())
		el.SetAttr("to", to.String())
		el.SetAttr("id", fmt.Sprintf("m%d", i))
		el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body").AddText(f.body))
		c := ctx
		switch i % 4 {
		case 0, 1: // a batch of two, released by the next immediate write
			c = router.WithFanout(ctx, &b)
		case 3: // a fan-out without a batch: written at once
			c = router.WithFanout(ctx, nil)
		}
		f.r.Route(c, router.Stanza{El: el, From: from, To: to})
		if i%4 == 2 {
			b.Release()
		}
	}
	b.Release()
	close(f.done)
}

// Bulk and immediate writes to one client keep their order, whether the
// client keeps up (the flushers write) or stops reading for a while (a
// drain takes over the backlog), in both modes of serving sessions.
func TestBulkDeliveryKeepsOrder(t *testing.T) { modes(t, testBulkDeliveryKeepsOrder) }

func testBulkDeliveryKeepsOrder(t *testing.T, mode func(*c2s.Config)) {
	for _, tc := range []struct {
		name  string
		count int
		body  string
	}{
		{"small", 2000, "hi"},
		{"backlog", 600, strings.Repeat("x", 16000)}, // ~10 MB: more than the socket holds
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := xmpptest.StartServer(t, func(c *c2s.Config) { mode(c); c.MaxQueuedBytes = 64 << 20 })
			f := &fanout{r: s.Router, count: tc.count, body: tc.body, done: make(chan struct{})}
			if err := s.Router.Register("fan.localhost", f); err != nil {
				t.Fatal(err)
			}
			s.AddUser(t, "alice@localhost", "wonderland")
			s.AddUser(t, "bob@localhost", "builder")
			a := s.Login(t, "alice", "wonderland", "a")
			b := s.Login(t, "bob", "builder", "b")
			a.Send("<message to='fan.localhost'><body>go</body></message>")
			if tc.name == "backlog" {
				<-f.done // everything written or queued before bob reads
			}
			for i := 0; i < tc.count; i++ {
				m := b.Expect("message", func(e *xmlstream.Element) bool { return e.Local == "message" })
				if m.Attr("id") != fmt.Sprintf("m%d", i) {
					t.Fatalf("got %s, want m%d", m.Attr("id"), i)
				}
				if got := m.Child(xmlstream.NSClient, "body").Text(); got != tc.body {
					t.Fatalf("m%d: body of %d bytes, want %d", i, len(got), len(tc.body))
				}
			}
		})
	}
}
