// Package listen holds the accept loop every listener of the server
// shares: accept until the listener closes or the context ends, and ride
// out temporary failures such as running out of file descriptors instead
// of giving up the port.
package listen

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"
)

// Accept hands each connection accepted from l to handle, on the
// accepting goroutine, until ctx is done, l is closed, or handle returns
// false. handle must not block: it starts whatever serves the connection.
// Failed accepts are logged and retried with a growing pause (at most a
// second), since they usually mean the process is out of descriptors for a
// moment.
func Accept(ctx context.Context, l net.Listener, log *slog.Logger, handle func(net.Conn) bool) {
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(delay*2, 5*time.Millisecond), time.Second)
			log.Warn("accept", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if !handle(nc) {
			return
		}
	}
}
