package link

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
)

// gatedSM is a recording session manager whose Bind waits until the test
// opens its gate, as a session manager loading each moved user's state
// from a slow store does.
type gatedSM struct {
	*recSM
	gate chan struct{}
}

func (m gatedSM) Bind(ctx context.Context, s router.Session) error {
	<-m.gate
	return m.recSM.Bind(ctx, s)
}

// gated makes a service's session manager a gatedSM with the gate closed.
func gated(gate chan struct{}) func(*ServiceConfig) {
	return func(cfg *ServiceConfig) {
		cfg.Bindings[0].Component = gatedSM{recSM: cfg.Bindings[0].Component.(*recSM), gate: gate}
	}
}

// queuedAt returns how many sessions the gateway has still to announce
// to their new owners.
func queuedAt(tg *testGateway) int {
	tg.g.mu.Lock()
	rm := tg.g.remotes[testDomain]
	tg.g.mu.Unlock()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.queued
}

// handoverUnderWay binds sessions clients through a gateway to sm-a,
// starts sm-b held by gate, and ends sm-a, so that every session moves to
// sm-b, window sessions unacknowledged at a time; it returns once the
// gateway has sessions queued for sm-b, which takes none until gate closes.
func handoverUnderWay(t *testing.T, sessions, window int) (gw *testGateway, m router.SessionManager, clients []*client, b *testService, gate chan struct{}) {
	t.Helper()
	gw = startGateway(t, nil)
	gw.g.cfg.MoveWindow = window
	a := startService(t, "sm-a", []*testGateway{gw}, nil)
	gw.members(t, 1)
	m = gw.sm(t)
	clients = make([]*client, sessions)
	for i := range sessions {
		clients[i] = bindClient(t, m, fmt.Sprintf("u%d@%s/r", i, testDomain))
	}
	eventually(t, "sessions at sm-a", func() bool {
		a.sm.mu.Lock()
		defer a.sm.mu.Unlock()
		return len(a.sm.sessions) == sessions
	})
	gate = make(chan struct{})
	b = startService(t, "sm-b", []*testGateway{gw}, gated(gate))
	gw.members(t, 2)
	// sm-a ends with every session of the gateway on it (those it owns
	// under the two instances are not moved while sm-b joins).
	a.stop()
	gw.members(t, 1)
	eventually(t, "the handover under way", func() bool { return queuedAt(gw) > 0 })
	return gw, m, clients, b, gate
}

// TestLookupsDuringHandover: an instance handed a dead instance's
// sessions answers credential lookups while it is still taking them in
// (here it takes none until the test lets it), and the gateway keeps the
// sessions it has not announced yet, at most a window's worth in flight;
// once the instance goes on, every session arrives.
func TestLookupsDuringHandover(t *testing.T) {
	const sessions = 500
	gw, _, _, b, gate := handoverUnderWay(t, sessions, 16)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := gw.g.Credential(ctx, "alice@"+testDomain, "SHA-256")
	if err != nil {
		t.Fatalf("credential lookup during the handover: %v", err)
	}
	if c.Hash != "SHA-256" {
		t.Fatalf("credential lookup: hash %q", c.Hash)
	}
	if q := queuedAt(gw); q < sessions/2-2*gw.g.cfg.MoveWindow {
		t.Errorf("%d sessions kept at the gateway while the instance takes none, want all but a window", q)
	}

	close(gate)
	eventually(t, "every session at sm-b", func() bool {
		b.sm.mu.Lock()
		defer b.sm.mu.Unlock()
		return len(b.sm.sessions) == sessions
	})
	if q := queuedAt(gw); q != 0 {
		t.Errorf("%d sessions still queued", q)
	}
}

// TestHandoverKeepsUserOrder: a message for a user whose session the
// gateway has not announced to the new owner yet makes the gateway
// announce it first, so the new owner delivers the message to it (a
// message ahead of the announcement would find the user offline).
func TestHandoverKeepsUserOrder(t *testing.T) {
	const sessions = 300
	_, m, clients, b, gate := handoverUnderWay(t, sessions, 1)
	// The last session is at the end of the queue: the window of one is
	// held by a session sm-b has not taken in.
	last := clients[sessions-1]
	sender := clients[0]
	sendFrom(m, sender, message("", last.full.Bare().String(), "while moving"))
	close(gate)
	eventually(t, "the message delivered to the moved session", func() bool {
		return slices.Contains(last.bodies(), "while moving")
	})
	eventually(t, "every session at sm-b", func() bool {
		b.sm.mu.Lock()
		defer b.sm.mu.Unlock()
		return len(b.sm.sessions) == sessions
	})
}

// queuedOf reports whether the gateway has still to announce a session
// of bare to its new owner.
func queuedOf(tg *testGateway, bare string) bool {
	tg.g.mu.Lock()
	rm := tg.g.remotes[testDomain]
	tg.g.mu.Unlock()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return len(rm.movingOf[bare]) > 0
}

