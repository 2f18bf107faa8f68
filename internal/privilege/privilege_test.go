package privilege

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		g    Grant
		want string // "" for valid
	}{
		{"zero", Grant{}, ""},
		{"everything", Grant{Roster: Both, RosterPush: true, Message: true, Presence: PresenceRoster, IQ: map[string]Access{"jabber:iq:roster": Get}}, ""},
		{"version 1", Grant{Namespace: NS1, Roster: Set, Message: true, Presence: PresenceManaged}, ""},
		{"unknown namespace", Grant{Namespace: "urn:xmpp:privilege:3"}, "namespace"},
		{"push without get", Grant{Roster: Set, RosterPush: true}, "roster_push"},
		{"push in version 1", Grant{Namespace: NS1, Roster: Both, RosterPush: true}, "roster_push"},
		{"roster presence without roster get", Grant{Roster: Set, Presence: PresenceRoster}, "presence"},
		{"iq in version 1", Grant{Namespace: NS1, IQ: map[string]Access{"urn:x": Set}}, "iq"},
		{"iq none in version 1", Grant{Namespace: NS1, IQ: map[string]Access{"urn:x": None}}, ""},
		{"iq empty namespace", Grant{IQ: map[string]Access{"": Set}}, "iq"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.g.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error about %s", err, tc.want)
			}
		})
	}
}

func TestAdvertisement(t *testing.T) {
	g := Grant{Roster: Both, RosterPush: true, Message: true, Presence: PresenceManaged,
		IQ: map[string]Access{"http://jabber.org/protocol/pubsub": Set, "urn:unused": None}}
	m := g.Advertisement("capulet.lit", "pubsub.capulet.lit")
	if m.Attr("from") != "capulet.lit" || m.Attr("to") != "pubsub.capulet.lit" || m.Attr("id") == "" {
		t.Fatalf("addressing: %s", m)
	}
	p := m.Child(NS2, "privilege")
	if p == nil {
		t.Fatalf("no privilege element: %s", m)
	}
	want := map[string]string{"roster": "both", "message": "outgoing", "presence": "managed_entity", "iq": ""}
	got := map[string]string{}
	for _, e := range p.Children() {
		got[e.Attr("access")] = e.Attr("type")
		switch e.Attr("access") {
		case "roster":
			if e.Attr("push") != "true" {
				t.Errorf("roster push: %s", e)
			}
		case "iq":
			ns := e.Children()
			if len(ns) != 1 || ns[0].Attr("ns") != "http://jabber.org/protocol/pubsub" || ns[0].Attr("type") != "set" {
				t.Errorf("iq namespaces: %s", e)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("perms %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("perm %s: type %q, want %q", k, got[k], v)
		}
	}

	// Version 1 has neither push nor iq, and says what is not granted.
	v1 := Grant{Namespace: NS1, Roster: Get}
	m = v1.Advertisement("capulet.lit", "pubsub.capulet.lit")
	s := m.String()
	if m.Child(NS1, "privilege") == nil || strings.Contains(s, "push") || strings.Contains(s, "'iq'") ||
		!strings.Contains(s, "access='message' type='none'") || !strings.Contains(s, "access='presence' type='none'") {
		t.Fatalf("version 1: %s", s)
	}
}

func TestTextRoundTrip(t *testing.T) {
	for _, g := range []Grant{
		{},
		{Namespace: NS1, Roster: Set, Message: true},
		{Roster: Both, RosterPush: true, Presence: PresenceRoster, IQ: map[string]Access{"urn:a=b:c": Get, "jabber:iq:roster": Both}},
	} {
		b, err := g.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Grant
		if err := back.UnmarshalText(b); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		b2, _ := back.MarshalText()
		if string(b2) != string(b) {
			t.Fatalf("round trip: %s -> %s", b, b2)
		}
	}
	var g Grant
	for _, bad := range []string{"roster=all", "iq=both", "presence=everyone", "colour=blue", "ns=urn:x"} {
		if err := g.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAllows(t *testing.T) {
	g := &Grant{Roster: Get, IQ: map[string]Access{"urn:x": Set}}
	if !g.Roster.Allows("get") || g.Roster.Allows("set") || g.Roster.Allows("result") {
		t.Error("roster access")
	}
	if !g.AllowsIQ("urn:x", "set") || g.AllowsIQ("urn:x", "get") || g.AllowsIQ("urn:y", "set") {
		t.Error("iq access")
	}
	if (&Grant{Namespace: NS1, IQ: map[string]Access{"urn:x": Set}}).AllowsIQ("urn:x", "set") {
		t.Error("iq allowed in version 1")
	}
	var none *Grant
	if !none.Empty() || none.AllowsIQ("urn:x", "set") || none.Pushes() {
		t.Error("nil grant allows something")
	}
	if !(&Grant{IQ: map[string]Access{"urn:x": None}}).Empty() || (&Grant{Message: true}).Empty() {
		t.Error("Empty")
	}
}
