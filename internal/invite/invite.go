// Package invite makes invitations (XEP-0401) and the xmpp: URIs that
// carry them (XEP-0379, XEP-0445), as Prosody's mod_invites prints them:
// xmpp:DOMAIN?register;preauth=TOKEN for an account, and
// xmpp:USER@DOMAIN?roster;preauth=TOKEN;ibr=y for a contact who may
// register an account first.
package invite

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

// DefaultTTL is how long an invitation stays valid unless told
// otherwise: a week, as Prosody's mod_invites.
const DefaultTTL = 7 * 24 * time.Hour

// MaxTTL is the longest expiry ParseTTL accepts: ten years, far beyond
// any use and far from the overflow of a time.Duration.
const MaxTTL = 3650 * 24 * time.Hour

// NewToken returns a random token: 144 bits in URL-safe base64, which
// needs no escaping in a URI.
func NewToken() string {
	var b [18]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Key is what the store keeps of a token: its SHA-256, so that a copy of
// the database (a backup) gives no invitation away.
func Key(token string) string {
	h := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Create stores a new invitation to register on domain that expires ttl
// after now; with inviter (a bare JID), the invitee also becomes the
// inviter's contact. It returns the invitation as stored (keyed by
// Key(token)) and the token to hand out, which only the URI carries.
func Create(ctx context.Context, s storage.Invites, domain, inviter string, ttl time.Duration, now time.Time) (storage.Invite, string, error) {
	if ttl <= 0 {
		return storage.Invite{}, "", fmt.Errorf("invite: expiry %v is not in the future", ttl)
	}
	for {
		tok := NewToken()
		inv := storage.Invite{Token: Key(tok), Domain: domain, Inviter: inviter, Expires: now.Add(ttl).UTC()}
		err := s.CreateInvite(ctx, inv)
		if errors.Is(err, storage.ErrExists) {
			continue // 144 random bits: not seen in practice
		}
		return inv, tok, err
	}
}

// URI is the xmpp: URI that hands the invitation inv, with its token,
// to the invitee's client.
func URI(inv storage.Invite, token string) string {
	tok := url.QueryEscape(token)
	if inv.Inviter == "" {
		return "xmpp:" + inv.Domain + "?register;preauth=" + tok
	}
	return "xmpp:" + inv.Inviter + "?roster;preauth=" + tok + ";ibr=y"
}

// ParseTTL reads an expiry as Go durations ("36h", "90m") and also
// with days and weeks ("7d", "2w"), as operators write them.
func ParseTTL(s string) (time.Duration, error) {
	var unit time.Duration
	switch {
	case strings.HasSuffix(s, "d"):
		unit = 24 * time.Hour
	case strings.HasSuffix(s, "w"):
		unit = 7 * 24 * time.Hour
	}
	var d time.Duration
	if unit != 0 {
		n, err := strconv.ParseUint(s[:len(s)-1], 10, 16)
		if err != nil || time.Duration(n) > MaxTTL/unit {
			return 0, fmt.Errorf("invalid expiry %q", s)
		}
		d = time.Duration(n) * unit
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("invalid expiry %q", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("invalid expiry %q: not in the future", s)
	}
	if d > MaxTTL {
		return 0, fmt.Errorf("invalid expiry %q: more than %d days", s, MaxTTL/(24*time.Hour))
	}
	return d, nil
}
