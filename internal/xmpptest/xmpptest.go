// Package xmpptest helps tests speak XMPP to a running server over a real
// socket: a raw client that opens streams, upgrades to TLS, authenticates
// with SCRAM or PLAIN, binds and then exchanges stanzas, and a server of
// the real components (router, session manager, client edge) on a free
// loopback port with an in-memory store.
package xmpptest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Client is a raw XMPP client for tests.
type Client struct {
	t      testing.TB
	conn   net.Conn
	tls    *tls.Conn
	p      *xmlstream.Parser
	buf    []byte
	Domain string
	// Features holds the stream features of the last stream opened.
	Features *xmlstream.Element
	// JID is the bound full JID.
	JID string
	// Handled counts the stanzas received since Stream Management was
	// enabled or resumed (XEP-0198), as the client acknowledges them.
	Handled uint32
	smOn    bool
	wsTLS   *tls.ConnectionState // under a WebSocket, its TLS
}

// Dial connects to addr; the connection is closed when the test ends.
func Dial(t testing.TB, addr, domain string) *Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return NewClient(t, conn, domain)
}

// NewClient is Dial over a connection the test made, such as one that
// delays or splits what it writes; it is closed when the test ends.
func NewClient(t testing.TB, conn net.Conn, domain string) *Client {
	c := &Client{t: t, conn: conn, p: xmlstream.NewParser(xmlstream.DefaultLimits()), buf: make([]byte, 32<<10), Domain: domain}
	t.Cleanup(func() { conn.Close() })
	return c
}

// Conn returns the current connection (TLS once upgraded).
func (c *Client) Conn() net.Conn {
	if c.tls != nil {
		return c.tls
	}
	return c.conn
}

// Send writes raw XML.
func (c *Client) Send(s string) {
	c.t.Helper()
	_ = c.Conn().SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.Conn(), s); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// Next returns the next event within timeout.
func (c *Client) Next(timeout time.Duration) (xmlstream.Event, error) {
	deadline := time.Now().Add(timeout)
	for {
		ev, err := c.p.Next()
		if !errors.Is(err, xmlstream.ErrNeedMore) {
			if err == nil && c.smOn && ev.Kind == xmlstream.EventElement && IsStanza(ev.Elem) {
				c.Handled++
			}
			return ev, err
		}
		_ = c.Conn().SetReadDeadline(deadline)
		n, err := c.Conn().Read(c.buf)
		if n > 0 {
			c.p.Feed(c.buf[:n])
			continue
		}
		if err != nil {
			return xmlstream.Event{}, err
		}
	}
}

// Element returns the next top-level element, failing the test on
// anything else.
func (c *Client) Element() *xmlstream.Element {
	c.t.Helper()
	ev, err := c.Next(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if ev.Kind != xmlstream.EventElement {
		c.t.Fatalf("read: got event %d, want an element", ev.Kind)
	}
	return ev.Elem
}

// Expect reads elements until one satisfies match, failing after timeout.
func (c *Client) Expect(what string, match func(*xmlstream.Element) bool) *xmlstream.Element {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ev, err := c.Next(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", what, err)
		}
		if ev.Kind == xmlstream.EventElement && match(ev.Elem) {
			return ev.Elem
		}
		if ev.Kind == xmlstream.EventStreamEnd {
			c.t.Fatalf("waiting for %s: stream ended", what)
		}
	}
}

// StreamError reads until the stream error and returns its condition, ""
// if the stream ended or the connection closed without one.
func (c *Client) StreamError() string {
	c.t.Helper()
	cond, _ := c.StreamErrorText()
	return cond
}

// StreamErrorText is StreamError that also returns the error's text.
func (c *Client) StreamErrorText() (cond, text string) {
	c.t.Helper()
	for {
		ev, err := c.Next(5 * time.Second)
		if err != nil || ev.Kind == xmlstream.EventStreamEnd {
			return "", ""
		}
		if ev.Kind == xmlstream.EventElement && ev.Elem.Local == "error" && ev.Elem.Space == xmlstream.NSStream {
			for _, ch := range ev.Elem.Children() {
				if ch.Local == "text" {
					text = ch.Text()
				} else if cond == "" {
					cond = ch.Local
				}
			}
			return cond, text
		}
	}
}

// Restart sends a stream header to domain, expecting a new stream, and
// reads nothing: for tests of what the server answers.
func (c *Client) Restart(domain string) {
	c.t.Helper()
	c.p.Reset()
	c.Send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + domain + "' version='1.0'>")
}

