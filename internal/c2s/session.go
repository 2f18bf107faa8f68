package c2s

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// nsSM is Stream Management (XEP-0198).
const nsSM = "urn:xmpp:sm:3"

// When the server asks the client to acknowledge what it received: once
// that many stanzas wait for an acknowledgement, or once the oldest has
// waited that long. One timer per session, armed when the queue stops
// being empty, keeps the second rule cheap. With a threshold of one an
// <r/> follows a write whenever none is unanswered (as ejabberd does): a
// busy session has one in flight per round trip, and what its client
// received is known within a round trip, so that little is delivered
// again from offline storage when the gateway dies.
const (
	smRequestThreshold = 1
	smRequestDelay     = 30 * time.Second
)

// session is a bound resource as the session manager sees it: the
// router.Session it holds. It is split from the connection (the transport)
// so that it can outlive one: with XEP-0198 resumption a session whose
// connection dropped stays bound, "detached", and a later connection of
// the same user takes it over, while the session manager keeps seeing the
// same object.
//
// Every stanza for the client goes through Deliver under mu, which also
// guards the Stream Management counters and queue, so that the numbering
// of stanzas matches the order in which they reach the transport. Lock
// order: session.mu, then conn.wmu, then outConn.mu.
type session struct {
	srv  *Server
	ns   string // the default namespace stanzas are written against (conn.streamNS)
	full jid.JID
	addr net.Addr // of the client that bound the session
	sm   router.SessionManager
	// maxUnacked is the bound on unacknowledged stanzas when the session
	// was bound: a reload that lowers it does not end this session.
	maxUnacked int

	mu      sync.Mutex
	cur     *conn         // the transport; nil while detached
	closing bool          // the session must end, not detach, when its transport goes
	ending  bool          // being unbound: no longer resumable
	ended   bool          // unbound: deliveries are dropped
	done    chan struct{} // closed once ended and the queue re-routed

	// XEP-0198 state, meaningful once enabled.
	enabled   bool
	resumable bool
	id        string // resumption id, "" if not resumable
	inbound   uint32 // stanzas received from the client
	// accepted counts the stanzas received that are safe, all up to it:
	// what <a/> tells the client. A stanza stays above it while the
	// session manager holds it where it could lose it (router.Accept: in
	// flight to a service), so that a gateway that dies has not told the
	// client it has it. holds counts the holds of those.
	accepted  uint32
	holds     map[uint32]int
	acked     uint32 // h of the last acknowledgement from the client
	unacked   []unacked
	acks      []func() // done functions of acknowledged stanzas, run outside mu (see runAcks)
	requested bool     // an <r/> is out and unanswered
	ackTimer  *time.Timer
	ackArmed  bool
	gen       uint64      // counts detachments, so that a stale expiry does nothing
	expiry    *time.Timer // ends a detached session

	// While Bind 2 (XEP-0386) readies the session, before <success/> is
	// out: what arrives for the client waits in early, and the result of
	// the carbons request made for the client is dropped (bind2.go).
	attaching bool
	early     [][]byte
	swallow   string // id of that request
}

// unacked is a stanza sent to the client and not acknowledged yet; its
// sequence number is its position after session.acked.
type unacked struct {
	data    []byte
	message bool   // re-routed when the session ends without delivering it
	done    func() // see DeliverAcked; nil for Deliver
}

func newSession(c *conn, full jid.JID) *session {
	var addr net.Addr = c.raw.RemoteAddr()
	if c.ws != nil && c.ws.peer != "" {
		addr = peerAddr(c.ws.peer)
	}
	return &session{srv: c.srv, ns: c.streamNS(), full: full, sm: c.sm, cur: c, addr: addr, maxUnacked: c.srv.limits().SMMaxQueue}
}

// peerAddr is a client address a trusted proxy named.
type peerAddr string

func (a peerAddr) Network() string { return "tcp" }
func (a peerAddr) String() string  { return string(a) }

// JID implements router.Session.
func (s *session) JID() jid.JID { return s.full }

// RemoteAddr implements router.Addressed: the address of the client that
// bound the session.
func (s *session) RemoteAddr() string {
	if s.addr == nil {
		return ""
	}
	return s.addr.String()
}

// Deliver implements router.Session: the stanza is serialized and written
// to the current transport at once, without waiting for the client (see
// outConn). Once Stream Management is enabled it is also kept until the
// client acknowledges it, detached or not.
func (s *session) Deliver(el *xmlstream.Element) { s.deliver(el, bulkWrite{}, nil) }

