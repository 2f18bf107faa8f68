package sm

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces of stanza ids (XEP-0359) and data forms (XEP-0004); nsMAM is
// declared with the carbons.
const (
	nsSID   = "urn:xmpp:sid:0"
	nsXData = "jabber:x:data"
)

// purgeInterval is how often, at most, expired archive entries are purged.
const purgeInterval = time.Hour

// archivable says whether a message belongs in the archives: one-to-one
// chat, or normal messages with a body (XEP-0313 §5.1.1). Errors, group
// chat, headlines, carbon copies and content-less messages such as chat
// states are left out, as is anything marked no-store (XEP-0334).
func archivable(el *xmlstream.Element) bool {
	switch el.Attr("type") {
	case "", "normal", "chat":
	default:
		return false
	}
	if el.Child(el.Space, "body") == nil {
		return false
	}
	if el.Child(nsHints, "no-store") != nil || el.Child(nsHints, "no-permanent-store") != nil {
		return false
	}
	return !forgedWrapper(el)
}

// wantsArchived applies owner's preferences to a message exchanged with
// other (XEP-0313 §6): the lists first, then the default. Users who never
// set preferences have everything archived.
func (m *SM) wantsArchived(ctx context.Context, owner, other jid.JID) bool {
	p, ok := m.archivePrefs(ctx, owner)
	if !ok {
		return true
	}
	with := other.BareString()
	switch {
	case slices.Contains(p.Never, with):
		return false
	case slices.Contains(p.Always, with):
		return true
	case p.Default == storage.ArchiveNever:
		return false
	case p.Default == storage.ArchiveRoster:
		_, err := m.deps.Roster.RosterItem(ctx, owner.String(), with)
		return err == nil
	}
	return true
}

// appendArchive queues el for owner's archive under id; the archiver
// writes it with others in one transaction, behind the delivery: the
// caller delivers the message without waiting for the write, then calls
// archived.
//
// What acknowledges the message waits for the write instead: the
// sender's Stream Management counter (router.Accept) in this process,
// or, in a split server, the service's acknowledgement of the event
// (storage.Pending). A message acknowledged to its sender is then in the
// archive, even if the process dies the moment after; one whose
// acknowledgement did not go out is sent again by the client (or the
// gateway) and recognised (resent, the link's origins, archiveID).
func (m *SM) appendArchive(ctx context.Context, owner, other jid.JID, id string, stamp time.Time, el *xmlstream.Element) {
	m.archiver.AddFor(ctx, storage.ArchiveEntry{User: owner.String(), Message: storage.ArchivedMessage{
		ID:     id,
		Stamp:  stamp,
		With:   other.BareString(),
		Stanza: el.AppendXML(make([]byte, 0, el.SizeHint()), xmlstream.NSClient),
		Event:  storage.EventID(ctx),
	}})
}

// archiveID returns the archive id and stamp for a message of owner's
// archive, and whether it is archived already. In a split server, the
// instance that processed an event before it died may have archived its
// messages, under ids it chose, and not acknowledged the event: the
// gateway sends it again (storage.EventAgain), and its entries are then
// looked up by the event rather than written a second time; the
// delivery carries the id they have.
func (m *SM) archiveID(ctx context.Context, owner string) (id string, stamp time.Time, archived bool) {
	if ev := storage.EventID(ctx); ev != "" && storage.EventAgain(ctx) {
		id, err := m.deps.Archive.ArchivedEvent(ctx, owner, ev)
		if err == nil {
			m.log.Debug("event sent again archived already", "user", owner, "event", ev, "id", id)
			return id, time.Time{}, true
		}
		if !errors.Is(err, storage.ErrNotFound) {
			// Archived twice rather than not at all.
			m.log.Warn("archive lookup of an event sent again", "user", owner, "event", ev, "err", err)
		}
	}
	id, stamp = m.ids.Next()
	return id, stamp, false
}

// archived applies the archive's back-pressure once a message is
// delivered: the goroutine that reads its sender waits while the
// archive's backlog is full.
func (m *SM) archived() {
	if m.archiver != nil {
		m.archiver.Wait()
	}
}

// archiveOutgoing keeps a copy of a message a user sends in their own
// archive.
func (m *SM) archiveOutgoing(ctx context.Context, s router.Stanza) {
	if m.deps.Archive == nil || s.To.IsZero() || !archivable(s.El) || !m.wantsArchived(ctx, s.From.Bare(), s.To) {
		return
	}
	m.maybePurge(ctx)
	el := s.El.ShallowCopy()
	el.SetAttr("from", s.From.String())
	el.SetAttr("to", s.To.String())
	id, stamp, archived := m.archiveID(ctx, s.From.BareString())
	if !archived {
		m.appendArchive(ctx, s.From.Bare(), s.To, id, stamp, el)
	}
}

