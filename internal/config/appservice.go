package config

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
)

func tn(name string) string { t, _ := AppServiceEnv(name); return t }
func sn(name string) string { _, s := AppServiceEnv(name); return s }

// API configures the HTTP API (docs/appservices.md).
type API struct {
	// Addr is the API's listener, plain HTTP: keep it on loopback or
	// behind a proxy that adds TLS. It opens only when there is an admin
	// token or an application service; empty disables it.
	Addr string `toml:"addr"`
	// AdminToken authorizes everything (the admin API); empty disables
	// the admin API.
	AdminToken string `toml:"admin_token"`
	// Admins are accounts (bare JIDs) that may log in to the web admin
	// page, and the API, with their password and then act as the admin
	// token does.
	Admins []string `toml:"admins"`
}

// AppService declares an application service (the appservice package
// checks the rest of it: URL, patterns, events, hooks). It
// is read from the file only (lists of tables have no environment form),
// but for its tokens: AMBROSIA_APPSERVICE_<NAME>_TOKEN and
// ..._SERVER_TOKEN.
type AppService struct {
	Name        string           `toml:"name"`
	URL         string           `toml:"url"`
	Token       string           `toml:"token"`
	ServerToken string           `toml:"server_token"`
	Users       []string         `toml:"users"`
	Watch       []string         `toml:"watch"`
	Rooms       []string         `toml:"rooms"`
	Events      []string         `toml:"events"`
	MaxBacklog  int              `toml:"max_backlog"`
	Batch       int              `toml:"batch"`
	Hooks       []AppServiceHook `toml:"hook"`
}

// AppServiceHook is one decision hook of a service.
type AppServiceHook struct {
	Event     string   `toml:"event"`
	Timeout   Duration `toml:"timeout"`
	OnTimeout string   `toml:"on_timeout"`
}

// AppServiceEnvPrefix starts the environment variables of the services'
// tokens: the prefix, the name in capitals with '-' as '_', then _TOKEN
// or _SERVER_TOKEN.
const AppServiceEnvPrefix = "AMBROSIA_APPSERVICE_"

// AppServiceEnv returns the names of the environment variables of the
// tokens of the service named name.
func AppServiceEnv(name string) (token, serverToken string) {
	n := AppServiceEnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	return n + "_TOKEN", n + "_SERVER_TOKEN"
}

// applyAppServiceEnv fills the services' tokens from the environment.
func (c *Config) applyAppServiceEnv(lookup func(string) (string, bool)) {
	for i := range c.AppServices {
		a := &c.AppServices[i]
		tn, sn := AppServiceEnv(a.Name)
		if v, ok := lookup(tn); ok {
			a.Token = v
		}
		if v, ok := lookup(sn); ok {
			a.ServerToken = v
		}
	}
}

// validateAPI checks [api] and the [[appservice]] list.
func (c *Config) validateAPI() error {
	names := map[string]bool{}
	tokens := map[string]string{}
	if c.API.AdminToken != "" {
		if len(c.API.AdminToken) < 16 {
			return errors.New("api.admin_token: at least 16 characters")
		}
		tokens[c.API.AdminToken] = "api.admin_token"
	}
	for i, a := range c.API.Admins {
		j, err := jid.Parse(a)
		if err != nil || j.Local() == "" || j.Resource() != "" {
			return fmt.Errorf("api.admins: %q is not a bare JID such as admin@example.org", a)
		}
		c.API.Admins[i] = j.String()
	}
	for i, a := range c.AppServices {
		key := fmt.Sprintf("appservice[%d]", i)
		if a.Name == "" || strings.ContainsAny(a.Name, "@/ ") {
			return fmt.Errorf("%s.name: %q: a name without '@', '/' or spaces is required", key, a.Name)
		}
		if names[a.Name] {
			return fmt.Errorf("%s.name: %q twice", key, a.Name)
		}
		names[a.Name] = true
		if len(a.Token) < 16 || len(a.ServerToken) < 16 {
			return fmt.Errorf("appservice %s: token and server_token: at least 16 characters each (or from %s and %s)", a.Name, tn(a.Name), sn(a.Name))
		}
		for _, t := range []string{a.Token, a.ServerToken} {
			if other, ok := tokens[t]; ok {
				return fmt.Errorf("appservice %s: a token is also %s's: each must be its own", a.Name, other)
			}
			tokens[t] = "appservice " + a.Name
		}
	}
	if c.APIEnabled() && c.API.Addr != "" {
		if _, _, err := net.SplitHostPort(c.API.Addr); err != nil {
			return fmt.Errorf("api.addr: %q is not host:port", c.API.Addr)
		}
	}
	return nil
}

// APIEnabled reports whether the API is served (on api.addr, on the
// [http] listener with http.api, or both): when someone may call it (the
// admin token, an administrator's account, a service).
func (c *Config) APIEnabled() bool {
	return (c.API.Addr != "" || c.HTTP.API && c.HTTP.Addr != "") && (c.API.AdminToken != "" || len(c.API.Admins) > 0 || len(c.AppServices) > 0)
}
