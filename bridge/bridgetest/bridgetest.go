// Package bridgetest is a network held in memory, for testing bridges
// and the bridge package itself: a Network with every optional feature,
// logins in steps included, whose tests make its users act (write,
// react, join, kick, scan a QR code) and read what XMPP users sent them.
package bridgetest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
)

// Sent is something an XMPP user did on the network.
type Sent struct {
	// User is the XMPP user's bare JID.
	User string
	// What is "message", "edit", "react", "retract", "state", "displayed",
	// "room", "subject", "nick", "kick", "join", "leave" or "presence".
	What    string
	To      bridge.UserID
	Room    bridge.RoomID
	Message bridge.Message
	Text    string // the state, subject, nick, reason or emoji set
	ID      bridge.MessageID
}

// Network is the network in memory. Its zero value is not usable; call
// New.
type Network struct {
	mode bridge.Mode
	// Sent receives what XMPP users do, in order.
	Sent chan Sent

	mu        sync.Mutex
	users     map[bridge.UserID]bool // users that exist
	away      map[bridge.UserID]bool // users that cannot receive
	passwords map[string]string      // Transport: password of each username
	codes     map[string]string      // the code a username's login needs besides the password
	tokens    map[string]string      // the token a login in steps gave each username
	links     map[string]chan string // the QR codes shown, to the logins waiting for a scan
	contacts  []bridge.Contact
	rooms     map[bridge.RoomID][]bridge.Participant
	subjects  map[bridge.RoomID]string
	sessions  map[string]*Session // by XMPP user
	seq       int
	logins    int
}

// New returns an empty network in the given mode.
func New(mode bridge.Mode) *Network {
	return &Network{mode: mode, Sent: make(chan Sent, 1000), users: map[bridge.UserID]bool{}, away: map[bridge.UserID]bool{},
		passwords: map[string]string{}, codes: map[string]string{}, tokens: map[string]string{}, links: map[string]chan string{},
		rooms: map[bridge.RoomID][]bridge.Participant{}, subjects: map[bridge.RoomID]string{}, sessions: map[string]*Session{}}
}

// AddUser makes a user of the network exist; away users cannot receive.
func (n *Network) AddUser(id bridge.UserID, away bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.users[id] = true
	n.away[id] = away
}

// SetPassword sets the password a Transport login with username needs.
func (n *Network) SetPassword(username, password string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.passwords[username] = password
}

// SetCode makes the login of username need code besides the password,
// as a code sent by SMS would: the login in steps asks for it, and a
// login with the password alone (as registration with XEP-0077 makes) is
// refused.
func (n *Network) SetCode(username, code string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.codes[username] = code
}

// Scan stands for the app of username, a user of the network, scanning
// the QR code whose text is data: the login in steps that shows it ends,
// logged in as username. It reports false if no login shows that code.
func (n *Network) Scan(data, username string) bool {
	n.mu.Lock()
	ch := n.links[data]
	delete(n.links, data)
	n.mu.Unlock()
	if ch == nil {
		return false
	}
	ch <- username
	return true
}

// SetContacts sets the contacts every session lists.
func (n *Network) SetContacts(cs ...bridge.Contact) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.contacts = cs
}

// SetRoom makes a room with its participants and subject.
func (n *Network) SetRoom(id bridge.RoomID, subject string, ps ...bridge.Participant) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rooms[id] = ps
	n.subjects[id] = subject
}

// Session returns the session of an XMPP user, nil if there is none.
func (n *Network) Session(user string) *Session {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sessions[user]
}

// Logins counts the sessions opened so far, by Login or by a login in
// steps.
func (n *Network) Logins() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logins
}

// Describe implements bridge.Network.
func (n *Network) Describe() bridge.Description {
	return bridge.Description{
		Name: "Memory", Type: "test", Mode: n.mode,
		Registration: []bridge.Field{{Name: "username", Label: "User name", Required: true}, {Name: "password", Label: "Password", Required: true, Secret: true}},
		Session:      (*Session)(nil),
	}
}

