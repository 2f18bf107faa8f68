package irc

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/irc/ircconn"
)

// handle turns what the server sends into the bridge's events. It runs
// in the connection's reader: the state changes under s.mu, and the
// events are reported after, in order.
func (s *session) handle(m *ircconn.Message) {
	var out []func()
	s.mu.Lock()
	for w := range s.waiters {
		if done, err := w.match(m); done {
			w.ch <- err
			delete(s.waiters, w)
		}
	}
	if s.loggedOut {
		s.mu.Unlock()
		return
	}
	switch m.Command {
	case "PRIVMSG", "NOTICE":
		out = s.onText(m)
	case "JOIN":
		out = s.onJoin(m)
	case "PART":
		out = s.onPart(m)
	case "KICK":
		out = s.onKick(m)
	case "QUIT":
		out = s.onQuit(m)
	case "NICK":
		out = s.onNick(m)
	case "TOPIC":
		out = s.onTopic(m)
	case "MODE":
		out = s.onMode(m)
	case "AWAY":
		out = s.onAway(m.Nick(), m.Param(0))
	case "INVITE":
		out = s.onInvite(m)
	case "301": // RPL_AWAY, the answer to a message to someone away
		out = s.onAway(m.Param(1), m.Last())
	case "303": // RPL_ISON
		out = s.onISON(m)
	case "730": // RPL_MONONLINE
		out = s.onMonitor(m, true)
	case "731": // RPL_MONOFFLINE
		out = s.onMonitor(m, false)
	case "734": // ERR_MONLISTFULL
		s.onMonitorFull(m)
	case "332": // RPL_TOPIC
		if ch := s.chans[s.fold(m.Param(1))]; ch != nil {
			ch.topic = ircconn.StripFormatting(m.Last())
		}
	case "353": // RPL_NAMREPLY
		out = s.onNames(m)
	case "366": // RPL_ENDOFNAMES
		out = s.onEndOfNames(m)
	case "403", "405", "437", "471", "473", "474", "475", "476", "477", "479", "489":
		out = s.onJoinError(m)
	}
	s.mu.Unlock()
	for _, f := range out {
		f()
	}
}

// idOf is the id in the channels of the person with nick now.
func (s *session) idOf(nick string) bridge.UserID {
	f := s.fold(nick)
	if f == s.fold(s.nick) {
		return selfID
	}
	if id, ok := s.ids[f]; ok {
		return id
	}
	return bridge.UserID(nick)
}

// shares reports whether a nick is in any of the user's channels.
func (s *session) shares(f string) bool {
	for _, ch := range s.chans {
		if ch.members[f] != nil {
			return true
		}
	}
	return false
}

// forgetIfGone forgets the id of a person in none of the channels.
func (s *session) forgetIfGone(f string) {
	if s.shares(f) {
		return
	}
	if id, ok := s.ids[f]; ok {
		delete(s.ids, f)
		delete(s.nicks, s.fold(string(id)))
	}
	delete(s.away, f)
}

// claim makes the nick of a newcomer (or of someone taking it, whose
// nick was mover) free as an id: when someone seen before under that nick
// holds it as their id, they are seated again under their nick now, so
// that two people never share an id.
func (s *session) claim(nick, mover string) []func() {
	f := s.fold(nick)
	holder, ok := s.nicks[f]
	if !ok || s.fold(holder) == f || s.fold(holder) == s.fold(mover) {
		return nil
	}
	old := s.ids[s.fold(holder)]
	delete(s.ids, s.fold(holder))
	delete(s.nicks, f)
	var out []func()
	for _, ch := range s.chans {
		if mem := ch.members[s.fold(holder)]; mem != nil && ch.joined {
			room, p := ch.id, s.participant(mem)
			out = append(out,
				func() { s.ev.RoomLeft(room, old, "", "") },
				func() { s.ev.RoomPresence(room, p) })
		}
	}
	return out
}

