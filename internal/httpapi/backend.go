package httpapi

import (
	"context"
	"errors"

	"github.com/ambrosia-xmpp/ambrosia/internal/appservice"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Backend is what the API acts on: the server's components and storage.
// The API checks who may do what before calling it; the Backend does it.
// Its errors wrapping ErrNotFound become 404, ErrConflict 409,
// ErrInvalid 400; others 500.
type Backend interface {
	// Send routes el as sent by from: a user (bare or full JID; a bare
	// JID sends from the user's session of the calling service, opened
	// if need be) or a domain of the server.
	Send(ctx context.Context, from jid.JID, el *xmlstream.Element) error
	// SetPresence sets the presence of the calling service's session of
	// user (opening or closing it); service is the caller's name, "" for
	// the admin, whose sessions are named "api".
	SetPresence(ctx context.Context, service string, user jid.JID, p appservice.Presence) error
	// Presence returns the presence of each of user's sessions.
	Presence(ctx context.Context, user jid.JID) ([]ResourcePresence, error)
	// CreateUser makes an account; an empty password makes one nobody
	// can log in to with a password (the service's users).
	CreateUser(ctx context.Context, user jid.JID, password string) error
	// DeleteUser removes an account and ends its sessions.
	DeleteUser(ctx context.Context, user jid.JID) error
	// SetPassword replaces user's password; with endSessions, the user's
	// sessions end (reset), as after a stolen password.
	SetPassword(ctx context.Context, user jid.JID, password string, endSessions bool) error
	// CheckPassword reports whether password is user's; an unknown user
	// is false, not an error, and costs the same work.
	CheckPassword(ctx context.Context, user jid.JID, password string) (bool, error)
	// Server describes the server: its domains and services.
	Server(ctx context.Context) (ServerInfo, error)
	// Stats returns the server's counters and gauges by name, summed
	// over their labels.
	Stats(ctx context.Context) (map[string]float64, error)
	// Users lists the accounts of domain.
	Users(ctx context.Context, domain string) ([]string, error)
	// Roster returns user's roster.
	Roster(ctx context.Context, user jid.JID) ([]appservice.RosterItem, error)
	// SetRosterItem adds or changes an item (subscription included, as
	// an administrator may), pushing it to user's interested sessions;
	// subscription "remove" removes it.
	SetRosterItem(ctx context.Context, user jid.JID, item appservice.RosterItem) error
	// Sessions lists the sessions of user, or of everyone for the zero
	// JID.
	Sessions(ctx context.Context, user jid.JID) ([]Session, error)
	// EndSession ends a session with a stream error whose text is reason.
	EndSession(ctx context.Context, full jid.JID, reason string) error
	// CreateRoom makes a persistent room owned by owner, configured by
	// config (muc#roomconfig fields to values).
	CreateRoom(ctx context.Context, room, owner jid.JID, config map[string][]string) error
	// SetAffiliation sets user's affiliation with room.
	SetAffiliation(ctx context.Context, room, user jid.JID, affiliation, reason string) error
	// Rooms lists the rooms of a conference service.
	Rooms(ctx context.Context, service string) ([]Room, error)
	// Components lists the external components and service links.
	Components(ctx context.Context) ([]Component, error)
	// S2S lists the server-to-server streams.
	S2S(ctx context.Context) ([]S2SStream, error)
	// Reload reads the server's configuration and certificates again, as
	// SIGHUP does; an error wrapping ErrConflict says why nothing
	// changed.
	Reload(ctx context.Context) error
}

// Errors a Backend returns, wrapped, for the HTTP status they mean.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
)

// ResourcePresence is the presence of one session.
type ResourcePresence struct {
	Resource string `json:"resource"`
	appservice.Presence
}

// Session is a client session.
type Session struct {
	JID     string `json:"jid"`
	Address string `json:"address,omitempty"`
	// Kind is "c2s", or "appservice" for a service's session of its user.
	Kind      string `json:"kind"`
	Available bool   `json:"available"`
}

// ServerInfo is what GET /api/v1/server answers.
type ServerInfo struct {
	Version string   `json:"version"`
	Domains []string `json:"domains"`
	// Conference are the domains of the conference service.
	Conference []string `json:"conference"`
}

// Room is a room of a conference service.
type Room struct {
	JID       string `json:"jid"`
	Name      string `json:"name,omitempty"`
	Occupants int    `json:"occupants"`
	Public    bool   `json:"public"`
}

// Component is an external component or a service link.
type Component struct {
	Domain    string `json:"domain"`
	Kind      string `json:"kind"` // component, sm, muc, bridge
	Connected bool   `json:"connected"`
}

// S2SStream is a server-to-server stream.
type S2SStream struct {
	Local     string `json:"local"`
	Remote    string `json:"remote"`
	Direction string `json:"direction"` // in, out
	Auth      string `json:"auth"`      // external, dialback
}
