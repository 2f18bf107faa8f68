package appservice

import (
	"encoding/json"
	"time"
)

// Event types: what happened, as a service receives it. The JSON of each
// is documented in docs/appservices.md.
const (
	// Stanzas that reached a user of the service's namespace (the
	// service's session of that user received them).
	EventMessage      = "message"
	EventPresence     = "presence"
	EventSubscription = "subscription"
	EventIQ           = "iq"
	EventRoster       = "roster" // a roster item of the user changed
	// What watched users did.
	EventLogin          = "login"
	EventLogout         = "logout"
	EventAccountCreated = "account_created"
	EventAccountRemoved = "account_removed"
	// What happened in the service's rooms.
	EventRoomJoin    = "room_join"
	EventRoomLeave   = "room_leave"
	EventRoomMessage = "room_message"
)

// Event is one event for a service. Fields that do not apply to its Type
// are left out of the JSON.
type Event struct {
	// ID is unique among all events of the server: a service that missed
	// an acknowledgement sees the same event again, with the same ID.
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// User is the bare JID of the user the event concerns: the user of
	// the service's namespace who received the stanza, or the watched
	// user who logged in, or whose account or roster changed.
	User string `json:"user,omitempty"`
	// From and To are the stanza's addresses, or the occupant's and the
	// room's for room events.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`

	Message      *Message    `json:"message,omitempty"`
	Presence     *Presence   `json:"presence,omitempty"`
	Subscription string      `json:"subscription,omitempty"` // subscribe, subscribed, unsubscribe, unsubscribed
	Roster       *RosterItem `json:"roster,omitempty"`
	Session      *Session    `json:"session,omitempty"`
	Room         *Room       `json:"room,omitempty"`
	// Stanza is the stanza as XML, for what the JSON form does not
	// model; set for every event that comes from a stanza.
	Stanza string `json:"stanza,omitempty"`
}

// Message is a message's content.
type Message struct {
	ID      string `json:"id,omitempty"`
	Type    string `json:"type,omitempty"` // chat, normal, groupchat, headline, error
	Body    string `json:"body,omitempty"`
	Subject string `json:"subject,omitempty"`
	Thread  string `json:"thread,omitempty"`
	// JSON is the content of an XEP-0335 JSON container in the message,
	// parsed; nil without one (or when it was not valid JSON: Stanza has
	// it as sent).
	JSON json.RawMessage `json:"json,omitempty"`
}

// Presence is an availability.
type Presence struct {
	// Available is false for an unavailable presence.
	Available bool   `json:"available"`
	Show      string `json:"show,omitempty"` // away, chat, dnd, xa
	Status    string `json:"status,omitempty"`
	Priority  int    `json:"priority,omitempty"`
}

// RosterItem is an entry of a user's roster.
type RosterItem struct {
	JID          string   `json:"jid"`
	Name         string   `json:"name,omitempty"`
	Subscription string   `json:"subscription"` // none, to, from, both, remove
	Ask          bool     `json:"ask,omitempty"`
	Groups       []string `json:"groups,omitempty"`
}

// Session is a client session of a watched user.
type Session struct {
	Resource string `json:"resource"`
	// Address is the client's network address as the server saw it, ""
	// when the session came another way.
	Address string `json:"address,omitempty"`
}

// Room is what a room event concerns.
type Room struct {
	Room string `json:"room"`
	Nick string `json:"nick"`
	// JID is the occupant's real JID.
	JID string `json:"jid,omitempty"`
}