// DeliverBulk implements router.BulkSession: like Deliver, but the socket
// write is left to the server's flushers (see flusher), after b's release.
func (s *session) DeliverBulk(el *xmlstream.Element, b *router.Batch) {
	s.deliver(el, bulkWrite{on: true, batch: b}, nil)
}

// DeliverAcked is DeliverBulk without a batch, reporting when the stanza
// is off the edge's hands: done runs once the client acknowledged it
// (XEP-0198), or the session ended and it was re-routed (messages) or
// dropped, or at once when Stream Management is off (there is nothing
// to wait for). It returns false, without running done, when the session
// has ended already and the stanza was not taken. A gateway acknowledges
// a delivery to its service only then, so that the service sends again
// what a dead gateway never got to its client.
func (s *session) DeliverAcked(el *xmlstream.Element, done func()) bool {
	taken, held, _ := s.deliver(el, bulkWrite{on: true}, done)
	if taken && !held {
		done()
	}
	return taken
}

// DeliverCounted is DeliverAcked with the write held until b's release,
// reporting the stanza's place in the stream: id is the session's
// resumption id and n the stanza's Stream Management sequence number,
// the count a client that got it includes in its h (XEP-0198). id is ""
// when the session is not resumable. A gateway tells its service n
// before it lets the write go, so that the service knows which messages
// a client had, by the h of a resumption that failed after the gateway
// died (router.ResumeWitness).
func (s *session) DeliverCounted(el *xmlstream.Element, b *router.Batch, done func()) (taken bool, id string, n uint32) {
	taken, held, n := s.deliver(el, bulkWrite{on: true, batch: b}, done)
	if taken && !held {
		done()
	}
	if !held {
		return taken, "", 0
	}
	s.mu.Lock()
	id = s.id
	s.mu.Unlock()
	return taken, id, n
}

// Resumption implements router.Resumable: the session's resumption id,
// "" if it has none, and how many stanzas it was given for its client
// since Stream Management was enabled, written or queued.
func (s *session) Resumption() (id string, sent uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled || s.ended {
		return "", 0
	}
	return s.id, s.acked + uint32(len(s.unacked))
}

// deliver queues el for the client; it reports whether the session took
// it, whether done is kept until the client acknowledges it, and then the
// stanza's Stream Management sequence number.
func (s *session) deliver(el *xmlstream.Element, bulk bulkWrite, done func()) (taken, held bool, n uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false, false, 0
	}
	if s.swallow != "" && el.Local == stanza.IQ && el.Attr("id") == s.swallow {
		s.swallow = ""
		return true, false, 0
	}
	if !s.enabled {
		if s.cur != nil {
			s.cur.deliver(el, bulk)
		} else if s.attaching {
			s.early = append(s.early, el.AppendXML(nil, s.ns))
		}
		return true, false, 0
	}
	b := el.AppendXML(nil, s.ns)
	s.unacked = append(s.unacked, unacked{data: b, message: el.Local == stanza.Message && el.Attr("type") != "error", done: done})
	held = done != nil
	n = s.acked + uint32(len(s.unacked))
	if len(s.unacked) > s.maxUnacked && !s.closing {
		// The client acknowledges nothing: the queue would grow without end.
		s.closing = true
		s.srv.deps.metrics().LimitHit("c2s", "too many unacknowledged stanzas")
		s.srv.log.Info("session ended by a limit", "jid", s.full.String(), "remote", s.RemoteAddr(), "reason", "too many unacknowledged stanzas", "max", s.maxUnacked)
		if c := s.cur; c != nil {
			go c.closeStream("policy-violation", "too many unacknowledged stanzas", "")
		} else {
			go s.end()
		}
	}
	if s.cur == nil {
		return true, held, n
	}
	written := s.cur.deliverBytes(el, b, bulk)
	if written && !s.requested && len(s.unacked) >= smRequestThreshold {
		s.requestLocked()
	}
	if !s.ackArmed {
		s.ackArmed = true
		if s.ackTimer == nil {
			s.ackTimer = time.AfterFunc(smRequestDelay, s.ackDue)
		} else {
			s.ackTimer.Reset(smRequestDelay)
		}
	}
	return true, held, n
}

