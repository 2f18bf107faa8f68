package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/ambrosia-xmpp/ambrosia/internal/adminsock"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/datadir"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
)

// The `user` commands change accounts in the database, which the server
// reads at every login; what lives only in the server's memory — the
// sessions of a user just deleted — learns of it through the admin
// socket that `serve` opens in its data directory: `user del` and
// `user passwd --end-sessions` ask it to end the user's sessions.

// sessionConditions are the stream errors the admin socket may end
// sessions with.
var sessionConditions = []string{"not-authorized", "reset", "conflict", "policy-violation"}

// startAdmin opens the admin socket of the data directory and serves it
// until ctx is done, on wg. A socket that cannot be opened (a path too
// long for a Unix socket) is logged: the server runs without it.
func startAdmin(ctx context.Context, wg *sync.WaitGroup, cfg config.Config, sms []*sm.SM, rl *reloader, creds credentialForgetter, log *slog.Logger) bool {
	path := filepath.Join(cfg.DataDir, adminsock.SocketName)
	srv, err := adminsock.Listen(path, log)
	if err != nil {
		log.Warn("no admin socket: ambrosia user del cannot end the deleted user's sessions, ambrosia reload cannot reach the server (SIGHUP can)", "err", err)
		return false
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv.Serve(ctx, func(_ context.Context, args []string) (string, error) {
			if args[0] == "reload" && len(args) == 1 && rl != nil {
				return rl.reload("admin socket")
			}
			if args[0] == "forget-credentials" && len(args) == 2 && creds != nil {
				u, err := jid.Parse(args[1])
				if err != nil || u.Local() == "" {
					return "", fmt.Errorf("%q is not a user's JID", args[1])
				}
				creds.ForgetCredentials(u.BareString())
				return "ok", nil
			}
			if args[0] != "end-sessions" || len(args) != 3 {
				return "", fmt.Errorf("unknown request %q (known: end-sessions JID CONDITION, forget-credentials JID, reload)", args[0])
			}
			u, err := jid.Parse(args[1])
			if err != nil || u.Local() == "" {
				return "", fmt.Errorf("%q is not a user's JID", args[1])
			}
			if !slices.Contains(sessionConditions, args[2]) {
				return "", fmt.Errorf("condition %q is not one of %v", args[2], sessionConditions)
			}
			for i, d := range cfg.Domains {
				if d == u.Domain() {
					n := sms[i].EndSessions(u.Bare(), args[2], "")
					log.Info("sessions ended", "user", u.Bare().String(), "sessions", n, "condition", args[2], "asked_by", "admin socket")
					return strconv.Itoa(n), nil
				}
			}
			return "0", nil
		})
	}()
	return true
}

// credentialForgetter drops a user's cached credentials (sqlite.Store).
type credentialForgetter interface {
	ForgetCredentials(user string)
}

// forgetCredentials tells the server running on the data directory, if
// one does, that user's credentials changed, so that it stops trusting
// what it cached: the old password is refused from the next login on.
// When the server cannot be reached it says how long the old password
// may still work there.
func forgetCredentials(ctx context.Context, cfg config.Config, user jid.JID, stderr io.Writer) {
	if cfg.Storage.Backend != "sqlite" {
		return // only the SQLite server caches credentials
	}
	pid, held, err := datadir.Holder(cfg.DataDir)
	if err != nil || !held {
		return
	}
	_, err = adminsock.Call(ctx, filepath.Join(cfg.DataDir, adminsock.SocketName), "forget-credentials", user.String())
	if errors.Is(err, adminsock.ErrNoServer) {
		return // a server without its socket keeps no credentials
	}
	if err != nil {
		fmt.Fprintf(stderr, "ambrosia: warning: could not tell the server (process %d) that the credentials of %s changed: %v; it may accept the old password for up to %s more\n", pid, user, err, credentialCacheTTL)
	}
}

// endSessions asks the server running on the data directory, if one
// does, to end the sessions of user with the stream error condition, and
// says what happened.
func endSessions(ctx context.Context, cfg config.Config, user jid.JID, condition string, stdout, stderr io.Writer) {
	pid, held, err := datadir.Holder(cfg.DataDir)
	if err != nil {
		fmt.Fprintf(stderr, "ambrosia: warning: %v\n", err)
		return
	}
	if !held {
		return // no server runs on this data directory: no sessions
	}
	n, err := adminsock.Call(ctx, filepath.Join(cfg.DataDir, adminsock.SocketName), "end-sessions", user.String(), condition)
	if err != nil {
		who := "the server"
		if pid > 0 {
			who += " (process " + strconv.Itoa(pid) + ")"
		}
		if errors.Is(err, adminsock.ErrNoServer) {
			err = errors.New("it has no admin socket")
		}
		fmt.Fprintf(stderr, "ambrosia: warning: could not ask %s to end the sessions of %s: %v; they go on until they end\n", who, user, err)
		return
	}
	switch n {
	case "0":
	case "1":
		fmt.Fprintf(stdout, "ended the session of %s\n", user)
	default:
		fmt.Fprintf(stdout, "ended the %s sessions of %s\n", n, user)
	}
}
