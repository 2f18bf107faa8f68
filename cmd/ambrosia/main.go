// Command ambrosia is the Ambrosia XMPP server: `ambrosia serve` runs the
// whole server in one process; `ambrosia user` manages accounts, also while
// the server runs; `ambrosia version` prints the version.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: ambrosia <command> [flags]

commands:
  serve                  run the server (all components in one process)
  gateway                run the network edge of a split server (services link to it)
  service sm|muc         run the session manager or the conference service, linked to gateways
  user add JID           create an account (password from a prompt, --password or stdin)
  user passwd JID        change a password (same)
  user del JID           delete an account and its data
  user list [DOMAIN]     list accounts
  invite [DOMAIN]        print an invitation URI to register (--contact USER: and be USER's contact)
  bridge run|check NAME  run or check a bridge to another chat network (bridge list: which)
  reload                 make the running server read its configuration and certificates again
  check [--remote DOMAIN] report DNS records, certificates and federation with DOMAIN
  backup DIR             copy the data directory (the database online) into DIR
  restore DIR            put a backup in place of the data directory (server stopped)
  import FILE|DIR        import XEP-0227 files (ejabberd, Prosody) or a Prosody data directory
  export FILE            write the users and their data as an XEP-0227 file
  bench MODE             load client for measurements (users, idle, logins, messages, muc, failover)
  version                print the version

Run 'ambrosia <command> -h' (or 'ambrosia help <command>') for the usage and flags of a command.
`

// commands are the names run dispatches, for suggestions.
var commands = []string{"serve", "gateway", "service", "user", "invite", "reload", "bridge", "check", "backup", "restore", "import", "export", "bench", "version", "help"}

// run dispatches a command line; it returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "ambrosia: missing command\n\n%s", usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr)
	case "gateway":
		err = gatewayCmd(ctx, args[1:], stdout, stderr)
	case "service":
		err = serviceCmd(ctx, args[1:], stdout, stderr)
	case "user":
		err = userCmd(ctx, args[1:], stdin, stdout, stderr)
	case "invite":
		err = inviteCmd(ctx, args[1:], stdout, stderr)
	case "reload":
		err = reloadCmd(ctx, args[1:], stdout, stderr)
	case "check":
		err = checkCmd(ctx, args[1:], stdout, stderr)
	case "backup":
		err = backupCmd(ctx, args[1:], stdout, stderr)
	case "restore":
		err = restoreCmd(ctx, args[1:], stdout, stderr)
	case "import":
		err = importCmd(ctx, args[1:], stdout, stderr)
	case "export":
		err = exportCmd(ctx, args[1:], stdout, stderr)
	case "bench":
		err = benchCmd(ctx, args[1:], stdout, stderr)
	case "bridge":
		err = bridgeCmd(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		err = versionCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		if len(args) > 1 && !isHelp(args[1]) {
			// ambrosia help user add: what ambrosia user add -h prints.
			return run(ctx, append(slices.Clone(args[1:]), "-h"), stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		msg := fmt.Sprintf("unknown command %q", args[0])
		if s := closest(args[0], commands); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		fmt.Fprintf(stderr, "ambrosia: %s\n\n%s", msg, usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintln(stderr, "ambrosia:", err)
	return 1
}
