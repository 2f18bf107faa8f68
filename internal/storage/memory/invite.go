package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

var _ storage.Invites = (*Store)(nil)

// CreateInvite implements storage.Invites.
func (s *Store) CreateInvite(ctx context.Context, inv storage.Invite) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: create invite: %w", err)
	}
	if inv.Token == "" || inv.Domain == "" {
		return fmt.Errorf("memory: create invite: %w: empty token or domain", storage.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.invites[inv.Token]; ok {
		return fmt.Errorf("memory: create invite: %w", storage.ErrExists)
	}
	if s.invites == nil {
		s.invites = make(map[string]storage.Invite)
	}
	inv.Expires = inv.Expires.UTC()
	s.invites[inv.Token] = inv
	return nil
}

// Invite implements storage.Invites.
func (s *Store) Invite(ctx context.Context, token string, now time.Time) (storage.Invite, error) {
	if err := ctx.Err(); err != nil {
		return storage.Invite{}, fmt.Errorf("memory: invite: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.invites[token]
	if !ok || !inv.Expires.After(now) {
		return storage.Invite{}, fmt.Errorf("memory: invite: %w", storage.ErrNotFound)
	}
	return inv, nil
}

// UseInvite implements storage.Invites.
func (s *Store) UseInvite(ctx context.Context, token string, now time.Time) (storage.Invite, error) {
	if err := ctx.Err(); err != nil {
		return storage.Invite{}, fmt.Errorf("memory: use invite: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, inv := range s.invites {
		if !inv.Expires.After(now) {
			delete(s.invites, t)
		}
	}
	inv, ok := s.invites[token]
	if !ok {
		return storage.Invite{}, fmt.Errorf("memory: use invite: %w", storage.ErrNotFound)
	}
	delete(s.invites, token)
	return inv, nil
}