// TestWantedSessionMovesFirst: a message to a user whose session on
// another gateway is still to move makes the instance ask that gateway
// for it (want), which announces it ahead of the others. Here the
// gateways announce moved sessions only when asked (no window), so
// without want the addressee's session would not move at all.
func TestWantedSessionMovesFirst(t *testing.T) {
	const sessions = 40
	gw1, gw2 := startGateway(t, nil), startGateway(t, nil)
	for _, g := range []*testGateway{gw1, gw2} {
		g.g.cfg.MoveWindow = 0 // set after NewGateway: no slot, only what is asked for moves
		g.g.moveWait = time.Minute
	}
	a := startService(t, "sm-a", []*testGateway{gw1, gw2}, nil)
	gw1.members(t, 1)
	gw2.members(t, 1)
	m1, m2 := gw1.sm(t), gw2.sm(t)
	sender := bindClient(t, m1, "sender@"+testDomain+"/r")
	var on2 []*client
	for i := range sessions {
		on2 = append(on2, bindClient(t, m2, fmt.Sprintf("u%d@%s/r", i, testDomain)))
	}
	eventually(t, "sessions at sm-a", func() bool {
		a.sm.mu.Lock()
		defer a.sm.mu.Unlock()
		return len(a.sm.sessions) == sessions+1
	})
	b := startService(t, "sm-b", []*testGateway{gw1, gw2}, nil)
	gw1.members(t, 2)
	gw2.members(t, 2)
	a.stop()
	gw1.members(t, 1)
	gw2.members(t, 1)
	p := on2[sessions-1]
	bare := p.full.Bare().String()
	eventually(t, "the addressee's session waiting at its gateway", func() bool { return queuedOf(gw2, bare) })
	sendFrom(m1, sender, message("", bare, "to a session still to move"))
	eventually(t, "the addressee's session announced to sm-b", func() bool {
		b.sm.mu.Lock()
		defer b.sm.mu.Unlock()
		return len(b.sm.sessions[bare]) == 1
	})
	if q := queuedAt(gw2); q < sessions/2 {
		t.Errorf("%d sessions left to move at the addressee's gateway, want the others still waiting", q)
	}
}

// TestOfflineDeliveryOfAnEventDeliveredBefore: a message given from
// offline storage under the event it was stored for (DeliverFor) is the
// same delivery as the one that event made to the session before, and
// the gateway gives the client only one; under another event it is
// given.
func TestOfflineDeliveryOfAnEventDeliveredBefore(t *testing.T) {
	gw := startGateway(t, nil)
	a := startService(t, "sm-a", []*testGateway{gw}, nil)
	gw.members(t, 1)
	m := gw.sm(t)
	bob := bindClient(t, m, "bob@"+testDomain+"/r")
	eventually(t, "bob's session at sm-a", func() bool {
		a.sm.mu.Lock()
		defer a.sm.mu.Unlock()
		return len(a.sm.sessions["bob@"+testDomain]) == 1
	})
	rm := m.(*remote)
	ctx := withOrigin(context.Background(), "ev-1")
	msg := message("alice@"+testDomain+"/x", "bob@"+testDomain, "once")
	st := router.Stanza{El: msg, From: jid.MustParse("alice@" + testDomain + "/x"), To: jid.MustParse("bob@" + testDomain)}
	rm.HandleStanza(ctx, st)
	eventually(t, "the message delivered", func() bool { return slices.Contains(bob.bodies(), "once") })

	a.sm.mu.Lock()
	px := a.sm.sessions["bob@"+testDomain][0].(router.EventSession)
	a.sm.mu.Unlock()
	px.DeliverFor(message("alice@"+testDomain+"/x", "bob@"+testDomain, "once"), "ev-1")
	px.DeliverFor(message("alice@"+testDomain+"/x", "bob@"+testDomain, "stored"), "ev-2")
	eventually(t, "the message of the other event delivered", func() bool { return slices.Contains(bob.bodies(), "stored") })
	n := 0
	for _, b := range bob.bodies() {
		if b == "once" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the message of ev-1 delivered %d times: %v", n, bob.bodies())
	}
}

// TestAheadToldOfAnnouncedSessions: the service tells ServiceDeps.Ahead
// the bare JID of every session announced as it reads the announcement,
// before the session manager processes it, so that a store can read the
// user's state meanwhile.
func TestAheadToldOfAnnouncedSessions(t *testing.T) {
	gw := startGateway(t, nil)
	var mu sync.Mutex
	var told []string
	ts := startServiceWith(t, "sm-1", []*testGateway{gw}, nil, func(d *ServiceDeps) {
		d.Ahead = func(bare string) {
			mu.Lock()
			told = append(told, bare)
			mu.Unlock()
		}
	})
	gw.members(t, 1)
	bindBob(t, ts, gw, newClient(t, "bob@"+testDomain+"/b"))
	// Processed, so read before.
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(told, []string{"bob@" + testDomain}) {
		t.Errorf("Ahead was told %q, want bob's bare JID once", told)
	}
}