// runAcks runs the done functions of the stanzas acknowledged so far;
// s.mu must not be held: they may take locks of their own.
func (s *session) runAcks() {
	s.mu.Lock()
	acks := s.acks
	s.acks = nil
	s.mu.Unlock()
	for _, f := range acks {
		f()
	}
}

// requestLocked asks the client for an acknowledgement; s.mu is held.
func (s *session) requestLocked() {
	if s.cur != nil && s.cur.write([]byte("<r xmlns='"+nsSM+"'/>")) == nil {
		s.requested = true
	}
}

// ackDue asks for an acknowledgement of stanzas that waited too long.
func (s *session) ackDue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ackArmed = false
	if len(s.unacked) > 0 && !s.requested && !s.ended {
		s.requestLocked()
	}
}

// Detached implements router.Detachable: the session waits for a
// resumption, with nobody reading what it is given.
func (s *session) Detached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur == nil && !s.ended
}

// Close implements router.Session: the session ends (it is not resumable
// afterwards) and its transport, if any, gets the stream error.
func (s *session) Close(condition string) { s.CloseText(condition, "") }

// CloseText implements router.TextCloser: Close, with text in the stream
// error.
func (s *session) CloseText(condition, text string) {
	s.mu.Lock()
	s.closing = true
	c := s.cur
	s.mu.Unlock()
	if c != nil {
		c.CloseText(condition, text)
		return
	}
	go s.end()
}

// received counts a stanza the client of c sent; it reports false when c
// is no longer the session's transport (another connection resumed the
// session) and the stanza must be ignored.
func (s *session) received(c *conn) (ok bool, n uint32, counted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != c {
		return false, 0, false
	}
	if !s.enabled {
		return true, 0, false
	}
	s.inbound++
	if s.holds == nil {
		s.holds = map[uint32]int{}
	}
	s.holds[s.inbound] = 1 // released once handed over (see accept)
	return true, s.inbound, true
}

// accept returns ctx for handing the stanza numbered n to the session
// manager, which may hold it (router.Accept).
func (s *session) accept(ctx context.Context, n uint32) context.Context {
	return router.WithAccept(ctx, func() func() {
		s.mu.Lock()
		s.holds[n]++
		s.mu.Unlock()
		return func() { s.release(n) }
	})
}

// release drops a hold of the stanza numbered n.
func (s *session) release(n uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holds[n]--; s.holds[n] <= 0 {
		delete(s.holds, n)
	}
	for s.accepted != s.inbound {
		if _, held := s.holds[s.accepted+1]; held {
			break
		}
		s.accepted++
	}
}

// transportGone is called once c, the session's transport or a former
// one, is closed. A resumable session whose connection dropped is
// detached and waits for a resumption; any other ends.
func (s *session) transportGone(c *conn, clean bool) {
	s.mu.Lock()
	if s.cur != c {
		s.mu.Unlock()
		return
	}
	s.cur = nil
	if clean || s.closing || !s.resumable {
		s.mu.Unlock()
		s.end()
		return
	}
	s.gen++
	gen := s.gen
	s.expiry = time.AfterFunc(s.srv.cfg.ResumeTimeout, func() { s.expire(gen) })
	s.mu.Unlock()
}

// expire ends a session left detached for ResumeTimeout.
func (s *session) expire(gen uint64) {
	s.mu.Lock()
	stale := s.cur != nil || s.gen != gen || s.ending
	s.mu.Unlock()
	if !stale {
		s.end()
	}
}

// end unbinds the session and re-routes the messages the client did not
// acknowledge to the user's bare JID, where the session manager gives them
// to another resource or to offline storage. Unbinding comes first so that
// none of them comes back to this session; stanzas delivered meanwhile
// are still queued, and re-routed too.
func (s *session) end() {
	s.mu.Lock()
	if s.ending {
		done := s.done
		s.mu.Unlock()
		// Another goroutine ends it: wait, so that Shutdown returns only
		// once every message is where it belongs.
		<-done
		return
	}
	s.ending = true
	s.done = make(chan struct{})
	s.srv.releaseSession(s)
	s.srv.deps.metrics().SessionEnded()
	s.srv.log.Info("logout", "jid", s.full.String(), "remote", s.addr.String())
	if s.expiry != nil {
		s.expiry.Stop()
	}
	if s.ackTimer != nil {
		s.ackTimer.Stop()
	}
	s.mu.Unlock()
	ctx := context.Background()
	s.sm.Unbind(ctx, s)
	s.mu.Lock()
	s.ended = true
	q := s.unacked
	s.unacked = nil
	s.mu.Unlock()
	s.reroute(ctx, q)
	s.runAcks()
	for _, u := range q {
		if u.done != nil {
			u.done()
		}
	}
	if s.id != "" {
		s.srv.forgetResumable(s.id, s)
	}
	close(s.done)
}

