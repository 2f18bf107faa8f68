// Package storage declares the persistence contracts of the server, one small
// interface per concern, together with the value types they exchange.
//
// Backends live in subpackages (memory, sqlite, and later postgres) and all
// prove their conformance by running storagetest.Run. Users and contacts are
// identified by bare JID strings that the caller has already prepared, so the
// backends compare them byte for byte and never re-normalise them.
package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Sentinel errors shared by every backend. Callers test for them with
// errors.Is; backends wrap them with their own prefix.
var (
	// ErrNotFound reports that the account, credential or roster item does
	// not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrExists reports that an account being created already exists.
	ErrExists = errors.New("storage: already exists")
	// ErrInvalid reports an argument that no backend could store, such as a
	// user without a domain or an unknown subscription state.
	ErrInvalid = errors.New("storage: invalid argument")
	// ErrSchemaTooNew reports a database whose schema a newer program
	// migrated: this one refuses to use it.
	ErrSchemaTooNew = errors.New("storage: database schema newer than this program")
)

// Credential is one SCRAM salted key set for one hash function ("SHA-1",
// "SHA-256", "SHA-512"). Passwords themselves are never stored.
type Credential struct {
	// Hash names the hash function, as in the SCRAM mechanism name.
	Hash string
	// Salt is the salt used to derive the salted password.
	Salt []byte
	// Iterations is the PBKDF2 iteration count.
	Iterations int
	// StoredKey is H(ClientKey) (RFC 5802 §3).
	StoredKey []byte
	// ServerKey is HMAC(SaltedPassword, "Server Key") (RFC 5802 §3).
	ServerKey []byte
}

// Accounts stores local user accounts and their SCRAM credentials.
type Accounts interface {
	// CreateAccount creates user (a bare JID) with the given credentials,
	// which may be empty. It returns ErrExists if the account exists.
	CreateAccount(ctx context.Context, user string, creds []Credential) error
	// SetCredentials replaces all credentials of user. It returns
	// ErrNotFound if the account does not exist.
	SetCredentials(ctx context.Context, user string, creds []Credential) error
	// Credential returns the credential of user for hash. It returns
	// ErrNotFound if the account or that credential does not exist.
	Credential(ctx context.Context, user, hash string) (Credential, error)
	// DeleteAccount deletes user together with everything stored for it,
	// including its roster. It returns ErrNotFound if the account does not
	// exist.
	DeleteAccount(ctx context.Context, user string) error
	// ListAccounts returns the bare JIDs of the accounts of domain, or of
	// all domains if domain is "", sorted by byte order.
	ListAccounts(ctx context.Context, domain string) ([]string, error)
}

// Subscription states of a roster item (RFC 6121 §2.1.2.5).
const (
	SubscriptionNone = "none"
	SubscriptionTo   = "to"
	SubscriptionFrom = "from"
	SubscriptionBoth = "both"
)

// RosterItem is one contact in a user's roster.
type RosterItem struct {
	// Contact is the contact's bare JID.
	Contact string
	// Name is the user-assigned handle, "" if none.
	Name string
	// Subscription is "none", "to", "from" or "both"; "" is stored as "none".
	Subscription string
	// Ask is set while an outgoing subscription request is pending
	// (ask='subscribe').
	Ask bool
	// PendingIn is set while an incoming subscription request awaits the
	// user's answer.
	PendingIn bool
	// Approved is set when the user pre-approved the contact's subscription
	// request (RFC 6121 §3.4).
	Approved bool
	// Groups are the roster groups, sorted and without duplicates when read.
	Groups []string
}

// Roster stores each user's roster and its version (RFC 6121 §2.6).
//
// The roster does not require an account to exist, so that users
// authenticated elsewhere can still have a roster; DeleteAccount removes it
// all the same.
type Roster interface {
	// RosterItems returns the items of user sorted by Contact, and the
	// current roster version. An empty roster yields nil items and the
	// current version, 0 if the roster was never written.
	RosterItems(ctx context.Context, user string) (items []RosterItem, version int64, err error)
	// RosterItem returns the item for contact. It returns ErrNotFound if
	// the roster has no such item.
	RosterItem(ctx context.Context, user, contact string) (RosterItem, error)
	// PutRosterItem inserts or replaces the item for item.Contact and
	// returns the new roster version, which is greater than any version
	// returned before for user.
	PutRosterItem(ctx context.Context, user string, item RosterItem) (version int64, err error)
	// DeleteRosterItem removes the item for contact and returns the new
	// roster version. It returns ErrNotFound, without changing the version,
	// if the roster has no such item.
	DeleteRosterItem(ctx context.Context, user, contact string) (version int64, err error)
}

