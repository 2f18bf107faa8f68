package bridge

import (
	"context"
	"errors"
	"sync"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/muc/room"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// puppetResource is the resource of the addresses that stand, inside a
// room, for the participants of the network.
const puppetResource = "bridge"

// maxWaitingJoins bounds the joins waiting for the network's answer.
const maxWaitingJoins = 16

// bridgedRoom is a group chat of the network as one XMPP user sees it: a
// room of the bridge's domain, on the same engine as the conference
// service, whose other occupants are the network's participants. Each
// user gets an instance of their own, since each is in the group chat
// through their own session.
type bridgedRoom struct {
	b   *Bridge
	u   *user
	id  RoomID
	jid jid.JID

	mu      sync.Mutex
	eng     *room.Room
	joined  bool
	joining bool
	waiting []router.Stanza
	self    UserID
	nicks   map[UserID]string // participants in the engine
	affs    map[UserID]room.Affiliation

	// What the engine sends is routed after mu is released, in order
	// (see the conference service: routing may come back here).
	outMu    sync.Mutex
	out      []room.Delivery
	draining bool
}

func roomKey(r jid.JID, u *user) string { return r.String() + " " + u.jid.String() }

// hasRoom reports whether anyone is in a room of that address.
func (b *Bridge) hasRoom(r jid.JID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, br := range b.rooms {
		if br.jid.Equal(r) {
			return true
		}
	}
	return false
}

// bridgedRoom returns the user's instance of a room, made if make is set.
func (b *Bridge) bridgedRoom(r jid.JID, u *user, make bool) *bridgedRoom {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := roomKey(r, u)
	br := b.rooms[k]
	if br == nil && make {
		cfg := room.DefaultConfig()
		cfg.Logging, cfg.ChangeSubject = false, true
		lim := room.DefaultLimits()
		// The network's own participants are not the room's to throttle;
		// the user is throttled toward the network.
		lim.MessageRate = 0
		st := room.State{Config: cfg, Created: nowFunc().UTC(), Secret: stanza.NewID() + stanza.NewID()}
		br = &bridgedRoom{b: b, u: u, id: RoomID(jid.UnescapeLocal(r.Local())), jid: r, nicks: map[UserID]string{}, affs: map[UserID]room.Affiliation{}}
		br.eng = room.New(r, st, nil, room.Deps{Now: nowFunc, NewStanzaID: b.ids.Next, NewID: stanza.NewID, Limits: lim})
		b.rooms[k] = br
	}
	return br
}

// dropRoom forgets the user's instance of a room.
func (b *Bridge) dropRoom(br *bridgedRoom) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rooms[roomKey(br.jid, br.u)] == br {
		delete(b.rooms, roomKey(br.jid, br.u))
	}
}

// leftAllRooms tells the user they are out of every room, after their
// session ended.
func (b *Bridge) leftAllRooms(u *user) {
	b.mu.Lock()
	var mine []*bridgedRoom
	for _, br := range b.rooms {
		if br.u == u {
			mine = append(mine, br)
		}
	}
	b.mu.Unlock()
	for _, br := range mine {
		br.mu.Lock()
		res := br.eng.Shutdown()
		br.enqueue(res.Out)
		br.mu.Unlock()
		br.flush(context.Background())
		b.dropRoom(br)
	}
}

// enqueue adds the engine's deliveries to the room's queue, br.mu held;
// those to the participants of the network stay here.
func (br *bridgedRoom) enqueue(ds []room.Delivery) {
	if len(ds) == 0 {
		return
	}
	br.outMu.Lock()
	defer br.outMu.Unlock()
	for _, d := range ds {
		var to []jid.JID
		for _, j := range d.To {
			if j.Domain() != br.b.cfg.Domain {
				to = append(to, j)
			}
		}
		if len(to) > 0 {
			br.out = append(br.out, room.Delivery{El: d.El, To: to})
		}
	}
}

