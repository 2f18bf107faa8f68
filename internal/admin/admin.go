// Package admin does what the HTTP API asks of the server (it implements
// httpapi.Backend): it reaches the session managers, the accounts, the
// conference service, the component listener and the federation edge of
// one process, so that the API itself knows none of them.
package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/appservice"
	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/component"
	"github.com/ambrosia-xmpp/ambrosia/internal/httpapi"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/muc"
	"github.com/ambrosia-xmpp/ambrosia/internal/s2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Deps are the parts of the server the backend acts on; the optional
// ones are nil when the server runs without them.
type Deps struct {
	Manager  *appservice.Manager
	SMs      map[string]*sm.SM // by domain
	Accounts storage.Accounts
	MUC      *muc.Service      // optional
	Comps    *component.Server // optional
	S2S      *s2s.Service      // optional
	// Version is the server's, as Server reports it.
	Version string
	// Metrics are what Stats reports; optional.
	Metrics prometheus.Gatherer
	// Reload reads the configuration and certificates again and says
	// what changed; nil when the server cannot.
	Reload func(ctx context.Context) (string, error)
}

// Backend implements httpapi.Backend.
type Backend struct {
	d Deps
	// decoy is checked against the password of an unknown account, so
	// that a login for one costs what a login for a known account does.
	decoy storage.Credential
}

var _ httpapi.Backend = (*Backend)(nil)

// New returns the backend.
func New(d Deps) (*Backend, error) {
	if d.Manager == nil || d.Accounts == nil || len(d.SMs) == 0 {
		return nil, errors.New("admin: manager, accounts and session managers are required")
	}
	decoy, err := auth.DeriveCredentials("", auth.DefaultIterations)
	if err != nil {
		return nil, err
	}
	return &Backend{d: d, decoy: decoy[0]}, nil
}

func (b *Backend) sm(user jid.JID) (*sm.SM, error) {
	s := b.d.SMs[user.Domain()]
	if s == nil {
		return nil, fmt.Errorf("%w: domain %s is not served", httpapi.ErrNotFound, user.Domain())
	}
	return s, nil
}

func (b *Backend) exists(ctx context.Context, user jid.JID) error {
	if _, err := b.sm(user); err != nil {
		return err
	}
	_, err := b.d.Accounts.Credential(ctx, user.BareString(), "SHA-256")
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: no account %s", httpapi.ErrNotFound, user.Bare())
	}
	return err
}

// Send implements httpapi.Backend.
func (b *Backend) Send(ctx context.Context, from jid.JID, el *xmlstream.Element) error {
	if from.Local() != "" {
		if err := b.exists(ctx, from); err != nil {
			return err
		}
	} else if b.d.SMs[from.Domain()] == nil {
		return fmt.Errorf("%w: domain %s is not served", httpapi.ErrNotFound, from.Domain())
	}
	if err := b.d.Manager.Send(ctx, from, el); err != nil {
		return fmt.Errorf("%w: %v", httpapi.ErrInvalid, err)
	}
	return nil
}

// SetPresence implements httpapi.Backend.
func (b *Backend) SetPresence(ctx context.Context, service string, user jid.JID, p appservice.Presence) error {
	if err := b.exists(ctx, user); err != nil {
		return err
	}
	return b.d.Manager.SetPresence(ctx, service, user, p)
}

// Presence implements httpapi.Backend.
func (b *Backend) Presence(ctx context.Context, user jid.JID) ([]httpapi.ResourcePresence, error) {
	if err := b.exists(ctx, user); err != nil {
		return nil, err
	}
	s, err := b.sm(user)
	if err != nil {
		return nil, err
	}
	out := []httpapi.ResourcePresence{}
	for _, x := range s.Sessions(user.Bare()) {
		rp := httpapi.ResourcePresence{Resource: x.JID.Resource()}
		if x.Available && x.Presence != nil {
			rp.Presence = presence(x.Presence)
		}
		out = append(out, rp)
	}
	return out, nil
}

