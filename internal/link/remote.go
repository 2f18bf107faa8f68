package link

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/privilege"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// remote stands in the gateway's router for a (domain, kind) that linked
// services serve. Stanzas go to the instance that owns their user; each
// client session is announced to exactly one instance, its user's owner,
// and announced again when the owner changes.
type remote struct {
	g      *Gateway
	domain string
	kind   string
	rr     router.RoundRobin

	mu    sync.Mutex
	insts []*glink          // linked instances, in the order they bound
	byID  map[string]*glink // linked instances by id
	// ids are the instances users are hashed over: the linked ones, or
	// with a cluster membership, those of the membership at revision rev
	// (linked or not: the users of one not linked wait for it).
	ids    []string
	rev    int64
	byS    map[router.Session]*gsess
	parked []item // events waiting for an instance, in order

	// Sessions whose owner changed are announced to the new owner at most
	// MoveWindow at a time (unacknowledged): an instance handed a dead
	// one's users takes them at its pace, and the events of the users it
	// has, among them credential lookups' logins, are not queued behind
	// all of them. moving holds the sessions to announce, in order (with
	// entries no longer queued skipped), movingOf the queued ones by bare
	// JID: any event for a user first announces the user's queued
	// sessions, so that it follows them as before. The members frame that
	// ends a change waits for the last of them (membersDue).
	moving     []*gsess
	movingOf   map[string][]*gsess
	queued     int
	membersDue bool
	mover      bool          // a goroutine announces the queued sessions
	window     chan struct{} // a slot per announcement in flight; new at every change
	moveStart  time.Time
	moved      int
}

// gsess is a client session of the gateway as the service protocol knows
// it.
type gsess struct {
	id    string
	r     *remote
	s     router.Session
	full  jid.JID
	bare  string
	owner *glink // nil while no instance serves the domain
	// presence is the last broadcast presence of the client, replayed to a
	// new owner so that the user's availability survives a failover.
	presence *xmlstream.Element
	// What the client asked of the session manager that a new owner must
	// know too: carbons (XEP-0280), roster pushes (it fetched the roster),
	// blocklist pushes (it fetched the blocklist).
	carbons, interested, blockPushes bool
	// queued: the owner has not been told of the session yet; it is in
	// r.moving.
	queued bool
}

var (
	_ router.SessionManager = (*remote)(nil)
	_ router.Redeliverer    = (*remote)(nil)
	_ router.ResumeWitness  = (*remote)(nil)
)

// newRemote returns the stand-in of (domain, kind); g.mu is held.
func newRemote(g *Gateway, domain, kind string) *remote {
	rm := &remote{g: g, domain: domain, kind: kind, byS: map[router.Session]*gsess{}, byID: map[string]*glink{}, movingOf: map[string][]*gsess{}}
	if g.membership != nil {
		rm.rev, rm.ids = g.view.Rev, g.view.Instances[router.ServiceKey(kind, domain)]
	}
	return rm
}

// component is what the router holds: a session manager for the sm kind,
// a plain component otherwise, so that clients log in only to domains
// whose service manages sessions.
func (rm *remote) component() router.Component {
	if rm.kind == "sm" {
		return rm
	}
	return plainRemote{rm}
}

type plainRemote struct{ rm *remote }

func (p plainRemote) HandleStanza(ctx context.Context, s router.Stanza) { p.rm.HandleStanza(ctx, s) }

// ownerLocked returns the instance owning key; rm.mu is held.
func (rm *remote) ownerLocked(key string) *glink {
	if !router.Stateful(rm.kind) {
		if len(rm.insts) == 0 {
			return nil
		}
		return rm.insts[rm.rr.Next(len(rm.insts))]
	}
	if len(rm.ids) == 0 {
		return nil
	}
	return rm.byID[rm.ids[router.Owner(key, rm.ids)]]
}

func (rm *remote) owner(key string) *glink {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.ownerLocked(key)
}

