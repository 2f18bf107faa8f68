package link

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage/memory"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// TestOutboxPlace: a gateway's <at n='N'/> names its n-th event received on
// the run; the service finds that event among those it keeps, across a
// resumption (numbers go on from the gateway's h) and after events were
// done with.
func TestOutboxPlace(t *testing.T) {
	o := outbox{untilDone: true}
	for i := 1; i <= 4; i++ {
		o.send(fmt.Appendf(nil, "<e n='%d'/>", i), "s1")
	}
	c1, read1 := pipeConn(t)
	if err := o.attach(c1, 0); err != nil {
		t.Fatal(err)
	}
	waitForBoth(read1, "<e n='1'/>", "<e n='4'/>")
	o.place(2, "r1", 7)
	o.place(9, "r1", 9) // never sent: nothing
	if err := o.ack(4); err != nil {
		t.Fatal(err)
	}
	if err := o.done(1); err != nil {
		t.Fatal(err)
	}
	o.place(1, "r1", 6) // done with: gone
	o.place(3, "r1", 8)
	o.detach()
	// The gateway is done with 2: the next link starts there.
	c2, read2 := pipeConn(t)
	if err := o.attach(c2, 2); err != nil {
		t.Fatal(err)
	}
	waitForBoth(read2, "<e n='3'/>", "<e n='4'/>")
	o.place(4, "r2", 1) // the 4th event of the run: the second of this link
	var got []string
	for _, it := range o.detach() {
		got = append(got, fmt.Sprintf("%d:%s@%d", it.seq, it.rid, it.pos))
	}
	if want := "[3:r1@8 4:r2@1]"; fmt.Sprint(got) != want {
		t.Fatalf("kept %v, want %v", got, want)
	}
}

// recording is a connection that keeps what is written to it.
type recording struct {
	net.Conn
	mu  sync.Mutex
	out strings.Builder
}

func (r *recording) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.Write(b)
}
func (r *recording) Close() error                     { return nil }
func (r *recording) SetWriteDeadline(time.Time) error { return nil }

func (r *recording) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// TestEnqueueThen: what waits for a frame runs once the frame is written,
// after what was queued before it, or at once on a closed connection.
func TestEnqueueThen(t *testing.T) {
	rec := &recording{}
	c := newConn(rec)
	t.Cleanup(c.kill)
	c.enqueue([]byte("<x/>"))
	done := make(chan string, 1)
	c.enqueueThen([]byte("<at/>"), func() { done <- rec.String() })
	if out := <-done; out != "<x/><at/>" {
		t.Fatalf("ran with %q written", out)
	}
	c.kill()
	ran := false
	c.enqueueThen([]byte("<at/>"), func() { ran = true })
	if !ran {
		t.Fatal("a closed connection must let the waiter go")
	}
	// A connection whose peer is gone lets its waiters go too.
	a, b := net.Pipe()
	b.Close()
	dead := newConn(a)
	gone := make(chan struct{})
	dead.enqueueThen([]byte("<at/>"), func() { close(gone) })
	<-gone
}