// Login implements bridge.Network: a Transport login needs the password
// set with SetPassword, or the token a login in steps gave; a user with a
// code (SetCode) needs the token.
func (n *Network) Login(ctx context.Context, acct bridge.Account, ev bridge.Events) (bridge.Session, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mode == bridge.Transport {
		name := acct.Credentials["username"]
		switch tok, ok := n.tokens[name]; {
		case acct.Credentials["token"] != "":
			if !ok || tok != acct.Credentials["token"] {
				return nil, fmt.Errorf("login of %s: the token: %w", name, bridge.ErrBadCredentials)
			}
		case n.codes[name] != "":
			return nil, fmt.Errorf("login of %s: a code is needed too, in the login command: %w", name, bridge.ErrBadCredentials)
		default:
			if pw, ok := n.passwords[name]; !ok || pw != acct.Credentials["password"] {
				return nil, fmt.Errorf("login of %s: %w", name, bridge.ErrBadCredentials)
			}
		}
	}
	s := &Session{n: n, user: acct.JID, acct: acct, ev: ev, self: bridge.UserID(acct.Credentials["username"])}
	if s.self == "" {
		s.self = bridge.UserID(acct.JID)
	}
	n.sessions[acct.JID] = s
	n.logins++
	return s, nil
}

// StartLogin implements bridge.LoginFlows. The user first chooses how
// to log in. "password" asks for the username and the password, then for
// the code set with SetCode if there is one, and ends with a session
// open. "qr" shows a QR code, which Scan confirms, and ends with no
// session. Either way the credentials kept are the username and a token,
// which Login takes without any step.
func (n *Network) StartLogin(ctx context.Context, acct bridge.Account, ev bridge.Events) (bridge.Step, error) {
	return &bridge.Form{
		Instructions: "Choose how to log in.",
		Fields:       []bridge.Field{{Name: "method", Label: "Method", Required: true, Choices: []string{"password", "qr"}}},
		Submit: func(_ context.Context, v map[string]string) (bridge.Step, error) {
			if v["method"] == "qr" {
				// The login's ctx, not Submit's: the QR code is shown
				// until the login ends.
				return n.qrStep(ctx, acct, ev), nil
			}
			return n.passwordStep(acct, ev), nil
		},
	}, nil
}

func (n *Network) passwordStep(acct bridge.Account, ev bridge.Events) *bridge.Form {
	return &bridge.Form{
		Instructions: "Enter your Memory account.",
		Fields:       []bridge.Field{{Name: "username", Label: "User name", Required: true}, {Name: "password", Label: "Password", Required: true, Secret: true}},
		Submit: func(_ context.Context, v map[string]string) (bridge.Step, error) {
			name := v["username"]
			n.mu.Lock()
			pw, ok := n.passwords[name]
			code := n.codes[name]
			n.mu.Unlock()
			if !ok || pw != v["password"] {
				return nil, fmt.Errorf("login of %s: %w", name, bridge.ErrBadCredentials)
			}
			if code == "" {
				return n.done(acct, ev, name, true), nil
			}
			return &bridge.Form{
				Instructions: "Enter the code Memory sent you.",
				Fields:       []bridge.Field{{Name: "code", Label: "Code", Required: true}},
				Submit: func(_ context.Context, v map[string]string) (bridge.Step, error) {
					if v["code"] != code {
						return nil, fmt.Errorf("the code %s: %w", v["code"], bridge.ErrBadCredentials)
					}
					return n.done(acct, ev, name, true), nil
				},
			}, nil
		},
	}
}

