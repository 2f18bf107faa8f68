package migrate

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/mam"
	"github.com/ambrosia-xmpp/ambrosia/internal/muc/room"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// Store is what an import writes to and an export reads from.
type Store interface {
	storage.Accounts
	storage.Roster
	storage.Offline
	storage.PrivateData
	storage.PEP
	storage.MUC
	storage.Archive
}

// Options tune an import.
type Options struct {
	// Domains are the served domains: users of other domains are
	// skipped. Empty accepts every domain.
	Domains []string
	// MUCDomains are the conference services: rooms of other services
	// are skipped. Empty accepts every service.
	MUCDomains []string
	// Iterations is the PBKDF2 iteration count for keys derived from
	// clear-text passwords; 0 is auth.DefaultIterations.
	Iterations int
	// DryRun reads and compares but writes nothing.
	DryRun bool
	// OfflineQuota bounds each user's offline messages; 0 does not.
	OfflineQuota int
	// Now gives the time; nil is time.Now.
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now().UTC()
	}
	return time.Now().UTC()
}

// randomSecret returns the secret behind a room's occupant ids.
func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Counts are what happened to one kind of thing.
type Counts struct {
	Added, Changed, Unchanged, Skipped int
}

// Report says what an import took and what it left.
type Report struct {
	// Kinds lists the kinds in the order first met; Counts holds their
	// figures.
	Kinds  []string
	Counts map[string]*Counts
	// Skipped are the notes of the reader and the importer.
	Skipped []Skip
	// Failed names the users and rooms not imported because a write
	// failed; what was written for them was undone.
	Failed []string
}

func (r *Report) count(kind string) *Counts {
	if r.Counts == nil {
		r.Counts = map[string]*Counts{}
	}
	c := r.Counts[kind]
	if c == nil {
		c = &Counts{}
		r.Counts[kind] = c
		r.Kinds = append(r.Kinds, kind)
	}
	return c
}

// Changed reports whether the import wrote anything.
func (r *Report) Changed() bool {
	for _, c := range r.Counts {
		if c.Added+c.Changed > 0 {
			return true
		}
	}
	return false
}

// Print writes the report for an operator.
func (r *Report) Print(w io.Writer, dryRun bool) {
	verb := "imported"
	if dryRun {
		verb = "would import"
	}
	for _, k := range r.Kinds {
		c := r.Counts[k]
		var parts []string
		if c.Added > 0 {
			parts = append(parts, fmt.Sprintf("%d new", c.Added))
		}
		if c.Changed > 0 {
			parts = append(parts, fmt.Sprintf("%d changed", c.Changed))
		}
		if c.Unchanged > 0 {
			parts = append(parts, fmt.Sprintf("%d already there", c.Unchanged))
		}
		if c.Skipped > 0 {
			parts = append(parts, fmt.Sprintf("%d skipped", c.Skipped))
		}
		fmt.Fprintf(w, "%-16s %s\n", k+":", strings.Join(parts, ", "))
	}
	for _, s := range r.Skipped {
		if s.Count > 1 {
			fmt.Fprintf(w, "skipped: %s (%d times)\n", s.What, s.Count)
		} else {
			fmt.Fprintf(w, "skipped: %s\n", s.What)
		}
	}
	for _, f := range r.Failed {
		fmt.Fprintf(w, "failed: %s\n", f)
	}
	switch {
	case len(r.Kinds) == 0:
		fmt.Fprintln(w, "nothing to import")
	case !r.Changed():
		fmt.Fprintln(w, "nothing changed: everything was already there")
	default:
		fmt.Fprintf(w, "%s the above\n", verb)
	}
}

// ErrFailed is returned by Import when some users or rooms could not be
// written; the report names them.
var ErrFailed = errors.New("migrate: some users or rooms were not imported")

