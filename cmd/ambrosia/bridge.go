package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/example/linechat"
	"github.com/ambrosia-xmpp/ambrosia/bridge/irc"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
)

// builtinBridge is a bridge this binary runs: its description and how to
// make its network from its own section of the configuration file.
type builtinBridge struct {
	about string
	// make decodes the network's section (strictly) and returns the
	// network.
	make func(section []byte, log *slog.Logger) (bridge.Network, error)
}

// bridges are the built-in bridges, by name.
var bridges = map[string]builtinBridge{
	"irc": {
		about: "IRC, puppets or a transport (bridge/irc): [irc] server = \"host:port\", mode = \"puppet\" | \"transport\", tls, ...",
		make: func(section []byte, log *slog.Logger) (bridge.Network, error) {
			c := irc.DefaultConfig()
			if err := decodeStrict(section, &c); err != nil {
				return nil, err
			}
			return irc.New(c, log)
		},
	},
	"linechat": {
		about: "the line chat of the SDK's example (bridge/example/linechat): [linechat] addr = \"host:port\"",
		make: func(section []byte, _ *slog.Logger) (bridge.Network, error) {
			var c struct {
				Addr string `toml:"addr"`
			}
			if err := decodeStrict(section, &c); err != nil {
				return nil, err
			}
			if c.Addr == "" {
				return nil, errors.New("linechat.addr: required")
			}
			return &linechat.Network{Addr: c.Addr}, nil
		},
	},
}

const bridgeUsage = `usage: ambrosia bridge run|check NAME --config FILE [flags]
       ambrosia bridge list

The configuration file has a [bridge] section (bridge.Config: domain,
data_dir, [bridge.connect] mode = "component" | "service" | "server",
server, secret, ...) and a section named after the bridge for its network.
The secret may come from AMBROSIA_BRIDGE_SECRET instead.

Run 'ambrosia bridge run -h' for the flags.
`

// bridgeCmd runs, checks or lists bridges.
func bridgeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, err := subcommand("bridge", args, []string{"run", "check", "list"}, bridgeUsage, stdout, stderr)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		c := newCommand("bridge list", "", "Lists the bridges this program carries.", stdout, stderr)
		if pos, err := c.parse(args[1:]); err != nil {
			return err
		} else if len(pos) > 0 {
			return c.wrongArgs(fmt.Sprintf("unexpected argument %q", pos[0]))
		}
		names := make([]string, 0, len(bridges))
		for n := range bridges {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(stdout, "%-10s %s\n", n, bridges[n].about)
		}
		return nil
	}
	about := "Runs the bridge NAME (see ambrosia bridge list) with the configuration FILE."
	if sub == "check" {
		about = "Checks the configuration of the bridge NAME and that both of its sides are reachable."
	}
	fs := newCommand("bridge "+sub, "NAME --config FILE [flags]", about, stdout, stderr)
	file := fs.String("config", "", "TOML configuration `FILE` (required)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	pos, err := fs.parse(args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fs.wrongArgs("want the name of one bridge")
	}
	name := pos[0]
	bb, ok := bridges[name]
	if !ok {
		names := make([]string, 0, len(bridges))
		for n := range bridges {
			names = append(names, n)
		}
		msg := fmt.Sprintf("bridge: no bridge %q", name)
		if s := closest(name, names); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return errors.New(msg + " (see ambrosia bridge list)")
	}
	if *file == "" {
		return errors.New("bridge: --config is required")
	}
	log := newLogger(config.Log{Level: *logLevel, Format: *logFormat}, stderr)
	cfg, section, err := loadBridgeConfig(*file, name)
	if err != nil {
		return err
	}
	n, err := bb.make(section, log)
	if err != nil {
		return fmt.Errorf("bridge %s: %s: %w", name, *file, err)
	}
	b, err := bridge.New(n, cfg, log)
	if err != nil {
		return err
	}
	if sub == "check" {
		if err := b.Check(ctx); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "bridge %s for %s: configuration and both sides reachable\n", name, cfg.Domain)
		return nil
	}
	return b.Run(ctx)
}

// loadBridgeConfig reads the file: [bridge] into the bridge's
// configuration, over its defaults, and returns the network's section
// raw; any other section, or an unknown key, is an error.
func loadBridgeConfig(path, name string) (bridge.Config, []byte, error) {
	cfg := bridge.DefaultConfig()
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, nil, fmt.Errorf("bridge: %w", err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(b, &doc); err != nil {
		return cfg, nil, fmt.Errorf("bridge: %s: %w", path, err)
	}
	for k := range doc {
		if k != "bridge" && k != name {
			return cfg, nil, fmt.Errorf("bridge: %s: unknown section [%s] (want [bridge] and [%s])", path, k, name)
		}
	}
	part := func(key string) ([]byte, error) {
		v, ok := doc[key]
		if !ok {
			return nil, nil
		}
		return toml.Marshal(v)
	}
	bs, err := part("bridge")
	if err != nil {
		return cfg, nil, err
	}
	if err := decodeStrict(bs, &cfg); err != nil {
		return cfg, nil, fmt.Errorf("bridge: %s: [bridge]: %w", path, err)
	}
	if s := os.Getenv("AMBROSIA_BRIDGE_SECRET"); s != "" {
		cfg.Connect.Secret = s
	}
	ns, err := part(name)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, ns, nil
}

// decodeStrict decodes TOML, refusing keys v does not have.
func decodeStrict(b []byte, v any) error {
	d := toml.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	err := d.Decode(v)
	var sm *toml.StrictMissingError
	if errors.As(err, &sm) {
		var keys []string
		for _, e := range sm.Errors {
			keys = append(keys, strings.Join(e.Key(), "."))
		}
		return fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	return err
}
