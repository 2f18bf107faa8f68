package xmpptest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// WSConn is the client side of an XMPP WebSocket (RFC 7395) seen as the
// byte stream of a TCP session, so that Client works unchanged: a written
// stream header becomes <open/>, the stream end <close/>, every other
// write one text message; read <open/> and <close/> become the stream
// header and end again. WriteFrame and ReadFrame give tests the frames.
type WSConn struct {
	net.Conn // the socket or TLS on it
	br       *bufio.Reader
	pending  []byte // decoded bytes not read yet
	// Closed holds the code of the close frame the server sent, 0 before.
	Closed uint16
}

// DialWebSocket connects to the WebSocket endpoint rawURL (ws:// or
// wss://, trusting roots), upgrading with the subprotocol xmpp and the
// extra request headers; a refused upgrade fails with the status and the
// body in the error.
func DialWebSocket(rawURL string, roots *x509.CertPool, hdr http.Header) (*WSConn, *tls.ConnectionState, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, err
	}
	nc, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	var st *tls.ConnectionState
	if u.Scheme == "wss" {
		host, _, _ := net.SplitHostPort(u.Host)
		tc := tls.Client(nc, &tls.Config{RootCAs: roots, ServerName: host, NextProtos: []string{"http/1.1"}})
		if err := tc.Handshake(); err != nil {
			nc.Close()
			return nil, nil, err
		}
		s := tc.ConnectionState()
		st, nc = &s, tc
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\n"
	proto := false
	for name := range hdr {
		proto = proto || strings.EqualFold(name, "Sec-WebSocket-Protocol")
	}
	if !proto {
		req += "Sec-WebSocket-Protocol: xmpp\r\n"
	}
	for name, vs := range hdr {
		for _, v := range vs {
			req += name + ": " + v + "\r\n"
		}
	}
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		nc.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		nc.Close()
		return nil, nil, fmt.Errorf("upgrade refused: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) || resp.Header.Get("Sec-WebSocket-Protocol") != "xmpp" {
		nc.Close()
		return nil, nil, fmt.Errorf("bad upgrade answer: %v", resp.Header)
	}
	_ = nc.SetDeadline(time.Time{})
	return &WSConn{Conn: nc, br: br}, st, nil
}

// NewWebSocketClient wraps an upgraded WebSocket in a Client for domain;
// the connection is closed when the test ends.
func NewWebSocketClient(t testing.TB, ws *WSConn, st *tls.ConnectionState, domain string) *Client {
	c := &Client{t: t, conn: ws, p: xmlstream.NewParser(xmlstream.DefaultLimits()), buf: make([]byte, 32<<10), Domain: domain, wsTLS: st}
	t.Cleanup(func() { ws.Close() })
	return c
}

// Write sends p as RFC 7395 messages.
func (w *WSConn) Write(p []byte) (int, error) {
	s := strings.TrimSpace(string(p))
	if strings.HasPrefix(s, "<?xml") {
		s = strings.TrimSpace(s[strings.Index(s, "?>")+2:])
	}
	switch {
	case strings.HasPrefix(s, "<stream:stream"):
		to := ""
		if i := strings.Index(s, "to='"); i >= 0 {
			to = s[i+4:]
			to = to[:strings.IndexByte(to, '\'')]
		}
		s = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='" + to + "' version='1.0'/>"
	case s == "</stream:stream>":
		s = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
	}
	if err := w.WriteFrame(0x1, true, true, []byte(s)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteFrame writes one frame; masked false breaks RFC 6455 on purpose.
func (w *WSConn) WriteFrame(op byte, fin, masked bool, p []byte) error {
	var b []byte
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b = append(b, b0)
	m := byte(0)
	if masked {
		m = 0x80
	}
	switch {
	case len(p) < 126:
		b = append(b, m|byte(len(p)))
	case len(p) <= 0xFFFF:
		b = append(b, m|126, byte(len(p)>>8), byte(len(p)))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
	}
	if masked {
		var key [4]byte
		_, _ = rand.Read(key[:])
		b = append(b, key[:]...)
		for i, c := range p {
			b = append(b, c^key[i&3])
		}
	} else {
		b = append(b, p...)
	}
	_, err := w.Conn.Write(b)
	return err
}

// ReadFrame reads one frame from the server.
func (w *WSConn) ReadFrame() (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		return 0, nil, errors.New("server frame masked")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(w.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(w.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(w.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0F, payload, nil
}

// Read returns the server's messages as a TCP stream's bytes.
func (w *WSConn) Read(p []byte) (int, error) {
	for len(w.pending) == 0 {
		if w.Closed != 0 {
			return 0, io.EOF
		}
		op, msg, err := w.ReadFrame()
		if err != nil {
			return 0, err
		}
		switch op {
		case 0x8:
			w.Closed = 1005
			if len(msg) >= 2 {
				w.Closed = binary.BigEndian.Uint16(msg)
			}
		case 0x9:
			_ = w.WriteFrame(0xA, true, true, msg)
		case 0x1:
			switch {
			case bytes.HasPrefix(msg, []byte("<open")):
				attrs := msg[len("<open") : len(msg)-2]
				attrs = bytes.Replace(attrs, []byte("xmlns='urn:ietf:params:xml:ns:xmpp-framing'"), nil, 1)
				w.pending = append(w.pending, "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"...)
				w.pending = append(w.pending, attrs...)
				w.pending = append(w.pending, '>')
			case bytes.HasPrefix(msg, []byte("<close")):
				w.pending = append(w.pending, "</stream:stream>"...)
			default:
				w.pending = append(w.pending, msg...)
			}
		}
	}
	n := copy(p, w.pending)
	w.pending = w.pending[n:]
	return n, nil
}

// SetReadDeadline applies to the socket.
func (w *WSConn) SetReadDeadline(t time.Time) error { return w.Conn.SetReadDeadline(t) }
