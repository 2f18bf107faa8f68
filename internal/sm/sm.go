package sm

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/mam"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Accounts is what the session manager needs to know of accounts: whether
// a user exists.
type Accounts interface {
	Credential(ctx context.Context, user, hash string) (storage.Credential, error)
}

// Config configures a session manager.
type Config struct {
	// Domain is the domain served.
	Domain string
	// Version is reported through XEP-0092.
	Version string
	// ContactAddresses are the server's contact addresses (XEP-0157) by
	// kind (see ContactKinds), as URIs such as mailto: or xmpp:.
	ContactAddresses map[string][]string
	// OfflineQuota is how many messages are stored per offline user;
	// 0 means DefaultOfflineQuota.
	OfflineQuota int
	// ArchiveRetention is how long archived messages are kept (XEP-0313);
	// 0 keeps them forever.
	ArchiveRetention time.Duration
	// UserInvites lets local users create invitations with the ad-hoc
	// command urn:xmpp:invite#invite (XEP-0401); it needs Deps.Invites.
	UserInvites bool
	// LoadOnLogin loads a user's blocklist and archive preferences when a
	// session of the user comes online, with the roster, rather than at
	// the first message the user sends or receives. A split instance
	// does, whose store reads them ahead as the gateways announce the
	// sessions (package prefetch): a message then waits for no read.
	LoadOnLogin bool
}

// Deps are the session manager's dependencies.
type Deps struct {
	Router   *router.Router
	Accounts Accounts
	Roster   storage.Roster
	// Offline stores messages for users who are away; nil disables it
	// (messages to them are then refused with service-unavailable).
	Offline storage.Offline
	// Blocklist keeps users' blocked JIDs (XEP-0191); nil disables it.
	Blocklist storage.Blocklist
	// Private keeps private XML (XEP-0049) and vCards (XEP-0054); nil
	// disables both.
	Private storage.PrivateData
	// Archive keeps users' message archives (XEP-0313); nil disables
	// archiving and stanza ids.
	Archive storage.Archive
	// PEP keeps users' personal eventing nodes (XEP-0163); nil disables
	// PEP.
	PEP storage.PEP
	// Invites stores the invitations users create (XEP-0401); nil
	// offers no invitation command.
	Invites storage.Invites
	Log     *slog.Logger
	// Metrics receives events for monitoring; nil records nothing.
	Metrics Metrics
	// Observer hears of logins, logouts and roster changes; nil: nobody.
	Observer Observer
	// Hook decides about messages and subscription requests to and from
	// the domain's users before delivery; nil lets everything through.
	Hook router.Hook
}

// SM is the session manager of one domain.
type SM struct {
	cfg    Config
	domain jid.JID
	deps   Deps
	log    *slog.Logger

	started time.Time // for XEP-0012 server uptime

	ids       mam.IDs      // XEP-0313 archive ids
	archiver  *mam.Writer  // batches archive writes; nil without an archive
	lastPurge atomic.Int64 // Unix nanoseconds of the last archive purge
	pushes    pushPending  // XEP-0357 notifications awaiting an answer
	caps      capsState    // XEP-0115 capabilities, for PEP notifications
	ents      entities     // XEP-0356 privileged entities
	resent    resent       // origin-ids of recent messages, to drop a client's resend

	mu    sync.RWMutex
	users map[string]*user // users with at least one session, by bare JID
}

var _ router.SessionManager = (*SM)(nil)

// user is the live state of a user with sessions.
type user struct {
	bare jid.JID

	mu           sync.Mutex
	sessions     []*session
	roster       map[string]*storage.RosterItem // nil while empty
	rosterLoaded bool
	lastStatus   string // status of the last unavailable presence, XEP-0012
	rosterVer    int64  // version of roster, XEP-0237
	// wasOnline: one of the sessions was available since the user came
	// online; only then does the last session's end count as activity.
	wasOnline bool

	// Archiving preferences (XEP-0313), read for every message.
	archPrefs       storage.ArchivePrefs
	archPrefsSet    bool // the user set preferences
	archPrefsLoaded bool
	blocked         []jid.JID // the blocklist, once loaded
	blockLoaded     bool

	// pins counts the operations that keep a user without sessions in
	// the table, such as a privileged entity's roster request (see pin).
	pins int
}

// session is one bound resource.
type session struct {
	s           router.Session
	available   bool
	priority    int
	presence    *xmlstream.Element // last available presence, stamped
	interested  bool               // asked for the roster: receives pushes
	carbons     bool               // enabled XEP-0280 carbons
	blockPushes bool               // asked for the blocklist: receives pushes
	push        *pushReg           // XEP-0357 registration this session enabled
	// directed are the entities the session sent directed available
	// presence to (RFC 6121 §4.6), such as the rooms it joined: they get
	// its unavailable presence when it goes away. nil for most sessions.
	directed []jid.JID
}

