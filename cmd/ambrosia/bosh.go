package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/bosh"
	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
)

// newBOSH serves BOSH sessions (XEP-0206) through the client edge: each
// session's stream is a virtual connection of edge, negotiated, bound and
// routed as TCP ones are.
func newBOSH(cfg config.Config, edge *c2s.Server, peer func(*http.Request) (string, bool), log *slog.Logger) (*bosh.Handler, error) {
	bc := bosh.Config{
		MaxWait:      time.Duration(cfg.BOSH.MaxWait),
		MaxHold:      cfg.BOSH.MaxHold,
		Inactivity:   time.Duration(cfg.BOSH.Inactivity),
		MaxPause:     time.Duration(cfg.BOSH.MaxPause),
		MaxBodyBytes: cfg.BOSH.MaxBodySize,
		AllowPlain:   cfg.C2S.AllowPlain,
		Peer:         peer,
	}
	return bosh.New(bc, bosh.OpenFunc(func(ctx context.Context, sink bosh.Sink, remote net.Addr, secure bool) (bosh.Stream, error) {
		v, err := edge.OpenVirtual(ctx, sink, c2s.VirtualInfo{Remote: remote, Secure: secure})
		if err != nil {
			return nil, err
		}
		return v, nil
	}), log)
}
