package sm

import (
	"context"
	"sort"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces of the Blocking Command (XEP-0191).
const (
	nsBlocking       = "urn:xmpp:blocking"
	nsBlockingErrors = "urn:xmpp:blocking:errors"
)

// blockMatch reports whether the blocklist item b covers the address j
// (XEP-0191 §3.2 and XEP-0016's matching order).
func blockMatch(b, j jid.JID) bool {
	switch {
	case b.Local() != "" && b.Resource() != "":
		return b.Equal(j)
	case b.Local() != "":
		return b.Equal(j.Bare())
	case b.Resource() != "":
		return b.Domain() == j.Domain() && b.Resource() == j.Resource()
	default:
		return b.Domain() == j.Domain()
	}
}

func blockedIn(list []jid.JID, j jid.JID) bool {
	for _, b := range list {
		if blockMatch(b, j) {
			return true
		}
	}
	return false
}

// blocklistLocked returns u's blocklist, loading it once; u.mu is held.
func (m *SM) blocklistLocked(ctx context.Context, u *user) []jid.JID {
	if u.blockLoaded || m.deps.Blocklist == nil {
		return u.blocked
	}
	js, err := m.deps.Blocklist.BlockedJIDs(ctx, u.bare.String())
	if err != nil {
		m.log.Error("blocklist load", "user", u.bare.String(), "err", err)
		return nil
	}
	u.blocked = parseJIDs(js)
	u.blockLoaded = true
	return u.blocked
}

func parseJIDs(js []string) []jid.JID {
	out := make([]jid.JID, 0, len(js))
	for _, s := range js {
		if j, err := jid.Parse(s); err == nil {
			out = append(out, j)
		}
	}
	return out
}

// isBlocked reports whether owner blocks other, online or not.
func (m *SM) isBlocked(ctx context.Context, owner, other jid.JID) bool {
	if m.deps.Blocklist == nil || other.IsZero() {
		return false
	}
	if u := m.user(owner.BareString()); u != nil {
		u.mu.Lock()
		defer u.mu.Unlock()
		return blockedIn(m.blocklistLocked(ctx, u), other)
	}
	js, err := m.deps.Blocklist.BlockedJIDs(ctx, owner.BareString())
	if err != nil || len(js) == 0 {
		return false
	}
	return blockedIn(parseJIDs(js), other)
}

// refuseBlocked applies a user's blocklist to a stanza leaving them; it
// reports whether the stanza was stopped.
func (m *SM) refuseBlocked(ctx context.Context, sess router.Session, s router.Stanza) bool {
	if s.To.IsZero() || s.To.Bare().Equal(s.From.Bare()) || !m.isBlocked(ctx, s.From.Bare(), s.To) {
		return false
	}
	if s.El.Local != stanza.Presence && stanza.MayBounce(s.El) {
		e := stanza.ErrorReply(s.El, stanza.NotAcceptable, "")
		e.Child(s.El.Space, "error").AddChild(xmlstream.NewElement(nsBlockingErrors, "blocked"))
		replyTo(sess, s, e)
	}
	return true
}

// dropBlocked applies the recipient's blocklist to an arriving stanza; it
// reports whether the stanza was stopped.
func (m *SM) dropBlocked(ctx context.Context, s router.Stanza) bool {
	if s.From.Bare().Equal(s.To.Bare()) || !m.isBlocked(ctx, s.To.Bare(), s.From) {
		return false
	}
	// XEP-0191 §3.3: messages and requests get service-unavailable, as if
	// the user did not exist; presence vanishes.
	if s.El.Local == stanza.Message || stanza.IsRequest(s.El) {
		m.deps.Router.Bounce(ctx, s, stanza.ServiceUnavailable, "")
	}
	return true
}

// blockingIQ serves the blocklist; it reports whether el was such a
// request.
func (m *SM) blockingIQ(ctx context.Context, u *user, sess router.Session, s router.Stanza) bool {
	el := s.El
	get := el.Child(nsBlocking, "blocklist")
	blk := el.Child(nsBlocking, "block")
	unblk := el.Child(nsBlocking, "unblock")
	if get == nil && blk == nil && unblk == nil {
		return false
	}
	fail := func(cond string) { replyError(sess, s, cond, "") }
	if m.deps.Blocklist == nil {
		fail(stanza.ServiceUnavailable)
		return true
	}
	typ := el.Attr("type")
	if get != nil {
		if typ != "get" {
			fail(stanza.BadRequest)
			return true
		}
		u.mu.Lock()
		list := m.blocklistLocked(ctx, u)
		for _, x := range u.sessions {
			if x.s == sess {
				x.blockPushes = true
			}
		}
		r := stanza.Result(el)
		q := r.AddChild(xmlstream.NewElement(nsBlocking, "blocklist"))
		for _, j := range list {
			q.AddChild(xmlstream.NewElement(nsBlocking, "item")).SetAttr("jid", j.String())
		}
		u.mu.Unlock()
		replyTo(sess, s, r)
		return true
	}
	if typ != "set" {
		fail(stanza.BadRequest)
		return true
	}
	cmd := blk
	if cmd == nil {
		cmd = unblk
	}
	var items []jid.JID
	for c := range cmd.ChildElements {
		if c.Local != "item" || c.Space != nsBlocking {
			continue
		}
		j, err := jid.Parse(c.Attr("jid"))
		if err != nil {
			fail(stanza.JIDMalformed)
			return true
		}
		items = append(items, j)
	}
	if blk != nil && len(items) == 0 {
		fail(stanza.BadRequest)
		return true
	}
	strs := make([]string, len(items))
	for i, j := range items {
		strs[i] = j.String()
	}
	var out []*xmlstream.Element
	u.mu.Lock()
	old := m.blocklistLocked(ctx, u)
	var err error
	if blk != nil {
		err = m.deps.Blocklist.Block(ctx, u.bare.String(), strs)
	} else {
		err = m.deps.Blocklist.Unblock(ctx, u.bare.String(), strs)
	}
	if err != nil {
		u.mu.Unlock()
		m.log.Error("blocklist save", "user", u.bare.String(), "err", err)
		fail(stanza.InternalServerError)
		return true
	}
	if blk != nil {
		for _, j := range items {
			if !blockedIn(old, j) {
				// A contact newly blocked sees the user go offline.
				for _, x := range u.sessions {
					if x.available {
						out = append(out, presenceTo(x.s.JID(), j, "unavailable"))
					}
				}
			}
		}
		u.blocked = dedupe(append(old, items...))
	} else if len(items) == 0 {
		items, u.blocked = old, nil
	} else {
		var keep []jid.JID
		for _, b := range old {
			if !containsJID(items, b) {
				keep = append(keep, b)
			}
		}
		u.blocked = keep
	}
	if unblk != nil && m.loadRosterLocked(ctx, u) == nil {
		// Contacts unblocked and subscribed to the user see them again.
		for _, j := range items {
			if it := u.roster[j.Bare().String()]; it != nil && (it.Subscription == "from" || it.Subscription == "both") {
				for _, x := range u.sessions {
					if x.available && x.presence != nil {
						c := x.presence.ShallowCopy()
						c.SetAttr("to", j.String())
						out = append(out, c)
					}
				}
			}
		}
	}
	// Push the change to every resource that asked for the list.
	for _, x := range u.sessions {
		if !x.blockPushes {
			continue
		}
		iq := xmlstream.NewElement(xmlstream.NSClient, stanza.IQ)
		iq.SetAttr("type", "set")
		iq.SetAttr("id", "push-"+stanza.NewID())
		iq.SetAttr("to", x.s.JID().String())
		p := iq.AddChild(xmlstream.NewElement(nsBlocking, cmd.Local))
		if unblk == nil || len(strs) > 0 {
			for _, j := range strs {
				p.AddChild(xmlstream.NewElement(nsBlocking, "item")).SetAttr("jid", j)
			}
		}
		x.s.Deliver(iq)
	}
	u.mu.Unlock()
	replyTo(sess, s, stanza.Result(el))
	for _, p := range out {
		m.route(ctx, p)
	}
	return true
}

func containsJID(js []jid.JID, j jid.JID) bool {
	for _, x := range js {
		if x.Equal(j) {
			return true
		}
	}
	return false
}

func dedupe(js []jid.JID) []jid.JID {
	sort.Slice(js, func(a, b int) bool { return js[a].String() < js[b].String() })
	out := js[:0]
	for i, j := range js {
		if i == 0 || !j.Equal(js[i-1]) {
			out = append(out, j)
		}
	}
	return out
}
