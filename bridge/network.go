package bridge

import (
	"context"
	"errors"
)

// Network is a chat system bridged to XMPP, as its bridge's author writes
// it. A Network only knows its own system: addresses, stanzas, rosters,
// rooms and queues are the bridge's business.
type Network interface {
	// Describe says what the network is and how users reach it.
	Describe() Description
	// Login opens a session on the network for an XMPP user: with the
	// credentials the user registered, for a transport; on the user's
	// first contact, for a network in Puppet mode. What happens on the
	// network for that user is reported to events, from any goroutine,
	// until the session ends. Login should return once logged in.
	Login(ctx context.Context, user Account, events Events) (Session, error)
}

// Mode is how XMPP users meet the network.
type Mode int

// The values of Mode.
const (
	// Puppet: the network's users appear as XMPP addresses of the
	// bridge's domain that any XMPP user may write to and subscribe to;
	// nobody registers.
	Puppet Mode = iota
	// Transport (XEP-0100): each XMPP user registers credentials of their
	// own account on the network, and the bridge logs in with them while
	// the user is online.
	Transport
)

// Description is what the bridge tells XMPP about the network.
type Description struct {
	// Name is shown to users, e.g. "IRC".
	Name string
	// Type is the gateway type of XEP-0100's registry ("irc", "smtp",
	// "sms", …), for clients' icons.
	Type string
	Mode Mode
	// Registration lists the fields a Transport asks users for.
	Registration []Field
	// Instructions accompany the registration form.
	Instructions string
	// StayOnline keeps a Transport user's session on the network while the
	// user is offline, as an IRC bouncer does: what comes meanwhile is
	// kept, and delivered with its time when the user is back.
	StayOnline bool
	// Session is a zero value of the network's session type, such as
	// (*mySession)(nil): the bridge asks it which optional interfaces
	// sessions implement, to announce them before anyone logged in.
	Session Session
}

// Field is one field of the registration form, or of a Form of a login
// in steps (see LoginFlows).
type Field struct {
	// Name is the key in Account.Credentials, or in the values a Form's
	// Submit is given.
	Name     string
	Label    string
	Required bool
	// Secret fields (passwords) are shown masked and stored encrypted.
	Secret bool
	// Choices, when not empty, are the values the field may take, offered
	// as a list; the bridge refuses any other.
	Choices []string
}

// Account is the XMPP user a session is for.
type Account struct {
	// JID is the user's bare JID.
	JID string
	// Credentials are what the user registered, by field name; nil in
	// Puppet mode.
	Credentials map[string]string
	// Contacts are the users of the network the bridge put in the user's
	// roster (Events.Contact and ContactLister) and has not taken out
	// since, nor seen the user remove where the server tells (XEP-0356
	// roster pushes): a network without contact lists of its own, such
	// as IRC, may follow their presence.
	Contacts []UserID
}

// Session is one user's connection to the network.
type Session interface {
	// SendMessage sends a one-to-one message and returns the network's id
	// for it ("" if it gives none). Errors wrapping ErrNoSuchUser,
	// ErrUnavailable, ErrTimeout or ErrNotAllowed become the matching XMPP
	// errors; others are reported as internal errors.
	SendMessage(ctx context.Context, to UserID, m Message) (MessageID, error)
	// Logout ends the session.
	Logout(ctx context.Context) error
}

