package bridge

import (
	"context"
	"errors"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

var _ router.Component = (*Bridge)(nil)

// RoomAddresser is implemented by a Network whose room ids can be told
// from user ids by their form (an IRC channel starts with '#'), so that
// the bridge knows what an address of its domain is before anyone joins.
// Without it, an address is a room once someone joined it, or when the
// stanza is one only rooms get.
type RoomAddresser interface {
	IsRoom(id string) bool
}

// HandleStanza implements router.Component: what XMPP sends the bridge.
func (b *Bridge) HandleStanza(ctx context.Context, st router.Stanza) {
	if st.To.Domain() != b.cfg.Domain {
		b.bounce(ctx, st, stanza.ServiceUnavailable, "")
		return
	}
	st.El = clientNS(st.El)
	switch {
	case st.To.Local() == "":
		b.gatewayStanza(ctx, st)
	case b.isRoom(st):
		b.roomStanza(ctx, st)
	default:
		b.contactStanza(ctx, st)
	}
}

// clientNS returns el in the client namespace: stanzas from a server or
// a component stream are in theirs, and so are their children, which
// the bridge copies into stanzas of its own.
func clientNS(el *xmlstream.Element) *xmlstream.Element {
	if el.Space == xmlstream.NSClient {
		return el
	}
	c, err := xmlstream.ParseStanza(el.AppendXML(nil, xmlstream.NSClient), xmlstream.NSClient)
	if err != nil {
		return el
	}
	return c
}

// isRoom tells whether a stanza for an address of the domain is for a
// room.
func (b *Bridge) isRoom(st router.Stanza) bool {
	local := jid.UnescapeLocal(st.To.Local())
	if ra, ok := b.net.(RoomAddresser); ok {
		return ra.IsRoom(local)
	}
	if b.hasRoom(st.To.Bare()) {
		return true
	}
	el := st.El
	switch el.Local {
	case stanza.Presence:
		return el.Child(nsMUC, "x") != nil
	case stanza.Message:
		return el.Attr("type") == "groupchat"
	case stanza.IQ:
		for c := range el.ChildElements {
			return strings.HasPrefix(c.Space, nsMUC)
		}
	}
	return false
}

// gatewayStanza answers what is sent to the bridge's domain itself: the
// gateway's discovery and registration (XEP-0100), the users' presence,
// and the server's advertisement of privileges.
func (b *Bridge) gatewayStanza(ctx context.Context, st router.Stanza) {
	switch st.El.Local {
	case stanza.Message:
		if st.From.Local() == "" {
			b.notePrivileges(st.From, st.El)
		}
	case stanza.Presence:
		b.gatewayPresence(ctx, st)
	case stanza.IQ:
		if !stanza.IsRequest(st.El) {
			b.rosterAnswer(ctx, st)
			return
		}
		if b.rosterPush(ctx, st) {
			return
		}
		b.gatewayIQ(ctx, st)
	}
}

// gatewayPresence follows a user's presence: a Transport logs in with the
// user's first available resource and out with the last (XEP-0100 §4.4);
// subscriptions to the gateway are accepted.
func (b *Bridge) gatewayPresence(ctx context.Context, st router.Stanza) {
	if st.From.Local() == "" {
		return
	}
	u := b.user(st.From.Bare())
	switch st.El.Attr("type") {
	case "subscribe":
		b.presenceTo(ctx, b.domain, st.From.Bare(), "subscribed")
		b.presenceTo(ctx, b.domain, st.From.Bare(), "")
	case "probe":
		b.presenceTo(ctx, b.domain, st.From.Bare(), "")
	case "":
		if b.desc.Mode != Transport {
			return
		}
		u.mu.Lock()
		first := len(u.online) == 0
		u.online[st.From.String()] = true
		u.mu.Unlock()
		b.presenceTo(ctx, b.domain, st.From, "")
		if first {
			u.do(func(ctx context.Context) {
				s, err := u.session(ctx)
				if err != nil {
					if !errors.Is(err, errNotRegistered) {
						u.disconnected(nil, err)
					}
					return
				}
				if ps, ok := s.(PresenceSetter); ok {
					if err := ps.SetPresence(ctx, presenceOf(st.El)); err != nil {
						b.log.Debug("presence", "err", err)
					}
				}
				u.flushKept(ctx)
			})
		} else {
			u.do(func(ctx context.Context) {
				u.mu.Lock()
				s := u.sess
				u.mu.Unlock()
				if ps, ok := s.(PresenceSetter); ok {
					_ = ps.SetPresence(ctx, presenceOf(st.El))
				}
			})
		}
	case "unavailable":
		if b.desc.Mode != Transport {
			return
		}
		u.mu.Lock()
		delete(u.online, st.From.String())
		last := len(u.online) == 0
		u.mu.Unlock()
		if last && !b.desc.StayOnline {
			u.do(func(ctx context.Context) { u.logout(ctx, "the user went offline") })
		}
	}
}

// presenceOf reads an XMPP presence into the model.
func presenceOf(el *xmlstream.Element) Presence {
	p := Presence{Offline: el.Attr("type") == "unavailable"}
	if s := el.Child(el.Space, "show"); s != nil {
		p.Show = Show(s.Text())
	}
	if s := el.Child(el.Space, "status"); s != nil {
		p.Status = s.Text()
	}
	return p
}

// presenceTo sends a presence of type typ ("" for available).
func (b *Bridge) presenceTo(ctx context.Context, from, to jid.JID, typ string) {
	p := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
	p.SetAttr("from", from.String())
	p.SetAttr("to", to.String())
	if typ != "" {
		p.SetAttr("type", typ)
	}
	b.route(ctx, p)
}

// contactStanza handles what XMPP sends a user of the network.
func (b *Bridge) contactStanza(ctx context.Context, st router.Stanza) {
	peer := UserID(jid.UnescapeLocal(st.To.Local()))
	switch st.El.Local {
	case stanza.Message:
		switch st.El.Attr("type") {
		case "error":
			return
		case "groupchat":
			b.bounce(ctx, st, stanza.BadRequest, "This address is a user, not a room.")
			return
		}
		b.toNetwork(ctx, st, peer, "")
	case stanza.Presence:
		switch st.El.Attr("type") {
		case "subscribe":
			// Users of the network may be added by anyone (XEP-0100
			// §4.1.3 approves subscriptions of a registered user's
			// contacts).
			b.presenceTo(ctx, st.To.Bare(), st.From.Bare(), "subscribed")
			b.route(ctx, withTo(b.presence(st.To.Bare(), peer, b.user(st.From.Bare()).lastPresence(peer)), st.From.Bare()))
		case "probe":
			b.route(ctx, withTo(b.presence(st.To.Bare(), peer, b.user(st.From.Bare()).lastPresence(peer)), st.From))
		case "unsubscribe":
			b.presenceTo(ctx, st.To.Bare(), st.From.Bare(), "unsubscribed")
		}
	case stanza.IQ:
		if !stanza.IsRequest(st.El) {
			return
		}
		b.contactIQ(ctx, st, peer)
	}
}

// toNetwork sends what an XMPP user wrote to a user of the network, or
// to a room's participant when room is set, on the user's worker.
func (b *Bridge) toNetwork(ctx context.Context, st router.Stanza, peer UserID, room RoomID) {
	if st.From.Local() == "" {
		b.bounce(ctx, st, stanza.NotAllowed, "Only users may write to users of the network.")
		return
	}
	in := readMessage(st.El)
	if !in.hasBody && len(in.msg.Attachments) == 0 && in.state == "" && in.reaction == nil && in.retract == "" && in.displayed == "" {
		return // receipts and the like go no further
	}
	if len(in.msg.Body) > b.cfg.MaxMessageBytes {
		b.bounce(ctx, st, stanza.PolicyViolation, "The message is too long for the network.")
		return
	}
	u := b.user(st.From.Bare())
	if !u.allow() {
		b.bounce(ctx, st, stanza.ResourceConstraint, "You are sending faster than the network takes.")
		return
	}
	// Over Ambrosia's service protocol an event has an id, the same when
	// it is sent again after a crash. It is kept before this returns (the
	// link acknowledges it then), so that a crash of the bridge loses
	// nothing, and it reaches the network once.
	event := ""
	if b.durable {
		event = storage.EventID(ctx)
	}
	if event != "" {
		first, err := b.st.Take(ctx, event, st.El.AppendXML(nil, xmlstream.NSClient))
		if err != nil {
			b.log.Error("keeping a stanza for the network", "err", err)
			b.bounce(ctx, st, stanza.InternalServerError, "")
			return
		}
		if !first {
			return
		}
	}
	if !u.do(func(ctx context.Context) { b.sendToNetwork(ctx, u, st, peer, room, in, event) }) {
		b.bounce(ctx, st, stanza.ResourceConstraint, "Too much is waiting for the network.")
		if event != "" {
			_ = b.st.Done(ctx, event, nowFunc())
		}
	}
}

// sendToNetwork runs on the user's worker.
func (b *Bridge) sendToNetwork(ctx context.Context, u *user, st router.Stanza, peer UserID, room RoomID, in inbound, event string) {
	if event != "" {
		defer func() {
			if err := b.st.Done(ctx, event, nowFunc()); err != nil {
				b.log.Error("marking a stanza handled", "err", err)
			}
		}()
	}
	s, err := u.session(ctx)
	if err != nil {
		if errors.Is(err, errNotRegistered) {
			b.bounce(ctx, st, "registration-required", "Register with "+b.cfg.Domain+" first.")
			return
		}
		cond, text := errorFor(err)
		b.bounce(ctx, st, cond, text)
		return
	}
	conv := string(peer)
	legacy := func(xmppID string) MessageID {
		if xmppID == "" {
			return ""
		}
		return MessageID(b.idmap.legacyID(ctx, u.jid.String(), conv, xmppID))
	}
	if in.state != "" {
		if cs, ok := s.(ChatStateSender); ok {
			_ = cs.SendChatState(ctx, peer, in.state)
		}
	}
	if in.reaction != nil {
		if r, ok := s.(Reactor); ok {
			if to := legacy(in.reactTo); to != "" {
				in.reaction.To = to
				if err := r.React(ctx, peer, *in.reaction); err != nil {
					b.bounceErr(ctx, st, err)
				}
			}
		} else {
			b.bounce(ctx, st, stanza.FeatureNotImplemented, b.desc.Name+" has no reactions.")
		}
	}
	if in.retract != "" {
		if r, ok := s.(Retractor); ok {
			if id := legacy(in.retract); id != "" {
				if err := r.Retract(ctx, peer, id); err != nil {
					b.bounceErr(ctx, st, err)
				}
			}
		}
		return
	}
	if in.displayed != "" {
		if mk, ok := s.(Marker); ok {
			if id := legacy(in.displayed); id != "" {
				_ = mk.MarkDisplayed(ctx, peer, id)
			}
		}
	}
	if !in.hasBody && len(in.msg.Attachments) == 0 {
		return
	}
	m := in.msg
	m.ID = MessageID(in.xmppID)
	m.ReplyTo = legacy(in.replyTo)
	var id MessageID
	if in.replace != "" {
		m.Replaces = legacy(in.replace)
	}
	switch ed, canEdit := s.(Editor); {
	case m.Replaces != "" && canEdit:
		err = ed.EditMessage(ctx, peer, m)
		id = m.Replaces
	default:
		// A network without corrections gets the corrected text as a new
		// message, as people there would write it.
		m.Replaces = ""
		if room != "" {
			rs, ok := s.(RoomSession)
			if !ok {
				b.bounce(ctx, st, stanza.FeatureNotImplemented, b.desc.Name+" has no group chats.")
				return
			}
			id, err = rs.SendRoomMessage(ctx, room, m)
		} else {
			id, err = s.SendMessage(ctx, peer, m)
		}
	}
	if err != nil {
		b.bounceErr(ctx, st, err)
		return
	}
	if in.xmppID != "" {
		legacyID := string(id)
		if legacyID == "" {
			legacyID = "x:" + in.xmppID
		}
		b.idmap.put(u.jid.String(), conv, legacyID, in.xmppID)
	}
	if in.receipt && room == "" && in.xmppID != "" {
		// The network took it: the receipt says as much (XEP-0184).
		r := xmlstream.NewElement(nsReceipts, "received")
		r.SetAttr("id", st.El.Attr("id"))
		el := bare("chat", r)
		el.SetAttr("from", st.To.Bare().String())
		el.SetAttr("to", st.From.String())
		b.route(ctx, el)
	}
	if room != "" {
		b.reflectOwn(ctx, u, room, st, id)
	}
}

// bounceErr answers st with the XMPP error of a network error.
func (b *Bridge) bounceErr(ctx context.Context, st router.Stanza, err error) {
	cond, text := errorFor(err)
	if cond == stanza.InternalServerError {
		b.log.Warn("network error", "err", err)
	}
	b.bounce(ctx, st, cond, text)
}

// contactIQ answers requests to a user of the network: discovery, its
// vCard (with the avatar the network gave) and pings.
func (b *Bridge) contactIQ(ctx context.Context, st router.Stanza, peer UserID) {
	el := st.El
	get := el.Attr("type") == "get"
	switch {
	case get && el.Child(stanza.NSDiscoInfo, "query") != nil:
		r := stanza.Result(el)
		q := r.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "query"))
		id := q.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "identity"))
		id.SetAttr("category", "client")
		id.SetAttr("type", "pc")
		id.SetAttr("name", string(peer))
		for _, f := range b.contactFeatures() {
			q.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "feature")).SetAttr("var", f)
		}
		b.reply(ctx, st, r)
	case get && el.Child(nsVCard, "vCard") != nil:
		r := stanza.Result(el)
		v := r.AddChild(xmlstream.NewElement(nsVCard, "vCard"))
		v.AddChild(xmlstream.NewElement(nsVCard, "NICKNAME")).AddText(string(peer))
		b.mu.Lock()
		av, ok := b.avatars[peer]
		b.mu.Unlock()
		if ok {
			ph := v.AddChild(xmlstream.NewElement(nsVCard, "PHOTO"))
			ph.AddChild(xmlstream.NewElement(nsVCard, "TYPE")).AddText(av.av.Type)
			ph.AddChild(xmlstream.NewElement(nsVCard, "BINVAL")).AddText(base64Std(av.av.Data))
		}
		b.reply(ctx, st, r)
	case get && el.Child(stanza.NSPing, "ping") != nil:
		b.reply(ctx, st, stanza.Result(el))
	default:
		b.bounce(ctx, st, stanza.ServiceUnavailable, "")
	}
}

// redo sends to the network a stanza taken as event before a crash.
func (b *Bridge) redo(ctx context.Context, event string, st router.Stanza) {
	u := b.user(st.From.Bare())
	in := readMessage(st.El)
	var peer UserID
	var room RoomID
	local := jid.UnescapeLocal(st.To.Local())
	switch {
	case st.El.Attr("type") == "groupchat":
		room = RoomID(local)
	case st.To.Resource() == "":
		peer = UserID(local)
	default:
		// A private message in a room: the room and its nicks are gone
		// with the crash.
		b.bounce(ctx, st, stanza.RecipientUnavailable, "The bridge restarted; join the room again.")
		_ = b.st.Done(ctx, event, nowFunc())
		return
	}
	if !u.do(func(ctx context.Context) { b.sendToNetwork(ctx, u, st, peer, room, in, event) }) {
		_ = b.st.Done(ctx, event, nowFunc())
	}
}
