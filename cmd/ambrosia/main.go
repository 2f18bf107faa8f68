// Command ambrosia is the Ambrosia XMPP server: `ambrosia serve` runs the
// whole server in one process; `ambrosia user` manages accounts, also while
// the server runs; `ambrosia version` prints the version.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
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
  user add JID           create an account (password from --password or stdin)
  user passwd JID        change a password (same)
  user del JID           delete an account and its data
  user list [DOMAIN]     list accounts
  bridge run|check NAME  run or check a bridge to another chat network (bridge list: which)
  check [--remote DOMAIN] report DNS records, certificates and federation with DOMAIN
  bench MODE             load client for measurements (users, idle, logins, messages)
  version                print the version

Run 'ambrosia <command> -h' for the flags of a command.
`

// run dispatches a command line; it returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "gateway":
		err = gatewayCmd(ctx, args[1:], stderr)
	case "service":
		err = serviceCmd(ctx, args[1:], stderr)
	case "user":
		err = userCmd(ctx, args[1:], stdin, stdout, stderr)
	case "check":
		err = checkCmd(ctx, args[1:], stdout, stderr)
	case "bench":
		err = benchCmd(ctx, args[1:], stdout, stderr)
	case "bridge":
		err = bridgeCmd(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "ambrosia", version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ambrosia: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if err == errUsage {
			return 2
		}
		fmt.Fprintln(stderr, "ambrosia:", err)
		return 1
	}
	return 0
}
