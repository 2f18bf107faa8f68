package irc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/irc/internal/fakeircd"
)

// loginWith logs alice@example.org in with the contacts the bridge put
// in her roster before, and logs her out when the test ends.
func loginWith(t *testing.T, n *Network, contacts ...bridge.UserID) (*session, *recorder) {
	t.Helper()
	rec := newRecorder(t)
	s, err := n.Login(ctx(t), bridge.Account{JID: "alice@example.org", Contacts: contacts}, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Logout(context.Background()) })
	return s.(*session), rec
}

// presence waits for the presence of from.
func (r *recorder) presence(from bridge.UserID) bridge.Presence {
	r.t.Helper()
	return r.expect("Presence", func(e event) bool { return e.from == from }).pres
}

// A nick the user exchanges a one-to-one message with, either way,
// becomes a contact, once, online; notices, CTCP queries, the server and
// nicks nobody has do not.
func TestContactsFromOneToOne(t *testing.T) {
	srv, s, rec := start(t)
	bob := fakeircd.Dial(t, srv.Addr(), "Bob")
	carol := fakeircd.Dial(t, srv.Addr(), "carol")
	ns := fakeircd.Dial(t, srv.Addr(), "NickServ")

	// Written to by bob: a contact, told before the message.
	bob.Send("PRIVMSG alice :hello")
	c := rec.expect("Contact", nil)
	if c.from != "Bob" || c.text != "Bob" || c.pres.Offline || c.pres.Show != bridge.Available {
		t.Fatalf("contact %+v", c)
	}
	rec.expect("Message", func(e event) bool { return e.from == "Bob" && e.msg.Body == "hello" })
	// Again, and answered, in any case: still the one contact.
	bob.Send("PRIVMSG alice :hello again")
	rec.expect("Message", func(e event) bool { return e.msg.Body == "hello again" })
	if _, err := s.SendMessage(ctx(t), "bob", bridge.Message{Body: "hi"}); err != nil {
		t.Fatal(err)
	}
	bob.Expect("PRIVMSG Bob :hi$")
	rec.none("Contact")

	// Writing to carol makes her one; writing to nobody, or nothing,
	// makes none.
	if _, err := s.SendMessage(ctx(t), "carol", bridge.Message{Body: "hi carol"}); err != nil {
		t.Fatal(err)
	}
	if c := rec.expect("Contact", nil); c.from != "carol" {
		t.Fatalf("contact %+v, want carol", c)
	}
	carol.Expect("PRIVMSG carol :hi carol$")
	if _, err := s.SendMessage(ctx(t), "nobody", bridge.Message{Body: "x"}); !errors.Is(err, bridge.ErrNoSuchUser) {
		t.Fatalf("to nobody: %v", err)
	}
	dave := fakeircd.Dial(t, srv.Addr(), "dave")
	s.SendMessage(ctx(t), "dave", bridge.Message{Body: " "})

	// Notices (services), CTCP queries and the server make none: a
	// contact would be told before the message.
	mark := rec.mark()
	ns.Send("NOTICE alice :This nickname is registered.")
	rec.expect("Message", func(e event) bool { return e.from == "NickServ" })
	dave.Send("PRIVMSG alice :\x01VERSION\x01")
	dave.Expect("NOTICE dave :\x01VERSION")
	dave.Send("NOTICE alice :just a notice")
	rec.expect("Message", func(e event) bool { return e.from == "dave" })
	srv.Notice("alice", "*** server news")
	rec.expect("Message", func(e event) bool { return e.from == "127.0.0.1" })
	if cs := rec.sawSince(mark, "Contact"); len(cs) > 0 {
		t.Fatalf("contacts made of notices, CTCP or the server: %v", cs)
	}
	rec.none("Contact")

	// An emote is a message.
	dave.Send("PRIVMSG alice :\x01ACTION waves\x01")
	if c := rec.expect("Contact", nil); c.from != "dave" {
		t.Fatalf("contact %+v, want dave", c)
	}
	// No MONITOR on this server: no MONITOR sent.
	for _, l := range srv.Received() {
		if strings.Contains(l, "MONITOR") {
			t.Fatalf("MONITOR sent to a server without it: %s", l)
		}
	}
}