// flush routes the room's queue unless another goroutine is at it.
func (br *bridgedRoom) flush(ctx context.Context) {
	br.outMu.Lock()
	if br.draining {
		br.outMu.Unlock()
		return
	}
	br.draining = true
	for len(br.out) > 0 {
		batch := br.out
		br.out = nil
		br.outMu.Unlock()
		for _, d := range batch {
			from, err := jid.Parse(d.El.Attr("from"))
			if err != nil {
				continue
			}
			for _, to := range d.To {
				c := d.El.ShallowCopy()
				c.SetAttr("to", to.String())
				if c.Local == stanza.Message && c.Attr("type") == "groupchat" {
					br.b.send(ctx, c)
					continue
				}
				br.b.rt.Route(ctx, router.Stanza{El: c, From: from, To: to})
			}
		}
		br.outMu.Lock()
	}
	br.draining = false
	br.outMu.Unlock()
}

// engine runs one engine call under the room's lock and routes what it
// produced afterwards.
func (br *bridgedRoom) engine(ctx context.Context, f func(*room.Room) *room.Result) {
	br.mu.Lock()
	res := f(br.eng)
	br.enqueue(res.Out)
	res.Release()
	br.mu.Unlock()
	br.flush(ctx)
}

// puppet is the address that stands for a participant in the room.
func (br *bridgedRoom) puppet(id UserID) (jid.JID, error) {
	return jid.New(jid.EscapeLocal(string(id)), br.b.cfg.Domain, puppetResource)
}

// occupant is the occupant JID of a nick.
func (br *bridgedRoom) occupant(nick string) (jid.JID, error) {
	return br.jid.WithResource(nick)
}

// roomStanza handles what an XMPP user sends to a room of the network or
// one of its occupants.
func (b *Bridge) roomStanza(ctx context.Context, st router.Stanza) {
	if st.From.Local() == "" {
		b.bounce(ctx, st, stanza.NotAllowed, "Only users join the network's rooms.")
		return
	}
	u := b.user(st.From.Bare())
	el := st.El
	join := el.Local == stanza.Presence && el.Attr("type") == "" && st.To.Resource() != ""
	br := b.bridgedRoom(st.To.Bare(), u, join)
	if br == nil {
		if el.Local != stanza.Presence || el.Attr("type") == "" {
			b.bounce(ctx, st, stanza.ItemNotFound, "You are not in this room.")
		}
		return
	}
	if _, ok := b.sessionType().(RoomSession); !ok && b.sessionType() != nil {
		b.bounce(ctx, st, stanza.FeatureNotImplemented, b.desc.Name+" has no group chats.")
		b.dropRoom(br)
		return
	}
	switch el.Local {
	case stanza.Presence:
		b.roomPresence(ctx, br, st, join)
	case stanza.Message:
		b.roomMessage(ctx, br, st)
	case stanza.IQ:
		b.roomIQ(ctx, br, st)
	}
}

// roomPresence handles joins, leaves, presence updates and nick changes.
func (b *Bridge) roomPresence(ctx context.Context, br *bridgedRoom, st router.Stanza, join bool) {
	u := br.u
	br.mu.Lock()
	if join && !br.joined {
		if len(br.waiting) >= maxWaitingJoins {
			br.mu.Unlock()
			b.bounce(ctx, st, stanza.ResourceConstraint, "")
			return
		}
		br.waiting = append(br.waiting, st)
		start := !br.joining
		br.joining = true
		br.mu.Unlock()
		if start {
			nick := st.To.Resource()
			password := ""
			if x := st.El.Child(nsMUC, "x"); x != nil {
				if pw := x.Child(nsMUC, "password"); pw != nil {
					password = pw.Text()
				}
			}
			u.do(func(ctx context.Context) { b.joinNetworkRoom(ctx, br, nick, password) })
		}
		return
	}
	current := br.eng.Occupant(st.From)
	br.mu.Unlock()
	if join && current != "" && current != st.To.Resource() && br.eng.Sessions(st.To.Resource()) == nil {
		// A nick change: the network decides, and tells with RoomNick.
		nick := st.To.Resource()
		u.do(func(ctx context.Context) {
			s, err := u.session(ctx)
			if err == nil {
				if nc, ok := s.(RoomNickChanger); ok {
					err = nc.SetRoomNick(ctx, br.id, nick)
				} else {
					err = ErrNotAllowed
				}
			}
			if err != nil {
				b.bounceErr(ctx, st, err)
			}
		})
		return
	}
	br.engine(ctx, func(r *room.Room) *room.Result { return r.Handle(st.El, st.From, st.To) })
	if st.El.Attr("type") == "unavailable" {
		br.mu.Lock()
		empty := br.eng.Occupant(st.From) == "" && !b.userInRoom(br)
		br.mu.Unlock()
		if empty {
			b.dropRoom(br)
			u.do(func(ctx context.Context) {
				u.mu.Lock()
				s := u.sess
				u.mu.Unlock()
				if rs, ok := s.(RoomSession); ok {
					if err := rs.LeaveRoom(ctx, br.id); err != nil {
						b.log.Debug("leave room", "room", string(br.id), "err", err)
					}
				}
			})
		}
	}
}

