package room

import (
	"strconv"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// stampFormat is XEP-0082's date-time, in UTC.
const stampFormat = "2006-01-02T15:04:05.000000Z"

// historyCap is how many messages the room keeps for newcomers.
func (r *Room) historyCap() int {
	n := r.state.Config.HistoryLength
	if m := r.deps.Limits.MaxHistory; n > m {
		n = m
	}
	return n
}

// remember adds a reflected message to the discussion history.
func (r *Room) remember(el *xmlstream.Element, stamp time.Time, id string) {
	c := r.historyCap()
	if c <= 0 {
		r.history, r.histPos = nil, 0
		return
	}
	it := histItem{el: el, stamp: stamp, id: id, chars: len(el.AppendXML(nil, xmlstream.NSClient))}
	r.trimHistory()
	if len(r.history) < c {
		r.history = append(r.history, it)
		return
	}
	r.history[r.histPos] = it
	r.histPos = (r.histPos + 1) % c
}

// trimHistory keeps the newest messages when the history shrank.
func (r *Room) trimHistory() {
	c := max(r.historyCap(), 0)
	if len(r.history) > c {
		r.history = append([]histItem(nil), r.ordered()[len(r.history)-c:]...)
		r.histPos = 0
	}
}

// ordered returns the history oldest first.
func (r *Room) ordered() []histItem {
	if r.histPos == 0 {
		return r.history
	}
	return append(append([]histItem(nil), r.history[r.histPos:]...), r.history[:r.histPos]...)
}

// sendHistory sends the discussion history a newcomer asked for with
// <history/> (XEP-0045 §7.2.14): the newest messages within every limit
// it set, oldest first, each with a delay stamp.
func (r *Room) sendHistory(x *xmlstream.Element, to jid.JID) {
	items := r.ordered()
	maxStanzas, maxChars := len(items), -1
	var since time.Time
	if x != nil {
		if h := x.Child(NS, "history"); h != nil {
			if v, err := strconv.Atoi(h.Attr("maxstanzas")); err == nil && v >= 0 {
				maxStanzas = min(maxStanzas, v)
			}
			if v, err := strconv.Atoi(h.Attr("maxchars")); err == nil && v >= 0 {
				maxChars = v
			}
			if v, err := strconv.Atoi(h.Attr("seconds")); err == nil && v >= 0 {
				since = r.deps.Now().Add(-time.Duration(v) * time.Second)
			}
			if v, err := time.Parse(time.RFC3339Nano, h.Attr("since")); err == nil && v.After(since) {
				since = v
			}
		}
	}
	start, chars := len(items), 0
	for start > 0 && len(items)-start < maxStanzas {
		it := items[start-1]
		if !since.IsZero() && it.stamp.Before(since) {
			break
		}
		if maxChars >= 0 && chars+it.chars > maxChars {
			break
		}
		chars += it.chars
		start--
	}
	for _, it := range items[start:] {
		m := it.el.ShallowCopy()
		d := xmlstream.NewElement(NSDelay, "delay")
		d.SetAttr("from", r.jid.String())
		d.SetAttr("stamp", it.stamp.UTC().Format(stampFormat))
		m.AddChild(d)
		r.res.send(m, to)
	}
}

// sendSubject sends the subject, which ends the join (XEP-0045 §7.2.15):
// an empty one when none was set.
func (r *Room) sendSubject(to jid.JID) {
	m := r.subjectMessage()
	r.res.send(m, to)
}

func (r *Room) subjectMessage() *xmlstream.Element {
	sub := r.state.Subject
	m := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	m.SetAttr("type", "groupchat")
	m.SetAttr("id", r.deps.NewID())
	from := r.jid
	if sub.By != "" {
		if j, err := r.jid.WithResource(sub.By); err == nil {
			from = j
		}
	}
	m.SetAttr("from", from.String())
	se := m.AddChild(xmlstream.NewElement(xmlstream.NSClient, "subject"))
	if sub.Text != "" {
		se.AddText(sub.Text)
	}
	if !sub.Stamp.IsZero() {
		d := m.AddChild(xmlstream.NewElement(NSDelay, "delay"))
		d.SetAttr("from", r.jid.String())
		d.SetAttr("stamp", sub.Stamp.UTC().Format(stampFormat))
	}
	return m
}

// sendAvatar tells a newcomer the room's avatar hash (XEP-0486) in a
// presence from the room itself, as clients read it for contacts.
func (r *Room) sendAvatar(to jid.JID) {
	if r.state.AvatarHash == "" {
		return
	}
	r.res.send(r.avatarPresence(), to)
}

func (r *Room) avatarPresence() *xmlstream.Element {
	p := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
	p.SetAttr("from", r.jid.String())
	p.AddChild(xmlstream.NewElement(NSVCardUpd, "x")).AddChild(xmlstream.NewElement(NSVCardUpd, "photo")).AddText(r.state.AvatarHash)
	return p
}
