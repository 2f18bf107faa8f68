package sm

import (
	"context"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Push Notifications (XEP-0357). A client registers an app server (a push
// service's XMPP address and node) and the server publishes a notification
// there whenever a message reaches the user while the client cannot take
// it: the client's session is detached, waiting for a stream-management
// resumption, or the user has no session and the message goes to offline
// storage. The notification carries no body, as Prosody and ejabberd do by
// default: it passes through the phone vendor's push network.
const (
	nsPush        = "urn:xmpp:push:0"
	nsPushSummary = "urn:xmpp:push:summary"
	nsPubsubPush  = "http://jabber.org/protocol/pubsub"
	// pushKey is where a user's registrations are kept among their private
	// documents; private XML storage refuses the namespace, so a client
	// cannot read or forge them there.
	pushKey = reservedPrefix + "push"
	// maxPushRegistrations bounds the registrations of one account; a new
	// one beyond it replaces the oldest (a phone reinstalled many times
	// leaves stale ones behind).
	maxPushRegistrations = 16
	// pushAnswerWait is how long an app server's answer is awaited; an
	// answer after it is ignored.
	pushAnswerWait = 2 * time.Minute
	// maxPendingPushes bounds the notifications awaiting an answer.
	maxPendingPushes = 10000
)

// pushReg is one app-server registration (XEP-0357 §5).
type pushReg struct {
	jid     jid.JID
	node    string
	options *xmlstream.Element // publish-options form, nil if none
}

func (r pushReg) same(o pushReg) bool { return r.jid.Equal(o.jid) && r.node == o.node }

// pushPending remembers the notifications sent and not yet answered, so
// that an app server's error can disable the registration and an answer
// from anybody else is ignored.
type pushPending struct {
	mu   sync.Mutex
	byID map[string]pushSent
}

type pushSent struct {
	owner string // bare JID of the user
	reg   pushReg
	at    time.Time
}

func (p *pushPending) add(id string, s pushSent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byID == nil {
		p.byID = make(map[string]pushSent)
	}
	if len(p.byID) >= maxPendingPushes {
		for k, v := range p.byID {
			if s.at.Sub(v.at) > pushAnswerWait {
				delete(p.byID, k)
			}
		}
		if len(p.byID) >= maxPendingPushes {
			return // an app server that never answers cannot fill memory
		}
	}
	p.byID[id] = s
}

// take returns and forgets the notification that s answers. Only an answer
// from the very address notified, with its id and of type result or
// error, counts (a matching id alone is not an answer).
func (p *pushPending) take(s router.Stanza) (pushSent, bool) {
	typ := s.El.Attr("type")
	if typ != "result" && typ != "error" {
		return pushSent{}, false
	}
	id := s.El.Attr("id")
	p.mu.Lock()
	defer p.mu.Unlock()
	sent, ok := p.byID[id]
	if !ok || !sent.reg.jid.Equal(s.From) || sent.owner != s.To.BareString() || s.To.Resource() != "" {
		return pushSent{}, false
	}
	delete(p.byID, id)
	return sent, time.Since(sent.at) <= pushAnswerWait
}

// pushIQ handles enable and disable from a user's session; it reports
// whether el was one.
func (m *SM) pushIQ(ctx context.Context, sess router.Session, s router.Stanza) bool {
	en := s.El.Child(nsPush, "enable")
	dis := s.El.Child(nsPush, "disable")
	if en == nil && dis == nil {
		return false
	}
	if s.El.Attr("type") != "set" {
		replyError(sess, s, stanza.BadRequest, "")
		return true
	}
	if m.deps.Private == nil {
		replyError(sess, s, stanza.ServiceUnavailable, "")
		return true
	}
	cmd := en
	if cmd == nil {
		cmd = dis
	}
	to, err := jid.Parse(cmd.Attr("jid"))
	if err != nil {
		replyError(sess, s, stanza.BadRequest, "The push service's address is missing or invalid.")
		return true
	}
	reg := pushReg{jid: to, node: cmd.Attr("node")}
	owner := s.From.BareString()
	regs := m.pushRegs(ctx, owner)
	if en != nil {
		if x := en.Child(nsXData, "x"); x != nil {
			if x.Attr("type") != "submit" {
				replyError(sess, s, stanza.BadRequest, "Publish options must be a submitted form.")
				return true
			}
			reg.options = x
		}
		regs = removeRegs(regs, func(r pushReg) bool { return r.same(reg) })
		regs = append(regs, reg)
		if len(regs) > maxPushRegistrations {
			regs = regs[len(regs)-maxPushRegistrations:]
		}
	} else {
		// Without a node, every registration with that service goes.
		regs = removeRegs(regs, func(r pushReg) bool { return r.jid.Equal(to) && (reg.node == "" || r.node == reg.node) })
	}
	if !m.savePushRegs(ctx, owner, regs) {
		replyError(sess, s, stanza.InternalServerError, "")
		return true
	}
	if u := m.user(owner); u != nil {
		u.mu.Lock()
		for _, x := range u.sessions {
			if x.s != sess {
				continue
			}
			if en != nil {
				r := reg
				x.push = &r
			} else if x.push != nil && x.push.jid.Equal(to) && (reg.node == "" || x.push.node == reg.node) {
				x.push = nil
			}
		}
		u.mu.Unlock()
	}
	replyTo(sess, s, stanza.Result(s.El))
	return true
}

func removeRegs(regs []pushReg, drop func(pushReg) bool) []pushReg {
	out := regs[:0]
	for _, r := range regs {
		if !drop(r) {
			out = append(out, r)
		}
	}
	return out
}

// pushRegs loads the registrations of owner.
func (m *SM) pushRegs(ctx context.Context, owner string) []pushReg {
	if m.deps.Private == nil {
		return nil
	}
	doc := m.loadXML(ctx, owner, pushKey, nil)
	if doc == nil {
		return nil
	}
	var regs []pushReg
	for _, c := range doc.Children() {
		if c.Local != "reg" {
			continue
		}
		j, err := jid.Parse(c.Attr("jid"))
		if err != nil {
			continue
		}
		regs = append(regs, pushReg{jid: j, node: c.Attr("node"), options: c.Child(nsXData, "x")})
	}
	return regs
}

// savePushRegs stores the registrations of owner, reporting success.
func (m *SM) savePushRegs(ctx context.Context, owner string, regs []pushReg) bool {
	doc := xmlstream.NewElement(pushKey, "push")
	for _, r := range regs {
		c := doc.AddChild(xmlstream.NewElement(pushKey, "reg"))
		c.SetAttr("jid", r.jid.String())
		if r.node != "" {
			c.SetAttr("node", r.node)
		}
		if r.options != nil {
			c.AddChild(r.options)
		}
	}
	if err := m.deps.Private.SetPrivateXML(ctx, owner, pushKey, doc.AppendXML(nil, "")); err != nil {
		m.log.Error("push registrations save", "user", owner, "err", err)
		return false
	}
	return true
}

// pushDue lists the registrations to notify of msg, which was just given to
// the sessions got of u: those whose client is away with a detached session.
// u.mu is held.
func pushDue(got []*session, msg *xmlstream.Element) []pushReg {
	var regs []pushReg
	for _, x := range got {
		if x.push == nil {
			continue
		}
		if d, ok := x.s.(router.Detachable); ok && d.Detached() && storable(msg) {
			regs = append(regs, *x.push)
		}
	}
	return regs
}

// notify publishes a notification of a message from sender to each
// registration of owner (XEP-0357 §7).
func (m *SM) notify(ctx context.Context, owner, sender jid.JID, regs []pushReg) {
	for _, r := range regs {
		iq := xmlstream.NewElement(xmlstream.NSClient, stanza.IQ)
		id := stanza.NewID()
		iq.SetAttr("type", "set")
		iq.SetAttr("id", id)
		iq.SetAttr("from", owner.String())
		iq.SetAttr("to", r.jid.String())
		ps := iq.AddChild(xmlstream.NewElement(nsPubsubPush, "pubsub"))
		pub := ps.AddChild(xmlstream.NewElement(nsPubsubPush, "publish"))
		pub.SetAttr("node", r.node)
		form := pub.AddChild(xmlstream.NewElement(nsPubsubPush, "item")).
			AddChild(xmlstream.NewElement(nsPush, "notification")).
			AddChild(xmlstream.NewElement(nsXData, "x"))
		form.SetAttr("type", "form")
		field := func(v, val string) {
			f := form.AddChild(xmlstream.NewElement(nsXData, "field"))
			f.SetAttr("var", v)
			f.AddChild(xmlstream.NewElement(nsXData, "value")).AddText(val)
		}
		field("FORM_TYPE", nsPushSummary)
		field("message-count", "1")
		field("last-message-sender", sender.String())
		if r.options != nil {
			ps.AddChild(xmlstream.NewElement(nsPubsubPush, "publish-options")).AddChild(r.options)
		}
		m.pushes.add(id, pushSent{owner: owner.String(), reg: r, at: time.Now()})
		m.deps.Router.Route(ctx, router.Stanza{El: iq, From: owner, To: r.jid})
	}
}

// pushAnswer takes an app server's answer to a notification; it reports
// whether s was one. An error other than a temporary one disables the
// registration, as the app server no longer knows it (XEP-0357 §8).
func (m *SM) pushAnswer(ctx context.Context, s router.Stanza) bool {
	if s.El.Local != stanza.IQ {
		return false
	}
	sent, ok := m.pushes.take(s)
	if !ok {
		return false
	}
	if s.El.Attr("type") != "error" {
		return true
	}
	if e := s.El.Child(s.El.Space, "error"); e != nil && e.Attr("type") == "wait" {
		return true
	}
	m.log.Info("push registration disabled by the app server", "user", sent.owner, "service", sent.reg.jid.String())
	regs := m.pushRegs(ctx, sent.owner)
	m.savePushRegs(ctx, sent.owner, removeRegs(regs, func(r pushReg) bool { return r.same(sent.reg) }))
	if u := m.user(sent.owner); u != nil {
		u.mu.Lock()
		for _, x := range u.sessions {
			if x.push != nil && x.push.same(sent.reg) {
				x.push = nil
			}
		}
		u.mu.Unlock()
	}
	return true
}

// Redeliver implements router.Redeliverer: it takes back a message the edge
// gave to a session whose client never acknowledged it, now that the
// session has ended. The message went through archiving and stanza-id
// stamping on its first way in, so it goes straight to delivery: to another
// resource, or to offline storage. The server's own wrappers (carbon
// copies, archive results) are not re-sent: the original is elsewhere.
func (m *SM) Redeliver(ctx context.Context, s router.Stanza) {
	if s.El.Local != stanza.Message || forgedWrapper(s.El) {
		return
	}
	m.inboundMessage(ctx, s)
}

var _ router.Redeliverer = (*SM)(nil)
