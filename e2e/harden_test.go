package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startLimitedServer starts a server whose [limits] section is limits
// (loopback is then not exempt unless limits says so), with a metrics
// listener, and returns it with the metrics address.
func startLimitedServer(t *testing.T, limits string, opts ServerOptions) (*Server, string) {
	t.Helper()
	metricsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	conf := filepath.Join(t.TempDir(), "ambrosia.toml")
	if err := os.WriteFile(conf, []byte("[limits]\n"+limits+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts.ExtraArgs = append(opts.ExtraArgs, "--config", conf, "--metrics-addr", metricsAddr)
	return startServer(t, opts), metricsAddr
}

// serverFigures are the resources the server process holds, read from
// its metrics (runtime and process collectors).
type serverFigures struct {
	goroutines, fds, heap, rss float64
}

func (f serverFigures) String() string {
	return fmt.Sprintf("%.0f goroutines, %.0f open files, heap in use %.1f MB, RSS %.1f MB", f.goroutines, f.fds, f.heap/1e6, f.rss/1e6)
}

func figures(t *testing.T, metricsAddr string) serverFigures {
	t.Helper()
	m := scrape(t, metricsAddr)
	get := func(name string) float64 {
		v, ok := sample(m, name)
		if !ok {
			t.Fatalf("metric %s missing", name)
		}
		return v
	}
	return serverFigures{get("go_goroutines"), get("process_open_fds"), get("go_memstats_heap_inuse_bytes"), get("process_resident_memory_bytes")}
}

// limitHits sums the limit_hits_total series of the c2s edge whose limit
// is text.
func limitHits(t *testing.T, metricsAddr, text string) float64 {
	t.Helper()
	v, _ := sample(scrape(t, metricsAddr), `ambrosia_limit_hits_total{edge="c2s",limit="`+text+`"}`)
	return v
}

// dialFrom opens n silent connections to addr from the loopback address
// from, in parallel; the ones the server refused are among them.
func dialFrom(t *testing.T, from, addr string, n int) []net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: rawTimeout}
	out := make([]net.Conn, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				nc, err := d.Dial("tcp", addr)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				out[i] = nc
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("dial from %s: %v", from, firstErr)
	}
	return out
}

