package bridge

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/dataform"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// The gateway's ad-hoc commands (XEP-0050), offered when the network
// logs its users in in steps (LoginFlows).
const (
	nsCommands = "http://jabber.org/protocol/commands"
	// nodeLogin runs a login in steps; it is named after XEP-0077's
	// namespace, as other gateways name their registration command.
	nodeLogin = nsRegister
	// nodeUnregister removes the user's registration, as XEP-0077's
	// <remove/> does.
	nodeUnregister = "unregister"
)

const (
	// loginIdle is how long a login in steps waits for its user: past
	// it, the session expires.
	loginIdle = 10 * time.Minute
	// displayHold is how long a request on a Display step waits for the
	// network to confirm before the step is shown again, well within the
	// time clients wait for an answer.
	displayHold = 20 * time.Second
)

// loginFlows returns the network's login in steps, if it has one.
func (b *Bridge) loginFlows() (LoginFlows, bool) {
	if b.desc.Mode != Transport {
		return nil, false
	}
	lf, ok := b.net.(LoginFlows)
	return lf, ok
}

// commandNames are the commands' names, by node, in the order listed.
func (b *Bridge) commandNames() [][2]string {
	return [][2]string{{nodeLogin, "Log in to " + b.desc.Name}, {nodeUnregister, "Unregister from " + b.desc.Name}}
}

// commandItems answers disco#items of the commands node: the list of the
// gateway's commands.
func (b *Bridge) commandItems(q *xmlstream.Element) {
	q.SetAttr("node", nsCommands)
	for _, c := range b.commandNames() {
		it := q.AddChild(xmlstream.NewElement(stanza.NSDiscoItems, "item"))
		it.SetAttr("jid", b.cfg.Domain)
		it.SetAttr("node", c[0])
		it.SetAttr("name", c[1])
	}
}

// commandInfo answers disco#info of a command's node; it reports false
// for a node that is not one.
func (b *Bridge) commandInfo(q *xmlstream.Element, node string) bool {
	for _, c := range b.commandNames() {
		if c[0] != node {
			continue
		}
		q.SetAttr("node", node)
		id := q.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "identity"))
		id.SetAttr("category", "automation")
		id.SetAttr("type", "command-node")
		id.SetAttr("name", c[1])
		for _, f := range []string{nsCommands, dataform.NS} {
			q.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "feature")).SetAttr("var", f)
		}
		return true
	}
	return false
}

// flowRun is one login in steps under way: an ad-hoc command session.
type flowRun struct {
	id     string
	u      *user
	ev     *userEvents // the Events of the session the login may open
	ctx    context.Context
	cancel context.CancelFunc
	// timer and expires are guarded by logins.mu.
	timer   *time.Timer
	expires time.Time

	// mu is held while one request of the session is answered; what
	// follows is guarded by it.
	mu     sync.Mutex
	step   Step              // the step shown
	values map[string]string // what the user last entered in a Form
	waited chan waited       // the outcome of the Display shown
}

// waited is what a Display's Wait returned.
type waited struct {
	step Step
	err  error
	kept bool // the step was Done, and the user is logged in already
}

// logins are the logins in steps under way, one per user at most.
type logins struct {
	now  func() time.Time // the clock of expiry
	idle time.Duration
	hold time.Duration

	mu     sync.Mutex
	byID   map[string]*flowRun
	byUser map[string]*flowRun
}

func newLogins() *logins {
	return &logins{now: time.Now, idle: loginIdle, hold: displayHold, byID: map[string]*flowRun{}, byUser: map[string]*flowRun{}}
}

// The ways a request names a session that cannot go on.
var (
	errBadSession     = errors.New("bridge: no such command session")
	errSessionExpired = errors.New("bridge: the command session expired")
)

// add records a new login, ending the user's login before it.
func (l *logins) add(r *flowRun) {
	k := r.u.jid.String()
	l.mu.Lock()
	old := l.byUser[k]
	l.byID[r.id], l.byUser[k] = r, r
	r.expires = l.now().Add(l.idle)
	r.timer = time.AfterFunc(l.idle, func() { l.end(r) })
	l.mu.Unlock()
	if old != nil {
		l.end(old)
	}
}

