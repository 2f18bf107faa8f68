package irc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/irc/ircconn"
)

// Names of the registration fields in transport mode.
const (
	fieldNick     = "nick"
	fieldPassword = "password"
	fieldNickServ = "nickserv"
)

// caps are the IRCv3 capabilities the bridge uses when the server has
// them.
var caps = []string{"multi-prefix", "away-notify", "server-time", "message-tags"}

// Network is an IRC server bridged to XMPP. It implements bridge.Network
// and bridge.RoomAddresser.
type Network struct {
	cfg  Config
	log  *slog.Logger
	mode bridge.Mode
	tls  *tls.Config
	host bridge.UserID // the server's own id, for its notices

	nickLen atomic.Int32 // the server's NICKLEN, once a connection told it
}

var (
	_ bridge.Network       = (*Network)(nil)
	_ bridge.RoomAddresser = (*Network)(nil)
)

// New returns the network of an IRC server; pass it to bridge.New.
func New(cfg Config, log *slog.Logger) (*Network, error) {
	if log == nil {
		return nil, errors.New("irc: a logger is required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("irc: %w", err)
	}
	host, _, _ := net.SplitHostPort(cfg.Server)
	n := &Network{cfg: cfg, log: log.With("network", "irc", "server", cfg.Server), mode: bridge.Puppet, host: bridge.UserID(host)}
	if cfg.Mode == "transport" {
		n.mode = bridge.Transport
	}
	if cfg.TLS {
		n.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TLSCAFile != "" {
			pem, err := os.ReadFile(cfg.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("irc: tls_ca_file: %w", err)
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("irc: tls_ca_file: no certificate in %s", cfg.TLSCAFile)
			}
			n.tls.RootCAs = roots
		}
	}
	return n, nil
}

// Describe implements bridge.Network.
func (n *Network) Describe() bridge.Description {
	d := bridge.Description{Name: "IRC", Type: "irc", Mode: n.mode, Session: (*session)(nil)}
	if n.mode == bridge.Transport {
		d.Registration = []bridge.Field{
			{Name: fieldNick, Label: "Nick", Required: true},
			{Name: fieldPassword, Label: "Server password (if the server wants one)", Secret: true},
			{Name: fieldNickServ, Label: "NickServ password (if your nick is registered)", Secret: true},
		}
		d.Instructions = "Choose your nick on " + n.cfg.Server + "; give the server's password if it asks for one, and your NickServ password if your nick is registered."
	}
	return d
}

// IsRoom implements bridge.RoomAddresser: an IRC channel's name starts
// with '#', '&', '+' or '!'.
func (n *Network) IsRoom(id string) bool {
	return id != "" && strings.IndexByte("#&+!", id[0]) >= 0
}

// Login implements bridge.Network: it connects, registers and, with a
// NickServ password, identifies.
func (n *Network) Login(ctx context.Context, acct bridge.Account, ev bridge.Events) (bridge.Session, error) {
	cfg := ircconn.Config{
		Addr: n.cfg.Server, TLS: n.tls, User: n.cfg.Username, Realname: n.cfg.Realname, Caps: caps,
		FloodRate: n.cfg.FloodRate, FloodBurst: n.cfg.FloodBurst,
	}
	var nickserv string
	if n.mode == bridge.Transport {
		cfg.Nick = acct.Credentials[fieldNick]
		if !validNick(cfg.Nick) {
			return nil, fmt.Errorf("irc: %q cannot be a nick: %w", cfg.Nick, bridge.ErrBadCredentials)
		}
		cfg.Password, nickserv = acct.Credentials[fieldPassword], acct.Credentials[fieldNickServ]
		if strings.ContainsAny(cfg.Password+nickserv, "\r\n\x00") {
			return nil, fmt.Errorf("irc: a password with a line break: %w", bridge.ErrBadCredentials)
		}
	} else {
		local, _, _ := strings.Cut(acct.JID, "@")
		cfg.Nick = puppetNick(local, n.cfg.NickSuffix, int(n.nickLen.Load()))
		cfg.Password = n.cfg.Password
	}
	c, err := ircconn.Dial(ctx, cfg)
	if err != nil {
		return nil, n.loginError(ctx, err)
	}
	if l := c.Support().Int("NICKLEN", 0); l > 0 {
		n.nickLen.Store(int32(l))
	}
	s := newSession(n, c, ev, acct.JID)
	go s.run()
	if nickserv != "" {
		// As biboumi and Spectrum do; services answer with a notice.
		if err := c.Privmsg(ctx, "NickServ", "IDENTIFY "+cfg.Nick+" "+nickserv); err != nil {
			s.Logout(ctx)
			return nil, fmt.Errorf("irc: identify: %w", bridge.ErrUnavailable)
		}
	}
	close(s.ready)
	poll := time.Duration(n.cfg.ContactPoll)
	if poll <= 0 {
		poll = defaultContactPoll
	}
	s.follow(ctx, acct.Contacts, poll)
	n.log.Debug("logged in", "user", acct.JID, "nick", c.Nick())
	return s, nil
}

// loginError maps a failed connection to the bridge's errors.
func (n *Network) loginError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, ircconn.ErrPassword):
		return fmt.Errorf("irc: %w: %w", bridge.ErrBadCredentials, err)
	case errors.Is(err, ircconn.ErrBadNick) && n.mode == bridge.Transport:
		return fmt.Errorf("irc: %w: %w", bridge.ErrBadCredentials, err)
	case errors.Is(err, ircconn.ErrBanned), errors.Is(err, ircconn.ErrNickInUse), errors.Is(err, ircconn.ErrBadNick):
		return fmt.Errorf("irc: %w: %w", bridge.ErrNotAllowed, err)
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("irc: %s: %w", n.cfg.Server, bridge.ErrTimeout)
	}
	return fmt.Errorf("irc: %s: %w: %w", n.cfg.Server, bridge.ErrUnavailable, err)
}

// validNick reports whether s may be sent as a nick: what servers refuse
// for certain (spaces, the separators of addresses and lists, a leading
// digit or '-' or '#') is not in it.
func validNick(s string) bool {
	if s == "" || len(s) > 64 || strings.ContainsAny(s, " ,*?!@:.\r\n\x00\x07") {
		return false
	}
	return !strings.ContainsAny(s[:1], "0123456789-#&+~$")
}

// puppetNick makes a nick from the localpart of a JID: the characters a
// nick may hold ('.' and the like as '_'), one '_' in front when it
// starts as a nick may not, "xmpp" when nothing is left; cut to maxLen
// (when known) so that the suffix fits.
func puppetNick(local, suffix string, maxLen int) string {
	b := make([]byte, 0, len(local))
	for i := 0; i < len(local); i++ {
		c := local[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("-[]\\`^_{|}", c) >= 0:
			b = append(b, c)
		case c == '.' || c == '+' || c == '=' || c == '\'':
			b = append(b, '_')
		}
	}
	nick := string(b)
	if nick == "" {
		nick = "xmpp"
	}
	if strings.IndexByte("0123456789-", nick[0]) >= 0 {
		nick = "_" + nick
	}
	if maxLen > 0 && len(nick)+len(suffix) > maxLen {
		nick = nick[:max(maxLen-len(suffix), 1)]
	}
	return nick + suffix
}
