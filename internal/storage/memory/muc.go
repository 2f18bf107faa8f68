package memory

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

var _ storage.MUC = (*Store)(nil)

// mucRoom is a stored room; service is kept so that listing a service
// need not parse every JID.
type mucRoom struct {
	service string
	config  []byte
}

// MUCRooms implements storage.MUC.
func (s *Store) MUCRooms(ctx context.Context, service string) ([]storage.MUCRoom, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: muc rooms %s: %w", service, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.MUCRoom
	for _, room := range slices.Sorted(maps.Keys(s.mucRooms)) {
		if r := s.mucRooms[room]; r.service == service {
			out = append(out, storage.MUCRoom{Room: room, Config: bytes.Clone(r.config)})
		}
	}
	return out, nil
}

// MUCRoom implements storage.MUC.
func (s *Store) MUCRoom(ctx context.Context, room string) (storage.MUCRoom, error) {
	if err := ctx.Err(); err != nil {
		return storage.MUCRoom{}, fmt.Errorf("memory: muc room %s: %w", room, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.mucRooms[room]
	if !ok {
		return storage.MUCRoom{}, fmt.Errorf("memory: muc room %s: %w", room, storage.ErrNotFound)
	}
	return storage.MUCRoom{Room: room, Config: bytes.Clone(r.config)}, nil
}

// PutMUCRoom implements storage.MUC.
func (s *Store) PutMUCRoom(ctx context.Context, r storage.MUCRoom) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: put muc room %s: %w", r.Room, err)
	}
	service, err := storage.MUCRoomService(r.Room)
	if err != nil {
		return fmt.Errorf("memory: put muc room: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mucRooms == nil {
		s.mucRooms = make(map[string]mucRoom)
	}
	s.mucRooms[r.Room] = mucRoom{service: service, config: bytes.Clone(r.Config)}
	return nil
}

// DeleteMUCRoom implements storage.MUC. The affiliations go even when the
// room is not stored, since a temporary room's are kept all the same; the
// archive and private data go only with a stored room, so that a mistaken
// call with a user's JID cannot wipe that user's archive.
func (s *Store) DeleteMUCRoom(ctx context.Context, room string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: delete muc room %s: %w", room, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mucAffs, room)
	if _, ok := s.mucRooms[room]; !ok {
		return fmt.Errorf("memory: delete muc room %s: %w", room, storage.ErrNotFound)
	}
	delete(s.mucRooms, room)
	delete(s.archive, room)
	delete(s.prefs, room)
	delete(s.private, room)
	return nil
}

// MUCAffiliations implements storage.MUC.
func (s *Store) MUCAffiliations(ctx context.Context, room string) ([]storage.MUCAffiliation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: muc affiliations %s: %w", room, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	affs := s.mucAffs[room]
	var out []storage.MUCAffiliation
	for _, jid := range slices.Sorted(maps.Keys(affs)) {
		out = append(out, affs[jid])
	}
	return out, nil
}

// SetMUCAffiliation implements storage.MUC.
func (s *Store) SetMUCAffiliation(ctx context.Context, room string, a storage.MUCAffiliation) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: set muc affiliation %s: %w", room, err)
	}
	if _, err := storage.MUCRoomService(room); err != nil {
		return fmt.Errorf("memory: set muc affiliation: %w", err)
	}
	if err := storage.CheckMUCAffiliation(a); err != nil {
		return fmt.Errorf("memory: set muc affiliation %s: %w", room, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.Affiliation == storage.AffiliationNone {
		delete(s.mucAffs[room], a.JID)
		if len(s.mucAffs[room]) == 0 {
			delete(s.mucAffs, room)
		}
		return nil
	}
	if s.mucAffs == nil {
		s.mucAffs = make(map[string]map[string]storage.MUCAffiliation)
	}
	if s.mucAffs[room] == nil {
		s.mucAffs[room] = make(map[string]storage.MUCAffiliation)
	}
	s.mucAffs[room][a.JID] = a
	return nil
}
