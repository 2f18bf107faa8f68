package e2e

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bot"
)

// jsonBotPath builds the example bot of the bot package once, with -race
// when the tests run with it.
var jsonBotPath = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ambrosia-jsonbot-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "jsonbot")
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./bot/example/jsonbot")...)
	cmd.Dir = moduleRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{err, string(b)}
	}
	return out, nil
})

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// botTarget is a server the example bot logs in to.
type botTarget struct {
	server, caFile string   // the client listener and the CA its certificate comes from
	bot, botPass   string   // the bot's account
	user, userPass string   // a user of the server
	client         []string // the connection arguments of the user's script
}

// logField matches key=value and key="quoted value" in slog's text
// output.
var logField = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)

// logFields returns the fields of the first line of log holding msg.
func logFields(log, msg string) map[string]string {
	for line := range strings.Lines(log) {
		if !strings.Contains(line, `msg="`+msg+`"`) {
			continue
		}
		f := map[string]string{}
		for _, m := range logField.FindAllStringSubmatch(line, -1) {
			v := m[2]
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			}
			f[m[1]] = v
		}
		return f
	}
	return nil
}

// startJSONBot runs bot/example/jsonbot on tg and returns the fields of
// its "logged in" line once it is logged in.
func startJSONBot(t *testing.T, tg botTarget) (*exec.Cmd, *daemon, map[string]string) {
	t.Helper()
	path, err := jsonBotPath()
	if err != nil {
		t.Fatalf("building the example bot: %v", err)
	}
	cmd := exec.Command(path, "-jid", tg.bot, "-server", tg.server, "-ca", tg.caFile)
	cmd.Env = append(os.Environ(), "BOT_PASSWORD="+tg.botPass)
	d := runDaemon(t, "jsonbot", cmd, 10*time.Second, "", nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if f := logFields(d.logs(), "logged in"); f != nil {
			return cmd, d, f
		}
		select {
		case <-d.done:
			t.Fatalf("the bot exited before logging in:\n%s", d.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bot is not logged in after 30 s:\n%s", d.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBotJSON logs the example bot (bot/example/jsonbot) in to Ambrosia,
// a real Prosody 0.12 and a real ejabberd 23.01, as Debian ships them,
// with the same code and no setting but the address; a slixmpp user of
// each server asks it for arithmetic in JSON and checks the answers.
// want holds what the login must have used, as the bot logs it: SASL2
// with Bind 2 where offered (Ambrosia; Debian's Prosody 0.12 and ejabberd
// 23.01 predate it, and prosody-modules' mod_sasl2 of Debian 12 needs a
// newer Prosody), RFC 6120 SASL and binding elsewhere, and Stream
// Management with resumption everywhere.
func TestBotJSON(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tools []string
		start func(t *testing.T) botTarget
		want  map[string]string
	}{
		{"ambrosia", []string{"slixmpp"}, func(t *testing.T) botTarget {
			s := startServer(t, ServerOptions{})
			addUser(t, s, "bot@localhost", "bot-pw")
			addUser(t, s, alice, alicePass)
			return botTarget{s.Addr, s.CAFile, "bot@localhost", "bot-pw", alice, alicePass, s.clientArgs(false)}
		}, map[string]string{"sasl2": "true", "bind2": "true", "sm": "true", "mechanism": "SCRAM-SHA-512-PLUS", "channel_binding": "tls-exporter"}},
		{"prosody", prosodyPeer.tools, func(t *testing.T) botTarget {
			return startPeerForBot(t, "prosody.test", func(ca *fedCA, ip, ambIP string) string {
				return startProsody(t, ca, ip, ambIP, false)
			})
		}, map[string]string{"sasl2": "false", "offered_sasl2": "false", "sm": "true"}},
		{"ejabberd", ejabberdPeer.tools, func(t *testing.T) botTarget {
			return startPeerForBot(t, "ejabberd.test", func(ca *fedCA, ip, ambIP string) string {
				startEjabberd(t, ca, ip, ambIP, false)
				return ""
			})
		}, map[string]string{"sasl2": "false", "offered_sasl2": "false", "sm": "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireTools(t, tc.tools...)
			tg := tc.start(t)
			cmd, d, f := startJSONBot(t, tg)
			t.Logf("the bot logged in to %s: %v", tc.name, f)
			for k, v := range tc.want {
				if f[k] != v {
					t.Errorf("%s=%q, want %q", k, f[k], v)
				}
			}
			if !strings.HasPrefix(f["full_jid"], tg.bot+"/") {
				t.Fatalf("bound %q, want a resource of %s", f["full_jid"], tg.bot)
			}
			mustPython(t, "bot_json", append(tg.client, "--jid", tg.user, "--password", tg.userPass,
				"--bot", tg.bot, "--bot-full", f["full_jid"])...)
			// SIGTERM stops the bot cleanly, with nothing left unsent.
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case <-d.done:
			case <-time.After(20 * time.Second):
				t.Fatal("the bot still runs 20 s after SIGTERM")
			}
			if !cmd.ProcessState.Success() || strings.Contains(d.logs(), "level=WARN") || strings.Contains(d.logs(), "level=ERROR") {
				t.Errorf("the bot stopped with %v, or warned:\n%s", cmd.ProcessState, d.logs())
			}
		})
	}
}

// startPeerForBot starts a real peer with start, which returns its
// configuration file for prosodyctl ("" for ejabberd, which registers
// the bot itself), registers the bot's account where needed, and returns
// where the bot and the user log in.
func startPeerForBot(t *testing.T, domain string, start func(ca *fedCA, ip, ambIP string) (cfgFile string)) botTarget {
	t.Helper()
	ca := newFedCA(t)
	ambIP, ip := loopbackPair(t)
	if cfg := start(ca, ip, ambIP); cfg != "" {
		if out, err := exec.Command("prosodyctl", "--config", cfg, "register", "bot", domain, "bot-pw").CombinedOutput(); err != nil {
			t.Fatalf("prosodyctl register: %v\n%s", err, out)
		}
	}
	return botTarget{
		server: net.JoinHostPort(ip, "5222"), caFile: ca.CAFile,
		bot: "bot@" + domain, botPass: "bot-pw",
		user: "bob@" + domain, userPass: "bob-pw",
		client: []string{"--host", ip, "--port", "5222", "--ca", ca.CAFile},
	}
}

// cutDialer opens a bot's connections and can break them: make what the
// bot writes vanish (a network dead in one direction), or close them.
type cutDialer struct {
	mu    sync.Mutex
	conns []*holeConn
	held  bool
}

type holeConn struct {
	net.Conn
	hole atomic.Bool
}

func (c *holeConn) Write(p []byte) (int, error) {
	if c.hole.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (d *cutDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.held {
		return nil, errors.New("held by the test")
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	hc := &holeConn{Conn: c}
	d.conns = append(d.conns, hc)
	return hc, nil
}

func (d *cutDialer) blackhole() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.hole.Store(true)
	}
}

// cut closes the connections and holds new ones back until release.
func (d *cutDialer) cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.held = true
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

func (d *cutDialer) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.held = false
}

// inbox counts the message bodies a bot receives.
type inbox struct {
	mu     sync.Mutex
	bodies map[string]int
}

func (in *inbox) handler(_ context.Context, m *bot.Message) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.bodies == nil {
		in.bodies = map[string]int{}
	}
	in.bodies[m.Body]++
}

