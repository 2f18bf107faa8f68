package bridge

import (
	"context"
	"errors"

	"github.com/ambrosia-xmpp/ambrosia/internal/router"
)

// componentConnector attaches the bridge to a server as an XEP-0114
// component.
func (b *Bridge) componentConnector(rt *router.Router) (func(context.Context) error, error) {
	return nil, errors.New("bridge: component mode is not available yet")
}
