package sm_test

import (
	"context"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// sink is a session that serializes what it is given, as the client edge
// does, and keeps only the byte count.
type sink struct {
	j   jid.JID
	buf []byte
	n   int
}

func (s *sink) JID() jid.JID { return s.j }
func (s *sink) Deliver(el *xmlstream.Element) {
	s.buf = el.AppendXML(s.buf[:0], xmlstream.NSClient)
	s.n++
}
func (s *sink) Close(string) {}

// BenchmarkLocalMessage measures the session manager and router for one
// chat message between two online users, from a parsed stanza to the
// serialized bytes for the recipient: the server's work minus the socket.
func BenchmarkLocalMessage(b *testing.B) {
	ctx := context.Background()
	st := memory.New()
	creds, _ := auth.DeriveCredentials("x", 4096)
	_ = st.CreateAccount(ctx, "alice@localhost", creds)
	_ = st.CreateAccount(ctx, "bob@localhost", creds)
	r := router.New(xmpptest.Discard())
	m, err := sm.New(sm.Config{Domain: "localhost"}, sm.Deps{Router: r, Accounts: st, Roster: st, Log: xmpptest.Discard()})
	if err != nil {
		b.Fatal(err)
	}
	_ = r.Register("localhost", m)
	alice := &sink{j: jid.MustParse("alice@localhost/a")}
	bob := &sink{j: jid.MustParse("bob@localhost/b")}
	for _, s := range []*sink{alice, bob} {
		_ = m.Bind(ctx, s)
		p := xmlstream.NewElement(xmlstream.NSClient, "presence")
		p.SetAttr("from", s.j.String())
		m.HandleFromSession(ctx, s, router.Stanza{El: p, From: s.j})
	}
	raw := []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" +
		"<message to='bob@localhost' type='chat' id='abc123'><body>Hello there, how are you?</body></message>")
	p := xmlstream.NewParser(xmlstream.DefaultLimits())
	p.Feed(raw)
	if ev, _ := p.Next(); ev.Kind != xmlstream.EventStreamStart {
		b.Fatal("no header")
	}
	ev, err := p.Next()
	if err != nil {
		b.Fatal(err)
	}
	msg := ev.Elem
	b.ReportAllocs()
	for b.Loop() {
		el := *msg
		el.Attrs = append([]xmlstream.Attr(nil), msg.Attrs...)
		el.SetAttr("from", alice.j.String())
		to, _ := jid.Parse(el.Attr("to"))
		m.HandleFromSession(ctx, alice, router.Stanza{El: &el, From: alice.j, To: to})
	}
	if bob.n < b.N {
		b.Fatalf("delivered %d of %d", bob.n, b.N)
	}
}
