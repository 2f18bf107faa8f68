package link

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

func TestSentAgain(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"<to o='gw:7.1'><message/></to>", "<to again='1' o='gw:7.1'><message/></to>"},
		{"<from o='gw:3' sid='s'><message/></from>", "<from again='1' o='gw:3' sid='s'><message/></from>"},
		{"<to><message/></to>", "<to again='1'><message/></to>"},
		{"<done/>", "<done again='1'/>"},
		// Its instance died twice: marked once.
		{"<to again='1' o='gw:7.1'><message/></to>", "<to again='1' o='gw:7.1'><message/></to>"},
		// Not an element: left alone.
		{"", ""},
		{"text", "text"},
		{"<to", "<to"},
	} {
		in := []byte(c.in)
		if got := string(sentAgain(in)); got != c.want {
			t.Errorf("sentAgain(%q) = %q, want %q", c.in, got, c.want)
		}
		if string(in) != c.in {
			t.Errorf("sentAgain changed its argument to %q", in)
		}
	}
}

// TestEventProcessedAgainArchivesOnce: an instance that archived a
// message and died before acknowledging its event does not archive it a
// second time when a restarted instance (a new Service and session
// manager, which remember nothing) gets the event sent again: it finds
// the entry by the event. An event not processed before, or without an
// origin, is archived as usual.
func TestEventProcessedAgainArchivesOnce(t *testing.T) {
	ctx := context.Background()
	store, bob := storeWithBob(t)
	process := func(frameXML string) { processFresh(t, store, store, frameXML) }
	archive := func() []storage.ArchivedMessage {
		t.Helper()
		p, err := store.QueryArchive(ctx, bob, storage.ArchiveQuery{Max: 100})
		if err != nil {
			t.Fatal(err)
		}
		return p.Items
	}
	msg := "<message xmlns='jabber:client' from='alice@other.example/r' to='" + bob + "' type='chat' id='m1'><body>hi</body></message>"
	process("<to o='gw:7.1'>" + msg + "</to>")
	first := archive()
	if len(first) != 1 {
		t.Fatalf("%d entries archived, want 1", len(first))
	}
	steps := []struct {
		frame string
		want  int
	}{
		{"<to again='1' o='gw:7.1'>" + msg + "</to>", 1}, // sent again after a crash
		{"<to again='1' o='gw:8.1'>" + msg + "</to>", 2}, // sent again, never processed
		{"<to again='1'>" + msg + "</to>", 3},
		{"<to>" + msg + "</to>", 4},
	}
	for i, st := range steps {
		process(st.frame)
		got := archive()
		if len(got) != st.want {
			t.Fatalf("step %d: %d entries archived, want %d", i, len(got), st.want)
		}
		if got[0].ID != first[0].ID || !got[0].Stamp.Equal(first[0].Stamp) {
			t.Fatalf("step %d: the first entry is now %+v, was %+v", i, got[0], first[0])
		}
	}
}

// nextWithin returns the next frame named local, or nil if none comes
// within d.
func (rs *rawService) nextWithin(t *testing.T, local string, d time.Duration) *xmlstream.Element {
	t.Helper()
	rs.nc.SetReadDeadline(time.Now().Add(d))
	defer rs.nc.SetReadDeadline(time.Time{})
	el, err := rs.frame(local)
	if err != nil {
		return nil
	}
	return el
}

// aliceOnARawInstance starts a gateway with one raw instance, "sm-x",
// and binds alice's session, whose announcement the instance has read.
func aliceOnARawInstance(t *testing.T) (*testGateway, *rawService, *client) {
	t.Helper()
	gw := startGateway(t, nil)
	rs := linkRaw(t, gw, "sm-x")
	gw.members(t, 1)
	c := bindClient(t, gw.sm(t), "alice@"+testDomain+"/r")
	rs.next(t, "sbind")
	return gw, rs, c
}

