package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge/internal/store"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/link"
	"github.com/ambrosia-xmpp/ambrosia/internal/mam"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Config is what a bridge is told by its operator, in the [bridge]
// section of `ambrosia bridge`'s TOML file (the tags name its keys).
// Every field has a default but Domain and the connection's address and
// secret.
type Config struct {
	// Domain is the bridge's own XMPP domain, such as irc.example.org.
	Domain string `toml:"domain"`
	// DataDir holds the bridge's database and the key that seals
	// credentials.
	DataDir string `toml:"data_dir"`
	// Connect says how the bridge reaches the XMPP network.
	Connect Connect `toml:"connect"`
	// MaxMessageBytes bounds a message body sent to the network; longer
	// ones are refused with policy-violation.
	MaxMessageBytes int `toml:"max_message_bytes"`
	// RateLimit is how many stanzas per second one user may send to the
	// network on average, RateBurst how many at once; beyond, the bridge
	// answers resource-constraint. 0 does not limit.
	RateLimit float64 `toml:"rate_limit"`
	RateBurst int     `toml:"rate_burst"`
	// QueueLimit bounds the stanzas kept for one user who is away (for a
	// network whose sessions stay online); the oldest go first.
	QueueLimit int `toml:"queue_limit"`
	// ReloginMin and ReloginMax bound the wait before a session that
	// ended on its own is logged in again; it doubles after each failure.
	ReloginMin Duration `toml:"relogin_min"`
	ReloginMax Duration `toml:"relogin_max"`
}

// Connect is how a bridge reaches the XMPP network.
type Connect struct {
	// Mode is "component" (XEP-0114, to any server), "service" (Ambrosia's
	// service protocol, to its gateways) or "server" (a federated server
	// of its own).
	Mode string `toml:"mode"`
	// Server is, for a component, the server's component listener
	// (host:port); for a service, the gateways' service listeners,
	// comma-separated.
	Server string `toml:"server"`
	// Secret is the component's shared secret, or the service secret.
	Secret string `toml:"secret"`
	// Instance names this instance among those of a service.
	Instance string `toml:"instance"`
	// For a server: the listener of other servers (host:port), the
	// certificate and key of Domain (a self-signed one in DataDir when
	// empty), the secret of dialback keys, and addresses of other servers
	// that override DNS (domain -> host:port).
	Listen    string            `toml:"listen"`
	CertFile  string            `toml:"cert_file"`
	KeyFile   string            `toml:"key_file"`
	Dialback  string            `toml:"dialback_secret"`
	TrustFile string            `toml:"trust_file"`
	Hosts     map[string]string `toml:"hosts"`
}

// Duration is a time.Duration written as "30s" in TOML.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// DefaultConfig has every default.
func DefaultConfig() Config {
	return Config{
		DataDir:         "./bridge-data",
		Connect:         Connect{Mode: "component", Server: "127.0.0.1:5347"},
		MaxMessageBytes: 64 << 10,
		RateLimit:       10,
		RateBurst:       50,
		QueueLimit:      10000,
		ReloginMin:      Duration(time.Second),
		ReloginMax:      Duration(5 * time.Minute),
	}
}

// Validate checks the configuration and names the key of the first
// problem.
func (c *Config) Validate() error {
	d, err := jid.New("", c.Domain, "")
	if err != nil || c.Domain == "" {
		return fmt.Errorf("domain: %q is not a domain such as irc.example.org", c.Domain)
	}
	c.Domain = d.Domain()
	switch c.Connect.Mode {
	case "component", "service":
		if c.Connect.Server == "" {
			return fmt.Errorf("connect.server: required in %s mode", c.Connect.Mode)
		}
		if c.Connect.Secret == "" {
			return fmt.Errorf("connect.secret: required in %s mode", c.Connect.Mode)
		}
	case "server":
		if c.Connect.Listen == "" {
			return errors.New("connect.listen: required in server mode (e.g. \":5269\")")
		}
	default:
		return fmt.Errorf("connect.mode: %q is not component, service or server", c.Connect.Mode)
	}
	switch {
	case c.DataDir == "":
		return errors.New("data_dir: must not be empty")
	case c.MaxMessageBytes < 1:
		return errors.New("max_message_bytes: must be positive")
	case c.RateLimit < 0 || c.RateBurst < 0 || (c.RateLimit > 0 && c.RateBurst < 1):
		return errors.New("rate_limit, rate_burst: not negative, and a burst of at least 1 with a limit")
	case c.QueueLimit < 0:
		return errors.New("queue_limit: must not be negative")
	case c.ReloginMin <= 0 || c.ReloginMax < c.ReloginMin:
		return errors.New("relogin_min, relogin_max: positive, the maximum not below the minimum")
	}
	return nil
}