// userInRoom reports whether any of the user's resources is still in the
// room, br.mu held.
func (b *Bridge) userInRoom(br *bridgedRoom) bool {
	br.u.mu.Lock()
	defer br.u.mu.Unlock()
	return br.self != "" && len(br.eng.Sessions(br.nicks[br.self])) > 0
}

// joinNetworkRoom joins the group chat on the network, on the user's
// worker; the network answers with RoomJoined or RoomJoinFailed.
func (b *Bridge) joinNetworkRoom(ctx context.Context, br *bridgedRoom, nick, password string) {
	s, err := br.u.session(ctx)
	if err == nil {
		rs, ok := s.(RoomSession)
		if !ok {
			err = errors.New("no group chats")
		} else {
			err = rs.JoinRoom(ctx, br.id, nick, password)
		}
	}
	if err != nil {
		if errors.Is(err, errNotRegistered) {
			br.fail(ctx, "registration-required", "Register with "+b.cfg.Domain+" first.")
			return
		}
		cond, text := errorFor(err)
		br.fail(ctx, cond, text)
	}
}

// fail refuses the joins waiting for the network.
func (br *bridgedRoom) fail(ctx context.Context, cond, text string) {
	br.mu.Lock()
	waiting := br.waiting
	br.waiting, br.joining = nil, false
	joined := br.joined
	br.mu.Unlock()
	for _, st := range waiting {
		br.b.bounce(ctx, st, cond, text)
	}
	if !joined {
		br.b.dropRoom(br)
	}
}

// roomMessage handles group chat messages, subjects and private
// messages to participants.
func (b *Bridge) roomMessage(ctx context.Context, br *bridgedRoom, st router.Stanza) {
	el := st.El
	u := br.u
	if st.To.Resource() != "" {
		if el.Attr("type") == "groupchat" || el.Attr("type") == "error" {
			br.engine(ctx, func(r *room.Room) *room.Result { return r.Handle(el, st.From, st.To) })
			return
		}
		// A private message to a participant is a one-to-one message on
		// the network.
		br.mu.Lock()
		var peer UserID
		for id, n := range br.nicks {
			if n == st.To.Resource() {
				peer = id
			}
		}
		br.mu.Unlock()
		if peer == "" {
			br.engine(ctx, func(r *room.Room) *room.Result { return r.Handle(el, st.From, st.To) })
			return
		}
		b.toNetwork(ctx, st, peer, "")
		return
	}
	if el.Attr("type") != "groupchat" {
		br.engine(ctx, func(r *room.Room) *room.Result { return r.Handle(el, st.From, st.To) })
		return
	}
	if br.eng.Occupant(st.From) == "" {
		b.bounce(ctx, st, stanza.NotAcceptable, "You are not in this room.")
		return
	}
	if subj := el.Child(el.Space, "subject"); subj != nil && el.Child(el.Space, "body") == nil {
		text := subj.Text()
		u.do(func(ctx context.Context) {
			s, err := u.session(ctx)
			if err == nil {
				if ss, ok := s.(RoomSubjectSetter); ok {
					err = ss.SetRoomSubject(ctx, br.id, text)
				} else {
					err = ErrNotAllowed
				}
			}
			if err != nil {
				b.bounceErr(ctx, st, err)
			}
			// The network reports the new subject with RoomSubject.
		})
		return
	}
	b.toNetwork(ctx, st, "", br.id)
}

// reflectOwn shows the user's own group chat message to them once the
// network took it, with the network's id recorded.
func (b *Bridge) reflectOwn(ctx context.Context, u *user, id RoomID, st router.Stanza, legacy MessageID) {
	br := b.bridgedRoom(st.To.Bare(), u, false)
	if br == nil {
		return
	}
	br.engine(ctx, func(r *room.Room) *room.Result { return r.Handle(st.El, st.From, st.To) })
}

