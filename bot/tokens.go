package bot

import (
	"context"
	"sync"
	"time"
)

// A Token is a FAST token (XEP-0484): a secret the server gave the bot so
// that it can log in again without its password, in one round trip.
type Token struct {
	// Mechanism is the HT mechanism the token is for, such as
	// HT-SHA-256-EXPR.
	Mechanism string
	// Secret is the token itself.
	Secret string
	// Expiry is when the server stops accepting it.
	Expiry time.Time
	// Count is how many times it was used; the server refuses a count
	// that does not grow, so that a login cannot be replayed.
	Count uint64
}

// A TokenStore keeps the bot's FAST token between logins. A program that
// stores it on disk logs in without its password after a restart too; it
// should protect it as it protects the password.
type TokenStore interface {
	// LoadToken returns the token stored under key, nil if there is none.
	LoadToken(ctx context.Context, key string) (*Token, error)
	// StoreToken stores t under key; nil deletes it.
	StoreToken(ctx context.Context, key string, t *Token) error
}

// MemoryTokens is a TokenStore in memory, the default. Its zero value is
// ready to use.
type MemoryTokens struct {
	mu sync.Mutex
	m  map[string]Token
}

// LoadToken implements TokenStore.
func (s *MemoryTokens) LoadToken(_ context.Context, key string) (*Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[key]
	if !ok {
		return nil, nil
	}
	return &t, nil
}

// StoreToken implements TokenStore.
func (s *MemoryTokens) StoreToken(_ context.Context, key string, t *Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t == nil {
		delete(s.m, key)
		return nil
	}
	if s.m == nil {
		s.m = make(map[string]Token)
	}
	s.m[key] = *t
	return nil
}
