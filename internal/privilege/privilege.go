// Package privilege is the data model of Privileged Entity (XEP-0356): what
// a privileged entity, such as a gateway component, may do for the users of
// the server's domains, and the advertisement the server sends it.
//
// It knows nothing of the server. The component listener builds a Grant
// from configuration and vouches for it on every stanza the component sends
// (router.Stanza.Grant); the session manager enforces it. A grant is never
// read from a stanza: an entity cannot claim one.
package privilege

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces of the two versions in use: NS1 is XEP-0356 0.2 and 0.3
// (ejabberd up to at least 23.01), NS2 is 0.4, which added the "iq"
// permission and roster pushes (Prosody's mod_privilege, slixmpp). The
// XEP offers no negotiation: the server speaks the version configured for
// each entity.
const (
	NS1 = "urn:xmpp:privilege:1"
	NS2 = "urn:xmpp:privilege:2"
	// NSForward is Stanza Forwarding (XEP-0297), the wrapper of messages
	// sent on a user's behalf and of answers to privileged IQs.
	NSForward = "urn:xmpp:forward:0"
)

// IsNS reports whether ns is a namespace of XEP-0356.
func IsNS(ns string) bool { return ns == NS1 || ns == NS2 }

// Access is what a permission allows of IQs, of the roster or of a
// namespace: get, set, or both.
type Access uint8

const (
	None Access = 0
	Get  Access = 1
	Set  Access = 2
	Both        = Get | Set
)

// ParseAccess reads "none", "get", "set" or "both".
func ParseAccess(s string) (Access, error) {
	switch s {
	case "none":
		return None, nil
	case "get":
		return Get, nil
	case "set":
		return Set, nil
	case "both":
		return Both, nil
	}
	return None, fmt.Errorf("%q is not none, get, set or both", s)
}

// String is the value of the XEP's 'type' attribute.
func (a Access) String() string {
	switch a {
	case Get:
		return "get"
	case Set:
		return "set"
	case Both:
		return "both"
	}
	return "none"
}

// Allows reports whether IQs of type typ ("get" or "set") are allowed.
func (a Access) Allows(typ string) bool {
	switch typ {
	case "get":
		return a&Get != 0
	case "set":
		return a&Set != 0
	}
	return false
}

// Presence is the presence permission.
type Presence uint8

const (
	// PresenceNone receives nothing.
	PresenceNone Presence = iota
	// PresenceManaged receives the presence of the server's users.
	PresenceManaged
	// PresenceRoster receives, besides, the presence of their contacts.
	PresenceRoster
)

// ParsePresence reads "none", "managed_entity" or "roster".
func ParsePresence(s string) (Presence, error) {
	switch s {
	case "none":
		return PresenceNone, nil
	case "managed_entity":
		return PresenceManaged, nil
	case "roster":
		return PresenceRoster, nil
	}
	return PresenceNone, fmt.Errorf("%q is not none, managed_entity or roster", s)
}

// String is the value of the XEP's 'type' attribute.
func (p Presence) String() string {
	switch p {
	case PresenceManaged:
		return "managed_entity"
	case PresenceRoster:
		return "roster"
	}
	return "none"
}

// Grant is what one privileged entity may do for the users of every domain
// the server serves. The zero Grant allows nothing. A Grant is immutable
// once built: stanzas share it.
type Grant struct {
	// Namespace is the version the entity speaks, NS1 or NS2; "" is NS2.
	Namespace string
	// Roster allows IQs on the users' rosters.
	Roster Access
	// RosterPush sends the entity the users' roster pushes (NS2, with
	// Roster allowing get).
	RosterPush bool
	// Message allows sending messages on behalf of the users ("outgoing").
	Message bool
	// Presence sends the entity presence information.
	Presence Presence
	// IQ allows IQs on behalf of the users, by payload namespace (NS2).
	IQ map[string]Access
}

// NS returns the namespace the entity speaks.
func (g *Grant) NS() string {
	if g.Namespace == "" {
		return NS2
	}
	return g.Namespace
}

// Validate rejects what the XEP forbids; the errors name the permission.
func (g *Grant) Validate() error {
	switch g.Namespace {
	case "", NS1, NS2:
	default:
		return fmt.Errorf("namespace: %q is not %s or %s", g.Namespace, NS2, NS1)
	}
	if g.RosterPush {
		if g.NS() != NS2 {
			return fmt.Errorf("roster_push: roster pushes need %s", NS2)
		}
		if !g.Roster.Allows("get") {
			return errors.New("roster_push: roster pushes need roster = get or both")
		}
	}
	if g.Presence == PresenceRoster && !g.Roster.Allows("get") {
		// XEP-0356 §6.2.1: the server MUST reject it.
		return errors.New("presence: roster presence needs roster = get or both")
	}
	for ns, a := range g.IQ {
		if a == None {
			continue
		}
		if g.NS() != NS2 {
			return fmt.Errorf("iq: the iq permission needs %s", NS2)
		}
		if ns == "" || strings.ContainsAny(ns, " \t\r\n") {
			return fmt.Errorf("iq: %q is not a namespace", ns)
		}
	}
	return nil
}

