package bridge_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/bridgetest"
	"github.com/ambrosia-xmpp/ambrosia/internal/dataform"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

const nsCommands = "http://jabber.org/protocol/commands"

// clock is a clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// withClock gives the bridge the test's clock, and a short wait for the
// network's confirmation of a Display step: the tests confirm only after
// the step is shown again, so its length matters to no outcome.
func withClock(c *clock) func(*bridge.Bridge) {
	return func(b *bridge.Bridge) { bridge.SetLoginClock(b, c.now, 20*time.Millisecond) }
}

// answer is the answer to one command request.
type answer struct {
	el     *xmlstream.Element
	status string
	sid    string
	notes  string // "type: text" lines
	form   dataform.Form
}

// command sends the gateway a login command request from whom, with the
// attributes attrs on <command/> and the values (field, value, …) in a
// submitted form, and returns the answer.
func (x *xmpp) command(from, id, attrs string, values ...string) answer {
	x.t.Helper()
	form := ""
	if len(values) > 0 {
		form = "<x xmlns='jabber:x:data' type='submit'>"
		for i := 0; i+1 < len(values); i += 2 {
			form += "<field var='" + values[i] + "'><value>" + values[i+1] + "</value></field>"
		}
		form += "</x>"
	}
	x.send(from, gw, "<iq type='set' id='"+id+"'><command xmlns='"+nsCommands+"' node='jabber:iq:register' "+attrs+">"+form+"</command></iq>")
	el := x.expect("the answer to "+id, "id='"+id+"'")
	a := answer{el: el}
	if c := el.Child(xmlstream.NSClient, "command"); c != nil {
		x.t.Fatalf("<command/> in jabber:client: %s", el)
	}
	if c := el.Child(nsCommands, "command"); c != nil {
		a.status, a.sid = c.Attr("status"), c.Attr("sessionid")
		for n := range c.ChildElements {
			if n.Local == "note" {
				a.notes += n.Attr("type") + ": " + n.Text() + "\n"
			}
		}
		a.form, _ = dataform.Find(c, "")
	}
	return a
}

// step checks that the answer is an executing step whose form has the
// fields named, and no note unless note is not empty, in which case a
// note must hold it.
func (a answer) step(t *testing.T, note string, fields ...string) {
	t.Helper()
	if a.status != "executing" || a.sid == "" || a.form.Type != dataform.TypeForm {
		t.Fatalf("want an executing step with a form, got %s", a.el)
	}
	for _, f := range fields {
		if a.form.Field(f) == nil {
			t.Fatalf("the step lacks the field %s: %s", f, a.el)
		}
	}
	if (note == "") != (a.notes == "") || !strings.Contains(a.notes, note) {
		t.Fatalf("want a note with %q, got %q: %s", note, a.notes, a.el)
	}
}

