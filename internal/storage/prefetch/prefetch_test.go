package prefetch

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
)

// counting counts the reads that reach the backing store; while gate is
// set, an archive preferences read, once read, waits for it to close (a
// read ahead reads them last).
type counting struct {
	*memory.Store
	rosterReads, offlineReads atomic.Int32
	blockedReads, prefsReads  atomic.Int32
	mu                        sync.Mutex
	gate                      chan struct{}
}

func (c *counting) RosterItems(ctx context.Context, user string) ([]storage.RosterItem, int64, error) {
	c.rosterReads.Add(1)
	return c.Store.RosterItems(ctx, user)
}

func (c *counting) BlockedJIDs(ctx context.Context, user string) ([]string, error) {
	c.blockedReads.Add(1)
	return c.Store.BlockedJIDs(ctx, user)
}

func (c *counting) ArchivePrefs(ctx context.Context, user string) (storage.ArchivePrefs, error) {
	p, err := c.Store.ArchivePrefs(ctx, user)
	c.prefsReads.Add(1)
	c.mu.Lock()
	g := c.gate
	c.mu.Unlock()
	if g != nil {
		<-g
	}
	return p, err
}

func (c *counting) OfflineMessages(ctx context.Context, user string) ([]storage.OfflineMessage, error) {
	c.offlineReads.Add(1)
	return c.Store.OfflineMessages(ctx, user)
}

const alice = "alice@localhost"