// Validate checks d as a whole before anything is written: every user and
// room once, credentials and roster items that storage accepts.
func Validate(d *Data) error {
	seen := map[string]string{}
	for _, u := range d.Users {
		if prev, ok := seen[u.JID]; ok {
			return fmt.Errorf("%s: user %s already defined at %s", u.Source, u.JID, prev)
		}
		seen[u.JID] = u.Source
		if _, err := storage.UserDomain(u.JID); err != nil {
			return fmt.Errorf("%s: %w", u.Source, err)
		}
		if err := storage.CheckCredentials(u.Credentials); err != nil {
			return fmt.Errorf("%s: user %s: %w", u.Source, u.JID, err)
		}
		contacts := map[string]bool{}
		for _, it := range u.Roster {
			if _, err := storage.NormalizeRosterItem(it); err != nil {
				return fmt.Errorf("%s: user %s: %w", u.Source, u.JID, err)
			}
			if contacts[it.Contact] {
				return fmt.Errorf("%s: user %s: contact %s twice in the roster", u.Source, u.JID, it.Contact)
			}
			contacts[it.Contact] = true
		}
	}
	rooms := map[string]string{}
	for _, r := range d.Rooms {
		if prev, ok := rooms[r.JID]; ok {
			return fmt.Errorf("%s: room %s already defined at %s", r.Source, r.JID, prev)
		}
		rooms[r.JID] = r.Source
		if _, err := storage.MUCRoomService(r.JID); err != nil {
			return fmt.Errorf("%s: %w", r.Source, err)
		}
		for _, a := range r.Affiliations {
			if err := storage.CheckMUCAffiliation(a); err != nil {
				return fmt.Errorf("%s: room %s: %w", r.Source, r.JID, err)
			}
		}
	}
	return nil
}

// Import writes d into st: each user with everything of theirs, then each
// room, each as a unit: when a write fails, what was written for that
// user or room is undone and the import goes on with the next, and the
// error is ErrFailed. Existing accounts keep their credentials; other
// data is added or replaced where it differs from the input.
func Import(ctx context.Context, st Store, d *Data, o Options) (*Report, error) {
	if err := Validate(d); err != nil {
		return nil, err
	}
	if o.Iterations <= 0 {
		o.Iterations = auth.DefaultIterations
	}
	rep := &Report{Skipped: slices.Clone(d.Skipped)}
	skip := func(what string) {
		for i := range rep.Skipped {
			if rep.Skipped[i].What == what {
				rep.Skipped[i].Count++
				return
			}
		}
		rep.Skipped = append(rep.Skipped, Skip{What: what, Count: 1})
	}
	for _, u := range d.Users {
		domain, _ := storage.UserDomain(u.JID)
		if len(o.Domains) > 0 && !slices.Contains(o.Domains, domain) {
			rep.count("accounts").Skipped++
			skip("users of " + domain + ", which this server does not serve")
			continue
		}
		im := &importer{ctx: ctx, st: st, o: o, rep: rep}
		if err := im.user(u); err != nil {
			im.rollback()
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			rep.Failed = append(rep.Failed, fmt.Sprintf("user %s (%s): %v", u.JID, u.Source, err))
			continue
		}
		im.commit()
	}
	for _, r := range d.Rooms {
		service, _ := storage.MUCRoomService(r.JID)
		if len(o.MUCDomains) > 0 && !slices.Contains(o.MUCDomains, service) {
			rep.count("rooms").Skipped++
			skip("rooms of " + service + ", which is not a conference service here")
			continue
		}
		im := &importer{ctx: ctx, st: st, o: o, rep: rep}
		if err := im.room(r); err != nil {
			im.rollback()
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			rep.Failed = append(rep.Failed, fmt.Sprintf("room %s (%s): %v", r.JID, r.Source, err))
			continue
		}
		im.commit()
	}
	if len(rep.Failed) > 0 {
		return rep, ErrFailed
	}
	return rep, nil
}

// importer writes one user or room, keeping what undoes its writes and
// the counts to add to the report once the unit is through.
type importer struct {
	ctx     context.Context
	st      Store
	o       Options
	rep     *Report
	undo    []func() error
	pending []func()
}

func (im *importer) note(kind string, f func(c *Counts)) {
	im.pending = append(im.pending, func() { f(im.rep.count(kind)) })
}

