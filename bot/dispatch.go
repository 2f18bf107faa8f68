package bot

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// isResponse reports whether el answers an IQ request.
func isResponse(el *xmlstream.Element) bool {
	t := el.Attr("type")
	return el.Local == stanza.IQ && (t == "result" || t == "error")
}

// incoming takes a stanza the reading goroutine received (counted says
// whether Stream Management counts it) and hands it on without waiting:
// answers to the bot's requests to their waiters, what the bot answers
// itself back out, the rest to the handlers' queues. All of it happens
// under b.mu, so that a stanza is either counted and queued or, once Run
// is stopping, neither.
func (b *Bot) incoming(c *conn, el *xmlstream.Element, counted bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.draining {
		// Not acknowledged: the server keeps it for the next session
		// (or stores it, as for any client that goes away).
		if isResponse(el) {
			b.deliverLocked(el)
		}
		return
	}
	if counted {
		b.inH++
		c.ackDue.Store(true)
	}
	switch el.Local {
	case stanza.IQ:
		if isResponse(el) {
			b.deliverLocked(el)
			return
		}
		b.iqLocked(el)
	case stanza.Message:
		if b.seen.duplicate(el) {
			b.log.Debug("message delivered again, skipped", "from", el.Attr("from"), "id", el.Attr("id"))
			return
		}
		b.enqueueLocked(el)
	case stanza.Presence:
		b.enqueueLocked(el)
	}
}

// deliverLocked hands an IQ answer to the request waiting for it: same
// id, from the address the request went to (RFC 6120 §8.1.2.1: an
// answer about the bot's own account may come without 'from').
func (b *Bot) deliverLocked(el *xmlstream.Element) {
	id := el.Attr("id")
	w := b.waiters[id]
	if w == nil {
		return
	}
	from := el.Attr("from")
	if f, err := jid.Parse(from); err == nil {
		from = f.String()
	}
	ok := from == w.to
	if w.self {
		ok = from == "" || from == b.acct.bare.String() || from == b.session.JID
	}
	if !ok {
		b.log.Debug("IQ answer from the wrong address, ignored", "id", id, "from", from, "want", w.to)
		return
	}
	delete(b.waiters, id)
	w.ch <- el
}

// iqLocked answers what the bot answers itself (ping, service discovery,
// roster pushes), queues requests some handler takes, and refuses the
// rest with service-unavailable.
func (b *Bot) iqLocked(el *xmlstream.Element) {
	var p *xmlstream.Element
	for c := range el.ChildElements {
		p = c
		break
	}
	if p == nil {
		b.queueLocked(stanza.ErrorReply(el, stanza.BadRequest, "an IQ request needs a payload"))
		return
	}
	b.hmu.RLock()
	_, handled := b.onIQ[p.Space]
	json := p.Space == nsJSON && b.onJSON != nil
	b.hmu.RUnlock()
	switch {
	case p.Space == stanza.NSPing && el.Attr("type") == "get" && !handled:
		b.queueLocked(stanza.Result(el))
	case p.Space == stanza.NSDiscoInfo && el.Attr("type") == "get" && p.Attr("node") == "" && !handled:
		b.queueLocked(b.discoInfo(el))
	case p.Space == stanza.NSRoster && el.Attr("type") == "set":
		// A roster push (RFC 6121 §2.1.6): from the bot's own account
		// only.
		from := el.Attr("from")
		if from != "" && Bare(from) != b.acct.bare.String() {
			b.queueLocked(stanza.ErrorReply(el, stanza.ServiceUnavailable, ""))
			return
		}
		b.queueLocked(stanza.Result(el))
	case handled || json:
		b.enqueueLocked(el)
	default:
		b.queueLocked(stanza.ErrorReply(el, stanza.ServiceUnavailable, ""))
	}
}

// discoInfo answers a disco#info request: the bot is an automated client
// (XEP-0030 category client, type bot).
func (b *Bot) discoInfo(el *xmlstream.Element) *xmlstream.Element {
	r := stanza.Result(el)
	r.RemoveAttr("from")
	q := r.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "query"))
	id := q.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "identity"))
	id.SetAttr("category", "client")
	id.SetAttr("type", "bot")
	id.SetAttr("name", "Ambrosia bot")
	features := []string{stanza.NSDiscoInfo, stanza.NSPing}
	b.hmu.RLock()
	if b.onJSON != nil {
		features = append(features, nsJSON)
	}
	for ns := range b.onIQ {
		features = append(features, ns)
	}
	b.hmu.RUnlock()
	slices.Sort(features)
	for _, f := range slices.Compact(features) {
		q.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "feature")).SetAttr("var", f)
	}
	return r
}

// enqueueLocked queues a stanza for the handlers. Stanzas from one sender
// go to one queue, so that its handler sees them in order; a full queue
// bounces the stanza with resource-constraint (a presence is dropped), so
// that reading never waits for a handler.
func (b *Bot) enqueueLocked(el *xmlstream.Element) {
	h := fnv.New32a()
	h.Write([]byte(Bare(el.Attr("from"))))
	q := b.queues[int(h.Sum32()%uint32(len(b.queues)))]
	select {
	case q <- el:
		return
	default:
	}
	b.log.Warn("handlers busy: stanza refused", "stanza", el.Local, "from", el.Attr("from"))
	if el.Local != stanza.Presence && stanza.MayBounce(el) {
		b.queueLocked(stanza.ErrorReply(el, stanza.ResourceConstraint, "the bot is busy, try again later"))
	}
}

// work runs handlers for the stanzas of one queue until it is closed.
func (b *Bot) work(ctx context.Context, q <-chan *xmlstream.Element) {
	for el := range q {
		b.handle(ctx, el)
	}
}

