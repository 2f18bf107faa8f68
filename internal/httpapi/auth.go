package httpapi

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/appservice"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
)

// caller is who made a request: the admin, or an application service.
type caller struct {
	admin bool
	// login is the administrator's account when the admin logged in
	// with a password rather than with the admin token.
	login string
	svc   *appservice.Service
}

// authenticate finds the caller whose token r carries.
func (a *API) authenticate(r *http.Request) (caller, bool) {
	tok, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return caller{}, false
	}
	if strings.HasPrefix(tok, "login-") {
		user, ok := a.logins.check(tok)
		return caller{admin: ok, login: user}, ok
	}
	if a.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.cfg.AdminToken)) == 1 {
		return caller{admin: true}, true
	}
	// Every service's token is compared, so that the time taken does not
	// tell which one matched.
	var found *appservice.Service
	for _, s := range a.cfg.Services {
		if s.TokenIs(tok) && found == nil {
			found = s
		}
	}
	if found == nil {
		return caller{}, false
	}
	return caller{svc: found}, true
}

// bearerToken returns the token of an Authorization header of the Bearer
// scheme (RFC 6750 §2.1; the scheme's name is case-insensitive).
func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// String names the caller in logs.
func (c caller) String() string {
	switch {
	case c.login != "":
		return "admin " + c.login
	case c.admin:
		return "admin"
	case c.svc != nil:
		return "appservice " + c.svc.Name
	}
	return "anonymous"
}

// LogValue names the caller in structured logs, which would otherwise
// show a struct without exported fields as {}.
func (c caller) LogValue() slog.Value { return slog.StringValue(c.String()) }

// service is the name of the caller's service, "" for the admin.
func (c caller) service() string {
	if c.svc == nil {
		return ""
	}
	return c.svc.Name
}

// actsAs reports whether c may act as user: send as them, set their
// presence, create and delete their account. A service acts as the users
// of its namespace only, never as a domain.
func (c caller) actsAs(user jid.JID) bool {
	if c.admin {
		return true
	}
	return c.svc != nil && user.Local() != "" && c.svc.ActsAs(user.BareString())
}

// watches reports whether c may read user's sessions and presence and
// read and edit their roster.
func (c caller) watches(user jid.JID) bool {
	if c.admin {
		return true
	}
	return c.svc != nil && user.Local() != "" && c.svc.Watches(user.BareString())
}

// ownsRoom reports whether c may create room and set affiliations in it.
func (c caller) ownsRoom(room jid.JID) bool {
	if c.admin {
		return true
	}
	return c.svc != nil && c.svc.OwnsRoom(room.BareString())
}