// refused checks that the answer is an error with the condition cond and
// the command's condition app.
func (a answer) refused(t *testing.T, cond, app string) {
	t.Helper()
	s := a.el.String()
	if a.el.Attr("type") != "error" || !strings.Contains(s, "<"+cond+" ") || (app != "" && !strings.Contains(s, "<"+app+" xmlns='"+nsCommands+"'/>")) {
		t.Fatalf("want %s %s, got %s", cond, app, s)
	}
	if strings.Contains(s, "jabber:x:data") {
		t.Fatalf("the request's form sent back: %s", s)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLoginInStepsWithCode: a user whose login needs a code besides the
// password cannot register with XEP-0077, and logs in with the gateway's
// command: a choice, the password (wrong, then right), the code (missing,
// wrong, then right). The session the login opened is the user's, and
// once it ends the user's presence logs in with what the login kept.
func TestLoginInStepsWithCode(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	_, n, x := start(t, bridge.Transport, withClock(c))
	n.SetPassword("alice", "pw")
	n.SetCode("alice", "123456")
	n.AddUser("bob", false)
	const me = "alice@xmpp.example"

	x.send(alice, gw, "<iq type='get' id='items'><query xmlns='http://jabber.org/protocol/disco#items' node='"+nsCommands+"'/></iq>")
	x.expect("the command list", "id='items'", "node='jabber:iq:register'", "name='Log in to Memory'", "node='unregister'")
	x.send(alice, gw, "<iq type='get' id='info'><query xmlns='http://jabber.org/protocol/disco#info' node='jabber:iq:register'/></iq>")
	x.expect("the command's disco#info", "id='info'", "category='automation'", "type='command-node'", "var='jabber:x:data'")
	x.send(alice, gw, "<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>alice</username><password>pw</password></query></iq>")
	x.expect("a registration without the code refused", "id='reg'", "not-authorized", "a code is needed")

	a := x.command(alice, "c1", "action='execute'")
	a.step(t, "", "method")
	sid := a.sid
	if m := a.form.Field("method"); m.Type != dataform.ListSingle || !m.Required || len(m.Options) != 2 {
		t.Fatalf("the method field: %+v", m)
	}
	a = x.command(alice, "c2", "sessionid='"+sid+"' action='next'", "method", "telepathy")
	a.step(t, "takes one of: password, qr", "method")
	a = x.command(alice, "c3", "sessionid='"+sid+"' action='next'", "method", "password")
	a.step(t, "", "username", "password")
	if p := a.form.Field("password"); p.Type != dataform.TextPrivate {
		t.Fatalf("the password field: %+v", p)
	}
	a = x.command(alice, "c4", "sessionid='"+sid+"' action='next'", "username", "alice", "password", "wrong")
	a.step(t, "credentials refused", "username", "password")
	if u := a.form.Field("username"); u.Value() != "alice" || a.form.Field("password").Value() != "" {
		t.Fatalf("the form shown again should keep the user name and not the password: %s", a.el)
	}
	a = x.command(alice, "c5", "sessionid='"+sid+"' action='next'", "username", "alice", "password", "pw")
	a.step(t, "", "code")
	a = x.command(alice, "c6", "sessionid='"+sid+"' action='next'")
	a.step(t, "The field Code is required.", "code")
	a = x.command(alice, "c7", "sessionid='"+sid+"' action='next'", "code", "000000")
	a.step(t, "the code 000000", "code")
	if n.Session(me) != nil {
		t.Fatal("logged in before the code")
	}
	a = x.command(alice, "c8", "sessionid='"+sid+"' action='complete'", "code", "123456")
	if a.status != "completed" || a.sid != sid || !strings.Contains(a.notes, "info: You are logged in to Memory") {
		t.Fatalf("want the login completed, got %s", a.el)
	}
	// x.expect skips what came before: the gateway's subscription request
	// is checked through the registration it follows.
	x.send(alice, gw, "<iq type='get' id='form'><query xmlns='jabber:iq:register'/></iq>")
	x.expect("registered", "id='form'", "<registered/>")
	x.command(alice, "c9", "sessionid='"+sid+"' action='next'").refused(t, "bad-request", "bad-sessionid")

	// The session of the login is the user's: their presence uses it.
	s := n.Session(me)
	if s == nil || n.Logins() != 1 {
		t.Fatalf("session %v, %d logins", s, n.Logins())
	}
	x.send(alice, gw, "<presence/>")
	x.send(alice, "bob@"+gw, "<message type='chat' id='m1'><body>hi</body></message>")
	if got := sent(t, n, "message"); got.To != "bob" || got.User != me {
		t.Fatalf("sent %+v", got)
	}
	if n.Logins() != 1 || n.Session(me) != s {
		t.Fatalf("%d logins: the session of the login was not kept", n.Logins())
	}
	// Offline, then online: a login with the kept credentials, no step.
	x.send(alice, gw, "<presence type='unavailable'/>")
	waitFor(t, "the logout", func() bool { return s.Closed() })
	x.send(alice, gw, "<presence/>")
	waitFor(t, "a login with the token", func() bool { return n.Session(me) != nil })
	if n.Logins() != 2 {
		t.Fatalf("%d logins, want 2", n.Logins())
	}
	x.send(alice, "bob@"+gw, "<message type='chat' id='m2'><body>back</body></message>")
	if got := sent(t, n, "message"); got.Message.Body != "back" {
		t.Fatalf("sent %+v", got)
	}
}

// TestLoginInStepsQRCode: a QR code shown, the user going on before it is
// scanned (shown again, with a note), the scan logging the user in at
// once, and the user's presence then logging in with the token kept.
func TestLoginInStepsQRCode(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	_, n, x := start(t, bridge.Transport, withClock(c))
	n.AddUser("bob", false)
	const me = "alice@xmpp.example"
	a := x.command(alice, "c1", "")
	sid := a.sid
	a = x.command(alice, "c2", "sessionid='"+sid+"'", "method", "qr")
	a.step(t, "", "qr")
	data := a.form.Field("qr").Value()
	if !strings.HasPrefix(data, "memory:link:") || !strings.Contains(a.el.String(), "<field type='fixed' label='QR code'><value>"+data+"</value></field>") {
		t.Fatalf("the QR code step: %s", a.el)
	}
	a = x.command(alice, "c3", "sessionid='"+sid+"' action='next'")
	a.step(t, "Not confirmed by Memory yet", "qr")
	if !n.Scan(data, "alice") {
		t.Fatal("no login shows the QR code")
	}
	// The login is kept once scanned, before the user goes on.
	x.expect("the gateway's subscription request", "<presence", "type='subscribe'", "from='"+gw+"'")
	a = x.command(alice, "c4", "sessionid='"+sid+"' action='next'")
	if a.status != "completed" {
		t.Fatalf("want completed, got %s", a.el)
	}
	if n.Session(me) != nil || n.Logins() != 0 {
		t.Fatal("this login opens no session")
	}
	x.send(alice, gw, "<presence/>")
	waitFor(t, "a login with the token", func() bool { return n.Session(me) != nil })
	x.send(alice, "bob@"+gw, "<message type='chat' id='m1'><body>hi</body></message>")
	if got := sent(t, n, "message"); got.To != "bob" {
		t.Fatalf("sent %+v", got)
	}
}

// TestLoginInStepsRefusals: a session that is not there, someone else's,
// canceled, replaced or expired cannot go on; a server runs no command;
// a command that does not exist is not found.
func TestLoginInStepsRefusals(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	_, _, x := start(t, bridge.Transport, withClock(c))
	const bob = "bob@xmpp.example/laptop"
	a := x.command(alice, "c1", "sessionid='nope' action='next'", "method", "password")
	a.refused(t, "bad-request", "bad-sessionid")
	if a.sid != "nope" {
		t.Fatalf("the error should name the session, for clients to find it: %s", a.el)
	}
	x.command(alice, "c2", "action='next'").refused(t, "bad-request", "bad-sessionid")
	x.command(alice, "c3", "action='sideways'").refused(t, "bad-request", "malformed-action")
	x.command("xmpp.example", "c4", "").refused(t, "forbidden", "")
	x.send(alice, gw, "<iq type='set' id='c5'><command xmlns='"+nsCommands+"' node='no-such' action='execute'/></iq>")
	x.expect("an unknown command", "id='c5'", "item-not-found")

	// Only the user who started a session goes on with it; another
	// resource of theirs may.
	sid := x.command(alice, "s1", "").sid
	x.command(bob, "s2", "sessionid='"+sid+"'", "method", "password").refused(t, "bad-request", "bad-sessionid")
	x.command(alice, "s3", "sessionid='"+sid+"' action='prev'").refused(t, "bad-request", "bad-action")
	x.command("alice@xmpp.example/laptop", "s4", "sessionid='"+sid+"'", "method", "password").step(t, "", "username")

	// Canceled.
	a = x.command(alice, "s5", "sessionid='"+sid+"' action='cancel'")
	if a.status != "canceled" || a.sid != sid {
		t.Fatalf("want canceled, got %s", a.el)
	}
	x.command(alice, "s6", "sessionid='"+sid+"'", "username", "alice", "password", "pw").refused(t, "bad-request", "bad-sessionid")

	// Replaced by a new login of the same user.
	old := x.command(alice, "r1", "").sid
	sid = x.command(alice, "r2", "").sid
	x.command(alice, "r3", "sessionid='"+old+"'", "method", "password").refused(t, "bad-request", "bad-sessionid")

	// Expired: each step puts expiry off; a session idle too long is gone.
	c.advance(9 * time.Minute)
	x.command(alice, "e1", "sessionid='"+sid+"'", "method", "qr").step(t, "", "qr")
	c.advance(9 * time.Minute)
	x.command(alice, "e2", "sessionid='"+sid+"'").step(t, "Not confirmed", "qr")
	c.advance(11 * time.Minute)
	x.command(alice, "e3", "sessionid='"+sid+"'").refused(t, "not-allowed", "session-expired")
	x.command(alice, "e4", "sessionid='"+sid+"'").refused(t, "bad-request", "bad-sessionid")
}

// TestUnregisterCommand: the gateway's unregister command does what
// XEP-0077's <remove/> does.
func TestUnregisterCommand(t *testing.T) {
	_, n, x := start(t, bridge.Transport)
	n.SetPassword("alice", "pw")
	n.AddUser("bob", false)
	unregister := "<iq type='set' id='%s'><command xmlns='" + nsCommands + "' node='unregister' action='execute'/></iq>"
	x.send(alice, gw, strings.Replace(unregister, "%s", "u1", 1))
	x.expect("not registered", "id='u1'", "item-not-found")
	x.send(alice, gw, "<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>alice</username><password>pw</password></query></iq>")
	x.expect("registered", "id='reg'", "type='result'")
	x.send(alice, gw, strings.Replace(unregister, "%s", "u2", 1))
	x.expect("unregistered", "id='u2'", "status='completed'", "no longer registered")
	x.expect("the gateway's subscription ended", "type='unsubscribed'", "from='"+gw+"'")
	x.send(alice, "bob@"+gw, "<message type='chat' id='m1'><body>x</body></message>")
	x.expect("registration-required", "registration-required", "id='m1'")
}

// waitingNetwork's login shows a code and waits for its ctx to end, which
// it reports on ended.
type waitingNetwork struct {
	bridge.Network
	ended chan string
}

func (n *waitingNetwork) StartLogin(ctx context.Context, user bridge.Account, ev bridge.Events) (bridge.Step, error) {
	return &bridge.Display{Code: "4242", Wait: func(wctx context.Context) (bridge.Step, error) {
		<-wctx.Done()
		select {
		case <-ctx.Done():
			n.ended <- user.JID
		default:
			n.ended <- "Wait's ctx ended before the login's"
		}
		return nil, wctx.Err()
	}}, nil
}

// TestLoginEndsItsContext: what a login holds is released when it is
// canceled, replaced or expired: its ctx ends.
func TestLoginEndsItsContext(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	n := &waitingNetwork{Network: bridgetest.New(bridge.Transport), ended: make(chan string, 1)}
	_, x := serve(t, n, withClock(c))
	ended := func(how string) {
		t.Helper()
		select {
		case who := <-n.ended:
			if who != "alice@xmpp.example" {
				t.Fatalf("%s: %s", how, who)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the login's ctx did not end", how)
		}
	}
	a := x.command(alice, "d1", "")
	a.step(t, "")
	if !strings.Contains(a.el.String(), "<field type='fixed' label='Code'><value>4242</value></field>") || a.form.Field("qr") != nil {
		t.Fatalf("the code step: %s", a.el)
	}
	x.command(alice, "d2", "sessionid='"+a.sid+"' action='cancel'")
	ended("canceled")
	x.command(alice, "d3", "")
	x.command(alice, "d4", "")
	ended("replaced")
	sid := x.command(alice, "d5", "").sid
	ended("replaced")
	c.advance(time.Hour)
	x.command(alice, "d6", "sessionid='"+sid+"'").refused(t, "not-allowed", "session-expired")
	ended("expired")
}

// stepsOnly is bridgetest's network with no registration fields: its
// users log in in steps only.
type stepsOnly struct{ *bridgetest.Network }

func (n stepsOnly) Describe() bridge.Description {
	d := n.Network.Describe()
	d.Registration = nil
	return d
}

// TestRegistrationPointsToTheCommand: a network whose users log in in
// steps only refuses XEP-0077 registration, and says where to go.
func TestRegistrationPointsToTheCommand(t *testing.T) {
	n := bridgetest.New(bridge.Transport)
	n.SetPassword("alice", "pw")
	_, x := serve(t, stepsOnly{n})
	x.send(alice, gw, "<iq type='get' id='g'><query xmlns='jabber:iq:register'/></iq>")
	x.expect("the form's instructions", "id='g'", "type='result'", "Log in with the gateway's command")
	x.send(alice, gw, "<iq type='set' id='s'><query xmlns='jabber:iq:register'><username>alice</username><password>pw</password></query></iq>")
	x.expect("the registration refused", "id='s'", "not-acceptable", "Log in with the gateway's command")
	x.command(alice, "c1", "").step(t, "", "method")
}