// New returns a session manager for cfg.Domain.
func New(cfg Config, d Deps) (*SM, error) {
	dj, err := jid.New("", cfg.Domain, "")
	if err != nil {
		return nil, err
	}
	if d.Router == nil || d.Accounts == nil || d.Roster == nil || d.Log == nil {
		return nil, errors.New("sm: router, accounts, roster and logger are required")
	}
	if cfg.OfflineQuota <= 0 {
		cfg.OfflineQuota = DefaultOfflineQuota
	}
	if d.Metrics == nil {
		d.Metrics = noMetrics{}
	}
	m := &SM{cfg: cfg, domain: dj, deps: d, started: time.Now(), log: d.Log.With("component", "sm", "domain", cfg.Domain), users: make(map[string]*user)}
	if d.Archive != nil {
		m.archiver = mam.NewWriter(d.Archive, m.deps.Metrics.ArchiveWritten, m.log)
	}
	return m, nil
}

// Run registers the session manager with the router and serves until ctx
// is done.
func (m *SM) Run(ctx context.Context) error {
	if err := m.deps.Router.Register(m.domain.Domain(), m); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.purgeLoop(ctx)
	}()
	<-ctx.Done()
	m.deps.Router.Unregister(m.domain.Domain(), m)
	wg.Wait()
	if m.archiver != nil {
		m.archiver.Flush()
	}
	return nil
}

// Bind implements router.SessionManager.
func (m *SM) Bind(ctx context.Context, s router.Session) error {
	full := s.JID()
	if full.Domain() != m.domain.Domain() || full.Resource() == "" {
		return errors.New("sm: session of another domain")
	}
	m.mu.Lock()
	u := m.users[full.BareString()]
	if u == nil {
		u = &user{bare: full.Bare()}
		m.users[full.BareString()] = u
	}
	u.mu.Lock()
	m.mu.Unlock()
	var old *session
	for i, x := range u.sessions {
		if x.s.JID().Resource() == full.Resource() {
			old = x
			u.sessions = append(u.sessions[:i], u.sessions[i+1:]...)
			break
		}
	}
	u.sessions = append(u.sessions, &session{s: s})
	u.mu.Unlock()
	if o := m.deps.Observer; o != nil {
		addr := ""
		if a, ok := s.(router.Addressed); ok {
			addr = a.RemoteAddr()
		}
		o.Login(full, addr)
	}
	if old != nil {
		// RFC 6120 §7.7.2.2: the new session takes the resource over.
		old.s.Close("conflict")
		m.sessionGone(ctx, u, old)
	}
	return nil
}

// Unbind implements router.SessionManager.
func (m *SM) Unbind(ctx context.Context, s router.Session) {
	u := m.user(s.JID().BareString())
	if u == nil {
		return
	}
	u.mu.Lock()
	var gone *session
	for i, x := range u.sessions {
		if x.s == s {
			gone = x
			u.sessions = append(u.sessions[:i], u.sessions[i+1:]...)
			break
		}
	}
	empty := len(u.sessions) == 0
	status := u.lastStatus
	record := empty && gone != nil && u.wasOnline
	if record {
		u.wasOnline = false
	}
	u.mu.Unlock()
	if gone != nil {
		m.sessionGone(ctx, u, gone)
		if o := m.deps.Observer; o != nil {
			o.Logout(s.JID())
		}
	}
	if record {
		m.recordLast(ctx, u, status)
	}
	if empty {
		m.mu.Lock()
		u.mu.Lock()
		if len(u.sessions) == 0 && u.pins == 0 && m.users[u.bare.String()] == u {
			delete(m.users, u.bare.String())
		}
		u.mu.Unlock()
		m.mu.Unlock()
	}
}

func (m *SM) user(bare string) *user {
	m.mu.RLock()
	u := m.users[bare]
	m.mu.RUnlock()
	return u
}

// userExists reports whether an account exists for bare.
func (m *SM) userExists(ctx context.Context, bare jid.JID) bool {
	ok, _ := m.lookupUser(ctx, bare)
	return ok
}

// lookupUser reports whether bare has an account, or an error when the
// account store cannot tell (a database outage), which callers that must
// not take an outage for a missing user tell apart.
func (m *SM) lookupUser(ctx context.Context, bare jid.JID) (bool, error) {
	_, err := m.deps.Accounts.Credential(ctx, bare.String(), "SHA-256")
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	}
	return false, err
}

