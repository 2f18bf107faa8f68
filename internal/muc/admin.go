package muc

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/ambrosia-xmpp/ambrosia/internal/dataform"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/muc/room"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// What follows acts on rooms on an administrator's authority (the HTTP
// API), not on a stanza's.

// Errors of the administrator's operations.
var (
	ErrNoService = errors.New("muc: not a conference service of this server")
	ErrExists    = room.ErrExists
	ErrNoRoom    = storage.ErrNotFound
)

// withRoom runs f on the room under its lock, loaded from storage (or
// made empty when create is set and none is stored), then applies and
// routes what f's result says, as for a stanza.
func (s *Service) withRoom(ctx context.Context, roomJID jid.JID, create bool, f func(*room.Room) (*room.Result, error)) error {
	if _, ok := s.cfg.Services[roomJID.Domain()]; !ok || roomJID.Local() == "" {
		return fmt.Errorf("%w: %s", ErrNoService, roomJID.Domain())
	}
	roomJID = roomJID.Bare()
	key := roomJID.String()
	for {
		s.mu.Lock()
		e := s.rooms[key]
		if e == nil {
			e = &entry{}
			e.mu.Lock()
			s.rooms[key] = e
			s.mu.Unlock()
			r, err := s.loadStored(ctx, roomJID)
			switch {
			case errors.Is(err, storage.ErrNotFound) && create:
				r = room.New(roomJID, room.State{}, nil, s.roomDeps(roomJID))
			case err != nil:
				s.drop(key, e)
				e.mu.Unlock()
				return err
			}
			e.r = r
		} else {
			s.mu.Unlock()
			e.mu.Lock()
			if e.gone {
				e.mu.Unlock()
				continue
			}
		}
		res, err := f(e.r)
		if res != nil {
			s.apply(ctx, e, res)
		}
		if !e.r.Exists() {
			s.drop(key, e)
		}
		e.mu.Unlock()
		s.flush(ctx, e)
		return err
	}
}

// CreateRoom makes a persistent room owned by owner, configured by config
// (muc#roomconfig fields to their values); ErrExists if it exists.
func (s *Service) CreateRoom(ctx context.Context, roomJID, owner jid.JID, config map[string][]string) error {
	f := dataform.Form{Type: dataform.TypeSubmit, FormType: room.NSRoomConf}
	keys := make([]string, 0, len(config))
	for k := range config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f.Fields = append(f.Fields, dataform.Field{Var: k, Values: config[k]})
	}
	err := s.withRoom(ctx, roomJID, true, func(r *room.Room) (*room.Result, error) {
		res, err := r.Create(owner.Bare(), f)
		if err != nil {
			return nil, err
		}
		return res, nil
	})
	if err == nil {
		s.forgetDirectory(roomJID.Domain())
	}
	return err
}

// SetAffiliation gives user the affiliation with the room, as an owner's
// request would, with its consequences for the user's occupants.
func (s *Service) SetAffiliation(ctx context.Context, roomJID, user jid.JID, affiliation, reason string) error {
	a, ok := room.ParseAffiliation(affiliation)
	if !ok {
		return fmt.Errorf("muc: affiliation %q", affiliation)
	}
	return s.withRoom(ctx, roomJID, false, func(r *room.Room) (*room.Result, error) {
		if !r.Exists() {
			return nil, ErrNoRoom
		}
		return r.SetAffiliation(room.Record{JID: user.Bare().String(), Affiliation: a, Reason: reason}), nil
	})
}

// RoomInfo describes a stored room.
type RoomInfo struct {
	JID       string
	Name      string
	Public    bool
	Occupants int
}

// Rooms lists the stored rooms of a service, with the occupants of those
// loaded.
func (s *Service) Rooms(ctx context.Context, service string) ([]RoomInfo, error) {
	if _, ok := s.cfg.Services[service]; !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoService, service)
	}
	stored, err := s.deps.Store.MUCRooms(ctx, service)
	if err != nil {
		return nil, err
	}
	out := make([]RoomInfo, 0, len(stored))
	for _, rec := range stored {
		info := RoomInfo{JID: rec.Room}
		if st, err := decodeState(rec.Config); err == nil {
			info.Name, info.Public = st.Config.Name, st.Config.Public
		}
		s.mu.Lock()
		e := s.rooms[rec.Room]
		s.mu.Unlock()
		if e != nil {
			e.mu.Lock()
			if e.r != nil {
				info.Occupants = e.r.Occupants()
			}
			e.mu.Unlock()
		}
		out = append(out, info)
	}
	return out, nil
}