// dispatchLocked sends an event to the owner of key, or parks it.
// acked, if not nil, runs once an instance acknowledged the event.
func (rm *remote) dispatchLocked(data []byte, key string, acked func()) {
	rm.promoteLocked(key)
	if gl := rm.ownerLocked(key); gl != nil {
		gl.out.sendAcked(data, key, acked)
		return
	}
	if len(rm.parked) >= rm.g.cfg.ParkLimit {
		rm.g.log.Warn("no instance serves the domain: event dropped", "domain", rm.domain)
		return
	}
	rm.parked = append(rm.parked, item{data: data, user: key, acked: acked})
}

// announceLocked tells the session's owner about it, with the client's
// presence so that the owner knows it as available. A resumable session
// also claims, by its resumption id, the messages given to it so far:
// announced again after a link dropped, the gateway still has them (its
// client gets them, or they go back to the bare JID when the session
// ends), so the owner withdraws the copies it stored when the link
// dropped.
func (rm *remote) announceLocked(gs *gsess, acked func()) {
	if gs.owner == nil {
		if acked != nil {
			acked()
		}
		return
	}
	rid, sent := "", ""
	if r, ok := gs.s.(router.Resumable); ok {
		if id, n := r.Resumption(); id != "" {
			rid, sent = id, strconv.FormatUint(uint64(n), 10)
		}
	}
	gs.owner.out.sendAcked(frame("sbind", gs.presence, "sid", gs.id, "jid", gs.full.String(), "o", rm.g.newOrigin(),
		"carbons", flag(gs.carbons), "interested", flag(gs.interested), "blocklist", flag(gs.blockPushes),
		"id", rid, "h", sent), gs.bare, acked)
}

// ResumeFailed implements router.ResumeWitness: the user's owner learns,
// before any other event of the client (same user, same order), that the
// client of session previd, of a gateway that may have died, had h
// stanzas of it. The owner withdraws the messages it handed on from that
// session that the client had.
func (rm *remote) ResumeFailed(ctx context.Context, user jid.JID, previd string, h uint32) {
	bare := user.BareString()
	data := frame("lost", nil, "jid", bare, "id", previd, "h", strconv.FormatUint(uint64(h), 10), "o", rm.g.newOrigin())
	rm.mu.Lock()
	rm.dispatchLocked(data, bare, nil)
	rm.mu.Unlock()
}

// flag is a boolean attribute, left out when false.
func flag(b bool) string {
	if b {
		return "1"
	}
	return ""
}

// membersLocked tells every instance which instances serve the domain now
// (none: the view is changing), so that an instance can tell the users it
// owns. It goes as a barrier: an instance sees it after every event queued
// for it before, and before every event queued after. With a cluster
// membership it carries the revision of the view, and while the view
// changes (changing) the instances of the view being switched to.
func (rm *remote) membersLocked(changing bool) {
	el := xmlstream.NewElement(NS, "members")
	el.SetAttr("domain", rm.domain)
	el.SetAttr("kind", rm.kind)
	clustered := rm.g.membership != nil
	if clustered {
		el.SetAttr("rev", strconv.FormatInt(rm.rev, 10))
		if changing {
			el.SetAttr("changing", "1")
		}
	}
	if clustered || !changing {
		for _, id := range rm.ids {
			el.AddChild(xmlstream.NewElement(NS, "i")).SetAttr("id", id)
		}
	}
	b := el.AppendXML(nil, NS)
	for _, gl := range rm.insts {
		gl.c.enqueueBarrier(b)
	}
}

// switchLocked moves the sessions whose owner changed and hands the
// events waiting for an instance to their owners, between the two
// members barriers: while sessions move, no instance takes itself for
// the owner of any user, and hands its stanzas to a gateway, which knows.
func (rm *remote) switchLocked() {
	rm.membersDue = false // a change under way ends with this one
	rm.membersLocked(true)
	rm.rebalanceLocked()
	if rm.queued == 0 {
		rm.membersDue = false
		rm.membersLocked(false)
	} else {
		rm.membersDue = true
		rm.window = make(chan struct{}, rm.g.cfg.MoveWindow)
		rm.moveStart, rm.moved = time.Now(), 0
		rm.g.log.Info("sessions to move", "domain", rm.domain, "kind", rm.kind, "sessions", rm.queued)
		if !rm.mover {
			rm.mover = true
			go rm.move()
		}
	}
	parked := rm.parked
	rm.parked = nil
	for _, it := range parked {
		rm.dispatchLocked(it.data, it.user, it.acked)
	}
}