// get returns the login a request names; only the user who started it
// may go on with it.
func (l *logins) get(id string, from jid.JID) (*flowRun, error) {
	l.mu.Lock()
	r := l.byID[id]
	if r == nil || !r.u.jid.Equal(from.Bare()) {
		l.mu.Unlock()
		return nil, errBadSession
	}
	expired := l.now().After(r.expires)
	l.mu.Unlock()
	if expired {
		l.end(r)
		return nil, errSessionExpired
	}
	return r, nil
}

// touch puts a login's expiry off, as its user is there.
func (l *logins) touch(r *flowRun) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID[r.id] != r {
		return
	}
	r.expires = l.now().Add(l.idle)
	r.timer.Reset(l.idle)
}

// end forgets a login and ends its ctx.
func (l *logins) end(r *flowRun) {
	l.mu.Lock()
	if l.byID[r.id] == r {
		delete(l.byID, r.id)
	}
	if k := r.u.jid.String(); l.byUser[k] == r {
		delete(l.byUser, k)
	}
	r.timer.Stop()
	l.mu.Unlock()
	r.cancel()
}

// endUser ends the login of a user, if any.
func (l *logins) endUser(bare string) {
	l.mu.Lock()
	r := l.byUser[bare]
	l.mu.Unlock()
	if r != nil {
		l.end(r)
	}
}

// endAll ends every login, as the bridge stops.
func (l *logins) endAll() {
	l.mu.Lock()
	runs := make([]*flowRun, 0, len(l.byID))
	for _, r := range l.byID {
		runs = append(runs, r)
	}
	l.mu.Unlock()
	for _, r := range runs {
		l.end(r)
	}
}

// command answers an ad-hoc command request (XEP-0050) to the gateway.
func (b *Bridge) command(ctx context.Context, st router.Stanza, c *xmlstream.Element) {
	if st.El.Attr("type") != "set" {
		b.commandError(ctx, st, stanza.BadRequest, "", "Commands are run with an IQ of type set.")
		return
	}
	if st.From.Local() == "" {
		b.commandError(ctx, st, stanza.Forbidden, "", "Only users run these commands.")
		return
	}
	node, sid, action := c.Attr("node"), c.Attr("sessionid"), c.Attr("action")
	switch action {
	case "", "execute", "next", "complete", "cancel":
	case "prev":
		b.commandError(ctx, st, stanza.BadRequest, "bad-action", "A login does not go back; cancel it and start again.")
		return
	default:
		b.commandError(ctx, st, stanza.BadRequest, "malformed-action", "")
		return
	}
	switch node {
	case nodeLogin:
	case nodeUnregister:
		if sid != "" {
			b.commandError(ctx, st, stanza.BadRequest, "bad-sessionid", "Unregistering takes one step.")
			return
		}
		u := b.user(st.From.Bare())
		u.do(func(ctx context.Context) {
			switch err := b.forget(ctx, u); {
			case errors.Is(err, errNotRegistered):
				b.commandError(ctx, st, stanza.ItemNotFound, "", "You are not registered.")
			case err != nil:
				b.commandError(ctx, st, stanza.InternalServerError, "", "")
			default:
				r, c := commandReply(st, nodeUnregister, "", "completed")
				addNote(c, "info", "You are no longer registered with "+b.desc.Name+".")
				b.reply(ctx, st, r)
				b.farewell(ctx, u)
			}
		})
		return
	default:
		b.commandError(ctx, st, stanza.ItemNotFound, "", "No such command.")
		return
	}
	if !b.user(st.From.Bare()).allow() {
		b.commandError(ctx, st, stanza.ResourceConstraint, "", "You are sending faster than the network takes.")
		return
	}
	if sid == "" {
		if action != "" && action != "execute" {
			b.commandError(ctx, st, stanza.BadRequest, "bad-sessionid", "No session to go on with.")
			return
		}
		go b.startFlow(st)
		return
	}
	r, err := b.logins.get(sid, st.From)
	switch {
	case errors.Is(err, errSessionExpired):
		b.commandError(ctx, st, stanza.NotAllowed, "session-expired", "The login waited too long for you; start again.")
		return
	case err != nil:
		b.commandError(ctx, st, stanza.BadRequest, "bad-sessionid", "No such session.")
		return
	}
	if action == "cancel" {
		b.logins.end(r)
		rep, _ := commandReply(st, nodeLogin, r.id, "canceled")
		b.reply(ctx, st, rep)
		return
	}
	go b.flowStep(st, r, c)
}