func (im *importer) added(kind string) {
	im.note(kind, func(c *Counts) { c.Added++ })
}
func (im *importer) changed(kind string) {
	im.note(kind, func(c *Counts) { c.Changed++ })
}
func (im *importer) same(kind string) {
	im.note(kind, func(c *Counts) { c.Unchanged++ })
}

func (im *importer) commit() {
	for _, f := range im.pending {
		f()
	}
}

// rollback undoes the unit's writes, newest first, with a context that
// outlives a cancelled import.
func (im *importer) rollback() {
	for i := len(im.undo) - 1; i >= 0; i-- {
		_ = im.undo[i]()
	}
}

// write runs f unless this is a dry run, and remembers undo.
func (im *importer) write(f func() error, undo func() error) error {
	if im.o.DryRun {
		return nil
	}
	if err := f(); err != nil {
		return err
	}
	if undo != nil {
		im.undo = append(im.undo, undo)
	}
	return nil
}

func (im *importer) user(u *User) error {
	ctx, st := im.ctx, im.st
	bg := context.WithoutCancel(ctx)
	creds := u.Credentials
	if u.Password != "" {
		derived, err := auth.DeriveCredentials(u.Password, im.o.Iterations)
		if err != nil {
			return err
		}
		// Keys the other server kept stay as they were; the password
		// gives the others.
		for _, c := range derived {
			if !slices.ContainsFunc(creds, func(x storage.Credential) bool { return x.Hash == c.Hash }) {
				creds = append(creds, c)
			}
		}
	}
	exists, err := im.accountExists(u.JID)
	if err != nil {
		return err
	}
	fresh := !exists
	switch {
	case !exists:
		if err := im.write(func() error { return st.CreateAccount(ctx, u.JID, creds) },
			func() error { return st.DeleteAccount(bg, u.JID) }); err != nil {
			return err
		}
		im.added("accounts")
	default:
		// The account's password may have changed here since: keep it.
		im.same("accounts")
	}

	// Roster.
	var have map[string]storage.RosterItem
	if !fresh {
		items, _, err := st.RosterItems(ctx, u.JID)
		if err != nil {
			return err
		}
		have = make(map[string]storage.RosterItem, len(items))
		for _, it := range items {
			have[it.Contact] = it
		}
	}
	for _, it := range u.Roster {
		it, _ = storage.NormalizeRosterItem(it)
		old, ok := have[it.Contact]
		if ok && rosterEqual(old, it) {
			im.same("roster items")
			continue
		}
		var undo func() error
		if !fresh {
			if ok {
				undo = func() error { _, err := st.PutRosterItem(bg, u.JID, old); return err }
			} else {
				undo = func() error { _, err := st.DeleteRosterItem(bg, u.JID, it.Contact); return err }
			}
		}
		if err := im.write(func() error { _, err := st.PutRosterItem(ctx, u.JID, it); return err }, undo); err != nil {
			return err
		}
		if ok {
			im.changed("roster items")
		} else {
			im.added("roster items")
		}
	}

	// vCard and private XML.
	docs := u.Private
	if u.VCard != nil {
		docs = append([]PrivateItem{{Key: nsVCard, XML: u.VCard}}, docs...)
	}
	for _, p := range docs {
		kind := "private XML"
		if p.Key == nsVCard {
			kind = "vCards"
		}
		var old []byte
		if !fresh {
			b, err := st.PrivateXML(ctx, u.JID, p.Key)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			old = b
		}
		if old != nil && bytes.Equal(old, p.XML) {
			im.same(kind)
			continue
		}
		var undo func() error
		if !fresh {
			undo = func() error { return st.SetPrivateXML(bg, u.JID, p.Key, old) }
		}
		if err := im.write(func() error { return st.SetPrivateXML(ctx, u.JID, p.Key, p.XML) }, undo); err != nil {
			return err
		}
		if old != nil {
			im.changed(kind)
		} else {
			im.added(kind)
		}
	}

	// PEP nodes and their items.
	for _, n := range u.PEP {
		old, err := st.PEPNode(ctx, u.JID, n.Config.Node)
		found := err == nil
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if found && old == n.Config {
			im.same("PEP nodes")
		} else {
			var undo func() error
			if !fresh {
				if found {
					undo = func() error { return st.PutPEPNode(bg, u.JID, old) }
				} else {
					undo = func() error { return st.DeletePEPNode(bg, u.JID, n.Config.Node) }
				}
			}
			if err := im.write(func() error { return st.PutPEPNode(ctx, u.JID, n.Config) }, undo); err != nil {
				return err
			}
			if found {
				im.changed("PEP nodes")
			} else {
				im.added("PEP nodes")
			}
		}
		max := n.Config.MaxItems
		if max <= 0 || max > pepMaxItems {
			max = pepMaxItems
		}
		for _, it := range n.Items {
			if found {
				olds, err := st.PEPItems(ctx, u.JID, n.Config.Node, []string{it.ID}, 1)
				if err != nil {
					return err
				}
				if len(olds) == 1 && bytes.Equal(olds[0].Payload, it.Payload) {
					im.same("PEP items")
					continue
				}
			}
			// A node created here is undone whole; items published to
			// an existing node are not taken back one by one.
			if err := im.write(func() error { return st.PublishPEPItem(ctx, u.JID, n.Config.Node, it, max) }, nil); err != nil {
				return err
			}
			im.added("PEP items")
		}
	}

	// Offline messages last: a quota failure leaves nothing else half
	// written.
	if len(u.Offline) > 0 {
		var olds []storage.OfflineMessage
		if !fresh {
			if olds, err = st.OfflineMessages(ctx, u.JID); err != nil {
				return err
			}
		}
		if q := im.o.OfflineQuota; q > 0 && len(olds)+len(u.Offline) > q {
			new := 0
			for _, m := range u.Offline {
				if !slices.ContainsFunc(olds, func(o storage.OfflineMessage) bool { return bytes.Equal(o.Stanza, m.Stanza) }) {
					new++
				}
			}
			if len(olds)+new > q {
				return fmt.Errorf("%d offline messages exceed the quota of %d", len(olds)+new, q)
			}
		}
		quota := im.o.OfflineQuota
		if quota <= 0 {
			quota = math.MaxInt32
		}
		for _, m := range u.Offline {
			if slices.ContainsFunc(olds, func(o storage.OfflineMessage) bool { return bytes.Equal(o.Stanza, m.Stanza) }) {
				im.same("offline messages")
				continue
			}
			if err := im.write(func() error { return st.PushOffline(ctx, u.JID, m.Stanza, m.Stored, quota) }, nil); err != nil {
				return err
			}
			im.added("offline messages")
		}
	}
	if len(u.Archive) > 0 {
		if err := im.archive(u, fresh); err != nil {
			return err
		}
	}
	return nil
}

