package link

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// ackClient is a client with Stream Management: the gateway is done with
// a delivery only once the test acknowledges it.
type ackClient struct {
	*client
	amu   sync.Mutex
	dones []func()
}

func (c *ackClient) DeliverAcked(el *xmlstream.Element, done func()) bool {
	c.client.Deliver(el)
	c.amu.Lock()
	c.dones = append(c.dones, done)
	c.amu.Unlock()
	return true
}

// ack acknowledges the first n deliveries not acknowledged yet.
func (c *ackClient) ack(n int) {
	c.amu.Lock()
	fs := c.dones[:n]
	c.dones = c.dones[n:]
	c.amu.Unlock()
	for _, f := range fs {
		f()
	}
}

// kept returns how many events the outbox keeps.
func (o *outbox) kept() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.unacked)
}

// bindBob binds bob, a session of the test's making, through gw and
// waits until the service holds it.
func bindBob(t *testing.T, ts *testService, gw *testGateway, bob router.Session) {
	t.Helper()
	if err := gw.sm(t).Bind(context.Background(), bob); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob's session at the service", func() bool {
		ts.sm.mu.Lock()
		defer ts.sm.mu.Unlock()
		return len(ts.sm.sessions["bob@"+testDomain]) == 1
	})
}

// TestLostGatewayHandsOnWhatClientsDidNotAcknowledge: the service keeps a
// delivery until the gateway's client acknowledged it; when the link to
// that gateway drops, what the client had not acknowledged goes back to
// the session manager for the bare JID, in order, and nothing else.
func TestLostGatewayHandsOnWhatClientsDidNotAcknowledge(t *testing.T) {
	gwA, gwB := startGateway(t, nil), startGateway(t, nil)
	ts := startService(t, "sm-1", []*testGateway{gwA, gwB}, nil)
	gwA.members(t, 1)
	gwB.members(t, 1)
	alice := bindClient(t, gwA.sm(t), "alice@"+testDomain+"/a")
	bob := &ackClient{client: newClient(t, "bob@"+testDomain+"/b")}
	bindBob(t, ts, gwB, bob)
	for _, body := range []string{"m1", "m2"} {
		sendFrom(gwA.sm(t), alice, message("", "bob@"+testDomain, body))
	}
	// recSM delivers each message and an echo of it.
	eventually(t, "four deliveries to bob", func() bool { return len(bob.bodies()) == 4 })
	out := &ts.s.links[1].out
	eventually(t, "the service keeping the four", func() bool { return out.kept() == 4 })
	bob.ack(2)
	eventually(t, "the service keeping two", func() bool { return out.kept() == 2 })

	gwB.g.mu.Lock()
	for _, gl := range gwB.g.links {
		gl.c.kill()
	}
	gwB.g.mu.Unlock()
	want := []string{"m2", "echo m2"}
	eventually(t, "m2 and its echo handed back", func() bool {
		ts.sm.mu.Lock()
		defer ts.sm.mu.Unlock()
		return len(ts.sm.redelivered) >= len(want)
	})
	ts.sm.mu.Lock()
	got := slices.Clone(ts.sm.redelivered)
	ts.sm.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("handed back %q, want %q", got, want)
	}
	if len(alice.bodies()) != 0 {
		t.Fatalf("alice got %q", alice.bodies())
	}
}

var _ router.Redeliverer = (*recSM)(nil)

// TestClientStanzaAcceptedOnceAnInstanceHasIt: the gateway tells the
// client's edge that a stanza is safe (router.Accept) only once a service
// instance acknowledged it, also when it had to wait for one.
func TestClientStanzaAcceptedOnceAnInstanceHasIt(t *testing.T) {
	gw := startGateway(t, nil)
	ts := startService(t, "sm-1", []*testGateway{gw}, nil)
	gw.members(t, 1)
	m := gw.sm(t)
	alice := bindClient(t, m, "alice@"+testDomain+"/a")
	var accepted atomic.Int32
	ctx := router.WithAccept(context.Background(), func() func() { return func() { accepted.Add(1) } })
	ts.stop()
	gw.members(t, 0)
	bob, _ := jid.Parse("bob@" + testDomain)
	el := message(alice.full.String(), bob.String(), "m1")
	m.HandleFromSession(ctx, alice, router.Stanza{El: el, From: alice.full, To: bob})
	if accepted.Load() != 0 {
		t.Fatal("accepted while no instance has it")
	}
	startService(t, "sm-2", []*testGateway{gw}, nil)
	eventually(t, "the stanza accepted", func() bool { return accepted.Load() == 1 })
}
