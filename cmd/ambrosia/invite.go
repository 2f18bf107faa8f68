package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/invite"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
)

const inviteAbout = `Creates an invitation and prints its xmpp: URI, for the invitee's client (XEP-0401,
XEP-0379): with it, the invitee registers an account on DOMAIN once, also when open
registration is off. With --contact, the invitee also becomes USER's contact, subscribed
both ways, and DOMAIN may be left out. Works while the server runs: the invitation is
written to its database.`

// inviteCmd creates an invitation in the database, as Prosody's
// prosodyctl mod_invites generate does.
func inviteCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("invite", "[DOMAIN] [flags]", inviteAbout, stdout, stderr)
	var cf configFlags
	cf.register(c.FlagSet, groupStore)
	expires := c.String("expires", "7d", "how long the invitation stays valid, a `DURATION` (7d, 2w, 36h)")
	contact := c.String("contact", "", "the local user `USER@DOMAIN` whose contact the invitee becomes")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 1 || (len(pos) == 0 && *contact == "") {
		return c.wrongArgs("want one domain, or --contact")
	}
	ttl, err := invite.ParseTTL(*expires)
	if err != nil {
		return fmt.Errorf("invite: %v", err)
	}
	var inviter jid.JID
	if *contact != "" {
		inviter, err = jid.Parse(*contact)
		if err == nil && (inviter.Local() == "" || inviter.Resource() != "") {
			err = errors.New("want user@domain")
		}
		if err != nil {
			return fmt.Errorf("invite: --contact %q: %v", *contact, err)
		}
	}
	domain := inviter.Domain()
	if len(pos) == 1 {
		d, err := jid.Parse(pos[0])
		if err != nil || d.Local() != "" || d.Resource() != "" {
			return fmt.Errorf("invite: %q is not a domain", pos[0])
		}
		if domain != "" && d.Domain() != domain {
			// The URI names the contact: the client registers on its domain.
			return fmt.Errorf("invite: the invitee registers on the contact's domain %s, not %s", domain, d.Domain())
		}
		domain = d.Domain()
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	cf.printEnvWarnings(stderr)
	if !slices.Contains(cfg.Domains, domain) {
		return fmt.Errorf("invite: %s is not a served domain (%s); pass --domain or set domains in the configuration", domain, strings.Join(cfg.Domains, ", "))
	}
	if cfg.Storage.Backend == "sqlite" {
		if err := databaseExists(cfg); err != nil {
			return err
		}
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if *contact != "" {
		users, err := store.ListAccounts(ctx, domain)
		if err != nil {
			return err
		}
		if !slices.Contains(users, inviter.String()) {
			return fmt.Errorf("invite: no user %s", inviter)
		}
	}
	inv, tok, err := invite.Create(ctx, store, domain, inviter.String(), ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, invite.URI(inv, tok))
	fmt.Fprintf(stderr, "valid until %s, once\n", inv.Expires.Format(time.RFC3339))
	return nil
}

// befriender makes an invitee and its inviter mutual contacts through
// the session manager of their domain, which keeps the rosters of users
// online and pushes the change to them.
func befriender(sms []*sm.SM) func(ctx context.Context, user, inviter jid.JID) error {
	return func(ctx context.Context, user, inviter jid.JID) error {
		for _, m := range sms {
			if m.Domain() == inviter.Domain() {
				return m.Befriend(ctx, user, inviter)
			}
		}
		return fmt.Errorf("no session manager for %s", inviter.Domain())
	}
}
