package c2s

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/invite"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// nsRegister is In-Band Registration (XEP-0077).
const nsRegister = "jabber:iq:register"

// Invitations: the <preauth/> element of XEP-0379 and XEP-0401, and the
// stream features by which XEP-0445 (and Prosody's mod_invites_register)
// tell that registration takes an invitation.
const (
	nsPARS     = "urn:xmpp:pars:0"
	nsInvite   = "urn:xmpp:invite"
	nsIBRToken = "urn:xmpp:ibr-token:0"
)

// errInvite is the text of the refusal of an unusable invitation.
const errInvite = "The invitation is invalid, expired or already used."

// registrationTime is how long a connection that asked for the
// registration form may stay unauthenticated.
const registrationTime = 5 * time.Minute

// TooManyRegistrations is the text of the error refusing a registration
// past the per-address limit.
const TooManyRegistrations = "too many registrations from your address, try again later"

// TooManyInvitations is the text of the error refusing an invitation
// token past the per-address bound on invalid ones; the stream then ends.
const TooManyInvitations = "too many invalid invitations from your address, try again later"

// inviteGate runs before an invitation token is looked up: it waits the
// delay the address's invalid tokens call for, and refuses an address
// that presented too many, answering iq and ending the stream. It
// reports whether the lookup may go on. A guesser of tokens is held back
// as a guesser of passwords is.
func (c *conn) inviteGate(iq *xmlstream.Element, answer func(*xmlstream.Element) bool) bool {
	f := c.srv.deps.InviteFailures
	if f == nil {
		return true
	}
	d, refused := f.Check(c.addr, "")
	if refused != "" {
		c.srv.deps.metrics().LimitHit("c2s", TooManyInvitations)
		c.srv.log.Info("invitation refused", "remote", c.remote(), "reason", TooManyInvitations)
		answer(stanza.ErrorReply(iq, stanza.PolicyViolation, TooManyInvitations))
		c.fail("policy-violation", TooManyInvitations)
		return false
	}
	return c.holdFor(d)
}

// inviteFailed counts an invalid invitation token of the address.
func (c *conn) inviteFailed() { c.srv.deps.InviteFailures.Failed(c.addr, "") }

// AccountCreator creates accounts for in-band registration.
type AccountCreator interface {
	CreateAccount(ctx context.Context, user string, creds []storage.Credential) error
}

// registrationOpen reports whether this connection may register an
// account now: registration is switched on, or invitations are accepted,
// the connection is encrypted (or plain connections are allowed), and it
// has not registered one yet.
func (c *conn) registrationOpen() bool {
	return (c.srv.cfg.AllowRegistration || c.srv.deps.Invites != nil) && c.srv.deps.Accounts != nil && !c.registered &&
		(c.tlsInfo() != nil || c.srv.cfg.AllowPlain)
}

// handlePreauth checks the invitation a client presents before it
// registers (XEP-0445 §3, <iq type='set'><preauth token='…'/></iq>) and
// remembers it for the registration; it is used only then.
func (c *conn) handlePreauth(ctx context.Context, iq *xmlstream.Element) bool {
	answer := func(r *xmlstream.Element) bool {
		r.RemoveAttr("from")
		r.RemoveAttr("to")
		return c.write(r.AppendXML(nil, c.streamNS())) == nil
	}
	if !c.registrationOpen() || c.srv.deps.Invites == nil {
		return answer(stanza.ErrorReply(iq, stanza.ServiceUnavailable, ""))
	}
	if iq.Attr("type") != "set" {
		return answer(stanza.ErrorReply(iq, stanza.BadRequest, ""))
	}
	if !c.inviteGate(iq, answer) {
		return false
	}
	tok := iq.Child(nsPARS, "preauth").Attr("token")
	inv, err := c.srv.deps.Invites.Invite(ctx, invite.Key(tok), time.Now())
	if err != nil || inv.Domain != c.domain {
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			c.srv.log.Error("invitation", "err", err)
			return answer(stanza.ErrorReply(iq, stanza.InternalServerError, ""))
		}
		c.inviteFailed()
		c.srv.log.Info("invitation refused", "remote", c.remote())
		return answer(stanza.ErrorReply(iq, stanza.ItemNotFound, errInvite))
	}
	c.invite = tok
	return answer(stanza.Result(iq))
}

