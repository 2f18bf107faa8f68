package storagetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

var archiveEpoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// fillArchive appends n messages to user's archive, one second apart,
// alternating between two correspondents, with ids that sort as created.
func fillArchive(t *testing.T, s storage.Store, user string, n int) []storage.ArchivedMessage {
	t.Helper()
	var out []storage.ArchivedMessage
	for i := range n {
		m := storage.ArchivedMessage{
			ID:     fmt.Sprintf("id%06d", i),
			Stamp:  archiveEpoch.Add(time.Duration(i) * time.Second),
			With:   []string{"romeo@example.net", "nurse@example.com"}[i%2],
			Stanza: fmt.Appendf(nil, "<message id='m%d'><body>%d</body></message>", i, i),
		}
		if err := s.AppendArchive(t.Context(), user, m); err != nil {
			t.Fatalf("AppendArchive %d: %v", i, err)
		}
		out = append(out, m)
	}
	return out
}

func wantArchiveItems(t *testing.T, what string, got, want []storage.ArchivedMessage) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d items, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || !g.Stamp.Equal(w.Stamp) || g.With != w.With || string(g.Stanza) != string(w.Stanza) {
			t.Fatalf("%s: item %d = %+v, want %+v", what, i, g, w)
		}
	}
}

func queryArchive(t *testing.T, s storage.Store, user string, q storage.ArchiveQuery) storage.ArchivePage {
	t.Helper()
	p, err := s.QueryArchive(t.Context(), user, q)
	if err != nil {
		t.Fatalf("QueryArchive(%+v): %v", q, err)
	}
	return p
}

func testArchivePaging(t *testing.T, s storage.Store) {
	const juliet = "juliet@example.com"
	all := fillArchive(t, s, juliet, 12)
	// Another user's archive is separate, even with the same ids.
	fillArchive(t, s, "other@example.com", 3)

	// Forward, five at a time.
	var got []storage.ArchivedMessage
	after := ""
	for page := 0; ; page++ {
		p := queryArchive(t, s, juliet, storage.ArchiveQuery{AfterID: after, Max: 5})
		if p.Count != 12 {
			t.Fatalf("forward page %d: count %d, want 12", page, p.Count)
		}
		got = append(got, p.Items...)
		if p.Complete != (len(got) == 12) {
			t.Fatalf("forward page %d: complete %v after %d items", page, p.Complete, len(got))
		}
		if p.Complete {
			break
		}
		after = p.Items[len(p.Items)-1].ID
	}
	wantArchiveItems(t, "forward", got, all)

	// Backward from the end: each page still in archive order.
	got = nil
	before := ""
	for page := 0; ; page++ {
		p := queryArchive(t, s, juliet, storage.ArchiveQuery{BeforeID: before, Max: 5, Last: true})
		got = append(p.Items, got...)
		if p.Complete != (len(got) == 12) {
			t.Fatalf("backward page %d: complete %v after %d items", page, p.Complete, len(got))
		}
		if page == 0 {
			wantArchiveItems(t, "last page", p.Items, all[7:])
		}
		if p.Complete {
			break
		}
		before = p.Items[0].ID
	}
	wantArchiveItems(t, "backward", got, all)

	// Between two ids.
	p := queryArchive(t, s, juliet, storage.ArchiveQuery{AfterID: all[2].ID, BeforeID: all[6].ID, Max: 10})
	wantArchiveItems(t, "between", p.Items, all[3:6])
	if !p.Complete {
		t.Fatal("between: not complete")
	}
	// Max 0: only the count.
	p = queryArchive(t, s, juliet, storage.ArchiveQuery{})
	if len(p.Items) != 0 || p.Count != 12 || p.Complete {
		t.Fatalf("max 0: %+v", p)
	}
	// Unknown ids.
	_, err := s.QueryArchive(t.Context(), juliet, storage.ArchiveQuery{AfterID: "nope", Max: 5})
	wantErr(t, "unknown after id", err, storage.ErrNotFound)
	_, err = s.QueryArchive(t.Context(), "nobody@example.com", storage.ArchiveQuery{BeforeID: all[0].ID, Max: 5})
	wantErr(t, "another user's id", err, storage.ErrNotFound)
	// Empty archive.
	p = queryArchive(t, s, "nobody@example.com", storage.ArchiveQuery{Max: 5})
	if len(p.Items) != 0 || p.Count != 0 || !p.Complete {
		t.Fatalf("empty archive: %+v", p)
	}
	// Duplicate ids are refused.
	err = s.AppendArchive(t.Context(), juliet, all[3])
	wantErr(t, "duplicate id", err, storage.ErrExists)
	// Returned stanzas are copies.
	p = queryArchive(t, s, juliet, storage.ArchiveQuery{Max: 1})
	p.Items[0].Stanza[0] = 'X'
	p = queryArchive(t, s, juliet, storage.ArchiveQuery{Max: 1})
	wantArchiveItems(t, "after modifying a result", p.Items, all[:1])
}

