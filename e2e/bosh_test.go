package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/loadtest"
)

// boshClient speaks BOSH (XEP-0124, XEP-0206) by hand, to see the
// server's exact answers and send what no library would.
type boshClient struct {
	url string
	sid string
	rid int64 // of the last request made
	hc  *http.Client
}

const boshWrap = "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'"

var (
	reBOSHSID = regexp.MustCompile(`\bsid='([^']+)'`)
	reBOSHJID = regexp.MustCompile(`<jid>([^<]+)</jid>`)
)

// startBOSH starts a server serving BOSH on a free loopback port, with
// the [bosh] settings given, and adds alice and bob.
func startBOSH(t *testing.T, settings string) (*Server, string) {
	t.Helper()
	return startBOSHWith(t, "", settings)
}

// startBOSHWith is startBOSH with top-level keys too.
func startBOSHWith(t *testing.T, top, settings string) (*Server, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "ambrosia.toml")
	doc := fmt.Sprintf("%s\n[http]\naddr = '127.0.0.1:%d'\ntls = false\n[bosh]\n%s\n", top, port, settings)
	if err := os.WriteFile(conf, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, ServerOptions{ExtraArgs: []string{"--config", conf}})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitListening(t, addr, s.done, "bosh", func() string { return "" })
	addUser(t, s, alice, alicePass)
	addUser(t, s, bob, bobPass)
	return s, "http://" + addr + "/http-bind"
}

// post sends body and returns the answer and its status.
func (b *boshClient) post(ctx context.Context, body string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url, strings.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, err := b.hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return string(data), resp.StatusCode, err
}

// body builds a request of the session with rid, attributes and payload.
func (b *boshClient) body(rid int64, attrs, payload string) string {
	s := fmt.Sprintf("%s sid='%s' rid='%d' %s", boshWrap, b.sid, rid, attrs)
	if payload == "" {
		return s + "/>"
	}
	return s + ">" + payload + "</body>"
}

// send makes the next request and returns the answer.
func (b *boshClient) send(t *testing.T, attrs, payload string) string {
	t.Helper()
	b.rid++
	got, code, err := b.post(context.Background(), b.body(b.rid, attrs, payload))
	if err != nil || code != http.StatusOK {
		t.Fatalf("rid %d: %d %v %s", b.rid, code, err, got)
	}
	return got
}

// async makes the next request on another goroutine.
func (b *boshClient) async(attrs, payload string) <-chan string {
	b.rid++
	body := b.body(b.rid, attrs, payload)
	ch := make(chan string, 1)
	go func() {
		got, _, err := b.post(context.Background(), body)
		if err != nil {
			got = "error: " + err.Error()
		}
		ch <- got
	}()
	return ch
}

func boshRecv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(rawTimeout):
		t.Fatal("no answer from the BOSH server")
		return ""
	}
}

// boshOpen creates a session and returns the client and the creation
// answer.
func boshOpen(t *testing.T, url, attrs string) (*boshClient, string) {
	t.Helper()
	b := &boshClient{url: url, rid: 1000 + time.Now().UnixNano()%100000, hc: &http.Client{Timeout: time.Minute}}
	got, code, err := b.post(context.Background(), fmt.Sprintf("%s rid='%d' to='%s' wait='30' hold='1' xml:lang='en' xmpp:version='1.0' %s/>", boshWrap, b.rid, domain, attrs))
	m := reBOSHSID.FindStringSubmatch(got)
	if err != nil || code != http.StatusOK || m == nil {
		t.Fatalf("session creation: %d %v %s", code, err, got)
	}
	b.sid = m[1]
	return b, got
}

// boshLogin opens a session, authenticates with PLAIN, restarts the
// stream and binds resource; it returns the bound JID.
func boshLogin(t *testing.T, url, user, password, resource string) (*boshClient, string) {
	t.Helper()
	b, created := boshOpen(t, url, "")
	if !strings.Contains(created, "<mechanism>PLAIN</mechanism>") || strings.Contains(created, "starttls") {
		t.Fatalf("features of the creation answer: %s", created)
	}
	local, _, _ := strings.Cut(user, "@")
	cred := base64.StdEncoding.EncodeToString([]byte("\x00" + local + "\x00" + password))
	if got := b.send(t, "", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+cred+"</auth>"); !strings.Contains(got, "<success") {
		t.Fatalf("authentication: %s", got)
	}
	if got := b.send(t, "xmpp:restart='true' to='"+domain+"'", ""); !strings.Contains(got, "urn:ietf:params:xml:ns:xmpp-bind") {
		t.Fatalf("features after the restart: %s", got)
	}
	got := b.send(t, "", "<iq type='set' id='bind1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>"+resource+"</resource></bind></iq>")
	m := reBOSHJID.FindStringSubmatch(got)
	if m == nil || !strings.Contains(got, "<iq xmlns='jabber:client'") {
		t.Fatalf("bind: %s", got)
	}
	return b, m[1]
}