// sentAgain returns the event data marked again='1': the instance it
// went to may have processed it, in part or whole, before it died, and
// the one that gets it now looks for what that left
// (storage.EventAgain). An event marked already (its instance died
// twice) is returned as it is.
func sentAgain(data []byte) []byte {
	end := bytes.IndexByte(data, '>')
	name := bytes.IndexAny(data, " />")
	if len(data) == 0 || data[0] != '<' || end < 0 || name < 0 || bytes.Contains(data[:end], []byte(" again='1'")) {
		return data
	}
	out := make([]byte, 0, len(data)+len(" again='1'"))
	out = append(out, data[:name]...)
	out = append(out, " again='1'"...)
	return append(out, data[name:]...)
}

// join adds a linked instance and moves to it the sessions it now owns.
func (rm *remote) join(gl *glink) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.byID[gl.iid] == gl {
		return
	}
	rm.insts = append(rm.insts, gl)
	rm.byID[gl.iid] = gl
	if rm.g.membership == nil {
		rm.ids = append(rm.ids, gl.iid)
	}
	rm.switchLocked()
}

// leave removes a linked instance; items are the events it did not
// acknowledge, handed to the new owners of their users after the
// sessions are announced to them. With a cluster membership the
// instance's users stay its own, and wait for it, until the membership
// drops it (its lease expires) or it links again.
func (rm *remote) leave(gl *glink, items []item) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.leaveLocked(gl, items)
}

// leaveLocked is leave with rm.mu held.
func (rm *remote) leaveLocked(gl *glink, items []item) {
	for i, x := range rm.insts {
		if x == gl {
			rm.insts = append(rm.insts[:i:i], rm.insts[i+1:]...)
			break
		}
	}
	if rm.byID[gl.iid] == gl {
		delete(rm.byID, gl.iid)
		if rm.g.membership == nil {
			rm.ids = slices.DeleteFunc(slices.Clone(rm.ids), func(id string) bool { return id == gl.iid })
		}
	}
	for _, gs := range rm.byS {
		if gs.owner == gl {
			gs.owner = nil
		}
	}
	rm.switchLocked()
	for _, it := range items {
		if domainOf(it.user) != rm.domain {
			continue
		}
		if announcement(it.data) {
			// Told to the instance that died: the sessions it had are
			// announced again to their owners (above), and one that ended
			// is no one's. Sent on, an old sunbind would end a session
			// its new owner has just been told of.
			if it.acked != nil {
				it.acked()
			}
			continue
		}
		rm.dispatchLocked(sentAgain(it.data), it.user, it.acked)
	}
}

// announcement reports whether an event is an sbind or an sunbind.
func announcement(data []byte) bool {
	return bytes.HasPrefix(data, []byte("<sbind ")) || bytes.HasPrefix(data, []byte("<sunbind "))
}

// setView switches to the instances of a newer cluster membership.
func (rm *remote) setView(rev int64, ids []string) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rev <= rm.rev {
		return
	}
	rm.rev, rm.ids = rev, ids
	rm.switchLocked()
}

// rebalanceLocked moves every session whose owner changed: the former
// owner, if it was told of it, is told it ended, and the session is
// queued to be announced to the new one (see move).
func (rm *remote) rebalanceLocked() {
	for _, gs := range rm.byS {
		want := rm.ownerLocked(gs.bare)
		if want == gs.owner {
			continue
		}
		if gs.owner != nil && !gs.queued {
			gs.owner.out.send(frame("sunbind", nil, "sid", gs.id), gs.bare)
		}
		gs.owner = want
		switch {
		case want == nil && gs.queued:
			rm.unqueueLocked(gs)
		case want != nil && !gs.queued:
			gs.queued = true
			rm.queued++
			rm.moving = append(rm.moving, gs)
			rm.movingOf[gs.bare] = append(rm.movingOf[gs.bare], gs)
		}
	}
}

