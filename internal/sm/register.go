package sm

import (
	"context"
	"errors"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// nsRegister is In-Band Registration (XEP-0077); after login it changes
// the password or removes the account.
const nsRegister = "jabber:iq:register"

// AccountManager changes and removes accounts; storage backends provide it.
type AccountManager interface {
	SetCredentials(ctx context.Context, user string, creds []storage.Credential) error
	DeleteAccount(ctx context.Context, user string) error
}

// registerIQ serves XEP-0077 for a logged-in user; it reports whether el
// was such a request.
func (m *SM) registerIQ(ctx context.Context, sess router.Session, s router.Stanza) bool {
	q := s.El.Child(nsRegister, "query")
	if q == nil {
		return false
	}
	fail := func(cond, text string) { replyError(sess, s, cond, text) }
	am, ok := m.deps.Accounts.(AccountManager)
	if !ok {
		fail(stanza.ServiceUnavailable, "")
		return true
	}
	user := s.From.Bare()
	if s.El.Attr("type") == "get" {
		r := stanza.Result(s.El)
		rq := r.AddChild(xmlstream.NewElement(nsRegister, "query"))
		rq.AddChild(xmlstream.NewElement(nsRegister, "registered"))
		rq.AddChild(xmlstream.NewElement(nsRegister, "username")).AddText(user.Local())
		replyTo(sess, s, r)
		return true
	}
	if q.Child(nsRegister, "remove") != nil {
		if err := am.DeleteAccount(ctx, user.String()); err != nil && !errors.Is(err, storage.ErrNotFound) {
			m.log.Error("account removal", "user", user.String(), "err", err)
			fail(stanza.InternalServerError, "")
			return true
		}
		m.log.Info("account removed", "user", user.String())
		replyTo(sess, s, stanza.Result(s.El))
		// The account is gone: so are its sessions (XEP-0077 §3.2).
		if u := m.user(user.String()); u != nil {
			u.mu.Lock()
			ss := make([]router.Session, 0, len(u.sessions))
			for _, x := range u.sessions {
				ss = append(ss, x.s)
			}
			u.mu.Unlock()
			for _, x := range ss {
				x.Close("not-authorized")
			}
		}
		return true
	}
	p := q.Child(nsRegister, "password")
	if p == nil || p.Text() == "" {
		fail(stanza.BadRequest, "")
		return true
	}
	if un := q.Child(nsRegister, "username"); un != nil && un.Text() != "" && un.Text() != user.Local() {
		fail(stanza.NotAllowed, "A password can only be changed for one's own account.")
		return true
	}
	creds, err := auth.DeriveCredentials(p.Text(), auth.DefaultIterations)
	if err != nil {
		fail(stanza.NotAcceptable, "That password is not allowed.")
		return true
	}
	if err := am.SetCredentials(ctx, user.String(), creds); err != nil {
		m.log.Error("password change", "user", user.String(), "err", err)
		fail(stanza.InternalServerError, "")
		return true
	}
	replyTo(sess, s, stanza.Result(s.El))
	return true
}