// handleRegister answers a XEP-0077 request made before authentication.
// Changing the password and removing the account happen after login, in
// the session manager.
func (c *conn) handleRegister(ctx context.Context, iq *xmlstream.Element) bool {
	answer := func(r *xmlstream.Element) bool {
		r.RemoveAttr("from")
		r.RemoveAttr("to")
		return c.write(r.AppendXML(nil, c.streamNS())) == nil
	}
	fail := func(cond, text string) bool { return answer(stanza.ErrorReply(iq, cond, text)) }
	if !c.registrationOpen() {
		return fail(stanza.ServiceUnavailable, "")
	}
	q := iq.Child(nsRegister, "query")
	switch iq.Attr("type") {
	case "get":
		// A person fills the form in: more time than a client needs to
		// log in, as Prosody gives unauthenticated connections.
		if time.Until(c.deadline) < registrationTime {
			c.setDeadline(registrationTime)
		}
		r := stanza.Result(iq)
		rq := r.AddChild(xmlstream.NewElement(nsRegister, "query"))
		text := "Choose a user name and a password."
		if !c.srv.cfg.AllowRegistration && c.invite == "" {
			text = "Registration on this server is by invitation only. " + text
		}
		rq.AddChild(xmlstream.NewElement(nsRegister, "instructions")).AddText(text)
		rq.AddChild(xmlstream.NewElement(nsRegister, "username"))
		rq.AddChild(xmlstream.NewElement(nsRegister, "password"))
		return answer(r)
	case "set":
	default:
		return fail(stanza.BadRequest, "")
	}
	if q.Child(nsRegister, "remove") != nil {
		return fail(stanza.NotAuthorized, "Log in to remove an account.")
	}
	var user, pass string
	if u := q.Child(nsRegister, "username"); u != nil {
		user = strings.TrimSpace(u.Text())
	}
	if p := q.Child(nsRegister, "password"); p != nil {
		pass = p.Text()
	}
	if user == "" || pass == "" {
		return fail(stanza.NotAcceptable, "A user name and a password are required.")
	}
	// The invitation: checked before (handlePreauth), or given with the
	// registration itself.
	tok := c.invite
	for _, el := range []*xmlstream.Element{q, iq} {
		if p := el.Child(nsPARS, "preauth"); p != nil && c.srv.deps.Invites != nil {
			tok = p.Attr("token")
		}
	}
	if tok == "" && !c.srv.cfg.AllowRegistration {
		return fail(stanza.NotAllowed, "Registration on this server is by invitation only.")
	}
	// A token not checked by <preauth/> yet is a guess until looked up.
	if tok != "" && tok != c.invite && !c.inviteGate(iq, answer) {
		return false
	}

	// Every attempt from here costs a key derivation and a write, taken
	// or not: each counts against the address.
	if !c.srv.deps.Registrations.Allow(c.addr) {
		c.srv.deps.metrics().LimitHit("c2s", TooManyRegistrations)
		c.srv.log.Info("registration refused", "remote", c.remote(), "user", user, "reason", TooManyRegistrations)
		return fail(stanza.ResourceConstraint, TooManyRegistrations)
	}
	c.srv.deps.Registrations.Add(c.addr)
	bare, err := jid.New(user, c.domain, "")
	if err != nil {
		return fail(stanza.JIDMalformed, "That user name is not allowed.")
	}
	creds, err := auth.DeriveCredentials(pass, auth.DefaultIterations)
	if err != nil {
		return fail(stanza.NotAcceptable, "That password is not allowed.")
	}
	var inv storage.Invite
	if tok != "" {
		// Used before the account exists, so that of two registrations
		// with one invitation only one goes on; given back if the
		// account cannot be created.
		inv, err = c.srv.deps.Invites.UseInvite(ctx, invite.Key(tok), time.Now())
		if err == nil && inv.Domain != c.domain {
			c.restoreInvite(ctx, inv)
			err = storage.ErrNotFound
		}
		if errors.Is(err, storage.ErrNotFound) {
			c.invite = ""
			c.inviteFailed()
			c.srv.log.Info("invitation refused", "user", bare.String(), "remote", c.remote())
			return fail(stanza.NotAllowed, errInvite)
		}
		if err != nil {
			c.srv.log.Error("invitation", "err", err)
			return fail(stanza.InternalServerError, "")
		}
	}
	switch err := c.srv.deps.Accounts.CreateAccount(ctx, bare.String(), creds); {
	case errors.Is(err, storage.ErrExists):
		c.restoreInvite(ctx, inv)
		return fail(stanza.Conflict, "That user name is taken.")
	case err != nil:
		c.restoreInvite(ctx, inv)
		c.srv.log.Error("registration", "user", bare.String(), "err", err)
		return fail(stanza.InternalServerError, "")
	}
	c.registered = true
	c.invite = ""
	if tok == "" {
		c.srv.log.Info("account registered", "user", bare.String(), "remote", c.remote())
		return answer(stanza.Result(iq))
	}
	c.srv.log.Info("account registered by invitation", "user", bare.String(), "inviter", inv.Inviter, "remote", c.remote())
	if inv.Inviter != "" && c.srv.deps.Befriend != nil {
		if inviter, err := jid.Parse(inv.Inviter); err == nil {
			if err := c.srv.deps.Befriend(ctx, bare, inviter); err != nil {
				c.srv.log.Error("invitation: subscription", "user", bare.String(), "inviter", inv.Inviter, "err", err)
			}
		}
	}
	return answer(stanza.Result(iq))
}

// restoreInvite stores again an invitation used for a registration that
// failed, so that the invitee can try another name; inv.Token "" is no
// invitation.
func (c *conn) restoreInvite(ctx context.Context, inv storage.Invite) {
	if inv.Token == "" {
		return
	}
	if err := c.srv.deps.Invites.CreateInvite(ctx, inv); err != nil {
		c.srv.log.Error("invitation: restore", "err", err)
	}
}