// TestEventSentAgainIsMarked: the gateway sends the events an instance
// did not acknowledge before it died to the next one marked again='1',
// under the same origin; the first sending is not marked, nor is an
// event that first waited for an instance while none was linked.
func TestEventSentAgainIsMarked(t *testing.T) {
	gw, rs, c := aliceOnARawInstance(t)
	send := func(body string) {
		gw.r.Route(context.Background(), router.Stanza{El: message("bob@"+testDomain+"/x", c.full.Bare().String(), body),
			From: jid.MustParse("bob@" + testDomain + "/x"), To: c.full.Bare()})
	}
	send("hello")
	to := rs.next(t, "to")
	if to.Attr("again") != "" || to.Attr("o") == "" {
		t.Fatalf("first sending: %s", to)
	}
	rs.nc.Close()
	eventually(t, "the instance gone", func() bool {
		return strings.Contains(gw.log.String(), "service link ended")
	})
	send("while none was linked")
	next := linkRaw(t, gw, "sm-y")
	again := next.next(t, "to")
	if again.Attr("again") != "1" || again.Attr("o") != to.Attr("o") || payload(again).Child(xmlstream.NSClient, "body").Text() != "hello" {
		t.Fatalf("sent again as %s, first as %s", again, to)
	}
	waited := next.next(t, "to")
	if waited.Attr("again") != "" || payload(waited).Child(xmlstream.NSClient, "body").Text() != "while none was linked" {
		t.Fatalf("the event that waited for an instance came as %s", waited)
	}
}

// TestEventSentAgainToALiveInstanceIsMarked: with two instances linked,
// the events of the user's instance that died go to the other one,
// marked again='1'.
func TestEventSentAgainToALiveInstanceIsMarked(t *testing.T) {
	gw := startGateway(t, nil)
	ids := []string{"sm-x", "sm-y"}
	raws := map[string]*rawService{}
	for _, id := range ids {
		raws[id] = linkRaw(t, gw, id)
	}
	gw.members(t, 2)
	alice := "alice@" + testDomain
	owner := ids[router.Owner(alice, ids)]
	other := ids[0]
	if other == owner {
		other = ids[1]
	}
	m := gw.sm(t)
	c := bindClient(t, m, alice+"/r")
	raws[owner].next(t, "sbind")
	gw.r.Route(context.Background(), router.Stanza{El: message("bob@"+testDomain+"/x", c.full.Bare().String(), "hello"),
		From: jid.MustParse("bob@" + testDomain + "/x"), To: c.full.Bare()})
	to := raws[owner].next(t, "to")
	if to.Attr("again") != "" {
		t.Fatalf("first sending: %s", to)
	}
	raws[owner].nc.Close()
	again := raws[other].nextWithin(t, "to", 10*time.Second)
	if again == nil || again.Attr("again") != "1" || again.Attr("o") != to.Attr("o") {
		t.Fatalf("sent again to the live instance as %v, first as %s", again, to)
	}
}

// TestEventSentAsTheLinkDies: an event sent to an instance while the
// gateway is finding its link dead (here, a sender holding the remote's
// lock as the link ends) is handed on with the events the instance did
// not acknowledge, not left behind in the dead link's outbox.
func TestEventSentAsTheLinkDies(t *testing.T) {
	gw, rs, c := aliceOnARawInstance(t)
	gw.g.mu.Lock()
	rm := gw.g.remotes[testDomain]
	gw.g.mu.Unlock()

	rm.mu.Lock()
	rs.nc.Close()
	eventually(t, "the link found dead", func() bool {
		return strings.Contains(gw.log.String(), "service link ended")
	})
	// Time for the gateway to get as far as it can without the lock;
	// however far that is, the event below must not be lost.
	time.Sleep(100 * time.Millisecond)
	el := message("bob@"+testDomain+"/x", c.full.Bare().String(), "as the link died")
	rm.dispatchLocked(frame("to", el, "o", gw.g.newOrigin()), c.full.Bare().String(), nil)
	rm.mu.Unlock()

	next := linkRaw(t, gw, "sm-y")
	to := next.nextWithin(t, "to", 10*time.Second)
	if to == nil || payload(to).Child(xmlstream.NSClient, "body").Text() != "as the link died" {
		t.Fatalf("the next instance got %v", to)
	}
}
