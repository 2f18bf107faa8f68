package bridge

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/componentclient"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
)

// Checker is implemented by a Network that can tell whether it is
// reachable and configured right, for `ambrosia bridge check`.
type Checker interface {
	Check(ctx context.Context) error
}

// checkTimeout bounds each side of Check.
const checkTimeout = 15 * time.Second

// Check tells whether the bridge would work, without serving anyone: the
// XMPP side accepts it (a component's handshake, the gateways' listeners,
// the federation listener and certificate) and the network answers, when
// it implements Checker. Errors name the side and the setting to fix.
func (b *Bridge) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	c := b.cfg.Connect
	switch c.Mode {
	case "component":
		cc := componentclient.DefaultConfig()
		cc.Addr, cc.Domain, cc.Secret, cc.StopWhenRefused = c.Server, b.cfg.Domain, c.Secret, true
		cl, err := componentclient.New(cc, componentclient.Deps{Router: router.New(b.log), Log: b.log})
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- cl.Run(runCtx) }()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
	wait:
		for {
			select {
			case err := <-done:
				stop()
				if err == nil {
					err = cl.LastError()
				}
				return fmt.Errorf("connect: the server at %s refused the component %s: %w", c.Server, b.cfg.Domain, err)
			case <-tick.C:
				if cl.Connected() {
					break wait
				}
			case <-ctx.Done():
				stop()
				<-done
				return fmt.Errorf("connect: no handshake with %s within %v: %v", c.Server, checkTimeout, cl.LastError())
			}
		}
		stop()
		<-done
	case "service":
		for _, a := range strings.Split(c.Server, ",") {
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", a)
			if err != nil {
				return fmt.Errorf("connect.server: gateway %s: %w", a, err)
			}
			conn.Close()
		}
	case "server":
		if _, err := b.certificate(); err != nil {
			return err
		}
		l, err := net.Listen("tcp", c.Listen)
		if err != nil {
			return fmt.Errorf("connect.listen: %w", err)
		}
		l.Close()
	}
	if ch, ok := b.net.(Checker); ok {
		if err := ch.Check(ctx); err != nil {
			return fmt.Errorf("%s: %w", b.desc.Name, err)
		}
	}
	return nil
}
