// Package prefetch loads a user's roster, offline messages, blocklist
// and archive preferences ahead of the session manager's need for them.
//
// A session manager instance processes the events of its links one at a
// time, and the first presence of a session waits for reads of the
// database: the roster and the offline messages, and with sm.Config's
// LoadOnLogin the blocklist and archive preferences that every message
// of the user needs. When many sessions
// arrive at once (the users of a failed instance, handed to a survivor;
// a gateway's logins after a restart) those reads, one after another,
// are what the survivor spends its time on. The link reads its events
// ahead of processing them; for each session announced it calls Ahead,
// which starts the reads, a few users at a time, so that they overlap
// with the processing of the events before.
//
// A read made ahead is used once, by the next read of its kind for the
// user, and only if no write for the user went through the Store since
// it began: this state of a user is written by the instance that owns
// the user, through this Store. A read ahead that nobody used is
// forgotten after MaxAge.
package prefetch

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// MaxAge is how long a read made ahead is kept for its user.
const MaxAge = 30 * time.Second

// Backing is what a Store reads ahead from and writes through to.
type Backing interface {
	storage.Roster
	storage.Offline
	storage.Blocklist
	storage.Archive
}

// Store reads users' state ahead of need. Its methods other than Ahead
// are storage.Roster's, storage.Offline's, storage.Blocklist's and
// storage.Archive's (those of the archive itself go straight through).
type Store struct {
	storage.Archive
	b        Backing
	archive  bool
	inFlight int
	maxKept  int
	now      func() time.Time

	mu      sync.Mutex
	m       map[string]*entry
	queue   []job // reads to make, in order
	running int   // goroutines making them
	added   int   // entries made, for the periodic cleanup
}

// entry is one user's reads made ahead.
type entry struct {
	done  chan struct{} // closed once its reads are over
	began time.Time     // queued, then reads over: MaxAge counts from it
	// stale: a write for the user went through the Store since the reads
	// began; they are not used.
	stale bool
	// Set before done is closed.
	items   []storage.RosterItem
	version int64
	rerr    error
	msgs    []storage.OfflineMessage
	oerr    error
	blocked []string
	berr    error
	prefs   storage.ArchivePrefs
	perr    error // storage.ErrNotFound is an answer
	// Used already (each read is used once).
	rosterUsed, offlineUsed, blockedUsed, prefsUsed bool
}

// New returns a Store over b reading ahead for at most inFlight users at
// a time and keeping at most maxKept users' reads; archive says whether
// the archive preferences are read ahead too (the archive is on).
func New(b Backing, inFlight, maxKept int, archive bool) *Store {
	return &Store{Archive: b, b: b, archive: archive, inFlight: max(inFlight, 1), maxKept: max(maxKept, 1), now: time.Now, m: map[string]*entry{}}
}

// Ahead queues the reads of user's state, unless they are queued or kept
// already or maxKept users' reads are. At most inFlight users are read
// at a time, in the order Ahead was called, which is about the order the
// processing needs them in; a read the processing needs before its turn
// comes is waited for, as the processing would otherwise wait for its
// own read behind the reads before.
func (s *Store) Ahead(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[user]; e != nil && !e.stale && !s.anyUsed(e) {
		return
	}
	if len(s.m) >= s.maxKept {
		s.dropOldLocked()
		if len(s.m) >= s.maxKept {
			return
		}
	}
	// Every so often, forget reads nobody took (a user whose state the
	// session manager had loaded already takes none).
	if s.added++; s.added%1024 == 0 {
		s.dropOldLocked()
	}
	// Without the archive, nobody asks for its preferences.
	e := &entry{done: make(chan struct{}), began: s.now(), prefsUsed: !s.archive}
	s.m[user] = e
	s.queue = append(s.queue, job{user: user, e: e})
	if s.running < s.inFlight {
		s.running++
		go s.work()
	}
}

// job is one user's reads to make.
type job struct {
	user string
	e    *entry
}

// work reads the queued users' state until the queue is empty.
func (s *Store) work() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.running--
			s.queue = nil // lets the backing array go after a burst
			s.mu.Unlock()
			return
		}
		j := s.queue[0]
		s.queue[0] = job{}
		s.queue = s.queue[1:]
		stale := j.e.stale
		s.mu.Unlock()
		if !stale {
			s.read(j.user, j.e)
		}
		close(j.e.done)
	}
}

// read makes the reads of e.
func (s *Store) read(user string, e *entry) {
	// Not the caller's context: the reads belong to the events read
	// ahead, which the processing takes on whatever happens to the
	// caller.
	ctx, cancel := context.WithTimeout(context.Background(), MaxAge)
	defer cancel()
	items, version, rerr := s.b.RosterItems(ctx, user)
	msgs, oerr := s.b.OfflineMessages(ctx, user)
	blocked, berr := s.b.BlockedJIDs(ctx, user)
	prefs, perr := storage.ArchivePrefs{}, errors.New("prefetch: archive off")
	if s.archive {
		prefs, perr = s.b.ArchivePrefs(ctx, user)
	}
	s.mu.Lock()
	e.items, e.version, e.rerr, e.msgs, e.oerr = items, version, rerr, msgs, oerr
	e.blocked, e.berr, e.prefs, e.perr = blocked, berr, prefs, perr
	e.began = s.now() // kept for MaxAge from now
	s.mu.Unlock()
}

