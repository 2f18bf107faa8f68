package httpapi

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"slices"
	"sync"
	"time"
)

// DefaultLoginTTL is how long an admin login lasts without a call.
const DefaultLoginTTL = time.Hour

// logins are the tokens handed to administrators who logged in with their
// account's password (the web admin page does so), so that they need not
// know the admin token. They live in memory only: a restart logs everyone
// out, which is what one expects of a web login.
type logins struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	// byToken maps a token to the administrator and the end of its life,
	// pushed back by each use.
	byToken map[string]login
}

type login struct {
	user    string
	expires time.Time
}

// start hands out a token for user.
func (l *logins) start(user string) (string, time.Time) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	tok := "login-" + base64.RawURLEncoding.EncodeToString(b)
	exp := l.now().Add(l.ttl)
	l.mu.Lock()
	defer l.mu.Unlock()
	// Expired logins go when a new one comes, which bounds the map by
	// the logins of one TTL.
	for t, li := range l.byToken {
		if !l.now().Before(li.expires) {
			delete(l.byToken, t)
		}
	}
	l.byToken[tok] = login{user: user, expires: exp}
	return tok, exp
}

// check returns the administrator whose token tok is, extending its life.
func (l *logins) check(tok string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	li, ok := l.byToken[tok]
	if !ok {
		return "", false
	}
	now := l.now()
	if !now.Before(li.expires) {
		delete(l.byToken, tok)
		return "", false
	}
	li.expires = now.Add(l.ttl)
	l.byToken[tok] = li
	return li.user, true
}

// end forgets tok.
func (l *logins) end(tok string) {
	l.mu.Lock()
	delete(l.byToken, tok)
	l.mu.Unlock()
}

// loginRequest is the body of POST /api/v1/login.
type loginRequest struct {
	JID      string `json:"jid"`
	Password string `json:"password"`
}

// loginAnswer is its answer.
type loginAnswer struct {
	Token   string    `json:"token"`
	JID     string    `json:"jid"`
	Expires time.Time `json:"expires"`
}

// login checks an administrator's password. Whether the account exists,
// is an administrator, or the password is wrong, the answer is the same
// 401, and the password is checked in every case, so that neither the
// answer nor its time tells which.
func (a *API) login(r *http.Request, _ caller) (any, error) {
	var q loginRequest
	if err := decodeJSON(r.Body, &q); err != nil {
		return nil, err
	}
	user, err := parseUser("jid", q.JID)
	if err != nil {
		return nil, err
	}
	if q.Password == "" {
		return nil, badRequest("password", "required")
	}
	ok, err := a.backend.CheckPassword(r.Context(), user, q.Password)
	if err != nil {
		return nil, err
	}
	if !ok || !slices.Contains(a.cfg.Admins, user.BareString()) {
		a.log.Info("admin login failed", "user", user.BareString(), "remote", r.RemoteAddr)
		return nil, &httpError{http.StatusUnauthorized, "wrong account or password, or the account is not an administrator (api.admins)"}
	}
	tok, exp := a.logins.start(user.BareString())
	a.log.Info("admin login", "user", user.BareString(), "remote", r.RemoteAddr)
	return loginAnswer{Token: tok, JID: user.BareString(), Expires: exp.UTC()}, nil
}

// logout ends the login whose token the request carries; the admin token
// and services' tokens are not logins and stay valid.
func (a *API) logout(r *http.Request, c caller) (any, error) {
	if c.login == "" {
		return nil, badRequest("Authorization", "not a login's token")
	}
	tok, _ := bearerToken(r.Header.Get("Authorization"))
	a.logins.end(tok)
	return nil, nil
}

// passwordRequest is the body of PUT /api/v1/users/{jid}/password.
type passwordRequest struct {
	Password    string `json:"password"`
	EndSessions bool   `json:"end_sessions"`
}

func (a *API) setPassword(r *http.Request, c caller) (any, error) {
	if err := adminOnly(c); err != nil {
		return nil, err
	}
	user, err := pathUser(r, c, false)
	if err != nil {
		return nil, err
	}
	var q passwordRequest
	if err := decodeJSON(r.Body, &q); err != nil {
		return nil, err
	}
	if q.Password == "" {
		return nil, badRequest("password", "required")
	}
	return nil, a.backend.SetPassword(r.Context(), user, q.Password, q.EndSessions)
}

// stats is the answer of GET /api/v1/stats.
type stats struct {
	Stats map[string]float64 `json:"stats"`
}

func (a *API) stats(r *http.Request, c caller) (any, error) {
	if err := adminOnly(c); err != nil {
		return nil, err
	}
	s, err := a.backend.Stats(r.Context())
	if err != nil {
		return nil, err
	}
	return stats{Stats: s}, nil
}

func (a *API) server(r *http.Request, c caller) (any, error) {
	if err := adminOnly(c); err != nil {
		return nil, err
	}
	info, err := a.backend.Server(r.Context())
	info.Domains, info.Conference = nonNil(info.Domains), nonNil(info.Conference)
	return info, err
}