// qrStep shows a QR code until it is scanned or the login (ctx) ends.
func (n *Network) qrStep(ctx context.Context, acct bridge.Account, ev bridge.Events) *bridge.Display {
	n.mu.Lock()
	n.seq++
	data := fmt.Sprintf("memory:link:%d", n.seq)
	scanned := make(chan string, 1)
	n.links[data] = scanned
	n.mu.Unlock()
	context.AfterFunc(ctx, func() {
		n.mu.Lock()
		delete(n.links, data)
		n.mu.Unlock()
	})
	return &bridge.Display{
		Instructions: "Scan the QR code with the Memory app.",
		Code:         data,
		QR:           true,
		Wait: func(ctx context.Context) (bridge.Step, error) {
			select {
			case name := <-scanned:
				return n.done(acct, ev, name, false), nil
			case <-ctx.Done():
				return nil, fmt.Errorf("the QR code was not scanned: %w", bridge.ErrTimeout)
			}
		},
	}
}

// done ends a login in steps as username, with a new token, and a
// session open if withSession.
func (n *Network) done(acct bridge.Account, ev bridge.Events, username string, withSession bool) *bridge.Done {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seq++
	tok := fmt.Sprintf("token-%d", n.seq)
	n.tokens[username] = tok
	d := &bridge.Done{Credentials: map[string]string{"username": username, "token": tok}}
	if withSession {
		s := &Session{n: n, user: acct.JID, ev: ev, self: bridge.UserID(username)}
		n.sessions[acct.JID] = s
		n.logins++
		d.Session = s
	}
	return d
}

// Session is one XMPP user's session on the network in memory.
type Session struct {
	n    *Network
	user string
	acct bridge.Account
	self bridge.UserID
	ev   bridge.Events

	mu     sync.Mutex
	closed bool
}

// Events returns what the session reports to, for tests to make the
// network's users act.
func (s *Session) Events() bridge.Events { return s.ev }

// Account is what the bridge logged the session in with.
func (s *Session) Account() bridge.Account { return s.acct }

// Closed reports whether the session logged out.
func (s *Session) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Session) record(x Sent) {
	x.User = s.user
	s.n.Sent <- x
}

func (s *Session) check(to bridge.UserID) error {
	s.n.mu.Lock()
	defer s.n.mu.Unlock()
	if !s.n.users[to] {
		return fmt.Errorf("%s: %w", to, bridge.ErrNoSuchUser)
	}
	if s.n.away[to] {
		return fmt.Errorf("%s: %w", to, bridge.ErrUnavailable)
	}
	return nil
}

func (s *Session) nextID() bridge.MessageID {
	s.n.mu.Lock()
	defer s.n.mu.Unlock()
	s.n.seq++
	return bridge.MessageID(fmt.Sprintf("mem-%d", s.n.seq))
}

// SendMessage implements bridge.Session.
func (s *Session) SendMessage(ctx context.Context, to bridge.UserID, m bridge.Message) (bridge.MessageID, error) {
	if err := s.check(to); err != nil {
		return "", err
	}
	id := s.nextID()
	s.record(Sent{What: "message", To: to, Message: m, ID: id})
	return id, nil
}

// Logout implements bridge.Session.
func (s *Session) Logout(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.n.mu.Lock()
	if s.n.sessions[s.user] == s {
		delete(s.n.sessions, s.user)
	}
	s.n.mu.Unlock()
	return nil
}

// SetPresence implements bridge.PresenceSetter.
func (s *Session) SetPresence(ctx context.Context, p bridge.Presence) error {
	s.record(Sent{What: "presence", Text: string(p.Show)})
	return nil
}

// Contacts implements bridge.ContactLister.
func (s *Session) Contacts(ctx context.Context) ([]bridge.Contact, error) {
	s.n.mu.Lock()
	defer s.n.mu.Unlock()
	return slices.Clone(s.n.contacts), nil
}

// SendChatState implements bridge.ChatStateSender.
func (s *Session) SendChatState(ctx context.Context, to bridge.UserID, st bridge.ChatState) error {
	s.record(Sent{What: "state", To: to, Text: string(st)})
	return nil
}

// React implements bridge.Reactor.
func (s *Session) React(ctx context.Context, to bridge.UserID, r bridge.Reaction) error {
	s.record(Sent{What: "react", To: to, ID: r.To, Text: fmt.Sprint(r.Emojis)})
	return nil
}

