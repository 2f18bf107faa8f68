package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// userCmd manages accounts directly in the database, which is safe while
// the server runs: SQLite serializes writers across processes, and
// PostgreSQL is shared by design.
func userCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	sub := args[0]
	fs := newFlagSet("user "+sub, stderr)
	var cf configFlags
	cf.register(fs)
	password := fs.String("password", "", "the password (default: first line of standard input)")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()

	if sub == "list" {
		domain := ""
		if len(pos) > 0 {
			domain = pos[0]
		}
		users, err := store.ListAccounts(ctx, domain)
		if err != nil {
			return err
		}
		for _, u := range users {
			fmt.Fprintln(stdout, u)
		}
		return nil
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "usage: ambrosia user %s JID\n", sub)
		return errUsage
	}
	u, err := jid.Parse(pos[0])
	if err == nil && (u.Local() == "" || u.Resource() != "") {
		err = errors.New("want user@domain")
	}
	if err != nil {
		return fmt.Errorf("user %s: %q: %v", sub, pos[0], err)
	}
	if sub == "add" && !slices.Contains(cfg.Domains, u.Domain()) {
		return fmt.Errorf("user add: %s is not a served domain (%s); pass --domain or set domains in the configuration", u.Domain(), strings.Join(cfg.Domains, ", "))
	}
	switch sub {
	case "add", "passwd":
		pw := *password
		if pw == "" {
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			pw = strings.TrimRight(line, "\r\n")
		}
		if pw == "" {
			return errors.New("empty password")
		}
		creds, err := auth.DeriveCredentials(pw, auth.DefaultIterations)
		if err != nil {
			return err
		}
		if sub == "add" {
			err = store.CreateAccount(ctx, u.String(), creds)
			if errors.Is(err, storage.ErrExists) {
				return fmt.Errorf("user %s already exists", u)
			}
		} else {
			err = store.SetCredentials(ctx, u.String(), creds)
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("no user %s", u)
			}
		}
		return err
	case "del":
		err := store.DeleteAccount(ctx, u.String())
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("no user %s", u)
		}
		return err
	}
	fmt.Fprintf(stderr, "ambrosia: unknown user command %q\n", sub)
	return errUsage
}
