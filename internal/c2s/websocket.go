package c2s

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// XMPP over WebSocket (RFC 7395). After the HTTP upgrade the connection is
// an ordinary c2s conn: the same negotiation, SASL (with -PLUS on TLS),
// limits, Stream Management, CSI and push, the same hand-off to the poller
// once idle. Two things differ, both below the session code: frames are
// decoded from the bytes read (wsReader, fed by conn.feed), and what the
// session writes is framed (wsConn).

// WebSocketOptions says how the endpoint judges a request; the HTTP
// listener, which knows its proxies and origins, provides them.
type WebSocketOptions struct {
	// Peer returns the client's address for the logs (from a trusted
	// proxy's X-Forwarded-For, else the socket's) and whether the
	// connection is encrypted: TLS to us, or plain from loopback or from a
	// trusted proxy that terminated TLS. Others are refused. nil takes the
	// socket's address and counts only TLS as encrypted.
	Peer func(r *http.Request) (addr string, secure bool)
	// OriginAllowed says whether a page of origin may connect; requests
	// without an Origin (clients other than browsers) are not asked. nil
	// allows every origin.
	OriginAllowed func(r *http.Request, origin string) bool
}

// wsState is a WebSocket connection's own state.
type wsState struct {
	r    wsReader
	w    wsConn // the connection's writer (conn.nc)
	peer string // the client's address as a trusted proxy gave it
	pre  []byte // bytes read with the upgrade request, until fed
	// scheme and rest make the see-other-uri of a redirection:
	// scheme://HOST + rest (this endpoint's port and path).
	scheme, rest string
}

// wsGUID is RFC 6455's key suffix.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// WebSocketHandler returns the handler of the XMPP WebSocket endpoint. The
// sessions it starts belong to the server (they run on ctx and end with
// Shutdown), not to the HTTP request, which ends at the upgrade.
func (s *Server) WebSocketHandler(ctx context.Context, o WebSocketOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serveWebSocket(ctx, o, w, r)
	})
}

