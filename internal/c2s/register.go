package c2s

import (
	"context"
	"errors"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// nsRegister is In-Band Registration (XEP-0077).
const nsRegister = "jabber:iq:register"

// AccountCreator creates accounts for in-band registration.
type AccountCreator interface {
	CreateAccount(ctx context.Context, user string, creds []storage.Credential) error
}

// registrationOpen reports whether this connection may register an
// account now: registration is switched on, the connection is encrypted
// (or plain connections are allowed), and it has not registered one yet.
func (c *conn) registrationOpen() bool {
	return c.srv.cfg.AllowRegistration && c.srv.deps.Accounts != nil && !c.registered &&
		(c.tlsInfo() != nil || c.srv.cfg.AllowPlain)
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
		r := stanza.Result(iq)
		rq := r.AddChild(xmlstream.NewElement(nsRegister, "query"))
		rq.AddChild(xmlstream.NewElement(nsRegister, "instructions")).AddText("Choose a user name and a password.")
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
	bare, err := jid.New(user, c.domain, "")
	if err != nil {
		return fail(stanza.JIDMalformed, "That user name is not allowed.")
	}
	creds, err := auth.DeriveCredentials(pass, auth.DefaultIterations)
	if err != nil {
		return fail(stanza.NotAcceptable, "That password is not allowed.")
	}
	switch err := c.srv.deps.Accounts.CreateAccount(ctx, bare.String(), creds); {
	case errors.Is(err, storage.ErrExists):
		return fail(stanza.Conflict, "That user name is taken.")
	case err != nil:
		c.srv.log.Error("registration", "user", bare.String(), "err", err)
		return fail(stanza.InternalServerError, "")
	}
	c.registered = true
	c.srv.log.Info("account registered", "user", bare.String(), "remote", c.remote())
	return answer(stanza.Result(iq))
}