// roomIQ handles requests to a room: kicks go to the network, other
// changes to the room's lists and settings are refused, the rest goes to
// the engine (discovery, self-ping).
func (b *Bridge) roomIQ(ctx context.Context, br *bridgedRoom, st router.Stanza) {
	el := st.El
	if q := el.Child(room.NSAdmin, "query"); q != nil && el.Attr("type") == "set" {
		it := q.Child(room.NSAdmin, "item")
		if it != nil && it.Attr("role") == "none" {
			br.mu.Lock()
			var target UserID
			for id, n := range br.nicks {
				if n == it.Attr("nick") {
					target = id
				}
			}
			br.mu.Unlock()
			reason := ""
			if re := it.Child(room.NSAdmin, "reason"); re != nil {
				reason = re.Text()
			}
			if target == "" {
				b.bounce(ctx, st, stanza.ItemNotFound, "No participant has that nick.")
				return
			}
			u := br.u
			u.do(func(ctx context.Context) {
				s, err := u.session(ctx)
				if err == nil {
					if k, ok := s.(RoomKicker); ok {
						err = k.Kick(ctx, br.id, target, reason)
					} else {
						err = ErrNotAllowed
					}
				}
				if err != nil {
					b.bounceErr(ctx, st, err)
					return
				}
				// The network reports the kick with RoomLeft.
				b.reply(ctx, st, stanza.Result(el))
			})
			return
		}
	}
	if el.Attr("type") == "set" && (el.Child(room.NSAdmin, "query") != nil || el.Child(room.NSOwner, "query") != nil) {
		// The room is the network's: the engine's lists and settings
		// would change here and not there.
		b.bounce(ctx, st, stanza.FeatureNotImplemented, "Of the changes to the room, only kicks reach "+b.desc.Name+".")
		return
	}
	br.engine(ctx, func(r *room.Room) *room.Result { return r.Handle(el, st.From, st.To) })
}

// Events of the network's rooms, on a user's session.

func (e *userEvents) room(id RoomID, create bool) *bridgedRoom {
	r, err := e.u.b.roomJID(id)
	if err != nil {
		e.u.b.log.Warn("a room id of the network is not usable in an address; event dropped", "room", string(id), "err", err)
		return nil
	}
	return e.u.b.bridgedRoom(r, e.u, create)
}

// RoomJoined implements Events.
func (e *userEvents) RoomJoined(id RoomID, info RoomInfo) {
	br := e.room(id, true)
	if br == nil {
		return
	}
	ctx, cancel := e.ctx()
	defer cancel()
	br.mu.Lock()
	br.joined, br.joining, br.self = true, false, info.Self
	waiting := br.waiting
	br.waiting = nil
	br.mu.Unlock()
	for _, p := range info.Participants {
		if p.ID != info.Self && p.ID != "" {
			e.participant(ctx, br, p)
		}
	}
	if info.Subject != "" {
		br.engine(ctx, func(r *room.Room) *room.Result { return r.SetSubject(info.Subject, "", nowFunc()) })
	}
	nick := info.Nick
	for _, st := range waiting {
		if nick == "" {
			nick = st.To.Resource()
		}
		br.engine(ctx, func(r *room.Room) *room.Result { return r.Enter(st.El, st.From, st.To, nick) })
	}
	br.mu.Lock()
	if info.Self != "" && nick != "" {
		br.nicks[info.Self] = nick
	}
	br.mu.Unlock()
	for _, p := range info.Participants {
		if p.ID == info.Self && p.ID != "" {
			// The user's own standing on the network (an IRC channel's
			// operator is its first to join).
			br.setRole(ctx, p.ID, e.u.jid.String(), p.Role)
		}
	}
}

// participant seats or updates a participant of the network.
func (e *userEvents) participant(ctx context.Context, br *bridgedRoom, p Participant) {
	pj, err := br.puppet(p.ID)
	if err != nil {
		return
	}
	nick := p.Nick
	if nick == "" {
		nick = string(p.ID)
	}
	to, err := br.occupant(nick)
	if err != nil {
		return
	}
	pres := e.u.b.presence(pj, p.ID, p.Presence)
	pres.SetAttr("to", to.String())
	br.mu.Lock()
	br.nicks[p.ID] = nick
	br.mu.Unlock()
	br.engine(ctx, func(r *room.Room) *room.Result { return r.Enter(pres, pj, to, nick) })
	br.setRole(ctx, p.ID, pj.Bare().String(), p.Role)
}