// participant describes a member of a channel.
func (s *session) participant(mem *member) bridge.Participant {
	p := bridge.Participant{ID: s.idOf(mem.nick), Nick: mem.nick, Role: s.role(mem.modes)}
	if msg, ok := s.away[s.fold(mem.nick)]; ok && msg != "" {
		p.Presence = bridge.Presence{Show: bridge.Away, Status: msg}
	}
	return p
}

// role maps membership prefixes to a role: the founder's (q) to owner,
// operators and those above them (and half-operators) to moderator,
// voice and nothing to participant.
func (s *session) role(prefixes string) bridge.Role {
	modes, symbols := s.c.Support().Prefix()
	op := strings.IndexByte(modes, 'o')
	role := bridge.RoleParticipant
	for i := 0; i < len(prefixes); i++ {
		k := strings.IndexByte(symbols, prefixes[i])
		switch {
		case k < 0:
		case modes[k] == 'q':
			return bridge.RoleOwner
		case modes[k] == 'h' || op >= 0 && k <= op:
			role = bridge.RoleModerator
		}
	}
	return role
}

func (s *session) roomInfo(ch *channel) bridge.RoomInfo {
	info := bridge.RoomInfo{Name: ch.name, Subject: ch.topic, Nick: s.nick, Self: selfID}
	for _, mem := range ch.members {
		info.Participants = append(info.Participants, s.participant(mem))
	}
	return info
}

// channelOf returns the channel a message is for, with a STATUSMSG
// prefix ("@#chan") taken off; nil when the target is no channel of the
// user's.
func (s *session) channelOf(target string) (*channel, bool) {
	status := s.c.Support().StatusMsg()
	for len(target) > 1 && strings.IndexByte(status, target[0]) >= 0 && s.c.IsChannel(target[1:]) {
		target = target[1:]
	}
	if !s.c.IsChannel(target) {
		return nil, false
	}
	return s.chans[s.fold(target)], true
}

// serverTime is the time the server stamped a message with, zero for
// none.
func serverTime(m *ircconn.Message) time.Time {
	if v, ok := m.Tags["time"]; ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t
		}
	}
	return time.Time{}
}

// onText handles PRIVMSG and NOTICE. Notices of the server come one to
// one from the server's host as an id; those of services (NickServ…) and
// people from their nicks, so that users can answer them.
func (s *session) onText(m *ircconn.Message) []func() {
	if len(m.Params) < 2 {
		return nil
	}
	from, body := m.Nick(), m.Last()
	notice := m.Command == "NOTICE"
	action := false
	if cmd, arg, ok := ircconn.CTCP(body); ok {
		if cmd != "ACTION" {
			if !notice {
				s.answerCTCP(from, cmd, arg)
			}
			return nil
		}
		action, body = true, arg
	}
	msg := bridge.Message{ID: bridge.MessageID(m.Tags["msgid"]), Body: ircconn.StripFormatting(body), Action: action, Time: serverTime(m)}
	server := m.FromServer() || m.Source == s.c.Server()
	ch, isChan := s.channelOf(m.Param(0))
	switch {
	case isChan && (ch == nil || !ch.joined):
		return nil
	case isChan && server:
		return []func(){func() { s.ev.RoomMessage(ch.id, "", msg) }}
	case isChan:
		room, id := ch.id, s.idOf(from)
		if id == selfID {
			return nil
		}
		return []func(){func() { s.ev.RoomMessage(room, id, msg) }}
	case server:
		host := s.n.host
		return []func(){func() { s.ev.Message(host, msg) }}
	case s.isSelf(from):
		return nil
	}
	var out []func()
	if !notice {
		// A one-to-one message makes its sender a contact; notices are
		// what services and bots send.
		var monitor string
		out, monitor = s.exchanged(from)
		if monitor != "" {
			out = append(out, func() { go s.monitorLater(monitor) })
		}
	}
	return append(out, func() { s.ev.Message(bridge.UserID(from), msg) })
}

