package sm

import (
	"context"
	"errors"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/mam"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces of private XML storage (XEP-0049) and vCards (XEP-0054).
const (
	nsPrivate = "jabber:iq:private"
	nsVCard   = "vcard-temp"
)

// privateIQ serves a user's own private XML and vCard; it reports whether
// el was such a request.
func (m *SM) privateIQ(ctx context.Context, sess router.Session, s router.Stanza) bool {
	q := s.El.Child(nsPrivate, "query")
	vc := s.El.Child(nsVCard, "vCard")
	if q == nil && vc == nil {
		return false
	}
	fail := func(cond string) { replyError(sess, s, cond, "") }
	if m.deps.Private == nil {
		fail(stanza.ServiceUnavailable)
		return true
	}
	user := s.From.BareString()
	get := s.El.Attr("type") == "get"
	if vc != nil {
		if get {
			r := stanza.Result(s.El)
			r.AddChild(m.loadXML(ctx, user, nsVCard, xmlstream.NewElement(nsVCard, "vCard")))
			replyTo(sess, s, r)
			return true
		}
		if err := m.deps.Private.SetPrivateXML(ctx, user, nsVCard, vc.AppendXML(nil, "")); err != nil {
			m.log.Error("vcard save", "user", user, "err", err)
			fail(stanza.InternalServerError)
			return true
		}
		replyTo(sess, s, stanza.Result(s.El))
		return true
	}
	kids := q.Children()
	if len(kids) == 0 {
		fail(stanza.BadRequest)
		return true
	}
	for _, c := range kids {
		// XEP-0049 §3: the protocol's own namespaces are not storage.
		if c.Space == "" || strings.HasPrefix(c.Space, "jabber:") || c.Space == nsVCard || strings.HasPrefix(c.Space, reservedPrefix) {
			fail(stanza.NotAcceptable)
			return true
		}
	}
	r := stanza.Result(s.El)
	if get {
		rq := r.AddChild(xmlstream.NewElement(nsPrivate, "query"))
		for _, c := range kids {
			empty := xmlstream.NewElement(c.Space, c.Local)
			rq.AddChild(m.loadXML(ctx, user, c.Space, empty))
		}
		replyTo(sess, s, r)
		return true
	}
	for _, c := range kids {
		if err := m.deps.Private.SetPrivateXML(ctx, user, c.Space, c.AppendXML(nil, "")); err != nil {
			m.log.Error("private save", "user", user, "err", err)
			fail(stanza.InternalServerError)
			return true
		}
	}
	replyTo(sess, s, r)
	return true
}

// loadXML returns the stored document under key, or def when there is none.
func (m *SM) loadXML(ctx context.Context, user, key string, def *xmlstream.Element) *xmlstream.Element {
	b, err := m.deps.Private.PrivateXML(ctx, user, key)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			m.log.Error("private load", "user", user, "key", key, "err", err)
		}
		return def
	}
	el, err := mam.ParseStored(b)
	if err != nil {
		m.log.Error("private data unreadable", "user", user, "key", key, "err", err)
		return def
	}
	return el
}

// publicVCard answers another entity's request for a user's vCard.
func (m *SM) publicVCard(ctx context.Context, s router.Stanza) bool {
	if m.deps.Private == nil || s.El.Attr("type") != "get" || s.El.Child(nsVCard, "vCard") == nil || !m.userExists(ctx, s.To.Bare()) {
		return false
	}
	r := stanza.Result(s.El)
	r.AddChild(m.loadXML(ctx, s.To.BareString(), nsVCard, xmlstream.NewElement(nsVCard, "vCard")))
	m.route(ctx, r)
	return true
}
