package bridge

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge/internal/store"
	"github.com/ambrosia-xmpp/ambrosia/internal/dataform"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

const (
	nsRegister = "jabber:iq:register"
	nsGateway  = "jabber:iq:gateway"
	nsMUC      = "http://jabber.org/protocol/muc"
)

// nowFunc is the clock; tests do not change it, but it keeps the time
// source in one place.
var nowFunc = time.Now

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// sessionType is a session to ask what the network supports: the one the
// network described, else one that exists.
func (b *Bridge) sessionType() Session {
	if b.desc.Session != nil {
		return b.desc.Session
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sample
}

// supports reports what sessions implement, for discovery.
func (b *Bridge) supports() (rooms, states, reactions, edits, retractions, markers bool) {
	s := b.sessionType()
	if s == nil {
		return
	}
	_, rooms = s.(RoomSession)
	_, states = s.(ChatStateSender)
	_, reactions = s.(Reactor)
	_, edits = s.(Editor)
	_, retractions = s.(Retractor)
	_, markers = s.(Marker)
	return
}

// gatewayFeatures are the disco#info features of the bridge's domain.
func (b *Bridge) gatewayFeatures() []string {
	fs := []string{stanza.NSDiscoInfo, stanza.NSDiscoItems, stanza.NSPing, stanza.NSVersion, nsGateway}
	if b.desc.Mode == Transport {
		fs = append(fs, nsRegister)
	}
	if _, ok := b.loginFlows(); ok {
		fs = append(fs, nsCommands)
	}
	if rooms, _, _, _, _, _ := b.supports(); rooms {
		fs = append(fs, nsMUC)
	}
	return fs
}

// contactFeatures are the disco#info features of a user of the network:
// what messages to them may carry.
func (b *Bridge) contactFeatures() []string {
	fs := []string{stanza.NSDiscoInfo, stanza.NSPing, nsReceipts, nsReply, "jabber:x:oob", nsVCard}
	_, states, reactions, edits, retractions, markers := b.supports()
	add := func(ok bool, f string) {
		if ok {
			fs = append(fs, f)
		}
	}
	add(states, nsChatStates)
	add(reactions, nsReactions)
	add(edits, nsCorrect)
	add(retractions, nsRetract)
	add(markers, nsMarkers)
	return fs
}

// gatewayIQ answers requests to the bridge's domain.
func (b *Bridge) gatewayIQ(ctx context.Context, st router.Stanza) {
	el := st.El
	get := el.Attr("type") == "get"
	_, hasFlows := b.loginFlows()
	switch {
	case get && el.Child(stanza.NSDiscoInfo, "query") != nil:
		r := stanza.Result(el)
		q := r.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "query"))
		if node := el.Child(stanza.NSDiscoInfo, "query").Attr("node"); node != "" {
			if _, ok := b.loginFlows(); !ok || !b.commandInfo(q, node) {
				b.bounce(ctx, st, stanza.ItemNotFound, "")
				return
			}
			b.reply(ctx, st, r)
			return
		}
		id := q.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "identity"))
		id.SetAttr("category", "gateway")
		id.SetAttr("type", b.desc.Type)
		id.SetAttr("name", b.desc.Name)
		if rooms, _, _, _, _, _ := b.supports(); rooms {
			c := q.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "identity"))
			c.SetAttr("category", "conference")
			c.SetAttr("type", "text")
			c.SetAttr("name", b.desc.Name)
		}
		for _, f := range b.gatewayFeatures() {
			q.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "feature")).SetAttr("var", f)
		}
		b.reply(ctx, st, r)
	case get && el.Child(stanza.NSDiscoItems, "query") != nil:
		r := stanza.Result(el)
		q := r.AddChild(xmlstream.NewElement(stanza.NSDiscoItems, "query"))
		if _, ok := b.loginFlows(); ok && el.Child(stanza.NSDiscoItems, "query").Attr("node") == nsCommands {
			b.commandItems(q)
		}
		b.reply(ctx, st, r)
	case get && el.Child(stanza.NSPing, "ping") != nil:
		b.reply(ctx, st, stanza.Result(el))
	case get && el.Child(stanza.NSVersion, "query") != nil:
		r := stanza.Result(el)
		q := r.AddChild(xmlstream.NewElement(stanza.NSVersion, "query"))
		q.AddChild(xmlstream.NewElement(stanza.NSVersion, "name")).AddText("Ambrosia bridge: " + b.desc.Name)
		b.reply(ctx, st, r)
	case el.Child(nsCommands, "command") != nil && hasFlows:
		b.command(ctx, st, el.Child(nsCommands, "command"))
	case el.Child(nsGateway, "query") != nil:
		b.gatewayPrompt(ctx, st, el.Child(nsGateway, "query"))
	case el.Child(nsRegister, "query") != nil && b.desc.Mode == Transport:
		if st.From.Local() == "" {
			b.bounce(ctx, st, stanza.NotAllowed, "Only users register.")
			return
		}
		if get {
			b.registrationForm(ctx, st)
		} else {
			b.register(ctx, st, el.Child(nsRegister, "query"))
		}
	default:
		b.bounce(ctx, st, stanza.ServiceUnavailable, "")
	}
}