// archive adds u's archived messages that the archive does not hold yet.
// Each takes the id of its own time (bumped by a microsecond past an id
// taken), so that the archive stays in time order and the same input
// gives the same ids: those already there are found and not written
// twice. Archives cannot be taken back message by message: they are
// written last, in one batch.
func (im *importer) archive(u *User, fresh bool) error {
	msgs := slices.Clone(u.Archive)
	slices.SortStableFunc(msgs, func(a, b ArchivedMessage) int { return a.Stamp.Compare(b.Stamp) })
	entries := make([]storage.ArchiveEntry, 0, len(msgs))
	var last time.Time
	for _, m := range msgs {
		t := m.Stamp.Truncate(time.Microsecond)
		if !t.After(last) && !last.IsZero() {
			t = last.Add(time.Microsecond)
		}
		last = t
		entries = append(entries, storage.ArchiveEntry{User: u.JID, Message: storage.ArchivedMessage{
			ID: mam.IDAt(t), Stamp: t, With: m.With, Stanza: m.Stanza,
		}})
	}
	have := map[string]bool{}
	if !fresh {
		q := storage.ArchiveQuery{Start: entries[0].Message.Stamp, End: last, Max: 1000}
		for {
			page, err := im.st.QueryArchive(im.ctx, u.JID, q)
			if err != nil {
				return err
			}
			for _, it := range page.Items {
				have[it.ID] = true
			}
			if page.Complete || len(page.Items) == 0 {
				break
			}
			q.AfterID = page.Items[len(page.Items)-1].ID
		}
	}
	var add []storage.ArchiveEntry
	for _, e := range entries {
		if have[e.Message.ID] {
			im.same("archived messages")
			continue
		}
		add = append(add, e)
		im.added("archived messages")
	}
	if len(add) == 0 {
		return nil
	}
	return im.write(func() error { return im.st.AppendArchiveBatch(im.ctx, add) }, nil)
}