// Open sends a stream header and reads the answer and the features.
func (c *Client) Open() {
	c.t.Helper()
	c.p.Reset()
	c.Send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + c.Domain + "' version='1.0'>")
	ev, err := c.Next(5 * time.Second)
	if err != nil || ev.Kind != xmlstream.EventStreamStart {
		c.t.Fatalf("open: want stream header, got %v %v", ev.Kind, err)
	}
	c.Features = c.Element()
	if c.Features.Local != "features" {
		c.t.Fatalf("open: want features, got %s", c.Features)
	}
}

// StartTLS upgrades the stream, trusting roots, and reopens it.
func (c *Client) StartTLS(roots *x509.CertPool) {
	c.t.Helper()
	c.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if el := c.Element(); el.Local != "proceed" {
		c.t.Fatalf("starttls: got %s", el)
	}
	c.tls = tls.Client(c.conn, &tls.Config{RootCAs: roots, ServerName: c.Domain})
	if err := c.tls.Handshake(); err != nil {
		c.t.Fatalf("tls handshake: %v", err)
	}
	c.Open()
}

// UseTLS wraps the connection in TLS at once (direct TLS) with ALPN.
func (c *Client) UseTLS(roots *x509.CertPool, alpn ...string) *tls.ConnectionState {
	c.t.Helper()
	c.tls = tls.Client(c.conn, &tls.Config{RootCAs: roots, ServerName: c.Domain, NextProtos: alpn})
	if err := c.tls.Handshake(); err != nil {
		c.t.Fatalf("tls handshake: %v", err)
	}
	st := c.tls.ConnectionState()
	return &st
}

// TLSState returns the TLS connection state, nil before TLS.
func (c *Client) TLSState() *tls.ConnectionState {
	if c.wsTLS != nil {
		return c.wsTLS
	}
	if c.tls == nil {
		return nil
	}
	st := c.tls.ConnectionState()
	return &st
}

// Mechanisms lists the SASL mechanisms of the current features.
func (c *Client) Mechanisms() []string {
	var out []string
	if m := c.Features.Child("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms"); m != nil {
		for _, x := range m.Children() {
			out = append(out, x.Text())
		}
	}
	return out
}

const nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"