func (s *Server) serveWebSocket(ctx context.Context, o WebSocketOptions, w http.ResponseWriter, r *http.Request) {
	refuse := func(code int, msg string) {
		s.log.Debug("websocket refused", "remote", r.RemoteAddr, "status", code, "reason", msg)
		http.Error(w, msg, code)
	}
	if r.Method != http.MethodGet || !headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		refuse(http.StatusUpgradeRequired, "this is the XMPP WebSocket endpoint (RFC 7395): connect with a WebSocket client")
		return
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		refuse(http.StatusUpgradeRequired, "WebSocket version 13 is required")
		return
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		refuse(http.StatusBadRequest, "bad Sec-WebSocket-Key")
		return
	}
	if !headerHas(r.Header, "Sec-WebSocket-Protocol", "xmpp") {
		refuse(http.StatusBadRequest, "the WebSocket subprotocol xmpp (RFC 7395) is required")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && o.OriginAllowed != nil && !o.OriginAllowed(r, origin) {
		refuse(http.StatusForbidden, "origin "+origin+" is not allowed (http.cors_origins)")
		return
	}
	addr, secure := r.RemoteAddr, r.TLS != nil
	if o.Peer != nil {
		addr, secure = o.Peer(r)
	}
	if !secure && !s.cfg.AllowPlain {
		refuse(http.StatusForbidden, "XMPP over plain WebSocket is accepted only from loopback or a trusted proxy (http.trusted_proxies): use wss")
		return
	}
	// The connection limits count the client, not a proxy in front: the
	// door is the upgrade, where a refusal can still be an HTTP answer.
	ip := peerIP(addr)
	ticket, refused := s.deps.Conns.Admit(ip)
	if refused != "" {
		s.deps.metrics().LimitHit("c2s", refused)
		s.refusals.log(s.log, ip, refused)
		w.Header().Set("Retry-After", "10")
		http.Error(w, "refused by the connection limits: "+refused, http.StatusServiceUnavailable)
		return
	}
	upgraded := false
	defer func() {
		if !upgraded {
			ticket.Release()
		}
	}()
	hj, ok := w.(http.Hijacker)
	if !ok {
		refuse(http.StatusInternalServerError, "this HTTP connection cannot be upgraded")
		return
	}
	nc, rw, err := hj.Hijack()
	if err != nil {
		s.log.Debug("websocket hijack", "remote", r.RemoteAddr, "err", err)
		return
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: xmpp\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n"
	_ = nc.SetDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := io.WriteString(nc, resp); err != nil {
		nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	pre := takeBuffered(rw)

	// Under TLS from our own listener (TLSListener), the socket and the
	// record reader below TLS are known, and the session can be polled
	// like a direct TLS one; under any other TLS it keeps a goroutine.
	raw, tc := nc, (*tls.Conn)(nil)
	var rec *recordConn
	if t, ok := nc.(*tls.Conn); ok {
		if rc, ok := t.NetConn().(*recordConn); ok {
			raw, tc, rec = rc.Conn, t, rc
		}
	}
	upgraded = true
	c := admitted(s, raw, ip, ticket)
	ws := &wsState{r: wsReader{max: s.cfg.Limits.MaxStanzaBytes}, pre: pre}
	if addr != r.RemoteAddr {
		ws.peer = addr // from a trusted proxy; else the socket's, known anyway
	}
	ws.w = wsConn{Conn: c.out, pool: &s.writePool}
	if tc != nil {
		rec.Conn = c.out // writes no longer wait for the client
		c.rec, c.tls = rec, tc
		ws.w.Conn = tc
	}
	ws.scheme, ws.rest = redirectScheme(r), r.URL.Path
	if _, port, err := net.SplitHostPort(r.Host); err == nil {
		ws.rest = ":" + port + ws.rest
	}
	c.ws = ws
	c.nc = &ws.w
	if !s.conns.Add(c) {
		nc.Close()
		return
	}
	s.startPoller()
	c.serve(ctx, false)
}

// takeBuffered returns what the HTTP server read past the upgrade request,
// which belongs to the WebSocket; clients wait for the upgrade before
// sending, so it is normally nothing. (Under TLS, plaintext that
// crypto/tls decrypted beyond what the HTTP server read would wait until
// the client sends more: only a client that sends over 4 KiB of frames
// with its upgrade request, before the answer, could see that.)
func takeBuffered(rw *bufio.ReadWriter) []byte {
	if rw == nil || rw.Reader.Buffered() == 0 {
		return nil
	}
	b := make([]byte, rw.Reader.Buffered())
	n, _ := rw.Reader.Read(b)
	return b[:n]
}

// redirectScheme is the scheme the client reached this endpoint with, as
// well as it can be told: wss over TLS or when a proxy says https, ws when
// a proxy says http or a plain request comes from loopback directly, and
// wss from a proxy that says nothing (proxies are trusted only as TLS
// terminators).
func redirectScheme(r *http.Request) string {
	switch proto := r.Header.Get("X-Forwarded-Proto"); {
	case r.TLS != nil || strings.EqualFold(proto, "https"):
		return "wss"
	case strings.EqualFold(proto, "http"):
		return "ws"
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && ap.Addr().IsLoopback() {
		return "ws"
	}
	return "wss"
}

// redirect builds the see-other-uri of RFC 7395 §3.6.1 from a
// see-other-host value: the other host, with this endpoint's scheme, port
// and path, since the gateways of a deployment serve the same endpoint.
func (ws *wsState) redirect(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return ws.scheme + "://" + host + ws.rest
}

// headerHas reports whether a comma-separated header holds token.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// feed hands bytes read from the client to the parser: directly on TCP,
// through the frame decoder on WebSocket.
func (c *conn) feed(b []byte) {
	if c.ws == nil {
		c.parser.Feed(b)
		return
	}
	c.ws.r.feed(b, c)
}

// wsMessage implements wsSink: <open/> and <close/> stand for the stream
// header and end the parser expects; anything else is an element of the
// stream.
func (c *conn) wsMessage(p []byte) {
	switch kind, el := framing(p); kind {
	case "open":
		h := []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'")
		for _, a := range el.Attr {
			if a.Name.Space == "" && (a.Name.Local == "to" || a.Name.Local == "from" || a.Name.Local == "version") ||
				a.Name.Space == "http://www.w3.org/XML/1998/namespace" && a.Name.Local == "lang" || a.Name.Space == "xml" && a.Name.Local == "lang" {
				name := a.Name.Local
				if a.Name.Local == "lang" {
					name = "xml:lang"
				}
				h = append(h, ' ')
				h = append(h, name...)
				h = append(h, "='"...)
				h = xmlstream.AppendEscapedAttr(h, a.Value)
				h = append(h, '\'')
			}
		}
		c.parser.Feed(append(h, '>'))
	case "close":
		c.parser.Feed([]byte("</stream:stream>"))
	case "bad":
		c.ws.r.err = &wsError{wsClosePolicy, "invalid-namespace", "<open/> and <close/> belong to " + nsFraming}
	default:
		c.parser.Feed(p)
	}
}

// framing recognizes RFC 7395's <open/> and <close/>, parsing only
// messages that start like them.
func framing(p []byte) (string, *xml.StartElement) {
	t := bytes.TrimLeft(p, " \t\r\n")
	if bytes.HasPrefix(t, []byte("<?xml")) {
		if k := bytes.Index(t, []byte("?>")); k >= 0 {
			t = bytes.TrimLeft(t[k+2:], " \t\r\n")
		}
	}
	if !bytes.HasPrefix(t, []byte("<open")) && !bytes.HasPrefix(t, []byte("<close")) {
		return "", nil
	}
	tok, err := xml.NewDecoder(bytes.NewReader(t)).RawToken()
	se, ok := tok.(xml.StartElement)
	if err != nil || !ok || se.Name.Space != "" || (se.Name.Local != "open" && se.Name.Local != "close") {
		return "", nil
	}
	for _, a := range se.Attr {
		if a.Name.Space == "" && a.Name.Local == "xmlns" {
			if a.Value != nsFraming {
				return "bad", nil
			}
			return se.Name.Local, &se
		}
	}
	return "bad", nil
}

// wsControl implements wsSink.
func (c *conn) wsControl(op byte, p []byte) {
	switch op {
	case wsPing:
		c.wmu.Lock()
		if !c.closed {
			_ = c.ws.w.writeControl(wsPong, p)
		}
		c.wmu.Unlock()
	case wsClose:
		// The client closes the WebSocket: like a TCP connection closed
		// without a stream end, which leaves a resumable session waiting
		// for its client (unless <close/> came first).
		c.ws.r.err = &wsError{code: wsCloseNormal}
	}
}

// wsFailed ends the connection after the frame decoder stopped: a close
// from the client is answered with a close frame, a protocol violation
// with a stream error and a close frame with its code.
func (c *conn) wsFailed() bool {
	e := c.ws.r.err
	if e.condition == "" {
		c.wmu.Lock()
		if !c.closed {
			c.closed = true
			_ = c.ws.w.writeControl(wsClose, []byte{byte(e.code >> 8), byte(e.code)})
		}
		c.wmu.Unlock()
		c.out.waitIdle(time.Second)
		return false
	}
	c.srv.log.Debug("websocket", "remote", c.remote(), "err", e.text)
	c.wmu.Lock()
	c.ws.w.closeCode = e.code // read by whoever writes the stream end, under wmu
	c.wmu.Unlock()
	c.fail(e.condition, e.text)
	return false
}

// remote is the client's address for the logs: behind a trusted proxy,
// the one the proxy names.
func (c *conn) remote() string {
	if c.ws != nil && c.ws.peer != "" {
		return c.ws.peer
	}
	return c.raw.RemoteAddr().String()
}

// TLSListener returns a listener serving TLS on l with cfg, for the HTTP
// listener that carries WebSocket sessions: below each TLS connection it
// puts the record reader of direct TLS, so that a WebSocket session
// upgraded on it is polled without a goroutine or buffer once idle, as a
// direct TLS session is. HTTP/2 is not offered (WebSocket upgrades need
// HTTP/1.1).
func (s *Server) TLSListener(l net.Listener, cfg *tls.Config) net.Listener {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	return &tlsListener{Listener: l, cfg: cfg, s: s}
}

type tlsListener struct {
	net.Listener
	cfg *tls.Config
	s   *Server
}

func (l *tlsListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	rec := &recordConn{Conn: nc, pool: &l.s.readPool}
	rec.read = nc.Read
	return tls.Server(rec, l.cfg), nil
}

// peerIP is the address of a client as Peer gives it ("host:port" or a
// bare address), invalid when it is neither.
func peerIP(addr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(addr)
	return a.Unmap()
}
