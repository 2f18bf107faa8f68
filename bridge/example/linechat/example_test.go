package linechat_test

import (
	"context"
	"log/slog"
	"os"
	"os/signal"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/example/linechat"
)

// A whole bridge program: the line chat server on 127.0.0.1:7000 becomes
// chat.example.org, attached to the XMPP server's component listener.
// Changing Connect.Mode to "service" (Ambrosia's gateways) or "server"
// (its own federated server) needs no other change.
func Example() {
	cfg := bridge.DefaultConfig()
	cfg.Domain = "chat.example.org"
	cfg.DataDir = "/var/lib/linechat-bridge"
	cfg.Connect = bridge.Connect{Mode: "component", Server: "127.0.0.1:5347", Secret: os.Getenv("COMPONENT_SECRET")}
	b, err := bridge.New(&linechat.Network{Addr: "127.0.0.1:7000"}, cfg, slog.Default())
	if err != nil {
		slog.Error("bridge", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := b.Run(ctx); err != nil {
		slog.Error("bridge", "err", err)
		os.Exit(1)
	}
}
