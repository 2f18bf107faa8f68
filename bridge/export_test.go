package bridge

import (
	"context"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/bridge/internal/store"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
)

// AttachForTest serves b on rt with a store in a temporary directory, as
// Run does once connected.
func AttachForTest(t testing.TB, b *Bridge, rt *router.Router) {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.shutdown(); b.idmap.flush(); st.Close() })
	if err := b.attach(rt, st); err != nil {
		t.Fatal(err)
	}
}
