package sm_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/sqlite"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// TestOfflineStoreUnreachable: a message for a user who is offline while
// the store of accounts and offline messages cannot be reached fails
// with internal-server-error, not with service-unavailable as if the user
// did not exist, and not silently.
func TestOfflineStoreUnreachable(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := auth.DeriveCredentials("builder", 4096)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAccount(ctx, "bob@localhost", creds); err != nil {
		t.Fatal(err)
	}
	s := xmpptest.StartServerWith(t, xmpptest.Options{SMDeps: func(d *sm.Deps) { d.Accounts, d.Offline = db, db }})
	s.AddUser(t, "alice@localhost", "wonderland")
	a := s.Login(t, "alice", "wonderland", "a")
	a.Send("<message to='bob@localhost' type='chat' id='up'><body>stored</body></message>")
	a.Send("<message to='ghost@localhost' type='chat' id='ghost'><body>x</body></message>")
	if e := a.Expect("ghost's error", func(e *xmlstream.Element) bool { return e.Attr("id") == "ghost" }); !strings.Contains(e.String(), "service-unavailable") {
		t.Fatalf("a user that does not exist: %s", e)
	}
	if ms, err := db.OfflineMessages(ctx, "bob@localhost"); err != nil || len(ms) != 1 {
		t.Fatalf("stored %d (%v), want 1", len(ms), err)
	}
	if err := db.Close(); err != nil { // the database is gone
		t.Fatal(err)
	}
	a.Send("<message to='bob@localhost' type='chat' id='down'><body>lost</body></message>")
	if e := a.Expect("the error", func(e *xmlstream.Element) bool { return e.Attr("id") == "down" }); e.Attr("type") != "error" || !strings.Contains(e.String(), "internal-server-error") {
		t.Fatalf("while the store is unreachable: %s", e)
	}
}