// OfflineMessage is a message stored for a user who was offline
// (XEP-0160). Stanza is its serialized XML, delay stamp included.
type OfflineMessage struct {
	ID     int64 // increasing per store; orders messages and marks delivery
	Stored time.Time
	Stanza []byte
	Event  string // the event it was stored for (WithEventID), "" if none
}

// eventIDKey is the context key of WithEventID.
type eventIDKey struct{}

// WithEventID returns ctx carrying id, which names the event whose
// processing makes the writes done with ctx. A split server may process
// an event again after a crash (the service protocol sends what was not
// acknowledged once more); writes that honour the id (PushOffline) are
// then made once.
func WithEventID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, eventIDKey{}, id)
}

// EventID returns the event id ctx carries, "" if none.
func EventID(ctx context.Context) string {
	id, _ := ctx.Value(eventIDKey{}).(string)
	return id
}

// againKey is the context key of WithEventAgain.
type againKey struct{}

// WithEventAgain returns ctx marking its event (WithEventID) as sent
// again: a split server's gateway sends an event once more when the
// instance it went to died before acknowledging it, and that instance
// may have made some of its writes. Writes that no key of theirs makes
// idempotent look for what the earlier processing left first: an
// archive entry, whose id the server chooses as it archives, is looked
// up by its event (ArchivedEvent).
func WithEventAgain(ctx context.Context) context.Context {
	return context.WithValue(ctx, againKey{}, true)
}

// EventAgain reports whether ctx's event is sent again (WithEventAgain).
func EventAgain(ctx context.Context) bool {
	again, _ := ctx.Value(againKey{}).(bool)
	return again
}

// pendingKey is the context key of WithPending.
type pendingKey struct{}

// WithPending returns ctx for processing an event that must not count as
// done before the writes it makes behind the caller's back (a batched
// archive write) are durable: hold is called once per such write and
// returns the function to call once it is.
func WithPending(ctx context.Context, hold func() (done func())) context.Context {
	return context.WithValue(ctx, pendingKey{}, hold)
}

// Pending registers a write made for the event ctx processes and returns
// the function to call once it is durable (nil if nobody waits for it).
func Pending(ctx context.Context) func() {
	if hold, _ := ctx.Value(pendingKey{}).(func() func()); hold != nil {
		return hold()
	}
	return nil
}

// ErrQuota is returned when a user's storage is full.
var ErrQuota = errors.New("storage: quota exceeded")

// Offline keeps messages for users who are not online.
type Offline interface {
	// PushOffline stores a message for user unless user already has quota
	// messages stored, in which case it returns ErrQuota. When ctx carries
	// an event id (WithEventID) that a message of user still stored was
	// pushed with, the push repeats that one: it stores nothing and
	// returns nil.
	PushOffline(ctx context.Context, user string, stanza []byte, stored time.Time, quota int) error
	// OfflineMessages returns the stored messages of user, oldest first.
	OfflineMessages(ctx context.Context, user string) ([]OfflineMessage, error)
	// DeleteOffline removes the messages of user up to and including the
	// one with ID upTo, once they have been delivered.
	DeleteOffline(ctx context.Context, user string, upTo int64) error
	// DeleteOfflineEvent removes the message of user stored for the
	// event id event (WithEventID), if one is still stored, and reports
	// whether there was one. A split server withdraws that way a message
	// it stored for a client that, as it learnt later, had received it.
	DeleteOfflineEvent(ctx context.Context, user, event string) (bool, error)
}

// Blocklist keeps the JIDs a user blocks (XEP-0191): full or bare JIDs,
// domains, or domain/resource.
type Blocklist interface {
	// BlockedJIDs returns user's blocked JIDs, sorted.
	BlockedJIDs(ctx context.Context, user string) ([]string, error)
	// Block adds jids to user's list; JIDs already there are no error.
	Block(ctx context.Context, user string, jids []string) error
	// Unblock removes jids, or everything when jids is empty.
	Unblock(ctx context.Context, user string, jids []string) error
}

// PrivateData keeps small XML documents per user and key: private XML
// storage (XEP-0049), keyed by the child's namespace, and the vCard
// (XEP-0054), keyed "vcard-temp".
type PrivateData interface {
	// PrivateXML returns the document under key, or ErrNotFound.
	PrivateXML(ctx context.Context, user, key string) ([]byte, error)
	// SetPrivateXML stores data under key, replacing what was there.
	SetPrivateXML(ctx context.Context, user, key string, data []byte) error
}

