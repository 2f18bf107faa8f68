package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

const userUsage = `usage: ambrosia user add|passwd|del|list ... [flags]

Manages accounts in the server's database, also while the server runs:
  user add JID          create an account
  user passwd JID       change the password of an account
  user del JID          delete an account and its data
  user list [DOMAIN]    list the accounts, of one domain or of all

Run 'ambrosia user add -h' for the flags of a subcommand.
`

// userSubs describes the user subcommands: the arguments and what each
// does.
var userSubs = map[string][2]string{
	"add":    {"JID [flags]", "Creates an account on a served domain. The password comes from --password, else from\na prompt on a terminal, else from the first line of standard input."},
	"passwd": {"JID [flags]", "Changes the password of an account (from --password, a prompt or standard input, as\nfor user add)."},
	"del":    {"JID [flags]", "Deletes an account with its roster, archive and other data, and ends its sessions on\nthe server running on the data directory (stream error not-authorized)."},
	"list":   {"[DOMAIN] [flags]", "Lists the accounts of DOMAIN, or of every domain."},
}

// userCmd manages accounts directly in the database, which is safe while
// the server runs: SQLite serializes writers across processes, and
// PostgreSQL is shared by design.
func userCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	sub, err := subcommand("user", args, []string{"add", "passwd", "del", "list"}, userUsage, stdout, stderr)
	if err != nil {
		return err
	}
	c := newCommand("user "+sub, userSubs[sub][0], userSubs[sub][1], stdout, stderr)
	var cf configFlags
	cf.register(c.FlagSet, groupStore)
	var password *string
	if sub == "add" || sub == "passwd" {
		password = c.String("password", "", "the password (default: a prompt on a terminal, else the first line of standard input)")
	}
	var endOthers *bool
	if sub == "passwd" {
		endOthers = c.Bool("end-sessions", false, "end the user's sessions on the running server (stream error reset): whoever knew the old password is logged out")
	}
	var create *bool
	if sub == "add" {
		create = c.Bool("create", false, "create the database if the data directory has none yet (the server creates it on its first start)")
	}
	pos, err := c.parse(args[1:])
	if err != nil {
		return err
	}
	if sub == "list" && len(pos) > 1 {
		return c.wrongArgs("at most one domain")
	}
	if sub != "list" && len(pos) != 1 {
		return c.wrongArgs("want one JID")
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	cf.printEnvWarnings(stderr)
	if cfg.Storage.Backend == "sqlite" && (create == nil || !*create) {
		// A user added to a database the server does not read is lost:
		// never create one by running from the wrong directory.
		if err := databaseExists(cfg); err != nil {
			return err
		}
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()

	if sub == "list" {
		domain := ""
		if len(pos) > 0 {
			d, err := jid.Parse(pos[0])
			if err != nil || d.Local() != "" || d.Resource() != "" {
				return fmt.Errorf("user list: %q is not a domain", pos[0])
			}
			domain = d.Domain()
		}
		users, err := store.ListAccounts(ctx, domain)
		if err != nil {
			return err
		}
		for _, u := range users {
			fmt.Fprintln(stdout, u)
		}
		if domain != "" && !slices.Contains(cfg.Domains, domain) {
			// An empty list would read as "no accounts yet".
			return fmt.Errorf("user list: %s is not a served domain (%s); pass --domain or set domains in the configuration", domain, strings.Join(cfg.Domains, ", "))
		}
		return nil
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
			if pw, err = readPassword(stdin, stderr, u.String()); err != nil {
				return err
			}
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
			if err == nil {
				fmt.Fprintf(stdout, "created %s\n", u)
			}
		} else {
			err = store.SetCredentials(ctx, u.String(), creds)
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("no user %s", u)
			}
			if err == nil {
				fmt.Fprintf(stdout, "changed the password of %s\n", u)
				forgetCredentials(ctx, cfg, u, stderr)
				if *endOthers {
					endSessions(ctx, cfg, u, "reset", stdout, stderr)
				}
			}
		}
		return err
	case "del":
		err := store.DeleteAccount(ctx, u.String())
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("no user %s", u)
		}
		if err == nil {
			fmt.Fprintf(stdout, "deleted %s\n", u)
			forgetCredentials(ctx, cfg, u, stderr)
			// The account is gone: so are its sessions, as with XEP-0077
			// removal.
			endSessions(ctx, cfg, u, "not-authorized", stdout, stderr)
		}
		return err
	}
	return nil
}

// databaseExists returns an error saying where it looked when the data
// directory has no SQLite database.
func databaseExists(cfg config.Config) error {
	path := dbPath(cfg)
	_, err := os.Stat(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	abs, aerr := filepath.Abs(path)
	if aerr != nil {
		abs = path
	}
	return fmt.Errorf("no database at %s (data directory %s): run this where the server runs, or pass its --data DIR or --config FILE; a new server creates its database on its first start (or use user add --create)", abs, cfg.DataDir)
}

// readPassword reads a new password for user: on a terminal, from a
// prompt with echo off, asked twice; otherwise from the first line of
// stdin, as scripts give it.
func readPassword(stdin io.Reader, prompt io.Writer, user string) (string, error) {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	ask := func(q string) (string, error) {
		fmt.Fprint(prompt, q)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt) // the Enter that was not echoed
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		return string(b), nil
	}
	pw, err := ask("Password for " + user + ": ")
	if err != nil || pw == "" {
		return pw, err
	}
	again, err := ask("The same password again: ")
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("the two passwords differ; nothing changed")
	}
	return pw, nil
}
