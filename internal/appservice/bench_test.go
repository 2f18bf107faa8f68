package appservice_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/appservice"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// BenchmarkHookDecide: what a decision hook adds to one message, answered
// by a service on loopback that allows at once (p50 and p99 of the
// decision, one after the other).
func BenchmarkHookDecide(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"decision":"allow"}`)
	}))
	defer srv.Close()
	svc, err := appservice.Compile(appservice.Config{Name: "dir", URL: srv.URL, Token: "service-token-0123456", ServerToken: "server-token-0123456",
		Users: []string{`^dir-[a-z]+@localhost$`}, Hooks: []appservice.HookConfig{{Event: "message", Timeout: time.Second}}})
	if err != nil {
		b.Fatal(err)
	}
	m, err := appservice.New([]*appservice.Service{svc}, appservice.Deps{Router: router.New(xmpptest.Discard()), Outbox: &outbox{events: map[string][]appservice.Event{}, more: make(chan struct{}, 1)}, Log: xmpptest.Discard()})
	if err != nil {
		b.Fatal(err)
	}
	el, _ := xmlstream.ParseStanza([]byte("<message from='alice@localhost/phone' to='dir-carol@localhost' type='chat' id='m1'><body>A line of chat of an ordinary length, like most.</body></message>"), xmlstream.NSClient)
	st := router.Stanza{El: el, From: jid.MustParse("alice@localhost/phone"), To: jid.MustParse("dir-carol@localhost")}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if d := m.Decide(ctx, "message", st); d.Deny {
			b.Fatal("denied")
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkHookNotConcerned: a message no hook is about, with a service
// that has a hook on other users' messages: the cost of asking whether
// it is concerned.
func BenchmarkHookNotConcerned(b *testing.B) {
	svc, err := appservice.Compile(appservice.Config{Name: "dir", URL: "http://127.0.0.1:1", Token: "service-token-0123456", ServerToken: "server-token-0123456",
		Users: []string{`^dir-[a-z]+@localhost$`}, Hooks: []appservice.HookConfig{{Event: "message"}}})
	if err != nil {
		b.Fatal(err)
	}
	m, err := appservice.New([]*appservice.Service{svc}, appservice.Deps{Router: router.New(xmpptest.Discard()), Outbox: &outbox{events: map[string][]appservice.Event{}, more: make(chan struct{}, 1)}, Log: xmpptest.Discard()})
	if err != nil {
		b.Fatal(err)
	}
	el, _ := xmlstream.ParseStanza([]byte("<message from='alice@localhost/phone' to='bob@localhost' type='chat' id='m1'><body>hi</body></message>"), xmlstream.NSClient)
	st := router.Stanza{El: el, From: jid.MustParse("alice@localhost/phone"), To: jid.MustParse("bob@localhost")}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d := m.Decide(ctx, "message", st); d.Deny {
			b.Fatal("denied")
		}
	}
}