// Empty reports whether g allows nothing at all.
func (g *Grant) Empty() bool {
	if g == nil {
		return true
	}
	if g.Roster != None || g.Message || g.Presence != PresenceNone {
		return false
	}
	for _, a := range g.IQ {
		if a != None {
			return false
		}
	}
	return true
}

// AllowsIQ reports whether an IQ of type typ with a payload in namespace ns
// may be sent on a user's behalf.
func (g *Grant) AllowsIQ(ns, typ string) bool {
	return g != nil && g.NS() == NS2 && g.IQ[ns].Allows(typ)
}

// Pushes reports whether the entity receives roster pushes.
func (g *Grant) Pushes() bool {
	return g != nil && g.RosterPush && g.NS() == NS2 && g.Roster.Allows("get")
}

// iqNamespaces lists the namespaces of granted IQs, sorted.
func (g *Grant) iqNamespaces() []string {
	var out []string
	for ns, a := range g.IQ {
		if a != None {
			out = append(out, ns)
		}
	}
	sort.Strings(out)
	return out
}

// Advertisement builds the <message/> with which the server advertises the
// permissions (XEP-0356 §4.2) from one of its domains to the entity.
func (g *Grant) Advertisement(from, to string) *xmlstream.Element {
	ns := g.NS()
	m := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	m.SetAttr("from", from)
	m.SetAttr("to", to)
	m.SetAttr("id", stanza.NewID())
	p := m.AddChild(xmlstream.NewElement(ns, "privilege"))
	perm := func(access, typ string) *xmlstream.Element {
		e := p.AddChild(xmlstream.NewElement(ns, "perm"))
		e.SetAttr("access", access)
		if typ != "" {
			e.SetAttr("type", typ)
		}
		return e
	}
	r := perm("roster", g.Roster.String())
	if ns == NS2 && g.Roster != None {
		r.SetAttr("push", fmt.Sprint(g.Pushes()))
	}
	msg := "none"
	if g.Message {
		msg = "outgoing"
	}
	perm("message", msg)
	perm("presence", g.Presence.String())
	if nss := g.iqNamespaces(); ns == NS2 && len(nss) > 0 {
		iq := perm("iq", "")
		for _, n := range nss {
			e := iq.AddChild(xmlstream.NewElement(ns, "namespace"))
			e.SetAttr("ns", n)
			e.SetAttr("type", g.IQ[n].String())
		}
	}
	return m
}

// MarshalText writes g in a compact form that UnmarshalText reads back,
// for carrying it between the processes of a split server: space-separated
// key=value tokens.
func (g *Grant) MarshalText() ([]byte, error) {
	var b strings.Builder
	b.WriteString("ns=" + g.NS())
	if g.Roster != None {
		b.WriteString(" roster=" + g.Roster.String())
	}
	if g.RosterPush {
		b.WriteString(" push=true")
	}
	if g.Message {
		b.WriteString(" message=outgoing")
	}
	if g.Presence != PresenceNone {
		b.WriteString(" presence=" + g.Presence.String())
	}
	for _, n := range g.iqNamespaces() {
		// The namespace comes last: it may hold '=' and ':'.
		b.WriteString(" iq=" + g.IQ[n].String() + ":" + n)
	}
	return []byte(b.String()), nil
}

// UnmarshalText reads what MarshalText wrote.
func (g *Grant) UnmarshalText(text []byte) error {
	*g = Grant{}
	for _, tok := range strings.Fields(string(text)) {
		k, v, _ := strings.Cut(tok, "=")
		var err error
		switch k {
		case "ns":
			g.Namespace = v
		case "roster":
			g.Roster, err = ParseAccess(v)
		case "push":
			g.RosterPush = v == "true"
		case "message":
			g.Message = v == "outgoing"
		case "presence":
			g.Presence, err = ParsePresence(v)
		case "iq":
			typ, ns, ok := strings.Cut(v, ":")
			if !ok {
				return fmt.Errorf("privilege: bad iq %q", v)
			}
			var a Access
			if a, err = ParseAccess(typ); err == nil {
				if g.IQ == nil {
					g.IQ = map[string]Access{}
				}
				g.IQ[ns] = a
			}
		default:
			return fmt.Errorf("privilege: unknown key %q", k)
		}
		if err != nil {
			return fmt.Errorf("privilege: %s: %w", k, err)
		}
	}
	return g.Validate()
}
