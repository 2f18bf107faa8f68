package httpapi

import (
	"net/http"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
)

// roomRequest is the body of POST /api/v1/rooms.
type roomRequest struct {
	JID    string              `json:"jid"`
	Owner  string              `json:"owner"`
	Config map[string][]string `json:"config"`
}

func (a *API) createRoom(r *http.Request, c caller) (any, error) {
	var q roomRequest
	if err := decodeJSON(r.Body, &q); err != nil {
		return nil, err
	}
	room, err := parseUser("jid", q.JID)
	if err != nil {
		return nil, err
	}
	if !c.ownsRoom(room) {
		return nil, forbidden("%s is not a room of appservice %s", room, c.service())
	}
	owner, err := parseBare("owner", q.Owner)
	if err != nil {
		return nil, err
	}
	for field, values := range q.Config {
		if field == "" {
			return nil, badRequest("config", "a field without a name")
		}
		if err := xmlText("config", field); err != nil {
			return nil, err
		}
		for _, v := range values {
			if err := xmlText("config."+field, v); err != nil {
				return nil, err
			}
		}
	}
	return nil, a.backend.CreateRoom(r.Context(), room, owner, q.Config)
}

// affiliationRequest is the body of PUT
// /api/v1/rooms/{jid}/affiliations/{user}.
type affiliationRequest struct {
	Affiliation string `json:"affiliation"`
	Reason      string `json:"reason"`
}

func (a *API) setAffiliation(r *http.Request, c caller) (any, error) {
	room, err := pathRoom(r, c)
	if err != nil {
		return nil, err
	}
	user, err := parseBare("{user}", r.PathValue("user"))
	if err != nil {
		return nil, err
	}
	var q affiliationRequest
	if err := decodeJSON(r.Body, &q); err != nil {
		return nil, err
	}
	if q.Affiliation == "" {
		return nil, badRequest("affiliation", "required (owner, admin, member, outcast or none)")
	}
	if err := oneOf("affiliation", q.Affiliation, "owner", "admin", "member", "outcast", "none"); err != nil {
		return nil, err
	}
	if err := xmlText("reason", q.Reason); err != nil {
		return nil, err
	}
	return nil, a.backend.SetAffiliation(r.Context(), room, user, q.Affiliation, q.Reason)
}

// pathRoom is the room of a path's {jid}, if c owns it.
func pathRoom(r *http.Request, c caller) (jid.JID, error) {
	room, err := parseUser("{jid}", r.PathValue("jid"))
	if err != nil {
		return room, err
	}
	if !c.ownsRoom(room) {
		return jid.JID{}, forbidden("%s is not a room of appservice %s", room, c.service())
	}
	return room, nil
}

// roomList is the answer of GET /api/v1/rooms.
type roomList struct {
	Rooms []Room `json:"rooms"`
}

// rooms lists the rooms of the conference service ?service: all of them
// for the admin, those it owns for a service.
func (a *API) rooms(r *http.Request, c caller) (any, error) {
	service, err := parseDomain("?service", r.URL.Query().Get("service"))
	if err != nil {
		return nil, err
	}
	rs, err := a.backend.Rooms(r.Context(), service)
	if err != nil {
		return nil, err
	}
	if !c.admin {
		mine := []Room{}
		for _, room := range rs {
			if j, err := jid.Parse(room.JID); err == nil && c.ownsRoom(j) {
				mine = append(mine, room)
			}
		}
		rs = mine
	}
	return roomList{nonNil(rs)}, nil
}
