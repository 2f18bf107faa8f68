// Package memory is an in-memory storage backend. It keeps nothing across
// restarts and exists so that other packages can test against real storage
// semantics without a database file.
package memory

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
)

var _ storage.Store = (*Store)(nil)

// Store implements storage.Store with maps guarded by one mutex. The zero
// value is not usable; call New.
type Store struct {
	mu       sync.Mutex
	accounts map[string]*account // by bare JID
	rosters  map[string]*roster  // by bare JID of the owner
	offline  map[string][]storage.OfflineMessage
	lastID   int64
	blocked  map[string]map[string]bool
	private  map[string]map[string][]byte
	archive  map[string][]storage.ArchivedMessage // by owner, sorted by ID
	prefs    map[string]storage.ArchivePrefs
	fast     map[string][]storage.FastToken // by user, see fast.go
	pep      map[string]map[string]*pepNode // by owner and node, see pep.go

	// mucRooms and mucAffs are the conference rooms and their
	// affiliations by room JID (and affiliated JID), see muc.go. The
	// affiliations are apart because a temporary room has them too.
	mucRooms map[string]mucRoom
	mucAffs  map[string]map[string]storage.MUCAffiliation

	// offlineEvent holds the event id (storage.WithEventID) of stored
	// offline messages pushed with one, by message ID.
	offlineEvent map[int64]string

	// appservice holds the application services' event queues by
	// service name, see appservice.go.
	appservice map[string]*asQueue

	// invites holds the invitations by token, see invite.go.
	invites map[string]storage.Invite
}

type account struct {
	domain string
	creds  map[string]storage.Credential // by hash name
}

type roster struct {
	items   map[string]storage.RosterItem // by contact
	version int64
}

// New returns an empty store.
func New() *Store {
	return &Store{
		accounts: make(map[string]*account),
		rosters:  make(map[string]*roster),
	}
}

func credentialMap(creds []storage.Credential) map[string]storage.Credential {
	m := make(map[string]storage.Credential, len(creds))
	for _, c := range creds {
		m[c.Hash] = storage.CloneCredential(c)
	}
	return m
}

// CreateAccount implements storage.Accounts.
func (s *Store) CreateAccount(ctx context.Context, user string, creds []storage.Credential) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: create account %s: %w", user, err)
	}
	domain, err := storage.UserDomain(user)
	if err != nil {
		return fmt.Errorf("memory: create account: %w", err)
	}
	if err := storage.CheckCredentials(creds); err != nil {
		return fmt.Errorf("memory: create account %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[user]; ok {
		return fmt.Errorf("memory: create account %s: %w", user, storage.ErrExists)
	}
	s.accounts[user] = &account{domain: domain, creds: credentialMap(creds)}
	return nil
}