// TestBOSH drives the server's BOSH with a hand-made client: login, a
// message to a TCP user and back, long polling, a dropped request, rid
// replay and out-of-window rids, unknown sids, requests after the end,
// oversized bodies, pause and the client's terminate.
func TestBOSH(t *testing.T) {
	s, url := startBOSH(t, "max_pause = '60s'\nmax_body_size = 65536")
	b, full := boshLogin(t, url, alice, alicePass, "web")
	if full != alice+"/web" {
		t.Fatalf("bound %s", full)
	}
	tcp, err := dialRaw(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if _, err := tcp.login(s, "bob", bobPass, "tcp"); err != nil {
		t.Fatal(err)
	}

	t.Run("long poll", func(t *testing.T) {
		held := b.async("", "")
		// The request is held until the message comes: nothing else is
		// due to alice, and its wait is 30 s.
		if err := tcp.send("<message to='" + full + "' type='chat' id='m1'><body>long poll</body></message>"); err != nil {
			t.Fatal(err)
		}
		got := boshRecv(t, held)
		if !strings.Contains(got, "<message xmlns='jabber:client'") || !strings.Contains(got, "long poll") || !strings.Contains(got, "from='"+bob+"/tcp'") {
			t.Fatalf("long poll: %s", got)
		}
	})
	t.Run("message to TCP", func(t *testing.T) {
		// Nothing is due to alice: the request is held, until the next.
		held := b.async("", "<message to='"+bob+"/tcp' type='chat' id='m2' xmlns='jabber:client'><body>from bosh</body></message>")
		if _, err := tcp.expect(regexp.MustCompile(`(?s)<message[^>]*from=['"]` + regexp.QuoteMeta(full) + `['"][^>]*>.*?from bosh.*?</message>`)); err != nil {
			t.Fatal(err)
		}
		// The next request releases it, and is held in turn, until the
		// next subtest's first request.
		b.async("", "")
		if got := boshRecv(t, held); strings.Contains(got, "terminate") {
			t.Fatalf("released: %s", got)
		}
	})
	t.Run("dropped request retried", func(t *testing.T) {
		b.rid++
		rid := b.rid
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _, _ = b.post(ctx, b.body(rid, "", ""))
		}()
		time.Sleep(100 * time.Millisecond) // the request reaches the server, most likely
		cancel()
		<-done
		if err := tcp.send("<message to='" + full + "' type='chat' id='m3'><body>while dropped</body></message>"); err != nil {
			t.Fatal(err)
		}
		// Whether the answer went out on the dropped connection or is
		// still to come, the same rid gets it.
		got, _, err := b.post(context.Background(), b.body(rid, "", ""))
		if err != nil || !strings.Contains(got, "while dropped") {
			t.Fatalf("retry: %v %s", err, got)
		}
		again, _, _ := b.post(context.Background(), b.body(rid, "", ""))
		if again != got {
			t.Fatalf("replay of rid %d:\n%s\nfirst:\n%s", rid, again, got)
		}
	})
	t.Run("rid replay", func(t *testing.T) {
		first := b.send(t, "", "<iq type='get' id='ping1' to='"+domain+"' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>")
		if !strings.Contains(first, "ping1") {
			t.Fatalf("ping: %s", first)
		}
		again, _, err := b.post(context.Background(), b.body(b.rid, "", "<iq type='get' id='ping1' to='"+domain+"' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>"))
		if err != nil || again != first {
			t.Fatalf("replay: %v\n%s\nfirst:\n%s", err, again, first)
		}
	})
	t.Run("pause", func(t *testing.T) {
		held := b.async("", "")
		got := b.send(t, "pause='30'", "")
		if strings.Contains(got, "terminate") {
			t.Fatalf("pause: %s", got)
		}
		if got := boshRecv(t, held); strings.Contains(got, "terminate") {
			t.Fatalf("held request at the pause: %s", got)
		}
		if got := b.send(t, "", "<iq type='get' id='ping2' to='"+domain+"' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>"); !strings.Contains(got, "ping2") {
			t.Fatalf("back from the pause: %s", got)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		c := &boshClient{url: url, sid: "no-such-session", rid: 5, hc: b.hc}
		if got := c.send(t, "", ""); !strings.Contains(got, "type='terminate'") || !strings.Contains(got, "condition='item-not-found'") {
			t.Fatalf("unknown sid: %s", got)
		}
		got, code, err := c.post(context.Background(), boshWrap+" rid='1' to='localhost'>"+strings.Repeat("<presence/>", 10000)+"</body>")
		if err != nil || code != http.StatusRequestEntityTooLarge {
			t.Fatalf("oversized body: %d %v %s", code, err, got)
		}
		got, code, _ = c.post(context.Background(), "<body rid='1'>")
		if code != http.StatusBadRequest || !strings.Contains(got, "bad-request") {
			t.Fatalf("malformed body: %d %s", code, got)
		}
		got, _, _ = c.post(context.Background(), boshWrap+" rid='1' to='nowhere.invalid' wait='30' hold='1' xmpp:version='1.0'/>")
		if !strings.Contains(got, "type='terminate'") || !strings.Contains(got, "condition='host-unknown'") {
			t.Fatalf("unknown domain: %s", got)
		}
		// A pause beyond max_pause ends that session.
		p, _ := boshOpen(t, url, "")
		if got := p.send(t, "pause='600'", ""); !strings.Contains(got, "condition='policy-violation'") {
			t.Fatalf("pause beyond max_pause: %s", got)
		}
	})
	t.Run("out of window", func(t *testing.T) {
		o, _ := boshLogin(t, url, alice, alicePass, "window")
		got, _, err := o.post(context.Background(), o.body(o.rid+10, "", ""))
		if err != nil || !strings.Contains(got, "condition='item-not-found'") {
			t.Fatalf("rid beyond the window: %v %s", err, got)
		}
		if got := o.send(t, "", ""); !strings.Contains(got, "item-not-found") {
			t.Fatalf("after the end: %s", got)
		}
		waitLog(t, s, `"msg":"logout".*`+regexp.QuoteMeta(alice+"/window"))
		o2, _ := boshLogin(t, url, alice, alicePass, "old")
		got, _, _ = o2.post(context.Background(), o2.body(o2.rid-3, "", ""))
		if !strings.Contains(got, "condition='item-not-found'") {
			t.Fatalf("forgotten rid: %s", got)
		}
	})
	t.Run("terminate", func(t *testing.T) {
		got := b.send(t, "type='terminate'", "<presence type='unavailable' xmlns='jabber:client'/>")
		if !strings.Contains(got, "type='terminate'") {
			t.Fatalf("terminate: %s", got)
		}
		if got := b.send(t, "", ""); !strings.Contains(got, "item-not-found") {
			t.Fatalf("after terminate: %s", got)
		}
		waitLog(t, s, `"msg":"logout".*`+regexp.QuoteMeta(full))
	})
}

// TestBOSHInactivity: a session left without a request ends, and its
// resource is unbound; with Stream Management, the session waits for a
// resumption instead, which a new BOSH session makes, getting what came
// meanwhile.
func TestBOSHInactivity(t *testing.T) {
	s, url := startBOSH(t, "inactivity = '2s'")
	b, full := boshLogin(t, url, alice, alicePass, "idle")
	waitLog(t, s, `"msg":"logout".*`+regexp.QuoteMeta(full))
	if got := b.send(t, "", ""); !strings.Contains(got, "item-not-found") {
		t.Fatalf("after inactivity: %s", got)
	}

	b, full = boshLogin(t, url, alice, alicePass, "sm")
	got := b.send(t, "", "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	m := regexp.MustCompile(`<enabled[^>]*\bid='([^']+)'`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("enable: %s", got)
	}
	waitLog(t, s, `"msg":"inactive".*`+regexp.QuoteMeta(b.sid))
	if got := b.send(t, "", ""); !strings.Contains(got, "item-not-found") {
		t.Fatalf("after inactivity: %s", got)
	}
	tcp, err := dialRaw(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if _, err := tcp.login(s, "bob", bobPass, "tcp"); err != nil {
		t.Fatal(err)
	}
	if err := tcp.send("<message to='" + full + "' type='chat' id='q1'><body>kept for you</body></message>"); err != nil {
		t.Fatal(err)
	}
	r, created := boshOpen(t, url, "")
	if !strings.Contains(created, "PLAIN") {
		t.Fatalf("features: %s", created)
	}
	cred := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + alicePass))
	if got := r.send(t, "", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+cred+"</auth>"); !strings.Contains(got, "<success") {
		t.Fatalf("authentication: %s", got)
	}
	if got := r.send(t, "xmpp:restart='true'", ""); !strings.Contains(got, "urn:xmpp:sm:3") {
		t.Fatalf("features after the restart: %s", got)
	}
	got = r.send(t, "", "<resume xmlns='urn:xmpp:sm:3' previd='"+m[1]+"' h='0'/>")
	for !strings.Contains(got, "kept for you") {
		if !strings.Contains(got, "<resumed") && !strings.Contains(got, "<message") && !strings.Contains(got, "<r ") {
			t.Fatalf("resume: %s", got)
		}
		got += r.send(t, "", "")
	}
	if !strings.Contains(got, "<message xmlns='jabber:client'") {
		t.Fatalf("queued message without its namespace: %s", got)
	}
}

