package storagetest

import (
	"context"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

func testBlocklist(t *testing.T, s storage.Store) {
	ctx := context.Background()
	const alice = "alice@example.com"
	list := func() string {
		t.Helper()
		js, err := s.BlockedJIDs(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(js, " ")
	}
	if got := list(); got != "" {
		t.Fatalf("empty list: %q", got)
	}
	if err := s.Block(ctx, alice, []string{"spam.example", "mallory@example.net", "eve@example.org/phone"}); err != nil {
		t.Fatal(err)
	}
	// Blocking again is no error.
	if err := s.Block(ctx, alice, []string{"spam.example"}); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "eve@example.org/phone mallory@example.net spam.example" {
		t.Fatalf("list: %q", got)
	}
	if js, err := s.BlockedJIDs(ctx, "bob@example.com"); err != nil || len(js) != 0 {
		t.Fatalf("other user: %v %v", js, err)
	}
	if err := s.Unblock(ctx, alice, []string{"spam.example", "unknown@example.com"}); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "eve@example.org/phone mallory@example.net" {
		t.Fatalf("after unblock: %q", got)
	}
	if err := s.Unblock(ctx, alice, nil); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "" {
		t.Fatalf("after unblock all: %q", got)
	}
	mustCreate(t, s, alice, cred("SHA-256", 1))
	if err := s.Block(ctx, alice, []string{"x.example"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "" {
		t.Fatalf("after account deletion: %q", got)
	}
}
