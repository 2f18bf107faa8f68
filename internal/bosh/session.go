package bosh

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxPending bounds what waits for a client that sends no request; more
// ends the session, as c2s does for a TCP client that does not read.
const maxPending = 4 << 20

// session is one BOSH session. Requests are processed in the order of
// their rid: one that comes early waits in ahead for the missing ones.
// Processed requests are held, oldest first, until there is something to
// send, their wait passes, or more than hold are held. Lock order:
// feedMu, then mu, then the Handler's mu; the stream's locks may be held
// when Send and End take mu, so mu is never held while calling the
// stream.
type session struct {
	h      *Handler
	sid    string
	stream Stream
	ctype  string
	header []byte // the stream header fed at the start and at restarts

	wait       time.Duration
	hold       int
	requests   int
	inactivity time.Duration
	polling    bool // hold or wait of 0: the client polls
	acks       bool // the client asked for acknowledgements (XEP-0124 §9)

	// feedMu orders the feeding of payloads by rid: it is held from the
	// rid checks to the end of the feeding.
	feedMu sync.Mutex

	mu        sync.Mutex
	next      int64 // the rid expected next
	ahead     map[int64]*pendingReq
	held      []*request
	out       []byte // what waits for a request
	sent      []sentResp
	busy      int           // requests being fed
	pause     time.Duration // the client paused the session (pause)
	ended     bool          // the stream is over: the next answers terminate
	endCond   string
	endErr    []byte
	gone      bool // out of the table
	inact     *time.Timer
	lastEmpty time.Time // of the last empty request of a polling session
}

// request is a processed request waiting for its answer.
type request struct {
	rid   int64
	ch    chan []byte // buffered: the answer never waits for the reader
	timer *time.Timer // its wait
	// report is the rid whose answer the client seems to have missed
	// (XEP-0124 §9.3), sent that long ago; this request is answered at
	// once to say so.
	report    int64
	reportAge time.Duration
}

// pendingReq is a request that came before its turn.
type pendingReq struct {
	req *request
	b   *body
}

// sentResp is an answer kept for a client that asks for it again.
type sentResp struct {
	rid     int64
	payload []byte // nil: an empty answer, made again when asked
	at      time.Time
}

// create opens a session (XEP-0124 §7.1, XEP-0206 §4).
func (h *Handler) create(w http.ResponseWriter, r *http.Request, b *body) {
	addr, secure := h.cfg.Peer(r)
	if !secure && !h.cfg.AllowPlain {
		reply(w, http.StatusOK, "", terminateBody("policy-violation", nil))
		return
	}
	if b.to == "" {
		reply(w, http.StatusOK, "", terminateBody("improper-addressing", nil))
		return
	}
	s := &session{h: h, sid: newSID(), next: b.rid + 1, inactivity: h.cfg.Inactivity}
	if ct := strings.ToLower(b.content); strings.HasPrefix(ct, "text/xml") || strings.HasPrefix(ct, "application/xml") {
		// Only XML: a type of the client's choice (text/html) would make
		// the answers, which carry other users' text, a page.
		s.ctype = b.content
	}
	s.wait = time.Duration(b.wait) * time.Second
	if !b.hasWait || s.wait > h.cfg.MaxWait {
		s.wait = h.cfg.MaxWait
	}
	s.hold = 1
	if b.hasHold {
		s.hold = b.hold
	}
	s.hold = min(s.hold, h.cfg.MaxHold)
	s.requests = s.hold + 1
	s.polling = s.hold == 0 || s.wait == 0
	s.acks = b.hasAck
	s.header = streamHeader(b.to, b.lang)
	// The client's address, a proxy's X-Forwarded-For believed where
	// Peer believes it; with no port there, the port is 0.
	var remote net.Addr
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		remote = net.TCPAddrFromAddrPort(ap)
	} else if a, err := netip.ParseAddr(addr); err == nil {
		remote = net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 0))
	}
	st, err := h.open.Open(context.WithoutCancel(r.Context()), s, remote, secure)
	if err != nil {
		reply(w, http.StatusServiceUnavailable, "", terminateBody("remote-connection-failed", nil))
		return
	}
	s.stream = st
	h.mu.Lock()
	h.sessions[s.sid] = s
	h.mu.Unlock()
	st.Feed(s.header)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		reply(w, http.StatusOK, s.ctype, s.finalLocked())
		return
	}
	out := []byte("<body xmlns='" + NSHTTPBind + "' xmlns:stream='" + nsStream + "' xmlns:xmpp='" + NSXBOSH + "'")
	attr := func(name, value string) {
		out = append(out, ' ')
		out = append(out, name...)
		out = append(out, "='"...)
		out = escapeAttr(out, value)
		out = append(out, '\'')
	}
	secs := func(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }
	attr("sid", s.sid)
	attr("wait", secs(s.wait))
	attr("hold", strconv.Itoa(s.hold))
	attr("requests", strconv.Itoa(s.requests))
	attr("inactivity", secs(s.inactivity))
	attr("maxpause", secs(h.cfg.MaxPause))
	attr("polling", secs(h.cfg.Polling))
	attr("ver", "1.11")
	attr("from", b.to)
	attr("secure", strconv.FormatBool(secure))
	attr("xmpp:version", "1.0")
	attr("xmpp:restartlogic", "true")
	if s.acks {
		attr("ack", strconv.FormatInt(b.rid, 10))
	}
	out = append(out, '>')
	out = append(out, s.out...)
	out = append(out, "</body>"...)
	s.out = nil
	s.armLocked()
	h.log.Debug("session", "sid", s.sid, "to", b.to, "remote", r.RemoteAddr, "wait", s.wait, "hold", s.hold)
	reply(w, http.StatusOK, s.ctype, out)
}

