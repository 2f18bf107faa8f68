package bot

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

type addRequest struct {
	Op   string `json:"op"`
	A, B int
}

// adder answers {"op":"add","a":1,"b":2} with {"result":3}.
func adder(b *Bot) {
	b.OnJSON(HandleJSON(func(ctx context.Context, from string, r addRequest) (any, error) {
		if r.Op != "add" {
			return nil, &Error{Condition: "bad-request", Text: "unknown op " + r.Op}
		}
		return map[string]int{"result": r.A + r.B}, nil
	}))
}

// TestLoginSASL2 logs in to Ambrosia, which offers SASL2, Bind 2, FAST
// and Stream Management: the first login uses the password with channel
// binding and gets a FAST token; after the connection is cut, the next
// login uses the token and resumes the session.
func TestLoginSASL2(t *testing.T) {
	s := startServer(t, nil)
	d := &dialer{}
	tokens := &MemoryTokens{}
	cfg := testConfig(s, d)
	cfg.Tokens = tokens
	b := start(t, cfg, nil)
	first := waitSession(t, b.Bot, "", nil)
	if !first.SASL2 || !first.Bind2 || !first.StreamManagement || first.FAST || first.Resumed {
		t.Errorf("first login: %+v, want SASL2, Bind 2 and Stream Management, with the password", first)
	}
	if first.Mechanism != "SCRAM-SHA-512-PLUS" || first.ChannelBinding != "tls-exporter" || first.TLS != "starttls" {
		t.Errorf("first login with %s over %s (binding %q), want SCRAM-SHA-512-PLUS with tls-exporter over STARTTLS",
			first.Mechanism, first.TLS, first.ChannelBinding)
	}
	if !strings.HasPrefix(first.JID, botJID+"/bot") {
		t.Errorf("bound %s, want %s/bot…", first.JID, botJID)
	}
	tok, err := tokens.LoadToken(context.Background(), b.tokenKey())
	if err != nil || tok == nil || tok.Mechanism != "HT-SHA-256-EXPR" {
		t.Fatalf("token after the first login: %+v, %v; want one for HT-SHA-256-EXPR", tok, err)
	}

	d.cut()
	second := waitSession(t, b.Bot, "resumed", func(s Session) bool { return s.Resumed })
	if !second.FAST || second.Mechanism != "HT-SHA-256-EXPR" || second.JID != first.JID {
		t.Errorf("second login: %+v, want FAST with HT-SHA-256-EXPR resuming %s", second, first.JID)
	}
	if tok2, _ := tokens.LoadToken(context.Background(), b.tokenKey()); tok2 == nil || tok2.Count != 1 {
		t.Errorf("token after its first use: %+v, want count 1", tok2)
	}
}

// TestDirectTLS logs in over direct TLS (XEP-0368).
func TestDirectTLS(t *testing.T) {
	s := startServer(t, nil)
	cfg := testConfig(s, &dialer{})
	cfg.Server, cfg.DirectTLS = s.TLSAddr, true
	b := start(t, cfg, nil)
	if sess := waitSession(t, b.Bot, "", nil); sess.TLS != "direct" || !sess.SASL2 {
		t.Errorf("session %+v, want SASL2 over direct TLS", sess)
	}
}

// TestUntrustedServer: a certificate the bot does not trust stops the
// login before anything is sent.
func TestUntrustedServer(t *testing.T) {
	s := startServer(t, nil)
	cfg := testConfig(s, &dialer{})
	cfg.RootCAs = x509.NewCertPool()
	b := start(t, cfg, nil)
	xmpptest.CheckFor(t, 10*time.Second, func() error {
		if !strings.Contains(b.log.String(), "certificate signed by unknown authority") {
			return errors.New("no certificate error logged")
		}
		return nil
	})
	if _, ok := b.Session(); ok {
		t.Error("logged in to a server with an untrusted certificate")
	}
}

// TestJSONRoundTrip has a user send JSON requests in a message and in an
// IQ: the answers carry the result, or the error the handler chose.
func TestJSONRoundTrip(t *testing.T) {
	s := startServer(t, nil)
	b := start(t, testConfig(s, &dialer{}), adder)
	sess := waitSession(t, b.Bot, "", nil)
	alice := user(t, s)

	alice.Send(`<message to='` + sess.JID + `' type='chat' id='m1'><thread>t1</thread><json xmlns='urn:xmpp:json:0'>{"op":"add","a":1,"b":2}</json></message>`)
	m := expectMessage(t, alice, "the JSON answer", func(el *xmlstream.Element) bool { return el.Child(nsJSON, "json") != nil })
	var res struct{ Result int }
	if err := json.Unmarshal([]byte(m.Child(nsJSON, "json").Text()), &res); err != nil || res.Result != 3 {
		t.Errorf("answer %s: %v, want result 3", m, err)
	}
	if m.Attr("type") != "chat" || m.Child(nsClient, "thread") == nil || m.Child(nsClient, "thread").Text() != "t1" {
		t.Errorf("answer %s: want a chat message in thread t1", m)
	}

	alice.Send(`<iq to='` + sess.JID + `' type='get' id='q1'><json xmlns='urn:xmpp:json:0'>{"op":"add","a":40,"b":2}</json></iq>`)
	r := alice.Expect("the IQ answer", func(el *xmlstream.Element) bool { return el.Attr("id") == "q1" })
	if r.Attr("type") != "result" || !strings.Contains(r.String(), `{"result":42}`) {
		t.Errorf("IQ answer %s, want a result with {\"result\":42}", r)
	}

	alice.Send(`<message to='` + sess.JID + `' type='chat' id='m2'><json xmlns='urn:xmpp:json:0'>{"op":"mul","a":1,"b":2}</json></message>`)
	e := expectMessage(t, alice, "the error", func(el *xmlstream.Element) bool { return el.Attr("id") == "m2" })
	if e.Attr("type") != "error" || parseError(e).Condition != "bad-request" || !strings.Contains(parseError(e).Text, "unknown op mul") {
		t.Errorf("answer to an unknown op: %s, want bad-request saying so", e)
	}

	alice.Send(`<message to='` + sess.JID + `' type='chat' id='m3'><json xmlns='urn:xmpp:json:0'>{"op":"add","a":"one"}</json></message>`)
	e = expectMessage(t, alice, "the decoding error", func(el *xmlstream.Element) bool { return el.Attr("id") == "m3" })
	if e.Attr("type") != "error" || parseError(e).Condition != "bad-request" {
		t.Errorf("answer to JSON that does not decode: %s, want bad-request", e)
	}

	// The bot sends JSON of its own too.
	if err := b.SendJSON(context.Background(), "alice@localhost/phone", map[string]any{"hello": []int{1, 2}}); err != nil {
		t.Fatal(err)
	}
	m = expectMessage(t, alice, "JSON from the bot", func(el *xmlstream.Element) bool {
		j := el.Child(nsJSON, "json")
		return j != nil && j.Text() == `{"hello":[1,2]}`
	})
	if m.Attr("type") != "chat" {
		t.Errorf("SendJSON sent %s, want a chat message", m)
	}
	if err := b.SendJSON(context.Background(), "alice@localhost", json.RawMessage(`{"broken"`)); err == nil {
		t.Error("SendJSON sent a RawMessage that is not JSON")
	}
	var xe *Error
	if !errors.As(error(&Error{Condition: "bad-request"}), &xe) {
		t.Fatal("Error is not an error")
	}
}
