package loadtest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/sqlite"
)

// UserName is the local part of load account i.
func UserName(prefix string, i int) string { return prefix + strconv.Itoa(i) }

// CreateUsers creates the accounts prefix0 … prefix(count-1) at domain in
// the SQLite database at dbPath, skipping those that exist (see
// CreateUsersIn).
func CreateUsers(ctx context.Context, dbPath, domain, prefix string, count int, password string) (created, existed int, err error) {
	store, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return 0, 0, err
	}
	defer store.Close()
	return CreateUsersIn(ctx, store, domain, prefix, count, password, 1)
}

// AccountCreator is the store load accounts are created in.
type AccountCreator interface {
	CreateAccount(ctx context.Context, user string, creds []storage.Credential) error
}

// CreateUsersIn creates the accounts prefix0 … prefix(count-1) at domain
// in store, concurrency at a time (a PostgreSQL server takes several
// writers at once; SQLite one), skipping those that exist. The password
// is derived once and the same credentials (and so the same salt) serve
// every account: deriving 200,000 times would take hours and measure
// nothing, and a shared salt is harmless for throwaway load accounts.
func CreateUsersIn(ctx context.Context, store AccountCreator, domain, prefix string, count int, password string, concurrency int) (created, existed int, err error) {
	if password == "" {
		return 0, 0, errors.New("empty password")
	}
	creds, err := auth.DeriveCredentials(password, auth.DefaultIterations)
	if err != nil {
		return 0, 0, err
	}
	var (
		nc, ne   atomic.Int64
		mu       sync.Mutex
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	forEach(ctx, count, concurrency, func(i int) {
		err := store.CreateAccount(ctx, UserName(prefix, i)+"@"+domain, creds)
		switch {
		case err == nil:
			nc.Add(1)
		case errors.Is(err, storage.ErrExists):
			ne.Add(1)
		default:
			mu.Lock()
			if firstErr == nil {
				firstErr = err
				cancel()
			}
			mu.Unlock()
		}
	})
	if firstErr == nil {
		firstErr = ctx.Err() // the caller's: ours is cancelled only with firstErr set
	}
	return int(nc.Load()), int(ne.Load()), firstErr
}

// forEach runs fn(i) for i in [0, count) with at most concurrency calls in
// flight, stopping early when ctx ends.
func forEach(ctx context.Context, count, concurrency int, fn func(i int)) {
	if concurrency < 1 {
		concurrency = 1
	}
	if concurrency > count {
		concurrency = count
	}
	next := make(chan int)
	done := make(chan struct{})
	for range concurrency {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < count && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	for range concurrency {
		<-done
	}
}
