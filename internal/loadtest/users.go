package loadtest

import (
	"context"
	"errors"
	"strconv"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/sqlite"
)

// UserName is the local part of load account i.
func UserName(prefix string, i int) string { return prefix + strconv.Itoa(i) }

// CreateUsers creates the accounts prefix0 … prefix(count-1) at domain in
// the SQLite database at dbPath, skipping those that exist. The password
// is derived once and the same credentials (and so the same salt) serve
// every account: deriving 10,000 times would take minutes and measure
// nothing, and a shared salt is harmless for throwaway load accounts.
func CreateUsers(ctx context.Context, dbPath, domain, prefix string, count int, password string) (created, existed int, err error) {
	if password == "" {
		return 0, 0, errors.New("empty password")
	}
	creds, err := auth.DeriveCredentials(password, auth.DefaultIterations)
	if err != nil {
		return 0, 0, err
	}
	store, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return 0, 0, err
	}
	defer store.Close()
	for i := range count {
		if err := ctx.Err(); err != nil {
			return created, existed, err
		}
		err := store.CreateAccount(ctx, UserName(prefix, i)+"@"+domain, creds)
		switch {
		case err == nil:
			created++
		case errors.Is(err, storage.ErrExists):
			existed++
		default:
			return created, existed, err
		}
	}
	return created, existed, nil
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