func presence(el *xmlstream.Element) appservice.Presence {
	p := appservice.Presence{Available: el.Attr("type") == ""}
	if c := el.Child(xmlstream.NSClient, "show"); c != nil {
		p.Show = c.Text()
	}
	if c := el.Child(xmlstream.NSClient, "status"); c != nil {
		p.Status = c.Text()
	}
	return p
}

// CreateUser implements httpapi.Backend.
func (b *Backend) CreateUser(ctx context.Context, user jid.JID, password string) error {
	if _, err := b.sm(user); err != nil {
		return err
	}
	if user.Local() == "" || user.Resource() != "" {
		return fmt.Errorf("%w: %s is not a user's bare JID", httpapi.ErrInvalid, user)
	}
	if password == "" {
		// Nobody logs in to a service's user with a password.
		var r [24]byte
		_, _ = rand.Read(r[:])
		password = base64.RawURLEncoding.EncodeToString(r[:])
	}
	creds, err := auth.DeriveCredentials(password, auth.DefaultIterations)
	if err != nil {
		return err
	}
	err = b.d.Accounts.CreateAccount(ctx, user.String(), creds)
	if errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("%w: %s exists", httpapi.ErrConflict, user)
	}
	return err
}

// DeleteUser implements httpapi.Backend.
func (b *Backend) DeleteUser(ctx context.Context, user jid.JID) error {
	s, err := b.sm(user)
	if err != nil {
		return err
	}
	err = b.d.Accounts.DeleteAccount(ctx, user.Bare().String())
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: no account %s", httpapi.ErrNotFound, user.Bare())
	}
	if err != nil {
		return err
	}
	s.EndSessions(user.Bare(), stanza.NotAuthorized, "")
	return nil
}

// Users implements httpapi.Backend.
func (b *Backend) Users(ctx context.Context, domain string) ([]string, error) {
	if domain != "" && b.d.SMs[domain] == nil {
		return nil, fmt.Errorf("%w: domain %s is not served", httpapi.ErrNotFound, domain)
	}
	us, err := b.d.Accounts.ListAccounts(ctx, domain)
	if us == nil {
		us = []string{}
	}
	return us, err
}

// rosterIQ serves a roster IQ for user as the administrator.
func (b *Backend) rosterIQ(ctx context.Context, user jid.JID, typ string, item *xmlstream.Element) (*xmlstream.Element, error) {
	s, err := b.sm(user)
	if err != nil {
		return nil, err
	}
	iq := xmlstream.NewElement(xmlstream.NSClient, stanza.IQ)
	iq.SetAttr("type", typ)
	iq.SetAttr("id", stanza.NewID())
	q := iq.AddChild(xmlstream.NewElement(stanza.NSRoster, "query"))
	if item != nil {
		q.AddChild(item)
	}
	r := s.AdminRoster(ctx, user.Bare(), iq)
	if r.Attr("type") == "error" {
		switch c := stanza.ErrorCondition(r); c {
		case stanza.ItemNotFound:
			return nil, fmt.Errorf("%w: %s", httpapi.ErrNotFound, c)
		case stanza.BadRequest, stanza.JIDMalformed, stanza.NotAcceptable:
			return nil, fmt.Errorf("%w: %s", httpapi.ErrInvalid, c)
		default:
			return nil, fmt.Errorf("roster: %s", c)
		}
	}
	return r, nil
}

// Roster implements httpapi.Backend.
func (b *Backend) Roster(ctx context.Context, user jid.JID) ([]appservice.RosterItem, error) {
	r, err := b.rosterIQ(ctx, user, "get", nil)
	if err != nil {
		return nil, err
	}
	out := []appservice.RosterItem{}
	if q := r.Child(stanza.NSRoster, "query"); q != nil {
		for it := range q.ChildElements {
			ri := appservice.RosterItem{JID: it.Attr("jid"), Name: it.Attr("name"), Subscription: it.Attr("subscription"), Ask: it.Attr("ask") == "subscribe"}
			for g := range it.ChildElements {
				if g.Local == "group" {
					ri.Groups = append(ri.Groups, g.Text())
				}
			}
			out = append(out, ri)
		}
	}
	return out, nil
}

