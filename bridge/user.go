package bridge

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge/internal/store"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
)

// loginTimeout bounds one login to the network.
const loginTimeout = 60 * time.Second

// maxPending bounds the operations waiting for one user's worker: past
// it, the user is sending faster than the network takes.
const maxPending = 1000

// errNotRegistered is a Transport user without credentials.
var errNotRegistered = errors.New("bridge: not registered")

// user is an XMPP user of the bridge: their session on the network, the
// operations waiting for it, and which of their resources are online.
type user struct {
	b      *Bridge
	jid    jid.JID // bare
	events *userEvents

	mu       sync.Mutex
	sess     Session
	gen      uint64        // numbers the logins, whose Events tell their sessions apart
	sessGen  uint64        // the login of sess
	loginGen uint64        // the login under way
	dropped  bool          // the login under way reported its session ended already
	logging  bool          // a login is under way
	loggedIn chan struct{} // closed when the login under way ends
	loginErr error
	retry    time.Duration // the wait before the next login after a failure
	relogin  *time.Timer
	online   map[string]bool // the user's available resources (Transport)
	// seen is the last presence of each user of the network who is not
	// offline, as the network reported it to this user: what a probe is
	// answered with (a client that connects probes its contacts).
	seen    map[UserID]presenceSeen
	pending []func(context.Context)
	working bool
	tokens  float64 // rate limit toward the network
	filled  time.Time
	gone    bool // logged out for good (unregistered, or the bridge stops)
}

// user returns the state of an XMPP user, made on first use.
func (b *Bridge) user(bare jid.JID) *user {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := bare.String()
	u := b.users[k]
	if u == nil {
		u = &user{b: b, jid: bare, online: map[string]bool{}, tokens: float64(b.cfg.RateBurst), filled: time.Now()}
		u.events = &userEvents{u: u}
		b.users[k] = u
	}
	return u
}

// do queues an operation for the user's worker, which runs them one after
// the other: what a user sends reaches the network in order, and a slow
// network never holds up the goroutine that routed the stanza. It
// reports false when too much waits already.
func (u *user) do(op func(context.Context)) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.pending) >= maxPending {
		return false
	}
	u.pending = append(u.pending, op)
	if !u.working {
		u.working = true
		go u.work()
	}
	return true
}

// work runs the queued operations and ends when there are none.
func (u *user) work() {
	for {
		u.mu.Lock()
		if len(u.pending) == 0 {
			u.working = false
			u.mu.Unlock()
			return
		}
		op := u.pending[0]
		u.pending[0] = nil
		u.pending = u.pending[1:]
		u.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
		op(ctx)
		cancel()
	}
}

// allow applies the rate limit toward the network.
func (u *user) allow() bool {
	c := u.b.cfg
	if c.RateLimit <= 0 {
		return true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	u.tokens = min(float64(c.RateBurst), u.tokens+now.Sub(u.filled).Seconds()*c.RateLimit)
	u.filled = now
	if u.tokens < 1 {
		return false
	}
	u.tokens--
	return true
}

// session returns the user's session, logging in first if needed; it
// runs on the user's worker.
func (u *user) session(ctx context.Context) (Session, error) {
	u.mu.Lock()
	if u.sess != nil {
		s := u.sess
		u.mu.Unlock()
		return s, nil
	}
	if u.gone {
		u.mu.Unlock()
		return nil, ErrUnavailable
	}
	if u.logging {
		ch := u.loggedIn
		u.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ErrTimeout
		}
		u.mu.Lock()
		s, err := u.sess, u.loginErr
		u.mu.Unlock()
		if s == nil && err == nil {
			err = ErrUnavailable
		}
		return s, err
	}
	u.logging = true
	u.loggedIn = make(chan struct{})
	ev := u.newEventsLocked()
	u.loginGen = ev.gen
	u.dropped = false
	u.mu.Unlock()
	s, err := u.login(ctx, ev)
	u.mu.Lock()
	u.logging = false
	dead := err == nil && u.dropped
	if dead {
		// The session ended while its login returned: it is not the
		// user's; the bridge logs in again, as after any end.
		err = ErrUnavailable
	}
	u.loginErr = err
	close(u.loggedIn)
	if err == nil {
		u.sess, u.sessGen = s, ev.gen
		u.retry = 0
	}
	u.mu.Unlock()
	if dead {
		go func() { _ = s.Logout(context.Background()) }()
		u.disconnected(nil, err)
		return nil, err
	}
	if err == nil {
		u.afterLogin(ctx, s)
	}
	return s, err
}

// newEventsLocked returns the Events of a new login; u.mu is held.
func (u *user) newEventsLocked() *userEvents {
	u.gen++
	return &userEvents{u: u, gen: u.gen}
}

