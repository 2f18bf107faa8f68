package bosh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeStream plays the client edge: it answers a stream header with
// features, <ping/> with <pong/>, the stream end with the end, and
// <fail/> with a stream error.
type fakeStream struct {
	mu     sync.Mutex
	sink   Sink
	fed    []string
	closed []string
	done   bool
}

func (f *fakeStream) Feed(b []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return false
	}
	s := string(b)
	f.fed = append(f.fed, s)
	switch {
	case strings.HasPrefix(s, "<stream:stream"):
		f.sink.Send([]byte("<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:features>"))
	case s == "</stream:stream>":
		f.done = true
		f.sink.End(nil)
		return false
	case strings.Contains(s, "<fail/>"):
		f.done = true
		f.sink.End([]byte("<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"))
		return false
	case strings.Contains(s, "<ping/>"):
		f.sink.Send([]byte("<pong/>"))
	}
	return true
}

func (f *fakeStream) Close(cond string) {
	f.mu.Lock()
	f.closed = append(f.closed, cond)
	done := f.done
	f.done = true
	f.mu.Unlock()
	if !done {
		f.sink.End(nil)
	}
}

// push delivers something to the client, as a message routed to it.
func (f *fakeStream) push(s string) { f.sink.Send([]byte(s)) }

func (f *fakeStream) state() (fed, closed []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.fed...), append([]string(nil), f.closed...)
}

type fixture struct {
	t       *testing.T
	h       *Handler
	url     string
	mu      sync.Mutex
	streams []*fakeStream
}

func newFixture(t *testing.T, adjust func(*Config)) *fixture {
	t.Helper()
	f := &fixture{t: t}
	cfg := DefaultConfig()
	if adjust != nil {
		adjust(&cfg)
	}
	h, err := New(cfg, OpenFunc(func(_ context.Context, sink Sink, _ net.Addr, _ bool) (Stream, error) {
		s := &fakeStream{sink: sink}
		f.mu.Lock()
		f.streams = append(f.streams, s)
		f.mu.Unlock()
		return s, nil
	}), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fixture) stream(i int) *fakeStream {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streams[i]
}

// post sends a body and returns the answer and the status.
func (f *fixture) post(body string) (string, int) {
	f.t.Helper()
	resp, err := http.Post(f.url, "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b), resp.StatusCode
}

// async posts on another goroutine.
func (f *fixture) async(body string) <-chan string {
	ch := make(chan string, 1)
	go func() {
		resp, err := http.Post(f.url, "text/xml", strings.NewReader(body))
		if err != nil {
			ch <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- string(b)
	}()
	return ch
}

func recv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
		return ""
	}
}

func checkFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// heldCount waits until the session holds n requests.
func (f *fixture) waitHeld(sid string, n int) {
	f.t.Helper()
	checkFor(f.t, func() error {
		f.h.mu.Lock()
		s := f.h.sessions[sid]
		f.h.mu.Unlock()
		if s == nil {
			return errors.New("no session")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.held)+len(s.ahead) != n {
			return fmt.Errorf("%d held, want %d", len(s.held)+len(s.ahead), n)
		}
		return nil
	})
}

var sidRE = regexp.MustCompile(`sid='([^']+)'`)

const wrap = "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' "

// open creates a session with extra attributes and returns its sid.
func (f *fixture) open(rid int, extra string) (string, string) {
	f.t.Helper()
	resp, code := f.post(fmt.Sprintf(wrap+"rid='%d' to='localhost' wait='60' hold='1' xmpp:version='1.0' %s/>", rid, extra))
	m := sidRE.FindStringSubmatch(resp)
	if code != 200 || m == nil {
		f.t.Fatalf("creation: %d %s", code, resp)
	}
	return m[1], resp
}

func req(sid string, rid int, extra, payload string) string {
	b := fmt.Sprintf(wrap+"sid='%s' rid='%d' %s", sid, rid, extra)
	if payload == "" {
		return b + "/>"
	}
	return b + ">" + payload + "</body>"
}

func TestCreate(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name, body string
		code       int
		want       []string
	}{
		{"capped", wrap + "rid='10' to='localhost' wait='3600' hold='5' xmpp:version='1.0'/>", 200,
			[]string{"wait='60'", "hold='1'", "requests='2'", "xmpp:restartlogic='true'", "<stream:features>", "from='localhost'", "secure='true'", "ver='1.11'"}},
		{"polling", wrap + "rid='10' to='localhost' wait='30' hold='0'/>", 200, []string{"wait='30'", "hold='0'", "requests='1'"}},
		{"acks", wrap + "rid='77' to='localhost' wait='30' hold='1' ack='1'/>", 200, []string{"ack='77'"}},
		{"no to", wrap + "rid='10' wait='30' hold='1'/>", 200, []string{"type='terminate'", "condition='improper-addressing'"}},
		{"no rid", wrap + "to='localhost' wait='30' hold='1'/>", 400, []string{"condition='bad-request'"}},
		{"not xml", "hello", 400, []string{"condition='bad-request'"}},
		{"wrong namespace", "<body xmlns='jabber:client' rid='1' to='localhost'/>", 400, []string{"bad-request"}},
		{"unknown sid", req("nope", 5, "", ""), 200, []string{"condition='item-not-found'"}},
		{"too big", wrap + "rid='1' to='localhost'>" + strings.Repeat("<a/>", 300000) + "</body>", 413, []string{"policy-violation"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, code := f.post(tt.body)
			if code != tt.code {
				t.Errorf("status %d, want %d: %s", code, tt.code, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("no %s in %s", w, got)
				}
			}
		})
	}
	for _, ct := range []struct{ asked, want string }{
		{"text/xml; charset=utf-8", "text/xml; charset=utf-8"},
		{"application/xml", "application/xml"},
		{"text/html", "text/xml; charset=utf-8"},
	} {
		resp, err := http.Post(f.url, "text/xml", strings.NewReader(wrap+"rid='10' to='localhost' content='"+ct.asked+"'/>"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Content-Type"); got != ct.want {
			t.Errorf("content %q answered as %q", ct.asked, got)
		}
	}
	resp, err := http.Get(f.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}

func TestInsecureCarrierRefused(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Peer = func(r *http.Request) (string, bool) { return r.RemoteAddr, false } })
	got, _ := f.post(wrap + "rid='1' to='localhost' wait='30' hold='1'/>")
	if !strings.Contains(got, "policy-violation") || f.h.Len() != 0 {
		t.Fatalf("a plain carrier opened a session: %s", got)
	}
}

