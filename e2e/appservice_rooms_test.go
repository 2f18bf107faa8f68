package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tokens and rooms of the room service test.
const (
	roomsToken       = "rooms-Token-0123456789"
	roomsServerToken = "rooms-Server-Token-0123456789"
	gateToken        = "gate-Token-0123456789"
	gateServerToken  = "gate-Server-Token-0123456789"
	roomSupport      = "support@" + mucService
	roomGate         = "gate@" + mucService
	roomLobby        = "lobby@" + mucService
)

// roomEvent is an event as a room service receives it, in the JSON shape
// docs/appservices.md documents.
type roomEvent struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	User    string    `json:"user"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Stanza  string    `json:"stanza"`
	Room    *struct{ Room, Nick, JID string }
	Message *struct{ ID, Type, Body string }
	// raw is the event as it came, to check the names of its keys.
	raw map[string]json.RawMessage
}

// roomService is an application service written in Go for the test: it
// keeps the events of its transactions (once per transaction id) and
// the hook calls, and answers its room_message hook by the body: "lottery"
// denied, "shout" replaced, "slowpoke" never answered (nor anything when
// hang is set).
type roomService struct {
	*httptest.Server
	serverToken string
	hang        bool

	mu      sync.Mutex
	txns    map[string]bool
	events  []roomEvent
	hooks   []roomEvent
	badAuth int
}

func startRoomService(t *testing.T, serverToken string, hang bool) *roomService {
	t.Helper()
	rs := &roomService{serverToken: serverToken, hang: hang, txns: map[string]bool{}}
	stop := make(chan struct{})
	rs.Server = httptest.NewServer(http.HandlerFunc(rs.serve(stop)))
	t.Cleanup(func() {
		close(stop)
		rs.Close()
	})
	return rs
}

func (rs *roomService) serve(stop <-chan struct{}) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+rs.serverToken {
			rs.mu.Lock()
			rs.badAuth++
			rs.mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		switch {
		case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/transactions/"):
			var txn struct{ Events []json.RawMessage }
			if err := json.Unmarshal(body, &txn); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			evs := make([]roomEvent, 0, len(txn.Events))
			for _, raw := range txn.Events {
				ev, err := parseRoomEvent(raw)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				evs = append(evs, ev)
			}
			id := strings.TrimPrefix(r.URL.Path, "/transactions/")
			rs.mu.Lock()
			if !rs.txns[id] {
				rs.txns[id] = true
				rs.events = append(rs.events, evs...)
			}
			rs.mu.Unlock()
			w.WriteHeader(http.StatusOK)
		case r.Method == http.MethodPost && r.URL.Path == "/hooks/room_message":
			var call struct{ Event json.RawMessage }
			if err := json.Unmarshal(body, &call); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			ev, err := parseRoomEvent(call.Event)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rs.mu.Lock()
			rs.hooks = append(rs.hooks, ev)
			rs.mu.Unlock()
			var text string
			if ev.Message != nil {
				text = ev.Message.Body
			}
			if rs.hang || strings.Contains(text, "slowpoke") {
				select { // never answers: the server gives up
				case <-r.Context().Done():
				case <-stop:
				}
				return
			}
			w.Header().Set("Content-Type", "application/json")
			switch {
			case strings.Contains(text, "lottery"):
				io.WriteString(w, `{"decision": "deny", "error": {"condition": "policy-violation", "text": "No lottery here."}}`)
			case strings.Contains(text, "shout"):
				el := fmt.Sprintf(`<message type='groupchat' id='%s'><body>%s</body></message>`, ev.Message.ID, strings.ToUpper(text)+" (moderated)")
				b, _ := json.Marshal(map[string]string{"decision": "replace", "stanza": el})
				w.Write(b)
			default:
				io.WriteString(w, `{"decision": "allow"}`)
			}
		default:
			http.NotFound(w, r)
		}
	}
}

func parseRoomEvent(raw json.RawMessage) (roomEvent, error) {
	var ev roomEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, err
	}
	if err := json.Unmarshal(raw, &ev.raw); err != nil {
		return ev, err
	}
	return ev, nil
}

func (rs *roomService) snapshot() (events, hooks []roomEvent, badAuth int) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]roomEvent(nil), rs.events...), append([]roomEvent(nil), rs.hooks...), rs.badAuth
}

// summary is "type nick body" for each event, to compare sequences.
func summary(evs []roomEvent) []string {
	var s []string
	for _, e := range evs {
		line := e.Type
		if e.Room != nil {
			line += " " + e.Room.Room + "/" + e.Room.Nick
		}
		if e.Message != nil {
			line += " " + e.Message.ID + " " + e.Message.Body
		}
		s = append(s, line)
	}
	return s
}

// mucClient is a raw client in rooms.
type mucClient struct {
	*rawClient
	t   *testing.T
	jid string // full JID
}

func loginMUC(t *testing.T, s *Server, user, password, resource string) *mucClient {
	t.Helper()
	c, err := dialRaw(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	local, _, _ := strings.Cut(user, "@")
	full, err := c.login(s, local, password, resource)
	if err != nil {
		t.Fatalf("%s: %v", user, err)
	}
	return &mucClient{rawClient: c, t: t, jid: full}
}

// join enters room as nick and waits for its own presence.
func (c *mucClient) join(room, nick string) {
	c.t.Helper()
	c.do(fmt.Sprintf(`<presence to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`, room, nick))
	c.want(`(?s)<presence[^>]*\bfrom=["']` + regexp.QuoteMeta(room+"/"+nick) + `["'][^>]*>.*?</presence>`)
}

