package appservice

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/muc/room"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// NSJSON is the namespace of XEP-0335 JSON containers.
const NSJSON = "urn:xmpp:json:0"

// Outbox takes the events bound for a service, to send them in
// transactions; Enqueue must not wait for the network.
type Outbox interface {
	Enqueue(ctx context.Context, service string, events []Event)
}

// Deps are what the manager works with.
type Deps struct {
	Router *router.Router
	// SMs are the session managers, by domain.
	SMs map[string]*sm.SM
	// Outbox sends the events.
	Outbox Outbox
	// Client makes the hook calls; nil for one of the manager's own.
	Client *http.Client
	Log    *slog.Logger
	// Now is the clock of event times; nil for time.Now.
	Now func() time.Time
	// HookWarnEvery is how often, at most, the failures of one service's
	// hooks are logged; 0 for DefaultHookWarnEvery.
	HookWarnEvery time.Duration
}

// Manager connects the declared services to the server: it produces their
// events (as the observer of the session managers, the conference service
// and the accounts), keeps the sessions of their users, and asks their
// hooks (as the router's Hook).
type Manager struct {
	services []*Service
	deps     Deps
	log      *slog.Logger
	hooks    map[string]bool // hook events some service decides about
	warn     *hookWarnings

	mu       sync.Mutex
	sessions map[string]*vsession // by full JID
}

