package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/componentclient"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// echoBot is the logic of an echo component: every message with a body
// is answered with "echo: " and that body, from the address it was sent
// to.
type echoBot struct {
	r *router.Router

	mu   sync.Mutex
	seen []string // "BODY from FROM"
}

func (e *echoBot) HandleStanza(ctx context.Context, s router.Stanza) {
	if s.El.Local != "message" || s.El.Attr("type") == "error" {
		return
	}
	body := s.El.Child(xmlstream.NSComponent, "body")
	if body == nil {
		return
	}
	e.mu.Lock()
	e.seen = append(e.seen, body.Text()+" from "+s.From.String())
	e.mu.Unlock()
	reply := xmlstream.NewElement(xmlstream.NSComponent, "message")
	if typ := s.El.Attr("type"); typ != "" {
		reply.SetAttr("type", typ)
	}
	if id := s.El.Attr("id"); id != "" {
		reply.SetAttr("id", id)
	}
	reply.AddChild(xmlstream.NewElement(xmlstream.NSComponent, "body")).AddText("echo: " + body.Text())
	e.r.Route(ctx, router.Stanza{El: reply, From: s.To, To: s.From})
}

func (e *echoBot) saw() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.seen, "\n")
}

// echoComponent is an echo component as a bridge would run one: the bot
// in a private router for its domain, a componentclient.Client as the
// router's fallback, here in the test's own process.
type echoComponent struct {
	bot    *echoBot
	client *componentclient.Client
	log    *syncBuffer
}

// startEcho runs an echo component for domain attached to the component
// port addr, stopped when the test ends.
func startEcho(t *testing.T, addr, domain, secret string) *echoComponent {
	t.Helper()
	e, cfg := newEcho(t, addr, domain, secret)
	c, err := componentclient.New(cfg, componentclient.Deps{Router: e.bot.r, Log: slog.New(slog.NewTextHandler(e.log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.client = c
	e.bot.r.SetFallback(c.Forwarder())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10 s of its context's end")
		}
		if t.Failed() {
			t.Logf("--- echo component log ---\n%s--- end of echo component log ---", e.log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !c.Connected() {
		if time.Now().After(deadline) {
			t.Fatalf("the echo component is not connected after 30 s: %v", c.LastError())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e
}

func newEcho(t *testing.T, addr, domain, secret string) (*echoComponent, componentclient.Config) {
	t.Helper()
	e := &echoComponent{log: &syncBuffer{}}
	r := router.New(slog.New(slog.NewTextHandler(e.log, nil)))
	e.bot = &echoBot{r: r}
	if err := r.Register(domain, e.bot); err != nil {
		t.Fatal(err)
	}
	cfg := componentclient.DefaultConfig()
	cfg.Addr, cfg.Domain, cfg.Secret = addr, domain, secret
	cfg.ReconnectMin, cfg.ReconnectMax = 100*time.Millisecond, time.Second
	return e, cfg
}

// refusedWith connects once with a wrong secret and returns the
// condition of the server's stream error.
func refusedWith(t *testing.T, addr, domain, secret string) string {
	t.Helper()
	e, cfg := newEcho(t, addr, domain, "not-"+secret)
	cfg.StopWhenRefused = true
	c, err := componentclient.New(cfg, componentclient.Deps{Router: e.bot.r, Log: slog.New(slog.NewTextHandler(e.log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = c.Run(ctx)
	var se *componentclient.StreamError
	if !errors.As(err, &se) || !se.Handshake {
		t.Fatalf("Run with a wrong secret returned %v, want a refused handshake\n%s", err, e.log.String())
	}
	t.Logf("refused: %v", err)
	return se.Condition
}

// TestComponentClient attaches an echo component built on
// internal/componentclient to Ambrosia, a real Prosody and a real
// ejabberd, as a bridge attaches to whatever server its operator runs:
// a wrong secret is refused with not-authorized, and with the right one
// a slixmpp user of the server sends a message to bot@echo.<domain> and
// gets the echo back.
func TestComponentClient(t *testing.T) {
	const secret = "componentclient-Secret-5"
	type target = componentTarget
	for _, tc := range []struct {
		name  string
		tools []string
		start func(t *testing.T) target
	}{
		{"ambrosia", []string{"slixmpp"}, func(t *testing.T) target {
			s, port := startWithComponents(t, map[string]string{echoDomain: secret})
			addUser(t, s, alice, alicePass)
			return target{net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), echoDomain, alice, alicePass, s.clientArgs(false)}
		}},
		{"prosody", prosodyPeer.tools, func(t *testing.T) target {
			return startPeerWithEcho(t, prosodyPeer, secret, func(ca *fedCA, ip, ambIP string, c peerComponent) {
				startProsody(t, ca, ip, ambIP, false, c)
			})
		}},
		{"ejabberd", ejabberdPeer.tools, func(t *testing.T) target {
			return startPeerWithEcho(t, ejabberdPeer, secret, func(ca *fedCA, ip, ambIP string, c peerComponent) {
				startEjabberd(t, ca, ip, ambIP, false, c)
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireTools(t, tc.tools...)
			tg := tc.start(t)
			if cond := refusedWith(t, tg.compAddr, tg.domain, secret); cond != "not-authorized" {
				t.Errorf("wrong secret refused with %s, want not-authorized", cond)
			}
			e := startEcho(t, tg.compAddr, tg.domain, secret)
			body := "ping over XEP-0114 to " + tc.name
			mustPython(t, "component_echo", append(tg.client,
				"--jid", tg.user, "--password", tg.pass,
				"--component", tg.domain, "--to", "bot@"+tg.domain, "--body", body)...)
			if saw := e.bot.saw(); !strings.Contains(saw, body+" from "+tg.user+"/") {
				t.Errorf("the component did not see the message from %s's full JID:\n%s", tg.user, saw)
			}
			// One stream all along, and nothing the server sent was out of
			// place.
			log := e.log.String()
			if n := strings.Count(log, `msg="component connected"`); n != 1 || strings.Contains(log, "dropped") || strings.Contains(log, "disconnected") {
				t.Errorf("connected %d times, or something was dropped:\n%s", n, log)
			}
		})
	}
}

// componentTarget is a server an echo component attaches to.
type componentTarget struct {
	compAddr   string   // the server's component port
	domain     string   // the component's
	user, pass string   // a user of the server
	client     []string // the connection arguments of the user's script
}

// startPeerWithEcho starts a real peer accepting echo.<its domain> as an
// external component and returns where to reach it.
func startPeerWithEcho(t *testing.T, peer realPeer, secret string, start func(ca *fedCA, ip, ambIP string, c peerComponent)) (tg componentTarget) {
	t.Helper()
	ca := newFedCA(t)
	ambIP, ip := loopbackPair(t)
	domain := "echo." + peer.domain
	start(ca, ip, ambIP, peerComponent{domain: domain, secret: secret})
	tg.compAddr = net.JoinHostPort(ip, peerComponentPort)
	tg.domain = domain
	tg.user, tg.pass = "bob@"+peer.domain, "bob-pw"
	tg.client = []string{"--host", ip, "--port", "5222", "--ca", ca.CAFile}
	return tg
}