// setRole shows the role a participant of the network has, id, whose
// real JID in the room is bare, as the room's affiliation: a moderator
// is an admin, an owner an owner, anybody else has none.
func (br *bridgedRoom) setRole(ctx context.Context, id UserID, bare string, role Role) {
	aff := room.None
	switch role {
	case RoleModerator:
		aff = room.Admin
	case RoleOwner:
		aff = room.Owner
	}
	br.mu.Lock()
	prev, known := br.affs[id]
	if !known {
		prev = room.None // what the engine has for someone it does not know
	}
	br.affs[id] = aff
	br.mu.Unlock()
	if aff != prev {
		// Both ways: an operator who loses the status is shown as such.
		br.engine(ctx, func(r *room.Room) *room.Result {
			return r.SetAffiliation(room.Record{JID: bare, Affiliation: aff})
		})
	}
}

// RoomJoinFailed implements Events.
func (e *userEvents) RoomJoinFailed(id RoomID, err error) {
	br := e.room(id, false)
	if br == nil {
		return
	}
	ctx, cancel := e.ctx()
	defer cancel()
	cond, text := errorFor(err)
	switch {
	case errors.Is(err, ErrBadCredentials):
		cond = stanza.NotAuthorized // a wrong room password (XEP-0045 §7.2.6)
	case errors.Is(err, ErrNotAllowed):
		cond = stanza.Forbidden
	case errors.Is(err, ErrUnavailable):
		cond = stanza.ServiceUnavailable // a full room (§7.2.10)
	}
	br.fail(ctx, cond, text)
}

// RoomMessage implements Events.
func (e *userEvents) RoomMessage(id RoomID, from UserID, m Message) {
	br := e.room(id, false)
	if br == nil {
		return
	}
	ctx, cancel := e.ctx()
	defer cancel()
	conv := string(id)
	if m.ID != "" && m.Replaces == "" {
		if e.u.b.idmap.xmppID(ctx, e.u.jid.String(), conv, string(m.ID)) != "" {
			return // seen already: the network's echo of the user's own message, or a repeat
		}
	}
	br.mu.Lock()
	self := from == br.self && from != ""
	nick := br.nicks[from]
	br.mu.Unlock()
	x := ids{id: e.xmppID(ctx, conv, m.ID), replaces: e.knownXMPPID(ctx, conv, m.Replaces), replyTo: e.knownXMPPID(ctx, conv, m.ReplyTo)}
	el := writeMessage("groupchat", m, x)
	if from == "" || nick == "" && !self {
		// The network itself, or someone not in the room: a notice.
		br.engine(ctx, func(r *room.Room) *room.Result { return r.Notice(m.Body) })
		return
	}
	var sender jid.JID
	if self {
		// Sent from another client of the user's on the network.
		ss := br.eng.Sessions(nick)
		if len(ss) == 0 {
			return
		}
		sender = ss[0]
	} else {
		var err error
		if sender, err = br.puppet(from); err != nil {
			return
		}
	}
	el.SetAttr("from", sender.String())
	el.SetAttr("to", br.jid.String())
	br.engine(ctx, func(r *room.Room) *room.Result { return r.Handle(el, sender, br.jid) })
}

// RoomPresence implements Events.
func (e *userEvents) RoomPresence(id RoomID, p Participant) {
	br := e.room(id, false)
	if br == nil || p.ID == "" {
		return
	}
	ctx, cancel := e.ctx()
	defer cancel()
	br.mu.Lock()
	self := p.ID == br.self
	br.mu.Unlock()
	if self {
		// Only the user's standing: their presence is their clients'.
		br.setRole(ctx, p.ID, e.u.jid.String(), p.Role)
		return
	}
	e.participant(ctx, br, p)
}

