package c2s_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

func isID(id string) func(*xmlstream.Element) bool {
	return func(e *xmlstream.Element) bool { return e.Attr("id") == id }
}

func TestInBandRegistration(t *testing.T) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) { c.AllowRegistration = true })
	s.AddUser(t, "taken@localhost", "x")
	c := xmpptest.Dial(t, s.Addr, "localhost")
	c.Open()
	if c.Features.Child("http://jabber.org/features/iq-register", "register") != nil {
		t.Fatal("registration offered before TLS")
	}
	c.StartTLS(s.Roots)
	if c.Features.Child("http://jabber.org/features/iq-register", "register") == nil {
		t.Fatalf("no registration feature: %s", c.Features)
	}
	c.Send("<iq type='get' id='g'><query xmlns='jabber:iq:register'/></iq>")
	if r := c.Expect("form", isID("g")); r.Child("jabber:iq:register", "query").Child("jabber:iq:register", "username") == nil {
		t.Fatalf("form: %s", r)
	}
	for _, tc := range []struct{ q, cond string }{
		{"<username>taken</username><password>pw</password>", "conflict"},
		{"<username>nopass</username>", "not-acceptable"},
		{"<username>bad user</username><password>pw</password>", "jid-malformed"},
		{"<remove/>", "not-authorized"},
	} {
		c.Send("<iq type='set' id='s'><query xmlns='jabber:iq:register'>" + tc.q + "</query></iq>")
		if r := c.Expect("error", isID("s")); r.Attr("type") != "error" || !strings.Contains(r.String(), tc.cond) {
			t.Fatalf("%s: got %s, want %s", tc.q, r, tc.cond)
		}
	}
	c.Send("<iq type='set' id='ok'><query xmlns='jabber:iq:register'><username>newbie</username><password>s3cret</password></query></iq>")
	if r := c.Expect("result", isID("ok")); r.Attr("type") != "result" {
		t.Fatalf("register: %s", r)
	}
	// One account per connection.
	c.Send("<iq type='set' id='again'><query xmlns='jabber:iq:register'><username>second</username><password>x</password></query></iq>")
	if r := c.Expect("error", isID("again")); !strings.Contains(r.String(), "service-unavailable") {
		t.Fatalf("second registration: %s", r)
	}
	if cond := c.AuthSCRAM("SCRAM-SHA-256", "newbie", "s3cret", ""); cond != "" {
		t.Fatalf("login with the new account: %s", cond)
	}
}

func TestRegistrationOffByDefault(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	c := xmpptest.Dial(t, s.Addr, "localhost")
	c.Open()
	c.StartTLS(s.Roots)
	if c.Features.Child("http://jabber.org/features/iq-register", "register") != nil {
		t.Fatal("registration offered")
	}
	c.Send("<iq type='set' id='s'><query xmlns='jabber:iq:register'><username>x</username><password>y</password></query></iq>")
	if r := c.Expect("error", isID("s")); !strings.Contains(r.String(), "service-unavailable") {
		t.Fatalf("got %s", r)
	}
}

func TestPasswordChangeAndRemoval(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "old")
	a := s.Login(t, "alice", "old", "a")
	a.Send("<iq type='get' id='g'><query xmlns='jabber:iq:register'/></iq>")
	if r := a.Expect("registered", isID("g")); r.Child("jabber:iq:register", "query").Child("jabber:iq:register", "registered") == nil {
		t.Fatalf("get: %s", r)
	}
	a.Send("<iq type='set' id='p'><query xmlns='jabber:iq:register'><username>alice</username><password>new</password></query></iq>")
	if r := a.Expect("changed", isID("p")); r.Attr("type") != "result" {
		t.Fatalf("change: %s", r)
	}
	c := xmpptest.Dial(t, s.Addr, "localhost")
	c.Open()
	c.StartTLS(s.Roots)
	if cond := c.AuthSCRAM("SCRAM-SHA-1", "alice", "old", ""); cond != "not-authorized" {
		t.Fatalf("old password: %q", cond)
	}
	b := s.Login(t, "alice", "new", "b")
	b.Send("<iq type='set' id='r'><query xmlns='jabber:iq:register'><remove/></query></iq>")
	if r := b.Expect("removed", isID("r")); r.Attr("type") != "result" {
		t.Fatalf("remove: %s", r)
	}
	if cond := a.StreamError(); cond != "not-authorized" {
		t.Fatalf("other session after removal: %q", cond)
	}
	d := xmpptest.Dial(t, s.Addr, "localhost")
	d.Open()
	d.StartTLS(s.Roots)
	if cond := d.AuthPlain("alice", "new"); cond != "not-authorized" {
		t.Fatalf("login after removal: %q", cond)
	}
}

// TestRegistrationFormOutlivesAuthTimeout: a person filling the form in
// takes longer than the authentication timeout of silent connections.
func TestRegistrationFormOutlivesAuthTimeout(t *testing.T) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) { c.AllowRegistration = true; c.AuthTimeout = time.Second })
	c := xmpptest.Dial(t, s.Addr, "localhost")
	c.Open()
	c.StartTLS(s.Roots)
	c.Send("<iq type='get' id='g'><query xmlns='jabber:iq:register'/></iq>")
	c.Expect("form", isID("g"))
	time.Sleep(1500 * time.Millisecond) // past AuthTimeout
	c.Send("<iq type='set' id='ok'><query xmlns='jabber:iq:register'><username>slow</username><password>s3cret</password></query></iq>")
	if r := c.Expect("result", isID("ok")); r.Attr("type") != "result" {
		t.Fatalf("register: %s", r)
	}
}
