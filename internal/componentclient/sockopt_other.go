//go:build !linux

package componentclient

import (
	"syscall"
	"time"
)

// dialControl does nothing where TCP_USER_TIMEOUT is not available: write
// deadlines and TCP keepalives are left to notice a dead server.
func dialControl(time.Duration) func(network, address string, rc syscall.RawConn) error {
	return nil
}
