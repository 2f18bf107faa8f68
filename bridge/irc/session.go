package irc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/irc/ircconn"
)

// selfID is the user's own id in every channel: not a nick (no nick
// holds '!'), so that it never names someone else, whatever nick the
// user has.
const selfID bridge.UserID = "!self"

const (
	// replyTimeout bounds the wait for the server's answer to a command.
	replyTimeout = 30 * time.Second
	// joinTimeout bounds the wait for a channel's names after a JOIN.
	joinTimeout = 60 * time.Second
)

// session is one XMPP user's connection to the IRC server.
//
// The people of the user's channels are told to the bridge under ids
// that stay the same while they change nicks (the bridge keys a room's
// participants by id): a person's id is the nick under which the session
// first saw them, until they are in none of its channels any more. One to
// one, people are always their current nick.
type session struct {
	n     *Network
	c     *ircconn.Conn
	ev    bridge.Events
	log   *slog.Logger
	ready chan struct{} // closed when Login returns the session
	done  chan struct{} // closed when the connection ended
	ctcp  atomic.Bool   // a CTCP answer is under way

	mu        sync.Mutex
	nick      string              // the user's nick now
	chans     map[string]*channel // by folded name
	ids       map[string]bridge.UserID
	nicks     map[string]string // folded id -> nick now; the reverse of ids
	away      map[string]string // folded nick -> away message last told
	myAway    string            // the AWAY message set, "" when back
	waiters   map[*waiter]bool
	contacts  map[string]*contact // by folded nick
	monitor   int                 // MONITOR's limit: -1 without MONITOR, 0 without a limit
	monitored int                 // the contacts MONITOR covers
	ison      [][]string          // the folded nicks of each ISON awaited, oldest first
	isonAt    time.Time           // when those ISONs were sent
	ping      int
	loggedOut bool
	endErr    error // why the connection ended, once it did
	retold    bool  // the end was reported again (see healthy)
}

type channel struct {
	id      bridge.RoomID // as the bridge named it
	name    string        // as the server spells it
	joined  bool          // its names are complete
	topic   string
	members map[string]*member // by folded nick
	timer   *time.Timer        // the join's timeout
}

type member struct {
	nick  string
	modes string // the membership prefixes, such as "@+"
}

// waiter is a session method waiting for the server's answer.
type waiter struct {
	match func(*ircconn.Message) (done bool, err error)
	ch    chan error
}

var (
	_ bridge.Session           = (*session)(nil)
	_ bridge.PresenceSetter    = (*session)(nil)
	_ bridge.RoomSession       = (*session)(nil)
	_ bridge.RoomSubjectSetter = (*session)(nil)
	_ bridge.RoomNickChanger   = (*session)(nil)
	_ bridge.RoomKicker        = (*session)(nil)
)

func newSession(n *Network, c *ircconn.Conn, ev bridge.Events, user string) *session {
	return &session{
		n: n, c: c, ev: ev, log: n.log.With("user", user),
		ready: make(chan struct{}), done: make(chan struct{}),
		nick: c.Nick(), chans: map[string]*channel{}, ids: map[string]bridge.UserID{}, nicks: map[string]string{},
		away: map[string]string{}, waiters: map[*waiter]bool{},
		contacts: map[string]*contact{}, monitor: monitorLimit(c.Support()),
	}
}

// run reads until the connection ends, then reports the end unless the
// user logged out.
func (s *session) run() {
	err := s.c.Serve(s.handle)
	if err == nil {
		err = ircconn.ErrClosed
	}
	s.mu.Lock()
	s.endErr = err
	for _, ch := range s.chans {
		if ch.timer != nil {
			ch.timer.Stop()
		}
	}
	loggedOut := s.loggedOut
	s.mu.Unlock()
	close(s.done)
	if loggedOut {
		return
	}
	s.log.Info("connection ended", "err", err)
	// Only once Login returned: the bridge knows the session then.
	<-s.ready
	s.ev.Disconnected(err)
}

// healthy returns nil while the connection lasts; after, it reports the
// end to the bridge once more (a session that ends just as its login
// returns may be reported before the bridge holds it) and returns
// bridge.ErrUnavailable.
func (s *session) healthy() error {
	s.mu.Lock()
	err := s.endErr
	again := err != nil && !s.retold && !s.loggedOut
	if again {
		s.retold = true
	}
	s.mu.Unlock()
	if err == nil {
		return nil
	}
	if again {
		s.ev.Disconnected(err)
	}
	return fmt.Errorf("irc: disconnected: %w", bridge.ErrUnavailable)
}

