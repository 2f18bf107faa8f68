package component

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/privilege"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// privileged starts the fixture with echo.localhost granted g.
func privileged(t *testing.T, g privilege.Grant) *fixture {
	t.Helper()
	return start(t, func(c *Config) { c.Components[0].Privileges = g })
}

// TestPrivilegeAdvertised: right after <handshake/>, a privileged
// component gets its permissions (XEP-0356 §4.2) from each domain a
// session manager serves, in the namespace configured for it; another
// component gets nothing.
func TestPrivilegeAdvertised(t *testing.T) {
	for _, ns := range []string{privilege.NS2, privilege.NS1} {
		t.Run(ns, func(t *testing.T) {
			g := privilege.Grant{Namespace: ns, Roster: privilege.Both, Message: true, Presence: privilege.PresenceManaged}
			if ns == privilege.NS2 {
				g.RosterPush = true
			}
			f := privileged(t, g)
			c := f.connect(t)
			m := c.Element()
			p := m.Child(ns, "privilege")
			if m.Local != "message" || m.Attr("from") != "localhost" || m.Attr("to") != echoDomain || p == nil {
				t.Fatalf("want the advertisement first, got %s", m)
			}
			perms := map[string]string{}
			for _, e := range p.Children() {
				perms[e.Attr("access")] = e.Attr("type")
			}
			if perms["roster"] != "both" || perms["message"] != "outgoing" || perms["presence"] != "managed_entity" {
				t.Fatalf("perms %v in %s", perms, m)
			}
		})
	}
	t.Run("not privileged", func(t *testing.T) {
		f := start(t, nil)
		c := f.connectOther(t)
		c.Send("<iq type='get' from='other.localhost' to='localhost' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
		if el := c.Element(); el.Attr("id") != "p1" {
			t.Fatalf("a component without privileges got %s first", el)
		}
	})
}

// TestPrivilegeConfigRejected: New refuses what XEP-0356 forbids.
func TestPrivilegeConfigRejected(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Components = []External{{Domain: echoDomain, Secret: "s", Privileges: privilege.Grant{Roster: privilege.Set, Presence: privilege.PresenceRoster}}}
	_, err := New(cfg, Deps{Router: router.New(xmpptest.Discard()), Log: xmpptest.Discard()})
	if err == nil || !strings.Contains(err.Error(), "presence") {
		t.Fatalf("got %v", err)
	}
}

// withID matches an element by id, for Expect.
func withID(id string) func(*xmlstream.Element) bool {
	return func(e *xmlstream.Element) bool { return e.Attr("id") == id }
}

// errorIs reports whether e is an error with the condition.
func errorIs(e *xmlstream.Element, cond string) bool {
	return e.Attr("type") == "error" && strings.Contains(e.String(), "<"+cond+" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'")
}

// TestPrivilegedComponent drives each permission over real sockets: a
// component granted roster = both, message = outgoing and presence =
// managed_entity adds a contact to a user's roster (the user's client gets
// the push), sends a message as the user and sees the user's presence; a
// component without privileges is refused, and no grant reaches past the
// served domains or the bare JIDs of their users.
func TestPrivilegedComponent(t *testing.T) {
	f := privileged(t, privilege.Grant{Roster: privilege.Both, RosterPush: true, Message: true, Presence: privilege.PresenceManaged})
	f.xs.AddUser(t, "alice@localhost", "pw")
	f.xs.AddUser(t, "bob@localhost", "pw")
	alice := f.xs.Login(t, "alice", "pw", "res")
	alice.Send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>")
	alice.Expect("roster", withID("r0"))
	alice.Send("<presence/>")
	alice.Expect("own presence", func(e *xmlstream.Element) bool { return e.Local == "presence" })
	bob := f.xs.Login(t, "bob", "pw", "res")
	bob.Send("<presence/>")
	bob.Expect("own presence", func(e *xmlstream.Element) bool { return e.Local == "presence" })

	comp := f.connect(t)
	comp.Expect("advertisement", func(e *xmlstream.Element) bool { return e.Child(privilege.NS2, "privilege") != nil })
	// XEP-0356 §7, rule 1: the presence there is when it comes.
	p := comp.Expect("alice's presence", func(e *xmlstream.Element) bool {
		return e.Local == "presence" && e.Attr("from") == "alice@localhost/res"
	})
	if p.Attr("type") != "" || p.Attr("to") != echoDomain {
		t.Fatalf("got %s", p)
	}

	// Roster.
	comp.Send("<iq type='set' from='" + echoDomain + "' to='alice@localhost' id='rs1'><query xmlns='jabber:iq:roster'>" +
		"<item jid='42@" + echoDomain + "' name='Legacy' subscription='both'/></query></iq>")
	push := alice.Expect("roster push", func(e *xmlstream.Element) bool { return e.Local == "iq" && e.Attr("type") == "set" })
	if !strings.Contains(push.String(), "jid='42@"+echoDomain+"'") || !strings.Contains(push.String(), "subscription='both'") {
		t.Fatalf("alice got %s", push)
	}
	var result, entityPush *xmlstream.Element
	for result == nil || entityPush == nil {
		e := comp.Expect("result and push", func(e *xmlstream.Element) bool { return e.Local == "iq" })
		switch {
		case e.Attr("id") == "rs1":
			result = e
		case e.Attr("type") == "set":
			entityPush = e
		}
	}
	if result.Attr("type") != "result" || result.Attr("from") != "alice@localhost" || entityPush.Attr("from") != "alice@localhost" {
		t.Fatalf("result %s, push %s", result, entityPush)
	}
	comp.Send("<iq type='result' from='" + echoDomain + "' to='alice@localhost' id='" + entityPush.Attr("id") + "'/>")

	// Message, then a spoof: a user of a domain the server does not serve.
	fwd := func(id, from string) string {
		return "<message from='" + echoDomain + "' to='localhost' id='" + id + "'><privilege xmlns='urn:xmpp:privilege:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
			"<message xmlns='jabber:client' from='" + from + "' to='bob@localhost' type='chat' id='in-" + id + "'><body>from the legacy app</body></message></forwarded></privilege></message>"
	}
	comp.Send(fwd("m1", "alice@localhost"))
	if m := bob.Expect("message as alice", withID("in-m1")); m.Attr("from") != "alice@localhost" {
		t.Fatalf("bob got %s", m)
	}
	comp.Send(fwd("m2", "alice@example.org"))
	if e := comp.Expect("spoof refused", withID("m2")); !errorIs(e, "forbidden") {
		t.Fatalf("got %s", e)
	}
	comp.Send(fwd("m3", "alice@localhost/res"))
	if e := comp.Expect("full JID refused", withID("m3")); !errorIs(e, "forbidden") {
		t.Fatalf("got %s", e)
	}

	// A roster request for an address no session manager serves is no
	// privileged request: it goes where it is addressed.
	comp.Send("<iq type='get' from='" + echoDomain + "' to='alice@other.localhost' id='rs2'><query xmlns='jabber:iq:roster'/></iq>")
	if e := comp.Expect("not ours", withID("rs2")); e.Attr("type") != "error" || errorIs(e, "forbidden") {
		t.Fatalf("got %s", e)
	}

	// Presence.
	alice.Send("<presence type='unavailable'/>")
	comp.Expect("alice unavailable", func(e *xmlstream.Element) bool {
		return e.Local == "presence" && e.Attr("type") == "unavailable" && e.Attr("from") == "alice@localhost/res"
	})

	// Another component, without privileges, is refused everything.
	other := f.connectOther(t)
	other.Send("<iq type='get' from='other.localhost' to='alice@localhost' id='o1'><query xmlns='jabber:iq:roster'/></iq>")
	if e := other.Expect("roster refused", withID("o1")); !errorIs(e, "forbidden") || !strings.Contains(e.String(), "type='auth'") {
		t.Fatalf("got %s", e)
	}
	other.Send(strings.ReplaceAll(fwd("o2", "alice@localhost"), echoDomain, "other.localhost"))
	if e := other.Expect("message refused", withID("o2")); !errorIs(e, "forbidden") {
		t.Fatalf("got %s", e)
	}
	alice.Send("<message to='bob@localhost' id='sentinel'><body>x</body></message>")
	if m := bob.Expect("nothing else for bob", func(e *xmlstream.Element) bool { return e.Local == "message" }); m.Attr("id") == "in-o2" || m.Attr("id") == "in-m2" {
		t.Fatalf("bob got %s", m)
	}
}

// TestPrivilegedComponentLeaves: once the component is gone the session
// manager stops sending it presence; when it comes back it is told the
// presence there is again.
func TestPrivilegedComponentLeaves(t *testing.T) {
	f := privileged(t, privilege.Grant{Presence: privilege.PresenceManaged})
	f.xs.AddUser(t, "alice@localhost", "pw")
	comp := f.connect(t)
	comp.Expect("advertisement", func(e *xmlstream.Element) bool { return e.Child(privilege.NS2, "privilege") != nil })
	comp.Close()
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if _, ok := f.xs.Router.Lookup(echoDomain); ok {
			return errors.New("still registered")
		}
		return nil
	})
	alice := f.xs.Login(t, "alice", "pw", "res")
	alice.Send("<presence/>")
	alice.Expect("own presence", func(e *xmlstream.Element) bool { return e.Local == "presence" })
	// Were the presence still sent to the component's domain, the router
	// would bounce it to alice.
	alice.Send("<iq type='get' id='ping' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	if e := alice.Expect("ping", func(e *xmlstream.Element) bool { return e.Local != "presence" || e.Attr("type") == "error" }); e.Attr("id") != "ping" {
		t.Fatalf("alice got %s", e)
	}
	comp = f.connect(t)
	comp.Expect("advertisement", func(e *xmlstream.Element) bool { return e.Child(privilege.NS2, "privilege") != nil })
	if p := comp.Expect("alice's presence", func(e *xmlstream.Element) bool { return e.Local == "presence" }); p.Attr("from") != "alice@localhost/res" {
		t.Fatalf("got %s", p)
	}
}