// SetRosterItem implements httpapi.Backend.
func (b *Backend) SetRosterItem(ctx context.Context, user jid.JID, it appservice.RosterItem) error {
	el := xmlstream.NewElement(stanza.NSRoster, "item")
	el.SetAttr("jid", it.JID)
	if it.Name != "" {
		el.SetAttr("name", it.Name)
	}
	if it.Subscription != "" {
		el.SetAttr("subscription", it.Subscription)
	}
	for _, g := range it.Groups {
		el.AddChild(xmlstream.NewElement(stanza.NSRoster, "group")).AddText(g)
	}
	if err := b.exists(ctx, user); err != nil {
		return err
	}
	_, err := b.rosterIQ(ctx, user, "set", el)
	return err
}

// Sessions implements httpapi.Backend.
func (b *Backend) Sessions(ctx context.Context, user jid.JID) ([]httpapi.Session, error) {
	var sms []*sm.SM
	if user.IsZero() {
		for _, d := range slices.Sorted(mapsKeys(b.d.SMs)) {
			sms = append(sms, b.d.SMs[d])
		}
	} else {
		s, err := b.sm(user)
		if err != nil {
			return nil, err
		}
		sms = append(sms, s)
	}
	out := []httpapi.Session{}
	for _, s := range sms {
		for _, x := range s.Sessions(user.Bare()) {
			kind := "c2s"
			if b.d.Manager.Owns(x.JID) {
				kind = "appservice"
			}
			out = append(out, httpapi.Session{JID: x.JID.String(), Kind: kind, Available: x.Available, Address: x.Address})
		}
	}
	return out, nil
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// EndSession implements httpapi.Backend.
func (b *Backend) EndSession(ctx context.Context, full jid.JID, reason string) error {
	s, err := b.sm(full)
	if err != nil {
		return err
	}
	if full.Resource() == "" {
		return fmt.Errorf("%w: %s is not a session's full JID", httpapi.ErrInvalid, full)
	}
	if s.EndSessions(full, stanza.PolicyViolation, reason) == 0 {
		return fmt.Errorf("%w: no session %s", httpapi.ErrNotFound, full)
	}
	return nil
}

// CreateRoom implements httpapi.Backend.
func (b *Backend) CreateRoom(ctx context.Context, room, owner jid.JID, config map[string][]string) error {
	if b.d.MUC == nil {
		return fmt.Errorf("%w: no conference service", httpapi.ErrNotFound)
	}
	return mucErr(b.d.MUC.CreateRoom(ctx, room, owner, config))
}

// SetAffiliation implements httpapi.Backend.
func (b *Backend) SetAffiliation(ctx context.Context, room, user jid.JID, affiliation, reason string) error {
	if b.d.MUC == nil {
		return fmt.Errorf("%w: no conference service", httpapi.ErrNotFound)
	}
	return mucErr(b.d.MUC.SetAffiliation(ctx, room, user, affiliation, reason))
}

func mucErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, muc.ErrExists):
		return fmt.Errorf("%w: %v", httpapi.ErrConflict, err)
	case errors.Is(err, muc.ErrNoService), errors.Is(err, muc.ErrNoRoom):
		return fmt.Errorf("%w: %v", httpapi.ErrNotFound, err)
	case strings.HasPrefix(err.Error(), "muc: affiliation"):
		return fmt.Errorf("%w: %v", httpapi.ErrInvalid, err)
	}
	var fe interface{ Condition() string }
	if errors.As(err, &fe) {
		return fmt.Errorf("%w: %v", httpapi.ErrInvalid, err)
	}
	return err
}

// Rooms implements httpapi.Backend.
func (b *Backend) Rooms(ctx context.Context, service string) ([]httpapi.Room, error) {
	if b.d.MUC == nil {
		return nil, fmt.Errorf("%w: no conference service", httpapi.ErrNotFound)
	}
	rs, err := b.d.MUC.Rooms(ctx, service)
	if err != nil {
		return nil, mucErr(err)
	}
	out := make([]httpapi.Room, 0, len(rs))
	for _, r := range rs {
		out = append(out, httpapi.Room{JID: r.JID, Name: r.Name, Occupants: r.Occupants, Public: r.Public})
	}
	return out, nil
}