// streamHeader is what the client would send on TCP.
func streamHeader(to, lang string) []byte {
	h := []byte("<stream:stream to='")
	h = escapeAttr(h, to)
	h = append(h, "' xmlns='jabber:client' xmlns:stream='"+nsStream+"' version='1.0'"...)
	if lang != "" {
		h = append(h, " xml:lang='"...)
		h = escapeAttr(h, lang)
		h = append(h, '\'')
	}
	return append(h, '>')
}

// handle processes a request of the session. It returns the answer, or
// the channel the answer comes on.
func (s *session) handle(b *body) ([]byte, chan []byte) {
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return terminateBody("item-not-found", nil), nil
	}
	if s.ended {
		// The stream ended while no request was held: this one takes
		// the news.
		resp := s.finalLocked()
		s.mu.Unlock()
		return resp, nil
	}
	if s.inact != nil {
		s.inact.Stop()
	}
	req := &request{rid: b.rid, ch: make(chan []byte, 1)}
	if b.hasAck && s.acks {
		s.pruneLocked(b.ack)
		for _, r := range s.sent {
			if age := time.Since(r.at); r.rid == b.ack+1 && age >= s.h.reportAfter {
				req.report, req.reportAge = r.rid, age
			}
		}
	}
	switch {
	case b.rid < s.next:
		// A request sent again: its answer was lost or is not ready yet.
		if resp, ok := s.sentLocked(b.rid); ok {
			s.armLocked()
			s.mu.Unlock()
			return resp, nil
		}
		if ch := s.retryLocked(b.rid); ch != nil {
			s.mu.Unlock()
			return nil, ch
		}
		resp := s.terminateLocked("item-not-found")
		s.mu.Unlock()
		return resp, nil
	case b.rid >= s.next+int64(s.requests):
		resp := s.terminateLocked("item-not-found")
		s.mu.Unlock()
		return resp, nil
	case b.rid > s.next:
		if len(s.ahead)+len(s.held) >= s.requests {
			resp := s.terminateLocked("policy-violation")
			s.mu.Unlock()
			return resp, nil
		}
		if s.ahead == nil {
			s.ahead = map[int64]*pendingReq{}
		}
		s.ahead[b.rid] = &pendingReq{req, b}
		s.armLocked()
		s.mu.Unlock()
		return nil, req.ch
	}
	batch := []pendingReq{{req, b}}
	s.next++
	for {
		p, ok := s.ahead[s.next]
		if !ok {
			break
		}
		delete(s.ahead, s.next)
		batch = append(batch, *p)
		s.next++
	}
	now := time.Now()
	s.pause = 0
	for _, p := range batch {
		if p.b.hasPause && time.Duration(p.b.pause)*time.Second > s.h.cfg.MaxPause {
			resp := s.refuseLocked(batch, "policy-violation")
			s.mu.Unlock()
			return resp, nil
		}
		empty := len(bytes.TrimSpace(p.b.payload)) == 0 && !p.b.restart && p.b.typ == "" && !p.b.hasPause
		if s.polling && empty {
			if !s.lastEmpty.IsZero() && now.Sub(s.lastEmpty) < s.h.cfg.Polling {
				resp := s.refuseLocked(batch, "policy-violation")
				s.mu.Unlock()
				return resp, nil
			}
			s.lastEmpty = now
		}
	}
	s.busy++
	s.mu.Unlock()

	alive := true
	for _, p := range batch {
		if p.b.restart && alive {
			alive = s.stream.Feed(s.header)
		}
		if len(p.b.payload) > 0 && alive {
			alive = s.stream.Feed(p.b.payload)
		}
		if p.b.typ == "terminate" && alive {
			s.stream.Feed([]byte("</stream:stream>"))
			alive = false
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.busy--
	for _, p := range batch {
		r := p.req
		if s.wait > 0 && !s.ended {
			r.timer = time.AfterFunc(s.wait, func() { s.waited(r) })
		}
		s.held = append(s.held, r)
		if p.b.hasPause {
			s.pause = time.Duration(p.b.pause) * time.Second
		}
	}
	s.dispatchLocked()
	if req.report != 0 {
		for i, h := range s.held {
			if h == req {
				s.held = append(s.held[:i], s.held[i+1:]...)
				s.answerLocked(req)
				s.armLocked()
				break
			}
		}
	}
	return nil, req.ch
}

// refuseLocked terminates the session for a request of batch, which all
// get the terminal answer; it returns it for the first.
func (s *session) refuseLocked(batch []pendingReq, cond string) []byte {
	resp := s.terminateLocked(cond)
	for _, p := range batch[1:] {
		select {
		case p.req.ch <- resp:
		default:
		}
	}
	return resp
}

// retryLocked gives a request sent again the place of the one that is
// still held or early; the first gets an empty answer, which nobody is
// likely to read.
func (s *session) retryLocked(rid int64) chan []byte {
	var r *request
	for _, h := range s.held {
		if h.rid == rid {
			r = h
		}
	}
	if p := s.ahead[rid]; p != nil {
		r = p.req
	}
	if r == nil {
		return nil
	}
	old := r.ch
	r.ch = make(chan []byte, 1)
	select {
	case old <- s.bodyLocked(rid, nil, nil):
	default:
	}
	return r.ch
}

// dispatchLocked answers the held requests that can be answered.
func (s *session) dispatchLocked() {
	for len(s.held) > 0 && (len(s.out) > 0 || s.ended || s.pause > 0 || s.wait == 0 || len(s.held) > s.hold) {
		r := s.held[0]
		copy(s.held, s.held[1:])
		s.held[len(s.held)-1] = nil
		s.held = s.held[:len(s.held)-1]
		s.answerLocked(r)
	}
	s.armLocked()
}

// answerLocked answers r with what waits.
func (s *session) answerLocked(r *request) {
	if r.timer != nil {
		r.timer.Stop()
	}
	var resp []byte
	if s.ended {
		resp = s.finalLocked()
	} else {
		var extra []byte
		if r.report != 0 {
			extra = fmt.Appendf(nil, " report='%d' time='%d'", r.report, r.reportAge.Milliseconds())
		}
		resp = s.bodyLocked(r.rid, extra, s.out)
		s.rememberLocked(r.rid, s.out)
		s.out = nil
	}
	select {
	case r.ch <- resp:
	default:
	}
}

// finalLocked is the terminal answer: what was left to send, and the
// stream error if any. The session leaves the table.
func (s *session) finalLocked() []byte {
	payload := append(s.out, s.endErr...)
	s.out, s.endErr = nil, nil
	resp := terminateBody(s.endCond, payload)
	s.goneLocked()
	return resp
}

// bodyLocked is an ordinary answer to rid.
func (s *session) bodyLocked(rid int64, extra, payload []byte) []byte {
	b := make([]byte, 0, 120+len(payload))
	b = append(b, "<body xmlns='"+NSHTTPBind+"' xmlns:stream='"+nsStream+"'"...)
	b = append(b, extra...)
	if s.acks && rid < s.next-1 {
		// Not the answer to the latest request: say which that was.
		b = append(b, " ack='"...)
		b = strconv.AppendInt(b, s.next-1, 10)
		b = append(b, '\'')
	}
	if len(payload) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = append(b, payload...)
	return append(b, "</body>"...)
}

// rememberLocked keeps the answer to rid for a retry: the last requests
// answers are kept.
func (s *session) rememberLocked(rid int64, payload []byte) {
	if len(s.sent) >= s.requests {
		copy(s.sent, s.sent[1:])
		s.sent = s.sent[:len(s.sent)-1]
	}
	s.sent = append(s.sent, sentResp{rid: rid, payload: payload, at: time.Now()})
}

func (s *session) sentLocked(rid int64) ([]byte, bool) {
	for _, r := range s.sent {
		if r.rid == rid {
			return s.bodyLocked(rid, nil, r.payload), true
		}
	}
	return nil, false
}

// pruneLocked forgets the answers the client acknowledged.
func (s *session) pruneLocked(ack int64) {
	n := 0
	for _, r := range s.sent {
		if r.rid > ack {
			s.sent[n] = r
			n++
		}
	}
	clear(s.sent[n:])
	s.sent = s.sent[:n]
}

// terminateLocked ends the session with a binding condition (XEP-0124
// §17) and returns the answer for the request that caused it; the held
// requests get it too.
func (s *session) terminateLocked(cond string) []byte {
	wasEnded := s.ended
	s.ended = true
	if !wasEnded {
		s.endCond, s.endErr = cond, nil
		go s.stream.Close("")
	}
	s.dispatchLocked()
	s.goneLocked()
	return terminateBody(cond, nil)
}

// goneLocked takes the session out of the table.
func (s *session) goneLocked() {
	if s.gone {
		return
	}
	s.gone = true
	if s.inact != nil {
		s.inact.Stop()
	}
	// Requests that came before their turn will never have it.
	cond := s.endCond
	if cond == "" {
		cond = "item-not-found"
	}
	for rid, p := range s.ahead {
		delete(s.ahead, rid)
		select {
		case p.req.ch <- terminateBody(cond, nil):
		default:
		}
	}
	s.h.forget(s)
}

// armLocked starts the inactivity timer when no request is held.
func (s *session) armLocked() {
	if s.gone || len(s.held) > 0 || s.busy > 0 {
		return
	}
	d := s.inactivity
	if s.pause > 0 {
		d = s.pause
	}
	if s.inact == nil {
		s.inact = time.AfterFunc(d, s.inactive)
	} else {
		s.inact.Reset(d)
	}
}

// waited answers r, whose wait passed.
func (s *session) waited(r *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, h := range s.held {
		if h == r {
			s.held = append(s.held[:i], s.held[i+1:]...)
			s.answerLocked(r)
			s.armLocked()
			return
		}
	}
}

// inactive ends a session that had no request for too long.
func (s *session) inactive() {
	s.mu.Lock()
	if s.gone || len(s.held) > 0 || s.busy > 0 {
		s.mu.Unlock()
		return
	}
	ended := s.ended
	s.ended = true
	s.goneLocked()
	s.mu.Unlock()
	s.h.log.Debug("inactive", "sid", s.sid)
	if !ended {
		// As when a TCP client vanishes: a resumable session (XEP-0198)
		// waits for its client.
		s.stream.Close("connection-timeout")
	}
}

// Send implements Sink.
func (s *session) Send(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if len(s.out)+len(p) > maxPending {
		s.terminateLocked("policy-violation")
		return
	}
	s.out = append(s.out, p...)
	s.dispatchLocked()
}

// End implements Sink.
func (s *session) End(streamError []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	if streamError != nil {
		s.endCond, s.endErr = "remote-stream-error", bytes.Clone(streamError)
		if bytes.HasPrefix(streamError, []byte("<stream:error><host-unknown")) {
			s.endCond = "host-unknown"
		}
	}
	s.dispatchLocked()
}
