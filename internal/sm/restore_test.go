package sm_test

import (
	"context"
	"sync"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// recSession is a bound session that records what it is delivered.
type recSession struct {
	full jid.JID

	mu  sync.Mutex
	got []*xmlstream.Element
}

func (s *recSession) JID() jid.JID { return s.full }
func (s *recSession) Close(string) {}
func (s *recSession) Deliver(el *xmlstream.Element) {
	c, err := xmlstream.ParseStanza(el.AppendXML(nil, xmlstream.NSClient), xmlstream.NSClient)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, c)
}

// reset forgets what the session got so far.
func (s *recSession) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = nil
}

// kinds lists what the session got: "carbon", "roster-push",
// "block-push" or the element's name.
func (s *recSession) kinds() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, el := range s.got {
		switch {
		case el.Child("urn:xmpp:carbons:2", "sent") != nil:
			out["carbon"]++
		case el.Attr("type") == "set" && el.Child("jabber:iq:roster", "query") != nil:
			out["roster-push"]++
		case el.Attr("type") == "set" && el.Child("urn:xmpp:blocking", "block") != nil:
			out["block-push"]++
		default:
			out[el.Local]++
		}
	}
	return out
}

// restoreSM returns a session manager for localhost with the users alice
// and bob, and two bound sessions of alice.
func restoreSM(t *testing.T) (*sm.SM, *recSession, *recSession) {
	t.Helper()
	ctx := context.Background()
	store := memory.New()
	creds, err := auth.DeriveCredentials("pw", 4096)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice@localhost", "bob@localhost"} {
		if err := store.CreateAccount(ctx, u, creds); err != nil {
			t.Fatal(err)
		}
	}
	log := xmpptest.Discard()
	r := router.New(log)
	m, err := sm.New(sm.Config{Domain: "localhost", Version: "test"},
		sm.Deps{Router: r, Accounts: store, Roster: store, Offline: store, Blocklist: store, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Register("localhost", m); err != nil {
		t.Fatal(err)
	}
	phone := &recSession{full: jid.MustParse("alice@localhost/phone")}
	desk := &recSession{full: jid.MustParse("alice@localhost/desk")}
	for _, s := range []*recSession{phone, desk} {
		if err := m.Bind(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	return m, phone, desk
}

// fromSession hands the client stanza raw, sent by s, to the session
// manager.
func fromSession(t *testing.T, m *sm.SM, s *recSession, raw string) {
	t.Helper()
	el, err := xmlstream.ParseStanza([]byte(raw), xmlstream.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	el.SetAttr("from", s.full.String())
	st := router.Stanza{El: el, From: s.full}
	if to := el.Attr("to"); to != "" {
		st.To = jid.MustParse(to)
	}
	m.HandleFromSession(context.Background(), s, st)
}

// TestRestoreSession: a session restored with flags gets what its client
// had asked of its former owner — carbons, roster pushes, blocklist
// pushes — and nothing it had not asked for; restoring replaces what the
// session had asked of this instance.
func TestRestoreSession(t *testing.T) {
	tests := []struct {
		name string
		// enable: what the phone asks of this instance before the restore.
		enable string
		flags  router.SessionFlags
		want   map[string]int
	}{
		{"nothing", "", router.SessionFlags{}, map[string]int{}},
		{"carbons", "", router.SessionFlags{Carbons: true}, map[string]int{"carbon": 1}},
		{"roster pushes", "", router.SessionFlags{Interested: true}, map[string]int{"roster-push": 1}},
		{"blocklist pushes", "", router.SessionFlags{BlockPushes: true}, map[string]int{"block-push": 1}},
		{"all", "", router.SessionFlags{Carbons: true, Interested: true, BlockPushes: true},
			map[string]int{"carbon": 1, "roster-push": 1, "block-push": 1}},
		{"restore turns carbons off", "<iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>", router.SessionFlags{}, map[string]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, phone, desk := restoreSM(t)
			if tt.enable != "" {
				fromSession(t, m, phone, tt.enable)
				if k := phone.kinds(); k["iq"] != 1 {
					t.Fatalf("enabling: got %v", k)
				}
				phone.reset()
			}
			m.RestoreSession(phone, tt.flags)

			// The desk sends a chat message, edits the roster and blocks
			// someone: what reaches the phone depends on its flags.
			fromSession(t, m, desk, "<message to='bob@localhost' type='chat' id='m1'><body>hi</body></message>")
			fromSession(t, m, desk, "<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='carol@localhost'/></query></iq>")
			fromSession(t, m, desk, "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='mallory@localhost'/></block></iq>")

			got := phone.kinds()
			if len(got) != len(tt.want) {
				t.Fatalf("phone got %v, want %v", got, tt.want)
			}
			for k, n := range tt.want {
				if got[k] != n {
					t.Fatalf("phone got %v, want %v", got, tt.want)
				}
			}
			// The desk's own flags are untouched: it asked for nothing,
			// and gets the results of its requests only.
			if d := desk.kinds(); d["iq"] != 2 || len(d) != 1 {
				t.Fatalf("desk got %v", d)
			}
		})
	}
}

// TestRestoreSessionUnknown: restoring a session that is not bound, of a
// user with or without other sessions, changes nothing and does not
// bind it.
func TestRestoreSessionUnknown(t *testing.T) {
	m, phone, desk := restoreSM(t)
	for _, full := range []string{"alice@localhost/gone", "bob@localhost/none"} {
		ghost := &recSession{full: jid.MustParse(full)}
		m.RestoreSession(ghost, router.SessionFlags{Carbons: true, Interested: true, BlockPushes: true})
		fromSession(t, m, desk, "<message to='bob@localhost' type='chat' id='m1'><body>hi</body></message>")
		fromSession(t, m, desk, "<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='carol@localhost'/></query></iq>")
		if k := ghost.kinds(); len(k) != 0 {
			t.Fatalf("%s got %v", full, k)
		}
	}
	if k := phone.kinds(); len(k) != 0 {
		t.Fatalf("phone got %v", k)
	}
}