// send writes a command, with the bridge's error when it cannot.
func (s *session) send(ctx context.Context, command string, params ...string) error {
	if err := s.healthy(); err != nil {
		return err
	}
	return s.writeErr(ctx, s.c.Send(ctx, command, params...))
}

func (s *session) writeErr(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ircconn.ErrBadParam):
		return fmt.Errorf("irc: %w: %w", bridge.ErrNotAllowed, err)
	case ctx.Err() != nil:
		return fmt.Errorf("irc: %w", bridge.ErrTimeout)
	}
	return fmt.Errorf("irc: %w: %w", bridge.ErrUnavailable, err)
}

// await registers a waiter, runs send, and waits for the waiter's
// answer.
func (s *session) await(ctx context.Context, match func(*ircconn.Message) (bool, error), send func() error) error {
	if err := s.healthy(); err != nil {
		return err
	}
	w := &waiter{match: match, ch: make(chan error, 1)}
	s.mu.Lock()
	s.waiters[w] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, w)
		s.mu.Unlock()
	}()
	if err := send(); err != nil {
		return s.writeErr(ctx, err)
	}
	t := time.NewTimer(replyTimeout)
	defer t.Stop()
	select {
	case err := <-w.ch:
		return err
	case <-s.done:
		return fmt.Errorf("irc: disconnected: %w", bridge.ErrUnavailable)
	case <-ctx.Done():
		return fmt.Errorf("irc: %w", bridge.ErrTimeout)
	case <-t.C:
		return fmt.Errorf("irc: no answer from the server: %w", bridge.ErrTimeout)
	}
}

// fold is a name in the server's case mapping.
func (s *session) fold(name string) string { return s.c.Fold(name) }

// say sends text (an emote when action is set) to a nick or channel and
// waits until the server has taken it: a PING after it comes back once
// the server has handled the text, and errors about the target come
// before it.
func (s *session) say(ctx context.Context, target, text string, action bool) error {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	s.mu.Lock()
	s.ping++
	token := "ambrosia-" + strconv.Itoa(s.ping)
	s.mu.Unlock()
	ft := s.fold(target)
	match := func(m *ircconn.Message) (bool, error) {
		switch m.Command {
		case "PONG":
			return m.Last() == token, nil
		case "401", "403":
			if s.fold(m.Param(1)) == ft {
				return true, fmt.Errorf("irc: %s: %s: %w", target, m.Last(), bridge.ErrNoSuchUser)
			}
		case "404", "442", "486", "477", "489":
			if s.fold(m.Param(1)) == ft {
				return true, fmt.Errorf("irc: %s: %s: %w", target, m.Last(), bridge.ErrNotAllowed)
			}
		}
		return false, nil
	}
	return s.await(ctx, match, func() error {
		var err error
		if action {
			err = s.c.Action(ctx, target, text)
		} else {
			err = s.c.Privmsg(ctx, target, text)
		}
		if err != nil {
			return err
		}
		return s.c.Send(ctx, "PING", token)
	})
}

// text is what goes to IRC for a message: its body, and the addresses of
// its attachments that the body does not hold.
func text(m bridge.Message) string {
	t := m.Body
	for _, a := range m.Attachments {
		if a.URL != "" && !strings.Contains(t, a.URL) {
			if t != "" {
				t += "\n"
			}
			t += a.URL
		}
	}
	return t
}

// target is the nick now of an id the bridge gives: the user's own, a
// person's id in the channels, or a nick.
func (s *session) target(id bridge.UserID) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == selfID {
		return s.nick
	}
	f := s.fold(string(id))
	for _, ch := range s.chans {
		if ch.members[f] != nil {
			return string(id) // someone has that nick now: them
		}
	}
	if nick, ok := s.nicks[f]; ok {
		return nick
	}
	return string(id)
}

// SendMessage implements bridge.Session: a PRIVMSG, or CTCP ACTION for
// an emote. The server's own id takes no messages. The nick written to
// becomes a contact of the user once the server took the message; a nick
// nobody has is not online.
func (s *session) SendMessage(ctx context.Context, to bridge.UserID, m bridge.Message) (bridge.MessageID, error) {
	if to == s.n.host {
		return "", fmt.Errorf("irc: the server %s takes no messages: %w", to, bridge.ErrNotAllowed)
	}
	nick := s.target(to)
	if !validNick(nick) {
		return "", fmt.Errorf("irc: %q is not a nick: %w", nick, bridge.ErrNoSuchUser)
	}
	if strings.TrimSpace(text(m)) == "" {
		return "", nil
	}
	err := s.say(ctx, nick, text(m), m.Action)
	switch {
	case err == nil:
		s.sent(ctx, nick)
	case errors.Is(err, bridge.ErrNoSuchUser):
		s.contactGone(nick)
	}
	return "", err
}