// dropOldLocked forgets the reads older than MaxAge; s.mu is held.
func (s *Store) dropOldLocked() {
	for u, e := range s.m {
		if s.now().Sub(e.began) > MaxAge {
			select {
			case <-e.done:
				delete(s.m, u)
			default: // still reading; its reader is bounded by MaxAge too
			}
		}
	}
}

// take returns user's entry to use for a read, waiting for it to be
// over; nil if there is none to use. used marks the read taken.
func (s *Store) take(ctx context.Context, user string, used func(*entry) *bool) *entry {
	s.mu.Lock()
	e := s.m[user]
	if e == nil || e.stale || *used(e) {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.stale || *used(e) || s.now().Sub(e.began) > MaxAge {
		return nil
	}
	*used(e) = true
	if e.rosterUsed && e.offlineUsed && e.blockedUsed && e.prefsUsed && s.m[user] == e {
		delete(s.m, user)
	}
	return e
}

// anyUsed reports whether a read of e was used (without the archive, its
// preferences count as used from the start, and not here); s.mu is held.
func (s *Store) anyUsed(e *entry) bool {
	return e.rosterUsed || e.offlineUsed || e.blockedUsed || (s.archive && e.prefsUsed)
}

// wrote marks user's reads made ahead stale: called once a write for
// the user is over, it covers every read that began before the write
// ended.
func (s *Store) wrote(user string) {
	s.mu.Lock()
	if e := s.m[user]; e != nil {
		e.stale = true
		delete(s.m, user)
	}
	s.mu.Unlock()
}

// RosterItems implements storage.Roster.
func (s *Store) RosterItems(ctx context.Context, user string) ([]storage.RosterItem, int64, error) {
	if e := s.take(ctx, user, func(e *entry) *bool { return &e.rosterUsed }); e != nil && e.rerr == nil {
		return e.items, e.version, nil
	}
	return s.b.RosterItems(ctx, user)
}

// RosterItem implements storage.Roster.
func (s *Store) RosterItem(ctx context.Context, user, contact string) (storage.RosterItem, error) {
	return s.b.RosterItem(ctx, user, contact)
}

// PutRosterItem implements storage.Roster.
func (s *Store) PutRosterItem(ctx context.Context, user string, item storage.RosterItem) (int64, error) {
	defer s.wrote(user)
	return s.b.PutRosterItem(ctx, user, item)
}

// DeleteRosterItem implements storage.Roster.
func (s *Store) DeleteRosterItem(ctx context.Context, user, contact string) (int64, error) {
	defer s.wrote(user)
	return s.b.DeleteRosterItem(ctx, user, contact)
}

// PushOffline implements storage.Offline.
func (s *Store) PushOffline(ctx context.Context, user string, stanza []byte, stored time.Time, quota int) error {
	defer s.wrote(user)
	return s.b.PushOffline(ctx, user, stanza, stored, quota)
}

// OfflineMessages implements storage.Offline.
func (s *Store) OfflineMessages(ctx context.Context, user string) ([]storage.OfflineMessage, error) {
	if e := s.take(ctx, user, func(e *entry) *bool { return &e.offlineUsed }); e != nil && e.oerr == nil {
		return e.msgs, nil
	}
	return s.b.OfflineMessages(ctx, user)
}

// DeleteOffline implements storage.Offline.
func (s *Store) DeleteOffline(ctx context.Context, user string, upTo int64) error {
	defer s.wrote(user)
	return s.b.DeleteOffline(ctx, user, upTo)
}

// DeleteOfflineEvent implements storage.Offline.
func (s *Store) DeleteOfflineEvent(ctx context.Context, user, event string) (bool, error) {
	defer s.wrote(user)
	return s.b.DeleteOfflineEvent(ctx, user, event)
}

// BlockedJIDs implements storage.Blocklist.
func (s *Store) BlockedJIDs(ctx context.Context, user string) ([]string, error) {
	if e := s.take(ctx, user, func(e *entry) *bool { return &e.blockedUsed }); e != nil && e.berr == nil {
		return e.blocked, nil
	}
	return s.b.BlockedJIDs(ctx, user)
}

// Block implements storage.Blocklist.
func (s *Store) Block(ctx context.Context, user string, jids []string) error {
	defer s.wrote(user)
	return s.b.Block(ctx, user, jids)
}

// Unblock implements storage.Blocklist.
func (s *Store) Unblock(ctx context.Context, user string, jids []string) error {
	defer s.wrote(user)
	return s.b.Unblock(ctx, user, jids)
}

// ArchivePrefs implements storage.Archive.
func (s *Store) ArchivePrefs(ctx context.Context, user string) (storage.ArchivePrefs, error) {
	if e := s.take(ctx, user, func(e *entry) *bool { return &e.prefsUsed }); e != nil && (e.perr == nil || errors.Is(e.perr, storage.ErrNotFound)) {
		return e.prefs, e.perr
	}
	return s.b.ArchivePrefs(ctx, user)
}

// SetArchivePrefs implements storage.Archive.
func (s *Store) SetArchivePrefs(ctx context.Context, user string, p storage.ArchivePrefs) error {
	defer s.wrote(user)
	return s.b.SetArchivePrefs(ctx, user, p)
}
