package bot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// ErrClosed is returned by the methods that send once Run has returned.
var ErrClosed = errors.New("bot: stopped")

// An IQHandler answers an IQ request (get or set) whose payload is in the
// namespace it was registered for. It returns the result's payload as
// XML ("" for an empty result), or an error: an *Error is sent as it is,
// anything else as internal-server-error.
type IQHandler func(ctx context.Context, iq *IQ) (result string, err error)

// Bot is one account logged in to an XMPP server. Register handlers with
// the On methods, then call Run; the methods that send may be called
// from any goroutine, before Run too (what they send waits for the
// connection).
type Bot struct {
	acct  *account
	log   *slog.Logger
	agent string // the SASL2 user-agent id

	hmu        sync.RWMutex
	onMessage  func(context.Context, *Message)
	onPresence func(context.Context, *Presence)
	onSub      func(context.Context, *SubscriptionRequest)
	onJSON     JSONHandler
	onIQ       map[string]IQHandler
	onSession  func(context.Context, Session)

	started atomic.Bool
	wake    chan struct{} // the writer has work

	mu sync.Mutex
	// Stanzas to write, and stanzas written in the Stream Management
	// session but not acknowledged by the server yet; acked is the
	// server's last count, inH the count of stanzas received.
	pending, unacked [][]byte
	acked, inH       uint32
	smID             string // the session to resume, "" if none
	connected        bool
	session          Session
	presence         *xmlstream.Element // sent at the start of every session
	waiters          map[string]*iqWaiter
	queues           []chan *xmlstream.Element
	draining         bool          // Run is stopping: no more events for handlers
	stopped          bool          // Run has returned
	room             chan struct{} // closed when the queue shrinks
	seen             seenSet
	redirect         string // see-other-host address for the next connection
}

// New checks cfg and returns a bot; log receives what happens (nil
// means slog.Default()).
func New(cfg Config, log *slog.Logger) (*Bot, error) {
	a, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	b := &Bot{
		acct:     a,
		log:      log.With("jid", a.bare.String()),
		agent:    agentID(a.bare.String(), a.Resource),
		onIQ:     make(map[string]IQHandler),
		wake:     make(chan struct{}, 1),
		presence: presenceElement("", "", 0),
		waiters:  make(map[string]*iqWaiter),
		room:     make(chan struct{}),
	}
	b.queues = make([]chan *xmlstream.Element, a.Workers)
	for i := range b.queues {
		b.queues[i] = make(chan *xmlstream.Element, a.QueueLength)
	}
	return b, nil
}

// agentID is the user-agent id of SASL2 (XEP-0388), in the form of a
// UUID: the same for every start of the same bot, so that the server
// recognizes it (its FAST token, its Bind 2 resource).
func agentID(bare, resource string) string {
	h := sha256.Sum256([]byte("ambrosia bot\x00" + bare + "\x00" + resource))
	h[6] = h[6]&0x0f | 0x50 // version 5 (name-based)
	h[8] = h[8]&0x3f | 0x80 // RFC 4122 variant
	s := hex.EncodeToString(h[:16])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// OnMessage sets the handler of messages (those a JSON handler does not
// take, see OnJSON), errors included.
func (b *Bot) OnMessage(h func(ctx context.Context, m *Message)) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	b.onMessage = h
}

// OnPresence sets the handler of presence: contacts coming and going,
// and subscription changes other than requests.
func (b *Bot) OnPresence(h func(ctx context.Context, p *Presence)) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	b.onPresence = h
}

// OnSubscription sets the handler of subscription requests: someone asks
// to see the bot's presence, which adds them to the bot's roster. The
// handler approves or denies; a request it leaves unanswered, or that
// arrives without a handler, stays pending, and the server presents it
// again at the next login.
func (b *Bot) OnSubscription(h func(ctx context.Context, r *SubscriptionRequest)) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	b.onSub = h
}

