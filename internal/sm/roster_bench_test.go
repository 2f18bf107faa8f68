package sm_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/sqlite"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// BenchmarkRosterLogin measures the server side of a login with a roster
// of 1,000 contacts, all mutually subscribed and half of them online, on
// the SQLite store: bind, full roster fetch (loaded from the database, as
// for a user who was offline), initial presence with its probes answered
// by the 500 online contacts and broadcast to them. Logging out again
// (which broadcasts unavailable presence) is outside the timing.
func BenchmarkRosterLogin(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	creds, _ := auth.DeriveCredentials("x", 4096)
	const contacts = 1000
	_ = st.CreateAccount(ctx, "alice@localhost", creds)
	for i := range contacts {
		c := fmt.Sprintf("contact%d@localhost", i)
		if err := st.CreateAccount(ctx, c, creds); err != nil {
			b.Fatal(err)
		}
		if _, err := st.PutRosterItem(ctx, "alice@localhost", storage.RosterItem{Contact: c, Subscription: "both", Name: fmt.Sprintf("Contact %d", i), Groups: []string{"Friends"}}); err != nil {
			b.Fatal(err)
		}
		if _, err := st.PutRosterItem(ctx, c, storage.RosterItem{Contact: "alice@localhost", Subscription: "both"}); err != nil {
			b.Fatal(err)
		}
	}
	r := router.New(xmpptest.Discard())
	m, err := sm.New(sm.Config{Domain: "localhost"}, sm.Deps{Router: r, Accounts: st, Roster: st, Offline: st, Blocklist: st, Private: st, Log: xmpptest.Discard()})
	if err != nil {
		b.Fatal(err)
	}
	_ = r.Register("localhost", m)
	presence := func(s *sink, typ string) {
		p := xmlstream.NewElement(xmlstream.NSClient, "presence")
		p.SetAttr("from", s.j.String())
		if typ != "" {
			p.SetAttr("type", typ)
		}
		m.HandleFromSession(ctx, s, router.Stanza{El: p, From: s.j})
	}
	for i := range contacts / 2 {
		s := &sink{j: jid.MustParse(fmt.Sprintf("contact%d@localhost/r", i))}
		_ = m.Bind(ctx, s)
		presence(s, "")
	}
	alice := &sink{j: jid.MustParse("alice@localhost/phone")}
	rosterGet := func() {
		iq := xmlstream.NewElement(xmlstream.NSClient, "iq")
		iq.SetAttr("type", "get")
		iq.SetAttr("id", "r1")
		iq.SetAttr("from", alice.j.String())
		iq.AddChild(xmlstream.NewElement("jabber:iq:roster", "query"))
		m.HandleFromSession(ctx, alice, router.Stanza{El: iq, From: alice.j})
	}
	b.ReportAllocs()
	for b.Loop() {
		alice.n = 0
		if err := m.Bind(ctx, alice); err != nil {
			b.Fatal(err)
		}
		rosterGet()
		presence(alice, "")
		// The roster result, then at least the 500 contacts' presences.
		if alice.n < 1+contacts/2 {
			b.Fatalf("alice got %d stanzas", alice.n)
		}
		b.StopTimer()
		m.Unbind(ctx, alice)
		b.StartTimer()
	}
}