func testArchiveFilters(t *testing.T, s storage.Store) {
	const juliet = "juliet@example.com"
	all := fillArchive(t, s, juliet, 10)
	p := queryArchive(t, s, juliet, storage.ArchiveQuery{With: "romeo@example.net", Max: 100})
	wantArchiveItems(t, "with", p.Items, []storage.ArchivedMessage{all[0], all[2], all[4], all[6], all[8]})
	if p.Count != 5 || !p.Complete {
		t.Fatalf("with: count %d complete %v", p.Count, p.Complete)
	}
	// Start and end are inclusive.
	p = queryArchive(t, s, juliet, storage.ArchiveQuery{Start: all[3].Stamp, End: all[7].Stamp, Max: 100})
	wantArchiveItems(t, "start/end", p.Items, all[3:8])
	if p.Count != 5 {
		t.Fatalf("start/end: count %d", p.Count)
	}
	p = queryArchive(t, s, juliet, storage.ArchiveQuery{With: "nurse@example.com", Start: all[4].Stamp, Max: 2})
	wantArchiveItems(t, "with+start", p.Items, []storage.ArchivedMessage{all[5], all[7]})
	if p.Count != 3 || p.Complete {
		t.Fatalf("with+start: count %d complete %v", p.Count, p.Complete)
	}
	p = queryArchive(t, s, juliet, storage.ArchiveQuery{With: "nurse@example.com", Start: all[4].Stamp, AfterID: all[7].ID, Max: 2})
	wantArchiveItems(t, "with+start+after", p.Items, []storage.ArchivedMessage{all[9]})
	if !p.Complete {
		t.Fatal("with+start+after: not complete")
	}
	p = queryArchive(t, s, juliet, storage.ArchiveQuery{With: "tybalt@example.com", Max: 2})
	if len(p.Items) != 0 || p.Count != 0 || !p.Complete {
		t.Fatalf("nobody: %+v", p)
	}
}

func testArchiveRetention(t *testing.T, s storage.Store) {
	ctx := t.Context()
	all := fillArchive(t, s, "juliet@example.com", 6)
	fillArchive(t, s, "romeo@example.net", 2)
	n, err := s.DeleteArchiveBefore(ctx, all[4].Stamp)
	if err != nil || n != 4+2 {
		t.Fatalf("DeleteArchiveBefore = %d, %v; want 6", n, err)
	}
	p := queryArchive(t, s, "juliet@example.com", storage.ArchiveQuery{Max: 10})
	wantArchiveItems(t, "after retention", p.Items, all[4:])
	p = queryArchive(t, s, "romeo@example.net", storage.ArchiveQuery{Max: 10})
	if len(p.Items) != 0 {
		t.Fatalf("romeo kept %d items", len(p.Items))
	}
	// Deleting the account deletes its archive.
	mustCreate(t, s, "juliet@example.com", cred("SHA-256", 1))
	if err := s.DeleteAccount(ctx, "juliet@example.com"); err != nil {
		t.Fatal(err)
	}
	p = queryArchive(t, s, "juliet@example.com", storage.ArchiveQuery{Max: 10})
	if len(p.Items) != 0 || p.Count != 0 {
		t.Fatalf("archive survived the account: %+v", p)
	}
}

