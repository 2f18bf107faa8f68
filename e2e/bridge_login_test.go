package e2e

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/bridgetest"
)

// TestBridgeLoginInSteps: a bridge whose network logs its users in in
// steps (bridgetest's network in memory, run by the test: the binary
// ships no such network) is an external component of the built server,
// and slixmpp's XEP-0050 plugin drives its login command: canceled once,
// then the password and a code, each wrong before right; the user then
// talks with a user of the network; then a login with a QR code, which
// the test scans on the network's side.
func TestBridgeLoginInSteps(t *testing.T) {
	requireTools(t, "slixmpp")
	const secret = "memory-Secret-5"
	const gw = "memory." + domain
	s, port := startWithComponents(t, map[string]string{gw: secret})
	addUser(t, s, alice, alicePass)

	n := bridgetest.New(bridge.Transport)
	n.SetPassword("alice", "network-pw")
	n.SetCode("alice", "271828")
	n.AddUser("bob", false)
	cfg := bridge.DefaultConfig()
	cfg.Domain = gw
	cfg.DataDir = t.TempDir()
	cfg.Connect = bridge.Connect{Mode: "component", Server: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Secret: secret}
	b, err := bridge.New(n, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bridge: %v", err)
		}
	}()

	flow := startPython(t, "bridge_login_command", append(s.clientArgs(false), "--jid", alice, "--password", alicePass,
		"--gateway", gw, "--username", "alice", "--network-password", "network-pw", "--code", "271828")...)
	// bob answers the user's first message.
	deadline := time.After(60 * time.Second)
wait:
	for {
		select {
		case m := <-n.Sent:
			if m.What == "message" && m.To == "bob" && m.Message.Body == "hello over the login" {
				break wait
			}
		case <-deadline:
			t.Fatalf("bob got no message\n%s", flow.out.String())
		}
	}
	sess := n.Session(alice)
	if sess == nil {
		t.Fatal("no session for the user after the login")
	}
	sess.Events().Message("bob", bridge.Message{ID: "w1", Body: "welcome"})
	qr := flow.waitPrefix(t, "QR ", 60*time.Second)
	if !n.Scan(qr, "alice") {
		t.Fatalf("no login shows the QR code %q", qr)
	}
	t.Logf("bridge_login_command.py:\n%s", flow.wait(t))
}