// ArchivedMessage is one message in a user's archive (XEP-0313).
type ArchivedMessage struct {
	// ID is the archive id the server chose: unique within the user's
	// archive, and its byte order is the archive's order, so the server must
	// hand out ids that sort as they are created.
	ID string
	// Stamp is when the server archived the message.
	Stamp time.Time
	// With is the bare JID of the other party.
	With string
	// Stanza is the serialized message.
	Stanza []byte
	// Event is the event the message was archived for (WithEventID), ""
	// if none, so that the event processed again after a crash finds the
	// entry (ArchivedEvent) instead of archiving the message twice under
	// a new id. Queries leave it empty.
	Event string
}

// ArchivedEventWindow is how many of a user's latest archive entries
// ArchivedEvent looks through. An event is sent again only after the
// instance that had it died, and the restarted one processes what was
// sent again before anything else of the user's: its entry, if written,
// is among the user's latest. Looking no further keeps the lookup cheap
// without an index of events, which every archived message would write.
const ArchivedEventWindow = 1024

// ArchiveEntry is a message for a user's archive, for batch appends.
type ArchiveEntry struct {
	User    string
	Message ArchivedMessage
}

// ArchiveQuery selects a page of a user's archive. Zero fields do not
// filter.
type ArchiveQuery struct {
	// With keeps only messages exchanged with this bare JID.
	With string
	// Start and End keep only messages stamped in [Start, End].
	Start, End time.Time
	// AfterID and BeforeID keep only messages after, or before, the one
	// with that archive id, which must exist in the archive.
	AfterID, BeforeID string
	// Max is the most items returned; 0 returns no items, only the count.
	Max int
	// Last pages from the end of the selection (RSM <before/>) instead of
	// from its start.
	Last bool
}

// ArchivePage is the answer to an ArchiveQuery.
type ArchivePage struct {
	// Items are in archive order, oldest first, whichever way the query
	// paged.
	Items []ArchivedMessage
	// Complete reports that no matching item lies beyond the page in the
	// direction of paging: after it, or before it when paging with Last.
	Complete bool
	// Count is the number of messages matching With, Start and End,
	// ignoring AfterID, BeforeID and Max (the RSM result set size).
	Count int
}

// Archiving defaults and lists of archive preferences (XEP-0313 §6).
const (
	ArchiveAlways = "always"
	ArchiveNever  = "never"
	ArchiveRoster = "roster"
)

// ArchivePrefs are a user's archiving preferences.
type ArchivePrefs struct {
	// Default is ArchiveAlways, ArchiveNever or ArchiveRoster: what happens
	// to messages with JIDs on neither list.
	Default string
	// Always and Never are bare JIDs whose messages are always, or never,
	// archived; sorted and without duplicates when read.
	Always, Never []string
}

// Archive keeps each user's message archive and archiving preferences
// (XEP-0313). Like the roster, it does not require the account to exist;
// DeleteAccount removes both.
type Archive interface {
	// AppendArchive adds m to user's archive. It returns ErrExists if the
	// archive already holds m.ID.
	AppendArchive(ctx context.Context, user string, m ArchivedMessage) error
	// AppendArchiveBatch adds many messages at once, in one transaction
	// where the backend has them: archiving every chat message one commit
	// at a time would cost more than routing it. An entry whose id is
	// already archived is skipped. entries is the caller's once it
	// returns (the archive writer reuses the array): keep no reference.
	AppendArchiveBatch(ctx context.Context, entries []ArchiveEntry) error
	// ArchivedEvent returns the id of the entry archived for event
	// (ArchivedMessage.Event) among the last ArchivedEventWindow entries
	// of user's archive, or ErrNotFound.
	ArchivedEvent(ctx context.Context, user, event string) (string, error)
	// QueryArchive returns one page of user's archive. It returns
	// ErrNotFound if q.AfterID or q.BeforeID is not in the archive.
	QueryArchive(ctx context.Context, user string, q ArchiveQuery) (ArchivePage, error)
	// ReplaceArchived replaces the stanza of the archived message id of user,
	// keeping its id, stamp and correspondent: what a retraction or a
	// moderation (XEP-0424, XEP-0425) leaves in the archive is a tombstone in
	// place of the message. It returns ErrNotFound if user's archive has no
	// such message.
	ReplaceArchived(ctx context.Context, user, id string, stanza []byte) error
	// DeleteArchiveBefore removes, from every user's archive, the messages
	// stamped before cutoff, and returns how many went.
	DeleteArchiveBefore(ctx context.Context, cutoff time.Time) (int64, error)
	// ArchivePrefs returns user's preferences, or ErrNotFound if the user
	// never set any.
	ArchivePrefs(ctx context.Context, user string) (ArchivePrefs, error)
	// SetArchivePrefs replaces user's preferences. It fails with ErrInvalid
	// for an unknown default.
	SetArchivePrefs(ctx context.Context, user string, p ArchivePrefs) error
}

