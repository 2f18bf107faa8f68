package irc

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
)

// Config is what the operator tells the IRC bridge, in TOML under the
// bridge's own configuration (see the package documentation).
type Config struct {
	// Server is the IRC server, host:port. Its host is also the id under
	// which the server's own notices reach users.
	Server string `toml:"server"`
	// TLS connects with TLS from the start (usually on port 6697).
	TLS bool `toml:"tls"`
	// TLSCAFile, when set, is a PEM file of the authorities that sign the
	// server's certificate, instead of the system's.
	TLSCAFile string `toml:"tls_ca_file"`
	// Mode is "puppet" (one connection per XMPP user, under a nick made
	// from their address, nobody registers) or "transport" (each user
	// registers a nick and, if they have them, a server password and a
	// NickServ password).
	Mode string `toml:"mode"`
	// Password is the server password (PASS) of every connection in
	// puppet mode; in transport mode each user gives their own.
	Password string `toml:"password"`
	// NickSuffix is appended to the nicks made from XMPP addresses in
	// puppet mode, such as "[x]", so that IRC users see who is bridged.
	NickSuffix string `toml:"nick_suffix"`
	// Username is the user name of USER (the ident part of nick!user@host);
	// empty for one made from the nick.
	Username string `toml:"username"`
	// Realname is the real name of USER.
	Realname string `toml:"realname"`
	// FloodRate is how many lines per second one connection writes after
	// a burst of FloodBurst lines, below the server's own flood limits;
	// 0 does not limit.
	FloodRate  float64 `toml:"flood_rate"`
	FloodBurst int     `toml:"flood_burst"`
	// ContactPoll is how often a session asks the server with ISON which
	// of the user's contacts are online, when the server does not offer
	// MONITOR, which tells at once; such as "1m", the default when zero.
	ContactPoll bridge.Duration `toml:"contact_poll"`
}

// defaultContactPoll is ContactPoll's default.
const defaultContactPoll = time.Minute

// DefaultConfig has every default: puppet mode, plain TCP, two lines a
// second after a burst of five.
func DefaultConfig() Config {
	return Config{
		Mode:        "puppet",
		Realname:    "Ambrosia XMPP bridge",
		FloodRate:   2,
		FloodBurst:  5,
		ContactPoll: bridge.Duration(defaultContactPoll),
	}
}

// Validate checks the configuration and names the key of the first
// problem.
func (c *Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Server)
	if err != nil || host == "" {
		return fmt.Errorf("server: %q is not host:port, such as irc.libera.chat:6697", c.Server)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("server: %q has no valid port", c.Server)
	}
	switch c.Mode {
	case "puppet", "transport":
	default:
		return fmt.Errorf("mode: %q is not puppet or transport", c.Mode)
	}
	if c.TLSCAFile != "" && !c.TLS {
		return errors.New("tls_ca_file: set, but tls is off")
	}
	if strings.ContainsAny(c.NickSuffix, " ,*?!@:\r\n\x00") {
		return fmt.Errorf("nick_suffix: %q cannot be part of a nick", c.NickSuffix)
	}
	if strings.ContainsAny(c.Username, " @\r\n\x00") {
		return fmt.Errorf("username: %q cannot be a user name", c.Username)
	}
	if strings.ContainsAny(c.Realname+c.Password, "\r\n\x00") {
		return errors.New("realname, password: no line breaks")
	}
	if c.FloodRate < 0 || c.FloodBurst < 0 || c.FloodRate > 0 && c.FloodBurst < 1 {
		return errors.New("flood_rate, flood_burst: not negative, and a burst of at least 1 with a rate")
	}
	if c.ContactPoll != 0 && time.Duration(c.ContactPoll) < time.Second {
		return fmt.Errorf("contact_poll: %v is less than a second", time.Duration(c.ContactPoll))
	}
	return nil
}