// TestHandedMessagesWithdrawnByClaim: messages handed on from a lost
// link's session go to offline storage under event ids; a count for the
// session (a failed resumption's h, or a session announced again)
// withdraws those it covers, whether it comes after the handing on or
// before; messages of unknown place, beyond the count, or claimed for
// another user stay.
func TestHandedMessagesWithdrawnByClaim(t *testing.T) {
	ctx := context.Background()
	bob := "bob@" + testDomain
	newService := func(t *testing.T) (*Service, *memory.Store) {
		store := memory.New()
		creds, err := auth.DeriveCredentials("pw", 4096)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.CreateAccount(ctx, bob, creds); err != nil {
			t.Fatal(err)
		}
		log := xmpptest.Discard()
		r := router.New(log)
		m, err := sm.New(sm.Config{Domain: testDomain, Version: "test"},
			sm.Deps{Router: r, Accounts: store, Roster: store, Offline: store, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewService(ServiceConfig{Gateways: []string{"127.0.0.1:1", "127.0.0.1:2"}, Secret: testSecret,
			Bindings: []Binding{{Domain: testDomain, Kind: "sm", Component: m}}},
			ServiceDeps{Router: r, Credentials: store, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		return s, store
	}
	deliver := func(body, rid string, pos uint32) item {
		el := xmlstream.NewElement(xmlstream.NSClient, "message")
		el.SetAttr("from", "alice@"+testDomain+"/a")
		el.SetAttr("to", bob+"/b")
		el.SetAttr("type", "chat")
		el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body")).AddText(body)
		return item{data: frame("deliver", el, "sid", "s1", "o", "gw:"+body, "k", "1"), user: "s1", rid: rid, pos: pos}
	}
	lost := func(user, rid string, h int) string {
		return fmt.Sprintf("<lost jid='%s' id='%s' h='%d' o='gw:lost-%s-%d'/>", user, rid, h, rid, h)
	}
	items := []item{
		deliver("m1", "r1", 4),
		deliver("m2", "", 0), // its place never came
		deliver("m3", "r1", 5),
		deliver("m4", "r1", 6),
		deliver("m5", "r2", 2), // another session of bob's
	}
	cases := []struct {
		name   string
		before []string // events processed before the link is lost
		after  []string // and after
		want   string   // bodies left offline
	}{
		{"nothing claimed", nil, nil, "m1 m2 m3 m4 m5"},
		{"failed resumption after", nil, []string{lost(bob, "r1", 5)}, "m2 m4 m5"},
		{"failed resumption before", []string{lost(bob, "r1", 5)}, nil, "m2 m4 m5"},
		{"all of it", nil, []string{lost(bob, "r1", 9), lost(bob, "r2", 2)}, "m2"},
		{"h below every place", nil, []string{lost(bob, "r1", 3)}, "m1 m2 m3 m4 m5"},
		{"another user's claim", nil, []string{lost("eve@"+testDomain, "r1", 9)}, "m1 m2 m3 m4 m5"},
		{"another user's claim first", []string{lost("eve@"+testDomain, "r1", 9)}, nil, "m1 m2 m3 m4 m5"},
		{"claimed twice", nil, []string{lost(bob, "r1", 4), lost(bob, "r1", 6)}, "m2 m5"},
		{"session announced again", nil, []string{
			"<sbind sid='s2' jid='" + bob + "/b' o='gw:sb' id='r1' h='6'/>",
		}, "m2 m5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, store := newService(t)
			run := func(frames []string) {
				for _, f := range frames {
					s.process(ctx, s.links[1], mustParse(t, []byte(f)), new(atomic.Int32))
				}
			}
			s.procMu.Lock()
			defer s.procMu.Unlock()
			run(tc.before)
			s.handOver(ctx, s.links[0], items)
			run(tc.after)
			ms, err := store.OfflineMessages(ctx, bob)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				el, err := xmlstream.ParseStanza(m.Stanza, xmlstream.NSClient)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, el.Child(xmlstream.NSClient, "body").Text())
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Fatalf("offline %q, want %q", g, tc.want)
			}
		})
	}
}

// countedClient is a client with resumable Stream Management: it numbers
// what it is given as a c2s session does, and the gateway is done with a
// delivery only once the test acknowledges it.
type countedClient struct {
	*ackClient
	rid string
	n   atomic.Uint32
}

// Resumption is what the gateway claims for the session when it
// announces it again.
func (c *countedClient) Resumption() (string, uint32) { return c.rid, c.n.Load() }

func (c *countedClient) DeliverCounted(el *xmlstream.Element, b *router.Batch, done func()) (bool, string, uint32) {
	c.ackClient.DeliverAcked(el, done)
	return true, c.rid, c.n.Add(1)
}

// TestLostGatewayPlacesAndFailedResumption: the gateway tells the service
// where each delivery went in its client's stream; when the link drops,
// the service remembers the places of what it hands on; a failed
// resumption at another gateway reaches the service with its h, which
// takes the messages it covers off that record.
func TestLostGatewayPlacesAndFailedResumption(t *testing.T) {
	gwA, gwB := startGateway(t, nil), startGateway(t, nil)
	ts := startService(t, "sm-1", []*testGateway{gwA, gwB}, nil)
	gwA.members(t, 1)
	gwB.members(t, 1)
	alice := bindClient(t, gwA.sm(t), "alice@"+testDomain+"/a")
	bob := &countedClient{ackClient: &ackClient{client: newClient(t, "bob@"+testDomain+"/b")}, rid: "r-bob"}
	bindBob(t, ts, gwB, bob)
	for _, body := range []string{"m1", "m2"} {
		sendFrom(gwA.sm(t), alice, message("", "bob@"+testDomain, body))
	}
	// recSM delivers each message and an echo of it: places 1 to 4.
	eventually(t, "four deliveries to bob", func() bool { return len(bob.bodies()) == 4 })
	out := &ts.s.links[1].out
	placed := func() string {
		out.mu.Lock()
		defer out.mu.Unlock()
		var ps []string
		for _, it := range out.unacked {
			ps = append(ps, fmt.Sprintf("%s@%d", it.rid, it.pos))
		}
		return strings.Join(ps, " ")
	}
	eventually(t, "the four placed", func() bool { return placed() == "r-bob@1 r-bob@2 r-bob@3 r-bob@4" })
	bob.ack(2)
	eventually(t, "the service keeping two", func() bool { return out.kept() == 2 })
	gwB.g.mu.Lock()
	for _, gl := range gwB.g.links {
		gl.c.kill()
	}
	gwB.g.mu.Unlock()
	handed := func() string {
		ts.s.procMu.Lock()
		defer ts.s.procMu.Unlock()
		hs, ok := ts.s.handed.get("r-bob")
		if !ok {
			return "none"
		}
		var ps []string
		for _, m := range hs.msgs {
			ps = append(ps, fmt.Sprint(m.pos))
		}
		return hs.bare + " " + strings.Join(ps, " ")
	}
	eventually(t, "m2 and its echo handed on with their places", func() bool { return handed() == "bob@"+testDomain+" 3 4" })
	// Bob's client had the third: its resumption fails at gateway A.
	w, ok := gwA.sm(t).(router.ResumeWitness)
	if !ok {
		t.Fatal("the gateway's session manager takes no failed resumption")
	}
	bare := bob.full.Bare()
	w.ResumeFailed(context.Background(), bare, "r-bob", 3)
	eventually(t, "the third taken off", func() bool { return handed() == "bob@"+testDomain+" 4" })
}

// TestLinkDropWhileGatewayLives: a link that drops while its gateway
// lives on makes the service hand on what the gateway's client had not
// acknowledged; the gateway, which still holds it, claims it back when it
// announces the session again on the next link.
func TestLinkDropWhileGatewayLives(t *testing.T) {
	gw := startGateway(t, nil)
	ts := startService(t, "sm-1", []*testGateway{gw}, nil)
	gw.members(t, 1)
	alice := bindClient(t, gw.sm(t), "alice@"+testDomain+"/a")
	bob := &countedClient{ackClient: &ackClient{client: newClient(t, "bob@"+testDomain+"/b")}, rid: "r-bob"}
	bindBob(t, ts, gw, bob)
	sendFrom(gw.sm(t), alice, message("", "bob@"+testDomain, "m1"))
	eventually(t, "two deliveries to bob", func() bool { return len(bob.bodies()) == 2 })
	l := ts.s.links[0]
	eventually(t, "both placed", func() bool {
		l.out.mu.Lock()
		defer l.out.mu.Unlock()
		return len(l.out.unacked) == 2 && l.out.unacked[1].pos == 2
	})
	handed := func() (string, bool) {
		ts.s.procMu.Lock()
		defer ts.s.procMu.Unlock()
		hs, ok := ts.s.handed.get("r-bob")
		if !ok {
			return "", false
		}
		return fmt.Sprint(len(hs.msgs)), true
	}
	l.mu.Lock()
	c := l.c
	l.mu.Unlock()
	c.kill()
	// Handed on, then claimed back once bob's session is announced again.
	eventually(t, "the record emptied by the claim", func() bool {
		n, ok := handed()
		return ok && n == "0"
	})
	ts.sm.mu.Lock()
	got := fmt.Sprint(ts.sm.redelivered)
	ts.sm.mu.Unlock()
	if got != "[m1 echo m1]" {
		t.Fatalf("handed on %s", got)
	}
}
