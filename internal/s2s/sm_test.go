package s2s

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"<a xmlns='urn:xmpp:sm:3' h='0'/>", 0, true},
		{"<a xmlns='urn:xmpp:sm:3' h='4294967295'/>", 4294967295, true},
		{"<a xmlns='urn:xmpp:sm:3' h='4294967296'/>", 0, false},
		{"<a xmlns='urn:xmpp:sm:3' h='-1'/>", 0, false},
		{"<a xmlns='urn:xmpp:sm:3' h='+1'/>", 0, false},
		{"<a xmlns='urn:xmpp:sm:3'/>", 0, false},
		{"<a xmlns='urn:xmpp:sm:2' h='1'/>", 0, false},
		{"<r xmlns='urn:xmpp:sm:3' h='1'/>", 0, false},
	} {
		el := parseOne(tc.in)
		if el == nil {
			t.Fatalf("%s does not parse", tc.in)
		}
		h, err := parseAck(el)
		if (err == nil) != tc.ok || h != tc.want {
			t.Errorf("parseAck(%s) = %d, %v; want %d, ok %v", tc.in, h, err, tc.want, tc.ok)
		}
	}
}

// smPeer is a fake b.test that authenticates anyone by SASL EXTERNAL,
// enables stream management and hands each connection's stanzas to
// behave, which says whether to acknowledge them; returning false drops
// the connection without a word.
type smPeer struct {
	l    net.Listener
	cert tls.Certificate
	mu   sync.Mutex
	n    int // connections so far
	wg   sync.WaitGroup
}

func startSMPeer(t *testing.T, ca *testCA, behave func(conn int, el *xmlstream.Element) (ack, keep bool)) *smPeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &smPeer{l: l, cert: ca.issue(t, "b.test")}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.n++
			n := p.n
			p.mu.Unlock()
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer nc.Close()
				p.serve(nc, func(el *xmlstream.Element) (bool, bool) { return behave(n, el) })
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	return p
}

func (p *smPeer) serve(nc net.Conn, behave func(*xmlstream.Element) (ack, keep bool)) {
	c := newXConn(nc, xmlstream.DefaultLimits())
	header := func(feats string) bool {
		if ev, err := c.next(); err != nil || ev.Kind != xmlstream.EventStreamStart {
			return false
		}
		return c.write(append(streamHeader("b.test", "a.test", "sm1"), "<stream:features>"+feats+"</stream:features>"...)) == nil
	}
	if !header("<starttls xmlns='" + stanza.NSTLS + "'/>") {
		return
	}
	if _, err := c.nextElement(); err != nil || c.write([]byte("<proceed xmlns='"+stanza.NSTLS+"'/>")) != nil {
		return
	}
	t := tls.Server(c.nc, &tls.Config{Certificates: []tls.Certificate{p.cert}, ClientAuth: tls.RequestClientCert})
	if t.Handshake() != nil {
		return
	}
	c.upgrade(t)
	if !header("<mechanisms xmlns='" + stanza.NSSASL + "'><mechanism>EXTERNAL</mechanism></mechanisms>") {
		return
	}
	if _, err := c.nextElement(); err != nil || c.write([]byte("<success xmlns='"+stanza.NSSASL+"'/>")) != nil {
		return
	}
	c.p.Reset()
	if !header(string(smFeature)) {
		return
	}
	var handled uint32
	acking := true
	for {
		el, err := c.nextElement()
		if err != nil {
			return
		}
		switch {
		case el.Space == NSSM && el.Local == "enable":
			_ = c.write(smEnabled)
		case el.Space == NSSM && el.Local == "r":
			if acking {
				_ = c.write(ackXML(handled))
			}
		case el.Local == "message":
			ack, keep := behave(el)
			if !keep {
				return
			}
			acking = ack
			handled++
		}
	}
}

