package sm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// TestBefriend: two users become contacts subscribed both ways at once,
// an online one by a roster push and both presences flowing; a pending
// request is settled on the way, and a second call changes nothing.
func TestBefriend(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "pw")
	s.AddUser(t, "bob@localhost", "pw")
	alice := s.Login(t, "alice", "pw", "a")
	alice.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
	alice.Expect("roster", isIQ("r"))
	alice.Send("<presence to='bob@localhost' type='subscribe'/>")
	alice.Expect("push ask", rosterPush("bob@localhost", "none", "subscribe"))

	a, b := jid.MustParse("alice@localhost/a"), jid.MustParse("bob@localhost")
	if err := s.SM.Befriend(t.Context(), b, a); err != nil {
		t.Fatal(err)
	}
	alice.Expect("push both", rosterPush("bob@localhost", "both", ""))
	for _, p := range [][2]string{{"alice@localhost", "bob@localhost"}, {"bob@localhost", "alice@localhost"}} {
		it, err := s.Store.RosterItem(t.Context(), p[0], p[1])
		if err != nil || it.Subscription != storage.SubscriptionBoth || it.Ask || it.PendingIn {
			t.Fatalf("%s's item for %s: %+v, %v", p[0], p[1], it, err)
		}
	}
	if err := s.SM.Befriend(t.Context(), a, b); err != nil {
		t.Fatal(err)
	}
	available := func(from string) func(*xmlstream.Element) bool {
		return func(e *xmlstream.Element) bool {
			return e.Local == "presence" && e.Attr("type") == "" && strings.HasPrefix(e.Attr("from"), from+"/")
		}
	}
	alice.Send("<presence/>")
	bob := s.Login(t, "bob", "pw", "b")
	bob.Send("<presence/>")
	alice.Expect("bob's presence", available("bob@localhost"))
	bob.Expect("alice's presence", available("alice@localhost"))

	for _, tc := range []struct {
		a, b string
		want error
	}{
		{"alice@localhost", "alice@localhost", storage.ErrInvalid},
		{"alice@localhost", "carol@elsewhere", storage.ErrInvalid},
		{"alice@localhost", "nobody@localhost", storage.ErrNotFound},
	} {
		if err := s.SM.Befriend(t.Context(), jid.MustParse(tc.a), jid.MustParse(tc.b)); !errors.Is(err, tc.want) {
			t.Errorf("Befriend(%s, %s): %v, want %v", tc.a, tc.b, err, tc.want)
		}
	}
}