// commandReply makes the answer to a command request, and its <command/>.
func commandReply(st router.Stanza, node, sid, status string) (iq, c *xmlstream.Element) {
	iq = stanza.Result(st.El)
	c = iq.AddChild(xmlstream.NewElement(nsCommands, "command"))
	c.SetAttr("node", node)
	if sid != "" {
		c.SetAttr("sessionid", sid)
	}
	c.SetAttr("status", status)
	if status == "executing" {
		a := c.AddChild(xmlstream.NewElement(nsCommands, "actions"))
		a.SetAttr("execute", "next")
		a.AddChild(xmlstream.NewElement(nsCommands, "next"))
	}
	return iq, c
}

func addNote(c *xmlstream.Element, typ, text string) {
	n := c.AddChild(xmlstream.NewElement(nsCommands, "note"))
	n.SetAttr("type", typ)
	n.AddText(text)
}

// commandError answers a command request with an error, with the
// command's own condition app if not empty. Unlike bounce, it does not
// send the whole request back, whose form may hold a password: only its
// <command/>'s node and sessionid, by which clients tell their sessions
// apart.
func (b *Bridge) commandError(ctx context.Context, st router.Stanza, cond, app, text string) {
	req := xmlstream.NewElement(st.El.Space, st.El.Local)
	for _, a := range []string{"id", "from", "to", "type"} {
		if v := st.El.Attr(a); v != "" {
			req.SetAttr(a, v)
		}
	}
	if c := st.El.Child(nsCommands, "command"); c != nil {
		rc := req.AddChild(xmlstream.NewElement(nsCommands, "command"))
		for _, a := range []string{"node", "sessionid"} {
			if v := c.Attr(a); v != "" {
				rc.SetAttr(a, v)
			}
		}
	}
	r := stanza.ErrorReply(req, cond, text)
	if app != "" {
		r.Child(req.Space, "error").AddChild(xmlstream.NewElement(nsCommands, app))
	}
	b.reply(ctx, st, r)
}

// startFlow runs the login command's first request: the flow's first
// step.
func (b *Bridge) startFlow(st router.Stanza) {
	lf, _ := b.loginFlows()
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	u := b.user(st.From.Bare())
	u.mu.Lock()
	ev := u.newEventsLocked()
	u.mu.Unlock()
	fctx, fcancel := context.WithCancel(context.Background())
	r := &flowRun{id: stanza.NewID(), u: u, ev: ev, ctx: fctx, cancel: fcancel}
	r.mu.Lock()
	defer r.mu.Unlock()
	b.logins.add(r)
	acct := Account{JID: u.jid.String(), Contacts: b.contactsOf(ctx, u.jid)}
	if creds, err := b.st.Registration(ctx, acct.JID); err == nil {
		acct.Credentials = creds
	}
	step, err := lf.StartLogin(fctx, acct, ev)
	b.answer(ctx, st, r, step, err)
}