// OnIQ sets the handler of IQ requests whose payload is in namespace; nil
// removes it. Requests nobody handles are answered service-unavailable;
// the bot answers pings (XEP-0199) and service discovery (XEP-0030)
// itself, and lists the namespaces handled here in its features.
func (b *Bot) OnIQ(namespace string, h IQHandler) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	if h == nil {
		delete(b.onIQ, namespace)
		return
	}
	b.onIQ[namespace] = h
}

// OnJSON sets the handler of JSON containers (XEP-0335) in messages
// (other than group chat messages and errors) and in IQ requests;
// messages it takes do not reach OnMessage. HandleJSON makes one that
// decodes into a type of the program's.
func (b *Bot) OnJSON(h JSONHandler) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	b.onJSON = h
}

// OnSession sets a function called after every login with how it went;
// it runs on a goroutine of its own.
func (b *Bot) OnSession(h func(ctx context.Context, s Session)) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	b.onSession = h
}

// Session returns how the bot is logged in, and false while it is not.
func (b *Bot) Session() (Session, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.session, b.connected
}

// Send sends a chat message with body to the JID to.
func (b *Bot) Send(ctx context.Context, to, body string) error {
	return b.SendMessage(ctx, &Message{To: to, Type: "chat", Body: body})
}

// SendJSON sends v in a JSON container (XEP-0335) in a chat message to
// the JID to. v is marshaled with encoding/json, unless it is a
// json.RawMessage or a []byte holding JSON.
func (b *Bot) SendJSON(ctx context.Context, to string, v any) error {
	raw, err := marshalJSON(v)
	if err != nil {
		return err
	}
	return b.SendMessage(ctx, &Message{To: to, Type: "chat", JSON: raw})
}

// SendMessage sends m; From is ignored (the server sets it).
//
// It returns once the message is queued: it waits only while the queue
// is full (Config.MaxQueued). While the bot is disconnected, queued
// stanzas wait for the next connection; with Stream Management they are
// sent again after a connection drops until the server acknowledges
// them (see the package documentation).
func (b *Bot) SendMessage(ctx context.Context, m *Message) error {
	el, err := m.element()
	if err != nil {
		return err
	}
	return b.send(ctx, el)
}

// SetPresence makes the bot available with show (away, chat, dnd, xa, or
// "") and a status text. The bot sends its presence at the start of every
// session; this changes it and sends it now.
func (b *Bot) SetPresence(ctx context.Context, show, status string) error {
	switch show {
	case "", "away", "chat", "dnd", "xa":
	default:
		return fmt.Errorf("bot: show %q is not away, chat, dnd, xa or empty", show)
	}
	p := presenceElement(show, status, 0)
	b.mu.Lock()
	b.presence = p
	b.mu.Unlock()
	return b.send(ctx, p)
}

