// Command jsonbot is a bot that does arithmetic for whoever asks in JSON
// (XEP-0335): {"op":"add","a":1,"b":2} is answered with {"result":3}, in
// a message or an IQ result, whichever the request came in.
//
//	BOT_PASSWORD=secret jsonbot -jid calc@example.org
package main

import (
	"context"
	"crypto/x509"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ambrosia-xmpp/ambrosia/bot"
)

// request is what users send.
type request struct {
	Op string  `json:"op"`
	A  float64 `json:"a"`
	B  float64 `json:"b"`
}

func main() {
	cfg := bot.Config{Password: os.Getenv("BOT_PASSWORD")}
	flag.StringVar(&cfg.JID, "jid", "", "the bot's account")
	flag.StringVar(&cfg.Server, "server", "", "host:port of the server (default: from DNS)")
	flag.BoolVar(&cfg.DirectTLS, "direct-tls", false, "TLS from the first byte instead of STARTTLS")
	ca := flag.String("ca", "", "PEM file of the certificate authorities to trust (default: the system's)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			log.Error("ca", "err", err)
			os.Exit(1)
		}
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AppendCertsFromPEM(pem)
	}
	b, err := bot.New(cfg, log)
	if err != nil {
		log.Error("config", "err", err)
		os.Exit(2)
	}
	b.OnJSON(bot.HandleJSON(func(ctx context.Context, from string, r request) (any, error) {
		log.Info("request", "from", from, "op", r.Op)
		switch r.Op {
		case "add":
			return map[string]float64{"result": r.A + r.B}, nil
		case "sub":
			return map[string]float64{"result": r.A - r.B}, nil
		case "mul":
			return map[string]float64{"result": r.A * r.B}, nil
		}
		return nil, &bot.Error{Condition: "bad-request", Text: "op must be add, sub or mul"}
	}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := b.Run(ctx); err != nil {
		log.Error("bot", "err", err)
		os.Exit(1)
	}
}
