package bot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

const (
	botJID   = "bot@localhost"
	botPass  = "bot password"
	userPass = "alice password"
)

// syncBuffer collects a bot's log while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer starts an in-process Ambrosia with the bot's account and
// alice's.
func startServer(t *testing.T, adjust func(*c2s.Config)) *xmpptest.Server {
	t.Helper()
	s := xmpptest.StartServer(t, adjust)
	s.AddUser(t, botJID, botPass)
	s.AddUser(t, "alice@localhost", userPass)
	return s
}

// dialer opens the bot's connections and can cut them, as a network
// that fails does: the socket closes under the bot without a stream end.
type dialer struct {
	mu    sync.Mutex
	conns []net.Conn
	dials int
	// fail, when set, makes dial n (from 1) fail.
	fail func(n int) error
}

func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.dials++
	n := d.dials
	fail := d.fail
	d.mu.Unlock()
	if fail != nil {
		if err := fail(n); err != nil {
			return nil, err
		}
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	hc := &holeConn{Conn: c}
	d.mu.Lock()
	d.conns = append(d.conns, hc)
	d.mu.Unlock()
	return hc, nil
}

// holeConn is a connection whose writes can be made to vanish.
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

// blackhole makes what the bot writes on its current connections vanish,
// as on a network that died in one direction: the bot does not notice,
// and the server receives nothing more, acknowledgements included.
func (d *dialer) blackhole() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.(*holeConn).hole.Store(true)
	}
}

// cut closes every connection opened so far.
func (d *dialer) cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

func (d *dialer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials
}

// testConfig is a configuration for the bot on s.
func testConfig(s *xmpptest.Server, d *dialer) Config {
	return Config{
		JID: botJID, Password: botPass, Server: s.Addr, RootCAs: s.Roots,
		Dial:         d.dial,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		Timeout: 10 * time.Second, StopGrace: 2 * time.Second,
	}
}

// running is a bot whose Run the test started.
type running struct {
	*Bot
	log  *syncBuffer
	stop func() error // cancels Run and returns its error
}

// start makes a bot of cfg, lets setup register handlers, and runs it
// until the test ends.
func start(t *testing.T, cfg Config, setup func(b *Bot)) *running {
	t.Helper()
	log := &syncBuffer{}
	b, err := New(cfg, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(20 * time.Second):
				runErr = errors.New("Run did not return within 20 s of its context's end")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("--- bot log ---\n%s--- end of bot log ---", log.String())
		}
	})
	return &running{Bot: b, log: log, stop: stop}
}

// waitSession waits until the bot is logged in and check accepts the
// session, and returns it.
func waitSession(t *testing.T, b *Bot, what string, check func(Session) bool) Session {
	t.Helper()
	var s Session
	xmpptest.CheckFor(t, 15*time.Second, func() error {
		var ok bool
		s, ok = b.Session()
		if !ok || (check != nil && !check(s)) {
			return fmt.Errorf("no session %s yet (last: %+v, connected %v)", what, s, ok)
		}
		return nil
	})
	return s
}

// user logs alice in and sends initial presence.
func user(t *testing.T, s *xmpptest.Server) *xmpptest.Client {
	t.Helper()
	c := s.Login(t, "alice", userPass, "phone")
	c.Send("<presence/>")
	return c
}

// expectMessage reads until a message from the bot's account arrives.
func expectMessage(t *testing.T, c *xmpptest.Client, what string, match func(*xmlstream.Element) bool) *xmlstream.Element {
	t.Helper()
	return c.Expect(what, func(el *xmlstream.Element) bool {
		return el.Local == "message" && strings.HasPrefix(el.Attr("from"), botJID+"/") && (match == nil || match(el))
	})
}