// answerCTCP answers the CTCP queries every client answers, one at a
// time: a flood of them is not answered beyond the first.
func (s *session) answerCTCP(to, cmd, arg string) {
	var reply string
	switch cmd {
	case "VERSION":
		reply = "Ambrosia IRC bridge (XMPP)"
	case "PING":
		reply = arg
	case "TIME":
		reply = time.Now().Format(time.RFC1123Z)
	case "CLIENTINFO":
		reply = "ACTION CLIENTINFO PING TIME VERSION"
	default:
		return
	}
	if !validNick(to) || !s.ctcp.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.ctcp.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.c.Notice(ctx, to, ircconn.FormatCTCP(cmd, reply))
	}()
}

func (s *session) onJoin(m *ircconn.Message) []func() {
	name, nick := m.Param(0), m.Nick()
	f := s.fold(name)
	ch := s.chans[f]
	if s.isSelf(nick) {
		if ch == nil {
			// Joined by the server (or by a command not from the bridge).
			ch = &channel{id: bridge.RoomID(name), members: map[string]*member{}}
			s.chans[f] = ch
		}
		ch.name = name
		ch.members[s.fold(nick)] = &member{nick: nick}
		return nil
	}
	if ch == nil {
		return nil
	}
	out := s.claim(nick, "")
	mem := &member{nick: nick}
	ch.members[s.fold(nick)] = mem
	if ch.joined {
		room, p := ch.id, s.participant(mem)
		out = append(out, func() { s.ev.RoomPresence(room, p) })
	}
	return out
}

func (s *session) onPart(m *ircconn.Message) []func() {
	return s.left(m.Param(0), m.Nick(), m.Param(1), "")
}

func (s *session) onKick(m *ircconn.Message) []func() {
	by := s.idOf(m.Nick())
	if m.FromServer() {
		by = bridge.UserID(m.Source)
	}
	return s.left(m.Param(0), m.Param(1), m.Param(2), by)
}

// left takes nick out of a channel: all of it when nick is the user.
func (s *session) left(name, nick, reason string, by bridge.UserID) []func() {
	f := s.fold(name)
	ch := s.chans[f]
	if ch == nil {
		return nil
	}
	reason = ircconn.StripFormatting(reason)
	id := s.idOf(nick)
	room, joined := ch.id, ch.joined
	if id == selfID {
		delete(s.chans, f)
		if ch.timer != nil {
			ch.timer.Stop()
		}
		for mf := range ch.members {
			s.forgetIfGone(mf)
		}
	} else {
		delete(ch.members, s.fold(nick))
		s.forgetIfGone(s.fold(nick))
	}
	if !joined {
		return nil
	}
	return []func(){func() { s.ev.RoomLeft(room, id, reason, by) }}
}

func (s *session) onQuit(m *ircconn.Message) []func() {
	nick := m.Nick()
	f := s.fold(nick)
	id := s.idOf(nick)
	reason := ircconn.StripFormatting(m.Param(0))
	var out []func()
	if c := s.contacts[f]; c != nil {
		out = s.setOnline(f, c, false)
	}
	for _, ch := range s.chans {
		if ch.members[f] == nil {
			continue
		}
		delete(ch.members, f)
		if ch.joined {
			room := ch.id
			out = append(out, func() { s.ev.RoomLeft(room, id, reason, "") })
		}
	}
	s.forgetIfGone(f)
	return out
}