func (im *importer) accountExists(user string) (bool, error) {
	for _, h := range []string{"SHA-256", "SHA-1", "SHA-512"} {
		_, err := im.st.Credential(im.ctx, user, h)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return false, err
		}
	}
	// An account without any credential of these hashes.
	domain, _ := storage.UserDomain(user)
	users, err := im.st.ListAccounts(im.ctx, domain)
	if err != nil {
		return false, err
	}
	_, found := slices.BinarySearch(users, user)
	return found, nil
}

func rosterEqual(a, b storage.RosterItem) bool {
	return a.Contact == b.Contact && a.Name == b.Name && a.Subscription == b.Subscription && a.Ask == b.Ask &&
		a.PendingIn == b.PendingIn && a.Approved == b.Approved && slices.Equal(a.Groups, b.Groups)
}

func (im *importer) room(r *Room) error {
	ctx, st := im.ctx, im.st
	bg := context.WithoutCancel(ctx)
	old, err := st.MUCRoom(ctx, r.JID)
	found := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	state := r.State
	write := true
	if found {
		prev := mustDecode(old.Config)
		// The occupant-id secret and the creation stay.
		state.Secret, state.Created, state.Creator = prev.Secret, prev.Created, prev.Creator
		write = !stateEqual(prev, state)
	} else {
		if state.Secret == "" {
			state.Secret = randomSecret()
		}
		if state.Created.IsZero() {
			state.Created = im.o.now()
		}
	}
	if !write {
		im.same("rooms")
	} else {
		b, err := json.Marshal(state)
		if err != nil {
			return err
		}
		undo := func() error { return st.DeleteMUCRoom(bg, r.JID) }
		if found {
			undo = func() error { return st.PutMUCRoom(bg, old) }
		}
		if err := im.write(func() error { return st.PutMUCRoom(ctx, storage.MUCRoom{Room: r.JID, Config: b}) }, undo); err != nil {
			return err
		}
		if found {
			im.changed("rooms")
		} else {
			im.added("rooms")
		}
	}
	var have []storage.MUCAffiliation
	if found {
		if have, err = st.MUCAffiliations(ctx, r.JID); err != nil {
			return err
		}
	}
	for _, a := range r.Affiliations {
		i := slices.IndexFunc(have, func(x storage.MUCAffiliation) bool { return x.JID == a.JID })
		if i >= 0 && have[i].Affiliation == a.Affiliation && have[i].Nick == a.Nick {
			im.same("affiliations")
			continue
		}
		a := a
		if i >= 0 {
			a.Reason = have[i].Reason
		}
		var undo func() error
		if found {
			prev := storage.MUCAffiliation{JID: a.JID, Affiliation: storage.AffiliationNone}
			if i >= 0 {
				prev = have[i]
			}
			undo = func() error { return st.SetMUCAffiliation(bg, r.JID, prev) }
		}
		if err := im.write(func() error { return st.SetMUCAffiliation(ctx, r.JID, a) }, undo); err != nil {
			return err
		}
		if i >= 0 {
			im.changed("affiliations")
		} else {
			im.added("affiliations")
		}
	}
	return nil
}

func mustDecode(b []byte) room.State {
	var s room.State
	_ = json.Unmarshal(b, &s)
	return s
}

// stateEqual compares what an import sets of a room's state.
func stateEqual(a, b room.State) bool {
	ja, _ := json.Marshal(a.Config)
	jb, _ := json.Marshal(b.Config)
	return bytes.Equal(ja, jb) && a.Subject.Text == b.Subject.Text && a.Subject.By == b.Subject.By
}
