package c2s_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/dataform"
	"github.com/ambrosia-xmpp/ambrosia/internal/invite"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

func registerQuery(user, pass, extra string) string {
	return "<query xmlns='jabber:iq:register'><username>" + user + "</username><password>" + pass + "</password>" + extra + "</query>"
}

// TestRegistrationByInvitation: registration is closed, an invitation
// opens it once (XEP-0445) and makes the invitee the inviter's contact
// both ways (XEP-0379).
func TestRegistrationByInvitation(t *testing.T) {
	s := xmpptest.StartServerWith(t, xmpptest.Options{Invites: true})
	s.AddUser(t, "alice@localhost", "pw")
	s.AddUser(t, "taken@localhost", "pw")
	alice := s.Login(t, "alice", "pw", "a")
	alice.Send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
	alice.Expect("roster", isID("r"))
	_, tok, err := invite.Create(t.Context(), s.Store, "localhost", "alice@localhost", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	c := xmpptest.Dial(t, s.Addr, "localhost")
	c.Open()
	c.StartTLS(s.Roots)
	for _, ns := range []string{"http://jabber.org/features/iq-register", "urn:xmpp:invite"} {
		if c.Features.Child(ns, "register") == nil {
			t.Fatalf("no %s feature: %s", ns, c.Features)
		}
	}
	c.Send("<iq type='get' id='g'><query xmlns='jabber:iq:register'/></iq>")
	if r := c.Expect("form", isID("g")); !strings.Contains(r.String(), "by invitation only") {
		t.Fatalf("form without an invitation: %s", r)
	}
	steps := []struct{ send, cond, text string }{
		{"<iq type='set' id='x'>" + registerQuery("newbie", "s3cret", "") + "</iq>", "not-allowed", "by invitation only"},
		{"<iq type='set' id='x'><preauth xmlns='urn:xmpp:pars:0' token='wrong'/></iq>", "item-not-found", "invalid, expired or already used"},
		{"<iq type='get' id='x'><preauth xmlns='urn:xmpp:pars:0' token='" + tok + "'/></iq>", "bad-request", ""},
		{"<iq type='set' id='x'><preauth xmlns='urn:xmpp:pars:0' token='" + tok + "'/></iq>", "", ""},
		// A name taken: the invitation stays for another try.
		{"<iq type='set' id='x'>" + registerQuery("taken", "s3cret", "") + "</iq>", "conflict", ""},
		{"<iq type='set' id='x'>" + registerQuery("newbie", "s3cret", "") + "</iq>", "", ""},
	}
	for _, st := range steps {
		c.Send(st.send)
		r := c.Expect("answer", isID("x"))
		if st.cond == "" && r.Attr("type") != "result" || st.cond != "" && (!strings.Contains(r.String(), st.cond) || !strings.Contains(r.String(), st.text)) {
			t.Fatalf("%s: got %s, want %q %q", st.send, r, st.cond, st.text)
		}
	}
	push := alice.Expect("roster push", func(e *xmlstream.Element) bool {
		q := e.Child("jabber:iq:roster", "query")
		return q != nil && q.Child("jabber:iq:roster", "item") != nil
	})
	if it := push.Child("jabber:iq:roster", "query").Child("jabber:iq:roster", "item"); it.Attr("jid") != "newbie@localhost" || it.Attr("subscription") != "both" {
		t.Fatalf("push to the inviter: %s", push)
	}
	it, err := s.Store.RosterItem(t.Context(), "newbie@localhost", "alice@localhost")
	if err != nil || it.Subscription != storage.SubscriptionBoth || it.Ask || it.PendingIn {
		t.Fatalf("invitee's roster item: %+v, %v", it, err)
	}
	if cond := c.AuthSCRAM("SCRAM-SHA-256", "newbie", "s3cret", ""); cond != "" {
		t.Fatalf("login with the new account: %s", cond)
	}

	// Used: refused, also given with the registration itself.
	d := xmpptest.Dial(t, s.Addr, "localhost")
	d.Open()
	d.StartTLS(s.Roots)
	d.Send("<iq type='set' id='x'>" + registerQuery("other", "s3cret", "<preauth xmlns='urn:xmpp:pars:0' token='"+tok+"'/>") + "</iq>")
	if r := d.Expect("answer", isID("x")); !strings.Contains(r.String(), "not-allowed") || !strings.Contains(r.String(), "already used") {
		t.Fatalf("used invitation: %s", r)
	}
	// An invitation without inviter, given in the query.
	_, reg, err := invite.Create(t.Context(), s.Store, "localhost", "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d.Send("<iq type='set' id='y'>" + registerQuery("other", "s3cret", "<preauth xmlns='urn:xmpp:pars:0' token='"+reg+"'/>") + "</iq>")
	if r := d.Expect("answer", isID("y")); r.Attr("type") != "result" {
		t.Fatalf("register-only invitation: %s", r)
	}
	if items, _, _ := s.Store.RosterItems(t.Context(), "other@localhost"); len(items) != 0 {
		t.Fatalf("roster of an invitee without inviter: %+v", items)
	}
}

// TestInvitationsOff: without invitations, closed registration stays
// closed and says nothing of them.
func TestInvitationsOff(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	_, tok, err := invite.Create(t.Context(), s.Store, "localhost", "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := xmpptest.Dial(t, s.Addr, "localhost")
	c.Open()
	c.StartTLS(s.Roots)
	if c.Features.Child("urn:xmpp:invite", "register") != nil {
		t.Fatal("invitations offered")
	}
	c.Send("<iq type='set' id='x'><preauth xmlns='urn:xmpp:pars:0' token='" + tok + "'/></iq>")
	if r := c.Expect("answer", isID("x")); !strings.Contains(r.String(), "service-unavailable") {
		t.Fatalf("preauth: %s", r)
	}
}

// TestInvitationCommand: a user creates an invitation with the ad-hoc
// command of XEP-0401 when the server allows it, and a newcomer
// registers with its URI's token.
func TestInvitationCommand(t *testing.T) {
	for _, allowed := range []bool{false, true} {
		s := xmpptest.StartServerWith(t, xmpptest.Options{Invites: true, SM: func(c *sm.Config) { c.UserInvites = allowed }})
		s.AddUser(t, "alice@localhost", "pw")
		alice := s.Login(t, "alice", "pw", "a")
		alice.Send("<iq type='get' id='i' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>")
		items := alice.Expect("commands", isID("i"))
		listed := strings.Contains(items.String(), "urn:xmpp:invite#invite")
		alice.Send("<iq type='set' id='c' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='urn:xmpp:invite#invite' action='execute'/></iq>")
		r := alice.Expect("command", isID("c"))
		if !allowed {
			if listed || r.Attr("type") != "error" {
				t.Fatalf("not allowed, yet listed %v (%s) or executed: %s", listed, items, r)
			}
			continue
		}
		if !listed {
			t.Fatalf("command not listed: %s", items)
		}
		cmd := r.Child("http://jabber.org/protocol/commands", "command")
		if cmd == nil || cmd.Attr("status") != "completed" {
			t.Fatalf("execute: %s", r)
		}
		form, err := dataform.Parse(cmd.Child(dataform.NS, "x"))
		if err != nil || form.Field("uri") == nil || form.Field("expire") == nil {
			t.Fatalf("result form %v: %s", err, r)
		}
		uri := form.Field("uri").Value()
		tok, ok := strings.CutPrefix(uri, "xmpp:alice@localhost?roster;preauth=")
		tok, ok2 := strings.CutSuffix(tok, ";ibr=y")
		if !ok || !ok2 {
			t.Fatalf("uri %q", uri)
		}
		c := xmpptest.Dial(t, s.Addr, "localhost")
		c.Open()
		c.StartTLS(s.Roots)
		c.Send("<iq type='set' id='x'>" + registerQuery("romeo", "s3cret", "<preauth xmlns='urn:xmpp:pars:0' token='"+tok+"'/>") + "</iq>")
		if r := c.Expect("answer", isID("x")); r.Attr("type") != "result" {
			t.Fatalf("register: %s", r)
		}
		if it, err := s.Store.RosterItem(t.Context(), "alice@localhost", "romeo@localhost"); err != nil || it.Subscription != storage.SubscriptionBoth {
			t.Fatalf("inviter's roster item: %+v, %v", it, err)
		}
	}
}
