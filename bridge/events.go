package bridge

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge/internal/store"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// userEvents is the Events of one user's session: it turns what happens
// on the network into stanzas for the user. gen names the login it was
// given to (0: the user's, for a Starter network), so that the end of an
// old session is not taken for the end of the current one.
type userEvents struct {
	u   *user
	gen uint64
}

var _ Events = (*userEvents)(nil)

// avatarInfo is a contact's picture, served as its vCard.
type avatarInfo struct {
	hash string
	av   Avatar
}

func (e *userEvents) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// from is the address of a user of the network, or the bridge's own when
// the id cannot be one.
func (e *userEvents) from(id UserID) (jid.JID, bool) {
	j, err := e.u.b.contactJID(id)
	if err != nil {
		e.u.b.log.Warn("a user id of the network is not usable in an address; event dropped", "id", string(id), "err", err)
		return jid.JID{}, false
	}
	return j, true
}

// deliver sends a stanza to the user, or keeps it for them when they are
// away and their session stays on the network.
func (e *userEvents) deliver(ctx context.Context, el *xmlstream.Element) {
	u := e.u
	el.SetAttr("to", u.jid.String())
	if u.b.desc.Mode == Transport && el.Local == stanza.Message {
		u.mu.Lock()
		away := len(u.online) == 0
		u.mu.Unlock()
		if away {
			u.keep(ctx, el)
			return
		}
	}
	u.b.send(ctx, el)
}

// keep stores a message for a user who is away, stamped with the time it
// came (XEP-0203); it goes out on the user's next available presence.
func (u *user) keep(ctx context.Context, el *xmlstream.Element) {
	if el.Child(nsDelay, "delay") == nil {
		d := el.AddChild(xmlstream.NewElement(nsDelay, "delay"))
		d.SetAttr("from", u.b.cfg.Domain)
		d.SetAttr("stamp", time.Now().UTC().Format(stampFormat))
	}
	n, err := u.b.st.Enqueue(ctx, u.jid.String(), el.AppendXML(nil, xmlstream.NSClient))
	if err != nil {
		u.b.log.Error("keeping a message for an absent user", "user", u.jid.String(), "err", err)
		return
	}
	if lim := u.b.cfg.QueueLimit; lim > 0 && n > lim {
		if dropped, err := u.b.st.DropOldest(ctx, u.jid.String(), lim); err == nil && dropped > 0 {
			u.b.log.Warn("messages kept for an absent user dropped, the oldest first", "user", u.jid.String(), "dropped", dropped)
		}
	}
}

// flushKept sends what was kept for the user, oldest first.
func (u *user) flushKept(ctx context.Context) {
	q, err := u.b.st.Queue(ctx, u.jid.String())
	if err != nil || len(q) == 0 {
		return
	}
	for _, it := range q {
		el, err := xmlstream.ParseStanza(it.Stanza, xmlstream.NSClient)
		if err != nil {
			continue
		}
		u.b.send(ctx, el)
	}
	if err := u.b.st.Dequeue(ctx, u.jid.String(), q[len(q)-1].Seq); err != nil {
		u.b.log.Error("dequeue", "user", u.jid.String(), "err", err)
	}
}

// xmppID returns the XMPP id of a network message in the conversation
// with peer, making and recording one for a message not seen before.
func (e *userEvents) xmppID(ctx context.Context, peer string, legacy MessageID) string {
	if legacy == "" {
		return stanza.NewID()
	}
	ids := e.u.b.idmap
	if id := ids.xmppID(ctx, e.u.jid.String(), peer, string(legacy)); id != "" {
		return id
	}
	id := stanza.NewID()
	ids.put(e.u.jid.String(), peer, string(legacy), id)
	return id
}

// knownXMPPID returns the XMPP id of a message already mapped, "" if none.
func (e *userEvents) knownXMPPID(ctx context.Context, peer string, legacy MessageID) string {
	if legacy == "" {
		return ""
	}
	return e.u.b.idmap.xmppID(ctx, e.u.jid.String(), peer, string(legacy))
}