// SendIQ sends an IQ request of type typ (get or set) with payload (XML)
// to the JID to ("" for the bot's own account, served by its server) and
// waits for the answer. An error answer is returned as an *Error.
func (b *Bot) SendIQ(ctx context.Context, to, typ, payload string) (*IQ, error) {
	if typ != "get" && typ != "set" {
		return nil, fmt.Errorf("bot: IQ type %q is not get or set", typ)
	}
	el := xmlstream.NewElement(nsClient, stanza.IQ)
	el.SetAttr("type", typ)
	id := stanza.NewID()
	el.SetAttr("id", id)
	w := &iqWaiter{ch: make(chan *xmlstream.Element, 1)}
	if to != "" {
		j, err := jid.Parse(to)
		if err != nil {
			return nil, fmt.Errorf("bot: to %q: %w", to, err)
		}
		el.SetAttr("to", j.String())
		w.to = j.String()
	}
	w.self = to == "" || w.to == b.acct.bare.String()
	if payload != "" {
		p, err := parsePayload(Payload{XML: payload})
		if err != nil {
			return nil, err
		}
		el.AddChild(p)
	}
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	b.waiters[id] = w
	b.mu.Unlock()
	forget := func() {
		b.mu.Lock()
		delete(b.waiters, id)
		b.mu.Unlock()
	}
	if err := b.send(ctx, el); err != nil {
		forget()
		return nil, err
	}
	select {
	case res := <-w.ch:
		if res == nil {
			return nil, ErrClosed
		}
		iq := readIQ(res)
		if iq.Type == "error" {
			return iq, iq.Error
		}
		return iq, nil
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
}

// iqWaiter waits for the answer to an IQ request sent to to (normalized;
// self when to is the bot's account).
type iqWaiter struct {
	to   string
	self bool
	ch   chan *xmlstream.Element // nil is sent when the bot stops
}

// send queues a stanza, waiting while the queue is full.
func (b *Bot) send(ctx context.Context, el *xmlstream.Element) error {
	data := el.AppendXML(nil, nsClient)
	b.mu.Lock()
	for {
		if b.stopped {
			b.mu.Unlock()
			return ErrClosed
		}
		if len(b.pending)+len(b.unacked) < b.acct.MaxQueued {
			b.pending = append(b.pending, data)
			b.mu.Unlock()
			b.signal()
			return nil
		}
		room := b.room
		b.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
		b.mu.Lock()
	}
}

// queueLocked queues a stanza the bot sends on its own (answers, bounces)
// without waiting: the reading goroutine must never wait. b.mu is held.
func (b *Bot) queueLocked(el *xmlstream.Element) {
	if b.stopped {
		return
	}
	el.RemoveAttr("from")
	b.pending = append(b.pending, el.AppendXML(nil, nsClient))
}

// signal wakes the writer.
func (b *Bot) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// freedLocked wakes whoever waits for room in the queue. b.mu is held.
func (b *Bot) freedLocked() {
	close(b.room)
	b.room = make(chan struct{})
}

// SubscriptionRequest is someone asking to see the bot's presence.
type SubscriptionRequest struct {
	// From is the bare JID of who asks.
	From string
	// Status is the text that came with the request, if any.
	Status string

	b *Bot
}

// Approve accepts the request: From sees the bot's presence from now on.
func (r *SubscriptionRequest) Approve(ctx context.Context) error {
	return r.b.sendPresence(ctx, r.From, "subscribed")
}

// Deny refuses the request.
func (r *SubscriptionRequest) Deny(ctx context.Context) error {
	return r.b.sendPresence(ctx, r.From, "unsubscribed")
}

// sendPresence sends a directed presence of type typ.
func (b *Bot) sendPresence(ctx context.Context, to, typ string) error {
	j, err := jid.Parse(to)
	if err != nil {
		return fmt.Errorf("bot: %q: %w", to, err)
	}
	el := xmlstream.NewElement(nsClient, stanza.Presence)
	el.SetAttr("to", j.String())
	el.SetAttr("type", typ)
	return b.send(ctx, el)
}

// replyJSON builds the answer carrying reply to a JSON request el.
func replyJSON(el *xmlstream.Element, reply any) (*xmlstream.Element, error) {
	raw, err := marshalJSON(reply)
	if err != nil {
		return nil, err
	}
	c, err := jsonElement(raw)
	if err != nil {
		return nil, err
	}
	var r *xmlstream.Element
	if el.Local == stanza.IQ {
		r = stanza.Result(el)
		r.RemoveAttr("from")
	} else {
		r = xmlstream.NewElement(nsClient, stanza.Message)
		r.SetAttr("to", el.Attr("from"))
		if t := el.Attr("type"); t != "" && t != "normal" {
			r.SetAttr("type", t)
		}
		r.SetAttr("id", stanza.NewID())
		if th := el.Child(el.Space, "thread"); th != nil {
			r.AddChild(xmlstream.NewElement(nsClient, "thread")).AddText(th.Text())
		}
	}
	r.AddChild(c)
	return r, nil
}
