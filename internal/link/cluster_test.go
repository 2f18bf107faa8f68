package link

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/cluster"
	"github.com/ambrosia-xmpp/ambrosia/internal/cluster/etcdtest"
)

// TestClusterOwnership: with a cluster membership (a real etcd), a
// gateway hashes users over the registered instances, linked or not. A
// message for a user of an instance registered but not linked yet waits
// for it and is handled there, not by the instance that is linked; an
// instance linked but no longer registered gets no users.
func TestClusterOwnership(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	cl, err := cluster.Open(t.Context(), cluster.Config{Endpoints: ec.Endpoints(), Name: "link", TTL: 2 * time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Watch(t.Context()); err != nil {
		t.Fatal(err)
	}
	register := func(ctx context.Context, id string) {
		run, err := cl.Register(ctx, cluster.Entry{ID: id, Kind: "sm", Domains: []string{testDomain}})
		if err != nil {
			t.Fatal(err)
		}
		go run()
	}
	gw := startGatewayWith(t, nil, cl)
	register(t.Context(), "sm-a")
	bCtx, unregisterB := context.WithCancel(t.Context())
	defer unregisterB()
	register(bCtx, "sm-b")
	a := startService(t, "sm-a", []*testGateway{gw}, nil)
	m := gw.sm(t)
	ids := []string{"sm-a", "sm-b"}
	onA, onB := usersOn("sm-a", ids, 1), usersOn("sm-b", ids, 1)
	view := func(n int) func() bool {
		return func() bool {
			gw.g.mu.Lock()
			rm := gw.g.remotes[testDomain]
			gw.g.mu.Unlock()
			rm.mu.Lock()
			defer rm.mu.Unlock()
			return len(rm.ids) == n
		}
	}
	eventually(t, "both instances in the gateway's view", view(2))
	from, to := bindClient(t, m, onA[0]+"/r"), bindClient(t, m, onB[0]+"/r")

	// sm-a owns the sender: the message goes to it, it routes it back
	// through the gateway, and there it waits for sm-b.
	sendFrom(m, from, message("", to.full.Bare().String(), "wait for b"))
	eventually(t, "the message waiting for sm-b", func() bool {
		gw.g.mu.Lock()
		rm := gw.g.remotes[testDomain]
		gw.g.mu.Unlock()
		rm.mu.Lock()
		defer rm.mu.Unlock()
		return len(rm.parked) > 0
	})
	if n := a.sm.handledCount("wait for b"); n != 0 || len(to.bodies()) != 0 {
		t.Fatalf("a message for a user of an instance not linked was handled by another (%d) or delivered (%v)", n, to.bodies())
	}
	b := startService(t, "sm-b", []*testGateway{gw}, nil)
	eventually(t, "the message handled by its owner once linked", func() bool { return len(to.bodies()) == 2 })
	if a.sm.handledCount("wait for b") != 0 || b.sm.handledCount("wait for b") != 1 {
		t.Fatalf("handled by sm-a %d times, by sm-b %d times", a.sm.handledCount("wait for b"), b.sm.handledCount("wait for b"))
	}

	// sm-b leaves the membership but stays linked: its users move to sm-a.
	unregisterB()
	eventually(t, "sm-b gone from the gateway's view", view(1))
	sendFrom(m, from, message("", to.full.Bare().String(), "now a"))
	eventually(t, "the message handled by the new owner", func() bool { return a.sm.handledCount("now a") == 1 })
	if b.sm.handledCount("now a") != 0 {
		t.Fatal("an instance out of the membership was given a user")
	}
}
