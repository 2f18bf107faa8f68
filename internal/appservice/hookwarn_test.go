package appservice

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

func TestHookWarnings(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		service string
		at      time.Duration // after t0
		ok      bool          // the hook answered
		log     bool          // a failure: logged
		count   int           // the failures its line stands for, or those an answer reports
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"first failure logged at once", []step{{"a", 0, false, true, 1}}},
		{"failures within the interval counted", []step{
			{"a", 0, false, true, 1},
			{"a", time.Second, false, false, 0},
			{"a", 30 * time.Second, false, false, 0},
			{"a", time.Minute, false, true, 3},
			{"a", time.Minute + time.Second, false, false, 0},
		}},
		{"services apart", []step{
			{"a", 0, false, true, 1},
			{"b", time.Second, false, true, 1},
			{"a", 2 * time.Second, false, false, 0},
		}},
		{"an answer reports what was not logged", []step{
			{"a", 0, false, true, 1},
			{"a", time.Second, false, false, 0},
			{"a", 2 * time.Second, false, false, 0},
			{"a", 3 * time.Second, true, false, 2},
			{"a", 4 * time.Second, true, false, 0},
		}},
		{"a flapping service stays within one line per interval", []step{
			{"a", 0, false, true, 1},
			{"a", time.Second, true, false, 0},
			{"a", 2 * time.Second, false, false, 0},
			{"a", 3 * time.Second, true, false, 1},
			{"a", 61 * time.Second, false, true, 1},
		}},
		{"answers alone log nothing", []step{{"a", 0, true, false, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newHookWarnings(time.Minute)
			for i, s := range tc.steps {
				if s.ok {
					if n := w.answered(s.service); n != s.count {
						t.Fatalf("step %d: answered reports %d, want %d", i, n, s.count)
					}
					continue
				}
				log, n := w.failed(s.service, t0.Add(s.at))
				if log != s.log || n != s.count {
					t.Fatalf("step %d: failed = %v, %d; want %v, %d", i, log, n, s.log, s.count)
				}
			}
		})
	}
}

// syncBuf is a log destination for a test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type discardOutbox struct{}

func (discardOutbox) Enqueue(context.Context, string, []Event) {}

// TestHookUnansweredLoggedOnce: a service that is down fails the hook of
// every message to its room, and the log says so once per interval, with
// the count.
func TestHookUnansweredLoggedOnce(t *testing.T) {
	svc, err := Compile(Config{Name: "gate", URL: "http://127.0.0.1:1", Token: testToken, ServerToken: testServerToken,
		Rooms: []string{`^gate@conference\.localhost$`},
		Hooks: []HookConfig{{Event: HookRoomMessage, Timeout: 5 * time.Second, OnTimeout: "deny"}}})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	log := slog.New(slog.NewTextHandler(&logs, nil))
	m, err := New([]*Service{svc}, Deps{Router: router.New(log), Outbox: discardOutbox{}, Log: log,
		Now: func() time.Time { return now }, HookWarnEvery: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	el, err := xmlstream.ParseStanza([]byte(`<message from='alice@localhost/desk' to='gate@conference.localhost' type='groupchat'><body>knock</body></message>`), xmlstream.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	st := router.Stanza{El: el, From: jid.MustParse("alice@localhost/desk"), To: jid.MustParse("gate@conference.localhost")}
	for i := range 10 {
		now = now.Add(time.Second)
		if i == 5 {
			now = now.Add(time.Minute)
		}
		if d := m.Decide(context.Background(), HookRoomMessage, st); !d.Deny {
			t.Fatalf("message %d let through by a hook that is down, on_timeout deny", i)
		}
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, "hook unanswered") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 || !strings.Contains(lines[0], "count=1") || !strings.Contains(lines[1], "count=5") || !strings.Contains(lines[1], "service=gate") {
		t.Fatalf("want 2 lines, for 1 then 5 failures; got:\n%s", logs.String())
	}
}