// flowStep runs a request of a login under way: the values of a Form,
// or the user going on after a Display.
func (b *Bridge) flowStep(st router.Stanza, r *flowRun, c *xmlstream.Element) {
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx.Err() != nil {
		b.flowEnded(ctx, st, r)
		return
	}
	b.logins.touch(r)
	switch s := r.step.(type) {
	case *Form:
		got := map[string]string{}
		if f, ok := dataform.Find(c, ""); ok {
			for _, fl := range f.Fields {
				got[fl.Var] = fl.Value()
			}
		}
		r.values = map[string]string{}
		for _, fd := range s.Fields {
			if v := got[fd.Name]; v != "" {
				r.values[fd.Name] = v
			}
		}
		if msg := checkFields(s.Fields, r.values); msg != "" {
			b.showForm(ctx, st, r, s, msg)
			return
		}
		sctx, scancel := context.WithTimeout(r.ctx, loginTimeout)
		next, err := s.Submit(sctx, r.values)
		scancel()
		b.answer(ctx, st, r, next, err)
	case *Display:
		var w waited
		select {
		case w = <-r.waited:
		default:
			t := time.NewTimer(b.logins.hold)
			defer t.Stop()
			select {
			case w = <-r.waited:
			case <-t.C:
				b.showDisplay(ctx, st, r, s, "Not confirmed by "+b.desc.Name+" yet: do as shown, then go on.")
				return
			case <-r.ctx.Done():
				b.flowEnded(ctx, st, r)
				return
			}
		}
		if w.kept {
			b.logins.end(r)
			b.flowDone(ctx, st, r)
			return
		}
		b.answer(ctx, st, r, w.step, w.err)
	default:
		b.flowEnded(ctx, st, r)
	}
}

// answer shows the step a flow returned, or what went wrong; r.mu is
// held.
func (b *Bridge) answer(ctx context.Context, st router.Stanza, r *flowRun, step Step, err error) {
	if r.ctx.Err() != nil {
		// Canceled, replaced or expired while the network worked.
		if d, ok := step.(*Done); ok && err == nil && d.Session != nil {
			_ = d.Session.Logout(ctx)
		}
		b.flowEnded(ctx, st, r)
		return
	}
	if err != nil {
		if f, ok := r.step.(*Form); ok && errors.Is(err, ErrBadCredentials) {
			b.showForm(ctx, st, r, f, err.Error())
			return
		}
		b.logins.end(r)
		cond, text := errorFor(err)
		if cond == stanza.InternalServerError {
			b.log.Warn("login in steps", "user", r.u.jid.String(), "err", err)
			text = "The login to " + b.desc.Name + " failed."
		}
		b.commandError(ctx, st, cond, "", text)
		return
	}
	switch s := step.(type) {
	case *Form:
		if s.Submit != nil {
			r.step, r.values = s, nil
			b.showForm(ctx, st, r, s, "")
			return
		}
	case *Display:
		if s.Wait != nil {
			r.step, r.values = s, nil
			ch := make(chan waited, 1)
			r.waited = ch
			go b.waitDisplay(r, s, ch)
			b.showDisplay(ctx, st, r, s, "")
			return
		}
	case *Done:
		err := b.keepLogin(r, s)
		b.logins.end(r)
		if err != nil {
			b.commandError(ctx, st, stanza.InternalServerError, "", "")
			return
		}
		b.flowDone(ctx, st, r)
		return
	}
	b.log.Error("a login in steps returned no usable step (nil, or a Form without Submit, a Display without Wait)", "step", step)
	b.logins.end(r)
	b.commandError(ctx, st, stanza.InternalServerError, "", "")
}

// waitDisplay waits for the network to confirm a Display, and keeps the
// login at once if it is done: the user may never go on in their client.
func (b *Bridge) waitDisplay(r *flowRun, d *Display, ch chan<- waited) {
	next, err := d.Wait(r.ctx)
	w := waited{step: next, err: err}
	if done, ok := next.(*Done); ok && err == nil {
		if r.ctx.Err() != nil {
			if done.Session != nil {
				_ = done.Session.Logout(context.Background())
			}
			w.err = r.ctx.Err()
		} else if w.err = b.keepLogin(r, done); w.err == nil {
			w.kept = true
		}
	}
	ch <- w
}

// keepLogin makes what a login ended with the user's registration, on
// the user's worker.
func (b *Bridge) keepLogin(r *flowRun, d *Done) error {
	errc := make(chan error, 1)
	u := r.u
	if !u.do(func(ctx context.Context) { errc <- b.keep(ctx, u, r.ev, d) }) {
		if d.Session != nil {
			_ = d.Session.Logout(context.Background())
		}
		return ErrUnavailable
	}
	return <-errc
}