// HandleFromSession implements router.SessionManager: the outbound side of
// a user's stanza.
func (m *SM) HandleFromSession(ctx context.Context, sess router.Session, s router.Stanza) {
	m.deps.Metrics.StanzaOut(s.El.Local)
	if m.refuseBlocked(ctx, sess, s) {
		return
	}
	switch s.El.Local {
	case stanza.Presence:
		m.outboundPresence(ctx, sess, s)
		return
	case stanza.IQ:
		if s.To.IsZero() || s.To.Equal(s.From.Bare()) {
			m.accountIQ(ctx, sess, s)
			return
		}
	case stanza.Message:
		if s.To.IsZero() {
			s.To = s.From.Bare()
		}
		if forgedWrapper(s.El) {
			replyError(sess, s, stanza.BadRequest, "Only the server sends carbon copies and archive results.")
			return
		}
		if s.El.Attr("type") != "error" && m.resent.seen(s) {
			m.log.Debug("message sent again dropped", "from", s.From.String(), "to", s.To.String(), "id", s.El.Attr("id"))
			return
		}
		var ok bool
		if ctx, s, ok = m.decide(ctx, "message", s); !ok {
			return
		}
		m.sentCarbons(sess, s)
		m.archiveOutgoing(ctx, s)
		defer m.archived()
	}
	if s.To.IsZero() {
		return
	}
	m.deps.Router.Route(ctx, s)
}

// HandleStanza implements router.Component: the inbound side, stanzas
// addressed to this domain or its users.
func (m *SM) HandleStanza(ctx context.Context, s router.Stanza) {
	m.deps.Metrics.StanzaIn(s.El.Local)
	if s.To.Local() == "" {
		m.serverStanza(ctx, s)
		return
	}
	if m.dropBlocked(ctx, s) {
		return
	}
	switch s.El.Local {
	case stanza.Message:
		var ok bool
		if ctx, s, ok = m.decide(ctx, "message", s); !ok {
			return
		}
		m.inboundMessage(ctx, m.stampIncoming(ctx, s))
		m.archived()
	case stanza.Presence:
		if s.El.Attr("type") == "subscribe" {
			var ok bool
			if ctx, s, ok = m.decide(ctx, "subscription", s); !ok {
				return
			}
		}
		m.inboundPresence(ctx, s)
	case stanza.IQ:
		m.inboundIQ(ctx, s)
	}
}

// deliverTo sends el to the session of u bound to full, reporting whether
// there was one.
func (u *user) deliverTo(ctx context.Context, resource string, el *xmlstream.Element) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.deliverToLocked(ctx, resource, el) != nil
}

func (u *user) deliverToLocked(ctx context.Context, resource string, el *xmlstream.Element) *session {
	for _, x := range u.sessions {
		if x.s.JID().Resource() == resource {
			router.Deliver(ctx, x.s, el)
			return x
		}
	}
	return nil
}

func (m *SM) inboundMessage(ctx context.Context, s router.Stanza) {
	typ := s.El.Attr("type")
	u := m.user(s.To.BareString())
	if s.To.Resource() != "" && u != nil {
		u.mu.Lock()
		x := u.deliverToLocked(ctx, s.To.Resource(), s.El)
		var due []pushReg
		if x != nil {
			receivedCarbonsLocked(u, s, []*session{x})
			due = pushDue([]*session{x}, s.El)
		}
		u.mu.Unlock()
		if x != nil {
			m.notify(ctx, u.bare, s.From, due)
			return
		}
	}
	if s.To.Resource() != "" {
		// RFC 6121 §8.5.3.2.1: no such resource.
		switch typ {
		case "groupchat":
			m.deps.Router.Bounce(ctx, s, stanza.ServiceUnavailable, "")
			return
		case "error":
			return
		}
	}
	if typ == "error" {
		return
	}
	if u != nil && typ != "groupchat" {
		u.mu.Lock()
		best := -1 << 30
		for _, x := range u.sessions {
			if x.available && x.priority >= 0 && x.priority > best {
				best = x.priority
			}
		}
		var got []*session
		for _, x := range u.sessions {
			// Headlines go to every non-negative resource, chat and normal
			// to the most preferred ones (RFC 6121 §8.5.2.1).
			if x.available && x.priority >= 0 && (typ == "headline" || x.priority == best) {
				x.s.Deliver(s.El)
				got = append(got, x)
			}
		}
		var due []pushReg
		if len(got) > 0 {
			receivedCarbonsLocked(u, s, got)
			due = pushDue(got, s.El)
		}
		u.mu.Unlock()
		if len(got) > 0 {
			m.notify(ctx, u.bare, s.From, due)
			return
		}
	}
	if typ == "headline" {
		return
	}
	if m.storeOffline(ctx, s) {
		return
	}
	// No resource can take it and it cannot be stored: RFC 6121 §8.5.2.2
	// asks for service-unavailable, as it does for a user that does not
	// exist.
	m.deps.Router.Bounce(ctx, s, stanza.ServiceUnavailable, "")
}

