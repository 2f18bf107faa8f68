package httpapi

import (
	"net/http"

	"github.com/ambrosia-xmpp/ambrosia/internal/appservice"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
)

// pathUser is the user of a path's {jid}, if c may act as them (or, with
// watch, watches them).
func pathUser(r *http.Request, c caller, watch bool) (jid.JID, error) {
	user, err := parseUser("{jid}", r.PathValue("jid"))
	if err != nil {
		return user, err
	}
	if watch && !c.watches(user) {
		return jid.JID{}, forbidden("appservice %s does not watch %s", c.service(), user)
	}
	if !watch && !c.actsAs(user) {
		return jid.JID{}, forbidden("%s is not a user of appservice %s", user, c.service())
	}
	return user, nil
}

// presenceRequest is the body of PUT /api/v1/users/{jid}/presence.
type presenceRequest struct {
	Available *bool  `json:"available"`
	Show      string `json:"show"`
	Status    string `json:"status"`
	Priority  int    `json:"priority"`
}

func (q *presenceRequest) presence() (appservice.Presence, error) {
	if q.Available == nil {
		return appservice.Presence{}, badRequest("available", "required (true or false)")
	}
	if q.Show != "" {
		if !*q.Available {
			return appservice.Presence{}, badRequest("show", "only with available: true")
		}
		if err := oneOf("show", q.Show, "away", "chat", "dnd", "xa"); err != nil {
			return appservice.Presence{}, err
		}
	}
	if q.Priority < -128 || q.Priority > 127 {
		return appservice.Presence{}, badRequest("priority", "%d is not within -128..127", q.Priority)
	}
	if err := xmlText("status", q.Status); err != nil {
		return appservice.Presence{}, err
	}
	return appservice.Presence{Available: *q.Available, Show: q.Show, Status: q.Status, Priority: q.Priority}, nil
}

func (a *API) setPresence(r *http.Request, c caller) (any, error) {
	user, err := pathUser(r, c, false)
	if err != nil {
		return nil, err
	}
	var q presenceRequest
	if err := decodeJSON(r.Body, &q); err != nil {
		return nil, err
	}
	p, err := q.presence()
	if err != nil {
		return nil, err
	}
	return nil, a.backend.SetPresence(r.Context(), c.service(), user, p)
}

// presenceList is the answer of GET /api/v1/users/{jid}/presence.
type presenceList struct {
	Presence []ResourcePresence `json:"presence"`
}

func (a *API) presence(r *http.Request, c caller) (any, error) {
	user, err := pathUser(r, c, true)
	if err != nil {
		return nil, err
	}
	ps, err := a.backend.Presence(r.Context(), user)
	if err != nil {
		return nil, err
	}
	return presenceList{nonNil(ps)}, nil
}

// userRequest is the body of POST /api/v1/users.
type userRequest struct {
	JID      string `json:"jid"`
	Password string `json:"password"`
}

func (a *API) createUser(r *http.Request, c caller) (any, error) {
	var q userRequest
	if err := decodeJSON(r.Body, &q); err != nil {
		return nil, err
	}
	user, err := parseUser("jid", q.JID)
	if err != nil {
		return nil, err
	}
	if !c.actsAs(user) {
		return nil, forbidden("%s is not a user of appservice %s", user, c.service())
	}
	// Accounts without a password are for the users of services, whose
	// client is their service.
	if q.Password == "" && !a.ofService(user) {
		return nil, badRequest("password", "required for %s, which is no service's user", user)
	}
	return nil, a.backend.CreateUser(r.Context(), user, q.Password)
}

// ofService reports whether user is in the namespace of a service.
func (a *API) ofService(user jid.JID) bool {
	for _, s := range a.cfg.Services {
		if s.ActsAs(user.BareString()) {
			return true
		}
	}
	return false
}

func (a *API) deleteUser(r *http.Request, c caller) (any, error) {
	user, err := pathUser(r, c, false)
	if err != nil {
		return nil, err
	}
	return nil, a.backend.DeleteUser(r.Context(), user)
}

// userList is the answer of GET /api/v1/users.
type userList struct {
	Users []string `json:"users"`
}

func (a *API) users(r *http.Request, c caller) (any, error) {
	if err := adminOnly(c); err != nil {
		return nil, err
	}
	domain, err := parseDomain("?domain", r.URL.Query().Get("domain"))
	if err != nil {
		return nil, err
	}
	us, err := a.backend.Users(r.Context(), domain)
	if err != nil {
		return nil, err
	}
	return userList{nonNil(us)}, nil
}

// rosterList is the answer of GET /api/v1/users/{jid}/roster.
type rosterList struct {
	Roster []appservice.RosterItem `json:"roster"`
}

func (a *API) roster(r *http.Request, c caller) (any, error) {
	user, err := pathUser(r, c, true)
	if err != nil {
		return nil, err
	}
	items, err := a.backend.Roster(r.Context(), user)
	if err != nil {
		return nil, err
	}
	return rosterList{nonNil(items)}, nil
}

// rosterItemRequest is the body of PUT /api/v1/users/{jid}/roster/{contact}.
type rosterItemRequest struct {
	Name         string   `json:"name"`
	Groups       []string `json:"groups"`
	Subscription string   `json:"subscription"`
}

func (q *rosterItemRequest) item(contact jid.JID) (appservice.RosterItem, error) {
	if q.Subscription == "" {
		return appservice.RosterItem{}, badRequest("subscription", "required (none, to, from or both)")
	}
	if err := oneOf("subscription", q.Subscription, "none", "to", "from", "both"); err != nil {
		return appservice.RosterItem{}, err
	}
	if err := xmlText("name", q.Name); err != nil {
		return appservice.RosterItem{}, err
	}
	for i, g := range q.Groups {
		if g == "" {
			return appservice.RosterItem{}, badRequest("groups", "group %d is empty", i)
		}
		if err := xmlText("groups", g); err != nil {
			return appservice.RosterItem{}, err
		}
	}
	return appservice.RosterItem{JID: contact.String(), Name: q.Name, Subscription: q.Subscription, Groups: q.Groups}, nil
}

func (a *API) setRosterItem(r *http.Request, c caller) (any, error) {
	user, err := pathUser(r, c, true)
	if err != nil {
		return nil, err
	}
	contact, err := parseBare("{contact}", r.PathValue("contact"))
	if err != nil {
		return nil, err
	}
	var q rosterItemRequest
	if err := decodeJSON(r.Body, &q); err != nil {
		return nil, err
	}
	item, err := q.item(contact)
	if err != nil {
		return nil, err
	}
	return nil, a.backend.SetRosterItem(r.Context(), user, item)
}

func (a *API) removeRosterItem(r *http.Request, c caller) (any, error) {
	user, err := pathUser(r, c, true)
	if err != nil {
		return nil, err
	}
	contact, err := parseBare("{contact}", r.PathValue("contact"))
	if err != nil {
		return nil, err
	}
	return nil, a.backend.SetRosterItem(r.Context(), user, appservice.RosterItem{JID: contact.String(), Subscription: "remove"})
}

// nonNil makes an empty list a JSON [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