// Logout implements bridge.Session: QUIT, and the connection closes.
func (s *session) Logout(ctx context.Context) error {
	s.mu.Lock()
	s.loggedOut = true
	s.mu.Unlock()
	err := s.c.Quit(ctx, "Logged out of XMPP")
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	if err != nil && !errors.Is(err, ircconn.ErrClosed) {
		return err
	}
	return nil
}

// SetPresence implements bridge.PresenceSetter: AWAY with the status
// (or a word for the show) when away, extended away or busy, AWAY alone
// when available; it returns once the server confirmed.
func (s *session) SetPresence(ctx context.Context, p bridge.Presence) error {
	if p.Offline {
		return nil
	}
	msg := ""
	switch p.Show {
	case bridge.Away, bridge.XA, bridge.DND:
		msg = strings.Join(strings.Fields(p.Status), " ")
		if msg == "" {
			msg = map[bridge.Show]string{bridge.Away: "Away", bridge.XA: "Extended away", bridge.DND: "Busy"}[p.Show]
		}
	}
	s.mu.Lock()
	same := s.myAway == msg
	s.myAway = msg
	s.mu.Unlock()
	if same {
		return nil
	}
	// The server confirms with RPL_UNAWAY (305) or RPL_NOWAWAY (306).
	match := func(m *ircconn.Message) (bool, error) { return m.Command == "305" || m.Command == "306", nil }
	return s.await(ctx, match, func() error {
		if msg == "" {
			return s.c.Send(ctx, "AWAY")
		}
		return s.c.Send(ctx, "AWAY", msg)
	})
}

// validChannel reports whether name may be sent as a channel.
func validChannel(name string) bool {
	return len(name) > 1 && len(name) <= 200 && strings.IndexByte("#&+!", name[0]) >= 0 && !strings.ContainsAny(name, " ,\x07\r\n\x00")
}

// JoinRoom implements bridge.RoomSession: JOIN with the key; the names
// that follow (353, then 366) make RoomJoined, with the topic (332). IRC
// has one nick for every channel: the user keeps theirs, whatever nick
// was asked for (RoomInfo.Nick says which).
func (s *session) JoinRoom(ctx context.Context, room bridge.RoomID, nick, password string) error {
	name := string(room)
	if !validChannel(name) {
		return fmt.Errorf("irc: %q is not a channel: %w", name, bridge.ErrNoSuchUser)
	}
	if err := s.healthy(); err != nil {
		return err
	}
	f := s.fold(name)
	s.mu.Lock()
	if ch := s.chans[f]; ch != nil {
		if !ch.joined {
			s.mu.Unlock()
			return nil // the server answers the JOIN under way
		}
		// Already in it (another client of the user's joined it): the
		// server would not answer a JOIN.
		ch.id = room
		info := s.roomInfo(ch)
		s.mu.Unlock()
		s.ev.RoomJoined(room, info)
		return nil
	}
	ch := &channel{id: room, name: name, members: map[string]*member{}}
	ch.timer = time.AfterFunc(joinTimeout, func() { s.joinTimedOut(ch) })
	s.chans[f] = ch
	s.mu.Unlock()
	params := []string{name}
	if password != "" {
		params = append(params, password)
	}
	if err := s.send(ctx, "JOIN", params...); err != nil {
		s.mu.Lock()
		if s.chans[f] == ch {
			delete(s.chans, f)
		}
		ch.timer.Stop()
		s.mu.Unlock()
		return err
	}
	return nil
}

func (s *session) joinTimedOut(ch *channel) {
	s.mu.Lock()
	f := s.fold(ch.name)
	stale := s.chans[f] != ch || ch.joined || s.endErr != nil
	if !stale {
		delete(s.chans, f)
	}
	s.mu.Unlock()
	if !stale {
		s.ev.RoomJoinFailed(ch.id, fmt.Errorf("irc: %s: no answer to JOIN: %w", ch.name, bridge.ErrTimeout))
	}
}

// LeaveRoom implements bridge.RoomSession: PART.
func (s *session) LeaveRoom(ctx context.Context, room bridge.RoomID) error {
	f := s.fold(string(room))
	s.mu.Lock()
	ch := s.chans[f]
	if ch == nil {
		s.mu.Unlock()
		return nil
	}
	delete(s.chans, f)
	if ch.timer != nil {
		ch.timer.Stop()
	}
	for mf := range ch.members {
		s.forgetIfGone(mf)
	}
	s.mu.Unlock()
	return s.send(ctx, "PART", ch.name)
}

