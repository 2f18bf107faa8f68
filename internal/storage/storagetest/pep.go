package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// PEPStore is what the PEP suite needs: nodes belong to accounts.
type PEPStore interface {
	storage.Accounts
	storage.PEP
}

// RunPEP checks the storage.PEP contract on fresh stores from newStore.
func RunPEP(t *testing.T, newStore func(t *testing.T) PEPStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s PEPStore)
	}{
		{"Nodes", testPEPNodes},
		{"PublishAndItems", testPEPPublish},
		{"MaxItems", testPEPMaxItems},
		{"RetractPurgeDelete", testPEPRetractPurgeDelete},
		{"RemovedWithAccount", testPEPAccount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

const pepOwner = "alice@example.com"

func pepItem(id string, n int) storage.PEPItem {
	return storage.PEPItem{
		ID:        id,
		Publisher: pepOwner + "/phone",
		Payload:   fmt.Appendf(nil, "<nick xmlns='http://jabber.org/protocol/nick'>n%d</nick>", n),
		Published: time.UnixMicro(1700000000000000 + int64(n)),
	}
}

func wantPEPIDs(t *testing.T, s PEPStore, node string, ids []string, max int, want ...string) {
	t.Helper()
	items, err := s.PEPItems(t.Context(), pepOwner, node, ids, max)
	if err != nil {
		t.Fatalf("PEPItems(%s, %v, %d): %v", node, ids, max, err)
	}
	var got []string
	for _, it := range items {
		got = append(got, it.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("PEPItems(%s, %v, %d) = %v, want %v", node, ids, max, got, want)
	}
}

func testPEPNodes(t *testing.T, s PEPStore) {
	ctx := t.Context()
	if nodes, err := s.PEPNodes(ctx, pepOwner); err != nil || len(nodes) != 0 {
		t.Fatalf("PEPNodes of empty store = %v, %v", nodes, err)
	}
	_, err := s.PEPNode(ctx, pepOwner, "urn:xmpp:avatar:data")
	wantErr(t, "PEPNode of missing node", err, storage.ErrNotFound)
	wantErr(t, "PutPEPNode without name", s.PutPEPNode(ctx, pepOwner, storage.PEPNode{}), storage.ErrInvalid)

	a := storage.PEPNode{Node: "urn:xmpp:bookmarks:1", AccessModel: storage.PEPAccessWhitelist, MaxItems: 0, PersistItems: true, SendLast: storage.PEPSendLastNever}
	b := storage.PEPNode{Node: "http://jabber.org/protocol/nick", AccessModel: storage.PEPAccessPresence, MaxItems: 1, SendLast: storage.PEPSendLastOnSubPres, NotifyRetract: true}
	for _, n := range []storage.PEPNode{a, b} {
		if err := s.PutPEPNode(ctx, pepOwner, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutPEPNode(ctx, "bob@example.com", b); err != nil {
		t.Fatal(err)
	}
	nodes, err := s.PEPNodes(ctx, pepOwner)
	if err != nil || !slices.Equal(nodes, []storage.PEPNode{b, a}) {
		t.Fatalf("PEPNodes = %+v, %v; want %+v", nodes, err, []storage.PEPNode{b, a})
	}
	// Reconfiguring keeps the items.
	if err := s.PublishPEPItem(ctx, pepOwner, a.Node, pepItem("x", 1), 0); err != nil {
		t.Fatal(err)
	}
	a.AccessModel, a.MaxItems, a.NotifyRetract = storage.PEPAccessOpen, 5, true
	if err := s.PutPEPNode(ctx, pepOwner, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.PEPNode(ctx, pepOwner, a.Node)
	if err != nil || got != a {
		t.Fatalf("PEPNode = %+v, %v; want %+v", got, err, a)
	}
	wantPEPIDs(t, s, a.Node, nil, 0, "x")
}

func testPEPPublish(t *testing.T, s PEPStore) {
	ctx := t.Context()
	const node = "urn:xmpp:avatar:metadata"
	wantErr(t, "PublishPEPItem to missing node", s.PublishPEPItem(ctx, pepOwner, node, pepItem("a", 1), 0), storage.ErrNotFound)
	_, err := s.PEPItems(ctx, pepOwner, node, nil, 0)
	wantErr(t, "PEPItems of missing node", err, storage.ErrNotFound)
	if err := s.PutPEPNode(ctx, pepOwner, storage.PEPNode{Node: node, AccessModel: storage.PEPAccessPresence, SendLast: storage.PEPSendLastOnSubPres}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "PublishPEPItem without id", s.PublishPEPItem(ctx, pepOwner, node, storage.PEPItem{Payload: []byte("<x/>")}, 0), storage.ErrInvalid)
	wantPEPIDs(t, s, node, nil, 0)
	for i, id := range []string{"a", "b", "c"} {
		if err := s.PublishPEPItem(ctx, pepOwner, node, pepItem(id, i), 0); err != nil {
			t.Fatal(err)
		}
	}
	wantPEPIDs(t, s, node, nil, 0, "c", "b", "a")
	wantPEPIDs(t, s, node, nil, 2, "c", "b")
	wantPEPIDs(t, s, node, []string{"a", "c", "zz"}, 0, "c", "a")
	wantPEPIDs(t, s, node, []string{"a", "c"}, 1, "c")
	// Publishing an id again replaces the item and makes it the newest.
	again := pepItem("a", 9)
	if err := s.PublishPEPItem(ctx, pepOwner, node, again, 0); err != nil {
		t.Fatal(err)
	}
	wantPEPIDs(t, s, node, nil, 0, "a", "c", "b")
	items, err := s.PEPItems(ctx, pepOwner, node, []string{"a"}, 0)
	if err != nil || len(items) != 1 {
		t.Fatalf("PEPItems(a) = %v, %v", items, err)
	}
	if got := items[0]; got.Publisher != again.Publisher || !bytes.Equal(got.Payload, again.Payload) || !got.Published.Equal(again.Published) {
		t.Fatalf("item = %+v, want %+v", got, again)
	}
	// The returned payload is a copy.
	items[0].Payload[0] = 'X'
	items, _ = s.PEPItems(ctx, pepOwner, node, []string{"a"}, 0)
	if !bytes.Equal(items[0].Payload, again.Payload) {
		t.Fatal("store shares payload memory with the caller")
	}
	// Another owner's node of the same name is separate.
	if _, err := s.PEPItems(ctx, "bob@example.com", node, nil, 0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("bob sees alice's node: %v", err)
	}
}

func testPEPMaxItems(t *testing.T, s PEPStore) {
	ctx := t.Context()
	const node = "urn:xmpp:omemo:2:devices"
	if err := s.PutPEPNode(ctx, pepOwner, storage.PEPNode{Node: node, AccessModel: storage.PEPAccessOpen, MaxItems: 3}); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "b", "c"} {
		if err := s.PublishPEPItem(ctx, pepOwner, node, pepItem(id, i), 3); err != nil {
			t.Fatal(err)
		}
	}
	// Republishing the oldest keeps all three (no trimming by count of
	// publications).
	if err := s.PublishPEPItem(ctx, pepOwner, node, pepItem("a", 4), 3); err != nil {
		t.Fatal(err)
	}
	wantPEPIDs(t, s, node, nil, 0, "a", "c", "b")
	if err := s.PublishPEPItem(ctx, pepOwner, node, pepItem("d", 5), 3); err != nil {
		t.Fatal(err)
	}
	wantPEPIDs(t, s, node, nil, 0, "d", "a", "c")
	if err := s.PublishPEPItem(ctx, pepOwner, node, pepItem("e", 6), 1); err != nil {
		t.Fatal(err)
	}
	wantPEPIDs(t, s, node, nil, 0, "e")
}

func testPEPRetractPurgeDelete(t *testing.T, s PEPStore) {
	ctx := t.Context()
	const node = "urn:xmpp:bookmarks:1"
	if err := s.PutPEPNode(ctx, pepOwner, storage.PEPNode{Node: node, AccessModel: storage.PEPAccessWhitelist}); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "b", "c"} {
		if err := s.PublishPEPItem(ctx, pepOwner, node, pepItem(id, i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RetractPEPItem(ctx, pepOwner, node, "b"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "RetractPEPItem twice", s.RetractPEPItem(ctx, pepOwner, node, "b"), storage.ErrNotFound)
	wantErr(t, "RetractPEPItem of missing node", s.RetractPEPItem(ctx, pepOwner, "nope", "a"), storage.ErrNotFound)
	wantPEPIDs(t, s, node, nil, 0, "c", "a")
	if err := s.PurgePEPNode(ctx, pepOwner, node); err != nil {
		t.Fatal(err)
	}
	wantPEPIDs(t, s, node, nil, 0)
	wantErr(t, "PurgePEPNode of missing node", s.PurgePEPNode(ctx, pepOwner, "nope"), storage.ErrNotFound)
	if err := s.PublishPEPItem(ctx, pepOwner, node, pepItem("d", 4), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePEPNode(ctx, pepOwner, node); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeletePEPNode twice", s.DeletePEPNode(ctx, pepOwner, node), storage.ErrNotFound)
	// A node created again under the same name starts empty.
	if err := s.PutPEPNode(ctx, pepOwner, storage.PEPNode{Node: node, AccessModel: storage.PEPAccessWhitelist}); err != nil {
		t.Fatal(err)
	}
	wantPEPIDs(t, s, node, nil, 0)
}

func testPEPAccount(t *testing.T, s PEPStore) {
	ctx := t.Context()
	if err := s.CreateAccount(ctx, pepOwner, nil); err != nil {
		t.Fatal(err)
	}
	const node = "http://jabber.org/protocol/tune"
	for _, owner := range []string{pepOwner, "bob@example.com"} {
		if err := s.PutPEPNode(ctx, owner, storage.PEPNode{Node: node, AccessModel: storage.PEPAccessPresence}); err != nil {
			t.Fatal(err)
		}
		if err := s.PublishPEPItem(ctx, owner, node, pepItem("a", 1), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteAccount(ctx, pepOwner); err != nil {
		t.Fatal(err)
	}
	if nodes, err := s.PEPNodes(ctx, pepOwner); err != nil || len(nodes) != 0 {
		t.Fatalf("nodes survived the account: %v, %v", nodes, err)
	}
	if items, err := s.PEPItems(ctx, "bob@example.com", node, nil, 0); err != nil || len(items) != 1 {
		t.Fatalf("another owner lost items: %v, %v", items, err)
	}
	// Recreated, the node starts empty: no orphan items come back.
	if err := s.PutPEPNode(ctx, pepOwner, storage.PEPNode{Node: node, AccessModel: storage.PEPAccessPresence}); err != nil {
		t.Fatal(err)
	}
	wantPEPIDs(t, s, node, nil, 0)
}
