package loadtest

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces the client speaks.
const (
	nsTLS  = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind = "urn:ietf:params:xml:ns:xmpp-bind"
)

// readBufSize is what one read takes from the socket: larger than a
// negotiation step or a handful of chat messages, small enough that
// thousands of connections cost little.
const readBufSize = 4096

// Options describe how to reach and log in to the server.
type Options struct {
	// Addr is the host:port of the STARTTLS (or plain) client listener.
	Addr string
	// Domain is the XMPP domain of the accounts.
	Domain string
	// Password is shared by every load account.
	Password string
	// TLS asks for STARTTLS before authenticating.
	TLS bool
	// DirectTLS opens TLS as soon as the socket connects (XEP-0368), as
	// on port 5223; it excludes TLS.
	DirectTLS bool
	// TLSConfig is used for STARTTLS and direct TLS; its ServerName
	// should be Domain.
	TLSConfig *tls.Config
	// Resource is bound by every connection.
	Resource string
	// Timeout bounds the whole negotiation of one connection and the
	// closing handshake.
	Timeout time.Duration
	// Keys caches the SCRAM derivation; nil means a private cache.
	Keys *KeyCache
	// Meter, if not nil, counts logins, seats and messages as the run
	// goes, for a progress display.
	Meter *Meter
	// WebSocket, when set, is the path of the XMPP WebSocket endpoint
	// (RFC 7395) at Addr, which is then the web listener: sessions are
	// opened there instead of on a TCP client listener, over TLS (wss)
	// when TLS is set.
	WebSocket string
	// LocalAddr, if not nil, is the address connections are made from:
	// on loopback, another 127.0.0.x gives each gateway port another
	// range of ephemeral ports.
	LocalAddr net.Addr
}

