package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

func cloneArchived(m storage.ArchivedMessage) storage.ArchivedMessage {
	m.Stanza = bytes.Clone(m.Stanza)
	return m
}

// findArchived looks id up in ms, which is sorted by ID.
func findArchived(ms []storage.ArchivedMessage, id string) (int, bool) {
	return slices.BinarySearchFunc(ms, id, func(x storage.ArchivedMessage, id string) int { return strings.Compare(x.ID, id) })
}

// AppendArchive implements storage.Archive.
func (s *Store) AppendArchive(ctx context.Context, user string, m storage.ArchivedMessage) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: append archive %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.archive == nil {
		s.archive = make(map[string][]storage.ArchivedMessage)
	}
	ms := s.archive[user]
	i, found := findArchived(ms, m.ID)
	if found {
		return fmt.Errorf("memory: append archive %s %s: %w", user, m.ID, storage.ErrExists)
	}
	s.archive[user] = slices.Insert(ms, i, cloneArchived(m))
	return nil
}

// AppendArchiveBatch implements storage.Archive.
func (s *Store) AppendArchiveBatch(ctx context.Context, entries []storage.ArchiveEntry) error {
	for _, e := range entries {
		if err := s.AppendArchive(ctx, e.User, e.Message); err != nil && !errors.Is(err, storage.ErrExists) {
			return err
		}
	}
	return nil
}

// QueryArchive implements storage.Archive.
func (s *Store) QueryArchive(ctx context.Context, user string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	if err := ctx.Err(); err != nil {
		return storage.ArchivePage{}, fmt.Errorf("memory: query archive %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.archive[user]
	for _, id := range []string{q.AfterID, q.BeforeID} {
		if id == "" {
			continue
		}
		if !slices.ContainsFunc(ms, func(m storage.ArchivedMessage) bool { return m.ID == id }) {
			return storage.ArchivePage{}, fmt.Errorf("memory: query archive %s: id %s: %w", user, id, storage.ErrNotFound)
		}
	}
	var page storage.ArchivePage
	var sel []storage.ArchivedMessage
	for _, m := range ms {
		if (q.With != "" && m.With != q.With) ||
			(!q.Start.IsZero() && m.Stamp.Before(q.Start)) ||
			(!q.End.IsZero() && m.Stamp.After(q.End)) {
			continue
		}
		page.Count++
		if (q.AfterID != "" && m.ID <= q.AfterID) || (q.BeforeID != "" && m.ID >= q.BeforeID) {
			continue
		}
		sel = append(sel, m)
	}
	n := max(q.Max, 0)
	page.Complete = len(sel) <= n
	if !page.Complete {
		if q.Last {
			sel = sel[len(sel)-n:]
		} else {
			sel = sel[:n]
		}
	}
	for _, m := range sel {
		m = cloneArchived(m)
		m.Event = "" // as the databases: queries do not return it
		page.Items = append(page.Items, m)
	}
	return page, nil
}

// ArchivedEvent implements storage.Archive.
func (s *Store) ArchivedEvent(ctx context.Context, user, event string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("memory: archived event %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.archive[user]
	for i := len(ms) - 1; i >= max(0, len(ms)-storage.ArchivedEventWindow); i-- {
		if event != "" && ms[i].Event == event {
			return ms[i].ID, nil
		}
	}
	return "", fmt.Errorf("memory: archived event %s %s: %w", user, event, storage.ErrNotFound)
}

// ReplaceArchived implements storage.Archive.
func (s *Store) ReplaceArchived(ctx context.Context, user, id string, stanza []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: replace archived %s %s: %w", user, id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.archive[user]
	i, found := findArchived(ms, id)
	if !found {
		return fmt.Errorf("memory: replace archived %s %s: %w", user, id, storage.ErrNotFound)
	}
	// Cloned because the caller keeps its slice and may reuse it.
	ms[i].Stanza = bytes.Clone(stanza)
	return nil
}

// DeleteArchiveBefore implements storage.Archive.
func (s *Store) DeleteArchiveBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: delete archive: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for user, ms := range s.archive {
		kept := slices.DeleteFunc(ms, func(m storage.ArchivedMessage) bool { return m.Stamp.Before(cutoff) })
		n += int64(len(ms) - len(kept))
		if len(kept) == 0 {
			delete(s.archive, user)
		} else {
			s.archive[user] = kept
		}
	}
	return n, nil
}

// ArchivePrefs implements storage.Archive.
func (s *Store) ArchivePrefs(ctx context.Context, user string) (storage.ArchivePrefs, error) {
	if err := ctx.Err(); err != nil {
		return storage.ArchivePrefs{}, fmt.Errorf("memory: archive prefs %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.prefs[user]
	if !ok {
		return storage.ArchivePrefs{}, fmt.Errorf("memory: archive prefs %s: %w", user, storage.ErrNotFound)
	}
	p.Always, p.Never = slices.Clone(p.Always), slices.Clone(p.Never)
	return p, nil
}

// SetArchivePrefs implements storage.Archive.
func (s *Store) SetArchivePrefs(ctx context.Context, user string, p storage.ArchivePrefs) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: set archive prefs %s: %w", user, err)
	}
	p, err := storage.NormalizeArchivePrefs(p)
	if err != nil {
		return fmt.Errorf("memory: set archive prefs %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prefs == nil {
		s.prefs = make(map[string]storage.ArchivePrefs)
	}
	s.prefs[user] = p
	return nil
}