// SetCredentials implements storage.Accounts.
func (s *Store) SetCredentials(ctx context.Context, user string, creds []storage.Credential) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: set credentials %s: %w", user, err)
	}
	if err := storage.CheckCredentials(creds); err != nil {
		return fmt.Errorf("memory: set credentials %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[user]
	if !ok {
		return fmt.Errorf("memory: set credentials %s: %w", user, storage.ErrNotFound)
	}
	a.creds = credentialMap(creds)
	delete(s.fast, user) // a token must not outlive the password
	return nil
}

// Credential implements storage.Accounts.
func (s *Store) Credential(ctx context.Context, user, hash string) (storage.Credential, error) {
	if err := ctx.Err(); err != nil {
		return storage.Credential{}, fmt.Errorf("memory: credential %s %s: %w", user, hash, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[user]
	if !ok {
		return storage.Credential{}, fmt.Errorf("memory: credential %s %s: %w", user, hash, storage.ErrNotFound)
	}
	c, ok := a.creds[hash]
	if !ok {
		return storage.Credential{}, fmt.Errorf("memory: credential %s %s: %w", user, hash, storage.ErrNotFound)
	}
	return storage.CloneCredential(c), nil
}

// DeleteAccount implements storage.Accounts.
func (s *Store) DeleteAccount(ctx context.Context, user string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: delete account %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accounts[user]; !ok {
		return fmt.Errorf("memory: delete account %s: %w", user, storage.ErrNotFound)
	}
	delete(s.accounts, user)
	delete(s.rosters, user)
	for _, m := range s.offline[user] {
		delete(s.offlineEvent, m.ID)
	}
	delete(s.offline, user)
	delete(s.blocked, user)
	delete(s.private, user)
	delete(s.archive, user)
	delete(s.prefs, user)
	delete(s.fast, user)
	delete(s.pep, user)
	for t, inv := range s.invites {
		if inv.Inviter == user { // whose contact would the invitee become?
			delete(s.invites, t)
		}
	}
	return nil
}

// PrivateXML implements storage.PrivateData.
func (s *Store) PrivateXML(ctx context.Context, user, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: private %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.private[user][key]
	if !ok {
		return nil, fmt.Errorf("memory: private %s %s: %w", user, key, storage.ErrNotFound)
	}
	return bytes.Clone(d), nil
}

// SetPrivateXML implements storage.PrivateData.
func (s *Store) SetPrivateXML(ctx context.Context, user, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: set private %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.private == nil {
		s.private = make(map[string]map[string][]byte)
	}
	if s.private[user] == nil {
		s.private[user] = make(map[string][]byte)
	}
	s.private[user][key] = bytes.Clone(data)
	return nil
}

// BlockedJIDs implements storage.Blocklist.
func (s *Store) BlockedJIDs(ctx context.Context, user string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: blocklist %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for j := range s.blocked[user] {
		out = append(out, j)
	}
	sort.Strings(out)
	return out, nil
}

// Block implements storage.Blocklist.
func (s *Store) Block(ctx context.Context, user string, jids []string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: block %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.blocked == nil {
		s.blocked = make(map[string]map[string]bool)
	}
	if s.blocked[user] == nil {
		s.blocked[user] = make(map[string]bool)
	}
	for _, j := range jids {
		s.blocked[user][j] = true
	}
	return nil
}

// Unblock implements storage.Blocklist.
func (s *Store) Unblock(ctx context.Context, user string, jids []string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: unblock %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(jids) == 0 {
		delete(s.blocked, user)
		return nil
	}
	for _, j := range jids {
		delete(s.blocked[user], j)
	}
	return nil
}

// PushOffline implements storage.Offline.
func (s *Store) PushOffline(ctx context.Context, user string, stanza []byte, stored time.Time, quota int) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: push offline %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := storage.EventID(ctx)
	if ev != "" {
		for _, m := range s.offline[user] {
			if s.offlineEvent[m.ID] == ev {
				return nil
			}
		}
	}
	if len(s.offline[user]) >= quota {
		return fmt.Errorf("memory: push offline %s: %w", user, storage.ErrQuota)
	}
	if s.offline == nil {
		s.offline = make(map[string][]storage.OfflineMessage)
	}
	s.lastID++
	s.offline[user] = append(s.offline[user], storage.OfflineMessage{ID: s.lastID, Stored: stored, Stanza: bytes.Clone(stanza)})
	if ev != "" {
		if s.offlineEvent == nil {
			s.offlineEvent = make(map[int64]string)
		}
		s.offlineEvent[s.lastID] = ev
	}
	return nil
}

// OfflineMessages implements storage.Offline.
func (s *Store) OfflineMessages(ctx context.Context, user string) ([]storage.OfflineMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: offline messages %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]storage.OfflineMessage, 0, len(s.offline[user]))
	for _, m := range s.offline[user] {
		m.Stanza = bytes.Clone(m.Stanza)
		m.Event = s.offlineEvent[m.ID]
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// DeleteOfflineEvent implements storage.Offline.
func (s *Store) DeleteOfflineEvent(ctx context.Context, user, event string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memory: delete offline %s: %w", user, err)
	}
	if event == "" {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.offline[user]
	for i, m := range ms {
		if s.offlineEvent[m.ID] != event {
			continue
		}
		delete(s.offlineEvent, m.ID)
		if len(ms) == 1 {
			delete(s.offline, user)
		} else {
			s.offline[user] = append(ms[:i:i], ms[i+1:]...)
		}
		return true, nil
	}
	return false, nil
}

// DeleteOffline implements storage.Offline.
func (s *Store) DeleteOffline(ctx context.Context, user string, upTo int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: delete offline %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.offline[user]
	i := 0
	for i < len(ms) && ms[i].ID <= upTo {
		delete(s.offlineEvent, ms[i].ID)
		i++
	}
	if i == len(ms) {
		delete(s.offline, user)
	} else {
		s.offline[user] = append([]storage.OfflineMessage(nil), ms[i:]...)
	}
	return nil
}

// ListAccounts implements storage.Accounts.
func (s *Store) ListAccounts(ctx context.Context, domain string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: list accounts %s: %w", domain, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var users []string
	for user, a := range s.accounts {
		if domain == "" || a.domain == domain {
			users = append(users, user)
		}
	}
	slices.Sort(users)
	return users, nil
}

func cloneItem(item storage.RosterItem) storage.RosterItem {
	item.Groups = slices.Clone(item.Groups)
	return item
}

// RosterItems implements storage.Roster.
func (s *Store) RosterItems(ctx context.Context, user string) ([]storage.RosterItem, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("memory: roster items %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rosters[user]
	if !ok {
		return nil, 0, nil
	}
	var items []storage.RosterItem
	for _, contact := range slices.Sorted(maps.Keys(r.items)) {
		items = append(items, cloneItem(r.items[contact]))
	}
	return items, r.version, nil
}

// RosterItem implements storage.Roster.
func (s *Store) RosterItem(ctx context.Context, user, contact string) (storage.RosterItem, error) {
	if err := ctx.Err(); err != nil {
		return storage.RosterItem{}, fmt.Errorf("memory: roster item %s %s: %w", user, contact, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.rosters[user]; ok {
		if item, ok := r.items[contact]; ok {
			return cloneItem(item), nil
		}
	}
	return storage.RosterItem{}, fmt.Errorf("memory: roster item %s %s: %w", user, contact, storage.ErrNotFound)
}

// PutRosterItem implements storage.Roster.
func (s *Store) PutRosterItem(ctx context.Context, user string, item storage.RosterItem) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: put roster item %s %s: %w", user, item.Contact, err)
	}
	item, err := storage.NormalizeRosterItem(item)
	if err != nil {
		return 0, fmt.Errorf("memory: put roster item %s: %w", user, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rosters[user]
	if !ok {
		r = &roster{items: make(map[string]storage.RosterItem)}
		s.rosters[user] = r
	}
	// NormalizeRosterItem already copied the groups, so the caller's slice
	// is not retained.
	r.items[item.Contact] = item
	r.version++
	return r.version, nil
}

// DeleteRosterItem implements storage.Roster.
func (s *Store) DeleteRosterItem(ctx context.Context, user, contact string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: delete roster item %s %s: %w", user, contact, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rosters[user]
	if !ok {
		return 0, fmt.Errorf("memory: delete roster item %s %s: %w", user, contact, storage.ErrNotFound)
	}
	if _, ok := r.items[contact]; !ok {
		return 0, fmt.Errorf("memory: delete roster item %s %s: %w", user, contact, storage.ErrNotFound)
	}
	delete(r.items, contact)
	r.version++
	return r.version, nil
}