func TestLongPollAndPayloads(t *testing.T) {
	f := newFixture(t, nil)
	sid, _ := f.open(100, "")
	st := f.stream(0)
	// A request is held until something comes for the client.
	held := f.async(req(sid, 101, "", ""))
	f.waitHeld(sid, 1)
	st.push("<message xmlns='jabber:client'><body>hi</body></message>")
	if got := recv(t, held); !strings.Contains(got, "<body>hi</body></message></body>") {
		t.Fatalf("long poll: %s", got)
	}
	// A payload is fed to the stream, and its answer comes at once.
	got, _ := f.post(req(sid, 102, "", "<ping/>"))
	if !strings.Contains(got, "<pong/>") {
		t.Fatalf("ping: %s", got)
	}
	// A restart feeds a new header.
	got, _ = f.post(req(sid, 103, "xmpp:restart='true'", ""))
	if !strings.Contains(got, "<stream:features>") {
		t.Fatalf("restart: %s", got)
	}
	fed, _ := st.state()
	if len(fed) != 3 || !strings.HasPrefix(fed[2], "<stream:stream to='localhost'") || fed[1] != "<ping/>" {
		t.Fatalf("fed %q", fed)
	}
	// With hold=1 a second request releases the first, empty.
	first := f.async(req(sid, 104, "", ""))
	f.waitHeld(sid, 1)
	second := f.async(req(sid, 105, "", ""))
	if got := recv(t, first); got != "<body xmlns='http://jabber.org/protocol/httpbind' xmlns:stream='http://etherx.jabber.org/streams'/>" {
		t.Fatalf("released: %s", got)
	}
	f.waitHeld(sid, 1)
	st.push("<x/>")
	if got := recv(t, second); !strings.Contains(got, "<x/>") {
		t.Fatalf("second: %s", got)
	}
}

