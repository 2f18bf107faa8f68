package component

import (
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/privilege"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
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