// gatewayPrompt turns an identifier of the network into its address
// (XEP-0100 §6, jabber:iq:gateway).
func (b *Bridge) gatewayPrompt(ctx context.Context, st router.Stanza, q *xmlstream.Element) {
	r := stanza.Result(st.El)
	rq := r.AddChild(xmlstream.NewElement(nsGateway, "query"))
	if st.El.Attr("type") == "get" {
		rq.AddChild(xmlstream.NewElement(nsGateway, "desc")).AddText("Enter the " + b.desc.Name + " id of the contact.")
		rq.AddChild(xmlstream.NewElement(nsGateway, "prompt")).AddText(b.desc.Name + " id")
		b.reply(ctx, st, r)
		return
	}
	p := q.Child(nsGateway, "prompt")
	if p == nil || p.Text() == "" {
		b.bounce(ctx, st, stanza.BadRequest, "Give the id in <prompt/>.")
		return
	}
	j, err := b.contactJID(UserID(p.Text()))
	if err != nil {
		b.bounce(ctx, st, stanza.JIDMalformed, "That id cannot be an address.")
		return
	}
	rq.AddChild(xmlstream.NewElement(nsGateway, "jid")).AddText(j.String())
	b.reply(ctx, st, r)
}

// legacyFields maps the fixed fields of XEP-0077 to themselves, so that
// clients that only know those (username, password, nick…) can register.
var legacyFields = map[string]bool{"username": true, "password": true, "nick": true, "email": true, "name": true, "first": true, "last": true, "url": true, "phone": true}

// formField is the data form field of a field of the network's, holding
// value unless it is empty.
func formField(fd Field, value string) dataform.Field {
	fl := dataform.Field{Var: fd.Name, Type: dataform.TextSingle, Label: fd.Label, Required: fd.Required}
	switch {
	case fd.Secret:
		fl.Type = dataform.TextPrivate
	case len(fd.Choices) > 0:
		fl.Type = dataform.ListSingle
		for _, c := range fd.Choices {
			fl.Options = append(fl.Options, dataform.Option{Label: c, Value: c})
		}
	}
	if value != "" {
		fl.Values = []string{value}
	}
	return fl
}

// checkFields tells what is wrong with the values given for fields: a
// required one missing, or one that is not among its choices; "" if
// nothing.
func checkFields(fields []Field, values map[string]string) string {
	for _, fd := range fields {
		name := fd.Label
		if name == "" {
			name = fd.Name
		}
		v := values[fd.Name]
		switch {
		case v == "" && fd.Required:
			return "The field " + name + " is required."
		case v != "" && len(fd.Choices) > 0 && !slices.Contains(fd.Choices, v):
			return "The field " + name + " takes one of: " + strings.Join(fd.Choices, ", ") + "."
		}
	}
	return ""
}

// registrationForm answers a request for the registration form (XEP-0077
// §3.1), or what the user registered (without secrets).
func (b *Bridge) registrationForm(ctx context.Context, st router.Stanza) {
	r := stanza.Result(st.El)
	q := r.AddChild(xmlstream.NewElement(nsRegister, "query"))
	creds, err := b.st.Registration(ctx, st.From.BareString())
	registered := err == nil
	if registered {
		q.AddChild(xmlstream.NewElement(nsRegister, "registered"))
	}
	instr := b.desc.Instructions
	if instr == "" {
		instr = "Enter your " + b.desc.Name + " account."
		if b.onlyInSteps() {
			instr = "Log in with the gateway's command \"Log in to " + b.desc.Name + "\"."
		}
	}
	q.AddChild(xmlstream.NewElement(nsRegister, "instructions")).AddText(instr)
	f := dataform.Form{Type: dataform.TypeForm, FormType: nsRegister, Title: "Registration with " + b.desc.Name, Instructions: instr}
	for _, fd := range b.desc.Registration {
		val := creds[fd.Name]
		if fd.Secret {
			val = ""
		}
		f.Add(formField(fd, val))
		if legacyFields[fd.Name] {
			e := q.AddChild(xmlstream.NewElement(nsRegister, fd.Name))
			if registered && val != "" {
				e.AddText(val)
			}
		}
	}
	q.AddChild(f.Element())
	b.reply(ctx, st, r)
}