// TestHardenSilentFlood is the flood of issue 14 at the scale of this
// machine's file limit: 2,000 silent connections from two addresses
// against a cap of 500 unauthenticated connections (400 per address).
// The server refuses what is past the caps, holds no goroutine per
// waiting connection, lets a normal client log in during the flood, and
// goes back to its baseline of goroutines, descriptors and heap after.
func TestHardenSilentFlood(t *testing.T) {
	requireTools(t)
	s, metricsAddr := startLimitedServer(t, `exempt = []
max_unauthenticated = 500
max_unauthenticated_per_ip = 400
max_connections_per_ip = 1000
new_connections_per_ip = 0
auth_timeout = "20s"`, ServerOptions{})
	addUser(t, s, alice, alicePass)
	login := func(resource string) {
		t.Helper()
		c, err := dialRaw(s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.login(s, "alice", alicePass, resource); err != nil {
			t.Fatalf("login during the flood: %v", err)
		}
	}
	login("warmup") // starts the poller, whose goroutines are baseline
	var base serverFigures
	checkFor(t, 10*time.Second, func() error {
		base = figures(t, metricsAddr)
		if v, _ := sample(scrape(t, metricsAddr), "ambrosia_c2s_connections"); v != 0 {
			return fmt.Errorf("%v connections before the flood", v)
		}
		return nil
	})
	t.Logf("baseline: %s", base)

	flood := append(dialFrom(t, "127.0.0.2", s.Addr, 1000), dialFrom(t, "127.0.0.3", s.Addr, 1000)...)
	defer func() {
		for _, nc := range flood {
			nc.Close()
		}
	}()
	var during serverFigures
	// Every connection past the cap is refused (or evicts one, which is
	// then refused): 1,500 refusals in all. A refused connection holds its
	// descriptor until its refusal is written, so the figures are taken
	// once the last refusal is counted and its descriptor closed.
	var perAddr, global float64
	checkFor(t, 20*time.Second, func() error {
		v, _ := sample(scrape(t, metricsAddr), "ambrosia_c2s_connections")
		if v != 500 {
			return fmt.Errorf("%v connections open, want the cap of 500", v)
		}
		perAddr = limitHits(t, metricsAddr, "too many unauthenticated connections from your address")
		global = limitHits(t, metricsAddr, "too many unauthenticated connections")
		if perAddr+global != 1500 {
			return fmt.Errorf("%v refusals, want 1500", perAddr+global)
		}
		during = figures(t, metricsAddr)
		if during.fds > base.fds+500+20 {
			return fmt.Errorf("%v open files during the flood, %v before: more than the cap", during.fds, base.fds)
		}
		// The waiting connections hold descriptors, not goroutines; the
		// refusals' short-lived writers may still be finishing.
		if during.goroutines > base.goroutines+50 {
			return fmt.Errorf("%v goroutines during the flood, %v before", during.goroutines, base.goroutines)
		}
		return nil
	})
	t.Logf("during the flood: %s", during)
	if perAddr == 0 || global == 0 {
		t.Fatalf("limit hits: per address %v, global %v; both caps should have been crossed", perAddr, global)
	}
	login("during")
	if !strings.Contains(s.Log(), `"msg":"connection refused"`) {
		t.Error("no log line for the refused connections")
	}

	for _, nc := range flood {
		nc.Close()
	}
	var after serverFigures
	checkFor(t, 30*time.Second, func() error {
		after = figures(t, metricsAddr)
		switch {
		case after.goroutines > base.goroutines+5:
			return fmt.Errorf("goroutines %v, baseline %v", after.goroutines, base.goroutines)
		case after.fds > base.fds+5:
			return fmt.Errorf("open files %v, baseline %v", after.fds, base.fds)
		case after.heap > base.heap+8e6:
			return fmt.Errorf("heap in use %.1f MB, baseline %.1f MB", after.heap/1e6, base.heap/1e6)
		}
		return nil
	})
	t.Logf("after the flood: %s", after)
	login("after")
}

// TestHardenPasswordGuessing guesses alice's password with one wrong
// guess per new connection, as the guesser of issue 14 did: the attempts
// after the second failure wait, and past login_failures_per_ip the
// address is refused, even with the right password, with a log line
// naming the address and the account. From an exempt address nothing is
// refused.
func TestHardenPasswordGuessing(t *testing.T) {
	requireTools(t)
	for _, tc := range []struct {
		name, exempt string
		refused      bool
	}{
		{"limited", "[]", true},
		{"exempt", `["127.0.0.0/8"]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, metricsAddr := startLimitedServer(t, "exempt = "+tc.exempt+"\nlogin_failures_per_ip = 3\nlogin_failure_window = \"1h\"", ServerOptions{})
			addUser(t, s, alice, alicePass)
			for i := range 3 {
				c, res, err := dialTLSAuth(s, "alice", fmt.Sprintf("guess-%d", i))
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				if !reNotAuth.MatchString(res) {
					t.Fatalf("guess %d: %s", i, res)
				}
			}
			c, res, err := dialTLSAuth(s, "alice", alicePass)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if !tc.refused {
				if !strings.HasPrefix(res, "<success") {
					t.Fatalf("right password from an exempt address: %s", res)
				}
				return
			}
			if !reNotAuth.MatchString(res) || !strings.Contains(res, "too many failed logins from your address") {
				t.Fatalf("right password after the guesses: %s", res)
			}
			if _, err := c.expect(streamError("policy-violation")); err != nil {
				t.Fatalf("no policy-violation: %v", err)
			}
			if v := limitHits(t, metricsAddr, "too many failed logins from your address, try again later"); v != 1 {
				t.Fatalf("limit hits %v", v)
			}
			log := s.Log()
			for _, want := range []string{`"msg":"login refused"`, `"remote":"127.0.0.1:`, `"user":"alice@localhost"`} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %s", want)
				}
			}
		})
	}
}