func TestWaitPasses(t *testing.T) {
	f := newFixture(t, nil)
	resp, _ := f.post(wrap + "rid='1' to='localhost' wait='1' hold='1'/>")
	sid := sidRE.FindStringSubmatch(resp)[1]
	got, _ := f.post(req(sid, 2, "", ""))
	if !strings.HasSuffix(got, "/>") || strings.Contains(got, "terminate") {
		t.Fatalf("after wait: %s", got)
	}
}

func TestRIDs(t *testing.T) {
	t.Run("replay", func(t *testing.T) {
		f := newFixture(t, nil)
		sid, _ := f.open(1, "")
		a, _ := f.post(req(sid, 2, "", "<ping/>"))
		b, _ := f.post(req(sid, 2, "", "<ping/>"))
		if a != b || !strings.Contains(a, "<pong/>") {
			t.Fatalf("replayed %q, first %q", b, a)
		}
		if fed, _ := f.stream(0).state(); len(fed) != 2 {
			t.Fatalf("a replayed request was fed again: %q", fed)
		}
	})
	t.Run("dropped request retried", func(t *testing.T) {
		f := newFixture(t, nil)
		sid, _ := f.open(1, "")
		ctx, cancel := context.WithCancel(context.Background())
		r, _ := http.NewRequestWithContext(ctx, "POST", f.url, strings.NewReader(req(sid, 2, "", "")))
		errc := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(r)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		f.waitHeld(sid, 1)
		cancel() // the connection drops
		<-errc
		retry := f.async(req(sid, 2, "", ""))
		f.waitHeld(sid, 1)
		f.stream(0).push("<late/>")
		if got := recv(t, retry); !strings.Contains(got, "<late/>") {
			t.Fatalf("retry: %s", got)
		}
	})
	t.Run("answered while dropped", func(t *testing.T) {
		f := newFixture(t, nil)
		sid, _ := f.open(1, "")
		ctx, cancel := context.WithCancel(context.Background())
		r, _ := http.NewRequestWithContext(ctx, "POST", f.url, strings.NewReader(req(sid, 2, "", "")))
		go func() {
			if resp, err := http.DefaultClient.Do(r); err == nil {
				resp.Body.Close()
			}
		}()
		f.waitHeld(sid, 1)
		cancel()
		f.stream(0).push("<lost/>")
		f.waitHeld(sid, 0)
		if got, _ := f.post(req(sid, 2, "", "")); !strings.Contains(got, "<lost/>") {
			t.Fatalf("the answer lost with the connection is not given again: %s", got)
		}
	})
	t.Run("out of order", func(t *testing.T) {
		f := newFixture(t, nil)
		sid, _ := f.open(1, "")
		late := f.async(req(sid, 3, "", "<b/>"))
		f.waitHeld(sid, 1)
		first := f.async(req(sid, 2, "", "<a/>"))
		recv(t, first)
		f.waitHeld(sid, 1)
		f.stream(0).push("<x/>")
		recv(t, late)
		fed, _ := f.stream(0).state()
		if len(fed) != 3 || fed[1] != "<a/>" || fed[2] != "<b/>" {
			t.Fatalf("fed %q", fed)
		}
	})
	tests := []struct {
		name string
		rid  int
		cond string
	}{
		{"beyond the window", 4, "item-not-found"},
		{"far beyond", 1000, "item-not-found"},
		{"old and forgotten", -1, "item-not-found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			sid, _ := f.open(10, "")
			for rid := 11; rid <= 13; rid++ {
				f.post(req(sid, rid, "", "<ping/>"))
			}
			rid := 13 + tt.rid
			if tt.rid < 0 {
				rid = 11
			}
			got, _ := f.post(req(sid, rid, "", ""))
			if !strings.Contains(got, "type='terminate'") || !strings.Contains(got, "condition='"+tt.cond+"'") {
				t.Fatalf("rid %d: %s", rid, got)
			}
			if f.h.Len() != 0 {
				t.Fatal("the session lives on")
			}
			if got, _ := f.post(req(sid, 14, "", "")); !strings.Contains(got, "item-not-found") {
				t.Fatalf("after the end: %s", got)
			}
			checkFor(t, func() error {
				if _, closed := f.stream(0).state(); len(closed) == 0 {
					return errors.New("stream not closed")
				}
				return nil
			})
		})
	}
	t.Run("too many requests", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.MaxHold = 2 })
		resp, _ := f.post(wrap + "rid='1' to='localhost' wait='60' hold='2'/>")
		sid := sidRE.FindStringSubmatch(resp)[1]
		a := f.async(req(sid, 2, "", ""))
		f.waitHeld(sid, 1)
		b := f.async(req(sid, 3, "", ""))
		f.waitHeld(sid, 2)
		c := f.async(req(sid, 5, "", ""))
		f.waitHeld(sid, 3)
		if got, _ := f.post(req(sid, 6, "", "")); !strings.Contains(got, "policy-violation") {
			t.Fatalf("one too many: %s", got)
		}
		for _, ch := range []<-chan string{a, b, c} {
			if got := recv(t, ch); !strings.Contains(got, "terminate") {
				t.Fatalf("held one after the end: %s", got)
			}
		}
	})
}

