package c2s_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// witnessSM is the session manager with what a split server's gateway
// adds: it learns of failed resumptions, and keeps the sessions bound.
type witnessSM struct {
	*sm.SM
	mu       sync.Mutex
	failed   []string
	sessions map[string]router.Session
}

func (w *witnessSM) ResumeFailed(_ context.Context, user jid.JID, previd string, h uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failed = append(w.failed, fmt.Sprintf("%s %s %d", user, previd, h))
}

func (w *witnessSM) Bind(ctx context.Context, s router.Session) error {
	w.mu.Lock()
	w.sessions[s.JID().String()] = s
	w.mu.Unlock()
	return w.SM.Bind(ctx, s)
}

// counted is what a gateway uses of a c2s session to place deliveries.
type counted interface {
	DeliverCounted(el *xmlstream.Element, b *router.Batch, done func()) (bool, string, uint32)
	router.Resumable
}

// TestDeliverCountedAndFailedResumption: a delivery tells its Stream
// Management number in the session's stream (what the client's h counts,
// stanzas of the edge's own included) and the resumption id; a resumption
// of a session the edge does not know is told to the session manager with
// the client's h, one the edge knows is not.
func TestDeliverCountedAndFailedResumption(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	w := &witnessSM{SM: s.SM, sessions: map[string]router.Session{}}
	s.Router.Unregister(s.Domain, s.SM)
	if err := s.Router.Register(s.Domain, w); err != nil {
		t.Fatal(err)
	}
	s.AddUser(t, "alice@localhost", "wonderland")
	s.AddUser(t, "bob@localhost", "builder")
	b := s.Login(t, "bob", "builder", "b")
	bobID := b.EnableSM(true).Attr("id")
	a := s.Login(t, "alice", "wonderland", "phone")
	w.mu.Lock()
	sess, ok := w.sessions["alice@localhost/phone"].(counted)
	w.mu.Unlock()
	if !ok {
		t.Fatal("a c2s session places no delivery")
	}
	msg := func(id string) *xmlstream.Element {
		el := xmlstream.NewElement(xmlstream.NSClient, "message")
		el.SetAttr("to", "alice@localhost/phone")
		el.SetAttr("from", "bob@localhost/b")
		el.SetAttr("id", id)
		return el
	}
	// Before Stream Management: no place, and done at once.
	var batch router.Batch
	done := 0
	if taken, rid, n := sess.DeliverCounted(msg("m0"), &batch, func() { done++ }); !taken || rid != "" || n != 0 || done != 1 {
		t.Fatalf("without Stream Management: %v %q %d, done %d", taken, rid, n, done)
	}
	batch.Release()
	a.Expect("m0", func(e *xmlstream.Element) bool { return e.Attr("id") == "m0" })
	id := a.EnableSM(true).Attr("id")
	var got []string
	for _, m := range []string{"m1", "m2"} {
		taken, rid, n := sess.DeliverCounted(msg(m), &batch, func() { done++ })
		got = append(got, fmt.Sprintf("%v %v %d", taken, rid == id, n))
	}
	batch.Release()
	ping(a, "p1") // a stanza given otherwise counts too
	taken, rid, n := sess.DeliverCounted(msg("m3"), &batch, func() { done++ })
	got = append(got, fmt.Sprintf("%v %v %d", taken, rid == id, n))
	batch.Release()
	if want := "[true true 1 true true 2 true true 4]"; fmt.Sprint(got) != want {
		t.Fatalf("placed %v, want %v", got, want)
	}
	a.Expect("m3", func(e *xmlstream.Element) bool { return e.Attr("id") == "m3" })
	if h := a.Handled; h != 4 {
		t.Fatalf("client handled %d, want 4", h)
	}
	if rid, sent := sess.Resumption(); rid != id || sent != 4 {
		t.Fatalf("resumption %q %d", rid, sent)
	}

	c := s.Authenticate(t, "alice", "wonderland")
	for _, prev := range []string{"a-session-of-a-lost-gateway", bobID} {
		if got := failedCondition(c.Resume(prev, 3)); got != "item-not-found" {
			t.Fatalf("resume %s: %q", prev, got)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if want := "[alice@localhost a-session-of-a-lost-gateway 3]"; fmt.Sprint(w.failed) != want {
		t.Fatalf("told %v, want %v", w.failed, want)
	}
}
