package appservice_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/appservice"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// outbox records the events for each service.
type outbox struct {
	mu     sync.Mutex
	events map[string][]appservice.Event
	more   chan struct{}
}

func (o *outbox) Enqueue(_ context.Context, service string, evs []appservice.Event) {
	o.mu.Lock()
	o.events[service] = append(o.events[service], evs...)
	o.mu.Unlock()
	select {
	case o.more <- struct{}{}:
	default:
	}
}

// expect waits for an event of service that match accepts and returns it;
// events before it are dropped.
func (o *outbox) expect(t *testing.T, service, what string, match func(appservice.Event) bool) appservice.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		o.mu.Lock()
		for i, e := range o.events[service] {
			if match(e) {
				o.events[service] = o.events[service][i+1:]
				o.mu.Unlock()
				return e
			}
		}
		o.mu.Unlock()
		select {
		case <-o.more:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			o.mu.Lock()
			defer o.mu.Unlock()
			t.Fatalf("no %s among %+v", what, o.events[service])
		}
	}
}

func (o *outbox) none(t *testing.T, service string, typ string) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.events[service] {
		if e.Type == typ {
			t.Fatalf("unexpected %s event %+v", typ, e)
		}
	}
}

// late lets the session manager be made before the manager it reports to.
type late struct{ m *appservice.Manager }

func (l *late) Login(full jid.JID, addr string)                    { l.m.Login(full, addr) }
func (l *late) Logout(full jid.JID)                                { l.m.Logout(full) }
func (l *late) RosterChanged(owner jid.JID, it storage.RosterItem) { l.m.RosterChanged(owner, it) }
func (l *late) Decide(ctx context.Context, k string, s router.Stanza) router.Decision {
	return l.m.Decide(ctx, k, s)
}