// leave exits room as nick and waits for its own unavailable presence.
func (c *mucClient) leave(room, nick string) {
	c.t.Helper()
	c.do(fmt.Sprintf(`<presence to='%s/%s' type='unavailable'/>`, room, nick))
	c.want(`(?s)<presence[^>]*\bfrom=["']` + regexp.QuoteMeta(room+"/"+nick) + `["'][^>]*\btype=["']unavailable["'][^>]*>.*?</presence>|<presence[^>]*\btype=["']unavailable["'][^>]*\bfrom=["']` + regexp.QuoteMeta(room+"/"+nick) + `["'][^>]*>.*?</presence>`)
}

// say sends a groupchat message to room.
func (c *mucClient) say(room, id, body string) {
	c.t.Helper()
	c.do(fmt.Sprintf(`<message to='%s' type='groupchat' id='%s'><body>%s</body></message>`, room, id, body))
}

func (c *mucClient) do(s string) {
	c.t.Helper()
	if err := c.send(s); err != nil {
		c.t.Fatalf("%s: %v", c.jid, err)
	}
}

// want reads up to what re matches and returns what came before it and the
// match, in one string.
func (c *mucClient) want(re string) string {
	c.t.Helper()
	m, err := c.expect(regexp.MustCompile(`(?s)\A.*?(?:` + re + `)`))
	if err != nil {
		c.t.Fatalf("%s: %v", c.jid, err)
	}
	return m
}

// message returns the message with id from room (any sender), with what
// came before it.
func (c *mucClient) message(id string) string {
	c.t.Helper()
	return c.want(`<message[^>]*\bid=["']` + id + `["'][^>]*>.*?</message>`)
}