func testArchivePrefs(t *testing.T, s storage.Store) {
	ctx := t.Context()
	const juliet = "juliet@example.com"
	_, err := s.ArchivePrefs(ctx, juliet)
	wantErr(t, "prefs never set", err, storage.ErrNotFound)
	in := storage.ArchivePrefs{
		Default: storage.ArchiveRoster,
		Always:  []string{"romeo@example.net", "benvolio@example.net", "romeo@example.net", "tybalt@example.com"},
		Never:   []string{"tybalt@example.com", "nurse@example.com"},
	}
	if err := s.SetArchivePrefs(ctx, juliet, in); err != nil {
		t.Fatal(err)
	}
	want := storage.ArchivePrefs{
		Default: storage.ArchiveRoster,
		Always:  []string{"benvolio@example.net", "romeo@example.net"},
		Never:   []string{"nurse@example.com", "tybalt@example.com"},
	}
	got, err := s.ArchivePrefs(ctx, juliet)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ArchivePrefs = %+v, %v; want %+v", got, err, want)
	}
	// Replacing clears the lists.
	if err := s.SetArchivePrefs(ctx, juliet, storage.ArchivePrefs{Default: storage.ArchiveNever}); err != nil {
		t.Fatal(err)
	}
	got, err = s.ArchivePrefs(ctx, juliet)
	if err != nil || !reflect.DeepEqual(got, storage.ArchivePrefs{Default: storage.ArchiveNever}) {
		t.Fatalf("ArchivePrefs after replace = %+v, %v", got, err)
	}
	err = s.SetArchivePrefs(ctx, juliet, storage.ArchivePrefs{Default: "sometimes"})
	wantErr(t, "unknown default", err, storage.ErrInvalid)
	if _, err := s.ArchivePrefs(ctx, "romeo@example.net"); err == nil {
		t.Fatal("another user sees juliet's prefs")
	}
	mustCreate(t, s, juliet, cred("SHA-256", 1))
	if err := s.DeleteAccount(ctx, juliet); err != nil {
		t.Fatal(err)
	}
	_, err = s.ArchivePrefs(ctx, juliet)
	wantErr(t, "prefs after account deletion", err, storage.ErrNotFound)
}