func TestAcks(t *testing.T) {
	f := newFixture(t, nil)
	sid, _ := f.open(1, "ack='1'")
	held := f.async(req(sid, 2, "ack='1'", ""))
	f.waitHeld(sid, 1)
	next := f.async(req(sid, 3, "ack='1'", "<q/>"))
	// The answer to 2 comes after 3 was received: it says so.
	if got := recv(t, held); !strings.Contains(got, "ack='3'") {
		t.Fatalf("ack: %s", got)
	}
	f.waitHeld(sid, 1)
	f.stream(0).push("<z/>")
	if got := recv(t, next); strings.Contains(got, "ack=") {
		t.Fatalf("the answer to the latest request needs no ack: %s", got)
	}
	// The client acknowledged 3: it cannot have it again.
	f.post(req(sid, 4, "ack='3'", "<ping/>"))
	if got, _ := f.post(req(sid, 3, "ack='3'", "")); !strings.Contains(got, "item-not-found") {
		t.Fatalf("acknowledged answer given again: %s", got)
	}
}

func TestAckReport(t *testing.T) {
	f := newFixture(t, nil)
	f.h.reportAfter = 0
	sid, _ := f.open(1, "ack='1'")
	if got, _ := f.post(req(sid, 2, "ack='1'", "<ping/>")); !strings.Contains(got, "<pong/>") || strings.Contains(got, "report") {
		t.Fatalf("answer: %s", got)
	}
	// The client says it has nothing after 1: the answer to 2 seems lost.
	got, _ := f.post(req(sid, 3, "ack='1'", ""))
	if !strings.Contains(got, "report='2'") || !strings.Contains(got, " time='") {
		t.Fatalf("no report: %s", got)
	}
	// It asks again and gets it.
	if got, _ := f.post(req(sid, 2, "ack='1'", "")); !strings.Contains(got, "<pong/>") {
		t.Fatalf("reported answer asked again: %s", got)
	}
}

func TestPollingTooOften(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Polling = time.Hour })
	resp, _ := f.post(wrap + "rid='1' to='localhost' wait='60' hold='0'/>")
	sid := sidRE.FindStringSubmatch(resp)[1]
	if got, _ := f.post(req(sid, 2, "", "")); strings.Contains(got, "terminate") {
		t.Fatalf("first poll: %s", got)
	}
	if got, _ := f.post(req(sid, 3, "", "<ping/>")); strings.Contains(got, "terminate") {
		t.Fatalf("a poll with payload: %s", got)
	}
	if got, _ := f.post(req(sid, 4, "", "")); !strings.Contains(got, "policy-violation") {
		t.Fatalf("second empty poll: %s", got)
	}
}

