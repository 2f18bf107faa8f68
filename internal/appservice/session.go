package appservice

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// vsession is a service's session of one of its users: the session
// manager sees a client, whose stanzas become the service's events.
type vsession struct {
	m     *Manager
	svc   string // the service's name; "" for the administrator's
	full  jid.JID
	ready chan struct{} // closed once bound (or failed to)
	err   error         // the bind's, once ready
}

var _ router.Session = (*vsession)(nil)

// JID implements router.Session.
func (v *vsession) JID() jid.JID { return v.full }

// Close implements router.Session: the server ended the session (another
// took its resource, the account went, an administrator ended it). As a
// client's connection would, it leaves the session manager, on another
// goroutine since the caller may hold the session manager's locks; the
// manager forgets it afterwards, so that its end is not reported to the
// service as a logout.
func (v *vsession) Close(string) {
	go func() {
		if s := v.m.deps.SMs[v.full.Domain()]; s != nil {
			s.Unbind(context.Background(), v)
		}
		v.m.forget(v)
	}()
}

// Deliver implements router.Session: what the user receives becomes an
// event for the service.
func (v *vsession) Deliver(el *xmlstream.Element) {
	if v.svc == "" {
		return // the administrator's sessions send only
	}
	ev := Event{Time: v.m.now(), User: v.full.BareString(), From: el.Attr("from"), To: el.Attr("to")}
	switch el.Local {
	case stanza.Message:
		ev.Type = EventMessage
		ev.Message = messageOf(el)
	case stanza.Presence:
		if el.Attr("from") == v.full.String() {
			return // its own presence, reflected
		}
		switch t := el.Attr("type"); t {
		case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
			ev.Type = EventSubscription
			ev.Subscription = t
		case "", "unavailable":
			ev.Type = EventPresence
			ev.Presence = presenceOf(el)
		default:
			return
		}
	case stanza.IQ:
		if el.Child(stanza.NSRoster, "query") != nil && (el.Attr("from") == "" || el.Attr("from") == v.full.BareString()) {
			return // roster pushes: the observer reports the change
		}
		ev.Type = EventIQ
	default:
		return
	}
	ev.Stanza = string(el.AppendXML(nil, xmlstream.NSClient))
	for _, s := range v.m.services {
		if s.Name == v.svc {
			if s.Wants(ev.Type) {
				ev.ID = stanza.NewID() + stanza.NewID()
				v.m.deps.Outbox.Enqueue(context.Background(), s.Name, []Event{ev})
			}
			return
		}
	}
}

// ErrNoDomain is returned for a user of a domain the server does not
// serve.
var ErrNoDomain = errors.New("appservice: domain not served")

// sessionFor returns the session of user (bare: the service's resource,
// or full) for the service, binding it if need be.
func (m *Manager) sessionFor(ctx context.Context, svc string, user jid.JID) (*vsession, *sm.SM, error) {
	s := m.deps.SMs[user.Domain()]
	if s == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrNoDomain, user.Domain())
	}
	full := user
	if full.Resource() == "" {
		res := svc
		if res == "" {
			res = "api"
		}
		var err error
		if full, err = user.WithResource(res); err != nil {
			return nil, nil, err
		}
	}
	m.mu.Lock()
	v := m.sessions[full.String()]
	fresh := v == nil
	if fresh {
		v = &vsession{m: m, svc: svc, full: full, ready: make(chan struct{})}
		m.sessions[full.String()] = v
	}
	m.mu.Unlock()
	if fresh {
		if v.err = s.Bind(ctx, v); v.err != nil {
			m.forget(v)
		}
		close(v.ready)
	}
	<-v.ready
	if v.err != nil {
		return nil, nil, v.err
	}
	return v, s, nil
}

func (m *Manager) forget(v *vsession) {
	m.mu.Lock()
	if m.sessions[v.full.String()] == v {
		delete(m.sessions, v.full.String())
	}
	m.mu.Unlock()
}

// bound returns the session of full, if the manager holds one.
func (m *Manager) bound(full jid.JID) *vsession {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[full.String()]
}

// SetPresence makes the service's session of user available with p, or
// ends it for an unavailable p: while it is available the session
// receives what is sent to the user, as the service's events.
func (m *Manager) SetPresence(ctx context.Context, svc string, user jid.JID, p Presence) error {
	res := svc
	if res == "" {
		res = "api"
	}
	full, err := user.Bare().WithResource(res)
	if err != nil {
		return err
	}
	if !p.Available {
		v := m.bound(full)
		if v == nil {
			return nil
		}
		s := m.deps.SMs[full.Domain()]
		if s == nil {
			return nil
		}
		el := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
		el.SetAttr("type", "unavailable")
		if p.Status != "" {
			el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "status")).AddText(p.Status)
		}
		el.SetAttr("from", full.String())
		s.HandleFromSession(ctx, v, router.Stanza{El: el, From: full})
		// Forgotten once unbound: its end is no logout for the service.
		s.Unbind(ctx, v)
		m.forget(v)
		return nil
	}
	if p.Show != "" && p.Show != "away" && p.Show != "chat" && p.Show != "dnd" && p.Show != "xa" {
		return fmt.Errorf("appservice: show %q", p.Show)
	}
	v, s, err := m.sessionFor(ctx, svc, full)
	if err != nil {
		return err
	}
	el := xmlstream.NewElement(xmlstream.NSClient, stanza.Presence)
	if p.Show != "" {
		el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "show")).AddText(p.Show)
	}
	if p.Status != "" {
		el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "status")).AddText(p.Status)
	}
	if p.Priority != 0 {
		el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "priority")).AddText(strconv.Itoa(p.Priority))
	}
	el.SetAttr("from", full.String())
	s.HandleFromSession(ctx, v, router.Stanza{El: el, From: full})
	return nil
}

// Send sends el as from: a user of a served domain (a bare JID sends
// from the session of the service owning the user, bound if need be), or
// a domain.
func (m *Manager) Send(ctx context.Context, from jid.JID, el *xmlstream.Element) error {
	var to jid.JID
	if t := el.Attr("to"); t != "" {
		var err error
		if to, err = jid.Parse(t); err != nil {
			return fmt.Errorf("appservice: to: %w", err)
		}
	}
	if from.Local() == "" {
		el.SetAttr("from", from.String())
		if to.IsZero() {
			return errors.New("appservice: a stanza from a domain needs a 'to'")
		}
		m.deps.Router.Route(ctx, router.Stanza{El: el, From: from, To: to})
		return nil
	}
	svc := ""
	if from.Resource() == "" {
		for _, s := range m.services {
			if s.ActsAs(from.String()) {
				svc = s.Name
				break
			}
		}
	}
	v, s, err := m.sessionFor(ctx, svc, from)
	if err != nil {
		return err
	}
	el.SetAttr("from", v.full.String())
	s.HandleFromSession(ctx, v, router.Stanza{El: el, From: v.full, To: to})
	return nil
}