// AuthPlain authenticates with PLAIN; it returns the failure condition,
// "" on success (and then reopens the stream).
func (c *Client) AuthPlain(user, password string) string {
	c.t.Helper()
	c.Send("<auth xmlns='" + nsSASL + "' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)) + "</auth>")
	return c.saslResult()
}

func (c *Client) saslResult() string {
	c.t.Helper()
	el := c.Element()
	switch el.Local {
	case "success":
		c.Open()
		return ""
	case "failure":
		for _, ch := range el.Children() {
			if ch.Local != "text" {
				return ch.Local
			}
		}
		return "failure"
	}
	c.t.Fatalf("sasl: unexpected %s", el)
	return ""
}

// AuthSCRAM runs SCRAM mech (e.g. "SCRAM-SHA-256-PLUS"); cbType picks the
// channel binding for -PLUS ("tls-exporter" or "tls-server-end-point"). It
// returns the failure condition, "" on success.
func (c *Client) AuthSCRAM(mech, user, password, cbType string) string {
	c.t.Helper()
	h := scram.SHA1
	switch {
	case strings.HasPrefix(mech, "SCRAM-SHA-256"):
		h = scram.SHA256
	case strings.HasPrefix(mech, "SCRAM-SHA-512"):
		h = scram.SHA512
	}
	cl, err := h.NewClient(user, password, "")
	if err != nil {
		c.t.Fatal(err)
	}
	var conv *scram.ClientConversation
	if strings.HasSuffix(mech, "-PLUS") {
		var cb scram.ChannelBinding
		switch cbType {
		case "tls-server-end-point":
			cb, err = scram.NewTLSServerEndpointBinding(c.TLSState())
		default:
			cb, err = scram.NewTLSExporterBinding(c.TLSState())
		}
		if err != nil {
			c.t.Fatal(err)
		}
		conv = cl.NewConversationWithChannelBinding(cb)
	} else {
		conv = cl.NewConversation()
	}
	first, err := conv.Step("")
	if err != nil {
		c.t.Fatal(err)
	}
	c.Send("<auth xmlns='" + nsSASL + "' mechanism='" + mech + "'>" + base64.StdEncoding.EncodeToString([]byte(first)) + "</auth>")
	for {
		el := c.Element()
		switch el.Local {
		case "challenge":
			in, err := base64.StdEncoding.DecodeString(el.Text())
			if err != nil {
				c.t.Fatal(err)
			}
			out, err := conv.Step(string(in))
			if err != nil {
				c.t.Fatalf("scram client: %v", err)
			}
			c.Send("<response xmlns='" + nsSASL + "'>" + base64.StdEncoding.EncodeToString([]byte(out)) + "</response>")
		case "success":
			in, _ := base64.StdEncoding.DecodeString(el.Text())
			if _, err := conv.Step(string(in)); err != nil || !conv.Valid() {
				c.t.Fatalf("server signature not valid: %v", err)
			}
			c.Open()
			return ""
		case "failure":
			for _, ch := range el.Children() {
				if ch.Local != "text" {
					return ch.Local
				}
			}
			return "failure"
		default:
			c.t.Fatalf("sasl: unexpected %s", el)
		}
	}
}

// Bind binds resource ("" lets the server choose) and returns the JID.
func (c *Client) Bind(resource string) string {
	c.t.Helper()
	r := ""
	if resource != "" {
		r = "<resource>" + resource + "</resource>"
	}
	c.Send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" + r + "</bind></iq>")
	el := c.Expect("bind result", func(e *xmlstream.Element) bool { return e.Attr("id") == "bind1" })
	b := el.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind")
	if el.Attr("type") != "result" || b == nil {
		c.t.Fatalf("bind: %s", el)
	}
	c.JID = b.Child("urn:ietf:params:xml:ns:xmpp-bind", "jid").Text()
	return c.JID
}

// IsStanza reports whether el is a message, presence or IQ stanza, which
// Stream Management counts (its own nonzas are not counted).
func IsStanza(el *xmlstream.Element) bool {
	if el.Space != xmlstream.NSClient {
		return false
	}
	switch el.Local {
	case "message", "presence", "iq":
		return true
	}
	return false
}

// NSSM is Stream Management (XEP-0198).
const NSSM = "urn:xmpp:sm:3"

// EnableSM enables Stream Management, resumable if resume is set, and
// returns the answer: <enabled/> (counting starts) or <failed/>.
func (c *Client) EnableSM(resume bool) *xmlstream.Element {
	c.t.Helper()
	r := ""
	if resume {
		r = " resume='true'"
	}
	c.Send("<enable xmlns='" + NSSM + "'" + r + "/>")
	el := c.Expect("enabled or failed", func(e *xmlstream.Element) bool {
		return e.Space == NSSM && (e.Local == "enabled" || e.Local == "failed")
	})
	if el.Local == "enabled" {
		c.smOn, c.Handled = true, 0
	}
	return el
}

// Resume asks to resume the session previd, saying h stanzas were
// handled, and returns the answer: <resumed/> (counting goes on from h)
// or <failed/>.
func (c *Client) Resume(previd string, h uint32) *xmlstream.Element {
	c.t.Helper()
	c.Send("<resume xmlns='" + NSSM + "' previd='" + previd + "' h='" + strconv.FormatUint(uint64(h), 10) + "'/>")
	el := c.Expect("resumed or failed", func(e *xmlstream.Element) bool {
		return e.Space == NSSM && (e.Local == "resumed" || e.Local == "failed")
	})
	if el.Local == "resumed" {
		c.smOn, c.Handled = true, h
	}
	return el
}

// Ack acknowledges the stanzas handled so far.
func (c *Client) Ack() {
	c.t.Helper()
	c.Send("<a xmlns='" + NSSM + "' h='" + strconv.FormatUint(uint64(c.Handled), 10) + "'/>")
}

// RequestAck asks the server how many stanzas it handled and returns the
// count; stanzas read meanwhile are counted and dropped.
func (c *Client) RequestAck() uint32 {
	c.t.Helper()
	c.Send("<r xmlns='" + NSSM + "'/>")
	a := c.Expect("ack", func(e *xmlstream.Element) bool { return e.Space == NSSM && e.Local == "a" })
	h, err := strconv.ParseUint(a.Attr("h"), 10, 32)
	if err != nil {
		c.t.Fatalf("ack: %s", a)
	}
	return uint32(h)
}

// Kill drops the TCP connection without ending the stream, as a client
// that lost its network does.
func (c *Client) Kill() {
	c.conn.Close()
}

// Close ends the stream politely.
func (c *Client) Close() {
	_, _ = io.WriteString(c.Conn(), "</stream:stream>")
	c.conn.Close()
}

// Discard is a logger that drops everything, for components under test.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// CheckFor polls f until it returns nil or timeout passes.
func CheckFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ctxTimeout returns a context for test calls.
func ctxTimeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
