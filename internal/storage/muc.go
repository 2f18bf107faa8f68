package storage

import (
	"context"
	"fmt"
)

// MUC affiliations (XEP-0045 §5.2) that are stored; "none" is the absence
// of a record.
const (
	AffiliationOwner   = "owner"
	AffiliationAdmin   = "admin"
	AffiliationMember  = "member"
	AffiliationOutcast = "outcast"
	AffiliationNone    = "none"
)

// MUCRoom is a persistent multi-user chat room (XEP-0045) as stored.
type MUCRoom struct {
	// Room is the room's bare JID, room@service.
	Room string
	// Config is the room's configuration and subject as the conference
	// service serializes them. Storage does not look inside, so that the
	// service can add settings without a migration.
	Config []byte
}

// MUCAffiliation is the lasting relation of a bare JID (or a domain, for
// bans of a whole server) to a room.
type MUCAffiliation struct {
	// JID is the bare JID or domain affiliated.
	JID string
	// Affiliation is one of the stored affiliation values.
	Affiliation string
	// Nick is the nickname the JID registered with the room (XEP-0045
	// §7.10), "" if none: the room reserves it for the JID.
	Nick string
	// Reason is the reason given with the last change, "" if none.
	Reason string
}

// MUC keeps the persistent rooms of conference services: their
// configuration, affiliations and registered nicknames. A room's message
// archive lives in Archive and its vCard (XEP-0486 avatar) in PrivateData,
// both under the room's bare JID as the user, which DeleteMUCRoom removes
// as well.
type MUC interface {
	// MUCRooms returns the stored rooms of the service domain (rooms
	// whose JID ends in "@"+service), sorted by Room.
	MUCRooms(ctx context.Context, service string) ([]MUCRoom, error)
	// MUCRoom returns one room, or ErrNotFound.
	MUCRoom(ctx context.Context, room string) (MUCRoom, error)
	// PutMUCRoom stores r, replacing the configuration of a room already
	// stored and keeping its affiliations. It fails with ErrInvalid unless
	// r.Room is a bare JID with a local part.
	PutMUCRoom(ctx context.Context, r MUCRoom) error
	// DeleteMUCRoom removes a room with its affiliations, archive and
	// private data, or returns ErrNotFound.
	DeleteMUCRoom(ctx context.Context, room string) error
	// MUCAffiliations returns the affiliations of room sorted by JID, nil
	// for a room with none (stored or not).
	MUCAffiliations(ctx context.Context, room string) ([]MUCAffiliation, error)
	// SetMUCAffiliation records a's affiliation with room, replacing the
	// JID's previous one; AffiliationNone removes the record. It fails
	// with ErrInvalid for an unknown affiliation or an empty JID. The room
	// need not be stored: a temporary room's affiliations are not kept
	// beyond DeleteMUCRoom either way.
	SetMUCAffiliation(ctx context.Context, room string, a MUCAffiliation) error
}

// CheckMUCAffiliation reports an ErrInvalid error for an affiliation no
// backend stores.
func CheckMUCAffiliation(a MUCAffiliation) error {
	switch {
	case a.JID == "":
		return errInvalidf("affiliation without JID")
	case a.Affiliation == AffiliationOwner, a.Affiliation == AffiliationAdmin, a.Affiliation == AffiliationMember,
		a.Affiliation == AffiliationOutcast, a.Affiliation == AffiliationNone:
		return nil
	default:
		return errInvalidf("affiliation %q of %s", a.Affiliation, a.JID)
	}
}

// MUCRoomService returns the service domain of a room's bare JID, failing
// with ErrInvalid unless room has a local part and a domain.
func MUCRoomService(room string) (string, error) {
	return UserDomain(room)
}

func errInvalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}
