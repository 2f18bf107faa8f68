package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRegistrationsSealed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	creds := map[string]string{"nick": "alice", "password": "hunter2"}
	if err := s.SetRegistration(ctx, "alice@example.org", creds); err != nil {
		t.Fatal(err)
	}
	got, err := s.Registration(ctx, "alice@example.org")
	if err != nil || got["password"] != "hunter2" || got["nick"] != "alice" {
		t.Fatalf("registration %v %v", got, err)
	}
	if _, err := s.Registration(ctx, "bob@example.org"); !IsNotFound(err) {
		t.Fatalf("missing registration: %v", err)
	}
	s.Close()
	raw, err := os.ReadFile(filepath.Join(dir, "bridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(filepath.Join(dir, "bridge.db-wal"))
	if bytes.Contains(append(raw, wal...), []byte("hunter2")) {
		t.Fatal("the password is stored in clear")
	}
	if fi, err := os.Stat(filepath.Join(dir, "bridge.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	// Reopened with the same key, the credentials open; moved to another
	// user's row, they do not.
	s2 := open(t, dir)
	if got, err := s2.Registration(ctx, "alice@example.org"); err != nil || got["password"] != "hunter2" {
		t.Fatalf("after reopening: %v %v", got, err)
	}
	if _, err := s2.db.Exec(`INSERT INTO registrations (jid, sealed) SELECT 'mallory@example.org', sealed FROM registrations WHERE jid = 'alice@example.org'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Registration(ctx, "mallory@example.org"); err == nil {
		t.Fatal("credentials copied to another user opened")
	}
}

func TestIDsContactsQueueForget(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	const u = "alice@example.org"
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.MapID(ctx, u, "bob", "L1", "X1"))
	if x, err := s.XMPPID(ctx, u, "bob", "L1"); err != nil || x != "X1" {
		t.Fatalf("XMPPID %q %v", x, err)
	}
	if l, err := s.LegacyID(ctx, u, "bob", "X1"); err != nil || l != "L1" {
		t.Fatalf("LegacyID %q %v", l, err)
	}
	if _, err := s.LegacyID(ctx, u, "carol", "X1"); !IsNotFound(err) {
		t.Fatal("an id leaked to another conversation")
	}
	add := func(contact, name string, groups ...string) bool {
		t.Helper()
		changed, err := s.AddContact(ctx, u, contact, name, groups)
		must(err)
		return changed
	}
	if !add("bob", "Bob", "Net") || !add("carol", "Carol") {
		t.Fatal("a new contact reported unchanged")
	}
	if add("bob", "Bob", "Net") {
		t.Fatal("the same contact again reported changed")
	}
	if !add("bob", "Bobby", "Net") || !add("bob", "Bobby", "Net", "Friends") {
		t.Fatal("a contact whose name or groups changed reported unchanged")
	}
	must(s.RemoveContact(ctx, u, "carol"))
	if cs, _ := s.Contacts(ctx, u); len(cs) != 1 || cs[0] != "bob" {
		t.Fatalf("contacts %v", cs)
	}
	for _, m := range []string{"m1", "m2", "m3"} {
		if _, err := s.Enqueue(ctx, u, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	q, _ := s.Queue(ctx, u)
	if len(q) != 3 || string(q[0].Stanza) != "m1" {
		t.Fatalf("queue %v", q)
	}
	must(s.Dequeue(ctx, u, q[0].Seq))
	if n, _ := s.DropOldest(ctx, u, 1); n != 1 {
		t.Fatalf("dropped %d", n)
	}
	if q, _ := s.Queue(ctx, u); len(q) != 1 || string(q[0].Stanza) != "m3" {
		t.Fatalf("queue after dequeue and drop: %v", q)
	}
	must(s.SetRegistration(ctx, u, map[string]string{"a": "b"}))
	must(s.Forget(ctx, u))
	if _, err := s.Registration(ctx, u); !IsNotFound(err) {
		t.Fatal("registration kept")
	}
	if cs, _ := s.Contacts(ctx, u); len(cs) != 0 {
		t.Fatal("contacts kept")
	}
	if _, err := s.XMPPID(ctx, u, "bob", "L1"); !IsNotFound(err) {
		t.Fatal("ids kept")
	}
	now := time.Unix(1_800_000_000, 0)
	if first, _ := s.Handle(ctx, "gw:1", now); !first {
		t.Fatal("a new event was seen as handled")
	}
	if again, _ := s.Handle(ctx, "gw:1", now); again {
		t.Fatal("an event was handled twice")
	}
	must(s.ForgetHandled(ctx, now.Add(time.Second)))
	if first, _ := s.Handle(ctx, "gw:1", now); !first {
		t.Fatal("ForgetHandled kept the record")
	}
}

func TestInboxOutbox(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	now := time.Unix(1_800_000_000, 0)
	if first, err := s.Take(ctx, "gw:1", []byte("<m1/>")); err != nil || !first {
		t.Fatalf("take: %v %v", first, err)
	}
	if again, _ := s.Take(ctx, "gw:1", []byte("<m1/>")); again {
		t.Fatal("an event taken twice")
	}
	if _, err := s.Take(ctx, "gw:2", []byte("<m2/>")); err != nil {
		t.Fatal(err)
	}
	if err := s.Done(ctx, "gw:1", now); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Take(ctx, "gw:1", []byte("<m1/>")); again {
		t.Fatal("an event handled before was taken again")
	}
	in, _ := s.Inbox(ctx)
	if len(in) != 1 || in[0].Event != "gw:2" {
		t.Fatalf("inbox %+v", in)
	}
	a, _ := s.Post(ctx, []byte("<a/>"))
	b, _ := s.Post(ctx, []byte("<b/>"))
	if err := s.Sent(ctx, a); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir)
	out, _ := s.Posted(ctx)
	if len(out) != 1 || out[0].Seq != b || string(out[0].Stanza) != "<b/>" {
		t.Fatalf("outbox after reopening %+v", out)
	}
	id, _ := s.Meta(ctx, "instance", func() string { return "first" })
	id2, _ := s.Meta(ctx, "instance", func() string { return "second" })
	if id != "first" || id2 != "first" {
		t.Fatalf("meta %q %q", id, id2)
	}
}

// A database made before contacts had groups gets the column, and its
// contacts count as changed once, when told again.
func TestContactsGroupsAdded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.db.Exec(`DROP TABLE contacts`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`CREATE TABLE contacts (user TEXT NOT NULL, contact TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (user, contact))`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`INSERT INTO contacts (user, contact, name) VALUES ('alice@example.org', 'bob', 'Bob')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := open(t, dir)
	if cs, err := s2.Contacts(ctx, "alice@example.org"); err != nil || len(cs) != 1 || cs[0] != "bob" {
		t.Fatalf("contacts after the upgrade: %v %v", cs, err)
	}
	for i, want := range []bool{true, false} {
		changed, err := s2.AddContact(ctx, "alice@example.org", "bob", "Bob", []string{"Net"})
		if err != nil || changed != want {
			t.Fatalf("report %d: changed %v (%v), want %v", i+1, changed, err, want)
		}
	}
}
