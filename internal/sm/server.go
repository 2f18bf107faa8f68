package sm

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces of entity time (XEP-0202) and last activity (XEP-0012).
const (
	nsTime = "urn:xmpp:time"
	nsLast = "jabber:iq:last"
)

// Features lists the disco#info features of the server: only what is
// implemented, since clients act on what is advertised.
func Features() []string {
	return []string{
		stanza.NSDiscoInfo,
		stanza.NSDiscoItems,
		stanza.NSPing,
		stanza.NSVersion,
		nsCarbons,
		nsBlocking,
		nsPrivate,
		nsVCard,
		nsTime,
		nsLast,
		nsRegister,
		"msgoffline",
	}
}

// serverStanza handles stanzas addressed to the domain itself.
func (m *SM) serverStanza(ctx context.Context, s router.Stanza) {
	switch s.El.Local {
	case stanza.Presence:
		// A privileged entity announcing itself (XEP-0356); other presence
		// to the server carries nothing we act on.
		if s.Grant != nil {
			m.entityPresence(ctx, s)
		}
		return
	case stanza.Message:
		// A message a privileged entity sends on a user's behalf; other
		// messages to the server carry nothing we act on.
		if p := privilegeChild(s.El, "privilege"); p != nil {
			m.privilegedMessage(ctx, s, p)
		}
		return
	}
	if m.capsAnswer(ctx, s) {
		return
	}
	r := m.inviteCommand(ctx, s)
	if r == nil {
		r = m.serverIQ(s.El)
	}
	if r != nil {
		m.deps.Router.Route(ctx, router.Stanza{El: r, From: s.To, To: s.From})
		return
	}
	if stanza.IsRequest(s.El) {
		m.deps.Router.Bounce(ctx, s, stanza.ServiceUnavailable, "")
	}
}

// serverIQ answers the server's own IQs; nil means not handled.
func (m *SM) serverIQ(iq *xmlstream.Element) *xmlstream.Element {
	if iq.Attr("type") != "get" {
		return nil
	}
	switch {
	case iq.Child(stanza.NSPing, "ping") != nil:
		return stanza.Result(iq)
	case iq.Child(nsTime, "time") != nil:
		// XEP-0202: the server keeps UTC.
		r := stanza.Result(iq)
		t := r.AddChild(xmlstream.NewElement(nsTime, "time"))
		t.AddChild(xmlstream.NewElement(nsTime, "tzo")).AddText("+00:00")
		t.AddChild(xmlstream.NewElement(nsTime, "utc")).AddText(time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
		return r
	case iq.Child(nsLast, "query") != nil:
		// XEP-0012 §4: to a server, the time since it started.
		r := stanza.Result(iq)
		r.AddChild(xmlstream.NewElement(nsLast, "query")).SetAttr("seconds", strconv.Itoa(int(time.Since(m.started).Seconds())))
		return r
	case iq.Child(stanza.NSVersion, "query") != nil:
		r := stanza.Result(iq)
		q := r.AddChild(xmlstream.NewElement(stanza.NSVersion, "query"))
		q.AddChild(xmlstream.NewElement(stanza.NSVersion, "name")).AddText("Ambrosia")
		q.AddChild(xmlstream.NewElement(stanza.NSVersion, "version")).AddText(m.cfg.Version)
		return r
	case iq.Child(stanza.NSDiscoInfo, "query") != nil:
		q := iq.Child(stanza.NSDiscoInfo, "query")
		if q.Attr("node") != "" {
			return nil
		}
		r := stanza.Result(iq)
		rq := r.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "query"))
		id := rq.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "identity"))
		id.SetAttr("category", "server")
		id.SetAttr("type", "im")
		id.SetAttr("name", "Ambrosia")
		for _, f := range Features() {
			rq.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "feature")).SetAttr("var", f)
		}
		if m.userInvites() {
			rq.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "feature")).SetAttr("var", nsCommands)
		}
		if form := m.contactForm(); form != nil {
			rq.AddChild(form)
		}
		return r
	case iq.Child(stanza.NSDiscoItems, "query") != nil:
		q := iq.Child(stanza.NSDiscoItems, "query")
		if q.Attr("node") != "" {
			return nil
		}
		r := stanza.Result(iq)
		rq := r.AddChild(xmlstream.NewElement(stanza.NSDiscoItems, "query"))
		for _, d := range m.services() {
			rq.AddChild(xmlstream.NewElement(stanza.NSDiscoItems, "item")).SetAttr("jid", d)
		}
		return r
	}
	return nil
}

