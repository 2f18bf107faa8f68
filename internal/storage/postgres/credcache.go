package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// credentialsChannel is where every change of a user's credentials is
// announced (NOTIFY, the user as payload), by the transaction that makes
// it, so that the processes caching credentials forget the user's at its
// commit.
const credentialsChannel = "ambrosia_credentials"

// notifyCredentials announces, at tx's commit, that user's credentials
// changed.
func notifyCredentials(ctx context.Context, tx pgx.Tx, user string) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, credentialsChannel, user)
	return err
}

// listenRetry is how long the listener waits before connecting again
// after it lost its connection, and at most after failures in a row.
const (
	listenRetry    = time.Second
	listenRetryMax = 30 * time.Second
)

// CacheCredentials keeps the credentials of up to maxUsers users in
// memory for at most ttl each (package credcache), so that a client that
// reconnects is checked without a query. The database is shared by other
// processes: the cache is on only while a connection of its own listens
// for their changes (every Store announces its own), and everything is
// forgotten when that connection is lost, until another listens. It
// returns an error, leaving the cache off, if it cannot listen now (a
// PostgreSQL-compatible engine without LISTEN, say); afterwards it
// reconnects by itself until Close.
//
// ttl bounds what an announcement lost otherwise could cost: a change
// by a program that does not announce (an older Ambrosia during an
// upgrade), or during a network failure the connection did not see.
func (s *Store) CacheCredentials(ctx context.Context, maxUsers int, ttl time.Duration, log *slog.Logger) error {
	if maxUsers <= 0 || ttl <= 0 {
		return nil
	}
	conn, err := s.listen(ctx)
	if err != nil {
		return fmt.Errorf("postgres: credential cache: %w", err)
	}
	s.creds.Configure(maxUsers, ttl)
	lctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.lmu.Lock()
	if s.closed {
		s.lmu.Unlock()
		cancel()
		conn.Close(ctx)
		s.creds.Configure(0, 0)
		return errors.New("postgres: credential cache: store closed")
	}
	s.stopListen = append(s.stopListen, func() { cancel(); <-done })
	s.lmu.Unlock()
	go func() {
		defer close(done)
		s.listenLoop(lctx, conn, maxUsers, ttl, log)
	}()
	return nil
}

// listen opens a connection of its own that listens on
// credentialsChannel.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+credentialsChannel); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return conn, nil
}

// listenLoop forgets the users whose changes are announced on conn until
// ctx is done; when conn fails, it turns the cache off, and on again
// once a new connection listens.
func (s *Store) listenLoop(ctx context.Context, conn *pgx.Conn, maxUsers int, ttl time.Duration, log *slog.Logger) {
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	first := listenRetry
	if s.listenRetry > 0 {
		first = s.listenRetry
	}
	wait := first
	for {
		if conn == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			c, err := s.listen(ctx)
			if err != nil {
				wait = min(2*wait, listenRetryMax)
				continue
			}
			conn, wait = c, first
			s.creds.Configure(maxUsers, ttl)
			log.Info("credential cache on again: listening for changes")
		}
		n, err := conn.WaitForNotification(ctx)
		if err == nil {
			s.creds.Forget(n.Payload)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		// Changes made from now until another connection listens would
		// go unheard: nothing is kept meanwhile.
		s.creds.Configure(0, 0)
		log.Warn("credential cache off: the connection listening for changes failed; reconnecting", "err", err)
		conn.Close(context.Background())
		conn = nil
	}
}