// waitAll waits until every one of want arrived, then fails for any
// that arrived more than once.
func (in *inbox) waitAll(t *testing.T, who string, want []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		in.mu.Lock()
		var missing []string
		for _, w := range want {
			if in.bodies[w] == 0 {
				missing = append(missing, w)
			}
		}
		in.mu.Unlock()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not receive %v", who, missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for b, n := range in.bodies {
		if n != 1 {
			t.Errorf("%s received %q %d times", who, b, n)
		}
	}
}

func numbered(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, prefix+strconv.Itoa(i))
	}
	return out
}

// runBot runs a bot in the test's process until the test ends.
func runBot(t *testing.T, cfg bot.Config, name string, setup func(*bot.Bot)) (*bot.Bot, *syncBuffer) {
	t.Helper()
	log := &syncBuffer{}
	b, err := bot.New(cfg, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	setup(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Run: %v", name, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s: Run still running 20 s after its context ended", name)
		}
		if t.Failed() {
			t.Logf("--- %s log ---\n%s--- end of %s log ---", name, log.String(), name)
		}
	})
	return b, log
}

func waitBotSession(t *testing.T, b *bot.Bot, what string, ok func(bot.Session) bool) bot.Session {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, up := b.Session()
		if up && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session %s after 30 s (last %+v)", what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBotResume breaks the connection of a bot logged in to Ambrosia, a
// real Prosody (mod_smacks) and a real ejabberd (mod_stream_mgmt) while
// another account and the bot send each other messages: first the bot's
// writes vanish while it still receives, then the connection drops. Once
// the bot has resumed its session, every message arrived exactly once:
// the server counted what the bot received though its acknowledgements
// were lost, and the bot sent again what the server never got.
func TestBotResume(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tools []string
		start func(t *testing.T) botTarget
	}{
		{"ambrosia", nil, func(t *testing.T) botTarget {
			s := startServer(t, ServerOptions{})
			addUser(t, s, "bot@localhost", "bot-pw")
			addUser(t, s, alice, alicePass)
			return botTarget{s.Addr, s.CAFile, "bot@localhost", "bot-pw", alice, alicePass, nil}
		}},
		{"prosody", prosodyPeer.tools, func(t *testing.T) botTarget {
			return startPeerForBot(t, "prosody.test", func(ca *fedCA, ip, ambIP string) string {
				return startProsody(t, ca, ip, ambIP, false)
			})
		}},
		{"ejabberd", ejabberdPeer.tools, func(t *testing.T) botTarget {
			return startPeerForBot(t, "ejabberd.test", func(ca *fedCA, ip, ambIP string) string {
				startEjabberd(t, ca, ip, ambIP, false)
				return ""
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireTools(t, tc.tools...)
			tg := tc.start(t)
			pem, err := os.ReadFile(tg.caFile)
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(pem)
			cfg := func(j, pw string) bot.Config {
				return bot.Config{JID: j, Password: pw, Server: tg.server, RootCAs: roots,
					ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}
			}
			d := &cutDialer{}
			botIn, userIn := &inbox{}, &inbox{}
			bc := cfg(tg.bot, tg.botPass)
			bc.Dial = d.dial
			b, blog := runBot(t, bc, "bot", func(b *bot.Bot) { b.OnMessage(botIn.handler) })
			u, _ := runBot(t, cfg(tg.user, tg.userPass), "user", func(b *bot.Bot) { b.OnMessage(userIn.handler) })
			first := waitBotSession(t, b, "", func(s bot.Session) bool { return s.StreamManagement })
			us := waitBotSession(t, u, "", func(bot.Session) bool { return true })
			ctx := context.Background()
			send := func(from *bot.Bot, to string, bodies []string) {
				for _, m := range bodies {
					if err := from.Send(ctx, to, m); err != nil {
						t.Fatal(err)
					}
				}
			}

			send(u, first.JID, numbered("in", 1, 5))
			botIn.waitAll(t, "the bot", numbered("in", 1, 5))
			d.blackhole()
			send(b, us.JID, numbered("out", 1, 5))
			send(u, first.JID, numbered("in", 6, 10))
			botIn.waitAll(t, "the bot", numbered("in", 1, 10))
			d.cut()
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if _, up := b.Session(); !up {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the bot did not notice the cut")
				}
			}
			send(u, first.JID, numbered("in", 11, 15))
			send(b, us.JID, numbered("out", 6, 10))
			d.release()
			second := waitBotSession(t, b, "resumed", func(s bot.Session) bool { return s.Resumed })
			t.Logf("resumed on %s: %+v", tc.name, second)
			botIn.waitAll(t, "the bot", numbered("in", 1, 15))
			userIn.waitAll(t, "the user", numbered("out", 1, 10))
			// Late duplicates would come right after the resent ones: a
			// round trip through the server lets them arrive.
			if _, err := u.SendIQ(ctx, "", "get", "<query xmlns='jabber:iq:roster'/>"); err != nil {
				t.Fatal(err)
			}
			botIn.waitAll(t, "the bot", numbered("in", 1, 15))
			userIn.waitAll(t, "the user", numbered("out", 1, 10))
			if strings.Contains(blog.String(), "delivered again") {
				t.Error("the server delivered messages to the bot again")
			}
		})
	}
}
