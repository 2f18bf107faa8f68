package component

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// TestSetComponents changes the components while one is connected: a
// new secret applies at the next handshake and leaves the connected one
// alone, a new component may connect, one removed is disconnected, and
// a stream opened before its component was removed cannot complete its
// handshake (not even with an empty secret's proof).
func TestSetComponents(t *testing.T) {
	f := start(t, nil)
	echo := f.connect(t)
	defer echo.Close()
	pending, pendingID := f.open(t, "other.localhost")

	removed, err := f.srv.SetComponents([]External{{Domain: echoDomain, Secret: "new"}, {Domain: "added.localhost", Secret: "a"}})
	if err != nil || len(removed) != 0 {
		t.Fatalf("SetComponents: %v %v", removed, err)
	}
	// The handshake of the stream opened before the change.
	pending.Send("<handshake>" + proof(pendingID, "") + "</handshake>")
	if got := pending.StreamError(); got != "not-authorized" {
		t.Fatalf("a removed component's pending handshake: %q, want not-authorized", got)
	}
	// The new component connects.
	c, id := f.open(t, "added.localhost")
	c.Send("<handshake>" + proof(id, "a") + "</handshake>")
	if el := c.Element(); el.Local != "handshake" {
		t.Fatalf("the added component: %s", el)
	}
	c.Close()
	// Secrets: the connected component stays, a new connection needs the
	// new secret.
	if _, ok := f.xs.Router.Lookup(echoDomain); !ok {
		t.Fatal("the connected component was disconnected by a new secret")
	}
	echo.Close()
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if _, ok := f.xs.Router.Lookup(echoDomain); ok {
			return errors.New("echo still registered")
		}
		return nil
	})
	old, id := f.open(t, echoDomain)
	old.Send("<handshake>" + proof(id, echoSecret) + "</handshake>")
	if got := old.StreamError(); got != "not-authorized" {
		t.Fatalf("the old secret: %q, want not-authorized", got)
	}
	renewed, id := f.open(t, echoDomain)
	renewed.Send("<handshake>" + proof(id, "new") + "</handshake>")
	if el := renewed.Element(); el.Local != "handshake" {
		t.Fatalf("the new secret: %s", el)
	}
	// Removed while connected.
	removed, err = f.srv.SetComponents([]External{{Domain: "added.localhost", Secret: "a"}})
	if err != nil || !slices.Equal(removed, []string{echoDomain}) {
		t.Fatalf("SetComponents: %v %v", removed, err)
	}
	if got := renewed.StreamError(); got != "not-authorized" {
		t.Fatalf("a removed component: %q, want not-authorized", got)
	}
	// A bad list changes nothing.
	if _, err := f.srv.SetComponents([]External{{Domain: "x.localhost"}}); err == nil {
		t.Fatal("a component without a secret was accepted")
	}
	if _, ok := f.srv.table.Load().secrets["added.localhost"]; !ok {
		t.Fatal("a refused list replaced the table")
	}
}
