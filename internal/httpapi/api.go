package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/appservice"
)

// DefaultMaxBody bounds a request's body when Config.MaxBody is not set.
const DefaultMaxBody = 1 << 20

// Config configures the API.
type Config struct {
	// AdminToken is the token of the admin API; empty disables it.
	AdminToken string
	// Services are the declared application services; each calls the API
	// with its own token.
	Services []*appservice.Service
	// Admins are the accounts (bare JIDs) that may log in with their
	// password (POST /api/v1/login) and then act as the admin.
	Admins []string
	// LoginTTL is how long such a login lasts without a call; zero or
	// less means DefaultLoginTTL.
	LoginTTL time.Duration
	// MaxBody bounds a request's body in bytes; larger ones get 413.
	// Zero or less means DefaultMaxBody.
	MaxBody int64
}

// API is the HTTP API. It is an http.Handler serving the paths under
// /api/v1/; it holds no state between requests besides its
// configuration and the administrators' logins.
type API struct {
	cfg     Config
	backend Backend
	log     *slog.Logger
	mux     *http.ServeMux
	logins  logins
}

var _ http.Handler = (*API)(nil)

// New builds the API over b. A nil log discards; the API logs as the
// component "api". It fails when b is nil,
// a service is nil, or two callers (the admin included) share a token,
// since a request would then act as either.
func New(cfg Config, b Backend, log *slog.Logger) (*API, error) {
	if b == nil {
		return nil, errors.New("httpapi: no backend")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	tokens := map[string]string{}
	if cfg.AdminToken != "" {
		tokens[cfg.AdminToken] = "admin_token"
	}
	for i, s := range cfg.Services {
		if s == nil {
			return nil, fmt.Errorf("httpapi: service %d is nil", i)
		}
		if s.Token == "" {
			return nil, fmt.Errorf("httpapi: appservice %s: token: required", s.Name)
		}
		if other, dup := tokens[s.Token]; dup {
			return nil, fmt.Errorf("httpapi: appservice %s: token: the same as %s's", s.Name, other)
		}
		tokens[s.Token] = "appservice " + s.Name
	}
	if cfg.LoginTTL <= 0 {
		cfg.LoginTTL = DefaultLoginTTL
	}
	a := &API{cfg: cfg, backend: b, log: log.With("component", "api"), mux: http.NewServeMux(),
		logins: logins{ttl: cfg.LoginTTL, now: time.Now, byToken: map[string]login{}}}
	a.register()
	return a, nil
}

// ServeHTTP serves one request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	a.mux.ServeHTTP(w, r)
}

// A handler serves one call of an authenticated caller. It returns what
// to answer with 200 as JSON, or nil for 204, or an error (see
// writeError).
type handler func(r *http.Request, c caller) (any, error)

// route is one call of the API.
type route struct {
	method, path string
	h            handler
	// public routes need no token; h gets the zero caller.
	public bool
	// ok is the status of success when it is not the usual one (200
	// for GET, 204 for the rest).
	ok int
	// denies is set on a public route that answers 401 itself.
	denies bool
}

// routes lists the calls of the API: what the mux serves and what the
// OpenAPI document describes.
func (a *API) routes() []route {
	return []route{
		{method: "GET", path: "/api/v1/openapi.json", h: a.openAPI, public: true},
		{method: "POST", path: "/api/v1/login", h: a.login, public: true, ok: http.StatusOK, denies: true},
		{method: "DELETE", path: "/api/v1/login", h: a.logout},
		{method: "GET", path: "/api/v1/server", h: a.server},
		{method: "GET", path: "/api/v1/stats", h: a.stats},
		{method: "POST", path: "/api/v1/send", h: a.send},
		{method: "PUT", path: "/api/v1/users/{jid}/presence", h: a.setPresence},
		{method: "GET", path: "/api/v1/users/{jid}/presence", h: a.presence},
		{method: "POST", path: "/api/v1/users", h: a.createUser},
		{method: "DELETE", path: "/api/v1/users/{jid}", h: a.deleteUser},
		{method: "GET", path: "/api/v1/users", h: a.users},
		{method: "PUT", path: "/api/v1/users/{jid}/password", h: a.setPassword},
		{method: "GET", path: "/api/v1/users/{jid}/roster", h: a.roster},
		{method: "PUT", path: "/api/v1/users/{jid}/roster/{contact}", h: a.setRosterItem},
		{method: "DELETE", path: "/api/v1/users/{jid}/roster/{contact}", h: a.removeRosterItem},
		{method: "GET", path: "/api/v1/sessions", h: a.sessions},
		// A full JID's resource may hold slashes: the rest of the path
		// is the JID, escaped or not.
		{method: "DELETE", path: "/api/v1/sessions/{jid...}", h: a.endSession},
		{method: "POST", path: "/api/v1/rooms", h: a.createRoom},
		{method: "PUT", path: "/api/v1/rooms/{jid}/affiliations/{user}", h: a.setAffiliation},
		{method: "GET", path: "/api/v1/rooms", h: a.rooms},
		{method: "GET", path: "/api/v1/components", h: a.components},
		{method: "GET", path: "/api/v1/s2s", h: a.s2s},
		{method: "POST", path: "/api/v1/reload", h: a.reload},
	}
}

// register fills the mux with the routes, and with JSON answers for the
// methods and paths that are none of them.
func (a *API) register() {
	allowed := map[string][]string{}
	for _, rt := range a.routes() {
		a.mux.Handle(rt.method+" "+rt.path, a.serve(rt))
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	for p, methods := range allowed {
		if slices.Contains(methods, "GET") {
			methods = append(methods, "HEAD")
		}
		slices.Sort(methods)
		allow := strings.Join(methods, ", ")
		a.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeJSONError(w, http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path+": method not allowed (allowed: "+allow+")")
		})
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, r.URL.Path+": no such call (see /api/v1/openapi.json)")
	})
}

// serve authenticates the caller of rt and answers with what its handler
// returns.
func (a *API) serve(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c caller
		if !rt.public {
			var ok bool
			if c, ok = a.authenticate(r); !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ambrosia"`)
				writeJSONError(w, http.StatusUnauthorized, "missing or invalid token: want Authorization: Bearer <token>")
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBody)
		v, err := rt.h(r, c)
		if err != nil {
			a.writeError(w, r, c, err)
			return
		}
		if r.Method != http.MethodGet {
			a.log.Debug("api call", "caller", c, "method", r.Method, "path", r.URL.Path)
		}
		if v == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		b, ok := v.(json.RawMessage)
		if !ok {
			if b, err = json.Marshal(v); err != nil {
				a.writeError(w, r, c, fmt.Errorf("encode the answer: %w", err))
				return
			}
		}
		writeJSON(w, http.StatusOK, b)
	})
}