func testArchiveBatch(t *testing.T, s storage.Store) {
	ctx := context.Background()
	base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	var entries []storage.ArchiveEntry
	for i := 0; i < 10; i++ {
		user := "alice@example.com"
		if i%2 == 1 {
			user = "bob@example.com"
		}
		entries = append(entries, storage.ArchiveEntry{User: user, Message: storage.ArchivedMessage{
			ID: fmt.Sprintf("%04d", i), Stamp: base.Add(time.Duration(i) * time.Second), With: "carol@example.com",
			Stanza: fmt.Appendf(nil, "<message id='%d'/>", i),
		}})
	}
	if err := s.AppendArchiveBatch(ctx, entries); err != nil {
		t.Fatal(err)
	}
	// Appending an id again skips it instead of failing the batch.
	if err := s.AppendArchiveBatch(ctx, entries[:2]); err != nil {
		t.Fatalf("repeated ids: %v", err)
	}
	// A batch mixing entries archived already with new ones writes the
	// new ones: the batch written again after a crash, with what came
	// after it.
	mixed := slices.Clone(entries[1:3])
	for i, user := range []string{"alice@example.com", "bob@example.com"} {
		mixed = append(mixed, storage.ArchiveEntry{User: user, Message: storage.ArchivedMessage{
			ID: fmt.Sprintf("%04d", 10+i), Stamp: base.Add(time.Minute), With: "carol@example.com",
			Stanza: []byte("<message id='new'/>"),
		}})
	}
	if err := s.AppendArchiveBatch(ctx, mixed); err != nil {
		t.Fatalf("repeated and new ids: %v", err)
	}
	for _, user := range []string{"alice@example.com", "bob@example.com"} {
		p, err := s.QueryArchive(ctx, user, storage.ArchiveQuery{Max: 100})
		if err != nil || len(p.Items) != 6 || p.Count != 6 || string(p.Items[5].Stanza) != "<message id='new'/>" {
			t.Fatalf("%s: %d items, count %d, %v", user, len(p.Items), p.Count, err)
		}
	}
	if err := s.AppendArchiveBatch(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

// testArchiveBigBatch: a batch larger than a backend's statements (which
// may carry a bounded number of rows each), with ids already archived in
// its middle and an empty stanza, archives every new entry once.
func testArchiveBigBatch(t *testing.T, s storage.Store) {
	ctx := context.Background()
	base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	entry := func(i int) storage.ArchiveEntry {
		var st []byte
		if i != 7 {
			st = fmt.Appendf(nil, "<message id='%d'/>", i)
		}
		return storage.ArchiveEntry{User: fmt.Sprintf("u%d@example.com", i%3), Message: storage.ArchivedMessage{
			ID: fmt.Sprintf("%05d", i), Stamp: base.Add(time.Duration(i) * time.Second), With: "carol@example.com", Stanza: st,
		}}
	}
	var first []storage.ArchiveEntry
	for i := 100; i < 130; i++ {
		first = append(first, entry(i))
	}
	if err := s.AppendArchiveBatch(ctx, first); err != nil {
		t.Fatal(err)
	}
	var entries []storage.ArchiveEntry
	for i := range 777 {
		entries = append(entries, entry(i))
	}
	if err := s.AppendArchiveBatch(ctx, entries); err != nil {
		t.Fatal(err)
	}
	total := 0
	for u := range 3 {
		user := fmt.Sprintf("u%d@example.com", u)
		after := ""
		for {
			p, err := s.QueryArchive(ctx, user, storage.ArchiveQuery{Max: 100, AfterID: after})
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range p.Items {
				var i int
				fmt.Sscanf(it.ID, "%d", &i)
				want := entry(i)
				if i%3 != u || it.ID <= after || string(it.Stanza) != string(want.Message.Stanza) || !it.Stamp.Equal(want.Message.Stamp) {
					t.Fatalf("%s: item %+v after %q", user, it, after)
				}
				after = it.ID
				total++
			}
			if p.Complete {
				break
			}
		}
	}
	if total != 777 {
		t.Fatalf("%d entries archived, want 777", total)
	}
}

// testArchivedEvent: an entry is found by its event among its user's
// latest entries (batch or single append), not in another user's
// archive, not once storage.ArchivedEventWindow newer entries came after
// it; queries do not return the event.
func testArchivedEvent(t *testing.T, s storage.Store) {
	ctx := context.Background()
	base := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	msg := func(i int, event string) storage.ArchivedMessage {
		return storage.ArchivedMessage{ID: fmt.Sprintf("%06d", i), Stamp: base.Add(time.Duration(i) * time.Millisecond),
			With: "carol@example.com", Stanza: fmt.Appendf(nil, "<message id='%d'/>", i), Event: event}
	}
	const alice, bob = "alice@example.com", "bob@example.com"
	if err := s.AppendArchiveBatch(ctx, []storage.ArchiveEntry{
		{User: alice, Message: msg(1, "gw:1")},
		{User: bob, Message: msg(2, "gw:1.1")},
		{User: alice, Message: msg(3, "")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendArchive(ctx, alice, msg(4, "gw:2")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ user, event, id string }{
		{alice, "gw:1", "000001"},
		{bob, "gw:1.1", "000002"},
		{alice, "gw:2", "000004"},
		{alice, "gw:1.1", ""}, // bob's
		{bob, "gw:1", ""},
		{alice, "gw:3", ""},
		{alice, "", ""}, // entries without an event are nobody's
	} {
		id, err := s.ArchivedEvent(ctx, c.user, c.event)
		if c.id == "" {
			wantErr(t, c.user+" "+c.event, err, storage.ErrNotFound)
			continue
		}
		if err != nil || id != c.id {
			t.Fatalf("%s %s: %q, %v; want %q", c.user, c.event, id, err, c.id)
		}
	}
	p, err := s.QueryArchive(ctx, alice, storage.ArchiveQuery{Max: 10})
	if err != nil || len(p.Items) != 3 {
		t.Fatalf("query: %+v, %v", p, err)
	}
	for _, it := range p.Items {
		if it.Event != "" {
			t.Fatalf("a query returned the event: %+v", it)
		}
	}
	// Beyond the window: the lookup stays bounded.
	var later []storage.ArchiveEntry
	for i := range storage.ArchivedEventWindow {
		later = append(later, storage.ArchiveEntry{User: alice, Message: msg(10+i, "")})
	}
	if err := s.AppendArchiveBatch(ctx, later); err != nil {
		t.Fatal(err)
	}
	if id, err := s.ArchivedEvent(ctx, alice, "gw:2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an event %d entries back: %q, %v", storage.ArchivedEventWindow, id, err)
	}
}

// tombstone is what a retraction leaves of message i of fillArchive.
func tombstone(i int) []byte {
	return fmt.Appendf(nil, "<message id='m%d'><retracted xmlns='urn:xmpp:message-retract:1'/></message>", i)
}

func testArchiveReplace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	const juliet = "juliet@example.com"
	all := fillArchive(t, s, juliet, 6)
	// The same ids in another archive, which must not change with juliet's.
	other := fillArchive(t, s, "romeo@example.net", 6)

	if err := s.ReplaceArchived(ctx, juliet, all[2].ID, tombstone(2)); err != nil {
		t.Fatalf("ReplaceArchived: %v", err)
	}
	want := slices.Clone(all)
	want[2].Stanza = tombstone(2)
	p := queryArchive(t, s, juliet, storage.ArchiveQuery{Max: 10})
	wantArchiveItems(t, "after replace", p.Items, want)
	if p.Count != 6 || !p.Complete {
		t.Fatalf("after replace: count %d complete %v", p.Count, p.Complete)
	}
	// The message keeps its place for queries by correspondent, time and id.
	p = queryArchive(t, s, juliet, storage.ArchiveQuery{With: all[2].With, Start: all[2].Stamp, End: all[2].Stamp, Max: 10})
	wantArchiveItems(t, "by with and stamp", p.Items, want[2:3])
	p = queryArchive(t, s, juliet, storage.ArchiveQuery{AfterID: all[1].ID, BeforeID: all[3].ID, Max: 10})
	wantArchiveItems(t, "by id", p.Items, want[2:3])

	// A moderation after a retraction replaces the tombstone in turn, and
	// an empty stanza is kept as such.
	if err := s.ReplaceArchived(ctx, juliet, all[2].ID, []byte("<message id='m2'/>")); err != nil {
		t.Fatalf("ReplaceArchived again: %v", err)
	}
	if err := s.ReplaceArchived(ctx, juliet, all[5].ID, nil); err != nil {
		t.Fatalf("ReplaceArchived with nil: %v", err)
	}
	want[2].Stanza, want[5].Stanza = []byte("<message id='m2'/>"), nil
	p = queryArchive(t, s, juliet, storage.ArchiveQuery{Max: 10})
	wantArchiveItems(t, "after second replace", p.Items, want)

	p = queryArchive(t, s, "romeo@example.net", storage.ArchiveQuery{Max: 10})
	wantArchiveItems(t, "other archive", p.Items, other)
}

func testArchiveReplaceNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	const juliet = "juliet@example.com"
	all := fillArchive(t, s, juliet, 3)
	other := fillArchive(t, s, "romeo@example.net", 5)

	err := s.ReplaceArchived(ctx, juliet, "nope", tombstone(0))
	wantErr(t, "unknown id", err, storage.ErrNotFound)
	// other[4].ID is only in romeo's archive.
	err = s.ReplaceArchived(ctx, juliet, other[4].ID, tombstone(4))
	wantErr(t, "id of another user's archive", err, storage.ErrNotFound)
	err = s.ReplaceArchived(ctx, "nobody@example.com", all[0].ID, tombstone(0))
	wantErr(t, "empty archive", err, storage.ErrNotFound)

	p := queryArchive(t, s, juliet, storage.ArchiveQuery{Max: 10})
	wantArchiveItems(t, "juliet's archive", p.Items, all)
	p = queryArchive(t, s, "romeo@example.net", storage.ArchiveQuery{Max: 10})
	wantArchiveItems(t, "romeo's archive", p.Items, other)
	p = queryArchive(t, s, "nobody@example.com", storage.ArchiveQuery{Max: 10})
	if len(p.Items) != 0 || p.Count != 0 {
		t.Fatalf("failed replace created an archive: %+v", p)
	}
}

func testArchiveReplaceIsCopy(t *testing.T, s storage.Store) {
	const juliet = "juliet@example.com"
	all := fillArchive(t, s, juliet, 2)
	in := tombstone(1)
	if err := s.ReplaceArchived(t.Context(), juliet, all[1].ID, in); err != nil {
		t.Fatalf("ReplaceArchived: %v", err)
	}
	for i := range in {
		in[i] = 'X'
	}
	want := slices.Clone(all)
	want[1].Stanza = tombstone(1)
	p := queryArchive(t, s, juliet, storage.ArchiveQuery{Max: 10})
	wantArchiveItems(t, "after modifying the caller's slice", p.Items, want)
}
