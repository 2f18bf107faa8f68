package irc_test

import (
	"fmt"
	"log/slog"

	"github.com/pelletier/go-toml/v2"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/irc"
)

// A bridge to an IRC server, in transport mode, configured from TOML;
// b.Run(ctx) would connect it to the XMPP network and serve until ctx
// ends.
func Example() {
	cfg := irc.DefaultConfig()
	err := toml.Unmarshal([]byte(`
server = "irc.example.org:6697"
tls = true
mode = "transport"
flood_rate = 1.5
`), &cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	log := slog.New(slog.DiscardHandler)
	n, err := irc.New(cfg, log)
	if err != nil {
		fmt.Println(err)
		return
	}
	bc := bridge.DefaultConfig()
	bc.Domain = "irc.example.org"
	bc.Connect = bridge.Connect{Mode: "service", Server: "127.0.0.1:5270", Secret: "change me"}
	b, err := bridge.New(n, bc, log)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = b // b.Run(ctx)
	d := n.Describe()
	fmt.Println(d.Name, d.Type, d.Mode == bridge.Transport, len(d.Registration), cfg.FloodBurst)
	fmt.Println(n.IsRoom("#ambrosia"), n.IsRoom("alice"))
	// Output:
	// IRC irc true 3 5
	// true false
}