func compile(t *testing.T, c appservice.Config) *appservice.Service {
	t.Helper()
	if c.Token == "" {
		c.Token, c.ServerToken = "service-token-"+c.Name+"-0123", "server-token-"+c.Name+"-0123"
	}
	s, err := appservice.Compile(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func setup(t *testing.T, services ...*appservice.Service) (*xmpptest.Server, *appservice.Manager, *outbox) {
	t.Helper()
	l := &late{}
	s := xmpptest.StartServerWith(t, xmpptest.Options{SMDeps: func(d *sm.Deps) { d.Observer, d.Hook = l, l }})
	out := &outbox{events: map[string][]appservice.Event{}, more: make(chan struct{}, 1)}
	m, err := appservice.New(services, appservice.Deps{Router: s.Router, SMs: map[string]*sm.SM{"localhost": s.SM}, Outbox: out, Log: xmpptest.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	l.m = m
	return s, m, out
}

func is(local, typ string) func(*xmlstream.Element) bool {
	return func(el *xmlstream.Element) bool { return el.Local == local && el.Attr("type") == typ }
}

// TestServiceUsers: a service's user is a client of the server whose
// stanzas become events: subscriptions, presence, messages with JSON,
// IQs; it answers through Send and sets its presence; while unavailable
// its messages wait offline and come when it is back. Watched users'
// logins, logouts and roster changes are events too.
func TestServiceUsers(t *testing.T) {
	svc := compile(t, appservice.Config{Name: "dir", URL: "http://127.0.0.1:1", Users: []string{`^dir-[a-z]+@localhost$`}, Watch: []string{`^alice@localhost$`}})
	s, m, out := setup(t, svc)
	ctx := context.Background()
	s.AddUser(t, "dir-carol@localhost", "x-unused-password")
	s.AddUser(t, "alice@localhost", "wonderland")
	carol := jid.MustParse("dir-carol@localhost")
	if err := m.SetPresence(ctx, "dir", carol, appservice.Presence{Available: true, Status: "at the desk"}); err != nil {
		t.Fatal(err)
	}
	a := s.Login(t, "alice", "wonderland", "phone")
	login := out.expect(t, "dir", "alice's login", func(e appservice.Event) bool { return e.Type == appservice.EventLogin })
	if login.User != "alice@localhost" || login.Session == nil || login.Session.Resource != "phone" || !strings.HasPrefix(login.Session.Address, "127.0.0.1:") {
		t.Fatalf("login %+v %+v", login, login.Session)
	}
	a.Send("<presence/>")
	a.Expect("own presence", is("presence", ""))
	a.Send("<presence to='dir-carol@localhost' type='subscribe'/>")
	sub := out.expect(t, "dir", "the subscription request", func(e appservice.Event) bool { return e.Type == appservice.EventSubscription })
	if sub.Subscription != "subscribe" || sub.User != "dir-carol@localhost" || !strings.HasPrefix(sub.From, "alice@localhost") {
		t.Fatalf("subscription %+v", sub)
	}
	approve, _ := xmlstream.ParseStanza([]byte("<presence to='alice@localhost' type='subscribed'/>"), xmlstream.NSClient)
	if err := m.Send(ctx, carol, approve); err != nil {
		t.Fatal(err)
	}
	a.Expect("subscribed", is("presence", "subscribed"))
	p := a.Expect("carol's presence", func(el *xmlstream.Element) bool {
		return el.Local == "presence" && strings.HasPrefix(el.Attr("from"), "dir-carol@localhost/")
	})
	if !strings.Contains(p.String(), "at the desk") {
		t.Fatalf("presence %s", p)
	}
	r := out.expect(t, "dir", "alice's roster change", func(e appservice.Event) bool {
		return e.Type == appservice.EventRoster && e.User == "alice@localhost" && e.Roster.Subscription == "to"
	})
	if r.Roster.JID != "dir-carol@localhost" {
		t.Fatalf("roster %+v", r.Roster)
	}
	// A message with a JSON payload, and the answer.
	a.Send(`<message to='dir-carol@localhost' type='chat' id='q1'><body>lookup</body><json xmlns='urn:xmpp:json:0'>{"op":"lookup","name":"bob"}</json></message>`)
	msg := out.expect(t, "dir", "the message", func(e appservice.Event) bool { return e.Type == appservice.EventMessage })
	if msg.Message.Body != "lookup" || msg.Message.ID != "q1" || string(msg.Message.JSON) != `{"op":"lookup","name":"bob"}` || !strings.Contains(msg.Stanza, "urn:xmpp:json:0") {
		t.Fatalf("message %+v %s", msg.Message, msg.Stanza)
	}
	var js map[string]string
	if err := json.Unmarshal(msg.Message.JSON, &js); err != nil || js["name"] != "bob" {
		t.Fatalf("json %s %v", msg.Message.JSON, err)
	}
	ans, _ := xmlstream.ParseStanza([]byte("<message to='alice@localhost/phone' type='chat'><body>bob is in room 12</body></message>"), xmlstream.NSClient)
	if err := m.Send(ctx, carol, ans); err != nil {
		t.Fatal(err)
	}
	if got := a.Expect("the answer", is("message", "chat")); got.Child(xmlstream.NSClient, "body").Text() != "bob is in room 12" {
		t.Fatalf("answer %s", got)
	}
	// An IQ to the service's session.
	a.Send("<iq type='get' to='dir-carol@localhost/dir' id='v1'><query xmlns='jabber:iq:version'/></iq>")
	iq := out.expect(t, "dir", "the IQ", func(e appservice.Event) bool { return e.Type == appservice.EventIQ })
	if !strings.Contains(iq.Stanza, "jabber:iq:version") {
		t.Fatalf("iq %+v", iq)
	}
	// Away, then gone: messages wait offline and come back as events.
	if err := m.SetPresence(ctx, "dir", carol, appservice.Presence{Available: true, Show: "away"}); err != nil {
		t.Fatal(err)
	}
	a.Expect("carol away", func(el *xmlstream.Element) bool {
		return el.Local == "presence" && strings.Contains(el.String(), "<show>away</show>")
	})
	if err := m.SetPresence(ctx, "dir", carol, appservice.Presence{}); err != nil {
		t.Fatal(err)
	}
	a.Expect("carol gone", is("presence", "unavailable"))
	a.Send("<message to='dir-carol@localhost' type='chat' id='late'><body>are you there?</body></message>")
	a.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Expect("ping", is("iq", "result"))
	out.none(t, "dir", appservice.EventMessage)
	if err := m.SetPresence(ctx, "dir", carol, appservice.Presence{Available: true}); err != nil {
		t.Fatal(err)
	}
	out.expect(t, "dir", "the message kept offline", func(e appservice.Event) bool {
		return e.Type == appservice.EventMessage && e.Message.ID == "late"
	})
	a.Kill()
	out.expect(t, "dir", "alice's logout", func(e appservice.Event) bool { return e.Type == appservice.EventLogout && e.User == "alice@localhost" })
}

// TestHooks: a service's hook refuses, rewrites or lets through messages
// to and from its users; without an answer in time the hook's policy
// applies; traffic of other users never reaches it.
func TestHooks(t *testing.T) {
	var calls sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer server-token-dir-0123" || r.URL.Path != "/hooks/message" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var req struct{ Event appservice.Event }
		if err := json.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		calls.Store(req.Event.Message.ID, req.Event.User)
		body := req.Event.Message.Body
		switch {
		case strings.Contains(body, "forbidden"):
			fmt.Fprint(w, `{"decision":"deny","error":{"condition":"policy-violation","text":"Not that word."}}`)
		case strings.Contains(body, "rewrite"):
			fmt.Fprint(w, `{"decision":"replace","stanza":"<message type='chat'><body>[rewritten]</body></message>"}`)
		case strings.Contains(body, "slow"):
			time.Sleep(time.Second)
			fmt.Fprint(w, `{"decision":"allow"}`)
		case strings.Contains(body, "garbage"):
			fmt.Fprint(w, `{"decision":`)
		default:
			fmt.Fprint(w, `{"decision":"allow"}`)
		}
	}))
	defer srv.Close()
	svc := compile(t, appservice.Config{Name: "dir", URL: srv.URL, Users: []string{`^dir-[a-z]+@localhost$`},
		Hooks: []appservice.HookConfig{{Event: "message", Timeout: 200 * time.Millisecond, OnTimeout: "deny"}}})
	s, m, out := setup(t, svc)
	ctx := context.Background()
	s.AddUser(t, "dir-carol@localhost", "x-unused-password")
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	if !m.HasHooks("message") || m.HasHooks("subscription") {
		t.Fatal("hooks not as declared")
	}
	if err := m.SetPresence(ctx, "dir", jid.MustParse("dir-carol@localhost"), appservice.Presence{Available: true}); err != nil {
		t.Fatal(err)
	}
	a := s.Login(t, "alice", "wonderland", "phone")
	b := s.Login(t, "bob", "builder", "laptop")
	for _, tc := range []struct{ id, body, want string }{
		{"m1", "hello", "allowed"},
		{"m2", "a forbidden word", "policy-violation"},
		{"m3", "please rewrite", "[rewritten]"},
		{"m4", "slow answer", "service-unavailable"},
		{"m5", "garbage answer", "service-unavailable"},
	} {
		a.Send("<message to='dir-carol@localhost' type='chat' id='" + tc.id + "'><body>" + tc.body + "</body></message>")
		switch tc.want {
		case "allowed", "[rewritten]":
			// The answer goes back to alice through the service's user.
			a.Send("<iq type='get' id='p" + tc.id + "'><ping xmlns='urn:xmpp:ping'/></iq>")
			a.Expect("ping", is("iq", "result"))
		default:
			e := a.Expect("refusal of "+tc.id, is("message", "error"))
			if e.Attr("id") != tc.id || !strings.Contains(e.String(), tc.want) {
				t.Fatalf("%s: %s", tc.id, e)
			}
		}
	}
	// A message between users the service does not watch never asks it.
	a.Send("<message to='bob@localhost/laptop' type='chat' id='private'><body>forbidden between us</body></message>")
	if got := b.Expect("alice's message", is("message", "chat")); got.Attr("id") != "private" {
		t.Fatalf("got %s", got)
	}
	if _, ok := calls.Load("private"); ok {
		t.Fatal("the hook was asked about a message that is none of its business")
	}
	for _, id := range []string{"m1", "m2", "m3", "m4"} {
		user, ok := calls.Load(id)
		if !ok {
			t.Fatalf("the hook was not asked about %s", id)
		}
		// As in transactions, the event's user is the service's.
		if user != "dir-carol@localhost" {
			t.Errorf("the hook's event about %s has user %v, want dir-carol@localhost", id, user)
		}
	}
	out.expect(t, "dir", "the allowed message", func(e appservice.Event) bool { return e.Type == "message" && e.Message.Body == "hello" })
	out.expect(t, "dir", "the rewritten message", func(e appservice.Event) bool {
		return e.Type == "message" && e.Message.Body == "[rewritten]" && strings.HasPrefix(e.From, "alice@localhost")
	})
	out.mu.Lock()
	defer out.mu.Unlock()
	for _, e := range out.events["dir"] {
		if e.Message != nil && strings.Contains(e.Message.Body, "forbidden") {
			t.Fatalf("a refused message reached the service: %+v", e)
		}
	}
}

// TestServiceSessionEnded: a service's session that the server ends (its
// account removed, or ended by an administrator) leaves the session
// manager, whose contacts see it go; and neither that nor the service
// setting its user unavailable is reported to the service as a logout of
// its own user.
func TestServiceSessionEnded(t *testing.T) {
	svc := compile(t, appservice.Config{Name: "dir", URL: "http://127.0.0.1:1", Users: []string{`^dir-[a-z]+@localhost$`}})
	s, m, out := setup(t, svc)
	ctx := context.Background()
	s.AddUser(t, "dir-carol@localhost", "x-unused-password")
	s.AddUser(t, "alice@localhost", "wonderland")
	carol := jid.MustParse("dir-carol@localhost")
	full := jid.MustParse("dir-carol@localhost/dir")
	s.Befriend(t, "alice@localhost", "dir-carol@localhost")
	if err := m.SetPresence(ctx, "dir", carol, appservice.Presence{Available: true}); err != nil {
		t.Fatal(err)
	}
	a := s.Login(t, "alice", "wonderland", "phone")
	a.Send("<presence/>")
	a.Expect("carol's presence", func(el *xmlstream.Element) bool {
		return el.Local == "presence" && el.Attr("from") == full.String() && el.Attr("type") == ""
	})

	// Ended by the server, as DELETE /api/v1/sessions does.
	if n := s.SM.EndSessions(full, "policy-violation", ""); n != 1 {
		t.Fatalf("EndSessions ended %d sessions", n)
	}
	a.Expect("carol gone", func(el *xmlstream.Element) bool {
		return el.Local == "presence" && el.Attr("from") == full.String() && el.Attr("type") == "unavailable"
	})
	waitFor(t, func() bool { return len(s.SM.Sessions(carol)) == 0 && !m.Owns(full) }, "the session to leave the session manager")

	// Available again, then unavailable at the service's request.
	if err := m.SetPresence(ctx, "dir", carol, appservice.Presence{Available: true}); err != nil {
		t.Fatal(err)
	}
	if got := s.SM.Sessions(carol); len(got) != 1 || !got[0].Available {
		t.Fatalf("sessions after coming back: %+v", got)
	}
	if err := m.SetPresence(ctx, "dir", carol, appservice.Presence{}); err != nil {
		t.Fatal(err)
	}
	if got := s.SM.Sessions(carol); len(got) != 0 {
		t.Fatalf("sessions after going unavailable: %+v", got)
	}
	a.Send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	a.Expect("ping", is("iq", "result"))
	out.none(t, "dir", appservice.EventLogout)
	out.none(t, "dir", appservice.EventLogin)
}

// waitFor polls cond until it holds, failing after 5 s.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 5 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
