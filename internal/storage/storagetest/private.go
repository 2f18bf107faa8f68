package storagetest

import (
	"context"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

func testPrivateData(t *testing.T, s storage.Store) {
	ctx := context.Background()
	const alice = "alice@example.com"
	if _, err := s.PrivateXML(ctx, alice, "storage:bookmarks"); err == nil {
		t.Fatal("empty store returned data")
	} else {
		wantErr(t, "PrivateXML", err, storage.ErrNotFound)
	}
	for _, v := range []string{"<storage xmlns='storage:bookmarks'/>", "<storage xmlns='storage:bookmarks'><conference jid='a@b'/></storage>"} {
		if err := s.SetPrivateXML(ctx, alice, "storage:bookmarks", []byte(v)); err != nil {
			t.Fatal(err)
		}
		got, err := s.PrivateXML(ctx, alice, "storage:bookmarks")
		if err != nil || string(got) != v {
			t.Fatalf("got %q %v, want %q", got, err, v)
		}
	}
	if _, err := s.PrivateXML(ctx, "bob@example.com", "storage:bookmarks"); err == nil {
		t.Fatal("another user sees alice's data")
	}
	if err := s.SetPrivateXML(ctx, alice, "vcard-temp", []byte("<vCard xmlns='vcard-temp'/>")); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, alice, cred("SHA-256", 1))
	if err := s.DeleteAccount(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PrivateXML(ctx, alice, "vcard-temp"); err == nil {
		t.Fatal("data survived the account")
	}
}