// NormalizeArchivePrefs returns p in the form backends store: the lists
// copied, sorted and deduplicated (nil when empty), a JID on both lists kept
// only on Never, since not archiving is the safer reading. It fails with
// ErrInvalid for an unknown default.
func NormalizeArchivePrefs(p ArchivePrefs) (ArchivePrefs, error) {
	switch p.Default {
	case ArchiveAlways, ArchiveNever, ArchiveRoster:
	default:
		return ArchivePrefs{}, fmt.Errorf("%w: archive default %q", ErrInvalid, p.Default)
	}
	norm := func(l []string) []string {
		if len(l) == 0 {
			return nil
		}
		l = slices.Clone(l)
		slices.Sort(l)
		return slices.Compact(l)
	}
	p.Never = norm(p.Never)
	var always []string
	for _, j := range norm(p.Always) {
		if _, found := slices.BinarySearch(p.Never, j); !found {
			always = append(always, j)
		}
	}
	p.Always = always
	return p, nil
}

// FastToken is a FAST token (XEP-0484) as stored. The token is as good as
// a password for its user-agent, so only its SHA-256 is kept.
type FastToken struct {
	// User is the bare JID the token logs in.
	User string
	// Agent is the user-agent id (XEP-0388) the token was issued to; it
	// is valid for that agent only.
	Agent string
	// Mechanism is the HT mechanism the token was issued for.
	Mechanism string
	// Hash is the SHA-256 of the token.
	Hash []byte
	// Expiry is when the token stops being valid.
	Expiry time.Time
	// Count is the highest count a login with the token presented, 0 if
	// none: a count not above it is a replay.
	Count uint64
}

// ErrReplay reports a FAST count that is not greater than the last one
// used with the token.
var ErrReplay = errors.New("storage: replayed count")

// FastTokens keeps FAST tokens (XEP-0484): for each user and user-agent,
// the newest token and the one it replaced, which stays valid until the
// newest is used, since the client may have missed it. SetCredentials and
// DeleteAccount remove the user's tokens.
type FastTokens interface {
	// AddFastToken stores t as the newest token of its user and agent. The
	// newest token so far becomes the previous one; an older one goes. It
	// returns ErrNotFound if the account does not exist.
	AddFastToken(ctx context.Context, t FastToken) error
	// FastTokens returns the tokens of user's agent, newest first.
	FastTokens(ctx context.Context, user, agent string) ([]FastToken, error)
	// UseFastToken records a login with the token of user's agent whose
	// hash is hash, presenting count. It returns ErrNotFound if there is
	// no such token and ErrReplay, changing nothing, unless count is
	// greater than the token's Count. Using the newest token removes the
	// previous one.
	UseFastToken(ctx context.Context, user, agent string, hash []byte, count uint64) error
	// DeleteFastTokens removes the tokens of user's agent, or of all its
	// agents when agent is "".
	DeleteFastTokens(ctx context.Context, user, agent string) error
}

// PEP access models and send_last_published_item values (XEP-0060 §16.4)
// that the server implements for personal eventing nodes.
const (
	PEPAccessPresence    = "presence"
	PEPAccessOpen        = "open"
	PEPAccessWhitelist   = "whitelist"
	PEPSendLastNever     = "never"
	PEPSendLastOnSub     = "on_sub"
	PEPSendLastOnSubPres = "on_sub_and_presence"
)

// PEPNode is one personal eventing node (XEP-0163) of a user and its
// configuration.
type PEPNode struct {
	// Node is the node's name, unique per owner.
	Node string
	// AccessModel is one of the PEPAccess values.
	AccessModel string
	// MaxItems is how many items the node keeps; 0 means as many as the
	// server allows ("max").
	MaxItems int
	// PersistItems is pubsub#persist_items.
	PersistItems bool
	// SendLast is one of the PEPSendLast values.
	SendLast string
	// NotifyRetract is pubsub#notify_retract.
	NotifyRetract bool
}

// PEPItem is one published item.
type PEPItem struct {
	// ID is unique within the node.
	ID string
	// Publisher is the full JID that published the item.
	Publisher string
	// Payload is the item's single child element, serialized.
	Payload []byte
	// Published is when the item was (last) published.
	Published time.Time
}