// EditMessage implements bridge.Editor.
func (s *Session) EditMessage(ctx context.Context, to bridge.UserID, m bridge.Message) error {
	s.record(Sent{What: "edit", To: to, Message: m, ID: m.Replaces})
	return nil
}

// Retract implements bridge.Retractor.
func (s *Session) Retract(ctx context.Context, to bridge.UserID, id bridge.MessageID) error {
	s.record(Sent{What: "retract", To: to, ID: id})
	return nil
}

// MarkDisplayed implements bridge.Marker.
func (s *Session) MarkDisplayed(ctx context.Context, to bridge.UserID, id bridge.MessageID) error {
	s.record(Sent{What: "displayed", To: to, ID: id})
	return nil
}

// JoinRoom implements bridge.RoomSession: a room set with SetRoom is
// joined with its participants; another is refused.
func (s *Session) JoinRoom(ctx context.Context, room bridge.RoomID, nick, password string) error {
	s.n.mu.Lock()
	ps, ok := s.n.rooms[room]
	subject := s.n.subjects[room]
	s.n.mu.Unlock()
	s.record(Sent{What: "join", Room: room, Text: nick})
	if !ok {
		go s.ev.RoomJoinFailed(room, fmt.Errorf("%s: %w", room, bridge.ErrNoSuchUser))
		return nil
	}
	info := bridge.RoomInfo{Subject: subject, Nick: nick, Self: s.self, Participants: append(slices.Clone(ps), bridge.Participant{ID: s.self, Nick: nick})}
	go s.ev.RoomJoined(room, info)
	return nil
}

// LeaveRoom implements bridge.RoomSession.
func (s *Session) LeaveRoom(ctx context.Context, room bridge.RoomID) error {
	s.record(Sent{What: "leave", Room: room})
	return nil
}

// SendRoomMessage implements bridge.RoomSession.
func (s *Session) SendRoomMessage(ctx context.Context, room bridge.RoomID, m bridge.Message) (bridge.MessageID, error) {
	id := s.nextID()
	s.record(Sent{What: "room", Room: room, Message: m, ID: id})
	return id, nil
}

// SetRoomSubject implements bridge.RoomSubjectSetter; the network
// reports the change back, as IRC does.
func (s *Session) SetRoomSubject(ctx context.Context, room bridge.RoomID, subject string) error {
	s.record(Sent{What: "subject", Room: room, Text: subject})
	go s.ev.RoomSubject(room, s.self, subject)
	return nil
}

// SetRoomNick implements bridge.RoomNickChanger.
func (s *Session) SetRoomNick(ctx context.Context, room bridge.RoomID, nick string) error {
	s.record(Sent{What: "nick", Room: room, Text: nick})
	go s.ev.RoomNick(room, s.self, nick)
	return nil
}

// Kick implements bridge.RoomKicker.
func (s *Session) Kick(ctx context.Context, room bridge.RoomID, user bridge.UserID, reason string) error {
	s.record(Sent{What: "kick", Room: room, To: user, Text: reason})
	go s.ev.RoomLeft(room, user, reason, s.self)
	return nil
}

var (
	_ bridge.Network           = (*Network)(nil)
	_ bridge.LoginFlows        = (*Network)(nil)
	_ bridge.PresenceSetter    = (*Session)(nil)
	_ bridge.ContactLister     = (*Session)(nil)
	_ bridge.ChatStateSender   = (*Session)(nil)
	_ bridge.Reactor           = (*Session)(nil)
	_ bridge.Editor            = (*Session)(nil)
	_ bridge.Retractor         = (*Session)(nil)
	_ bridge.Marker            = (*Session)(nil)
	_ bridge.RoomSession       = (*Session)(nil)
	_ bridge.RoomSubjectSetter = (*Session)(nil)
	_ bridge.RoomNickChanger   = (*Session)(nil)
	_ bridge.RoomKicker        = (*Session)(nil)
)
