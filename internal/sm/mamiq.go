package sm

import (
	"context"
	"errors"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/mam"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// mamIQ serves a user's queries of their own archive and their archiving
// preferences (XEP-0313); it reports whether el was one.
func (m *SM) mamIQ(ctx context.Context, sess router.Session, s router.Stanza) bool {
	q := s.El.Child(nsMAM, "query")
	p := s.El.Child(nsMAM, "prefs")
	if m.deps.Archive == nil || (q == nil && p == nil) {
		return false
	}
	fail := func(cond, text string) { replyError(sess, s, cond, text) }
	get := s.El.Attr("type") == "get"
	switch {
	case p != nil && get:
		replyTo(sess, s, m.prefsResult(ctx, s))
	case p != nil:
		prefs, err := parsePrefs(p)
		if err != nil {
			fail(stanza.BadRequest, err.Error())
			return true
		}
		m.forgetArchivePrefs(s.From.Bare())
		if err := m.deps.Archive.SetArchivePrefs(ctx, s.From.BareString(), prefs); err != nil {
			m.log.Error("archive prefs save", "user", s.From.BareString(), "err", err)
			fail(stanza.InternalServerError, "")
			return true
		}
		replyTo(sess, s, m.prefsResult(ctx, s))
	case get:
		replyTo(sess, s, mam.FormResult(s.El))
	default:
		m.mamQuery(ctx, sess, s, q)
	}
	return true
}

// mamQuery answers an archive query: one message per item, then the IQ
// result with the page's bounds.
func (m *SM) mamQuery(ctx context.Context, sess router.Session, s router.Stanza, q *xmlstream.Element) {
	fail := func(cond, text string) { replyError(sess, s, cond, text) }
	aq, err := mam.ParseQuery(q, true)
	if err != nil {
		fail(stanza.BadRequest, err.Error())
		return
	}
	m.maybePurge(ctx)
	owner := s.From.BareString()
	m.archiver.Flush()
	page, err := m.deps.Archive.QueryArchive(ctx, owner, aq)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		fail(stanza.ItemNotFound, "No such archive id.")
		return
	case err != nil:
		m.log.Error("archive query", "user", owner, "err", err)
		fail(stanza.InternalServerError, "")
		return
	}
	queryID := q.Attr("queryid")
	for _, it := range page.Items {
		orig, err := mam.ParseStored(it.Stanza)
		if err != nil {
			m.log.Error("archived message unreadable, skipped", "user", owner, "id", it.ID, "err", err)
			continue
		}
		msg := mam.ResultMessage(queryID, it, orig)
		msg.SetAttr("to", s.From.String())
		reply(sess, msg)
	}
	replyTo(sess, s, mam.Fin(s.El, page))
}

// parsePrefs reads a <prefs/> element being set.
func parsePrefs(p *xmlstream.Element) (storage.ArchivePrefs, error) {
	prefs := storage.ArchivePrefs{Default: p.Attr("default")}
	switch prefs.Default {
	case storage.ArchiveAlways, storage.ArchiveNever, storage.ArchiveRoster:
	default:
		return prefs, errors.New("default must be always, never or roster")
	}
	for _, list := range []struct {
		name string
		dst  *[]string
	}{{"always", &prefs.Always}, {"never", &prefs.Never}} {
		l := p.Child(nsMAM, list.name)
		if l == nil {
			continue
		}
		for c := range l.ChildElements {
			if c.Space != nsMAM || c.Local != "jid" {
				continue
			}
			j, err := jid.Parse(c.Text())
			if err != nil {
				return prefs, errors.New("malformed JID in " + list.name)
			}
			*list.dst = append(*list.dst, j.BareString())
		}
	}
	return prefs, nil
}

// prefsResult answers with the user's current preferences.
func (m *SM) prefsResult(ctx context.Context, s router.Stanza) *xmlstream.Element {
	prefs, err := m.deps.Archive.ArchivePrefs(ctx, s.From.BareString())
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			m.log.Error("archive prefs load", "user", s.From.BareString(), "err", err)
			return stanza.ErrorReply(s.El, stanza.InternalServerError, "")
		}
		prefs = storage.ArchivePrefs{Default: storage.ArchiveAlways}
	}
	r := stanza.Result(s.El)
	p := r.AddChild(xmlstream.NewElement(nsMAM, "prefs"))
	p.SetAttr("default", prefs.Default)
	for _, list := range []struct {
		name string
		jids []string
	}{{"always", prefs.Always}, {"never", prefs.Never}} {
		l := p.AddChild(xmlstream.NewElement(nsMAM, list.name))
		for _, j := range list.jids {
			l.AddChild(xmlstream.NewElement(nsMAM, "jid")).AddText(j)
		}
	}
	return r
}