// Without MONITOR (as on ngircd), the contacts' presence is asked with
// ISON: at login for the contacts the bridge had put in the roster, then
// every ContactPoll. A contact that quits, or leaves its nick where the
// user sees it, goes offline; one that comes, online.
func TestContactsPresenceByISON(t *testing.T) {
	srv := fakeircd.Start(t, fakeircd.Options{})
	bob := fakeircd.Dial(t, srv.Addr(), "bob")
	n := network(t, srv.Addr(), "puppet", func(c *Config) { c.ContactPoll = bridge.Duration(time.Second) })
	// The server's own id and a channel are no nicks to follow.
	s, rec := loginWith(t, n, "bob", "carol", "127.0.0.1", "#go")
	srv.Expect(t, `^alice: ISON :?bob carol$`)
	if p := rec.presence("bob"); p.Offline {
		t.Fatalf("bob, online, told %+v", p)
	}

	// carol comes, bob goes: told at the next round.
	carol := fakeircd.Dial(t, srv.Addr(), "carol")
	if p := rec.presence("carol"); p.Offline {
		t.Fatalf("carol, come, told %+v", p)
	}
	bob.Close()
	if p := rec.presence("bob"); !p.Offline {
		t.Fatalf("bob, gone, told %+v", p)
	}

	// In a channel with the user, carol's nick change is seen at once:
	// the contact carol goes offline.
	carol.Send("JOIN #go")
	carol.Expect(" 366 ")
	if err := s.JoinRoom(ctx(t), "#go", "alice", ""); err != nil {
		t.Fatal(err)
	}
	rec.expect("RoomJoined", nil)
	carol.Send("NICK carol2")
	if p := rec.presence("carol"); !p.Offline {
		t.Fatalf("carol, renamed, told %+v", p)
	}
	// She wrote one to one under the new nick: another contact.
	carol.Send("PRIVMSG alice :it's me")
	if c := rec.expect("Contact", nil); c.from != "carol2" {
		t.Fatalf("contact %+v, want carol2", c)
	}
	srv.Expect(t, `^alice: ISON :?bob carol carol2$`)
	// Quitting in the channel: offline at once.
	carol.Send("QUIT :bye")
	if p := rec.presence("carol2"); !p.Offline {
		t.Fatalf("carol2, gone, told %+v", p)
	}
	for _, l := range srv.Received() {
		if strings.Contains(l, "127.0.0.1") && strings.Contains(l, "ISON") || strings.Contains(l, "#go") && strings.Contains(l, "ISON") {
			t.Fatalf("asked about what is not a nick: %s", l)
		}
	}
}

// With MONITOR, the server tells when contacts come and go, and no ISON
// asks about them; those the server refuses (734, its list full) are
// asked with ISON instead.
func TestContactsPresenceByMONITOR(t *testing.T) {
	srv := fakeircd.Start(t, fakeircd.Options{Monitor: 2, MonitorTold: 3})
	bob := fakeircd.Dial(t, srv.Addr(), "bob")
	n := network(t, srv.Addr(), "puppet", func(c *Config) { c.ContactPoll = bridge.Duration(time.Second) })
	_, rec := loginWith(t, n, "bob", "carol", "dave")
	srv.Expect(t, `^alice: MONITOR \+ :?bob,carol,dave$`)
	if p := rec.presence("bob"); p.Offline {
		t.Fatalf("bob, online, told %+v", p)
	}
	srv.Expect(t, `^alice: ISON :?dave$`)
	carol := fakeircd.Dial(t, srv.Addr(), "carol")
	if p := rec.presence("carol"); p.Offline {
		t.Fatalf("carol, come, told %+v", p)
	}
	bob.Close()
	if p := rec.presence("bob"); !p.Offline {
		t.Fatalf("bob, gone, told %+v", p)
	}
	// A nick change, where the user does not see it: MONITOR tells.
	carol.Send("NICK carol_")
	if p := rec.presence("carol"); !p.Offline {
		t.Fatalf("carol, renamed, told %+v", p)
	}
	// A new contact is added to MONITOR; the server, full, refuses it:
	// it is asked with ISON.
	eve := fakeircd.Dial(t, srv.Addr(), "eve")
	eve.Send("PRIVMSG alice :hi")
	rec.expect("Contact", func(e event) bool { return e.from == "eve" })
	srv.Expect(t, `^alice: MONITOR \+ :?eve$`)
	srv.Expect(t, `^alice: ISON :?dave eve$`)
	for _, l := range srv.Received() {
		if strings.Contains(l, "ISON") && (strings.Contains(l, "bob") || strings.Contains(l, "carol")) {
			t.Fatalf("asked with ISON about a contact MONITOR covers: %s", l)
		}
	}
}
