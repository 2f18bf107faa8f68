package sm

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
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
		// XEP-0313 §4.1.4: the fields a query form may carry.
		r := stanza.Result(s.El)
		x := r.AddChild(xmlstream.NewElement(nsMAM, "query")).AddChild(xmlstream.NewElement(nsXData, "x"))
		x.SetAttr("type", "form")
		ft := x.AddChild(xmlstream.NewElement(nsXData, "field"))
		ft.SetAttr("var", "FORM_TYPE")
		ft.SetAttr("type", "hidden")
		ft.AddChild(xmlstream.NewElement(nsXData, "value")).AddText(nsMAM)
		for _, f := range [][2]string{{"with", "jid-single"}, {"start", "text-single"}, {"end", "text-single"}, {"before-id", "text-single"}, {"after-id", "text-single"}} {
			fe := x.AddChild(xmlstream.NewElement(nsXData, "field"))
			fe.SetAttr("var", f[0])
			fe.SetAttr("type", f[1])
		}
		replyTo(sess, s, r)
	default:
		m.mamQuery(ctx, sess, s, q)
	}
	return true
}

// mamQuery answers an archive query: one message per item, then the IQ
// result with the page's bounds.
func (m *SM) mamQuery(ctx context.Context, sess router.Session, s router.Stanza, q *xmlstream.Element) {
	fail := func(cond, text string) { replyError(sess, s, cond, text) }
	aq, err := parseMAMQuery(q)
	if err != nil {
		fail(stanza.BadRequest, err.Error())
		return
	}
	m.maybePurge(ctx)
	owner := s.From.BareString()
	m.archiver.flush()
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
		orig, err := parseStored(it.Stanza)
		if err != nil {
			m.log.Error("archived message unreadable, skipped", "user", owner, "id", it.ID, "err", err)
			continue
		}
		msg := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
		msg.SetAttr("to", s.From.String())
		res := msg.AddChild(xmlstream.NewElement(nsMAM, "result"))
		if queryID != "" {
			res.SetAttr("queryid", queryID)
		}
		res.SetAttr("id", it.ID)
		fw := res.AddChild(xmlstream.NewElement(nsForward, "forwarded"))
		fw.AddChild(xmlstream.NewElement(nsDelay, "delay")).SetAttr("stamp", it.Stamp.UTC().Format(stampFormat))
		fw.AddChild(orig)
		reply(sess, msg)
	}
	r := stanza.Result(s.El)
	fin := r.AddChild(xmlstream.NewElement(nsMAM, "fin"))
	if page.Complete {
		fin.SetAttr("complete", "true")
	}
	set := fin.AddChild(xmlstream.NewElement(nsRSM, "set"))
	if len(page.Items) > 0 {
		set.AddChild(xmlstream.NewElement(nsRSM, "first")).AddText(page.Items[0].ID)
		set.AddChild(xmlstream.NewElement(nsRSM, "last")).AddText(page.Items[len(page.Items)-1].ID)
	}
	set.AddChild(xmlstream.NewElement(nsRSM, "count")).AddText(strconv.Itoa(page.Count))
	replyTo(sess, s, r)
}

// parseMAMQuery reads the data form and result set of a query. Anything
// it does not understand is an error rather than ignored, since ignoring
// a filter would return messages the client did not ask for.
func parseMAMQuery(q *xmlstream.Element) (storage.ArchiveQuery, error) {
	aq := storage.ArchiveQuery{Max: defaultMAMMax}
	if x := q.Child(nsXData, "x"); x != nil {
		if t := x.Attr("type"); t != "" && t != "submit" {
			return aq, errors.New("the query form must be submitted")
		}
		for f := range x.ChildElements {
			if f.Space != nsXData || f.Local != "field" {
				continue
			}
			var v string
			if ve := f.Child(nsXData, "value"); ve != nil {
				v = ve.Text()
			}
			var err error
			switch f.Attr("var") {
			case "FORM_TYPE":
				if v != nsMAM {
					return aq, errors.New("unknown FORM_TYPE")
				}
			case "with":
				var j jid.JID
				j, err = jid.Parse(v)
				aq.With = j.BareString()
			case "start":
				aq.Start, err = parseStamp(v)
			case "end":
				aq.End, err = parseStamp(v)
			case "after-id":
				aq.AfterID = v
			case "before-id":
				aq.BeforeID = v
			default:
				return aq, errors.New("unknown field " + strconv.Quote(f.Attr("var")))
			}
			if err != nil {
				return aq, errors.New("bad value of field " + f.Attr("var"))
			}
		}
	}
	if set := q.Child(nsRSM, "set"); set != nil {
		if mx := set.Child(nsRSM, "max"); mx != nil {
			n, err := strconv.Atoi(mx.Text())
			if err != nil || n < 0 {
				return aq, errors.New("bad RSM max")
			}
			aq.Max = min(n, maxMAMMax)
		}
		if set.Child(nsRSM, "index") != nil {
			return aq, errors.New("RSM index is not supported")
		}
		if a := set.Child(nsRSM, "after"); a != nil {
			if aq.AfterID != "" && aq.AfterID != a.Text() || a.Text() == "" {
				return aq, errors.New("conflicting or empty RSM after")
			}
			aq.AfterID = a.Text()
		}
		if b := set.Child(nsRSM, "before"); b != nil {
			// An empty <before/> asks for the last page.
			aq.Last = true
			if id := b.Text(); id != "" {
				if aq.BeforeID != "" && aq.BeforeID != id {
					return aq, errors.New("conflicting RSM before")
				}
				aq.BeforeID = id
			}
		}
	}
	if !aq.Start.IsZero() && !aq.End.IsZero() && aq.End.Before(aq.Start) {
		return aq, errors.New("end is before start")
	}
	return aq, nil
}

// parseStamp reads an XEP-0082 date-time.
func parseStamp(v string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, v)
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