// waitLog waits until a line of the server's log matches re.
func waitLog(t *testing.T, s *Server, re string) {
	t.Helper()
	r := regexp.MustCompile(re)
	deadline := time.Now().Add(rawTimeout)
	for !r.MatchString(s.Log()) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line matching %s", re)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBOSHIdleMemory measures the server's memory per idle BOSH session:
// AMBROSIA_BOSH_IDLE=N logs in N sessions (one account, N resources),
// each holding one long-poll request as browser clients do, and reports
// the growth of the server's RSS, live heap (after a collection) and
// goroutines per session; then the requests' connections are closed, and
// it reports the heap and goroutines of the sessions alone.
func TestBOSHIdleMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("AMBROSIA_BOSH_IDLE"))
	if n <= 0 {
		t.Skip("set AMBROSIA_BOSH_IDLE=N to measure N idle BOSH sessions")
	}
	debug := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	s, url := startBOSHWith(t, "debug_addr = '"+debug+"'", "max_wait = '600s'\ninactivity = '600s'")
	pid := s.cmd.Process.Pid
	tr := &http.Transport{MaxIdleConnsPerHost: n + 10}
	hc := &http.Client{Transport: tr, Timeout: 15 * time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	login := func(i int) *boshClient {
		b, _ := boshLogin(t, url, alice, alicePass, fmt.Sprintf("idle%d", i))
		b.hc = hc
		return b
	}
	hold := func(b *boshClient) {
		b.rid++
		body := b.body(b.rid, "", "")
		go func() { _, _, _ = b.post(ctx, body) }()
	}
	hold(login(-1)) // warms up the pools and the listener
	time.Sleep(2 * time.Second)
	before := boshSample(t, pid, debug)
	start := time.Now()
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			hold(login(i))
		}()
	}
	wg.Wait()
	t.Logf("%d BOSH sessions logged in and bound in %v", n, time.Since(start).Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	held := boshSample(t, pid, debug)
	per := func(a, b int64) float64 { return float64(b-a) / float64(n) }
	t.Logf("with a request held each: server RSS +%.1f KiB, live heap +%.1f KiB, goroutines +%.2f per session (RSS %d KiB, heap %d KiB, %d goroutines before)",
		per(before.rss, held.rss), per(before.heap, held.heap)/1024, per(before.goroutines, held.goroutines), before.rss, before.heap>>10, before.goroutines)
	cancel() // the held requests' connections close; the sessions stay
	tr.CloseIdleConnections()
	time.Sleep(3 * time.Second)
	bare := boshSample(t, pid, debug)
	if f := os.Getenv("AMBROSIA_BOSH_HEAP"); f != "" {
		resp, err := http.Get("http://" + debug + "/debug/pprof/heap")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			_ = os.WriteFile(f, b, 0o600)
		}
	}
	t.Logf("between requests (connections closed): live heap +%.1f KiB, goroutines +%.2f per session", per(before.heap, bare.heap)/1024, per(before.goroutines, bare.goroutines))
}

type memSample struct{ rss, heap, goroutines int64 }

// boshSample reads the server's RSS, and its live heap (after a collection)
// and goroutine count from its debug listener.
func boshSample(t *testing.T, pid int, debug string) memSample {
	t.Helper()
	var m memSample
	get := func(path string) []byte {
		resp, err := http.Get("http://" + debug + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Twice: what sync.Pool holds survives one collection.
	get("/debug/pprof/heap?gc=1")
	get("/debug/pprof/heap?gc=1")
	var vars struct{ Memstats struct{ HeapAlloc int64 } }
	if err := json.Unmarshal(get("/debug/vars"), &vars); err != nil {
		t.Fatal(err)
	}
	m.heap = vars.Memstats.HeapAlloc
	g := regexp.MustCompile(`total (\d+)`).FindSubmatch(get("/debug/pprof/goroutine?debug=1"))
	if g == nil {
		t.Fatal("no goroutine count")
	}
	m.goroutines, _ = strconv.ParseInt(string(g[1]), 10, 64)
	var err error
	if m.rss, err = loadtest.RSS(pid); err != nil {
		t.Fatal(err)
	}
	return m
}