// handle runs the handler of one stanza. A handler that panics is
// logged, and an IQ it was answering gets internal-server-error.
func (b *Bot) handle(ctx context.Context, el *xmlstream.Element) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("handler panicked", "stanza", el.Local, "from", el.Attr("from"), "panic", r, "stack", string(debug.Stack()))
			if stanza.IsRequest(el) {
				_ = b.send(ctx, stanza.ErrorReply(el, stanza.InternalServerError, ""))
			}
		}
	}()
	b.hmu.RLock()
	onMessage, onPresence, onSub, onJSON := b.onMessage, b.onPresence, b.onSub, b.onJSON
	b.hmu.RUnlock()
	switch el.Local {
	case stanza.Message:
		m := readMessage(el)
		if m.JSON != nil && onJSON != nil && m.Type != "error" && m.Type != "groupchat" {
			b.answerJSON(ctx, el, onJSON, m.From, m.JSON)
			return
		}
		if onMessage != nil {
			onMessage(ctx, m)
		}
	case stanza.Presence:
		p := readPresence(el)
		if p.Type == "subscribe" {
			if onSub != nil {
				onSub(ctx, &SubscriptionRequest{From: Bare(p.From), Status: p.Status, b: b})
			}
			return
		}
		if onPresence != nil {
			onPresence(ctx, p)
		}
	case stanza.IQ:
		b.answerIQ(ctx, el, onJSON)
	}
}

// answerIQ runs the handler of an IQ request and sends its answer.
func (b *Bot) answerIQ(ctx context.Context, el *xmlstream.Element, onJSON JSONHandler) {
	iq := readIQ(el)
	if data, ok := jsonOf(el.Child(nsJSON, "json")); ok && onJSON != nil && iq.Payload.Space == nsJSON {
		b.answerJSON(ctx, el, onJSON, iq.From, data)
		return
	}
	b.hmu.RLock()
	h := b.onIQ[iq.Payload.Space]
	b.hmu.RUnlock()
	if h == nil {
		b.reply(ctx, stanza.ErrorReply(el, stanza.ServiceUnavailable, ""))
		return
	}
	result, err := h(ctx, iq)
	if err != nil {
		b.reply(ctx, b.errorReply(el, err))
		return
	}
	r := stanza.Result(el)
	r.RemoveAttr("from")
	if strings.TrimSpace(result) != "" {
		p, perr := parsePayload(Payload{XML: result})
		if perr != nil {
			b.log.Error("IQ handler returned bad XML", "namespace", iq.Payload.Space, "err", perr)
			b.reply(ctx, stanza.ErrorReply(el, stanza.InternalServerError, ""))
			return
		}
		r.AddChild(p)
	}
	b.reply(ctx, r)
}

// answerJSON runs the JSON handler for el and sends its answer.
func (b *Bot) answerJSON(ctx context.Context, el *xmlstream.Element, h JSONHandler, from string, data []byte) {
	reply, err := h(ctx, from, data)
	if err != nil {
		b.reply(ctx, b.errorReply(el, err))
		return
	}
	if reply == nil {
		if stanza.IsRequest(el) {
			r := stanza.Result(el)
			r.RemoveAttr("from")
			b.reply(ctx, r)
		}
		return
	}
	r, err := replyJSON(el, reply)
	if err != nil {
		b.log.Error("JSON handler returned a reply that is not JSON", "err", err)
		b.reply(ctx, stanza.ErrorReply(el, stanza.InternalServerError, ""))
		return
	}
	b.reply(ctx, r)
}

// errorReply is the error answering el for a handler's err.
func (b *Bot) errorReply(el *xmlstream.Element, err error) *xmlstream.Element {
	var xe *Error
	if !errors.As(err, &xe) {
		b.log.Error("handler failed", "stanza", el.Local, "from", el.Attr("from"), "err", err)
		xe = &Error{Condition: stanza.InternalServerError}
	}
	r := xmlstream.NewElement(nsClient, el.Local)
	if id := el.Attr("id"); id != "" {
		r.SetAttr("id", id)
	}
	r.SetAttr("to", el.Attr("from"))
	r.SetAttr("type", "error")
	for c := range el.ChildElements {
		if c.Local != "error" {
			r.AddChild(c.ShallowCopy())
		}
	}
	r.AddChild(errorElement(xe))
	return r
}

// reply sends an answer from a handler.
func (b *Bot) reply(ctx context.Context, el *xmlstream.Element) {
	if el.Attr("from") != "" {
		el.RemoveAttr("from")
	}
	if err := b.send(ctx, el); err != nil {
		b.log.Warn("answer not sent", "to", el.Attr("to"), "err", err)
	}
}

// seenSet remembers the latest message ids per sender, to recognize a
// message the server delivers again: after a session could not be
// resumed, a server may store the messages the bot had received but not
// acknowledged and deliver them again from offline storage, marked with
// a delay (XEP-0203). Only such marked messages are checked, so that a
// client that reuses ids loses nothing.
type seenSet struct {
	ring [512]string
	next int
	set  map[string]struct{}
}

// duplicate records el and reports whether it was seen before.
func (s *seenSet) duplicate(el *xmlstream.Element) bool {
	id := el.Attr("id")
	if id == "" {
		return false
	}
	key := fmt.Sprintf("%s\x00%s", Bare(el.Attr("from")), id)
	if _, ok := s.set[key]; ok {
		return el.Child(nsDelay, "delay") != nil
	}
	if s.set == nil {
		s.set = make(map[string]struct{}, len(s.ring))
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.set, old)
	}
	s.ring[s.next] = key
	s.next = (s.next + 1) % len(s.ring)
	s.set[key] = struct{}{}
	return false
}
