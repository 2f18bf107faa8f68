// Package adminsock is the server's local admin channel: a Unix socket in the
// data directory through which the commands an operator runs beside the
// server (ambrosia user del, user passwd --end-sessions) tell it what
// changed, so that it acts at once on what lives only in its memory, such
// as a deleted user's sessions.
//
// The protocol is one line of space-separated words per request and one
// line per answer, "ok TEXT" or "error TEXT". The socket is private to its
// owner (mode 0600, in the data directory, mode 0700) and, where the
// system tells, only a peer running as the server's user or as root is
// served.
package adminsock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// SocketName is the socket's file name in the data directory.
const SocketName = "admin.sock"

// Handler answers one request: its words, the first being the command.
type Handler func(ctx context.Context, args []string) (string, error)

// Server serves the admin socket.
type Server struct {
	l    *net.UnixListener
	path string
	log  *slog.Logger
}

// Listen opens the socket at path. The caller must be the only server of
// the directory (it holds its lock), so a socket left by a server that
// died is removed first.
func Listen(path string, log *slog.Logger) (*Server, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	// Closing the listener removes the file.
	l.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return &Server{l: l, path: path, log: log}, nil
}

// Serve answers requests with h until ctx is done, then closes the socket
// and waits for the requests in progress.
func (s *Server) Serve(ctx context.Context, h Handler) {
	stop := context.AfterFunc(ctx, func() { s.l.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := s.l.AcceptUnix()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("admin socket", "err", err)
			}
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, c, h)
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, c *net.UnixConn, h Handler) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := peerAllowed(c); err != nil {
		s.log.Warn("admin socket: peer refused", "err", err)
		fmt.Fprintf(c, "error %v\n", err)
		return
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	args := strings.Fields(line)
	if len(args) == 0 {
		fmt.Fprintln(c, "error empty request")
		return
	}
	out, err := h(ctx, args)
	if err != nil {
		fmt.Fprintf(c, "error %s\n", oneLine(err.Error()))
		return
	}
	fmt.Fprintf(c, "ok %s\n", oneLine(out))
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// ErrNoServer is returned by Call when nothing listens on the socket.
var ErrNoServer = errors.New("no server listens on the admin socket")

// Call sends one request to the server listening at path and returns the
// text of its "ok" answer, or its error.
func Call(ctx context.Context, path string, args ...string) (string, error) {
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\r\n") {
			return "", fmt.Errorf("admin: bad argument %q", a)
		}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || isRefused(err) {
			return "", fmt.Errorf("%w (%s)", ErrNoServer, path)
		}
		return "", fmt.Errorf("admin socket: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if _, err := fmt.Fprintln(c, strings.Join(args, " ")); err != nil {
		return "", fmt.Errorf("admin socket: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("admin socket: no answer: %w", err)
	}
	line = strings.TrimRight(line, "\n")
	if text, ok := strings.CutPrefix(line, "ok"); ok {
		return strings.TrimPrefix(text, " "), nil
	}
	if text, ok := strings.CutPrefix(line, "error "); ok {
		return "", errors.New(text)
	}
	return "", fmt.Errorf("admin socket: unexpected answer %q", line)
}