// Message implements Events.
func (e *userEvents) Message(from UserID, m Message) {
	ctx, cancel := e.ctx()
	defer cancel()
	f, ok := e.from(from)
	if !ok {
		return
	}
	peer := string(from)
	if m.ID != "" {
		if e.u.b.idmap.xmppID(ctx, e.u.jid.String(), peer, string(m.ID)) != "" && m.Replaces == "" {
			// The network told us again (after a reconnection): once is
			// enough.
			return
		}
	}
	x := ids{id: e.xmppID(ctx, peer, m.ID), replaces: e.knownXMPPID(ctx, peer, m.Replaces), replyTo: e.knownXMPPID(ctx, peer, m.ReplyTo)}
	el := writeMessage("chat", m, x)
	el.SetAttr("from", f.String())
	e.deliver(ctx, el)
}

// Sent implements Events: a message the user sent from another client of
// the network, shown to the user's XMPP clients as a sent carbon copy
// (XEP-0280), which needs the server's message privilege.
func (e *userEvents) Sent(to UserID, m Message) {
	ctx, cancel := e.ctx()
	defer cancel()
	t, ok := e.from(to)
	if !ok {
		return
	}
	peer := string(to)
	x := ids{id: e.xmppID(ctx, peer, m.ID), replaces: e.knownXMPPID(ctx, peer, m.Replaces), replyTo: e.knownXMPPID(ctx, peer, m.ReplyTo)}
	inner := writeMessage("chat", m, x)
	inner.SetAttr("from", e.u.jid.String())
	inner.SetAttr("to", t.String())
	if !e.u.b.privilegesFor(e.u.jid).message {
		e.u.b.log.Debug("a message sent from elsewhere is not shown: the server grants no message privilege", "user", e.u.jid.String())
		return
	}
	// XEP-0356 §5: the bridge sends, as the server, the carbon the user's
	// clients would have got.
	w := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	w.SetAttr("from", e.u.jid.String())
	w.SetAttr("type", "chat")
	sent := w.AddChild(xmlstream.NewElement(nsCarbons, "sent"))
	sent.AddChild(xmlstream.NewElement(nsForward, "forwarded")).AddChild(inner)
	e.u.b.sendPrivileged(ctx, e.u.jid, w)
}

// Presence implements Events.
func (e *userEvents) Presence(from UserID, p Presence) {
	ctx, cancel := e.ctx()
	defer cancel()
	f, ok := e.from(from)
	if !ok {
		return
	}
	e.u.notePresence(from, p)
	e.deliver(ctx, e.u.b.presence(f, from, p))
}

// contactsGone tells a user whose session on the network ended that the
// users of the network it saw online are offline: nobody reports their
// presence any more.
func (b *Bridge) contactsGone(u *user, seen map[UserID]presenceSeen) {
	if len(seen) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for id := range seen {
		f, err := b.contactJID(id)
		if err != nil {
			continue
		}
		b.send(ctx, withTo(b.presence(f, id, Presence{Offline: true}), u.jid))
	}
}

// presence builds the presence of a user of the network.
func (b *Bridge) presence(f jid.JID, id UserID, p Presence) *xmlstream.Element {
	el := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
	el.SetAttr("from", f.String())
	if p.Offline {
		el.SetAttr("type", "unavailable")
		if p.Status != "" {
			el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "status")).AddText(p.Status)
		}
		return el
	}
	if p.Show != Available {
		el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "show")).AddText(string(p.Show))
	}
	if p.Status != "" {
		el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "status")).AddText(p.Status)
	}
	hash := b.setAvatar(id, p.Avatar)
	upd := el.AddChild(xmlstream.NewElement(nsVCardUpd, "x"))
	if hash != "" {
		upd.AddChild(xmlstream.NewElement(nsVCardUpd, "photo")).AddText(hash)
	}
	return el
}

// setAvatar records a user's picture and returns its hash (XEP-0153),
// that of the picture already known when av is nil.
func (b *Bridge) setAvatar(id UserID, av *Avatar) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if av == nil {
		return b.avatars[id].hash
	}
	if len(av.Data) == 0 {
		delete(b.avatars, id)
		return ""
	}
	sum := sha1.Sum(av.Data)
	h := hex.EncodeToString(sum[:])
	b.avatars[id] = avatarInfo{hash: h, av: *av}
	return h
}

