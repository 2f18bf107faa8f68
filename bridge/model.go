package bridge

import "time"

// UserID names a user of the other network: its own identifier, whatever
// characters it holds (a nick, an e-mail address, a number). On XMPP it
// becomes the localpart of an address in the bridge's domain, escaped as
// XEP-0106 says.
type UserID string

// RoomID names a group chat of the other network; on XMPP it is the
// localpart of a room in the bridge's domain.
type RoomID string

// MessageID is the identifier the other network gives a message, for
// corrections, replies, reactions and retractions. The bridge keeps the
// map between these and XMPP's ids, across restarts.
type MessageID string

// Show is the availability of a user (RFC 6121 §4.7.2.1).
type Show string

// The values of Show; Available is the plain available presence.
const (
	Available Show = ""
	Away      Show = "away"
	Chat      Show = "chat"
	DND       Show = "dnd"
	XA        Show = "xa"
)

// Presence is a user's availability and status.
type Presence struct {
	// Offline is an unavailable user; Show and Status are then ignored.
	Offline bool
	Show    Show
	Status  string
	// Avatar, when not nil, is the user's picture; an empty Data removes
	// it.
	Avatar *Avatar
}

// Avatar is a user's picture.
type Avatar struct {
	// Type is the media type, such as image/png.
	Type string
	Data []byte
}

// Attachment is a file shared in a message, as a link (XEP-0066, and
// XEP-0447 for what clients show inline).
type Attachment struct {
	URL       string
	Name      string
	MediaType string
	Size      int64
}

// Extension is an XMPP payload the model does not know, carried
// unchanged: a message that goes from XMPP to the other network and comes
// back keeps it, so a bridge relays extensions it does not understand.
type Extension struct {
	// XML is one serialized element with its namespace declared.
	XML string
}

// Message is one chat message, in either direction.
type Message struct {
	// ID is the other network's id of a message from it; a network that
	// has none may leave it empty, and the bridge makes one up. On a
	// message from XMPP it is the XMPP id, the same when a crash of the
	// bridge makes it send the message again, so that a network may drop
	// the copy.
	ID MessageID
	// Body is the text.
	Body string
	// Action is an emote ("/me waves"): Body holds "waves".
	Action bool
	// Replaces, when set, makes this a correction of that message
	// (XEP-0308).
	Replaces MessageID
	// ReplyTo, when set, answers that message (XEP-0461).
	ReplyTo MessageID
	// Attachments are files shared with the message.
	Attachments []Attachment
	// Extensions are XMPP payloads the model does not know.
	Extensions []Extension
	// Time is when it was sent, zero for now; an earlier time is stamped
	// as delayed (XEP-0203).
	Time time.Time
}

// ChatState is typing notification (XEP-0085).
type ChatState string

// The values of ChatState.
const (
	Active    ChatState = "active"
	Composing ChatState = "composing"
	Paused    ChatState = "paused"
	Inactive  ChatState = "inactive"
	Gone      ChatState = "gone"
)

// Reaction sets the emoji reactions of a user to a message (XEP-0444):
// the whole set, an empty one removes them all.
type Reaction struct {
	To     MessageID
	Emojis []string
}

// Contact is a user of the other network in someone's contact list.
type Contact struct {
	ID       UserID
	Name     string
	Groups   []string
	Presence Presence
}

// Role is a participant's standing in a room, as XEP-0045's roles and
// affiliations combined.
type Role int

// The values of Role.
const (
	RoleParticipant Role = iota
	RoleVisitor          // may not speak
	RoleModerator        // may kick, like an IRC channel operator
	RoleOwner
)

// Participant is someone in a room of the other network.
type Participant struct {
	ID   UserID
	Nick string
	Role Role
	// Presence is the participant's availability; Offline is never set
	// here (a participant who goes is reported with RoomLeft).
	Presence Presence
}

// RoomInfo describes a room of the other network when the user joins it.
type RoomInfo struct {
	Name         string
	Subject      string
	Participants []Participant
	// Nick is the user's own nick in the room, which may differ from the
	// one asked for.
	Nick string
	// Self is the user's own id among the participants, by which the
	// network reports the user's messages, nick changes and removal.
	Self UserID
}