// RoomLeft implements Events.
func (e *userEvents) RoomLeft(id RoomID, user UserID, reason string, kickedBy UserID) {
	br := e.room(id, false)
	if br == nil {
		return
	}
	ctx, cancel := e.ctx()
	defer cancel()
	br.mu.Lock()
	nick := br.nicks[user]
	actor := br.nicks[kickedBy]
	self := user == br.self && user != ""
	delete(br.nicks, user)
	delete(br.affs, user)
	br.mu.Unlock()
	if nick == "" {
		return
	}
	if self && kickedBy == "" {
		// The user left on the network (from another client, or the
		// network parted them): out of the room, with no kick.
		for _, s := range br.eng.Sessions(nick) {
			to, _ := br.occupant(nick)
			pres := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
			pres.SetAttr("type", "unavailable")
			pres.SetAttr("from", s.String())
			pres.SetAttr("to", to.String())
			if reason != "" {
				pres.AddChild(xmlstream.NewElement(xmlstream.NSClient, "status")).AddText(reason)
			}
			br.engine(ctx, func(r *room.Room) *room.Result { return r.Handle(pres, s, to) })
		}
		e.u.b.dropRoom(br)
		return
	}
	if kickedBy != "" || self {
		if actor == "" && kickedBy != "" {
			actor = string(kickedBy)
		}
		br.engine(ctx, func(r *room.Room) *room.Result { return r.Remove(nick, actor, reason) })
		if self {
			e.u.b.dropRoom(br)
		}
		return
	}
	pj, err := br.puppet(user)
	if err != nil {
		return
	}
	to, _ := br.occupant(nick)
	pres := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
	pres.SetAttr("type", "unavailable")
	pres.SetAttr("from", pj.String())
	pres.SetAttr("to", to.String())
	if reason != "" {
		pres.AddChild(xmlstream.NewElement(xmlstream.NSClient, "status")).AddText(reason)
	}
	br.engine(ctx, func(r *room.Room) *room.Result { return r.Handle(pres, pj, to) })
}

// RoomNick implements Events.
func (e *userEvents) RoomNick(id RoomID, user UserID, nick string) {
	br := e.room(id, false)
	if br == nil {
		return
	}
	ctx, cancel := e.ctx()
	defer cancel()
	br.mu.Lock()
	old := br.nicks[user]
	self := user == br.self && user != ""
	if old != "" {
		br.nicks[user] = nick
	}
	br.mu.Unlock()
	if old == "" || old == nick {
		return
	}
	to, err := br.occupant(nick)
	if err != nil {
		return
	}
	var from []jid.JID
	if self {
		from = br.eng.Sessions(old)
	} else if pj, err := br.puppet(user); err == nil {
		from = []jid.JID{pj}
	}
	for _, f := range from {
		pres := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
		pres.SetAttr("from", f.String())
		pres.SetAttr("to", to.String())
		br.engine(ctx, func(r *room.Room) *room.Result { return r.Handle(pres, f, to) })
	}
}

// RoomInvited implements Events: the user is invited to a room of the
// network, shown as the room's invitation (XEP-0045 §7.8.2) with the
// direct form too (XEP-0249).
func (e *userEvents) RoomInvited(id RoomID, from UserID, reason string) {
	ctx, cancel := e.ctx()
	defer cancel()
	r, err := e.u.b.roomJID(id)
	if err != nil {
		return
	}
	inviter, ok := e.from(from)
	if !ok {
		return
	}
	m := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	m.SetAttr("id", stanza.NewID())
	m.SetAttr("from", r.String())
	x := m.AddChild(xmlstream.NewElement(nsMUCUser, "x"))
	inv := x.AddChild(xmlstream.NewElement(nsMUCUser, "invite"))
	inv.SetAttr("from", inviter.String())
	if reason != "" {
		inv.AddChild(xmlstream.NewElement(nsMUCUser, "reason")).AddText(reason)
	}
	body := string(from) + " invites you to " + r.String()
	if reason != "" {
		body += ": " + reason
	}
	m.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body")).AddText(body)
	c := m.AddChild(xmlstream.NewElement("jabber:x:conference", "x"))
	c.SetAttr("jid", r.String())
	if reason != "" {
		c.SetAttr("reason", reason)
	}
	e.deliver(ctx, m)
}

// RoomSubject implements Events.
func (e *userEvents) RoomSubject(id RoomID, by UserID, subject string) {
	br := e.room(id, false)
	if br == nil {
		return
	}
	ctx, cancel := e.ctx()
	defer cancel()
	br.mu.Lock()
	nick := br.nicks[by]
	br.mu.Unlock()
	br.engine(ctx, func(r *room.Room) *room.Result { return r.SetSubject(subject, nick, nowFunc()) })
}