// Components implements httpapi.Backend.
func (b *Backend) Components(ctx context.Context) ([]httpapi.Component, error) {
	out := []httpapi.Component{}
	if b.d.Comps != nil {
		for _, d := range slices.Sorted(slices.Values(b.d.Comps.Connected())) {
			out = append(out, httpapi.Component{Domain: d, Kind: "component", Connected: true})
		}
	}
	return out, nil
}

// S2S implements httpapi.Backend.
func (b *Backend) S2S(ctx context.Context) ([]httpapi.S2SStream, error) {
	out := []httpapi.S2SStream{}
	if b.d.S2S == nil {
		return out, nil
	}
	for _, s := range b.d.S2S.Streams() {
		dir := "out"
		if s.Incoming {
			dir = "in"
		}
		auth := s.Auth
		switch auth {
		case s2s.MethodSASLExternal:
			auth = "external"
		case s2s.MethodDialback:
			auth = "dialback"
		}
		out = append(out, httpapi.S2SStream{Local: s.Local, Remote: s.Remote, Direction: dir, Auth: auth})
	}
	slices.SortFunc(out, func(a, c httpapi.S2SStream) int {
		return strings.Compare(a.Direction+a.Local+a.Remote, c.Direction+c.Local+c.Remote)
	})
	return out, nil
}

// SetPassword implements httpapi.Backend.
func (b *Backend) SetPassword(ctx context.Context, user jid.JID, password string, endSessions bool) error {
	s, err := b.sm(user)
	if err != nil {
		return err
	}
	creds, err := auth.DeriveCredentials(password, auth.DefaultIterations)
	if err != nil {
		return err
	}
	err = b.d.Accounts.SetCredentials(ctx, user.Bare().String(), creds)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: no account %s", httpapi.ErrNotFound, user.Bare())
	}
	if err != nil {
		return err
	}
	if endSessions {
		s.EndSessions(user.Bare(), "reset", "the password was changed")
	}
	return nil
}

// CheckPassword implements httpapi.Backend.
func (b *Backend) CheckPassword(ctx context.Context, user jid.JID, password string) (bool, error) {
	c, err := b.d.Accounts.Credential(ctx, user.Bare().String(), b.decoy.Hash)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		auth.CheckPassword(b.decoy, password)
		return false, nil
	case err != nil:
		return false, err
	}
	return auth.CheckPassword(c, password), nil
}

// Stats implements httpapi.Backend: every metric's value summed over its
// labels (a histogram's or summary's count), by name.
func (b *Backend) Stats(context.Context) (map[string]float64, error) {
	out := map[string]float64{}
	if b.d.Metrics == nil {
		return out, nil
	}
	mfs, err := b.d.Metrics.Gather()
	if err != nil {
		return nil, err
	}
	for _, mf := range mfs {
		var sum float64
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Untyped != nil:
				sum += m.GetUntyped().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			case m.Summary != nil:
				sum += float64(m.GetSummary().GetSampleCount())
			}
		}
		out[mf.GetName()] = sum
	}
	return out, nil
}

// Server implements httpapi.Backend.
func (b *Backend) Server(context.Context) (httpapi.ServerInfo, error) {
	info := httpapi.ServerInfo{Version: b.d.Version}
	for d := range b.d.SMs {
		info.Domains = append(info.Domains, d)
	}
	slices.Sort(info.Domains)
	if b.d.MUC != nil {
		info.Conference = b.d.MUC.Domains()
	}
	return info, nil
}

// Reload implements httpapi.Backend.
func (b *Backend) Reload(ctx context.Context) error {
	if b.d.Reload == nil {
		return fmt.Errorf("%w: this server does not reload", httpapi.ErrNotFound)
	}
	if _, err := b.d.Reload(ctx); err != nil {
		return fmt.Errorf("%w: reload failed, nothing changed: %v", httpapi.ErrConflict, err)
	}
	return nil
}