// onNick follows a nick change in every channel: the person keeps their
// id, the user theirs.
func (s *session) onNick(m *ircconn.Message) []func() {
	old, nick := m.Nick(), m.Param(0)
	if nick == "" {
		return nil
	}
	fo, fn := s.fold(old), s.fold(nick)
	self := fo == s.fold(s.nick)
	var out []func()
	var id bridge.UserID
	if self {
		s.nick, id = nick, selfID
	} else {
		if fo != fn {
			out = s.claim(nick, old)
		}
		id = s.idOf(old)
		delete(s.ids, fo)
		if s.fold(string(id)) == fn {
			delete(s.nicks, fn)
		} else if s.shares(fo) {
			s.ids[fn] = id
			s.nicks[s.fold(string(id))] = nick
		}
		if msg, ok := s.away[fo]; ok {
			delete(s.away, fo)
			s.away[fn] = msg
		}
		// A contact is a nick: whoever leaves it is gone, whoever takes
		// it is there.
		if c := s.contacts[fo]; c != nil && fo != fn {
			out = append(out, s.setOnline(fo, c, false)...)
		}
		if c := s.contacts[fn]; c != nil && fo != fn {
			out = append(out, s.setOnline(fn, c, true)...)
		}
	}
	for _, ch := range s.chans {
		mem := ch.members[fo]
		if mem == nil {
			continue
		}
		delete(ch.members, fo)
		mem.nick = nick
		ch.members[fn] = mem
		if ch.joined {
			room := ch.id
			out = append(out, func() { s.ev.RoomNick(room, id, nick) })
		}
	}
	return out
}

func (s *session) onTopic(m *ircconn.Message) []func() {
	ch := s.chans[s.fold(m.Param(0))]
	if ch == nil {
		return nil
	}
	ch.topic = ircconn.StripFormatting(m.Param(1))
	if !ch.joined {
		return nil
	}
	room, topic := ch.id, ch.topic
	by := s.idOf(m.Nick())
	if m.FromServer() {
		by = ""
	}
	return []func(){func() { s.ev.RoomSubject(room, by, topic) }}
}

// onMode follows the membership modes (op, voice…) of a channel's
// members: each whose role changes is told again.
func (s *session) onMode(m *ircconn.Message) []func() {
	ch := s.chans[s.fold(m.Param(0))]
	if ch == nil || len(m.Params) < 2 {
		return nil
	}
	modes, symbols := s.c.Support().Prefix()
	list, always, whenSet, _ := s.c.Support().ChanModes()
	args := m.Params[2:]
	set := true
	changed := map[*member]bool{}
	for _, c := range []byte(m.Params[1]) {
		switch {
		case c == '+' || c == '-':
			set = c == '+'
			continue
		case strings.IndexByte(modes, c) >= 0:
		case strings.IndexByte(list+always, c) >= 0 || set && strings.IndexByte(whenSet, c) >= 0:
			if len(args) > 0 {
				args = args[1:]
			}
			continue
		default:
			continue
		}
		if len(args) == 0 {
			break
		}
		mem := ch.members[s.fold(args[0])]
		args = args[1:]
		if mem == nil {
			continue
		}
		sym := symbols[strings.IndexByte(modes, c)]
		before := s.role(mem.modes)
		mem.modes = strings.ReplaceAll(mem.modes, string(sym), "")
		if set {
			mem.modes = sortPrefixes(mem.modes+string(sym), symbols)
		}
		if s.role(mem.modes) != before {
			changed[mem] = true
		}
	}
	if !ch.joined {
		return nil
	}
	var out []func()
	for mem := range changed {
		// The user's own too: the bridge shows their standing.
		room, p := ch.id, s.participant(mem)
		out = append(out, func() { s.ev.RoomPresence(room, p) })
	}
	return out
}

// sortPrefixes orders membership prefixes by rank.
func sortPrefixes(prefixes, symbols string) string {
	var b []byte
	for i := 0; i < len(symbols); i++ {
		if strings.IndexByte(prefixes, symbols[i]) >= 0 {
			b = append(b, symbols[i])
		}
	}
	return string(b)
}

