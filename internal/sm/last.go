package sm

import (
	"context"
	"strconv"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// lastKey is where a user's last logout is kept among their private
// documents; private XML storage refuses this namespace, so a client can
// neither read nor forge the record.
const lastKey = reservedPrefix + "last"

// reservedPrefix starts the keys of the server's own records among a
// user's private documents, which XEP-0049 requests may not use.
const reservedPrefix = "urn:xmpp:ambrosia:"

// recordLast remembers when a user's last session ended, and the status
// of their last unavailable presence, for XEP-0012 queries. It is called
// only when one of the user's sessions had been available: a session that
// never sent presence (a bot's short login, a script's send-and-quit)
// showed no activity to the contacts who may ask, and costs no write, as
// in ejabberd (mod_last on unset_presence) and Prosody (mod_lastactivity
// on unavailable presence).
func (m *SM) recordLast(ctx context.Context, u *user, status string) {
	if m.deps.Private == nil {
		return
	}
	el := xmlstream.NewElement(lastKey, "last")
	el.SetAttr("stamp", time.Now().UTC().Format(time.RFC3339))
	if status != "" {
		el.AddText(status)
	}
	if err := m.deps.Private.SetPrivateXML(ctx, u.bare.String(), lastKey, el.AppendXML(nil, "")); err != nil {
		m.log.Error("last activity save", "user", u.bare.String(), "err", err)
	}
}

// lastIQ answers XEP-0012 §3 queries for a user's last activity: zero
// seconds while the user is online, else the time since their last
// session ended. Only the user and contacts subscribed to the user's
// presence may ask: the answer reveals presence.
func (m *SM) lastIQ(ctx context.Context, s router.Stanza) bool {
	if s.El.Attr("type") != "get" || s.El.Child(nsLast, "query") == nil || !m.userExists(ctx, s.To.Bare()) {
		return false
	}
	answer := func(seconds int64, status string) {
		r := stanza.Result(s.El)
		q := r.AddChild(xmlstream.NewElement(nsLast, "query"))
		q.SetAttr("seconds", strconv.FormatInt(seconds, 10))
		if status != "" {
			q.AddText(status)
		}
		m.route(ctx, r)
	}
	if !s.From.Bare().Equal(s.To.Bare()) && !m.subscribedTo(ctx, s.To.Bare().String(), s.From.BareString()) {
		m.deps.Router.Bounce(ctx, s, stanza.Forbidden, "")
		return true
	}
	if u := m.user(s.To.BareString()); u != nil {
		u.mu.Lock()
		online := false
		for _, x := range u.sessions {
			online = online || x.available
		}
		u.mu.Unlock()
		if online {
			answer(0, "")
			return true
		}
	}
	if m.deps.Private == nil {
		return false
	}
	def := xmlstream.NewElement(lastKey, "last")
	el := m.loadXML(ctx, s.To.BareString(), lastKey, def)
	t, err := time.Parse(time.RFC3339, el.Attr("stamp"))
	if el == def || err != nil {
		m.deps.Router.Bounce(ctx, s, stanza.ItemNotFound, "")
		return true
	}
	answer(int64(time.Since(t).Seconds()), el.Text())
	return true
}

// subscribedTo reports whether contact receives owner's presence.
func (m *SM) subscribedTo(ctx context.Context, owner, contact string) bool {
	it, err := m.deps.Roster.RosterItem(ctx, owner, contact)
	return err == nil && (it.Subscription == "from" || it.Subscription == "both")
}
