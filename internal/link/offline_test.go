package link

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// TestEventProcessedAgainStoresOfflineOnce: a restarted instance (a new
// Service, which remembers no origin) that is sent again an event it had
// processed before its crash does not store the offline message a second
// time; another event with the same stanza is another message, and an
// event without an origin is stored each time.
func TestEventProcessedAgainStoresOfflineOnce(t *testing.T) {
	ctx := context.Background()
	store, bob := storeWithBob(t)
	process := func(frameXML string) { processFresh(t, store, nil, frameXML) }
	msg := "<message xmlns='jabber:client' from='alice@other.example/r' to='" + bob + "' type='chat' id='m1'><body>hi</body></message>"
	steps := []struct {
		frame string
		want  int
	}{
		{"<to o='gw:7.1'>" + msg + "</to>", 1},
		{"<to o='gw:7.1'>" + msg + "</to>", 1}, // sent again after a crash
		{"<to o='gw:8.1'>" + msg + "</to>", 2}, // the client sent it twice
		{"<to>" + msg + "</to>", 3},
		{"<to>" + msg + "</to>", 4},
	}
	for i, st := range steps {
		process(st.frame)
		ms, err := store.OfflineMessages(ctx, bob)
		if err != nil || len(ms) != st.want {
			t.Fatalf("step %d: %d messages stored (%v), want %d", i, len(ms), err, st.want)
		}
	}
}

// storeWithBob returns a store with bob's account, and bob's JID.
func storeWithBob(t *testing.T) (*memory.Store, string) {
	t.Helper()
	store := memory.New()
	creds, err := auth.DeriveCredentials("pw", 4096)
	if err != nil {
		t.Fatal(err)
	}
	bob := "bob@" + testDomain
	if err := store.CreateAccount(context.Background(), bob, creds); err != nil {
		t.Fatal(err)
	}
	return store, bob
}

// processFresh runs one event on a fresh instance of the service over
// store (a new Service and session manager, which remember nothing, as
// after a restart), with archive as its archive if not nil, and returns
// once the event's archive writes are durable.
func processFresh(t *testing.T, store *memory.Store, archive storage.Archive, frameXML string) {
	t.Helper()
	log := xmpptest.Discard()
	r := router.New(log)
	m, err := sm.New(sm.Config{Domain: testDomain, Version: "test"},
		sm.Deps{Router: r, Accounts: store, Roster: store, Offline: store, Archive: archive, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewService(ServiceConfig{Gateways: []string{"127.0.0.1:1"}, Secret: testSecret,
		Bindings: []Binding{{Domain: testDomain, Kind: "sm", Component: m}}},
		ServiceDeps{Router: r, Credentials: store, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	writes := new(atomic.Int32)
	s.procMu.Lock()
	s.process(context.Background(), s.links[0], mustParse(t, []byte(frameXML)), writes)
	s.procMu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); writes.Load() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: archive writes still pending", frameXML)
		}
	}
}