func isOwnStanzaID(c *xmlstream.Element, by string) bool {
	return c.Space == nsSID && c.Local == "stanza-id" && c.Attr("by") == by
}

// stampIncoming removes any stanza-id a sender put in the name of the
// recipient's archive (XEP-0359 §4: only the archive may vouch for its
// ids), archives the message for an existing recipient, and returns the
// stanza to deliver, stamped with the archive id when it was archived.
func (m *SM) stampIncoming(ctx context.Context, s router.Stanza) router.Stanza {
	if s.El.Attr("type") == "error" {
		return s
	}
	owner := s.To.Bare()
	by := owner.String()
	el := s.El
	if slices.ContainsFunc(el.Nodes, func(n xmlstream.Node) bool { return n.Elem != nil && isOwnStanzaID(n.Elem, by) }) {
		el = s.El.ShallowCopy()
		nodes := make([]xmlstream.Node, 0, len(el.Nodes))
		for _, n := range el.Nodes {
			if n.Elem == nil || !isOwnStanzaID(n.Elem, by) {
				nodes = append(nodes, n)
			}
		}
		// Direct edit rather than SetNodes: the children stay shared with
		// the original and must keep their parent.
		el.Nodes = nodes
		el.DropRaw()
	}
	// A message to oneself was archived once already, on its way out.
	if m.deps.Archive != nil && archivable(el) && !s.From.Bare().Equal(owner) &&
		(m.user(by) != nil || m.userExists(ctx, owner)) && m.wantsArchived(ctx, owner, s.From) {
		m.maybePurge(ctx)
		id, stamp, archived := m.archiveID(ctx, by)
		stamped := el.ShallowCopy()
		sid := xmlstream.NewElement(nsSID, "stanza-id")
		sid.SetAttr("by", by)
		sid.SetAttr("id", id)
		// AddStamp: the stamped stanza is serialized twice, for the
		// archive and for the recipient, from the sender's bytes.
		stamped.AddStamp(sid)
		if !archived {
			m.appendArchive(ctx, owner, s.From, id, stamp, stamped)
		}
		el = stamped
	}
	s.El = el
	return s
}

// maybePurge removes expired archive entries when a retention is set and
// the last purge is more than purgeInterval ago. It is called on the
// archiving path as well as from Run, because a session manager need not
// be run to serve (the router may drive it directly).
func (m *SM) maybePurge(ctx context.Context) {
	if m.deps.Archive == nil || m.cfg.ArchiveRetention <= 0 {
		return
	}
	now := time.Now()
	last := m.lastPurge.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < purgeInterval {
		return
	}
	if !m.lastPurge.CompareAndSwap(last, now.UnixNano()) {
		return // another goroutine purges
	}
	n, err := m.deps.Archive.DeleteArchiveBefore(ctx, now.Add(-m.cfg.ArchiveRetention))
	if err != nil {
		m.log.Error("archive purge", "err", err)
		return
	}
	if n > 0 {
		m.log.Info("archive purged", "messages", n)
	}
}

// purgeLoop purges expired archive entries every purgeInterval until ctx
// is done.
func (m *SM) purgeLoop(ctx context.Context) {
	if m.deps.Archive == nil || m.cfg.ArchiveRetention <= 0 {
		return
	}
	t := time.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		m.maybePurge(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// archivePrefs returns owner's archiving preferences; ok is false when the
// user never set any. Online users' preferences are cached: they are read
// for every message.
func (m *SM) archivePrefs(ctx context.Context, owner jid.JID) (p storage.ArchivePrefs, ok bool) {
	u := m.user(owner.String())
	if u != nil {
		u.mu.Lock()
		if u.archPrefsLoaded {
			p, ok = u.archPrefs, u.archPrefsSet
			u.mu.Unlock()
			return p, ok
		}
		u.mu.Unlock()
	}
	p, err := m.deps.Archive.ArchivePrefs(ctx, owner.String())
	ok = err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		m.log.Error("archive prefs load", "user", owner.String(), "err", err)
		return p, false
	}
	if u != nil {
		u.mu.Lock()
		u.archPrefs, u.archPrefsSet, u.archPrefsLoaded = p, ok, true
		u.mu.Unlock()
	}
	return p, ok
}

// forgetArchivePrefs drops the cached preferences after a change.
func (m *SM) forgetArchivePrefs(owner jid.JID) {
	if u := m.user(owner.String()); u != nil {
		u.mu.Lock()
		u.archPrefsLoaded = false
		u.mu.Unlock()
	}
}