// login opens a session on the network, reporting to ev.
func (u *user) login(ctx context.Context, ev *userEvents) (Session, error) {
	acct := Account{JID: u.jid.String(), Contacts: u.b.contactsOf(ctx, u.jid)}
	if u.b.desc.Mode == Transport {
		creds, err := u.b.st.Registration(ctx, acct.JID)
		if store.IsNotFound(err) {
			return nil, errNotRegistered
		}
		if err != nil {
			return nil, err
		}
		acct.Credentials = creds
	}
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	s, err := u.b.net.Login(ctx, acct, ev)
	if err != nil {
		u.b.log.Info("login failed", "user", acct.JID, "err", err)
		return nil, err
	}
	u.b.log.Info("logged in", "user", acct.JID)
	u.b.mu.Lock()
	if u.b.sample == nil {
		u.b.sample = s
	}
	u.b.mu.Unlock()
	return s, nil
}

// contactsOf lists the contacts the bridge put in a user's roster, for
// Account.Contacts.
func (b *Bridge) contactsOf(ctx context.Context, user jid.JID) []UserID {
	cs, err := b.st.Contacts(ctx, user.String())
	if err != nil {
		b.log.Warn("contact list", "user", user.String(), "err", err)
		return nil
	}
	ids := make([]UserID, len(cs))
	for i, c := range cs {
		ids[i] = UserID(c)
	}
	return ids
}

// afterLogin puts the user's contacts in their roster.
func (u *user) afterLogin(ctx context.Context, s Session) {
	if cl, ok := s.(ContactLister); ok {
		cs, err := cl.Contacts(ctx)
		if err != nil {
			u.b.log.Warn("contact list", "user", u.jid.String(), "err", err)
			return
		}
		for _, c := range cs {
			u.events.contact(ctx, c)
		}
	}
}

// logout ends the user's session, if any.
func (u *user) logout(ctx context.Context, why string) {
	u.mu.Lock()
	s := u.sess
	u.sess = nil
	if u.relogin != nil {
		u.relogin.Stop()
		u.relogin = nil
	}
	u.mu.Unlock()
	if s == nil {
		return
	}
	if err := s.Logout(ctx); err != nil {
		u.b.log.Debug("logout", "user", u.jid.String(), "err", err)
	}
	u.b.log.Info("logged out", "user", u.jid.String(), "why", why)
	u.b.leftAllRooms(u)
}

// disconnected handles a session that ended on its own: log in again,
// waiting longer after each failure, while the user still wants it.
func (u *user) disconnected(s Session, err error) {
	u.mu.Lock()
	if u.sess != s && u.sess != nil {
		u.mu.Unlock()
		return // an older session
	}
	u.sess = nil
	wants := !u.gone && (u.b.desc.Mode != Transport || len(u.online) > 0)
	if u.retry == 0 {
		u.retry = time.Duration(u.b.cfg.ReloginMin)
	} else {
		u.retry = min(2*u.retry, time.Duration(u.b.cfg.ReloginMax))
	}
	wait := u.retry
	if wants && u.relogin == nil {
		u.relogin = time.AfterFunc(wait, func() {
			u.mu.Lock()
			u.relogin = nil
			u.mu.Unlock()
			u.do(func(ctx context.Context) {
				if _, err := u.session(ctx); err != nil {
					u.disconnected(nil, err)
				}
			})
		})
	}
	seen := u.seen
	u.seen = nil
	u.mu.Unlock()
	u.b.log.Info("session ended", "user", u.jid.String(), "err", err, "relogin_in", wait, "relogin", wants)
	u.b.leftAllRooms(u)
	u.b.contactsGone(u, seen)
}

// presenceSeen is what a presence of the network leaves in memory: the
// avatar is kept once per user of the network, by the bridge.
type presenceSeen struct {
	show   Show
	status string
}

// notePresence records the presence of a user of the network, as this
// user sees it.
func (u *user) notePresence(id UserID, p Presence) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if p.Offline {
		delete(u.seen, id)
		return
	}
	if u.seen == nil {
		u.seen = map[UserID]presenceSeen{}
	}
	u.seen[id] = presenceSeen{show: p.Show, status: p.Status}
}

// lastPresence is the presence of a user of the network last reported to
// this user: offline if none, or since the session ended.
func (u *user) lastPresence(id UserID) Presence {
	u.mu.Lock()
	defer u.mu.Unlock()
	ps, ok := u.seen[id]
	if !ok {
		return Presence{Offline: true}
	}
	return Presence{Show: ps.show, Status: ps.status}
}