// reroute hands unacknowledged messages back to the session manager as
// stanzas for the user's bare JID.
func (s *session) reroute(ctx context.Context, q []unacked) {
	bare := s.full.Bare()
	for _, u := range q {
		if !u.message {
			continue
		}
		el, err := parseOwn(u.data)
		if err != nil {
			s.srv.log.Error("unacknowledged stanza unreadable, dropped", "jid", s.full.String(), "err", err)
			continue
		}
		from, err := jid.Parse(el.Attr("from"))
		if err != nil {
			continue
		}
		el.SetAttr("to", bare.String())
		st := router.Stanza{El: el, From: from, To: bare}
		if r, ok := s.sm.(router.Redeliverer); ok {
			r.Redeliver(ctx, st)
			continue
		}
		s.srv.deps.Router.Route(ctx, st)
	}
}

// parseOwn reads back a stanza the server serialized itself.
func parseOwn(b []byte) (*xmlstream.Element, error) {
	return xmlstream.ParseStanza(b, xmlstream.NSClient)
}

// handleSM handles a Stream Management nonza of a bound session.
func (c *conn) handleSM(el *xmlstream.Element) bool {
	s := c.sess
	switch el.Local {
	case "enable":
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.enabled || s.cur != c {
			return c.write([]byte(smFailed("unexpected-request", ""))) == nil
		}
		return c.write([]byte(s.enableLocked(el))) == nil
	case "r":
		s.mu.Lock()
		h, ok := s.accepted, s.enabled
		s.mu.Unlock()
		if !ok {
			return true
		}
		return c.write([]byte("<a xmlns='"+nsSM+"' h='"+strconv.FormatUint(uint64(h), 10)+"'/>")) == nil
	case "a":
		h, err := strconv.ParseUint(el.Attr("h"), 10, 32)
		if err != nil {
			c.fail("bad-format", "h must be a number")
			return false
		}
		s.mu.Lock()
		if !s.enabled {
			s.mu.Unlock()
			return true
		}
		if err := s.ackLocked(uint32(h)); err != "" {
			s.mu.Unlock()
			c.closeStream("undefined-condition", "", err)
			return false
		}
		s.requested = false
		s.mu.Unlock()
		s.runAcks()
		return true
	case "resume":
		return c.write([]byte(smFailed("unexpected-request", ""))) == nil
	}
	c.fail("unsupported-stanza-type", "")
	return false
}

// enableLocked turns Stream Management on as the <enable/> el asks and
// returns the <enabled/> answer; s.mu is held.
func (s *session) enableLocked(el *xmlstream.Element) string {
	s.enabled = true
	a := "<enabled xmlns='" + nsSM + "'"
	if r := el.Attr("resume"); (r == "true" || r == "1") && s.srv.cfg.ResumeTimeout > 0 {
		s.resumable = true
		s.id = stanza.NewID() + stanza.NewID()
		s.srv.addResumable(s.id, s)
		a += " id='" + s.id + "' resume='true' max='" + strconv.Itoa(int(s.srv.cfg.ResumeTimeout/time.Second)) + "'"
	}
	return a + "/>"
}

// ackLocked drops what the client acknowledged with h; s.mu is held. It
// returns the handled-count-too-high element if h counts stanzas never
// sent.
func (s *session) ackLocked(h uint32) string {
	n := h - s.acked // sequence numbers wrap at 2^32 (XEP-0198 §4)
	if int64(n) > int64(len(s.unacked)) {
		sent := s.acked + uint32(len(s.unacked))
		return "<handled-count-too-high xmlns='" + nsSM + "' h='" + strconv.FormatUint(uint64(h), 10) + "' send-count='" + strconv.FormatUint(uint64(sent), 10) + "'/>"
	}
	for _, u := range s.unacked[:n] {
		if u.done != nil {
			s.acks = append(s.acks, u.done)
		}
	}
	clear(s.unacked[:n])
	s.unacked = s.unacked[n:]
	if len(s.unacked) == 0 {
		s.unacked = nil
	}
	s.acked = h
	return ""
}