// unqueueLocked takes gs off the sessions to announce.
func (rm *remote) unqueueLocked(gs *gsess) {
	if !gs.queued {
		return
	}
	gs.queued = false
	rm.queued--
	q := slices.DeleteFunc(rm.movingOf[gs.bare], func(x *gsess) bool { return x == gs })
	if len(q) == 0 {
		delete(rm.movingOf, gs.bare)
	} else {
		rm.movingOf[gs.bare] = q
	}
	if rm.queued == 0 {
		rm.moving = nil
		rm.movedLocked()
	}
}

// promoteLocked announces at once the queued sessions of key (a bare
// JID), ahead of an event for it: the event follows them, as it did
// before they were queued.
func (rm *remote) promoteLocked(key string) {
	q := rm.movingOf[key]
	if len(q) == 0 {
		return
	}
	for _, gs := range slices.Clone(q) {
		rm.moved++
		rm.announceLocked(gs, nil)
		rm.unqueueLocked(gs) // last: the end of a change follows the announcement
	}
}

// movedLocked ends a change once every moved session is announced: the
// instances learn who serves the domain now.
func (rm *remote) movedLocked() {
	if !rm.membersDue {
		return
	}
	rm.membersDue = false
	rm.membersLocked(false)
	rm.g.log.Info("sessions moved", "domain", rm.domain, "kind", rm.kind, "sessions", rm.moved,
		"took", time.Since(rm.moveStart).Round(time.Millisecond).String())
}

// moveDoneLocked drops from the head of the move queue the sessions no
// longer queued (announced on the way by an event of their user, or
// ended) and reports whether none is left, in which case the mover stops.
func (rm *remote) moveDoneLocked() bool {
	for len(rm.moving) > 0 && !rm.moving[0].queued {
		rm.moving[0] = nil
		rm.moving = rm.moving[1:]
	}
	if len(rm.moving) == 0 {
		rm.mover = false
		return true
	}
	return false
}

// move announces the queued sessions to their owners, at most MoveWindow
// unacknowledged at a time. A slot whose announcement is never
// acknowledged (its link dropped: the change that follows makes a new
// window) is taken back after moveWait.
func (rm *remote) move() {
	for {
		rm.mu.Lock()
		if rm.moveDoneLocked() {
			rm.mu.Unlock()
			return
		}
		window := rm.window
		rm.mu.Unlock()
		t := time.NewTimer(rm.g.moveWait)
		select {
		case window <- struct{}{}:
		case <-t.C:
		}
		t.Stop()
		rm.mu.Lock()
		if rm.moveDoneLocked() {
			rm.mu.Unlock()
			return
		}
		gs := rm.moving[0]
		rm.moving[0] = nil
		rm.moving = rm.moving[1:]
		var once sync.Once
		free := func() {
			once.Do(func() {
				select {
				case <-window:
				default:
				}
			})
		}
		rm.moved++
		rm.announceLocked(gs, free)
		rm.unqueueLocked(gs) // last: the end of a change follows the announcement
		rm.mu.Unlock()
	}
}

// domainOf is the domain a key is dispatched in: what follows its last
// '@' (a bridge's keys hold a user's JID before it).
func domainOf(key string) string {
	if i := strings.LastIndexByte(key, '@'); i >= 0 {
		return key[i+1:]
	}
	return key
}

// key is the entity a stanza concerns: the addressee of the domain, or for
// stanzas to the domain itself, the sender; for a bridge, the sender
// when it is a user of another domain.
func (rm *remote) key(s router.Stanza) string {
	if rm.kind == "bridge" && s.From.Local() != "" && s.From.Domain() != rm.domain {
		// A bridge keeps each XMPP user's session on the other network:
		// everything a user sends goes to the instance that owns the user.
		// The key ends with the bridge's domain, as every key ends with
		// the domain it is dispatched in (see domainOf).
		return s.From.BareString() + "@" + rm.domain
	}
	if s.To.Local() != "" && s.To.Domain() == rm.domain {
		return s.To.BareString()
	}
	if s.From.Domain() == rm.domain && s.From.Local() != "" {
		return s.From.BareString()
	}
	return rm.domain
}