// keep stores the credentials of a login in steps, and makes the session
// it opened the user's, as a registration with XEP-0077 does; without
// one, the bridge logs in now if the user is online, else on their
// presence.
func (b *Bridge) keep(ctx context.Context, u *user, ev *userEvents, d *Done) error {
	creds := d.Credentials
	if creds == nil {
		creds = map[string]string{}
	}
	u.logout(ctx, "logged in again")
	if err := b.st.SetRegistration(ctx, u.jid.String(), creds); err != nil {
		b.log.Error("registration", "err", err)
		if d.Session != nil {
			_ = d.Session.Logout(ctx)
		}
		return err
	}
	b.log.Info("registered in steps", "user", u.jid.String())
	u.mu.Lock()
	if d.Session != nil {
		u.sess, u.sessGen = d.Session, ev.gen
		u.retry = 0
	}
	online := len(u.online) > 0
	u.mu.Unlock()
	if d.Session != nil {
		b.mu.Lock()
		if b.sample == nil {
			b.sample = d.Session
		}
		b.mu.Unlock()
	}
	// XEP-0100 §4.1.1: the gateway asks for the user's presence.
	b.presenceTo(ctx, b.domain, u.jid, "subscribe")
	switch {
	case d.Session != nil:
		if !online && !b.desc.StayOnline {
			s := d.Session
			time.AfterFunc(registrationGrace, func() {
				u.do(func(ctx context.Context) { u.logoutIfAway(ctx, s) })
			})
		}
		u.afterLogin(ctx, d.Session)
	case online || b.desc.StayOnline:
		if _, err := u.session(ctx); err != nil {
			// The login proved the credentials; this one is tried again.
			u.disconnected(nil, err)
			return nil
		}
	}
	if online {
		u.flushKept(ctx)
	}
	return nil
}

// showForm answers with a Form step, and a note of what was wrong if
// errText is set.
func (b *Bridge) showForm(ctx context.Context, st router.Stanza, r *flowRun, f *Form, errText string) {
	iq, c := commandReply(st, nodeLogin, r.id, "executing")
	if errText != "" {
		addNote(c, "error", errText)
	}
	form := dataform.Form{Type: dataform.TypeForm, Title: "Log in to " + b.desc.Name, Instructions: f.Instructions}
	for _, fd := range f.Fields {
		v := r.values[fd.Name]
		if fd.Secret {
			v = ""
		}
		form.Add(formField(fd, v))
	}
	c.AddChild(form.Element())
	b.reply(ctx, st, iq)
}

// showDisplay answers with a Display step: its code in a fixed field,
// and a QR code's data in a text field too, which clients let users copy.
func (b *Bridge) showDisplay(ctx context.Context, st router.Stanza, r *flowRun, d *Display, info string) {
	iq, c := commandReply(st, nodeLogin, r.id, "executing")
	if info != "" {
		addNote(c, "info", info)
	}
	instr, label := d.Instructions, "Code"
	if d.QR {
		label = "QR code"
	}
	if instr == "" {
		instr = "Enter this code in " + b.desc.Name + ", then go on."
		if d.QR {
			instr = "Scan this QR code with " + b.desc.Name + "'s app, then go on; the text field holds what the QR code says."
		}
	}
	form := dataform.Form{Type: dataform.TypeForm, Title: "Log in to " + b.desc.Name, Instructions: instr}
	form.Add(dataform.Field{Type: dataform.Fixed, Label: label, Values: []string{d.Code}})
	if d.QR {
		form.Add(dataform.Field{Var: "qr", Type: dataform.TextSingle, Label: "QR code data", Values: []string{d.Code}})
	}
	c.AddChild(form.Element())
	b.reply(ctx, st, iq)
}

// flowDone answers the request that ended a login.
func (b *Bridge) flowDone(ctx context.Context, st router.Stanza, r *flowRun) {
	iq, c := commandReply(st, nodeLogin, r.id, "completed")
	addNote(c, "info", "You are logged in to "+b.desc.Name+": from now on, your presence logs you in.")
	b.reply(ctx, st, iq)
}

// flowEnded answers a request of a login that ended meanwhile.
func (b *Bridge) flowEnded(ctx context.Context, st router.Stanza, r *flowRun) {
	iq, c := commandReply(st, nodeLogin, r.id, "canceled")
	addNote(c, "warn", "This login ended: canceled, replaced by another or expired.")
	b.reply(ctx, st, iq)
}