func TestPause(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxPause = 30 * time.Second })
	sid, _ := f.open(1, "")
	held := f.async(req(sid, 2, "", ""))
	f.waitHeld(sid, 1)
	got, _ := f.post(req(sid, 3, "pause='20'", ""))
	if strings.Contains(got, "terminate") {
		t.Fatalf("pause: %s", got)
	}
	recv(t, held)
	f.waitHeld(sid, 0)
	f.h.mu.Lock()
	s := f.h.sessions[sid]
	f.h.mu.Unlock()
	s.mu.Lock()
	pause := s.pause
	s.mu.Unlock()
	if pause != 20*time.Second {
		t.Fatalf("pause %v", pause)
	}
	// Coming back ends the pause.
	f.post(req(sid, 4, "", "<ping/>"))
	s.mu.Lock()
	pause = s.pause
	s.mu.Unlock()
	if pause != 0 {
		t.Fatal("still paused")
	}
	// A request waiting for its turn gets the end too.
	early := f.async(req(sid, 6, "", ""))
	f.waitHeld(sid, 1)
	if got, _ := f.post(req(sid, 5, "pause='31'", "")); !strings.Contains(got, "policy-violation") {
		t.Fatalf("pause beyond maxpause: %s", got)
	}
	if got := recv(t, early); !strings.Contains(got, "policy-violation") {
		t.Fatalf("early request: %s", got)
	}
}

func TestInactivity(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Inactivity = 50 * time.Millisecond })
	sid, _ := f.open(1, "")
	checkFor(t, func() error {
		if f.h.Len() != 0 {
			return errors.New("session alive")
		}
		return nil
	})
	if _, closed := f.stream(0).state(); len(closed) != 1 || closed[0] != "connection-timeout" {
		t.Fatalf("stream closed with %q", closed)
	}
	if got, _ := f.post(req(sid, 2, "", "")); !strings.Contains(got, "item-not-found") {
		t.Fatalf("after inactivity: %s", got)
	}
}

func TestTerminate(t *testing.T) {
	t.Run("by the client", func(t *testing.T) {
		f := newFixture(t, nil)
		sid, _ := f.open(1, "")
		held := f.async(req(sid, 2, "", ""))
		f.waitHeld(sid, 1)
		got, _ := f.post(req(sid, 3, "type='terminate'", "<presence type='unavailable' xmlns='jabber:client'/>"))
		if !strings.Contains(got, "type='terminate'") {
			t.Fatalf("terminate: %s", got)
		}
		if got := recv(t, held); !strings.Contains(got, "terminate") {
			t.Fatalf("held one: %s", got)
		}
		fed, _ := f.stream(0).state()
		if len(fed) != 3 || !strings.HasPrefix(fed[1], "<presence") || fed[2] != "</stream:stream>" {
			t.Fatalf("fed %q", fed)
		}
		if got, _ := f.post(req(sid, 4, "", "")); !strings.Contains(got, "item-not-found") {
			t.Fatalf("after terminate: %s", got)
		}
	})
	t.Run("stream error", func(t *testing.T) {
		f := newFixture(t, nil)
		sid, _ := f.open(1, "")
		got, _ := f.post(req(sid, 2, "", "<fail/>"))
		if !strings.Contains(got, "condition='remote-stream-error'") || !strings.Contains(got, "<stream:error><policy-violation") {
			t.Fatalf("stream error: %s", got)
		}
		if f.h.Len() != 0 {
			t.Fatal("session alive")
		}
	})
	t.Run("ended while nobody waits", func(t *testing.T) {
		f := newFixture(t, nil)
		sid, _ := f.open(1, "")
		f.stream(0).push("<last/>")
		f.stream(0).Close("system-shutdown")
		got, _ := f.post(req(sid, 2, "", ""))
		if !strings.Contains(got, "type='terminate'") || !strings.Contains(got, "<last/>") {
			t.Fatalf("final: %s", got)
		}
	})
}

// TestPeerAddress: the stream is opened with the address Peer names (a
// client behind a trusted proxy), with port 0 when it has none.
func TestPeerAddress(t *testing.T) {
	got := make(chan string, 1)
	cfg := DefaultConfig()
	cfg.Peer = func(*http.Request) (string, bool) { return "203.0.113.7", true }
	h, err := New(cfg, OpenFunc(func(_ context.Context, _ Sink, remote net.Addr, secure bool) (Stream, error) {
		got <- fmt.Sprint(remote, " ", secure)
		return nil, errors.New("no stream here")
	}), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/http-bind", strings.NewReader(wrap+"rid='1' to='localhost' wait='30' hold='1'/>")))
	if g := <-got; g != "203.0.113.7:0 true" {
		t.Errorf("opened with %q", g)
	}
}
