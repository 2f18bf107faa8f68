package admin_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/admin"
	"github.com/ambrosia-xmpp/ambrosia/internal/appservice"
	"github.com/ambrosia-xmpp/ambrosia/internal/httpapi"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/sm"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
	"github.com/prometheus/client_golang/prometheus"
)

// nowhere drops the events: these tests declare no service.
type nowhere struct{}

func (nowhere) Enqueue(context.Context, string, []appservice.Event) {}

func newBackend(t *testing.T) (*xmpptest.Server, *admin.Backend) {
	t.Helper()
	s := xmpptest.StartServer(t, nil)
	sms := map[string]*sm.SM{"localhost": s.SM}
	m, err := appservice.New(nil, appservice.Deps{Router: s.Router, SMs: sms, Outbox: nowhere{}, Log: xmpptest.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := admin.New(admin.Deps{Manager: m, SMs: sms, Accounts: s.Store})
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

// TestUnknownUser: what is asked about a user without an account is not
// found (404), whatever the call.
func TestUnknownUser(t *testing.T) {
	_, b := newBackend(t)
	ctx := context.Background()
	nobody := jid.MustParse("nobody@localhost")
	for name, err := range map[string]error{
		"presence":     func() error { _, err := b.Presence(ctx, nobody); return err }(),
		"set presence": b.SetPresence(ctx, "", nobody, appservice.Presence{Available: true}),
		"roster":       func() error { _, err := b.Roster(ctx, nobody); return err }(),
		"delete":       b.DeleteUser(ctx, nobody),
		"other domain": func() error { _, err := b.Presence(ctx, jid.MustParse("alice@elsewhere")); return err }(),
	} {
		if !errors.Is(err, httpapi.ErrNotFound) {
			t.Errorf("%s: %v, want not found", name, err)
		}
	}
}

// TestPresence: the presence of each session of a user who has an
// account, none when offline.
func TestPresence(t *testing.T) {
	s, b := newBackend(t)
	ctx := context.Background()
	s.AddUser(t, "alice@localhost", "wonderland")
	alice := jid.MustParse("alice@localhost")
	if ps, err := b.Presence(ctx, alice); err != nil || len(ps) != 0 {
		t.Fatalf("offline: %+v %v", ps, err)
	}
	if err := b.SetPresence(ctx, "", alice, appservice.Presence{Available: true, Show: "dnd", Status: "busy"}); err != nil {
		t.Fatal(err)
	}
	ps, err := b.Presence(ctx, alice)
	if err != nil || len(ps) != 1 || ps[0].Resource != "api" || !ps[0].Available || ps[0].Show != "dnd" || ps[0].Status != "busy" {
		t.Fatalf("presence %+v %v", ps, err)
	}
}

// TestPasswords: a new password replaces the old one, for an account that
// exists only; an unknown account's password is wrong, not an error.
func TestPasswords(t *testing.T) {
	s, b := newBackend(t)
	ctx := context.Background()
	s.AddUser(t, "alice@localhost", "wonderland")
	alice := jid.MustParse("alice@localhost")
	for _, c := range []struct {
		user, password string
		want           bool
	}{
		{"alice@localhost", "wonderland", true},
		{"alice@localhost", "looking-glass", false},
		{"nobody@localhost", "wonderland", false},
	} {
		if ok, err := b.CheckPassword(ctx, jid.MustParse(c.user), c.password); ok != c.want || err != nil {
			t.Errorf("%s %s: %v %v, want %v", c.user, c.password, ok, err, c.want)
		}
	}
	if err := b.SetPassword(ctx, alice, "looking-glass", true); err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.CheckPassword(ctx, alice, "looking-glass"); !ok {
		t.Error("the new password does not work")
	}
	if ok, _ := b.CheckPassword(ctx, alice, "wonderland"); ok {
		t.Error("the old password still works")
	}
	if err := b.SetPassword(ctx, jid.MustParse("nobody@localhost"), "x", false); !errors.Is(err, httpapi.ErrNotFound) {
		t.Errorf("unknown account: %v", err)
	}
}

// TestStats: the metrics summed over their labels, by name.
func TestStats(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	sms := map[string]*sm.SM{"localhost": s.SM}
	m, err := appservice.New(nil, appservice.Deps{Router: s.Router, SMs: sms, Outbox: nowhere{}, Log: xmpptest.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_stanzas_total", Help: "h"}, []string{"kind"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_sessions", Help: "h"})
	reg.MustRegister(c, g)
	c.WithLabelValues("message").Add(3)
	c.WithLabelValues("iq").Add(2)
	g.Set(7)
	b, err := admin.New(admin.Deps{Manager: m, SMs: sms, Accounts: s.Store, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.Stats(context.Background())
	if err != nil || st["test_stanzas_total"] != 5 || st["test_sessions"] != 7 {
		t.Errorf("stats %v (%v)", st, err)
	}
}