func setup(t *testing.T) (*counting, *Store) {
	t.Helper()
	b := &counting{Store: memory.New()}
	ctx := context.Background()
	if _, err := b.Store.PutRosterItem(ctx, alice, storage.RosterItem{Contact: "bob@localhost", Subscription: "both"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Store.PushOffline(ctx, alice, []byte("<message/>"), time.Now(), 100); err != nil {
		t.Fatal(err)
	}
	if err := b.Store.Block(ctx, alice, []string{"spam@example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Store.SetArchivePrefs(ctx, alice, storage.ArchivePrefs{Default: "roster"}); err != nil {
		t.Fatal(err)
	}
	return b, New(b, 4, 100, true)
}

// waitRead waits until the reads ahead reached the backing store: roster
// reads, and rest of the offline and of the archive preferences reads.
func waitRead(t *testing.T, b *counting, roster, rest int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.rosterReads.Load() < roster || b.offlineReads.Load() < rest || b.prefsReads.Load() < rest {
		if time.Now().After(deadline) {
			t.Fatalf("reads: roster %d, offline %d", b.rosterReads.Load(), b.offlineReads.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestReadAheadUsedOnce(t *testing.T) {
	b, s := setup(t)
	ctx := context.Background()
	s.Ahead(alice)
	waitRead(t, b, 1, 1)
	items, _, err := s.RosterItems(ctx, alice)
	if err != nil || len(items) != 1 || items[0].Contact != "bob@localhost" {
		t.Fatalf("roster %v, %v", items, err)
	}
	msgs, err := s.OfflineMessages(ctx, alice)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("offline %v, %v", msgs, err)
	}
	blocked, err := s.BlockedJIDs(ctx, alice)
	if err != nil || len(blocked) != 1 {
		t.Fatalf("blocklist %v, %v", blocked, err)
	}
	prefs, err := s.ArchivePrefs(ctx, alice)
	if err != nil || prefs.Default != "roster" {
		t.Fatalf("archive prefs %+v, %v", prefs, err)
	}
	if r, o, bl, p := b.rosterReads.Load(), b.offlineReads.Load(), b.blockedReads.Load(), b.prefsReads.Load(); r != 1 || o != 1 || bl != 1 || p != 1 {
		t.Errorf("backing reads: roster %d, offline %d, blocklist %d, prefs %d; want the reads ahead only", r, o, bl, p)
	}
	// Used once: the next reads are the store's.
	if _, _, err := s.RosterItems(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OfflineMessages(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if r, o := b.rosterReads.Load(), b.offlineReads.Load(); r != 2 || o != 2 {
		t.Errorf("backing reads: roster %d, offline %d; want 2 each", r, o)
	}
}

// TestWriteMakesReadAheadStale: a write for the user after the read
// ahead, or while it is under way, sends the next read to the store.
func TestWriteMakesReadAheadStale(t *testing.T) {
	ctx := context.Background()
	writes := []struct {
		name  string
		write func(s *Store) error
		check func(t *testing.T, s *Store)
	}{
		{"roster put", func(s *Store) error {
			_, err := s.PutRosterItem(ctx, alice, storage.RosterItem{Contact: "carol@localhost", Subscription: "to"})
			return err
		}, func(t *testing.T, s *Store) {
			if items, _, _ := s.RosterItems(ctx, alice); len(items) != 2 {
				t.Errorf("roster %v, want bob and carol", items)
			}
		}},
		{"roster delete", func(s *Store) error {
			_, err := s.DeleteRosterItem(ctx, alice, "bob@localhost")
			return err
		}, func(t *testing.T, s *Store) {
			if items, _, _ := s.RosterItems(ctx, alice); len(items) != 0 {
				t.Errorf("roster %v, want none", items)
			}
		}},
		{"block", func(s *Store) error {
			return s.Block(ctx, alice, []string{"more@example.org"})
		}, func(t *testing.T, s *Store) {
			if bl, _ := s.BlockedJIDs(ctx, alice); len(bl) != 2 {
				t.Errorf("blocklist %v, want two", bl)
			}
		}},
		{"unblock", func(s *Store) error {
			return s.Unblock(ctx, alice, nil)
		}, func(t *testing.T, s *Store) {
			if bl, _ := s.BlockedJIDs(ctx, alice); len(bl) != 0 {
				t.Errorf("blocklist %v, want none", bl)
			}
		}},
		{"archive prefs", func(s *Store) error {
			return s.SetArchivePrefs(ctx, alice, storage.ArchivePrefs{Default: "never"})
		}, func(t *testing.T, s *Store) {
			if p, _ := s.ArchivePrefs(ctx, alice); p.Default != "never" {
				t.Errorf("archive default %q, want never", p.Default)
			}
		}},
		{"offline push", func(s *Store) error {
			return s.PushOffline(ctx, alice, []byte("<message id='2'/>"), time.Now(), 100)
		}, func(t *testing.T, s *Store) {
			if msgs, _ := s.OfflineMessages(ctx, alice); len(msgs) != 2 {
				t.Errorf("%d offline messages, want 2", len(msgs))
			}
		}},
		{"offline delete", func(s *Store) error {
			return s.DeleteOffline(ctx, alice, 1<<62)
		}, func(t *testing.T, s *Store) {
			if msgs, _ := s.OfflineMessages(ctx, alice); len(msgs) != 0 {
				t.Errorf("%d offline messages, want none", len(msgs))
			}
		}},
	}
	for _, w := range writes {
		for _, during := range []bool{false, true} {
			name := w.name + " after"
			if during {
				name = w.name + " during"
			}
			t.Run(name, func(t *testing.T) {
				b, s := setup(t)
				var gate chan struct{}
				if during {
					gate = make(chan struct{})
					b.mu.Lock()
					b.gate = gate
					b.mu.Unlock()
				}
				s.Ahead(alice)
				waitRead(t, b, 1, 1) // during: read, and waiting to be kept
				if err := w.write(s); err != nil {
					t.Fatal(err)
				}
				if during {
					b.mu.Lock()
					b.gate = nil
					b.mu.Unlock()
					close(gate)
				}
				w.check(t, s)
			})
		}
	}
}

// TestAheadBounded: at most inFlight users are read at a time; the
// others wait in order, and a read the processing needs is waited for,
// not made twice.
func TestAheadBounded(t *testing.T) {
	b, s := setup(t)
	gate := make(chan struct{})
	b.gate = gate
	for _, u := range []string{"u1@localhost", "u2@localhost", "u3@localhost", "u4@localhost", "u5@localhost"} {
		s.Ahead(u)
	}
	waitRead(t, b, 4, 4)
	time.Sleep(10 * time.Millisecond)
	if n := b.rosterReads.Load(); n != 4 {
		t.Errorf("%d reads ahead under way, want the 4 allowed", n)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		b.mu.Lock()
		b.gate = nil
		b.mu.Unlock()
		close(gate)
	}()
	if _, _, err := s.RosterItems(context.Background(), "u5@localhost"); err != nil {
		t.Fatal(err)
	}
	if n := b.rosterReads.Load(); n != 5 {
		t.Errorf("%d roster reads, want 5: the fifth user's read ahead, waited for", n)
	}
}

func TestReadAheadExpires(t *testing.T) {
	b, s := setup(t)
	now := time.Now()
	var mu sync.Mutex
	s.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s.Ahead(alice)
	waitRead(t, b, 1, 1)
	mu.Lock()
	now = now.Add(MaxAge + time.Second)
	mu.Unlock()
	if _, _, err := s.RosterItems(context.Background(), alice); err != nil {
		t.Fatal(err)
	}
	if n := b.rosterReads.Load(); n != 2 {
		t.Errorf("%d roster reads, want 2: a read ahead older than MaxAge is not used", n)
	}
}

// TestArchiveOff: without the archive its preferences are not read
// ahead, and a user's reads are forgotten once the others are taken.
func TestArchiveOff(t *testing.T) {
	b := &counting{Store: memory.New()}
	s := New(b, 4, 100, false)
	ctx := context.Background()
	s.Ahead(alice)
	s.Ahead(alice) // queued already: nothing more
	waitRead(t, b, 1, 0)
	if _, _, err := s.RosterItems(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OfflineMessages(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BlockedJIDs(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if r, p := b.rosterReads.Load(), b.prefsReads.Load(); r != 1 || p != 0 {
		t.Errorf("%d roster reads, %d archive preference reads; want 1 and 0", r, p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) != 0 {
		t.Errorf("%d users' reads kept, want none", len(s.m))
	}
}
