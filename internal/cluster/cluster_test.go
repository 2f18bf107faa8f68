package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/cluster/etcdtest"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestOpenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := "http://" + l.Addr().String()
	l.Close() // nobody listens there now
	_, err = Open(t.Context(), Config{Endpoints: []string{ep}, DialTimeout: time.Second}, quiet())
	if err == nil || !strings.Contains(err.Error(), "etcd unreachable at "+ep) {
		t.Fatalf("Open = %v, want an error naming %s", err, ep)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no etcd endpoint"},
		{Config{Endpoints: []string{"http://127.0.0.1:1"}, Name: "a/b"}, "bad cluster name"},
		{Config{Endpoints: []string{"http://127.0.0.1:1"}, TTL: time.Second}, "below 2s"},
	}
	for _, tt := range tests {
		if _, err := Open(t.Context(), tt.cfg, quiet()); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// waitView waits for a view that satisfies ok.
func waitView(t *testing.T, c *Client, ok func(router.View) bool) router.View {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var rev int64
	for {
		v, err := c.Next(ctx, rev)
		if err != nil {
			t.Fatalf("no such view: %v", err)
		}
		if ok(v) {
			return v
		}
		rev = v.Rev
	}
}

func open(t *testing.T, eps []string) *Client {
	t.Helper()
	c, err := Open(t.Context(), Config{Endpoints: eps, Name: "t", TTL: 2 * time.Second}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func register(t *testing.T, ctx context.Context, c *Client, e Entry) {
	t.Helper()
	run, err := c.Register(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	go run()
}

// TestMembership: registrations appear in the views of every watcher at
// one revision, a stopped instance leaves at once, a crashed one when
// its lease expires, and a domain is refused to a service of another
// kind while an instance of its kind lists it.
func TestMembership(t *testing.T) {
	ec := etcdtest.Start(t, 3)
	a, b := open(t, ec.Endpoints()), open(t, ec.Endpoints()[1:])
	for _, c := range []*Client{a, b} {
		if err := c.Watch(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	register(t, t.Context(), a, Entry{ID: "gw1", Gateway: "127.0.0.1:5270"})
	sm1, stop1 := context.WithCancel(t.Context())
	register(t, sm1, a, Entry{ID: "sm-1", Kind: "sm", Domains: []string{"example.org"}})
	register(t, t.Context(), b, Entry{ID: "sm-2", Kind: "sm", Domains: []string{"example.org"}})
	key := router.ServiceKey("sm", "example.org")
	both := func(v router.View) bool { return len(v.Instances[key]) == 2 && v.Gateways["gw1"] != "" }
	va, vb := waitView(t, a, both), waitView(t, b, both)
	// Both watchers hold the same membership at a revision.
	for va.Rev != vb.Rev {
		if va.Rev < vb.Rev {
			va = waitView(t, a, func(v router.View) bool { return v.Rev >= vb.Rev })
		} else {
			vb = waitView(t, b, func(v router.View) bool { return v.Rev >= va.Rev })
		}
	}
	if !slices.Equal(va.Instances[key], []string{"sm-1", "sm-2"}) || !slices.Equal(vb.Instances[key], va.Instances[key]) {
		t.Fatalf("views at revision %d: %v and %v", va.Rev, va.Instances, vb.Instances)
	}

	// Another kind may not take the domain.
	_, err := b.Register(t.Context(), Entry{ID: "muc-1", Kind: "muc", Domains: []string{"example.org"}})
	if !errors.Is(err, ErrDomainTaken) || !strings.Contains(err.Error(), `example.org is served by "sm"`) {
		t.Fatalf("muc registering example.org: %v", err)
	}

	// A stopped instance revokes its lease: it leaves at once.
	stop1()
	waitView(t, b, func(v router.View) bool { return slices.Equal(v.Instances[key], []string{"sm-2"}) })

	// A crashed one (its connection gone, no revocation) leaves once its
	// lease expires.
	c3 := open(t, ec.Endpoints())
	ctx3, stop3 := context.WithCancel(t.Context())
	defer stop3()
	register(t, ctx3, c3, Entry{ID: "sm-3", Kind: "sm", Domains: []string{"example.org"}})
	waitView(t, b, func(v router.View) bool { return slices.Contains(v.Instances[key], "sm-3") })
	c3.Close()
	waitView(t, b, func(v router.View) bool { return !slices.Contains(v.Instances[key], "sm-3") })

	// The watch survives the loss of one etcd member.
	// A registration meanwhile may have to wait for a new leader.
	ec.Kill(0)
	deadline := time.Now().Add(20 * time.Second)
	for {
		run, err := b.Register(t.Context(), Entry{ID: "sm-4", Kind: "sm", Domains: []string{"example.org"}})
		if err == nil {
			go run()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no registration after an etcd member was killed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitView(t, a, func(v router.View) bool { return slices.Contains(v.Instances[key], "sm-4") })
}

// TestDomainTakeOver: a claim left by a kind no instance runs any more
// is taken over.
func TestDomainTakeOver(t *testing.T) {
	ec := etcdtest.Start(t, 1)
	c := open(t, ec.Endpoints())
	ctx, stop := context.WithCancel(t.Context())
	register(t, ctx, c, Entry{ID: "muc-1", Kind: "muc", Domains: []string{"conference.example.org"}})
	stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		run, err := c.Register(t.Context(), Entry{ID: "sm-1", Kind: "sm", Domains: []string{"conference.example.org"}})
		if err == nil {
			go run()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("claim not taken over: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestView: the keys under the prefix make the view; keys of other
// clusters and unknown keys are ignored, instance ids are sorted.
func TestView(t *testing.T) {
	st := &state{prefix: "/ambrosia/c/", gateways: map[string]string{}, services: map[string]string{}}
	for _, kv := range []struct{ k, v string }{
		{"/ambrosia/c/gateways/gw-b", "10.0.0.2:5270"},
		{"/ambrosia/c/gateways/gw-a", "10.0.0.1:5270"},
		{"/ambrosia/c/services/sm/sm-2", "a.example b.example"},
		{"/ambrosia/c/services/sm/sm-1", "a.example"},
		{"/ambrosia/c/services/muc/muc-1", "conference.a.example"},
		{"/ambrosia/c/domains/a.example", "sm"},
		{"/ambrosia/c/services/broken", "x.example"},
	} {
		st.apply(kv.k, []byte(kv.v), false)
	}
	st.apply("/ambrosia/c/gateways/gw-b", nil, true)
	v := st.view(7)
	tests := []struct {
		key  string
		want []string
	}{
		{router.ServiceKey("sm", "a.example"), []string{"sm-1", "sm-2"}},
		{router.ServiceKey("sm", "b.example"), []string{"sm-2"}},
		{router.ServiceKey("muc", "conference.a.example"), []string{"muc-1"}},
		{router.ServiceKey("sm", "x.example"), nil},
	}
	for _, tt := range tests {
		if got := v.Instances[tt.key]; !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.key, got, tt.want)
		}
	}
	if v.Rev != 7 || len(v.Gateways) != 1 || v.Gateways["gw-a"] != "10.0.0.1:5270" {
		t.Errorf("view %+v", v)
	}
}
