package e2e

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/example/linechat"
)

// lineServer is the line chat server the example bridge is written for:
// "USER name", then "MSG to text" lines, relayed as "MSG from text".
type lineServer struct {
	addr  string
	mu    sync.Mutex
	conns map[string]net.Conn
}

func startLineServer(t *testing.T) *lineServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ls := &lineServer{addr: l.Addr().String(), conns: map[string]net.Conn{}}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go ls.serve(c)
		}
	}()
	return ls
}

func (ls *lineServer) serve(c net.Conn) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	name := ""
	for sc.Scan() {
		verb, rest, _ := strings.Cut(sc.Text(), " ")
		switch verb {
		case "USER":
			name = rest
			ls.mu.Lock()
			ls.conns[name] = c
			ls.mu.Unlock()
		case "MSG":
			to, text, _ := strings.Cut(rest, " ")
			ls.mu.Lock()
			dst := ls.conns[to]
			ls.mu.Unlock()
			if dst == nil {
				fmt.Fprintf(c, "ERR %s no such user\n", to)
				continue
			}
			fmt.Fprintf(dst, "MSG %s %s\n", name, text)
		case "ACK":
		}
	}
}

// TestBridgeExampleLineChat runs the 100-line example bridge
// (bridge/example/linechat), attached to the built server as an external
// component: an XMPP user and a user of the line chat server talk both
// ways, and a message to a user the server does not have comes back as
// the server's notice.
func TestBridgeExampleLineChat(t *testing.T) {
	requireTools(t, "slixmpp")
	const secret = "linechat-Secret-9"
	const chat = "chat." + domain
	s, port := startWithComponents(t, map[string]string{chat: secret})
	addUser(t, s, alice, alicePass)
	ls := startLineServer(t)
	bob, err := net.Dial("tcp", ls.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	fmt.Fprintf(bob, "USER bob\n")
	lines := bufio.NewScanner(bob)

	cfg := bridge.DefaultConfig()
	cfg.Domain = chat
	cfg.DataDir = t.TempDir()
	cfg.Connect = bridge.Connect{Mode: "component", Server: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Secret: secret}
	b, err := bridge.New(&linechat.Network{Addr: ls.addr}, cfg, slog.New(slog.DiscardHandler))
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

	// bob answers the first line he gets.
	answered := make(chan string, 1)
	go func() {
		for lines.Scan() {
			answered <- lines.Text()
			fmt.Fprintf(bob, "MSG %s b1 hello from the line chat\n", alice)
			return
		}
	}()
	out := mustPython(t, "bridge_chat", append(s.clientArgs(false), "--jid", alice, "--password", alicePass,
		"--to", "bob@"+chat, "--body", "hello from XMPP", "--expect", "hello from the line chat")...)
	select {
	case l := <-answered:
		if f := strings.Fields(l); len(f) < 4 || f[0] != "MSG" || f[1] != alice || strings.Join(f[3:], " ") != "hello from XMPP" {
			t.Errorf("bob got %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bob got nothing")
	}
	t.Logf("bridge_chat.py:\n%s", out)
	out = mustPython(t, "bridge_chat", append(s.clientArgs(false), "--jid", alice, "--password", alicePass,
		"--to", "nobody@"+chat, "--body", "anyone?", "--expect", "(not delivered: no such user)")...)
	t.Logf("bridge_chat.py:\n%s", out)
}
