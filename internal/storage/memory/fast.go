package memory

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

var _ storage.FastTokens = (*Store)(nil)

// AddFastToken implements storage.FastTokens.
func (s *Store) AddFastToken(ctx context.Context, t storage.FastToken) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: add fast token %s: %w", t.User, err)
	}
	if len(t.Hash) == 0 || t.Agent == "" {
		return fmt.Errorf("memory: add fast token %s: %w: empty hash or agent", t.User, storage.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[t.User]; !ok {
		return fmt.Errorf("memory: add fast token %s: %w", t.User, storage.ErrNotFound)
	}
	if s.fast == nil {
		s.fast = make(map[string][]storage.FastToken)
	}
	t.Hash = slices.Clone(t.Hash)
	t.Count = 0
	// Tokens of the agent stay newest first: the new one, then the one it
	// replaces; anything older goes.
	var out []storage.FastToken
	kept := 0
	out = append(out, t)
	for _, x := range s.fast[t.User] {
		if x.Agent != t.Agent {
			out = append(out, x)
			continue
		}
		if kept == 0 {
			out = append(out, x)
			kept++
		}
	}
	s.fast[t.User] = out
	return nil
}

// FastTokens implements storage.FastTokens.
func (s *Store) FastTokens(ctx context.Context, user, agent string) ([]storage.FastToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: fast tokens %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.FastToken
	for _, x := range s.fast[user] {
		if x.Agent == agent {
			x.Hash = slices.Clone(x.Hash)
			out = append(out, x)
		}
	}
	return out, nil
}

// UseFastToken implements storage.FastTokens.
func (s *Store) UseFastToken(ctx context.Context, user, agent string, hash []byte, count uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: use fast token %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.fast[user]
	newest := true
	for i := range ts {
		if ts[i].Agent != agent {
			continue
		}
		if !bytes.Equal(ts[i].Hash, hash) {
			newest = false
			continue
		}
		if count <= ts[i].Count {
			return fmt.Errorf("memory: use fast token %s: %w", user, storage.ErrReplay)
		}
		ts[i].Count = count
		if newest {
			// The client has the newest token: the one before it is done.
			s.fast[user] = slices.DeleteFunc(ts, func(x storage.FastToken) bool {
				return x.Agent == agent && !bytes.Equal(x.Hash, hash)
			})
		}
		return nil
	}
	return fmt.Errorf("memory: use fast token %s: %w", user, storage.ErrNotFound)
}

// DeleteFastTokens implements storage.FastTokens.
func (s *Store) DeleteFastTokens(ctx context.Context, user, agent string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: delete fast tokens %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if agent == "" {
		delete(s.fast, user)
		return nil
	}
	ts := slices.DeleteFunc(s.fast[user], func(x storage.FastToken) bool { return x.Agent == agent })
	if len(ts) == 0 {
		delete(s.fast, user)
		return nil
	}
	s.fast[user] = ts
	return nil
}
