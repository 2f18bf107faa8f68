package httpapi

import (
	"net/http"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
)

// sessionList is the answer of GET /api/v1/sessions.
type sessionList struct {
	Sessions []Session `json:"sessions"`
}

// sessions lists the sessions of ?user, which c watches, or of everyone
// (admin).
func (a *API) sessions(r *http.Request, c caller) (any, error) {
	var user jid.JID
	if s := r.URL.Query().Get("user"); s != "" {
		var err error
		if user, err = parseUser("?user", s); err != nil {
			return nil, err
		}
		if !c.watches(user) {
			return nil, forbidden("appservice %s does not watch %s", c.service(), user)
		}
	} else if err := adminOnly(c); err != nil {
		return nil, forbidden("only the admin lists everyone's sessions; give ?user=")
	}
	ss, err := a.backend.Sessions(r.Context(), user)
	if err != nil {
		return nil, err
	}
	return sessionList{nonNil(ss)}, nil
}

// endSession ends the session {jid}, a full JID, with the stream error
// text ?reason (admin).
func (a *API) endSession(r *http.Request, c caller) (any, error) {
	if err := adminOnly(c); err != nil {
		return nil, err
	}
	full, err := parseJID("{jid}", r.PathValue("jid"))
	if err != nil {
		return nil, err
	}
	if full.Local() == "" || full.IsBare() {
		return nil, badRequest("{jid}", "%q is not a session's full JID local@domain/resource", r.PathValue("jid"))
	}
	reason := r.URL.Query().Get("reason")
	if err := xmlText("?reason", reason); err != nil {
		return nil, err
	}
	return nil, a.backend.EndSession(r.Context(), full, reason)
}

// componentList is the answer of GET /api/v1/components.
type componentList struct {
	Components []Component `json:"components"`
}

func (a *API) components(r *http.Request, c caller) (any, error) {
	if err := adminOnly(c); err != nil {
		return nil, err
	}
	cs, err := a.backend.Components(r.Context())
	if err != nil {
		return nil, err
	}
	return componentList{nonNil(cs)}, nil
}

// s2sList is the answer of GET /api/v1/s2s.
type s2sList struct {
	S2S []S2SStream `json:"s2s"`
}

func (a *API) s2s(r *http.Request, c caller) (any, error) {
	if err := adminOnly(c); err != nil {
		return nil, err
	}
	ss, err := a.backend.S2S(r.Context())
	if err != nil {
		return nil, err
	}
	return s2sList{nonNil(ss)}, nil
}

// reload reads the configuration and certificates again (admin).
func (a *API) reload(r *http.Request, c caller) (any, error) {
	if err := adminOnly(c); err != nil {
		return nil, err
	}
	return nil, a.backend.Reload(r.Context())
}
