package bridge

import (
	"context"
	"fmt"

	"github.com/ambrosia-xmpp/ambrosia/internal/componentclient"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
)

// componentConnector attaches the bridge to a server as an XEP-0114
// external component: Ambrosia, Prosody, ejabberd or any other.
func (b *Bridge) componentConnector(rt *router.Router) (func(context.Context) error, error) {
	cc := componentclient.DefaultConfig()
	cc.Addr, cc.Domain, cc.Secret = b.cfg.Connect.Server, b.cfg.Domain, b.cfg.Connect.Secret
	c, err := componentclient.New(cc, componentclient.Deps{Router: rt, Log: b.log})
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	rt.SetFallback(c.Forwarder())
	return c.Run, nil
}
