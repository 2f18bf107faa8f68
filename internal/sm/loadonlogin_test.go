package sm

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
)

// loadCounter counts the blocklist and archive preference reads.
type loadCounter struct {
	*memory.Store
	blocked, prefs atomic.Int32
}

func (c *loadCounter) BlockedJIDs(ctx context.Context, user string) ([]string, error) {
	c.blocked.Add(1)
	return c.Store.BlockedJIDs(ctx, user)
}

func (c *loadCounter) ArchivePrefs(ctx context.Context, user string) (storage.ArchivePrefs, error) {
	c.prefs.Add(1)
	return c.Store.ArchivePrefs(ctx, user)
}

// TestLoadOnLogin: with LoadOnLogin, a session's initial presence loads
// the user's blocklist and archive preferences (which a split instance
// has read ahead); without it they wait for the first message.
func TestLoadOnLogin(t *testing.T) {
	for _, on := range []bool{false, true} {
		store := &loadCounter{Store: memory.New()}
		log := slog.New(slog.DiscardHandler)
		r := router.New(log)
		m, err := New(Config{Domain: "localhost", LoadOnLogin: on},
			Deps{Router: r, Accounts: store, Roster: store, Blocklist: store, Archive: store, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		// online binds a session of alice and sends its initial presence.
		online := func(full string) {
			s := &fakeSession{jid: jid.MustParse(full)}
			if err := m.Bind(t.Context(), s); err != nil {
				t.Fatal(err)
			}
			p := mustParse(t, "<presence xmlns='jabber:client'/>")
			p.SetAttr("from", s.jid.String())
			m.HandleFromSession(t.Context(), s, router.Stanza{El: p, From: s.jid})
		}
		online("alice@localhost/a")
		want := int32(0)
		if on {
			want = 1
		}
		if b, pr := store.blocked.Load(), store.prefs.Load(); b != want || pr != want {
			t.Errorf("LoadOnLogin %v: %d blocklist and %d archive preference reads, want %d each", on, b, pr, want)
		}
		// A second initial presence of the user (another session) reads
		// nothing more: the user's state is loaded.
		online("alice@localhost/b")
		if b, pr := store.blocked.Load(), store.prefs.Load(); b != want || pr != want {
			t.Errorf("LoadOnLogin %v, second session: %d blocklist and %d archive preference reads, want %d each", on, b, pr, want)
		}
	}
}