// TestAppServiceRooms drives the rooms of application services through
// the built binary: a Go service "rooms" owns support@, with a
// room_message hook (timeout 3 s, on_timeout allow); a second one, "gate",
// owns gate@ and never answers its hook (300 ms, on_timeout deny); lobby@
// belongs to nobody. Alice and Bob join support, talk and Bob leaves:
// "rooms" receives room_join, room_message and room_leave in that order,
// in the documented JSON; its hook denies a message (Alice gets the
// service's error, Bob never sees it), replaces another (everyone gets the
// new body) and lets one through when it does not answer in time. Gate's
// silence refuses Alice's messages there with service-unavailable. No
// service hears of lobby@, nor "rooms" of gate@.
func TestAppServiceRooms(t *testing.T) {
	requireTools(t)
	rooms := startRoomService(t, roomsServerToken, false)
	gate := startRoomService(t, gateServerToken, true)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := fmt.Sprintf(`[api]
addr = %q
admin_token = %q

[[appservice]]
name = "rooms"
url = %q
token = %q
server_token = %q
rooms = ['^support@conference\.localhost$']
events = ["room_join", "room_leave", "room_message"]

[[appservice.hook]]
event = "room_message"
timeout = "3s"
on_timeout = "allow"

[[appservice]]
name = "gate"
url = %q
token = %q
server_token = %q
rooms = ['^gate@conference\.localhost$']

[[appservice.hook]]
event = "room_message"
timeout = "300ms"
on_timeout = "deny"
`, apiAddr, apiAdminToken, rooms.URL, roomsToken, roomsServerToken, gate.URL, gateToken, gateServerToken)
	s := startAPIServer(t, apiAddr, conf, "")
	s.api.must(apiAdminToken, "POST", "/users", map[string]string{"jid": alice, "password": alicePass}, http.StatusNoContent)
	s.api.must(apiAdminToken, "POST", "/users", map[string]string{"jid": bob, "password": bobPass}, http.StatusNoContent)

	// Rooms made through the API are open at once; a service makes its
	// own, not another's.
	s.api.must(roomsToken, "POST", "/rooms", map[string]any{"jid": roomSupport, "owner": alice}, http.StatusNoContent)
	s.api.must(roomsToken, "POST", "/rooms", map[string]any{"jid": roomLobby, "owner": alice}, http.StatusForbidden)
	s.api.must(apiAdminToken, "POST", "/rooms", map[string]any{"jid": roomLobby, "owner": alice}, http.StatusNoContent)
	s.api.must(gateToken, "POST", "/rooms", map[string]any{"jid": roomGate, "owner": alice}, http.StatusNoContent)

	a := loginMUC(t, s.Server, alice, alicePass, "desk")
	b := loginMUC(t, s.Server, bob, bobPass, "phone")
	a.join(roomSupport, "Alice")
	b.join(roomSupport, "Bob")
	a.want(`(?s)<presence[^>]*\bfrom=["']` + regexp.QuoteMeta(roomSupport+"/Bob") + `["'][^>]*>.*?</presence>`)

	// Allowed: everyone gets it.
	a.say(roomSupport, "m1", "hello")
	if m := b.message("m1"); !strings.Contains(m, "<body>hello</body>") {
		t.Errorf("Bob got m1 as %q", m)
	}
	a.message("m1")

	// Denied: Alice gets the service's error, nobody the message.
	a.say(roomSupport, "m2", "buy lottery tickets")
	e := a.message("m2")
	for _, want := range []string{"type='error'", "policy-violation", "No lottery here."} {
		if !strings.Contains(strings.ReplaceAll(e, `"`, "'"), want) {
			t.Errorf("Alice's denied message came back as %q, want %s in it", e, want)
		}
	}

	// Replaced: everyone gets the service's version.
	b.say(roomSupport, "m3", "shout")
	if m := b.message("m3"); strings.Contains(m, "lottery") || !strings.Contains(m, "<body>SHOUT (moderated)</body>") {
		t.Errorf("Bob's stream up to m3: %q; want no lottery and the replaced body", m)
	}
	if m := a.message("m3"); !strings.Contains(m, "<body>SHOUT (moderated)</body>") {
		t.Errorf("Alice got m3 as %q", m)
	}

	// Unanswered: on_timeout allow lets it through.
	a.say(roomSupport, "m4", "slowpoke")
	if m := b.message("m4"); !strings.Contains(m, "<body>slowpoke</body>") {
		t.Errorf("Bob got m4 as %q", m)
	}
	a.message("m4")

	// Gate's hook never answers, and its policy is deny.
	a.join(roomGate, "Alice")
	for i := range 3 {
		id := fmt.Sprintf("g%d", i)
		a.say(roomGate, id, "knock")
		e := strings.ReplaceAll(a.message(id), `"`, "'")
		if !strings.Contains(e, "type='error'") || !strings.Contains(e, "service-unavailable") {
			t.Errorf("Alice's message %s in gate@ came back as %q, want a service-unavailable error", id, e)
		}
	}

	// Nobody's room: no events, no hook.
	a.join(roomLobby, "Alice")
	a.say(roomLobby, "l1", "anyone here?")
	a.message("l1")
	a.leave(roomLobby, "Alice")

	b.leave(roomSupport, "Bob")
	a.want(`(?s)<presence[^>]*\bfrom=["']` + regexp.QuoteMeta(roomSupport+"/Bob") + `["'][^>]*\btype=["']unavailable["']|<presence[^>]*\btype=["']unavailable["'][^>]*\bfrom=["']` + regexp.QuoteMeta(roomSupport+"/Bob") + `["']`)

	want := []string{
		"room_join " + roomSupport + "/Alice",
		"room_join " + roomSupport + "/Bob",
		"room_message " + roomSupport + "/Alice m1 hello",
		"room_message " + roomSupport + "/Bob m3 SHOUT (moderated)",
		"room_message " + roomSupport + "/Alice m4 slowpoke",
		"room_leave " + roomSupport + "/Bob",
	}
	var evs, hooks []roomEvent
	checkFor(t, 20*time.Second, func() error {
		evs, hooks, _ = rooms.snapshot()
		if len(evs) < len(want) {
			return fmt.Errorf("rooms received %d events, want %d: %q", len(evs), len(want), summary(evs))
		}
		return nil
	})
	if got := summary(evs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rooms received\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	ids := map[string]bool{}
	for _, ev := range evs {
		if ids[ev.ID] || ev.ID == "" {
			t.Errorf("event id %q empty or seen twice", ev.ID)
		}
		ids[ev.ID] = true
		if ev.Time.IsZero() || time.Since(ev.Time) > time.Hour || ev.Time.Location() != time.UTC {
			t.Errorf("%s: time %v", ev.Type, ev.Time)
		}
		if ev.Room == nil {
			t.Errorf("%s: no room: %v", ev.Type, ev.raw)
			continue
		}
		var keys []string
		for k := range ev.raw {
			keys = append(keys, k)
		}
		nick := ev.Room.Nick
		real, user := a.jid, alice
		if nick == "Bob" {
			real, user = b.jid, bob
		}
		if ev.Room.Room != roomSupport || ev.Room.JID != real || ev.User != user ||
			ev.From != roomSupport+"/"+nick || ev.To != roomSupport {
			t.Errorf("%s: room %+v, user %q, from %q, to %q; want %s, %s/%s, %s, user %s (keys %v)",
				ev.Type, *ev.Room, ev.User, ev.From, ev.To, roomSupport, roomSupport, nick, real, user, keys)
		}
		var rk map[string]json.RawMessage
		if err := json.Unmarshal(ev.raw["room"], &rk); err != nil || len(rk) != 3 || rk["room"] == nil || rk["nick"] == nil || rk["jid"] == nil {
			t.Errorf("%s: room is %s, want the keys room, nick, jid", ev.Type, ev.raw["room"])
		}
		if ev.Type == "room_message" {
			if ev.Message == nil || ev.Message.Type != "groupchat" || !strings.HasPrefix(ev.Stanza, "<message") || !strings.Contains(ev.Stanza, ev.Message.Body) {
				t.Errorf("room_message: message %+v, stanza %q", ev.Message, ev.Stanza)
			}
		} else if ev.Message != nil {
			t.Errorf("%s with a message: %+v", ev.Type, ev.Message)
		}
	}

	// The hook was asked about each message to support@, as Alice's or
	// Bob's, and about nothing else.
	var got []string
	for _, h := range hooks {
		if h.Type != "room_message" || h.To != roomSupport || h.Message == nil {
			t.Errorf("hook call %v", h.raw)
			continue
		}
		got = append(got, h.User+" "+h.From+" "+h.Message.ID+" "+h.Message.Body)
	}
	wantHooks := []string{
		alice + " " + a.jid + " m1 hello",
		alice + " " + a.jid + " m2 buy lottery tickets",
		bob + " " + b.jid + " m3 shout",
		alice + " " + a.jid + " m4 slowpoke",
	}
	if strings.Join(got, "\n") != strings.Join(wantHooks, "\n") {
		t.Errorf("hook calls\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantHooks, "\n"))
	}

	// Gate heard of its room only: Alice's join, none of her refused
	// messages.
	checkFor(t, 20*time.Second, func() error {
		gevs, ghooks, _ := gate.snapshot()
		if len(ghooks) != 3 {
			return fmt.Errorf("gate's hook was asked %d times, want 3", len(ghooks))
		}
		if got := strings.Join(summary(gevs), "\n"); got != "room_join "+roomGate+"/Alice" {
			return fmt.Errorf("gate received %q, want Alice's join only", got)
		}
		return nil
	})
	for _, rs := range []*roomService{rooms, gate} {
		if _, _, bad := rs.snapshot(); bad != 0 {
			t.Errorf("%d calls without the server token", bad)
		}
	}
	for _, ev := range evs {
		if strings.Contains(ev.Stanza, "lobby") || strings.Contains(ev.Stanza, "gate") {
			t.Errorf("rooms heard of another room: %v", ev.raw)
		}
	}
	// The warnings of unanswered hooks are rate-limited per service, and
	// count what they stand for.
	var gateWarned int
	for _, l := range strings.Split(s.Log(), "\n") {
		if strings.Contains(l, `"hook unanswered"`) && strings.Contains(l, `"service":"gate"`) {
			var w struct{ Count int }
			decode(t, l, &w)
			gateWarned += w.Count
		}
	}
	if gateWarned < 1 || gateWarned > 3 {
		t.Errorf("the warnings of gate's hook count %d failures, want 1 to 3 (the first at least, then one line a minute)", gateWarned)
	}
}
