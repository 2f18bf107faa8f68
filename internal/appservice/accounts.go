package appservice

import (
	"context"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// Accounts are the server's accounts, as those who make and remove them
// in this process see them (in-band registration, the API): each creation
// and removal is also an event for the services that watch the user.
// Accounts made by `ambrosia user` in another process are not seen.
type Accounts struct {
	storage.Accounts
	M *Manager
}

// CreateAccount implements storage.Accounts.
func (a Accounts) CreateAccount(ctx context.Context, user string, creds []storage.Credential) error {
	err := a.Accounts.CreateAccount(ctx, user, creds)
	if err == nil {
		a.M.AccountCreated(user)
	}
	return err
}

// DeleteAccount implements storage.Accounts.
func (a Accounts) DeleteAccount(ctx context.Context, user string) error {
	err := a.Accounts.DeleteAccount(ctx, user)
	if err == nil {
		a.M.AccountRemoved(user)
	}
	return err
}
