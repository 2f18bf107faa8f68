package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

func testOffline(t *testing.T, s storage.Store) {
	ctx := context.Background()
	const alice, bob = "alice@example.com", "bob@example.com"
	if ms, err := s.OfflineMessages(ctx, alice); err != nil || len(ms) != 0 {
		t.Fatalf("empty store: %v %v", ms, err)
	}
	now := time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)
	for i := 0; i < 3; i++ {
		if err := s.PushOffline(ctx, alice, fmt.Appendf(nil, "<message id='%d'/>", i), now.Add(time.Duration(i)*time.Second), 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PushOffline(ctx, alice, []byte("<message id='over'/>"), now, 3); !errors.Is(err, storage.ErrQuota) {
		t.Fatalf("push over quota: %v, want ErrQuota", err)
	}
	if err := s.PushOffline(ctx, bob, []byte("<message id='b'/>"), now, 3); err != nil {
		t.Fatal(err)
	}
	ms, err := s.OfflineMessages(ctx, alice)
	if err != nil || len(ms) != 3 {
		t.Fatalf("got %d messages, %v", len(ms), err)
	}
	for i, m := range ms {
		if string(m.Stanza) != fmt.Sprintf("<message id='%d'/>", i) || !m.Stored.Equal(now.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("message %d: %q at %v", i, m.Stanza, m.Stored)
		}
		if i > 0 && m.ID <= ms[i-1].ID {
			t.Fatalf("ids not increasing: %d then %d", ms[i-1].ID, m.ID)
		}
	}
	// Delivered up to the second: the third stays.
	if err := s.DeleteOffline(ctx, alice, ms[1].ID); err != nil {
		t.Fatal(err)
	}
	rest, err := s.OfflineMessages(ctx, alice)
	if err != nil || len(rest) != 1 || rest[0].ID != ms[2].ID {
		t.Fatalf("after delete: %+v %v", rest, err)
	}
	// Other users are untouched.
	if b, err := s.OfflineMessages(ctx, bob); err != nil || len(b) != 1 {
		t.Fatalf("bob: %v %v", b, err)
	}
	// Deleting an account deletes its offline messages.
	mustCreate(t, s, bob, cred("SHA-256", 1))
	if err := s.DeleteAccount(ctx, bob); err != nil {
		t.Fatal(err)
	}
	if b, err := s.OfflineMessages(ctx, bob); err != nil || len(b) != 0 {
		t.Fatalf("bob after account deletion: %v %v", b, err)
	}
}

// testOfflineEvents: a push repeating the event of a message still stored
// (storage.WithEventID) stores nothing, even at quota; the same event for
// another user, other events and pushes without one are stored; once the
// message is delivered, the event is forgotten with it.
func testOfflineEvents(t *testing.T, s storage.Store) {
	ctx := context.Background()
	const alice, bob = "alice@example.com", "bob@example.com"
	now := time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)
	pushes := []struct {
		user, event, stanza string
		quota               int
		want                error
	}{
		{alice, "gw:1", "<message id='1'/>", 2, nil},
		{alice, "gw:1", "<message id='1'/>", 2, nil}, // the repeat: not stored
		{bob, "gw:1", "<message id='1'/>", 2, nil},
		{alice, "", "<message id='2'/>", 2, nil},
		{alice, "gw:1", "<message id='1'/>", 2, nil}, // at quota, still a repeat
		{alice, "gw:2", "<message id='3'/>", 2, storage.ErrQuota},
		{alice, "", "<message id='2'/>", 3, nil}, // no event: both kept
	}
	for i, p := range pushes {
		c := ctx
		if p.event != "" {
			c = storage.WithEventID(ctx, p.event)
		}
		if err := s.PushOffline(c, p.user, []byte(p.stanza), now, p.quota); !errors.Is(err, p.want) {
			t.Fatalf("push %d: got %v, want %v", i, err, p.want)
		}
	}
	stanzas := func(user string) []string {
		t.Helper()
		ms, err := s.OfflineMessages(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, string(m.Stanza))
		}
		return out
	}
	if got := fmt.Sprint(stanzas(alice)); got != "[<message id='1'/> <message id='2'/> <message id='2'/>]" {
		t.Fatalf("alice: %s", got)
	}
	if got := fmt.Sprint(stanzas(bob)); got != "[<message id='1'/>]" {
		t.Fatalf("bob: %s", got)
	}
	// Each message says the event it was stored for.
	if ms, err := s.OfflineMessages(ctx, alice); err != nil || len(ms) != 3 || ms[0].Event != "gw:1" || ms[1].Event != "" || ms[2].Event != "" {
		t.Fatalf("alice's events: %+v %v", ms, err)
	}
	ms, err := s.OfflineMessages(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOffline(ctx, alice, ms[len(ms)-1].ID); err != nil {
		t.Fatal(err)
	}
	if err := s.PushOffline(storage.WithEventID(ctx, "gw:1"), alice, []byte("<message id='1'/>"), now, 2); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(stanzas(alice)); got != "[<message id='1'/>]" {
		t.Fatalf("alice after delivery: %s", got)
	}
	// Withdrawn by its event: only that message of that user goes.
	if err := s.PushOffline(storage.WithEventID(ctx, "gw:9"), alice, []byte("<message id='9'/>"), now, 5); err != nil {
		t.Fatal(err)
	}
	if err := s.PushOffline(ctx, alice, []byte("<message id='10'/>"), now, 5); err != nil {
		t.Fatal(err)
	}
	deletes := []struct {
		user, event string
		want        bool
	}{
		{bob, "gw:9", false},   // another user's event
		{alice, "gw:8", false}, // never stored
		{alice, "", false},     // no event names no message
		{alice, "gw:1", true},
		{alice, "gw:1", false}, // gone already
	}
	for i, d := range deletes {
		if got, err := s.DeleteOfflineEvent(ctx, d.user, d.event); err != nil || got != d.want {
			t.Fatalf("delete %d (%s %q): %v %v, want %v", i, d.user, d.event, got, err, d.want)
		}
	}
	if got := fmt.Sprint(stanzas(alice)); got != "[<message id='9'/> <message id='10'/>]" {
		t.Fatalf("alice after withdrawing gw:1: %s", got)
	}
	if got := fmt.Sprint(stanzas(bob)); got != "[<message id='1'/>]" {
		t.Fatalf("bob after withdrawing alice's: %s", got)
	}
	// Withdrawn, an event may be stored again.
	if err := s.PushOffline(storage.WithEventID(ctx, "gw:1"), alice, []byte("<message id='1'/>"), now, 5); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(stanzas(alice)); got != "[<message id='9'/> <message id='10'/> <message id='1'/>]" {
		t.Fatalf("alice after storing gw:1 again: %s", got)
	}
}