// What a session may do beyond one-to-one text. The bridge detects each
// by type assertion and announces exactly those to XMPP.
type (
	// PresenceSetter publishes the user's own availability.
	PresenceSetter interface {
		SetPresence(ctx context.Context, p Presence) error
	}
	// ContactLister lists the user's contacts, which the bridge puts in
	// the user's roster.
	ContactLister interface {
		Contacts(ctx context.Context) ([]Contact, error)
	}
	// ChatStateSender sends typing notifications.
	ChatStateSender interface {
		SendChatState(ctx context.Context, to UserID, s ChatState) error
	}
	// Reactor sends reactions.
	Reactor interface {
		React(ctx context.Context, to UserID, r Reaction) error
	}
	// Editor sends corrections: m.Replaces names the message corrected.
	Editor interface {
		EditMessage(ctx context.Context, to UserID, m Message) error
	}
	// Retractor retracts messages the user sent.
	Retractor interface {
		Retract(ctx context.Context, to UserID, id MessageID) error
	}
	// Marker tells the other side a message was displayed (XEP-0333).
	Marker interface {
		MarkDisplayed(ctx context.Context, to UserID, id MessageID) error
	}
	// RoomSession takes part in the network's group chats, which XMPP
	// users see as rooms of the bridge's domain.
	RoomSession interface {
		// JoinRoom joins; the outcome is reported with Events.RoomJoined.
		JoinRoom(ctx context.Context, room RoomID, nick, password string) error
		LeaveRoom(ctx context.Context, room RoomID) error
		SendRoomMessage(ctx context.Context, room RoomID, m Message) (MessageID, error)
	}
	// RoomSubjectSetter changes a room's subject (an IRC topic).
	RoomSubjectSetter interface {
		SetRoomSubject(ctx context.Context, room RoomID, subject string) error
	}
	// RoomNickChanger changes the user's nick in a room.
	RoomNickChanger interface {
		SetRoomNick(ctx context.Context, room RoomID, nick string) error
	}
	// RoomKicker removes a participant from a room.
	RoomKicker interface {
		Kick(ctx context.Context, room RoomID, user UserID, reason string) error
	}
)

// Starter is implemented by a Network that needs the bridge before any
// user logs in: a cooperative system that writes to XMPP users on its own
// initiative gets each user's Events from b.
type Starter interface {
	Start(ctx context.Context, b *Bridge) error
}

// Events is how a session reports what happens on the network. The
// methods may be called from any goroutine; each returns once the event
// is safely queued for XMPP, so a session may acknowledge it to its
// network then.
type Events interface {
	// Message is a one-to-one message from a user of the network.
	Message(from UserID, m Message)
	// Sent is a message the XMPP user sent from another client of the
	// network, shown to their XMPP clients as their own (XEP-0280).
	Sent(to UserID, m Message)
	Presence(from UserID, p Presence)
	ChatState(from UserID, s ChatState)
	Reaction(from UserID, r Reaction)
	Retraction(from UserID, id MessageID)
	// Displayed is a read marker for a message the XMPP user sent.
	Displayed(from UserID, id MessageID)
	// Contact adds or updates a contact of the user; ContactRemoved
	// removes one.
	Contact(c Contact)
	ContactRemoved(id UserID)

	// RoomJoined reports that the user is in the room, with who is there.
	RoomJoined(room RoomID, info RoomInfo)
	// RoomJoinFailed reports that a join was refused; err wraps one of
	// the errors of this package where one fits.
	RoomJoinFailed(room RoomID, err error)
	RoomMessage(room RoomID, from UserID, m Message)
	// RoomPresence reports a participant that came, or changed; for
	// the user's own id (RoomInfo.Self), only the role counts, which
	// becomes the user's role in the room.
	RoomPresence(room RoomID, p Participant)
	// RoomLeft reports a participant that went: kickedBy is set for a
	// kick. When user is the XMPP user's own id, the user is out.
	RoomLeft(room RoomID, user UserID, reason string, kickedBy UserID)
	RoomNick(room RoomID, user UserID, nick string)
	RoomSubject(room RoomID, by UserID, subject string)
	// RoomInvited reports that someone invites the user to a room.
	RoomInvited(room RoomID, from UserID, reason string)

	// Disconnected reports that the session ended on its own; the bridge
	// logs in again, waiting longer after each failure.
	Disconnected(err error)
}

// Errors a session returns, wrapped or not, for the XMPP errors users
// see.
var (
	// ErrNoSuchUser: no user or room of the network has that id
	// (item-not-found).
	ErrNoSuchUser = errors.New("bridge: no such user or room")
	// ErrUnavailable: the addressee cannot receive now
	// (recipient-unavailable).
	ErrUnavailable = errors.New("bridge: recipient unavailable")
	// ErrTimeout: the network did not answer (remote-server-timeout).
	ErrTimeout = errors.New("bridge: the network timed out")
	// ErrNotAllowed: the network refused (forbidden).
	ErrNotAllowed = errors.New("bridge: not allowed by the network")
	// ErrBadCredentials: a login, or a room's password, was refused
	// (not-authorized).
	ErrBadCredentials = errors.New("bridge: credentials refused")
	// ErrConflict: a name is taken, such as a nick (conflict).
	ErrConflict = errors.New("bridge: the name is taken")
)