func smFailed(condition, h string, extra ...string) string {
	f := "<failed xmlns='" + nsSM + "'"
	if h != "" {
		f += " h='" + h + "'"
	}
	f += "><" + condition + " xmlns='" + stanza.NSStanzas + "'/>"
	for _, x := range extra {
		f += x
	}
	return f + "</failed>"
}

// handleSMUnbound handles a Stream Management nonza before a resource is
// bound: a resumption, or an early enable.
func (c *conn) handleSMUnbound(ctx context.Context, el *xmlstream.Element) bool {
	if el.Local != "resume" {
		if el.Local == "enable" {
			return c.write([]byte(smFailed("unexpected-request", ""))) == nil
		}
		c.fail("not-authorized", "bind a resource first")
		return false
	}
	failed, resumed, err := c.resume(el.Attr("previd"), el.Attr("h"), func(r string) []byte { return []byte(r) })
	if !resumed {
		return c.write([]byte(failed)) == nil
	}
	return err == nil
}

// resume takes the session previd over for c after the client said it
// handled h stanzas. On success the session's queued stanzas follow what
// answer makes of the <resumed/> element, in one write under the session
// lock (SASL2 wraps it in <success/>), and err is that write's. Otherwise
// it returns the <failed/> element for the client.
func (c *conn) resume(previd, hs string, answer func(resumed string) []byte) (failed string, resumed bool, err error) {
	s := c.srv.resumable(previd)
	h, err := strconv.ParseUint(hs, 10, 32)
	if s == nil && err == nil && previd != "" {
		// Not a session of this server: in a split server, maybe one of
		// a gateway that died. What its client had is told to the session
		// manager before anything else this client does (router.ResumeWitness).
		if w, ok := c.sm.(router.ResumeWitness); ok {
			w.ResumeFailed(context.Background(), c.user.Bare(), previd, uint32(h))
		}
	}
	if s == nil || err != nil || !s.full.Bare().Equal(c.user.Bare()) {
		return smFailed("item-not-found", ""), false, nil
	}
	s.mu.Lock()
	if s.ending || s.closing || !s.resumable {
		s.mu.Unlock()
		return smFailed("item-not-found", ""), false, nil
	}
	inbound := strconv.FormatUint(uint64(s.inbound), 10)
	if tooHigh := s.ackLocked(uint32(h)); tooHigh != "" {
		// The client claims stanzas it cannot have: resuming would lose or
		// duplicate some. The session ends and its messages are re-routed.
		s.closing = true
		old := s.cur
		s.mu.Unlock()
		s.runAcks()
		if old != nil {
			old.Close("undefined-condition")
		} else {
			s.end()
		}
		return smFailed("undefined-condition", inbound, tooHigh), false, nil
	}
	old := s.cur
	s.gen++ // a pending expiry is stale now
	if s.expiry != nil {
		s.expiry.Stop()
	}
	s.cur, c.sess, c.full = c, s, s.full
	s.requested = false
	out := answer("<resumed xmlns='" + nsSM + "' previd='" + s.id + "' h='" + inbound + "'/>")
	for _, u := range s.unacked {
		out = append(out, u.data...)
	}
	err = c.write(out)
	s.mu.Unlock()
	s.runAcks()
	if old != nil {
		// The old connection is still there, half dead: it loses the
		// session to the new one.
		old.Close("conflict")
	}
	c.srv.log.Debug("resumed", "jid", s.full.String())
	c.bound()
	return "", true, err
}

// addResumable makes s findable by its resumption id.
func (srv *Server) addResumable(id string, s *session) {
	srv.smu.Lock()
	srv.sessions[id] = s
	srv.smu.Unlock()
}

func (srv *Server) forgetResumable(id string, s *session) {
	srv.smu.Lock()
	if srv.sessions[id] == s {
		delete(srv.sessions, id)
	}
	srv.smu.Unlock()
}

func (srv *Server) resumable(id string) *session {
	if id == "" {
		return nil
	}
	srv.smu.Lock()
	defer srv.smu.Unlock()
	return srv.sessions[id]
}

// endDetached ends every resumable session, at shutdown once no
// connection is left: their messages go to offline storage.
func (srv *Server) endDetached() {
	srv.smu.Lock()
	ss := make([]*session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		ss = append(ss, s)
	}
	srv.smu.Unlock()
	for _, s := range ss {
		s.end()
	}
}