// HandleStanza implements router.Component.
func (rm *remote) HandleStanza(ctx context.Context, s router.Stanza) {
	o := originOf(ctx)
	if o == "" {
		o = rm.g.newOrigin()
	}
	data := frame("to", s.El, "o", o, "grant", grantText(s.Grant))
	rm.mu.Lock()
	rm.dispatchLocked(data, rm.key(s), nil)
	rm.mu.Unlock()
}

// grantText is the grant of a privileged entity (XEP-0356) as a <to/>
// event carries it, "" for none.
func grantText(g *privilege.Grant) string {
	if g == nil {
		return ""
	}
	b, _ := g.MarshalText()
	return string(b)
}

// Redeliver implements router.Redeliverer.
func (rm *remote) Redeliver(ctx context.Context, s router.Stanza) {
	data := frame("to", s.El, "o", rm.g.newOrigin(), "redeliver", "1")
	rm.mu.Lock()
	rm.dispatchLocked(data, rm.key(s), nil)
	rm.mu.Unlock()
}

// Bind implements router.SessionManager.
func (rm *remote) Bind(ctx context.Context, s router.Session) error {
	full := s.JID()
	if full.Domain() != rm.domain {
		return errors.New("gateway: session of another domain")
	}
	gs := &gsess{id: stanza.NewID(), r: rm, s: s, full: full, bare: full.BareString()}
	rm.g.mu.Lock()
	rm.g.sessions[gs.id] = gs
	rm.g.mu.Unlock()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.byS[s] = gs
	gs.owner = rm.ownerLocked(gs.bare)
	rm.promoteLocked(gs.bare) // the user's sessions keep their order
	rm.announceLocked(gs, nil)
	return nil
}

// Unbind implements router.SessionManager.
func (rm *remote) Unbind(ctx context.Context, s router.Session) {
	rm.mu.Lock()
	gs := rm.byS[s]
	delete(rm.byS, s)
	switch {
	case gs == nil:
	case gs.queued:
		rm.unqueueLocked(gs) // its owner never heard of it
	case gs.owner != nil:
		gs.owner.out.send(frame("sunbind", nil, "sid", gs.id), gs.bare)
	}
	rm.mu.Unlock()
	if gs != nil {
		rm.g.mu.Lock()
		delete(rm.g.sessions, gs.id)
		rm.g.mu.Unlock()
	}
}

// HandleFromSession implements router.SessionManager.
func (rm *remote) HandleFromSession(ctx context.Context, sess router.Session, s router.Stanza) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	gs := rm.byS[sess]
	if gs == nil {
		return
	}
	if s.El.Local == stanza.Presence && s.To.IsZero() {
		if t := s.El.Attr("type"); t == "" || t == "unavailable" {
			gs.presence = s.El
		}
	}
	if s.El.Local == stanza.IQ {
		gs.noteRequest(s.El)
	}
	data := frame("from", s.El, "sid", gs.id, "o", rm.g.newOrigin())
	// The client's edge acknowledges the stanza once the instance did:
	// a gateway that dies before has not told the client it has it.
	acked := router.Accept(ctx)
	if gs.owner == nil {
		rm.dispatchLocked(data, gs.bare, acked)
		return
	}
	rm.promoteLocked(gs.bare)
	gs.owner.out.sendAcked(data, gs.bare, acked)
}

// noteRequest records the requests of the client that change what the
// session manager does for its session, to tell a new owner after a
// failover. A request the session manager refuses changes nothing there;
// these are never refused to a bound session of the user.
func (gs *gsess) noteRequest(iq *xmlstream.Element) {
	typ := iq.Attr("type")
	for _, c := range iq.Children() {
		switch {
		case typ == "set" && c.Space == nsCarbons && c.Local == "enable":
			gs.carbons = true
		case typ == "set" && c.Space == nsCarbons && c.Local == "disable":
			gs.carbons = false
		case typ == "get" && c.Space == nsRoster && c.Local == "query":
			gs.interested = true
		case typ == "get" && c.Space == nsBlocking && c.Local == "blocklist":
			gs.blockPushes = true
		}
	}
}

// Namespaces of the requests noteRequest records.
const (
	nsCarbons  = "urn:xmpp:carbons:2"
	nsRoster   = "jabber:iq:roster"
	nsBlocking = "urn:xmpp:blocking"
)
