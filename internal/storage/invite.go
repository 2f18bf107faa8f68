package storage

import (
	"context"
	"time"
)

// Invite is an invitation (XEP-0401, XEP-0379): a secret token that lets
// its holder register an account although open registration is off,
// and, with an inviter, become the inviter's contact with a mutual
// subscription.
type Invite struct {
	// Token identifies the invitation, unique in the store: a key
	// derived from the secret the invitee presents (internal/invite
	// stores its SHA-256), so that the database does not hold the secret.
	Token string
	// Domain is the domain the invitee may register on.
	Domain string
	// Inviter is the bare JID of the user who invited, whose roster the
	// invitee joins; "" for an invitation to register only (one from
	// the operator).
	Inviter string
	// Expires is when the invitation stops being valid.
	Expires time.Time
}

// Invites stores invitations until they are used or expire. Each one is
// used once. Accounts.DeleteAccount removes the invitations of the
// deleted user as inviter.
type Invites interface {
	// CreateInvite stores inv. It returns ErrExists if its token is
	// taken and ErrInvalid if the token or the domain is empty.
	CreateInvite(ctx context.Context, inv Invite) error
	// Invite returns the invitation with token, or ErrNotFound if there
	// is none or it expired before now.
	Invite(ctx context.Context, token string, now time.Time) (Invite, error)
	// UseInvite removes the invitation with token and returns it, so
	// that of two concurrent uses only one succeeds. It returns
	// ErrNotFound if there is none or it expired before now. Expired
	// invitations are removed on the way.
	UseInvite(ctx context.Context, token string, now time.Time) (Invite, error)
}