func (o *Options) defaults() {
	if o.Resource == "" {
		o.Resource = "bench"
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Keys == nil {
		o.Keys = NewKeyCache()
	}
}

// Conn is one logged-in client connection.
type Conn struct {
	raw net.Conn // the socket
	nc  net.Conn // the socket or TLS over it
	p   *xmlstream.Parser
	buf []byte // nil while idle so an idle connection holds no buffer
	// wmu serializes writes: a fleet's keepalives and its messages go
	// out on the same connections from different goroutines.
	wmu sync.Mutex
	// JID is the full JID the server bound.
	JID string
	// closed is set once the server ended its stream, so Close does not
	// wait for it again.
	closed bool
	// Resumed is set when the TLS handshake resumed an earlier session.
	Resumed bool
}

// StreamHeader returns the opening stream header for domain.
func StreamHeader(domain string) []byte {
	return []byte("<?xml version='1.0'?><stream:stream to='" + domain +
		"' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
}

// StreamEnd closes a stream.
var StreamEnd = []byte("</stream:stream>")

// Presence is the initial presence every connection sends after binding.
var Presence = []byte("<presence/>")

// Login dials the server and negotiates a session for user (the local
// part): direct TLS or STARTTLS if asked, stream, SCRAM-SHA-1, bind. It
// returns the connection and how long the negotiation took from its
// first byte written (the TLS handshake's, with direct TLS) to the bind
// result.
func Login(ctx context.Context, o *Options, user string) (*Conn, time.Duration, error) {
	c, took, err := login(ctx, o, user)
	o.Meter.login(err)
	return c, took, err
}

func login(ctx context.Context, o *Options, user string) (*Conn, time.Duration, error) {
	// No TCP keepalive, as XMPP clients (they ping, or send whitespace):
	// Go's default probe every 15 seconds would keep each idle session's
	// socket busy on both sides, and hide what the server itself does.
	d := net.Dialer{Timeout: o.Timeout, LocalAddr: o.LocalAddr, KeepAlive: -1}
	raw, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, 0, err
	}
	c := &Conn{raw: raw, nc: raw, p: xmlstream.NewParser(xmlstream.DefaultLimits()), buf: make([]byte, readBufSize)}
	_ = raw.SetDeadline(time.Now().Add(o.Timeout))
	start := time.Now()
	if o.WebSocket != "" {
		var under net.Conn = raw
		if o.TLS {
			// wss: TLS first, then the upgrade; no STARTTLS in the stream.
			tc := o.TLSConfig.Clone()
			tc.NextProtos = []string{"http/1.1"}
			t := tls.Client(raw, tc)
			if err := t.Handshake(); err != nil {
				raw.Close()
				return nil, 0, fmt.Errorf("%s: tls handshake: %w", user, err)
			}
			under = t
		}
		ws, err := upgradeWebSocket(under, o.Addr, o.WebSocket)
		if err != nil {
			raw.Close()
			return nil, 0, fmt.Errorf("%s: %w", user, err)
		}
		c.nc = ws
	} else if o.DirectTLS {
		t := tls.Client(raw, o.TLSConfig)
		if err := t.Handshake(); err != nil {
			raw.Close()
			return nil, 0, fmt.Errorf("%s: tls handshake: %w", user, err)
		}
		c.nc, c.Resumed = t, t.ConnectionState().DidResume
	}
	if err := c.negotiate(o, user); err != nil {
		raw.Close()
		return nil, 0, fmt.Errorf("%s: %w", user, err)
	}
	took := time.Since(start)
	_ = raw.SetDeadline(time.Time{})
	return c, took, nil
}

func (c *Conn) negotiate(o *Options, user string) error {
	header := StreamHeader(o.Domain)
	f, err := c.open(header)
	if err != nil {
		return err
	}
	if o.TLS && !o.DirectTLS && o.WebSocket == "" {
		if f.Child(nsTLS, "starttls") == nil {
			return errors.New("server offers no STARTTLS")
		}
		if err := c.write([]byte("<starttls xmlns='" + nsTLS + "'/>")); err != nil {
			return err
		}
		el, err := c.Next()
		if err != nil {
			return err
		}
		if el.Local != "proceed" {
			return fmt.Errorf("starttls: got <%s/>", el.Local)
		}
		t := tls.Client(c.raw, o.TLSConfig)
		if err := t.Handshake(); err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		c.nc, c.Resumed = t, t.ConnectionState().DidResume
		c.p.Reset()
		if f, err = c.open(header); err != nil {
			return err
		}
	}
	if !offers(f, "SCRAM-SHA-1") {
		if st := f.Child(nsTLS, "starttls"); !o.TLS && st != nil && (st.Child(nsTLS, "required") != nil || f.Child(nsSASL, "mechanisms") == nil) {
			return errors.New("the server requires TLS first: add --tls (STARTTLS) or --direct-tls")
		}
		return errors.New("server offers no SCRAM-SHA-1")
	}
	if err := c.scram(o, user); err != nil {
		return err
	}
	c.p.Reset()
	if f, err = c.open(header); err != nil {
		return err
	}
	if f.Child(nsBind, "bind") == nil {
		return errors.New("server offers no resource binding")
	}
	if err := c.write([]byte("<iq type='set' id='bind1'><bind xmlns='" + nsBind + "'><resource>" + o.Resource + "</resource></bind></iq>")); err != nil {
		return err
	}
	for range 16 {
		el, err := c.Next()
		if err != nil {
			return err
		}
		if el.Local != "iq" || el.Attr("id") != "bind1" {
			continue
		}
		if el.Attr("type") != "result" {
			return fmt.Errorf("bind: %s", condition(el))
		}
		if b := el.Child(nsBind, "bind"); b != nil {
			if j := b.Child(nsBind, "jid"); j != nil {
				c.JID = j.Text()
			}
		}
		return nil
	}
	return errors.New("bind: no answer")
}

// open sends a stream header and returns the features that follow.
func (c *Conn) open(header []byte) (*xmlstream.Element, error) {
	if err := c.write(header); err != nil {
		return nil, err
	}
	ev, err := c.event()
	if err != nil {
		return nil, err
	}
	if ev.Kind != xmlstream.EventStreamStart {
		return nil, errors.New("expected a stream header")
	}
	el, err := c.Next()
	if err != nil {
		return nil, err
	}
	if el.Local != "features" {
		return nil, fmt.Errorf("expected features, got <%s/>", el.Local)
	}
	return el, nil
}

func offers(features *xmlstream.Element, mech string) bool {
	m := features.Child(nsSASL, "mechanisms")
	if m == nil {
		return false
	}
	for e := range m.ChildElements {
		if e.Local == "mechanism" && strings.TrimSpace(e.Text()) == mech {
			return true
		}
	}
	return false
}

func (c *Conn) scram(o *Options, user string) error {
	x := newScramExchange(o.Keys, user, o.Password)
	if err := c.write([]byte("<auth xmlns='" + nsSASL + "' mechanism='SCRAM-SHA-1'>" +
		base64.StdEncoding.EncodeToString([]byte(x.first())) + "</auth>")); err != nil {
		return err
	}
	el, err := c.Next()
	if err != nil {
		return err
	}
	if el.Local != "challenge" {
		return fmt.Errorf("sasl: %s", condition(el))
	}
	sf, err := base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text()))
	if err != nil {
		return fmt.Errorf("sasl: bad challenge: %v", err)
	}
	final, err := x.final(string(sf))
	if err != nil {
		return err
	}
	if err := c.write([]byte("<response xmlns='" + nsSASL + "'>" +
		base64.StdEncoding.EncodeToString([]byte(final)) + "</response>")); err != nil {
		return err
	}
	el, err = c.Next()
	if err != nil {
		return err
	}
	if el.Local != "success" {
		return fmt.Errorf("sasl: %s", condition(el))
	}
	v, err := base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text()))
	if err != nil {
		return fmt.Errorf("sasl: bad success data: %v", err)
	}
	return x.verify(string(v))
}