func (m *SM) inboundIQ(ctx context.Context, s router.Stanza) {
	typ := s.El.Attr("type")
	if s.To.Resource() != "" {
		if u := m.user(s.To.BareString()); u != nil && u.deliverTo(ctx, s.To.Resource(), s.El) {
			return
		}
		m.deps.Router.Bounce(ctx, s, stanza.ServiceUnavailable, "")
		return
	}
	if typ != "get" && typ != "set" {
		if !m.privilegedAnswer(ctx, s) {
			m.pushAnswer(ctx, s)
		}
		return
	}
	// Another entity's roster request, or an IQ on the user's behalf:
	// only a privileged entity may (XEP-0356).
	if q := s.El.Child(stanza.NSRoster, "query"); q != nil {
		m.privilegedRoster(ctx, s, q)
		return
	}
	if w := privilegeChild(s.El, "privileged_iq"); w != nil {
		m.privilegedIQ(ctx, s, w)
		return
	}
	// An IQ to a bare JID is answered by the server on the account's behalf.
	if m.lastIQ(ctx, s) || m.publicVCard(ctx, s) {
		return
	}
	if m.deps.PEP != nil && m.userExists(ctx, s.To.Bare()) {
		if r, ok := m.pepIQ(ctx, s.From, s.To.Bare(), s.El); ok {
			m.route(ctx, r)
			return
		}
	}
	if typ == "get" && s.El.Child(stanza.NSDiscoInfo, "query") != nil && m.userExists(ctx, s.To.Bare()) {
		m.route(ctx, m.accountDisco(s.El))
		return
	}
	m.deps.Router.Bounce(ctx, s, stanza.ServiceUnavailable, "")
}

// accountDisco answers a disco#info query to an account's bare JID.
func (m *SM) accountDisco(iq *xmlstream.Element) *xmlstream.Element {
	r := stanza.Result(iq)
	q := r.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "query"))
	id := q.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "identity"))
	id.SetAttr("category", "account")
	id.SetAttr("type", "registered")
	if m.deps.PEP != nil {
		// XEP-0163 §6: the account is a PEP service.
		ps := q.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "identity"))
		ps.SetAttr("category", "pubsub")
		ps.SetAttr("type", "pep")
	}
	for _, f := range m.accountFeatures() {
		q.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "feature")).SetAttr("var", f)
	}
	return r
}

// accountFeatures lists the disco#info features of an account's bare JID,
// which the server answers for.
func (m *SM) accountFeatures() []string {
	fs := []string{stanza.NSDiscoInfo}
	if m.deps.Archive != nil {
		// XEP-0313 §7: the archive is the account's, so is the feature.
		fs = append(fs, nsMAM, nsSID)
	}
	if m.deps.Private != nil {
		// XEP-0357 §6: push is announced on the account.
		fs = append(fs, nsPush)
	}
	if m.deps.PEP != nil {
		fs = append(fs, pepFeatures()...)
	}
	return fs
}

// route sends a stanza the server generated; its to and from are set.
func (m *SM) route(ctx context.Context, el *xmlstream.Element) {
	to, err := jid.Parse(el.Attr("to"))
	if err != nil {
		return
	}
	from, _ := jid.Parse(el.Attr("from"))
	m.deps.Router.Route(ctx, router.Stanza{El: el, From: from, To: to})
}

// reply sends el straight to the session that asked.
func reply(sess router.Session, el *xmlstream.Element) {
	sess.Deliver(el)
}

// replyTo sends r, the answer built from the request s, to the session
// that sent s: from the address s went to, or from none when it went to
// none (RFC 6120 §8.1.2.1), as the server answers for the account.
func replyTo(sess router.Session, s router.Stanza, r *xmlstream.Element) {
	r.RemoveAttr("from")
	if !s.To.IsZero() {
		r.SetAttr("from", s.To.String())
	}
	sess.Deliver(r)
}

// replyError answers the request s with a stanza error.
func replyError(sess router.Session, s router.Stanza, cond, text string) {
	replyTo(sess, s, stanza.ErrorReply(s.El, cond, text))
}

func parsePriority(el *xmlstream.Element) int {
	p := el.Child(el.Space, "priority")
	if p == nil {
		return 0
	}
	n, err := strconv.Atoi(p.Text())
	if err != nil || n < -128 || n > 127 {
		return 0
	}
	return n
}
