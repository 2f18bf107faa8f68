package e2e

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/example/linechat"
)

// lineServer is the line chat server the example bridge is written for:
// "USER name", then "MSG to id text" lines, relayed as "MSG from id text"
// until the addressee sends "ACK id"; what a user did not acknowledge is
// sent again when the user comes back, and a message with an id already
// relayed from the same sender is dropped (counted in dups).
type lineServer struct {
	addr    string
	mu      sync.Mutex
	conns   map[string]net.Conn
	unacked map[string][]string // by addressee: lines not acknowledged, in order
	relayed map[string]bool     // "from id" already relayed
	dups    int
}

func startLineServer(t *testing.T) *lineServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ls := &lineServer{addr: l.Addr().String(), conns: map[string]net.Conn{}, unacked: map[string][]string{}, relayed: map[string]bool{}}
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
	defer func() {
		ls.mu.Lock()
		if ls.conns[name] == c {
			delete(ls.conns, name)
		}
		ls.mu.Unlock()
	}()
	for sc.Scan() {
		verb, rest, _ := strings.Cut(sc.Text(), " ")
		switch verb {
		case "USER":
			name = rest
			ls.mu.Lock()
			ls.conns[name] = c
			for _, l := range ls.unacked[name] {
				fmt.Fprint(c, l)
			}
			ls.mu.Unlock()
		case "MSG":
			to, text, _ := strings.Cut(rest, " ")
			id, _, _ := strings.Cut(text, " ")
			ls.mu.Lock()
			if ls.relayed[name+" "+id] {
				ls.dups++
				ls.mu.Unlock()
				continue
			}
			ls.relayed[name+" "+id] = true
			if to == "nobody" {
				ls.mu.Unlock()
				fmt.Fprintf(c, "ERR %s no such user\n", to)
				continue
			}
			line := fmt.Sprintf("MSG %s %s\n", name, text)
			ls.unacked[to] = append(ls.unacked[to], line)
			if dst := ls.conns[to]; dst != nil {
				fmt.Fprint(dst, line)
			}
			ls.mu.Unlock()
		case "ACK":
			ls.mu.Lock()
			q := ls.unacked[name]
			for i, l := range q {
				if f := strings.Fields(l); len(f) > 2 && f[2] == rest {
					ls.unacked[name] = append(q[:i:i], q[i+1:]...)
					break
				}
			}
			ls.mu.Unlock()
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

// TestBridgeKillExactlyOnce: the example bridge runs as `ambrosia bridge
// run linechat` over the service protocol, behind a gateway with a session
// manager service; an XMPP user and a line chat user send each other 200
// numbered messages at once, and the bridge is killed with SIGKILL half
// way and started again. Every message arrives once, in order, both ways.
func TestBridgeKillExactlyOnce(t *testing.T) {
	requireTools(t, "slixmpp")
	dir := t.TempDir()
	ambrosia(t, "pw\n", "user", "add", "alice@"+domain, "--data", dir, "--create")
	g := startGateway(t, "gateway")
	startSM(t, "service sm", dir, []*splitGateway{g})
	g.waitLog(t, `"msg":"bound"`, 1)

	ls := startLineServer(t)
	const chat = "chat." + domain
	conf := filepath.Join(t.TempDir(), "bridge.toml")
	writeFile(t, conf, fmt.Sprintf(`[bridge]
domain = %q
data_dir = %q
rate_limit = 100 # the test sends 20 messages a second, beyond what the default lets a person send
[bridge.connect]
mode = "service"
server = %q
secret = %q
instance = "linechat-1"
[linechat]
addr = %q
`, chat, filepath.Join(dir, "bridge"), g.svcAddr(), splitSecret, ls.addr))
	runBridge := func(name string) *splitProc {
		return startSplit(t, name, "bridge", "run", "linechat", "--config", conf, "--log-format", "json", "--log-level", "debug")
	}
	br := runBridge("bridge")
	g.waitLog(t, `"kind":"bridge"`, 1)

	// bob, on the line chat: acknowledges what he gets and sends b=1..200.
	bob, err := net.Dial("tcp", ls.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	fmt.Fprintf(bob, "USER bob\n")
	var mu sync.Mutex
	var got []int
	go func() {
		sc := bufio.NewScanner(bob)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 4 && f[0] == "MSG" && strings.HasPrefix(f[3], "a=") {
				n, _ := strconv.Atoi(f[3][2:])
				mu.Lock()
				got = append(got, n)
				mu.Unlock()
				fmt.Fprintf(bob, "ACK %s\n", f[2])
			}
		}
	}()

	flow := startPython(t, "bridge_flow", append([]string{"--port", strconv.Itoa(g.port), "--ca", filepath.Join(dir, "tls", domain+".crt")}, "--jid", "alice@"+domain, "--password", "pw",
		"--to", "bob@"+chat, "--count", "200", "--interval", "0.05", "--kill-after", "100")...)
	flow.waitLine(t, "READY", 30*time.Second)
	go func() {
		for i := 1; i <= 200; i++ {
			fmt.Fprintf(bob, "MSG alice@%s b%d b=%d\n", domain, i, i)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	flow.waitLine(t, "KILL", 60*time.Second)
	br.kill()
	runBridge("bridge (restarted)")
	out := flow.wait(t)
	t.Logf("bridge_flow.py:\n%s", out)
	if !strings.Contains(out, "received 200 duplicates [] gaps [] out-of-order False") {
		t.Fatalf("the line chat's messages did not reach the XMPP user exactly once, in order:\n%s", out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, n := range got {
		if n != i+1 {
			t.Fatalf("bob got %v, want 1..200 once each in order", got)
		}
	}
	if len(got) != 200 {
		t.Fatalf("bob got %d messages: %v", len(got), got)
	}
	ls.mu.Lock()
	t.Logf("copies the line chat server dropped by id (sent again by the restarted bridge): %d", ls.dups)
	ls.mu.Unlock()
}