// streamErrorText matches a stream error with condition and text.
func streamErrorText(condition, text string) *regexp.Regexp {
	return regexp.MustCompile(`(?s)<(?:stream:)?error[\s>].*?<` + regexp.QuoteMeta(condition) + `[\s/>].*?<text[^>]*>` + regexp.QuoteMeta(text) + `</text>`)
}

// attackLimits are the limits of the attack tests: loopback limited, the
// caps high enough that the attacks reach the parser and the timeouts,
// and these short.
const attackLimits = `exempt = []
max_unauthenticated = 5000
max_unauthenticated_per_ip = 3000
max_connections_per_ip = 5000
new_connections_per_ip = 0
auth_timeout = "6s"
tls_handshake_timeout = "6s"
login_failures_per_ip = 1000
max_sessions_per_account = 100`

const clientHeader = `<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`

// TestHardenAttacks reproduces the attacks that hit XMPP servers (issue
// 14, item 5) against one server: after each, a normal client logs in,
// and at the end the server's goroutines, descriptors and heap are back
// near where they started.
func TestHardenAttacks(t *testing.T) {
	requireTools(t)
	s, metricsAddr := startLimitedServer(t, attackLimits, ServerOptions{})
	addUser(t, s, alice, alicePass)
	n := 0
	login := func(t *testing.T) *rawClient {
		t.Helper()
		c, err := dialRaw(s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if _, err := c.login(s, "alice", alicePass, fmt.Sprintf("r%d", n)); err != nil {
			t.Fatalf("a normal client cannot log in: %v", err)
		}
		return c
	}
	login(t).Close()
	var base serverFigures
	checkFor(t, 10*time.Second, func() error {
		base = figures(t, metricsAddr)
		if v, _ := sample(scrape(t, metricsAddr), "ambrosia_c2s_connections"); v != 0 {
			return fmt.Errorf("%v connections", v)
		}
		return nil
	})
	t.Logf("baseline: %s", base)
	// expect sends input on a fresh stream (after login if authed) and
	// expects re, then the end of the connection.
	expect := func(t *testing.T, authed bool, prolog, input string, re *regexp.Regexp) {
		t.Helper()
		var c *rawClient
		if authed {
			c = login(t)
		} else {
			var err error
			if c, err = dialRaw(s.Addr); err != nil {
				t.Fatal(err)
			}
			if prolog != "" {
				go func() { _ = c.send(prolog) }()
			} else if _, err := c.openStream(); err != nil {
				t.Fatal(err)
			}
		}
		defer c.Close()
		go func() { _ = c.send(input) }()
		if _, err := c.expect(re); err != nil {
			t.Fatal(err)
		}
		if err := c.expectClosed(); err != nil {
			t.Fatal(err)
		}
		login(t).Close()
	}
	const laughs = `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>`
	ten := strings.Repeat("A", 10<<20)
	t.Run("billion laughs", func(t *testing.T) {
		expect(t, false, "<?xml version='1.0'?>"+laughs, clientHeader+"<message><body>&lol2;</body></message>", streamError("restricted-xml"))
		expect(t, false, "", laughs+"<message><body>&lol2;</body></message>", streamError("restricted-xml"))
		expect(t, true, "", "<message to='bob@localhost'><body>&lol2;</body></message>", streamErrorText("restricted-xml", "entity references are not allowed"))
	})
	t.Run("external entity", func(t *testing.T) {
		expect(t, false, `<?xml version='1.0'?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>`, clientHeader+"<message><body>&xxe;</body></message>", streamError("restricted-xml"))
	})
	t.Run("10 MB stanza", func(t *testing.T) {
		big := "<message to='bob@localhost'><body>" + ten + "</body></message>"
		expect(t, false, "", big, streamErrorText("policy-violation", "stanza too large"))
		expect(t, true, "", big, streamErrorText("policy-violation", "stanza too large"))
	})
	t.Run("10 MB attribute", func(t *testing.T) {
		expect(t, true, "", "<message to='bob@localhost' a='"+ten+"'/>", streamErrorText("policy-violation", "stanza too large"))
		expect(t, false, "<?xml version='1.0'?><stream:stream a='"+ten+"'>", "", streamErrorText("policy-violation", "stream header too long"))
	})
	t.Run("deep nesting", func(t *testing.T) {
		deep := "<message>" + strings.Repeat("<a>", 100000)
		expect(t, false, "", deep, streamErrorText("policy-violation", "element nesting too deep"))
		expect(t, true, "", deep, streamErrorText("policy-violation", "element nesting too deep"))
	})
	t.Run("stream restart flood", func(t *testing.T) {
		// A new header inside the stream opens an element that never
		// ends, each inside the one before; with its XML declaration it
		// is a processing instruction.
		bare := strings.TrimPrefix(clientHeader, "<?xml version='1.0'?>")
		expect(t, false, "", strings.Repeat(bare, 1000), streamErrorText("policy-violation", "element nesting too deep"))
		expect(t, false, "", strings.Repeat(clientHeader, 1000), streamError("restricted-xml"))
	})
	t.Run("slowloris before authentication", func(t *testing.T) {
		// 200 clients each sending a stream header a byte at a time, 4 a
		// second: they wait in the poller between bytes, and the 6 s
		// authentication timeout closes them, however slowly they keep
		// sending.
		var wg sync.WaitGroup
		errs := make(chan error, 400)
		for range 200 {
			c, err := dialRaw(s.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range len(clientHeader) {
					if c.send(clientHeader[i:i+1]) != nil {
						return // closed by the server
					}
					time.Sleep(250 * time.Millisecond)
				}
				errs <- fmt.Errorf("the whole header went out a byte at a time: not closed")
			}()
			go func() {
				if _, err := c.expect(streamError("connection-timeout")); err != nil {
					errs <- err
				}
			}()
		}
		time.Sleep(time.Second)
		// Each byte wakes its connection for a moment, on a goroutine
		// when the negotiators are busy: a slow machine may be caught
		// amid such wake-ups, so the count is taken again until one
		// shows the waiting connections holding none (a goroutine per
		// connection would show 200 every time).
		var during serverFigures
		checkFor(t, 2*time.Second, func() error {
			if during = figures(t, metricsAddr); during.goroutines > base.goroutines+50 {
				return fmt.Errorf("%v goroutines with 200 slowloris connections, %v before", during.goroutines, base.goroutines)
			}
			return nil
		})
		t.Logf("200 slowloris connections: %s", during)
		login(t).Close()
		wg.Wait()
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
	})
	t.Run("slowloris after authentication", func(t *testing.T) {
		// 20 sessions each sending a ping a byte at a time: they are
		// served, slowly, each waiting in the poller between bytes.
		ping := "<iq type='get' id='slow'><ping xmlns='urn:xmpp:ping'/></iq>"
		var cs []*rawClient
		for range 20 {
			cs = append(cs, login(t))
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(cs))
		for _, c := range cs {
			defer c.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range len(ping) {
					if err := c.send(ping[i : i+1]); err != nil {
						errs <- err
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				if _, err := c.expect(regexp.MustCompile(`<iq[^>]*id=.slow.`)); err != nil {
					errs <- err
				}
			}()
		}
		time.Sleep(time.Second)
		during := figures(t, metricsAddr)
		t.Logf("20 slow sessions: %s", during)
		if during.goroutines > base.goroutines+20 {
			t.Errorf("%v goroutines with 20 slow sessions, %v before", during.goroutines, base.goroutines)
		}
		login(t).Close()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
	t.Run("1000 half-open TLS handshakes", func(t *testing.T) {
		half := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
		conns := dialFrom(t, "127.0.0.2", s.TLSAddr, 1000)
		for _, nc := range conns {
			defer nc.Close()
			if _, err := nc.Write(half); err != nil {
				t.Fatal(err)
			}
		}
		checkFor(t, 10*time.Second, func() error {
			if v, _ := sample(scrape(t, metricsAddr), "ambrosia_c2s_connections"); v != 1000 {
				return fmt.Errorf("%v connections, want 1000", v)
			}
			return nil
		})
		// The first bytes wake every connection to look at its record,
		// briefly on a goroutine each when the negotiators are busy: the
		// count is taken once that burst is over, all 1000 still open.
		var during serverFigures
		checkFor(t, 4*time.Second, func() error {
			during = figures(t, metricsAddr)
			if v, _ := sample(scrape(t, metricsAddr), "ambrosia_c2s_connections"); v != 1000 {
				t.Fatalf("%v connections before the handshake timeout, want 1000 (%s)", v, during)
			}
			if during.goroutines > base.goroutines+50 {
				return fmt.Errorf("%v goroutines with 1000 half-open handshakes, %v before", during.goroutines, base.goroutines)
			}
			return nil
		})
		t.Logf("1000 half-open handshakes: %s", during)
		login(t).Close()
		checkFor(t, 15*time.Second, func() error {
			if v, _ := sample(scrape(t, metricsAddr), "ambrosia_c2s_connections"); v != 0 {
				return fmt.Errorf("%v connections left after the handshake timeout", v)
			}
			return nil
		})
	})

	var after serverFigures
	checkFor(t, 30*time.Second, func() error {
		after = figures(t, metricsAddr)
		switch {
		case after.goroutines > base.goroutines+5:
			return fmt.Errorf("goroutines %v, baseline %v", after.goroutines, base.goroutines)
		case after.fds > base.fds+5:
			return fmt.Errorf("open files %v, baseline %v", after.fds, base.fds)
		case after.heap > base.heap+16e6:
			return fmt.Errorf("heap in use %.1f MB, baseline %.1f MB", after.heap/1e6, base.heap/1e6)
		}
		return nil
	})
	t.Logf("after the attacks: %s", after)
}

// TestHardenConnectFlood opens connections from one address as fast as
// it can, with the default limits but for loopback's exemption: past the
// burst they are refused (new_connections_per_ip), counted, and a client
// from another address logs in meanwhile.
func TestHardenConnectFlood(t *testing.T) {
	requireTools(t)
	s, metricsAddr := startLimitedServer(t, "exempt = []", ServerOptions{})
	addUser(t, s, alice, alicePass)
	flood := dialFrom(t, "127.0.0.2", s.Addr, 300)
	defer func() {
		for _, nc := range flood {
			nc.Close()
		}
	}()
	checkFor(t, 10*time.Second, func() error {
		if v := limitHits(t, metricsAddr, "too many new connections from your address"); v == 0 {
			return fmt.Errorf("no connection refused for its rate")
		}
		return nil
	})
	c, err := dialRaw(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.login(s, "alice", alicePass, "r"); err != nil {
		t.Fatalf("login during the flood: %v", err)
	}
	refusedRate := limitHits(t, metricsAddr, "too many new connections from your address")
	refusedCap := limitHits(t, metricsAddr, "too many unauthenticated connections from your address")
	t.Logf("of 300 connections: %v refused for their rate, %v for the per-address cap", refusedRate, refusedCap)
}

// TestHardenRegistrationFlood registers accounts in-band from one
// address, one per connection: past registrations_per_ip the attempts
// are refused with resource-constraint, counted, and create nothing.
func TestHardenRegistrationFlood(t *testing.T) {
	requireTools(t)
	s, metricsAddr := startLimitedServer(t, "exempt = []\nregistrations_per_ip = 3", ServerOptions{ExtraArgs: []string{"--allow-registration"}})
	for i := range 6 {
		c, err := dialRaw(s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.openStream(); err != nil {
			t.Fatal(err)
		}
		if err := c.startTLS(s.CAFile); err != nil {
			t.Fatal(err)
		}
		if err := c.send(fmt.Sprintf("<iq type='set' id='r'><query xmlns='jabber:iq:register'><username>spam%d</username><password>pw-%d</password></query></iq>", i, i)); err != nil {
			t.Fatal(err)
		}
		res, err := c.expect(regexp.MustCompile(`(?s)<iq[^>]*id='r'[^>]*(/>|>.*?</iq>)`))
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		refused := strings.Contains(res, "resource-constraint") && strings.Contains(res, "too many registrations from your address")
		if refused != (i >= 3) {
			t.Fatalf("registration %d: %s", i, res)
		}
	}
	if v := limitHits(t, metricsAddr, "too many registrations from your address, try again later"); v != 3 {
		t.Fatalf("limit hits %v, want 3", v)
	}
	if out := ambrosia(t, "", "user", "list", "--data", s.DataDir); strings.Contains(out, "spam3") || !strings.Contains(out, "spam2") {
		t.Fatalf("accounts:\n%s", out)
	}
}

// TestHardenInviteGuessing: a client guessing invitation tokens
// (XEP-0445 <preauth/>) from one address is held back as a password
// guesser is. Past invite_failures_per_ip invalid tokens the next token,
// even a valid one on a new connection, is refused with policy-violation
// and the stream ends; the refusal is logged and counted. An exempt
// address is never refused.
func TestHardenInviteGuessing(t *testing.T) {
	requireTools(t)
	const refusal = "too many invalid invitations from your address, try again later"
	for _, tc := range []struct {
		name, exempt string
		refused      bool
	}{
		{"limited", "[]", true},
		{"exempt", `["127.0.0.0/8"]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, metricsAddr := startLimitedServer(t, "exempt = "+tc.exempt+"\ninvite_failures_per_ip = 3\ninvite_failure_window = \"1h\"", ServerOptions{})
			preauth := func(c *rawClient, id, token string) string {
				t.Helper()
				if err := c.send("<iq type='set' id='" + id + "'><preauth xmlns='urn:xmpp:pars:0' token='" + token + "'/></iq>"); err != nil {
					t.Fatal(err)
				}
				res, err := c.expect(regexp.MustCompile(`(?s)<iq[^>]*id='` + id + `'[^>]*(/>|>.*?</iq>)`))
				if err != nil {
					t.Fatalf("preauth %s: %v", id, err)
				}
				return res
			}
			open := func() *rawClient {
				t.Helper()
				c, err := dialRaw(s.Addr)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.openStream(); err != nil {
					t.Fatal(err)
				}
				if err := c.startTLS(s.CAFile); err != nil {
					t.Fatal(err)
				}
				return c
			}
			c := open()
			defer c.Close()
			for i := range 3 {
				if res := preauth(c, fmt.Sprintf("g%d", i), fmt.Sprintf("made-up-%d", i)); !strings.Contains(res, "item-not-found") {
					t.Fatalf("guess %d: %s", i, res)
				}
			}
			// A valid invitation, on a new connection from the same
			// address.
			out := ambrosia(t, "", "invite", "localhost", "--expires", "1h", "--data", s.DataDir)
			_, token, ok := strings.Cut(strings.SplitN(out, "\n", 2)[0], "preauth=")
			token, _, _ = strings.Cut(token, ";")
			if !ok || token == "" {
				t.Fatalf("ambrosia invite printed %q", out)
			}
			c2 := open()
			defer c2.Close()
			res := preauth(c2, "valid", token)
			if !tc.refused {
				if !strings.Contains(res, "type='result'") && !strings.Contains(res, `type="result"`) {
					t.Fatalf("valid invitation from an exempt address: %s", res)
				}
				if v := limitHits(t, metricsAddr, refusal); v != 0 {
					t.Fatalf("limit hits %v from an exempt address", v)
				}
				return
			}
			if !strings.Contains(res, "policy-violation") || !strings.Contains(res, refusal) {
				t.Fatalf("invitation after the guesses: %s", res)
			}
			if _, err := c2.expect(streamErrorText("policy-violation", refusal)); err != nil {
				t.Fatalf("no stream error: %v", err)
			}
			if err := c2.expectClosed(); err != nil {
				t.Fatalf("stream not closed: %v", err)
			}
			if v := limitHits(t, metricsAddr, refusal); v != 1 {
				t.Fatalf("limit hits %v, want 1", v)
			}
			log := s.Log()
			for _, want := range []string{`"level":"INFO","msg":"invitation refused"`, `"reason":"` + refusal + `"`, `"remote":"127.0.0.1:`} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %s", want)
				}
			}
		})
	}
}
