package httpapi

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/ambrosia-xmpp/ambrosia/internal/appservice"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// fakeBackend records the calls made to it, as text, and answers them
// with err and fixed data.
type fakeBackend struct {
	mu    sync.Mutex
	calls []string
	sent  []*xmlstream.Element
	// err is what every call returns.
	err error
	// empty makes the lists nil.
	empty bool
}

var _ Backend = (*fakeBackend)(nil)

func (f *fakeBackend) record(name string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = fmt.Sprintf("%+v", a)
	}
	f.calls = append(f.calls, name+"("+strings.Join(s, ", ")+")")
	return f.err
}

// Calls returns the calls made so far.
func (f *fakeBackend) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func list[T any](f *fakeBackend, items ...T) []T {
	if f.empty {
		return nil
	}
	return items
}

func (f *fakeBackend) Send(_ context.Context, from jid.JID, el *xmlstream.Element) error {
	f.mu.Lock()
	f.sent = append(f.sent, el)
	f.mu.Unlock()
	return f.record("Send", from, el)
}

func (f *fakeBackend) SetPresence(_ context.Context, service string, user jid.JID, p appservice.Presence) error {
	return f.record("SetPresence", service, user, p)
}

func (f *fakeBackend) Presence(_ context.Context, user jid.JID) ([]ResourcePresence, error) {
	return list(f, ResourcePresence{Resource: "phone", Presence: appservice.Presence{Available: true, Show: "away"}}), f.record("Presence", user)
}

func (f *fakeBackend) CreateUser(_ context.Context, user jid.JID, password string) error {
	return f.record("CreateUser", user, password)
}

func (f *fakeBackend) DeleteUser(_ context.Context, user jid.JID) error {
	return f.record("DeleteUser", user)
}

func (f *fakeBackend) Users(_ context.Context, domain string) ([]string, error) {
	return list(f, "alice@"+domain), f.record("Users", domain)
}

func (f *fakeBackend) Roster(_ context.Context, user jid.JID) ([]appservice.RosterItem, error) {
	return list(f, appservice.RosterItem{JID: "bob@localhost", Subscription: "both", Groups: []string{"Friends"}}), f.record("Roster", user)
}

func (f *fakeBackend) SetRosterItem(_ context.Context, user jid.JID, item appservice.RosterItem) error {
	return f.record("SetRosterItem", user, item)
}

func (f *fakeBackend) Sessions(_ context.Context, user jid.JID) ([]Session, error) {
	return list(f, Session{JID: "alice@localhost/phone", Kind: "c2s", Available: true}), f.record("Sessions", user)
}

func (f *fakeBackend) EndSession(_ context.Context, full jid.JID, reason string) error {
	return f.record("EndSession", full, reason)
}

func (f *fakeBackend) CreateRoom(_ context.Context, room, owner jid.JID, config map[string][]string) error {
	return f.record("CreateRoom", room, owner, config)
}

func (f *fakeBackend) SetAffiliation(_ context.Context, room, user jid.JID, affiliation, reason string) error {
	return f.record("SetAffiliation", room, user, affiliation, reason)
}

func (f *fakeBackend) Rooms(_ context.Context, service string) ([]Room, error) {
	return list(f, Room{JID: "support@" + service, Occupants: 2}, Room{JID: "lounge@" + service, Public: true}), f.record("Rooms", service)
}

func (f *fakeBackend) Components(context.Context) ([]Component, error) {
	return list(f, Component{Domain: "conference.localhost", Kind: "muc", Connected: true}), f.record("Components")
}

func (f *fakeBackend) Reload(context.Context) error { return f.record("Reload") }

func (f *fakeBackend) S2S(context.Context) ([]S2SStream, error) {
	return list(f, S2SStream{Local: "localhost", Remote: "example.org", Direction: "out", Auth: "dialback"}), f.record("S2S")
}

func (f *fakeBackend) SetPassword(_ context.Context, user jid.JID, password string, endSessions bool) error {
	return f.record("SetPassword", user, password, endSessions)
}

// CheckPassword knows one password: "right".
func (f *fakeBackend) CheckPassword(_ context.Context, user jid.JID, password string) (bool, error) {
	return password == "right", f.record("CheckPassword", user)
}

func (f *fakeBackend) Stats(context.Context) (map[string]float64, error) {
	return map[string]float64{"ambrosia_sessions": 3}, f.record("Stats")
}

func (f *fakeBackend) Server(context.Context) (ServerInfo, error) {
	return ServerInfo{Version: "1.0", Domains: list(f, "localhost"), Conference: list(f, "conference.localhost")}, f.record("Server")
}
