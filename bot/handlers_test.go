package bot

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/certs"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// TestIQ: requests in a registered namespace reach their handler, whose
// result or error goes back; the bot answers pings and service discovery
// itself, lists its namespaces there, and refuses the rest with
// service-unavailable. SendIQ returns results and errors.
func TestIQ(t *testing.T) {
	s := startServer(t, nil)
	b := start(t, testConfig(s, &dialer{}), func(b *Bot) {
		b.OnIQ("urn:example:echo", func(ctx context.Context, iq *IQ) (string, error) {
			if strings.Contains(iq.Payload.XML, "fail") {
				return "", &Error{Condition: "not-acceptable", Text: "no"}
			}
			if strings.Contains(iq.Payload.XML, "bug") {
				return "", errors.New("internal trouble")
			}
			return "<echo xmlns='urn:example:echo' from='" + iq.From + "'/>", nil
		})
		adder(b)
	})
	sess := waitSession(t, b.Bot, "", nil)
	alice := user(t, s)
	ask := func(id, payload string) *xmlstream.Element {
		t.Helper()
		alice.Send("<iq type='get' id='" + id + "' to='" + sess.JID + "'>" + payload + "</iq>")
		return alice.Expect(id, func(el *xmlstream.Element) bool { return el.Attr("id") == id })
	}
	if r := ask("e1", "<echo xmlns='urn:example:echo'/>"); r.Attr("type") != "result" || r.Child("urn:example:echo", "echo").Attr("from") != "alice@localhost/phone" {
		t.Errorf("echo: %s", r)
	}
	if r := ask("e2", "<echo xmlns='urn:example:echo'>fail</echo>"); parseError(r).Condition != "not-acceptable" || parseError(r).Text != "no" {
		t.Errorf("handler error: %s", r)
	}
	if r := ask("e3", "<echo xmlns='urn:example:echo'>bug</echo>"); parseError(r).Condition != "internal-server-error" || strings.Contains(r.String(), "trouble") {
		t.Errorf("handler failure: %s, want internal-server-error without its text", r)
	}
	if r := ask("u1", "<query xmlns='urn:example:unknown'/>"); parseError(r).Condition != "service-unavailable" {
		t.Errorf("unknown namespace: %s", r)
	}
	if r := ask("p1", "<ping xmlns='urn:xmpp:ping'/>"); r.Attr("type") != "result" {
		t.Errorf("ping: %s", r)
	}
	r := ask("d1", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	var features []string
	for f := range r.Child("http://jabber.org/protocol/disco#info", "query").ChildElements {
		if f.Local == "feature" {
			features = append(features, f.Attr("var"))
		}
	}
	for _, want := range []string{"urn:example:echo", "urn:xmpp:json:0", "urn:xmpp:ping"} {
		if !slices.Contains(features, want) {
			t.Errorf("disco#info features %v lack %s", features, want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.SendIQ(ctx, "localhost", "get", "<ping xmlns='urn:xmpp:ping'/>"); err != nil {
		t.Errorf("ping to the server: %v", err)
	}
	_, err := b.SendIQ(ctx, "localhost", "get", "<query xmlns='urn:example:unknown'/>")
	if !errors.Is(err, &Error{Condition: "service-unavailable"}) {
		t.Errorf("unknown request to the server: %v, want service-unavailable", err)
	}
	if _, err := b.SendIQ(ctx, "", "get", "<broken"); err == nil {
		t.Error("SendIQ sent XML that is not well-formed")
	}
}

// TestRosterAndSubscription: alice asks to see the bot's presence, the
// handler approves, and the roster shows her; the bot names her, then
// removes her.
func TestRosterAndSubscription(t *testing.T) {
	s := startServer(t, nil)
	requests := make(chan string, 1)
	b := start(t, testConfig(s, &dialer{}), func(b *Bot) {
		b.OnSubscription(func(ctx context.Context, r *SubscriptionRequest) {
			requests <- r.From
			if err := r.Approve(ctx); err != nil {
				t.Errorf("approve: %v", err)
			}
		})
	})
	waitSession(t, b.Bot, "", nil)
	alice := user(t, s)
	alice.Send("<presence to='" + botJID + "' type='subscribe'/>")
	if from := <-requests; from != "alice@localhost" {
		t.Errorf("request from %s", from)
	}
	alice.Expect("subscribed", func(el *xmlstream.Element) bool {
		return el.Local == "presence" && el.Attr("type") == "subscribed" && el.Attr("from") == botJID
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	items, err := b.Roster(ctx)
	if err != nil || len(items) != 1 || items[0].JID != "alice@localhost" || items[0].Subscription != "from" {
		t.Fatalf("roster %+v, %v; want alice with subscription from", items, err)
	}
	if err := b.SetRosterItem(ctx, RosterItem{JID: "alice@localhost/phone", Name: "Alice", Groups: []string{"users"}}); err != nil {
		t.Fatal(err)
	}
	items, _ = b.Roster(ctx)
	if len(items) != 1 || items[0].Name != "Alice" || !slices.Equal(items[0].Groups, []string{"users"}) {
		t.Errorf("roster after naming: %+v", items)
	}
	if err := b.Subscribe(ctx, "alice@localhost"); err != nil {
		t.Fatal(err)
	}
	alice.Expect("subscription request", func(el *xmlstream.Element) bool {
		return el.Local == "presence" && el.Attr("type") == "subscribe" && el.Attr("from") == botJID
	})
	if err := b.RemoveRosterItem(ctx, "alice@localhost"); err != nil {
		t.Fatal(err)
	}
	if items, _ = b.Roster(ctx); len(items) != 0 {
		t.Errorf("roster after removal: %+v", items)
	}
}

// TestPresenceAndMessages: the handlers get presence and messages as
// values, payloads they do not model included; SetPresence reaches
// contacts.
func TestPresenceAndMessages(t *testing.T) {
	s := startServer(t, nil)
	s.Befriend(t, botJID, "alice@localhost")
	msgs := make(chan *Message, 4)
	pres := make(chan *Presence, 4)
	b := start(t, testConfig(s, &dialer{}), func(b *Bot) {
		b.OnMessage(func(_ context.Context, m *Message) { msgs <- m })
		b.OnPresence(func(_ context.Context, p *Presence) { pres <- p })
	})
	sess := waitSession(t, b.Bot, "", nil)
	alice := s.Login(t, "alice", userPass, "phone")
	alice.Send("<presence><show>away</show><status>lunch</status><priority>5</priority></presence>")
	for p := range pres {
		if p.From == "alice@localhost/phone" {
			if p.Show != "away" || p.Status != "lunch" || p.Priority != 5 || p.Type != "" {
				t.Errorf("presence %+v", p)
			}
			break
		}
	}
	alice.Send("<message to='" + sess.JID + "' type='chat' id='x1'><body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	m := <-msgs
	// The server adds a stanza-id (XEP-0359) of its own.
	i := slices.IndexFunc(m.Payloads, func(p Payload) bool { return p.Local == "active" })
	if m.Body != "hi" || m.ID != "x1" || m.Type != "chat" || m.JSON != nil || i < 0 ||
		m.Payloads[i].XML != "<active xmlns='http://jabber.org/protocol/chatstates'/>" || m.Payloads[i].Space != "http://jabber.org/protocol/chatstates" {
		t.Errorf("message %+v", m)
	}
	ctx := context.Background()
	if err := b.SetPresence(ctx, "dnd", "busy"); err != nil {
		t.Fatal(err)
	}
	alice.Expect("the bot's presence", func(el *xmlstream.Element) bool {
		show := el.Child(nsClient, "show")
		return el.Local == "presence" && strings.HasPrefix(el.Attr("from"), botJID) && show != nil && show.Text() == "dnd"
	})
	if err := b.SetPresence(ctx, "sleeping", ""); err == nil {
		t.Error("SetPresence took show \"sleeping\"")
	}
	err := b.SendMessage(ctx, &Message{To: "alice@localhost/phone", Body: "with payload",
		Payloads: []Payload{{XML: "<x xmlns='urn:example:x'>1</x>"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := expectMessage(t, alice, "message with payload", func(el *xmlstream.Element) bool { return el.Child("urn:example:x", "x") != nil })
	if got.Child(nsClient, "body").Text() != "with payload" {
		t.Errorf("got %s", got)
	}
	if err := b.SendMessage(ctx, &Message{To: "alice@localhost", Payloads: []Payload{{XML: "<x"}}}); err == nil {
		t.Error("SendMessage took a payload that is not XML")
	}
}

// tlsState returns the state of a real TLS connection of version v.
func tlsState(t *testing.T, v uint16) *tls.ConnectionState {
	t.Helper()
	certPEM, keyPEM, err := certs.SelfSigned("localhost", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: v, MaxVersion: v})
	go func() { _ = srv.Handshake() }()
	cl := tls.Client(b, &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v})
	if err := cl.Handshake(); err != nil {
		t.Fatal(err)
	}
	cs := cl.ConnectionState()
	return &cs
}

// TestChooseMechanism: the strongest usable mechanism, channel binding
// only where the connection and the server's list allow it, and the "y"
// flag when the bot could bind but the server offers no -PLUS.
func TestChooseMechanism(t *testing.T) {
	tls13, tls12 := tlsState(t, tls.VersionTLS13), tlsState(t, tls.VersionTLS12)
	all := []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "PLAIN"}
	plain := []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"}
	for _, tc := range []struct {
		name    string
		offered []string
		cs      *tls.ConnectionState
		list    []string
		hasList bool
		want    choice
		ok      bool
	}{
		{"TLS 1.3, no list", all, tls13, nil, false, choice{mech: "SCRAM-SHA-256"}, true},
		{"TLS 1.3, list", all, tls13, []string{"tls-server-end-point", "tls-exporter"}, true, choice{mech: "SCRAM-SHA-256-PLUS", cb: "tls-exporter"}, true},
		{"TLS 1.3, end-point only", all, tls13, []string{"tls-server-end-point"}, true, choice{mech: "SCRAM-SHA-256-PLUS", cb: "tls-server-end-point"}, true},
		{"TLS 1.3, listed binding unusable", all, tls13, []string{"tls-unique"}, true, choice{mech: "SCRAM-SHA-256"}, true},
		{"TLS 1.2, no list", all, tls12, nil, false, choice{mech: "SCRAM-SHA-256"}, true},
		{"TLS 1.2, tls-unique listed", all, tls12, []string{"tls-unique"}, true, choice{mech: "SCRAM-SHA-256-PLUS", cb: "tls-unique"}, true},
		{"no -PLUS offered", plain, tls13, nil, false, choice{mech: "SCRAM-SHA-256", advertise: true}, true},
		{"no TLS", all, nil, nil, false, choice{mech: "SCRAM-SHA-256"}, true},
		{"no TLS, PLAIN only", []string{"PLAIN"}, nil, nil, false, choice{}, false},
		{"PLAIN over TLS", []string{"PLAIN"}, tls13, nil, false, choice{mech: "PLAIN"}, true},
		{"nothing known", []string{"DIGEST-MD5"}, tls13, nil, false, choice{}, false},
	} {
		got, ok := chooseMechanism(tc.offered, tc.cs, tc.list, tc.hasList)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %+v %v, want %+v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if got := chooseHT([]string{"HT-SHA-256-NONE", "HT-SHA-256-ENDP", "HT-SHA-256-EXPR"}, tls13); got != "HT-SHA-256-EXPR" {
		t.Errorf("FAST mechanism on TLS 1.3: %s", got)
	}
	if got := chooseHT([]string{"HT-SHA-256-NONE", "HT-SHA-256-UNIQ"}, tls12); got != "HT-SHA-256-NONE" {
		t.Errorf("FAST mechanism without a known binding: %s", got)
	}
}

// TestReadMessage reads what handlers get from a stanza.
func TestReadMessage(t *testing.T) {
	el, err := xmlstream.ParseStanza([]byte(`<message from='a@b/c' type='error' id='1'><body>x</body><json xmlns='urn:xmpp:json:0'> {"a":1} </json><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone</text></error></message>`), nsClient)
	if err != nil {
		t.Fatal(err)
	}
	m := readMessage(el)
	var v struct{ A int }
	if m.Body != "x" || json.Unmarshal(m.JSON, &v) != nil || v.A != 1 || m.Error == nil || m.Error.Condition != "item-not-found" || m.Error.Text != "gone" || m.Error.Type != "cancel" {
		t.Errorf("read %+v (error %+v)", m, m.Error)
	}
	el, _ = xmlstream.ParseStanza([]byte(`<message from='a@b/c'><json xmlns='urn:xmpp:json:0'>{not json</json></message>`), nsClient)
	if m := readMessage(el); m.JSON != nil || len(m.Payloads) != 1 || m.Type != "normal" {
		t.Errorf("a container that is not JSON: %+v", m)
	}
}

// TestConfig checks what New refuses.
func TestConfig(t *testing.T) {
	for _, cfg := range []Config{
		{JID: "example.org", Password: "x"},
		{JID: "bot@example.org/res", Password: "x"},
		{JID: "bot@example.org"},
		{JID: "bot@example.org", Password: "x", Plaintext: true},
		{JID: "bot@example.org", Password: "x", Plaintext: true, Server: "192.0.2.1:5222"},
		{JID: "bot@example.org", Password: "x", Server: "no port"},
	} {
		if _, err := New(cfg, xmpptest.Discard()); err == nil {
			t.Errorf("New accepted %+v", cfg)
		}
	}
	if _, err := New(Config{JID: "Bot@Example.org", Password: "x", Plaintext: true, Server: "127.0.0.1:5222"}, nil); err != nil {
		t.Errorf("New refused a plaintext loopback server: %v", err)
	}
	if a, b := agentID("bot@example.org", "bot"), agentID("bot@example.org", "bot"); a != b || len(a) != 36 || a[14] != '5' {
		t.Errorf("user-agent ids %s, %s: want one stable UUID", a, b)
	}
}