// PEP keeps users' personal eventing nodes and their items (XEP-0163).
// Like the roster it does not require the account to exist, and
// DeleteAccount removes it. Items are ordered by publication: publishing
// an id again replaces the item and makes it the newest.
type PEP interface {
	// PEPNodes returns the nodes of owner sorted by name.
	PEPNodes(ctx context.Context, owner string) ([]PEPNode, error)
	// PEPNode returns one node, or ErrNotFound.
	PEPNode(ctx context.Context, owner, node string) (PEPNode, error)
	// PutPEPNode creates the node n.Node or replaces its configuration,
	// keeping its items.
	PutPEPNode(ctx context.Context, owner string, n PEPNode) error
	// DeletePEPNode removes a node and its items, or returns ErrNotFound.
	DeletePEPNode(ctx context.Context, owner, node string) error
	// PublishPEPItem stores it as the newest item of node, then removes
	// the oldest items beyond max (max <= 0: none). It returns ErrNotFound
	// if the node does not exist.
	PublishPEPItem(ctx context.Context, owner, node string, it PEPItem, max int) error
	// PEPItems returns items of node, newest first: those with the given
	// ids if ids is not empty, and at most max of them if max > 0. It
	// returns ErrNotFound if the node does not exist.
	PEPItems(ctx context.Context, owner, node string, ids []string, max int) ([]PEPItem, error)
	// RetractPEPItem removes one item, or returns ErrNotFound.
	RetractPEPItem(ctx context.Context, owner, node, id string) error
	// PurgePEPNode removes every item of node, or returns ErrNotFound if
	// the node does not exist.
	PurgePEPNode(ctx context.Context, owner, node string) error
}

// Store is everything a full backend provides. Consumers should depend on
// the narrowest interface they need, not on Store.
type Store interface {
	Accounts
	Roster
	Offline
	Blocklist
	PrivateData
	Archive
}

// UserDomain returns the domain part of the bare JID user. Backends use it
// to index accounts by domain; it fails with ErrInvalid unless user has the
// form "local@domain" with both parts non-empty and no resource.
func UserDomain(user string) (string, error) {
	local, domain, ok := strings.Cut(user, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(domain, "@/") {
		return "", fmt.Errorf("%w: user %q is not a bare JID with a local part", ErrInvalid, user)
	}
	return domain, nil
}

// CheckCredentials reports an ErrInvalid error if a credential lacks a hash
// name, salt or keys, has a non-positive iteration count, or if two
// credentials name the same hash.
func CheckCredentials(creds []Credential) error {
	seen := make(map[string]bool, len(creds))
	for _, c := range creds {
		switch {
		case c.Hash == "":
			return fmt.Errorf("%w: credential without hash name", ErrInvalid)
		case seen[c.Hash]:
			return fmt.Errorf("%w: duplicate credential for %s", ErrInvalid, c.Hash)
		case c.Iterations <= 0:
			return fmt.Errorf("%w: credential %s: iterations %d", ErrInvalid, c.Hash, c.Iterations)
		case len(c.Salt) == 0 || len(c.StoredKey) == 0 || len(c.ServerKey) == 0:
			return fmt.Errorf("%w: credential %s: empty salt or key", ErrInvalid, c.Hash)
		}
		seen[c.Hash] = true
	}
	return nil
}

// CloneCredential returns a copy of c that shares no memory with it, so
// that a backend's stored value cannot be changed through a returned one.
func CloneCredential(c Credential) Credential {
	c.Salt = slices.Clone(c.Salt)
	c.StoredKey = slices.Clone(c.StoredKey)
	c.ServerKey = slices.Clone(c.ServerKey)
	return c
}

// NormalizeRosterItem returns item in the form backends store: an empty
// subscription becomes "none" and the groups are copied, sorted and
// deduplicated (nil when there are none). It fails with ErrInvalid for an
// empty contact or an unknown subscription state.
func NormalizeRosterItem(item RosterItem) (RosterItem, error) {
	if item.Contact == "" {
		return RosterItem{}, fmt.Errorf("%w: roster item without contact", ErrInvalid)
	}
	switch item.Subscription {
	case "":
		item.Subscription = SubscriptionNone
	case SubscriptionNone, SubscriptionTo, SubscriptionFrom, SubscriptionBoth:
	default:
		return RosterItem{}, fmt.Errorf("%w: roster item %s: subscription %q", ErrInvalid, item.Contact, item.Subscription)
	}
	if len(item.Groups) == 0 {
		item.Groups = nil
		return item, nil
	}
	groups := slices.Clone(item.Groups)
	slices.Sort(groups)
	item.Groups = slices.Compact(groups)
	return item, nil
}
