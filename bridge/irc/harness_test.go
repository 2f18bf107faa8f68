package irc

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/irc/internal/fakeircd"
)

// event is one call of bridge.Events, recorded.
type event struct {
	kind string // the method's name
	from bridge.UserID
	room bridge.RoomID
	msg  bridge.Message
	pres bridge.Presence
	part bridge.Participant
	info bridge.RoomInfo
	err  error
	text string // a reason, nick or subject
	by   bridge.UserID
}

func (e event) String() string {
	s := e.kind + " room=" + string(e.room) + " from=" + string(e.from)
	switch {
	case e.msg.Body != "":
		s += fmt.Sprintf(" msg=%q action=%v", e.msg.Body, e.msg.Action)
	case e.part.ID != "":
		s += fmt.Sprintf(" part=%+v", e.part)
	case e.err != nil:
		s += " err=" + e.err.Error()
	}
	if e.text != "" || e.by != "" {
		s += fmt.Sprintf(" text=%q by=%q", e.text, e.by)
	}
	return s
}

// recorder is a bridge.Events that records every call.
type recorder struct {
	t       testing.TB
	ch      chan event
	timeout time.Duration // of expect

	mu   sync.Mutex
	seen []event
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{t: t, ch: make(chan event, 10000), timeout: 5 * time.Second}
}

func (r *recorder) add(e event) { r.ch <- e }

func (r *recorder) Message(from bridge.UserID, m bridge.Message) {
	r.add(event{kind: "Message", from: from, msg: m})
}
func (r *recorder) Sent(to bridge.UserID, m bridge.Message) {
	r.add(event{kind: "Sent", from: to, msg: m})
}
func (r *recorder) Presence(from bridge.UserID, p bridge.Presence) {
	r.add(event{kind: "Presence", from: from, pres: p})
}
func (r *recorder) ChatState(from bridge.UserID, s bridge.ChatState) {
	r.add(event{kind: "ChatState", from: from, text: string(s)})
}
func (r *recorder) Reaction(from bridge.UserID, x bridge.Reaction) {
	r.add(event{kind: "Reaction", from: from})
}
func (r *recorder) Retraction(from bridge.UserID, id bridge.MessageID) {
	r.add(event{kind: "Retraction", from: from})
}
func (r *recorder) Displayed(from bridge.UserID, id bridge.MessageID) {
	r.add(event{kind: "Displayed", from: from})
}
func (r *recorder) Contact(c bridge.Contact) {
	r.add(event{kind: "Contact", from: c.ID, text: c.Name, pres: c.Presence})
}
func (r *recorder) ContactRemoved(id bridge.UserID) { r.add(event{kind: "ContactRemoved", from: id}) }
func (r *recorder) RoomJoined(room bridge.RoomID, info bridge.RoomInfo) {
	r.add(event{kind: "RoomJoined", room: room, info: info})
}
func (r *recorder) RoomJoinFailed(room bridge.RoomID, err error) {
	r.add(event{kind: "RoomJoinFailed", room: room, err: err})
}
func (r *recorder) RoomMessage(room bridge.RoomID, from bridge.UserID, m bridge.Message) {
	r.add(event{kind: "RoomMessage", room: room, from: from, msg: m})
}
func (r *recorder) RoomPresence(room bridge.RoomID, p bridge.Participant) {
	r.add(event{kind: "RoomPresence", room: room, part: p, from: p.ID})
}
func (r *recorder) RoomLeft(room bridge.RoomID, user bridge.UserID, reason string, by bridge.UserID) {
	r.add(event{kind: "RoomLeft", room: room, from: user, text: reason, by: by})
}
func (r *recorder) RoomNick(room bridge.RoomID, user bridge.UserID, nick string) {
	r.add(event{kind: "RoomNick", room: room, from: user, text: nick})
}
func (r *recorder) RoomSubject(room bridge.RoomID, by bridge.UserID, subject string) {
	r.add(event{kind: "RoomSubject", room: room, by: by, text: subject})
}
func (r *recorder) RoomInvited(room bridge.RoomID, from bridge.UserID, reason string) {
	r.add(event{kind: "RoomInvited", room: room, from: from, text: reason})
}
func (r *recorder) Disconnected(err error) { r.add(event{kind: "Disconnected", err: err}) }

// expect waits for an event of that kind for which ok holds (nil: any),
// skipping others.
func (r *recorder) expect(kind string, ok func(event) bool) event {
	r.t.Helper()
	deadline := time.After(r.timeout)
	for {
		select {
		case e := <-r.ch:
			r.mu.Lock()
			r.seen = append(r.seen, e)
			r.mu.Unlock()
			if e.kind == kind && (ok == nil || ok(e)) {
				return e
			}
		case <-deadline:
			var b strings.Builder
			r.mu.Lock()
			for _, e := range r.seen {
				b.WriteString("\n  " + e.String())
			}
			r.mu.Unlock()
			r.t.Fatalf("no %s event that fits; seen:%s", kind, b.String())
		}
	}
}

// mark is a position in the events expect has read, for sawSince.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// sawSince returns the events of that kind expect read (and skipped)
// since mark.
func (r *recorder) sawSince(mark int, kind string) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event
	for _, e := range r.seen[mark:] {
		if e.kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// none checks that no event of that kind comes within a short while.
func (r *recorder) none(kind string) {
	r.t.Helper()
	deadline := time.After(100 * time.Millisecond)
	for {
		select {
		case e := <-r.ch:
			if e.kind == kind {
				r.t.Fatalf("unexpected %s", e)
			}
		case <-deadline:
			return
		}
	}
}

var _ bridge.Events = (*recorder)(nil)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// network makes a Network for the fake server at addr.
func network(t testing.TB, addr, mode string, change func(*Config)) *Network {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Server, cfg.Mode, cfg.FloodRate = addr, mode, 0
	if change != nil {
		change(&cfg)
	}
	n, err := New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// login logs an XMPP user in and logs them out when the test ends.
func login(t testing.TB, n *Network, jid string, creds map[string]string) (*session, *recorder) {
	t.Helper()
	rec := newRecorder(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := n.Login(ctx, bridge.Account{JID: jid, Credentials: creds}, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Logout(context.Background()) })
	return s.(*session), rec
}

func ctx(t testing.TB) context.Context { return ctxFor(t, 5*time.Second) }

func ctxFor(t testing.TB, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

// start runs a fake server and logs alice@example.org in, in puppet mode.
func start(t *testing.T) (*fakeircd.Server, *session, *recorder) {
	t.Helper()
	srv := fakeircd.Start(t, fakeircd.Options{})
	s, rec := login(t, network(t, srv.Addr(), "puppet", nil), "alice@example.org", nil)
	return srv, s, rec
}
