package appservice

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"
)

// Config declares one application service.
type Config struct {
	// Name names the service in logs and metrics, and is the resource of
	// its users' sessions.
	Name string
	// URL is where the server sends transactions and hook calls.
	URL string
	// Token is the service's, to call the API; ServerToken the server's,
	// sent with every call to the service.
	Token, ServerToken string
	// Users are regular expressions on bare JIDs: the users the service
	// acts as. Watch: the users whose logins, logouts and accounts it
	// hears of, and whose rosters it may edit. Rooms: the rooms whose
	// joins, leaves and messages it hears of.
	Users, Watch, Rooms []string
	// Events are the event types the service receives; empty for all.
	Events []string
	// Hooks are the decisions the service takes before delivery.
	Hooks []HookConfig
	// MaxBacklog bounds the events kept while the service is away; the
	// oldest go first beyond. Batch bounds the events of a transaction.
	MaxBacklog, Batch int
}

// HookConfig is one decision hook.
type HookConfig struct {
	// Event is "message", "subscription" or "room_message".
	Event string
	// Timeout is how long a stanza waits for the decision.
	Timeout time.Duration
	// OnTimeout is "allow" or "deny": the decision when none came in
	// time, or one that makes no sense.
	OnTimeout string
}

// Hook events.
const (
	HookMessage      = "message"
	HookSubscription = "subscription"
	HookRoomMessage  = "room_message"
)

// Defaults of a service's bounds.
const (
	DefaultMaxBacklog = 100000
	DefaultBatch      = 100
	DefaultTimeout    = 200 * time.Millisecond
)

var allEvents = []string{EventMessage, EventPresence, EventSubscription, EventIQ, EventRoster,
	EventLogin, EventLogout, EventAccountCreated, EventAccountRemoved, EventRoomJoin, EventRoomLeave, EventRoomMessage}

// Service is a declared service, its patterns compiled.
type Service struct {
	Config
	users, watch, rooms []*regexp.Regexp
	events              map[string]bool
	hooks               map[string]HookConfig
}

// Compile checks c and compiles its patterns; errors name the setting.
func Compile(c Config) (*Service, error) {
	if c.Name == "" {
		return nil, errors.New("name: required")
	}
	bad := func(key string, err error) error { return fmt.Errorf("appservice %s: %s: %w", c.Name, key, err) }
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, bad("url", fmt.Errorf("%q is not an http or https URL", c.URL))
	}
	if len(c.Token) < 16 {
		return nil, bad("token", errors.New("at least 16 characters"))
	}
	if len(c.ServerToken) < 16 {
		return nil, bad("server_token", errors.New("at least 16 characters"))
	}
	if c.Token == c.ServerToken {
		return nil, bad("server_token", errors.New("must differ from token"))
	}
	s := &Service{Config: c, events: map[string]bool{}, hooks: map[string]HookConfig{}}
	for _, p := range []struct {
		key  string
		src  []string
		dest *[]*regexp.Regexp
	}{{"users", c.Users, &s.users}, {"watch", c.Watch, &s.watch}, {"rooms", c.Rooms, &s.rooms}} {
		for _, e := range p.src {
			re, err := regexp.Compile(e)
			if err != nil {
				return nil, bad(p.key, err)
			}
			*p.dest = append(*p.dest, re)
		}
	}
	evs := c.Events
	if len(evs) == 0 {
		evs = allEvents
	}
	for _, e := range evs {
		if !slices.Contains(allEvents, e) {
			return nil, bad("events", fmt.Errorf("unknown event %q (known: %v)", e, allEvents))
		}
		s.events[e] = true
	}
	for _, h := range c.Hooks {
		switch h.Event {
		case HookMessage, HookSubscription, HookRoomMessage:
		default:
			return nil, bad("hook.event", fmt.Errorf("%q: want message, subscription or room_message", h.Event))
		}
		if _, dup := s.hooks[h.Event]; dup {
			return nil, bad("hook.event", fmt.Errorf("%q twice", h.Event))
		}
		switch h.OnTimeout {
		case "":
			h.OnTimeout = "allow"
		case "allow", "deny":
		default:
			return nil, bad("hook.on_timeout", fmt.Errorf("%q: want allow or deny", h.OnTimeout))
		}
		if h.Timeout <= 0 {
			h.Timeout = DefaultTimeout
		}
		s.hooks[h.Event] = h
	}
	if s.MaxBacklog <= 0 {
		s.MaxBacklog = DefaultMaxBacklog
	}
	if s.Batch <= 0 {
		s.Batch = DefaultBatch
	}
	return s, nil
}

func matches(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// ActsAs reports whether bare is a user of the service's namespace.
func (s *Service) ActsAs(bare string) bool { return matches(s.users, bare) }

// Watches reports whether the service hears of bare's logins and
// accounts and may edit its roster; the service's own users are watched.
func (s *Service) Watches(bare string) bool { return matches(s.watch, bare) || matches(s.users, bare) }

// OwnsRoom reports whether room (a bare JID) is one of the service's.
func (s *Service) OwnsRoom(room string) bool { return matches(s.rooms, room) }

// Wants reports whether the service receives events of type t.
func (s *Service) Wants(t string) bool { return s.events[t] }

// Hook returns the service's hook on event, if it has one.
func (s *Service) Hook(event string) (HookConfig, bool) {
	h, ok := s.hooks[event]
	return h, ok
}

// TokenIs reports whether tok is the service's token, in constant time.
func (s *Service) TokenIs(tok string) bool {
	return subtle.ConstantTimeCompare([]byte(tok), []byte(s.Token)) == 1
}
