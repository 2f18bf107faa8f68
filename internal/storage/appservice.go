package storage

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"strconv"
)

// AppServiceEvent is one event queued for an application service.
type AppServiceEvent struct {
	// Seq is the event's position in its service's queue: increasing,
	// never reused.
	Seq int64
	// Data is the event as the service receives it (JSON). Storage does
	// not look inside.
	Data []byte
}

// AppServiceQueue keeps the events bound for application services until
// they acknowledge them, so that neither the service's absence nor a
// restart of the server loses one. Events go out in transactions: a
// transaction keeps its id and its events from the moment it is opened
// until it is acknowledged, across restarts, so that a service that has
// seen it already recognizes it by its id (at-least-once delivery, with
// de-duplication on the service's side).
type AppServiceQueue interface {
	// AppendAppServiceEvents adds events, in order, at the end of the
	// service's queue and returns how many events wait after it.
	AppendAppServiceEvents(ctx context.Context, service string, events [][]byte) (depth int, err error)
	// OpenAppServiceTxn returns the service's open transaction: the one
	// opened before and not acknowledged since, whatever max is, or else
	// a new one made of the oldest waiting events, at most max of them.
	// It returns "" and no events when nothing waits. A transaction id
	// is never reused by the service, even after its acknowledgement.
	// max must be at least 1 (ErrInvalid).
	OpenAppServiceTxn(ctx context.Context, service string, max int) (txn string, events []AppServiceEvent, err error)
	// AckAppServiceTxn removes the events of the transaction and closes
	// it. An unknown or already acknowledged transaction is not an error.
	AckAppServiceTxn(ctx context.Context, service, txn string) error
	// AppServiceDepth returns how many events wait, those of the open
	// transaction included.
	AppServiceDepth(ctx context.Context, service string) (int, error)
	// TrimAppServiceQueue removes the oldest waiting events until at most
	// keep wait, never those of the open transaction, and returns how
	// many it removed: the bound on the backlog of a service that stays
	// away. keep must not be negative (ErrInvalid).
	TrimAppServiceQueue(ctx context.Context, service string, keep int) (dropped int, err error)
}

// NewAppServiceEpoch returns a random string that backends store with a
// service's queue when they create it, and put in front of its
// transaction numbers (AppServiceTxnID): a database started afresh
// counts transactions from 1 again, and its ids must still not be taken
// by the service for ones it has seen.
func NewAppServiceEpoch() string {
	var b [5]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base32.HexEncoding.EncodeToString(b[:])
}

// AppServiceTxnID is the id of a service's transaction number n.
func AppServiceTxnID(epoch string, n int64) string {
	return epoch + "." + strconv.FormatInt(n, 10)
}