// Bridge is one running bridge.
type Bridge struct {
	cfg    Config
	net    Network
	desc   Description
	log    *slog.Logger
	domain jid.JID
	st     *store.Store
	rt     *router.Router

	privileged privileges // what the server lets the bridge do for its users
	ids        mam.IDs    // stanza ids of the rooms' messages
	// durable is set over Ambrosia's service protocol, whose
	// acknowledgements let the bridge keep what is in flight until it is
	// safe: a crash then loses no message (see post and Take).
	durable  bool
	instance string // names this bridge in the origins of what it posts
	idmap    *idMap
	logins   *logins // logins in steps under way (ad-hoc commands)

	mu       sync.Mutex
	users    map[string]*user // by bare JID
	rooms    map[string]*bridgedRoom
	sample   Session // a session, to tell what the network supports before a user has one
	avatars  map[UserID]avatarInfo
	stopping bool
	// rosterSets are the roster sets sent and not answered, by id.
	rosterSets map[string]rosterSet
}

// New returns a bridge for the network; Run starts it.
func New(n Network, cfg Config, log *slog.Logger) (*Bridge, error) {
	if n == nil || log == nil {
		return nil, errors.New("bridge: a network and a logger are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	desc := n.Describe()
	if desc.Name == "" {
		desc.Name = cfg.Domain
	}
	if desc.Type == "" {
		desc.Type = "xmpp"
	}
	b := &Bridge{
		cfg: cfg, net: n, desc: desc, log: log.With("bridge", cfg.Domain),
		domain:  jid.MustParse(cfg.Domain),
		users:   map[string]*user{},
		rooms:   map[string]*bridgedRoom{},
		avatars: map[UserID]avatarInfo{},
		logins:  newLogins(),
	}
	return b, nil
}

// Run opens the bridge's store, connects to the XMPP network as the
// configuration says and serves until ctx is done; then it logs every
// session out.
func (b *Bridge) Run(ctx context.Context) error {
	st, err := store.Open(ctx, b.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	defer st.Close()
	b.st = st
	b.idmap = newIDMap(ctx, st, b.log.Error)
	defer b.idmap.flush()
	rt := router.New(b.log.With("component", "router"))
	if err := rt.Register(b.cfg.Domain, b); err != nil {
		return err
	}
	b.rt = rt
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	if b.cfg.Connect.Mode == "service" {
		b.durable = true
		b.instance, err = st.Meta(ctx, "instance", func() string {
			if b.cfg.Connect.Instance != "" {
				return b.cfg.Connect.Instance
			}
			return stanza.NewID()
		})
		if err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
	}
	conn, err := b.connector(rt)
	if err != nil {
		return err
	}
	go func() { errc <- conn(ctx) }()
	if b.durable {
		b.resume(ctx)
	}
	if s, ok := b.net.(Starter); ok {
		if err := s.Start(ctx, b); err != nil {
			cancel()
			<-errc
			return fmt.Errorf("bridge: start %s: %w", b.desc.Name, err)
		}
	}
	b.log.Info("bridge running", "network", b.desc.Name, "mode", b.cfg.Connect.Mode)
	select {
	case err = <-errc:
		cancel()
	case <-ctx.Done():
		err = <-errc
	}
	b.shutdown()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// attach serves the bridge on rt with an already open store: what Run
// does once connected, for tests and for a bridge hosted in a server.
func (b *Bridge) attach(rt *router.Router, st *store.Store) error {
	b.rt, b.st = rt, st
	b.idmap = newIDMap(context.Background(), st, b.log.Error)
	return rt.Register(b.cfg.Domain, b)
}

// shutdown logs every session out.
func (b *Bridge) shutdown() {
	b.logins.endAll()
	b.mu.Lock()
	b.stopping = true
	users := make([]*user, 0, len(b.users))
	for _, u := range b.users {
		users = append(users, u)
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, u := range users {
		u.logout(ctx, "the bridge is stopping")
	}
}

// Events returns the Events of an XMPP user's session, for a Network that
// reports on its own initiative (see Starter); the user's session is
// opened if it is not.
func (b *Bridge) Events(user string) (Events, error) {
	j, err := jid.Parse(user)
	if err != nil || j.Local() == "" {
		return nil, fmt.Errorf("bridge: %q is not a user's JID", user)
	}
	return b.user(j.Bare()).events, nil
}

// resume sends again what a crash left in flight: stanzas posted to XMPP
// and not acknowledged, stanzas for the network taken and not handled.
func (b *Bridge) resume(ctx context.Context) {
	posted, err := b.st.Posted(ctx)
	if err != nil {
		b.log.Error("resume", "err", err)
	}
	for _, p := range posted {
		el, err := xmlstream.ParseStanza(p.Stanza, xmlstream.NSClient)
		if err != nil {
			_ = b.st.Sent(ctx, p.Seq)
			continue
		}
		b.routePosted(ctx, el, p.Seq)
	}
	taken, err := b.st.Inbox(ctx)
	if err != nil {
		b.log.Error("resume", "err", err)
	}
	for _, t := range taken {
		el, err := xmlstream.ParseStanza(t.Stanza, xmlstream.NSClient)
		from, err1 := jid.Parse(el.Attr("from"))
		to, err2 := jid.Parse(el.Attr("to"))
		if err != nil || err1 != nil || err2 != nil {
			_ = b.st.Done(ctx, t.Event, nowFunc())
			continue
		}
		b.log.Info("sending again what a crash left for the network", "event", t.Event)
		b.redo(ctx, t.Event, router.Stanza{El: el, From: from, To: to})
	}
	if len(posted)+len(taken) > 0 {
		b.log.Info("resumed after a crash", "to_xmpp", len(posted), "to_network", len(taken))
	}
}

// send routes a stanza for XMPP; a message with content is posted first
// when the connection lets the bridge keep it until acknowledged.
func (b *Bridge) send(ctx context.Context, el *xmlstream.Element) {
	if !b.durable || el.Local != stanza.Message || el.Child(xmlstream.NSClient, "body") == nil {
		b.route(ctx, el)
		return
	}
	seq, err := b.st.Post(ctx, el.AppendXML(nil, xmlstream.NSClient))
	if err != nil {
		b.log.Error("posting a message", "err", err)
		b.route(ctx, el)
		return
	}
	b.routePosted(ctx, el, seq)
}

// routePosted routes a posted stanza, named so that a gateway that got it
// before a crash drops the copy, and forgotten once acknowledged.
func (b *Bridge) routePosted(ctx context.Context, el *xmlstream.Element, seq int64) {
	origin := "bridge:" + b.instance + ":" + strconv.FormatInt(seq, 10)
	b.route(link.WithDelivery(ctx, origin, func() {
		if err := b.st.Sent(context.Background(), seq); err != nil {
			b.log.Error("forgetting a delivered message", "err", err)
		}
	}), el)
}

// route sends a stanza the bridge made; its to and from are set.
func (b *Bridge) route(ctx context.Context, el *xmlstream.Element) {
	to, err := jid.Parse(el.Attr("to"))
	if err != nil {
		return
	}
	from, err := jid.Parse(el.Attr("from"))
	if err != nil {
		return
	}
	b.rt.Route(ctx, router.Stanza{El: el, From: from, To: to})
}

// bounce answers st with an error from the address it was sent to.
func (b *Bridge) bounce(ctx context.Context, st router.Stanza, cond, text string) {
	if !stanza.MayBounce(st.El) {
		return
	}
	el := st.El
	if el.Local == stanza.IQ && el.Child(nsRegister, "query") != nil {
		// A registration's error does not carry the request back: it may
		// hold the user's password for the other network.
		el = el.ShallowCopy()
		el.SetNodes(nil)
	}
	r := stanza.ErrorReply(el, cond, text)
	r.SetAttr("from", st.To.String())
	r.SetAttr("to", st.From.String())
	b.rt.Route(ctx, router.Stanza{El: r, From: st.To, To: st.From})
}

// reply sends an IQ answer from the address the request went to.
func (b *Bridge) reply(ctx context.Context, st router.Stanza, r *xmlstream.Element) {
	r.SetAttr("from", st.To.String())
	r.SetAttr("to", st.From.String())
	b.rt.Route(ctx, router.Stanza{El: r, From: st.To, To: st.From})
}

// errorFor is the XMPP condition of an error a session returned.
func errorFor(err error) (cond, text string) {
	switch {
	case errors.Is(err, ErrNoSuchUser):
		return stanza.ItemNotFound, ""
	case errors.Is(err, ErrUnavailable):
		return stanza.RecipientUnavailable, ""
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return stanza.RemoteServerTimeout, ""
	case errors.Is(err, ErrNotAllowed):
		return stanza.Forbidden, err.Error()
	case errors.Is(err, ErrBadCredentials):
		return stanza.NotAuthorized, err.Error()
	case errors.Is(err, ErrConflict):
		return stanza.Conflict, err.Error()
	}
	return stanza.InternalServerError, ""
}

// contactJID is the XMPP address of a user of the network.
func (b *Bridge) contactJID(id UserID) (jid.JID, error) {
	return jid.New(jid.EscapeLocal(string(id)), b.cfg.Domain, "")
}

// roomJID is the XMPP address of a room of the network.
func (b *Bridge) roomJID(id RoomID) (jid.JID, error) {
	return jid.New(jid.EscapeLocal(string(id)), b.cfg.Domain, "")
}