// condition names the first child of a failure or error element, for
// error messages.
func condition(el *xmlstream.Element) string {
	s := "<" + el.Local + ">"
	for e := range el.ChildElements {
		if e.Local == "error" {
			for ee := range e.ChildElements {
				return s + " " + ee.Local
			}
		}
		return s + " " + e.Local
	}
	return s
}

func (c *Conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(b)
	return err
}

// Write sends pre-built bytes. It may run concurrently with the reading
// goroutine and with other Writes.
func (c *Conn) Write(b []byte) error { return c.write(b) }

// errStreamEnd reports that the server closed its stream.
var errStreamEnd = errors.New("stream closed by server")

// event returns the next parser event, reading as needed.
func (c *Conn) event() (xmlstream.Event, error) {
	for {
		ev, err := c.p.Next()
		if err == nil {
			return ev, nil
		}
		if !errors.Is(err, xmlstream.ErrNeedMore) {
			return ev, err
		}
		if c.buf == nil {
			c.buf = make([]byte, readBufSize)
		}
		n, err := c.nc.Read(c.buf)
		if n > 0 {
			c.p.Feed(c.buf[:n])
			continue
		}
		if err == nil {
			err = errors.New("empty read")
		}
		return ev, err
	}
}

// Next returns the next top-level element; a stream error or the end of
// the stream is an error.
func (c *Conn) Next() (*xmlstream.Element, error) {
	ev, err := c.event()
	if err != nil {
		return nil, err
	}
	switch ev.Kind {
	case xmlstream.EventStreamEnd:
		c.closed = true
		return nil, errStreamEnd
	case xmlstream.EventElement:
		if ev.Elem.Local == "error" && ev.Elem.Space == xmlstream.NSStream {
			return nil, fmt.Errorf("stream error: %s", condition(ev.Elem))
		}
		return ev.Elem, nil
	}
	return nil, errors.New("unexpected stream header")
}

// SetDeadline bounds the reads and writes of the connection, as
// net.Conn's SetDeadline does.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// Idle drops the read buffer: an idle connection that nobody reads needs
// none, and 10,000 of them would otherwise hold 40 MB in the client.
func (c *Conn) Idle() { c.buf = nil }

// CloseOutcome says how the server answered our end of stream.
type CloseOutcome uint8

// Outcomes of Close.
const (
	// CloseStreamEnd: the server sent its own </stream:stream> (RFC 6120
	// §4.4), the clean ending.
	CloseStreamEnd CloseOutcome = iota
	// CloseEOF: the server closed the TCP connection without ending its
	// stream.
	CloseEOF
	// CloseOther: a write failed, the timeout passed or the server sent
	// something unparsable.
	CloseOther
)

// Close ends the stream: it sends </stream:stream>, waits (at most
// timeout) for the server's end of stream, skipping whatever arrives
// before it, and closes the socket.
func (c *Conn) Close(timeout time.Duration) CloseOutcome {
	defer c.raw.Close()
	_ = c.raw.SetDeadline(time.Now().Add(timeout))
	if c.closed {
		return CloseStreamEnd
	}
	if c.write(StreamEnd) != nil {
		return CloseOther
	}
	return c.drain()
}

// closeOutcome says how a stream that failed to give its next stanza
// with err ended.
func closeOutcome(err error) CloseOutcome {
	switch {
	case err == errStreamEnd:
		return CloseStreamEnd
	case errors.Is(err, io.EOF):
		return CloseEOF
	default:
		return CloseOther
	}
}

// drain reads until the server's stream ends.
func (c *Conn) drain() CloseOutcome {
	for range 100000 {
		_, err := c.Next()
		if err != nil {
			return closeOutcome(err)
		}
	}
	return CloseOther
}

// Closes counts the outcomes of closing many connections.
type Closes struct {
	StreamEnd, EOF, Other atomic.Int64
}

// Add counts one outcome.
func (cs *Closes) Add(o CloseOutcome) {
	switch o {
	case CloseStreamEnd:
		cs.StreamEnd.Add(1)
	case CloseEOF:
		cs.EOF.Add(1)
	default:
		cs.Other.Add(1)
	}
}

// String summarizes the outcomes.
func (cs *Closes) String() string {
	return fmt.Sprintf("%d answered </stream:stream>, %d TCP close without </stream:stream>, %d other (timeout/error)",
		cs.StreamEnd.Load(), cs.EOF.Load(), cs.Other.Load())
}