// New returns the manager of services.
func New(services []*Service, d Deps) (*Manager, error) {
	if d.Router == nil || d.Outbox == nil || d.Log == nil {
		return nil, errors.New("appservice: router, outbox and logger are required")
	}
	if d.Client == nil {
		d.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	names := map[string]bool{}
	m := &Manager{services: services, deps: d, log: d.Log.With("component", "appservice"), hooks: map[string]bool{}, sessions: map[string]*vsession{},
		warn: newHookWarnings(d.HookWarnEvery)}
	for _, s := range services {
		if names[s.Name] {
			return nil, errors.New("appservice: two services named " + s.Name)
		}
		names[s.Name] = true
		for e := range s.hooks {
			m.hooks[e] = true
		}
	}
	return m, nil
}

// Services returns the declared services.
func (m *Manager) Services() []*Service { return m.services }

// HasHooks reports whether some service decides about stanzas of kind
// ("message", "subscription", "room_message"): without, the manager is
// not asked, and such stanzas cost nothing.
func (m *Manager) HasHooks(kind string) bool { return m.hooks[kind] }

// HasHook reports whether some service has any hook.
func (m *Manager) HasHook() bool { return len(m.hooks) > 0 }

// emit queues ev for every service f selects that wants its type.
func (m *Manager) emit(ev Event, f func(*Service) bool) {
	for _, s := range m.services {
		if s.Wants(ev.Type) && f(s) {
			e := ev
			e.ID = stanza.NewID() + stanza.NewID()
			m.deps.Outbox.Enqueue(context.Background(), s.Name, []Event{e})
		}
	}
}

func (m *Manager) now() time.Time { return m.deps.Now().UTC() }

// Login implements sm.Observer.
func (m *Manager) Login(full jid.JID, addr string) {
	if m.Owns(full) {
		return
	}
	bare := full.BareString()
	m.emit(Event{Type: EventLogin, Time: m.now(), User: bare, From: full.String(), Session: &Session{Resource: full.Resource(), Address: addr}},
		func(s *Service) bool { return s.Watches(bare) })
}

// Logout implements sm.Observer.
func (m *Manager) Logout(full jid.JID) {
	if m.Owns(full) {
		return
	}
	bare := full.BareString()
	m.emit(Event{Type: EventLogout, Time: m.now(), User: bare, From: full.String(), Session: &Session{Resource: full.Resource()}},
		func(s *Service) bool { return s.Watches(bare) })
}

// RosterChanged implements sm.Observer.
func (m *Manager) RosterChanged(owner jid.JID, it storage.RosterItem) {
	bare := owner.String()
	m.emit(Event{Type: EventRoster, Time: m.now(), User: bare, Roster: rosterItem(it)},
		func(s *Service) bool { return s.Watches(bare) })
}

func rosterItem(it storage.RosterItem) *RosterItem {
	sub := it.Subscription
	if sub == "" {
		sub = storage.SubscriptionNone
	}
	return &RosterItem{JID: it.Contact, Name: it.Name, Subscription: sub, Ask: it.Ask, Groups: it.Groups}
}

// AccountCreated reports an account made in this process.
func (m *Manager) AccountCreated(user string) {
	m.emit(Event{Type: EventAccountCreated, Time: m.now(), User: user}, func(s *Service) bool { return s.Watches(user) })
}

// AccountRemoved reports an account removed in this process.
func (m *Manager) AccountRemoved(user string) {
	m.emit(Event{Type: EventAccountRemoved, Time: m.now(), User: user}, func(s *Service) bool { return s.Watches(user) })
}

// Watches implements muc.Observer.
func (m *Manager) Watches(r jid.JID) bool {
	k := r.String()
	for _, s := range m.services {
		if s.OwnsRoom(k) && (s.Wants(EventRoomJoin) || s.Wants(EventRoomLeave) || s.Wants(EventRoomMessage)) {
			return true
		}
	}
	return false
}

// RoomEvent implements muc.Observer.
func (m *Manager) RoomEvent(r jid.JID, ev room.Event) {
	k := r.String()
	occ, _ := r.WithResource(ev.Nick)
	// The user is the occupant's real bare JID, as in the room_message
	// hook's calls.
	e := Event{Time: m.now(), User: ev.JID.BareString(), From: occ.String(), To: k, Room: &Room{Room: k, Nick: ev.Nick, JID: ev.JID.String()}}
	switch ev.Kind {
	case room.Joined:
		e.Type = EventRoomJoin
	case room.Left:
		e.Type = EventRoomLeave
	case room.Said:
		e.Type = EventRoomMessage
		e.Message = messageOf(ev.El)
		e.Stanza = string(ev.El.AppendXML(nil, xmlstream.NSClient))
	default:
		return
	}
	m.emit(e, func(s *Service) bool { return s.OwnsRoom(k) })
}

// Owns reports whether full is a session the manager holds for a service
// (or the administrator): those are not reported as logins.
func (m *Manager) Owns(full jid.JID) bool {
	m.mu.Lock()
	_, ok := m.sessions[full.String()]
	m.mu.Unlock()
	return ok
}

// messageOf is the JSON form of a message stanza.
func messageOf(el *xmlstream.Element) *Message {
	msg := &Message{ID: el.Attr("id"), Type: el.Attr("type")}
	if msg.Type == "" {
		msg.Type = "normal"
	}
	for c := range el.ChildElements {
		switch {
		case isContent(c.Space) && c.Local == "body" && msg.Body == "":
			msg.Body = c.Text()
		case isContent(c.Space) && c.Local == "subject" && msg.Subject == "":
			msg.Subject = c.Text()
		case isContent(c.Space) && c.Local == "thread" && msg.Thread == "":
			msg.Thread = c.Text()
		case c.Space == NSJSON && c.Local == "json" && msg.JSON == nil:
			if t := strings.TrimSpace(c.Text()); json.Valid([]byte(t)) {
				msg.JSON = json.RawMessage(t)
			}
		}
	}
	return msg
}

func isContent(ns string) bool {
	return ns == xmlstream.NSClient || ns == xmlstream.NSServer || ns == xmlstream.NSComponent
}

// presenceOf is the JSON form of a presence stanza.
func presenceOf(el *xmlstream.Element) *Presence {
	p := &Presence{Available: el.Attr("type") == ""}
	for c := range el.ChildElements {
		if !isContent(c.Space) {
			continue
		}
		switch c.Local {
		case "show":
			p.Show = c.Text()
		case "status":
			p.Status = c.Text()
		case "priority":
			var n int
			if err := json.Unmarshal([]byte(strings.TrimSpace(c.Text())), &n); err == nil {
				p.Priority = n
			}
		}
	}
	return p
}
