package c2s_test

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// recSink records what a virtual connection writes.
type recSink struct {
	mu    sync.Mutex
	out   strings.Builder
	ended bool
	err   string
}

func (r *recSink) Send(p []byte) {
	r.mu.Lock()
	r.out.Write(p)
	r.mu.Unlock()
}

func (r *recSink) End(e []byte) {
	r.mu.Lock()
	r.ended, r.err = true, string(e)
	r.mu.Unlock()
}

// take returns and forgets what was written.
func (r *recSink) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.out.String()
	r.out.Reset()
	return s
}

func (r *recSink) state() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ended, r.err
}

// waitFor waits until what was written contains want.
func (r *recSink) waitFor(t *testing.T, want string) string {
	t.Helper()
	var got strings.Builder
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		got.WriteString(r.take())
		if !strings.Contains(got.String(), want) {
			return &missing{want, got.String()}
		}
		return nil
	})
	return got.String()
}

type missing struct{ want, got string }

func (m *missing) Error() string { return "no " + m.want + " in " + m.got }

const header = "<stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"

func TestVirtualSession(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	s.AddUser(t, "alice@localhost", "wonderland")
	sink := &recSink{}
	v, err := s.Edge.OpenVirtual(context.Background(), sink, c2s.VirtualInfo{Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Feed([]byte(header)) {
		t.Fatal("stream refused")
	}
	f := sink.take()
	if strings.Contains(f, "<?xml") || strings.Contains(f, "starttls") || !strings.Contains(f, "<mechanism>PLAIN</mechanism>") || strings.Contains(f, "-PLUS") {
		t.Fatalf("features of a secure carrier: %s", f)
	}
	cred := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wonderland"))
	v.Feed([]byte("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + cred + "</auth>"))
	if got := sink.take(); !strings.Contains(got, "<success") {
		t.Fatalf("auth: %s", got)
	}
	v.Feed([]byte(header))
	if got := sink.take(); !strings.Contains(got, "urn:ietf:params:xml:ns:xmpp-bind") {
		t.Fatalf("features after restart: %s", got)
	}
	v.Feed([]byte("<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>"))
	got := sink.waitFor(t, "alice@localhost/web")
	if !strings.Contains(got, "<iq xmlns='jabber:client'") {
		t.Fatalf("a stanza without its namespace: %s", got)
	}
	// A TCP client and the virtual one exchange messages.
	bob := s.Login(t, "alice", "wonderland", "tcp")
	bob.Send("<message to='alice@localhost/web' type='chat'><body>to web</body></message>")
	got = sink.waitFor(t, "to web")
	if !strings.Contains(got, "<message xmlns='jabber:client'") || !strings.Contains(got, "from='alice@localhost/tcp'") {
		t.Fatalf("message: %s", got)
	}
	v.Feed([]byte("<message to='alice@localhost/tcp' type='chat' xmlns='jabber:client'><body>to tcp</body></message>"))
	bob.Expect("message from web", func(el *xmlstream.Element) bool {
		return el.Local == "message" && el.Attr("from") == "alice@localhost/web"
	})
	// An element cut in the middle is not well-formed.
	if v.Feed([]byte("<message to='alice@localhost/tcp'")) {
		t.Fatal("an incomplete element was accepted")
	}
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if ended, e := sink.state(); !ended || !strings.Contains(e, "not-well-formed") {
			return &missing{"not-well-formed", e}
		}
		return nil
	})
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if n := s.Edge.ConnCount(); n != 1 {
			return &missing{"1 connection", "more"}
		}
		return nil
	})
}

func TestVirtualInsecureCarrier(t *testing.T) {
	s := xmpptest.StartServer(t, nil)
	sink := &recSink{}
	v, err := s.Edge.OpenVirtual(context.Background(), sink, c2s.VirtualInfo{})
	if err != nil {
		t.Fatal(err)
	}
	v.Feed([]byte(header))
	f := sink.take()
	if strings.Contains(f, "PLAIN") || strings.Contains(f, "starttls") || !strings.Contains(f, "SCRAM-SHA-256") {
		t.Fatalf("features of a plain carrier: %s", f)
	}
	v.Close("")
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if ended, _ := sink.state(); !ended {
			return &missing{"end", ""}
		}
		if s.Edge.ConnCount() != 0 {
			return &missing{"no connection", "one"}
		}
		return nil
	})
}

func TestVirtualNegotiationTimeout(t *testing.T) {
	s := xmpptest.StartServer(t, func(c *c2s.Config) { c.NegotiationTimeout = 50 * time.Millisecond })
	sink := &recSink{}
	v, err := s.Edge.OpenVirtual(context.Background(), sink, c2s.VirtualInfo{Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	v.Feed([]byte(header))
	xmpptest.CheckFor(t, 5*time.Second, func() error {
		if ended, e := sink.state(); !ended || !strings.Contains(e, "connection-timeout") {
			return &missing{"connection-timeout", e}
		}
		if s.Edge.ConnCount() != 0 {
			return &missing{"no connection", "one"}
		}
		return nil
	})
}