// ChatState implements Events.
func (e *userEvents) ChatState(from UserID, s ChatState) {
	ctx, cancel := e.ctx()
	defer cancel()
	f, ok := e.from(from)
	if !ok {
		return
	}
	el := bare("chat", xmlstream.NewElement(nsChatStates, string(s)))
	el.SetAttr("from", f.String())
	// Typing notifications are not worth keeping for later.
	el.SetAttr("to", e.u.jid.String())
	e.u.b.route(ctx, el)
}

// Reaction implements Events.
func (e *userEvents) Reaction(from UserID, r Reaction) {
	ctx, cancel := e.ctx()
	defer cancel()
	f, ok := e.from(from)
	if !ok {
		return
	}
	to := e.knownXMPPID(ctx, string(from), r.To)
	if to == "" {
		e.u.b.log.Debug("reaction to an unknown message dropped", "user", e.u.jid.String())
		return
	}
	rs := xmlstream.NewElement(nsReactions, "reactions")
	rs.SetAttr("id", to)
	for _, em := range r.Emojis {
		rs.AddChild(xmlstream.NewElement(nsReactions, "reaction")).AddText(em)
	}
	el := bare("chat", rs)
	el.SetAttr("from", f.String())
	e.deliver(ctx, el)
}

// Retraction implements Events.
func (e *userEvents) Retraction(from UserID, id MessageID) {
	ctx, cancel := e.ctx()
	defer cancel()
	f, ok := e.from(from)
	if !ok {
		return
	}
	to := e.knownXMPPID(ctx, string(from), id)
	if to == "" {
		return
	}
	r := xmlstream.NewElement(nsRetract, "retract")
	r.SetAttr("id", to)
	el := bare("chat", r)
	el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body")).AddText("This person attempted to retract a previous message, but it's unsupported by your client.")
	el.SetAttr("from", f.String())
	e.deliver(ctx, el)
}

// Displayed implements Events.
func (e *userEvents) Displayed(from UserID, id MessageID) {
	ctx, cancel := e.ctx()
	defer cancel()
	f, ok := e.from(from)
	if !ok {
		return
	}
	to := e.knownXMPPID(ctx, string(from), id)
	if to == "" {
		return
	}
	d := xmlstream.NewElement(nsMarkers, "displayed")
	d.SetAttr("id", to)
	el := bare("chat", d)
	el.SetAttr("from", f.String())
	e.deliver(ctx, el)
}

// Contact implements Events.
func (e *userEvents) Contact(c Contact) {
	ctx, cancel := e.ctx()
	defer cancel()
	e.contact(ctx, c)
}

// ContactRemoved implements Events.
func (e *userEvents) ContactRemoved(id UserID) {
	ctx, cancel := e.ctx()
	defer cancel()
	f, ok := e.from(id)
	if !ok {
		return
	}
	e.u.b.removeFromRoster(ctx, e.u, f)
	if err := e.u.b.st.RemoveContact(ctx, e.u.jid.String(), string(id)); err != nil && !errors.Is(err, store.ErrNotFound) {
		e.u.b.log.Error("contact removal", "err", err)
	}
}

// contact puts a contact in the user's roster, unless it is there
// already as it is (a network may report its contacts at every login),
// and tells its presence.
func (e *userEvents) contact(ctx context.Context, c Contact) {
	f, ok := e.from(c.ID)
	if !ok {
		return
	}
	b := e.u.b
	changed, err := b.st.AddContact(ctx, e.u.jid.String(), string(c.ID), c.Name, groupsOf(b, c))
	if err != nil {
		b.log.Error("contact", "err", err)
		changed = true
	}
	if changed {
		b.addToRoster(ctx, e.u, f, c)
	}
	e.u.notePresence(c.ID, c.Presence)
	b.route(ctx, withTo(b.presence(f, c.ID, c.Presence), e.u.jid))
}

func withTo(el *xmlstream.Element, to jid.JID) *xmlstream.Element {
	el.SetAttr("to", to.String())
	return el
}

// Disconnected implements Events.
func (e *userEvents) Disconnected(err error) {
	u := e.u
	u.mu.Lock()
	switch {
	case e.gen != 0 && u.logging && u.loginGen == e.gen:
		// Its login has not returned yet: it will see the session is gone.
		u.dropped = true
		u.mu.Unlock()
		return
	case e.gen != 0 && (u.sess == nil || u.sessGen != e.gen):
		u.mu.Unlock()
		return // an old session
	}
	s := u.sess
	u.mu.Unlock()
	u.disconnected(s, err)
}