// onAway reports that someone went away (msg set) or came back, when it
// changes: to the user one to one, and in the channels they share.
func (s *session) onAway(nick, msg string) []func() {
	if nick == "" || s.isSelf(nick) {
		return nil
	}
	f := s.fold(nick)
	msg = ircconn.StripFormatting(msg)
	if prev, ok := s.away[f]; ok && prev == msg || !ok && msg == "" {
		return nil
	}
	s.away[f] = msg
	p := bridge.Presence{}
	if msg != "" {
		p = bridge.Presence{Show: bridge.Away, Status: msg}
	}
	out := []func(){func() { s.ev.Presence(bridge.UserID(nick), p) }}
	for _, ch := range s.chans {
		if mem := ch.members[f]; mem != nil && ch.joined {
			room, pp := ch.id, s.participant(mem)
			out = append(out, func() { s.ev.RoomPresence(room, pp) })
		}
	}
	return out
}

// onInvite tells the user who invites them where: an invitation to the
// channel's room.
func (s *session) onInvite(m *ircconn.Message) []func() {
	from, name := m.Nick(), m.Last()
	return []func(){func() { s.ev.RoomInvited(bridge.RoomID(name), bridge.UserID(from), "") }}
}

func (s *session) onNames(m *ircconn.Message) []func() {
	if len(m.Params) < 3 {
		return nil
	}
	ch := s.chans[s.fold(m.Params[len(m.Params)-2])]
	if ch == nil || ch.joined {
		return nil
	}
	_, symbols := s.c.Support().Prefix()
	var out []func()
	for _, name := range strings.Fields(m.Last()) {
		i := 0
		for i < len(name) && strings.IndexByte(symbols, name[i]) >= 0 {
			i++
		}
		nick, _, _ := strings.Cut(name[i:], "!") // userhost-in-names
		if nick == "" {
			continue
		}
		if !s.isSelf(nick) {
			out = append(out, s.claim(nick, "")...)
		}
		ch.members[s.fold(nick)] = &member{nick: nick, modes: sortPrefixes(name[:i], symbols)}
	}
	return out
}

func (s *session) onEndOfNames(m *ircconn.Message) []func() {
	ch := s.chans[s.fold(m.Param(1))]
	if ch == nil || ch.joined {
		return nil
	}
	ch.joined = true
	if ch.timer != nil {
		ch.timer.Stop()
	}
	if ch.members[s.fold(s.nick)] == nil {
		ch.members[s.fold(s.nick)] = &member{nick: s.nick}
	}
	room, info := ch.id, s.roomInfo(ch)
	return []func(){func() { s.ev.RoomJoined(room, info) }}
}

// joinErrors map the numerics that refuse a JOIN to the bridge's errors.
var joinErrors = map[string]error{
	"403": bridge.ErrNoSuchUser,     // no such channel
	"476": bridge.ErrNoSuchUser,     // bad channel mask
	"479": bridge.ErrNoSuchUser,     // illegal channel name
	"471": bridge.ErrUnavailable,    // the channel is full (+l)
	"437": bridge.ErrUnavailable,    // temporarily unavailable
	"473": bridge.ErrNotAllowed,     // invitation only (+i)
	"474": bridge.ErrNotAllowed,     // banned (+b)
	"405": bridge.ErrNotAllowed,     // in too many channels
	"477": bridge.ErrNotAllowed,     // a registered nick is needed
	"489": bridge.ErrNotAllowed,     // TLS is needed
	"475": bridge.ErrBadCredentials, // wrong key (+k)
}

func (s *session) onJoinError(m *ircconn.Message) []func() {
	f := s.fold(m.Param(1))
	ch := s.chans[f]
	if ch == nil || ch.joined {
		return nil
	}
	delete(s.chans, f)
	if ch.timer != nil {
		ch.timer.Stop()
	}
	room := ch.id
	err := fmt.Errorf("irc: %s: %s: %w", ch.name, m.Last(), joinErrors[m.Command])
	return []func(){func() { s.ev.RoomJoinFailed(room, err) }}
}
