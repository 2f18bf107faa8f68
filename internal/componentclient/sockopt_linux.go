package componentclient

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dialControl sets TCP_USER_TIMEOUT on the socket: data the server does
// not acknowledge within timeout, a keepalive on a link that vanished
// without a reset among it, ends the connection instead of being
// retransmitted for a quarter of an hour.
func dialControl(timeout time.Duration) func(network, address string, rc syscall.RawConn) error {
	ms := int(timeout / time.Millisecond)
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ms)
		}); err != nil {
			return err
		}
		return serr
	}
}