// SendRoomMessage implements bridge.RoomSession.
func (s *session) SendRoomMessage(ctx context.Context, room bridge.RoomID, m bridge.Message) (bridge.MessageID, error) {
	return "", s.say(ctx, s.channelName(room), text(m), m.Action)
}

// channelName is a channel's name as the server spells it.
func (s *session) channelName(room bridge.RoomID) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.chans[s.fold(string(room))]; ch != nil {
		return ch.name
	}
	return string(room)
}

// SetRoomSubject implements bridge.RoomSubjectSetter: TOPIC, answered by
// the server with the TOPIC it sends every member (RoomSubject), or with
// a refusal.
func (s *session) SetRoomSubject(ctx context.Context, room bridge.RoomID, subject string) error {
	name := s.channelName(room)
	f := s.fold(name)
	subject = strings.Join(strings.Fields(subject), " ")
	match := func(m *ircconn.Message) (bool, error) {
		switch m.Command {
		case "TOPIC":
			return s.fold(m.Param(0)) == f && s.isSelf(m.Nick()), nil
		case "482", "442", "477":
			if s.fold(m.Param(1)) == f {
				return true, fmt.Errorf("irc: %s: %s: %w", name, m.Last(), bridge.ErrNotAllowed)
			}
		case "403":
			if s.fold(m.Param(1)) == f {
				return true, fmt.Errorf("irc: %s: %w", name, bridge.ErrNoSuchUser)
			}
		}
		return false, nil
	}
	return s.await(ctx, match, func() error { return s.c.Send(ctx, "TOPIC", name, subject) })
}

// isSelf reports whether nick is the user's; s.mu is held (waiters run
// under it).
func (s *session) isSelf(nick string) bool { return s.fold(nick) == s.fold(s.nick) }

// SetRoomNick implements bridge.RoomNickChanger. IRC has one nick for
// every channel: NICK changes it in all of them (RoomNick for each).
func (s *session) SetRoomNick(ctx context.Context, room bridge.RoomID, nick string) error {
	if !validNick(nick) {
		return fmt.Errorf("irc: %q cannot be a nick: %w", nick, bridge.ErrNotAllowed)
	}
	s.mu.Lock()
	old := s.nick
	s.mu.Unlock()
	if old == nick {
		return nil
	}
	fo := s.fold(old)
	match := func(m *ircconn.Message) (bool, error) {
		switch m.Command {
		case "NICK":
			return s.fold(m.Nick()) == fo, nil
		case "433", "436":
			return true, fmt.Errorf("irc: %s: %s: %w", nick, m.Last(), bridge.ErrConflict)
		case "431", "432", "435", "437", "438", "447", "484":
			return true, fmt.Errorf("irc: %s: %s: %w", nick, m.Last(), bridge.ErrNotAllowed)
		}
		return false, nil
	}
	return s.await(ctx, match, func() error { return s.c.Send(ctx, "NICK", nick) })
}

// Kick implements bridge.RoomKicker: KICK, answered with the KICK the
// server sends every member (RoomLeft), or a refusal.
func (s *session) Kick(ctx context.Context, room bridge.RoomID, user bridge.UserID, reason string) error {
	name := s.channelName(room)
	nick := s.target(user)
	f, fn := s.fold(name), s.fold(nick)
	match := func(m *ircconn.Message) (bool, error) {
		switch m.Command {
		case "KICK":
			return s.fold(m.Param(0)) == f && s.fold(m.Param(1)) == fn, nil
		case "482", "442":
			if s.fold(m.Param(1)) == f {
				return true, fmt.Errorf("irc: %s: %s: %w", name, m.Last(), bridge.ErrNotAllowed)
			}
		case "441", "401":
			if s.fold(m.Param(1)) == fn {
				return true, fmt.Errorf("irc: %s: %s: %w", nick, m.Last(), bridge.ErrNoSuchUser)
			}
		case "403":
			if s.fold(m.Param(1)) == f {
				return true, fmt.Errorf("irc: %s: %w", name, bridge.ErrNoSuchUser)
			}
		}
		return false, nil
	}
	params := []string{name, nick}
	if reason = strings.Join(strings.Fields(reason), " "); reason != "" {
		params = append(params, reason)
	}
	if !validNick(nick) {
		return fmt.Errorf("irc: %q is not a nick: %w", nick, bridge.ErrNoSuchUser)
	}
	return s.await(ctx, match, func() error { return s.c.Send(ctx, "KICK", params...) })
}