// services lists the domains disco#items shows as the server's services:
// every domain the router serves, other than this one, that is a subdomain
// of this domain or is served by something other than a session manager
// (an external component, for one). Other domains of this server are
// peers, not services, and are not listed. The router is asked each time,
// so a component shows up while it is connected and only then.
func (m *SM) services() []string {
	own := m.domain.Domain()
	var out []string
	for _, d := range m.deps.Router.Domains() {
		if d == own {
			continue
		}
		if _, isSM := m.deps.Router.SessionManager(d); isSM && !strings.HasSuffix(d, "."+own) {
			continue
		}
		out = append(out, d)
	}
	return out
}

// accountIQ handles an IQ a user sent with no 'to' or to their own bare
// JID: the server answers on behalf of the account.
func (m *SM) accountIQ(ctx context.Context, sess router.Session, s router.Stanza) {
	typ := s.El.Attr("type")
	if typ != "get" && typ != "set" {
		return
	}
	if q := s.El.Child(stanza.NSRoster, "query"); q != nil {
		m.rosterIQ(ctx, sess, s, q)
		return
	}
	if u := m.user(s.From.BareString()); u != nil && (m.carbonsIQ(u, sess, s) || m.blockingIQ(ctx, u, sess, s)) {
		return
	}
	if m.privateIQ(ctx, sess, s) || m.mamIQ(ctx, sess, s) || m.registerIQ(ctx, sess, s) || m.pushIQ(ctx, sess, s) {
		return
	}
	if s.El.Child(stanza.NSDiscoItems, "query") == nil || !s.To.IsZero() {
		// Without a 'to', disco#items is the server's (its services).
		if r, ok := m.pepIQ(ctx, s.From, s.From.Bare(), s.El); ok {
			replyTo(sess, s, r)
			return
		}
	}
	if q := s.El.Child(stanza.NSDiscoInfo, "query"); q != nil && typ == "get" && !s.To.IsZero() && q.Attr("node") == "" {
		// To the user's own bare JID: the account answers, not the server,
		// as it does for anyone else asking (XEP-0030 §3.1 and XEP-0313 §7,
		// which clients check before querying their archive).
		replyTo(sess, s, m.accountDisco(s.El))
		return
	}
	if r := m.serverIQ(s.El); r != nil {
		replyTo(sess, s, r)
		return
	}
	replyError(sess, s, stanza.ServiceUnavailable, "")
}

// ContactKinds are the address kinds of XEP-0157, in the order they are
// listed.
func ContactKinds() []string {
	return []string{"abuse", "admin", "feedback", "sales", "security", "status", "support"}
}

// contactForm is the XEP-0157 server information form, nil when no
// address is configured.
func (m *SM) contactForm() *xmlstream.Element {
	if len(m.cfg.ContactAddresses) == 0 {
		return nil
	}
	const nsData = "jabber:x:data"
	x := xmlstream.NewElement(nsData, "x")
	x.SetAttr("type", "result")
	ft := x.AddChild(xmlstream.NewElement(nsData, "field"))
	ft.SetAttr("var", "FORM_TYPE")
	ft.SetAttr("type", "hidden")
	ft.AddChild(xmlstream.NewElement(nsData, "value")).AddText("http://jabber.org/network/serverinfo")
	for _, kind := range ContactKinds() {
		addrs := m.cfg.ContactAddresses[kind]
		if len(addrs) == 0 {
			continue
		}
		f := x.AddChild(xmlstream.NewElement(nsData, "field"))
		f.SetAttr("var", kind+"-addresses")
		f.SetAttr("type", "list-multi")
		for _, a := range addrs {
			f.AddChild(xmlstream.NewElement(nsData, "value")).AddText(a)
		}
	}
	return x
}