// register stores a user's credentials after a login with them works,
// or removes the registration (XEP-0077 §3.3).
func (b *Bridge) register(ctx context.Context, st router.Stanza, q *xmlstream.Element) {
	u := b.user(st.From.Bare())
	if q.Child(nsRegister, "remove") != nil {
		u.do(func(ctx context.Context) { b.unregister(ctx, u, st) })
		return
	}
	if b.onlyInSteps() {
		b.bounce(ctx, st, stanza.NotAcceptable, "Log in with the gateway's command \"Log in to "+b.desc.Name+"\".")
		return
	}
	creds := map[string]string{}
	if f, ok := dataform.Find(q, ""); ok {
		for _, fl := range f.Fields {
			creds[fl.Var] = fl.Value()
		}
	}
	for c := range q.ChildElements {
		if c.Space == nsRegister && legacyFields[c.Local] && creds[c.Local] == "" {
			creds[c.Local] = c.Text()
		}
	}
	known := map[string]bool{}
	for _, fd := range b.desc.Registration {
		known[fd.Name] = true
	}
	if msg := checkFields(b.desc.Registration, creds); msg != "" {
		b.bounce(ctx, st, stanza.NotAcceptable, msg)
		return
	}
	for k := range creds {
		if !known[k] {
			delete(creds, k)
		}
	}
	u.do(func(ctx context.Context) {
		// A login with the credentials proves them before they are kept.
		u.logout(ctx, "registering again")
		u.mu.Lock()
		ev := u.newEventsLocked()
		u.mu.Unlock()
		s, err := b.net.Login(ctx, Account{JID: u.jid.String(), Credentials: creds, Contacts: b.contactsOf(ctx, u.jid)}, ev)
		if err != nil {
			cond, text := errorFor(err)
			if cond == stanza.InternalServerError {
				cond, text = stanza.NotAuthorized, err.Error()
			}
			b.bounce(ctx, st, cond, text)
			return
		}
		if err := b.st.SetRegistration(ctx, u.jid.String(), creds); err != nil {
			b.log.Error("registration", "err", err)
			_ = s.Logout(ctx)
			b.bounce(ctx, st, stanza.InternalServerError, "")
			return
		}
		// The session that proved the credentials is the user's: their
		// presence follows the registration (the gateway asks for it
		// below), and a second login at once would find the first one
		// still on the network, which may not have taken its logout yet
		// (an IRC server that handles a few commands a second of each
		// connection still holds the nick, and the second login gets
		// another). Without the user online soon, it ends.
		u.mu.Lock()
		u.sess, u.sessGen = s, ev.gen
		away := len(u.online) == 0 && !b.desc.StayOnline
		u.mu.Unlock()
		if away {
			time.AfterFunc(registrationGrace, func() {
				u.do(func(ctx context.Context) { u.logoutIfAway(ctx, s) })
			})
		}
		b.log.Info("registered", "user", u.jid.String())
		b.reply(ctx, st, stanza.Result(st.El))
		// XEP-0100 §4.1.1: the gateway asks for the user's presence.
		b.presenceTo(ctx, b.domain, u.jid, "subscribe")
		u.afterLogin(ctx, s)
	})
}

// onlyInSteps reports a network whose users log in in steps only: it has
// no registration fields.
func (b *Bridge) onlyInSteps() bool {
	_, ok := b.loginFlows()
	return ok && len(b.desc.Registration) == 0
}

// registrationGrace is how long the session of a registration waits for
// the user to come online.
const registrationGrace = time.Minute

// logoutIfAway ends s, the session of a registration, if it is still the
// user's and the user has not come online.
func (u *user) logoutIfAway(ctx context.Context, s Session) {
	u.mu.Lock()
	away := u.sess == s && len(u.online) == 0
	u.mu.Unlock()
	if away {
		u.logout(ctx, "the user did not come online after registering")
	}
}

// unregister removes everything kept for the user (XEP-0077 §3.2,
// XEP-0100 §4.3).
func (b *Bridge) unregister(ctx context.Context, u *user, st router.Stanza) {
	switch err := b.forget(ctx, u); {
	case errors.Is(err, errNotRegistered):
		b.bounce(ctx, st, stanza.ItemNotFound, "You are not registered.")
	case err != nil:
		b.bounce(ctx, st, stanza.InternalServerError, "")
	default:
		b.reply(ctx, st, stanza.Result(st.El))
		b.farewell(ctx, u)
	}
}

// forget removes everything kept for the user, and the contacts the
// bridge put in their roster; it runs on the user's worker.
func (b *Bridge) forget(ctx context.Context, u *user) error {
	if _, err := b.st.Registration(ctx, u.jid.String()); errors.Is(err, store.ErrNotFound) {
		return errNotRegistered
	}
	b.logins.endUser(u.jid.String())
	u.logout(ctx, "unregistered")
	contacts, _ := b.st.Contacts(ctx, u.jid.String())
	for _, c := range contacts {
		if j, err := b.contactJID(UserID(c)); err == nil {
			b.removeFromRoster(ctx, u, j)
		}
	}
	b.idmap.flush()
	b.idmap.forget(u.jid.String())
	if err := b.st.Forget(ctx, u.jid.String()); err != nil {
		b.log.Error("unregister", "err", err)
		return err
	}
	b.log.Info("unregistered", "user", u.jid.String())
	return nil
}

// farewell ends the gateway's presence subscriptions with a user who
// unregistered.
func (b *Bridge) farewell(ctx context.Context, u *user) {
	for _, typ := range []string{"unsubscribe", "unsubscribed", "unavailable"} {
		b.presenceTo(ctx, b.domain, u.jid, typ)
	}
}