func (p *smPeer) conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// TestUnacknowledgedResent breaks an outgoing stream after the peer read
// stanzas without acknowledging them: they go out again on a new stream,
// and are bounced when that keeps failing.
func TestUnacknowledgedResent(t *testing.T) {
	ca := newTestCA(t)
	t.Run("resent on a new stream", func(t *testing.T) {
		got := make(chan string, 10)
		peer := startSMPeer(t, ca, func(conn int, el *xmlstream.Element) (bool, bool) {
			if conn == 1 {
				// Read, never acknowledged, then the connection drops.
				return false, el.Child(el.Space, "body").Text() != "3"
			}
			got <- el.Child(el.Space, "body").Text()
			return true, true
		})
		a := startEndpoint(t, "a.test", endpointOpts{roots: ca.pool, cert: ca.issue(t, "a.test"), hosts: map[string]string{"b.test": peer.l.Addr().String()}})
		for _, body := range []string{"1", "2", "3"} {
			a.router.Route(context.Background(), message(t, "alice@a.test/r", "bob@b.test", body))
		}
		for _, want := range []string{"1", "2", "3"} {
			select {
			case b := <-got:
				if b != want {
					t.Fatalf("got %q, want %q", b, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%q never arrived", want)
			}
		}
		if n := peer.conns(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
		a.inbox.none(t, 50*time.Millisecond)
	})
	t.Run("bounced when every stream breaks", func(t *testing.T) {
		peer := startSMPeer(t, ca, func(int, *xmlstream.Element) (bool, bool) { return false, false })
		a := startEndpoint(t, "a.test", endpointOpts{roots: ca.pool, cert: ca.issue(t, "a.test"), hosts: map[string]string{"b.test": peer.l.Addr().String()}})
		a.router.Route(context.Background(), message(t, "alice@a.test/r", "bob@b.test", "doomed"))
		got := a.inbox.next(t)
		if got.El.Attr("type") != "error" || stanza.ErrorCondition(got.El) != stanza.RemoteServerTimeout || got.To.String() != "alice@a.test/r" {
			t.Fatalf("got %s, want a remote-server-timeout bounce", got.El)
		}
		if n := peer.conns(); n != maxTries {
			t.Errorf("%d connections, want %d", n, maxTries)
		}
	})
	t.Run("acknowledged stanzas are not resent", func(t *testing.T) {
		var mu sync.Mutex
		var seen []string
		peer := startSMPeer(t, ca, func(conn int, el *xmlstream.Element) (bool, bool) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, el.Child(el.Space, "body").Text())
			return true, true
		})
		a := startEndpoint(t, "a.test", endpointOpts{roots: ca.pool, cert: ca.issue(t, "a.test"), hosts: map[string]string{"b.test": peer.l.Addr().String()}})
		a.router.Route(context.Background(), message(t, "alice@a.test/r", "bob@b.test", "once"))
		checkFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 1 })
		// Shutting down after the acknowledgement bounces nothing;
		// Shutdown returns after any bounce is delivered.
		a.svc.Shutdown()
		a.inbox.none(t, 50*time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 1 {
			t.Fatalf("seen %v", seen)
		}
	})
}

// TestIncomingStreamManagement: acknowledgements are only for an
// authenticated stream, and count the stanzas taken since they were
// enabled.
func TestIncomingStreamManagement(t *testing.T) {
	ca := newTestCA(t)
	a, b := pairUp(t, ca, false)
	rp, id := dialRaw(t, b.addr, nil, "a.test", "b.test")
	rp.send(string(smEnable))
	if r := rp.expect(); r.Local != "failed" {
		t.Fatalf("enable before authentication: %s", r)
	}
	rp.send(string(dbXML(false, "a.test", "b.test", "", "", dialbackKey(a.secret, "b.test", "a.test", id))))
	if r := rp.expect(); r.Attr("type") != "valid" {
		t.Fatalf("dialback: %s", r)
	}
	// A stanza before enable, as Prosody sends what waited for the
	// stream: not counted.
	rp.send("<message from='alice@a.test' to='bob@b.test'><body>0</body></message>")
	b.inbox.next(t)
	rp.send(string(smEnable))
	if r := rp.expect(); r.Local != "enabled" || r.Attr("resume") != "" {
		t.Fatalf("enable: %s", r)
	}
	rp.send("<message from='alice@a.test' to='bob@b.test'><body>1</body></message><message from='alice@a.test' to='bob@b.test'><body>2</body></message>" + string(smRequest))
	r := rp.expect()
	if h, err := parseAck(r); err != nil || h != 2 {
		t.Fatalf("ack %s: %d %v", r, h, err)
	}
	b.inbox.next(t)
	b.inbox.next(t)
}

// FuzzParseAck: parseAck must not panic, and what it accepts must
// survive a round trip through ackXML.
func FuzzParseAck(f *testing.F) {
	for _, s := range []string{
		"<a xmlns='urn:xmpp:sm:3' h='0'/>",
		"<a xmlns='urn:xmpp:sm:3' h='4294967295'/>",
		"<a xmlns='urn:xmpp:sm:3' h='99999999999'/>",
		"<a xmlns='urn:xmpp:sm:3' h=''/>",
		"<a xmlns='urn:xmpp:sm:3' h='0x10'/>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		el := parseOne(s)
		if el == nil {
			return
		}
		h, err := parseAck(el)
		if err != nil {
			return
		}
		el2 := parseOne(string(ackXML(h)))
		if el2 == nil {
			t.Fatalf("ackXML output does not parse: %q", ackXML(h))
		}
		if h2, err := parseAck(el2); err != nil || h2 != h {
			t.Fatalf("round trip: %d -> %d (%v)", h, h2, err)
		}
	})
}
