package loadtest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
)

// wsStream is the client side of XMPP over WebSocket (RFC 7395) seen as
// a TCP stream's bytes, so that the rest of the load client is the same
// for both transports: a written stream header becomes <open/>, the
// stream end <close/>, anything else one text message per Write; read
// <open/> and <close/> become the header and the end again. It reads
// frames straight from the socket, holding no buffer between them.
type wsStream struct {
	net.Conn
	wmu     sync.Mutex // Write may run beside the reader
	pending []byte     // decoded, not read yet
	hdr     [14]byte
}

// upgradeWebSocket asks for the XMPP WebSocket on path over nc.
func upgradeWebSocket(nc net.Conn, host, path string) (*wsStream, error) {
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\nSec-WebSocket-Key: " + key + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		return nil, err
	}
	// The answer is read byte by byte up to its end, so that nothing of
	// the first frames is left in a buffer.
	br := bufio.NewReaderSize(oneByte{nc}, 16)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("websocket upgrade: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("websocket upgrade: %s", resp.Status)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return nil, errors.New("websocket upgrade: bad Sec-WebSocket-Accept")
	}
	return &wsStream{Conn: nc}, nil
}

// oneByte reads one byte at a time.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 1)]) }

func (w *wsStream) Write(p []byte) (int, error) {
	msg := bytes.TrimSpace(p)
	if i := bytes.Index(msg, []byte("?>")); bytes.HasPrefix(msg, []byte("<?xml")) && i >= 0 {
		msg = bytes.TrimSpace(msg[i+2:])
	}
	switch {
	case bytes.HasPrefix(msg, []byte("<stream:stream")):
		to := ""
		if i := bytes.Index(msg, []byte("to='")); i >= 0 {
			rest := msg[i+4:]
			to = string(rest[:max(bytes.IndexByte(rest, '\''), 0)])
		}
		msg = []byte("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='" + to + "' version='1.0'/>")
	case bytes.Equal(msg, StreamEnd):
		msg = []byte("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	f := make([]byte, 0, len(msg)+14)
	f = append(f, 0x81)
	switch {
	case len(msg) < 126:
		f = append(f, 0x80|byte(len(msg)))
	case len(msg) <= 0xFFFF:
		f = append(f, 0x80|126, byte(len(msg)>>8), byte(len(msg)))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(len(msg)))
	}
	f = append(f, key[:]...)
	for i, c := range msg {
		f = append(f, c^key[i&3])
	}
	w.wmu.Lock()
	_, err := w.Conn.Write(f)
	w.wmu.Unlock()
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *wsStream) Read(p []byte) (int, error) {
	for len(w.pending) == 0 {
		if _, err := io.ReadFull(w.Conn, w.hdr[:2]); err != nil {
			return 0, err
		}
		op, n := w.hdr[0]&0x0F, uint64(w.hdr[1]&0x7F)
		switch n {
		case 126:
			if _, err := io.ReadFull(w.Conn, w.hdr[2:4]); err != nil {
				return 0, err
			}
			n = uint64(binary.BigEndian.Uint16(w.hdr[2:4]))
		case 127:
			if _, err := io.ReadFull(w.Conn, w.hdr[2:10]); err != nil {
				return 0, err
			}
			n = binary.BigEndian.Uint64(w.hdr[2:10])
		}
		if n > 16<<20 {
			return 0, errors.New("websocket: frame too large")
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(w.Conn, msg); err != nil {
			return 0, err
		}
		switch {
		case op == 0x8:
			return 0, io.EOF
		case op != 0x1:
			continue
		case bytes.HasPrefix(msg, []byte("<open")):
			attrs := bytes.TrimSuffix(msg[len("<open"):], []byte("/>"))
			attrs = bytes.Replace(attrs, []byte("xmlns='urn:ietf:params:xml:ns:xmpp-framing'"), nil, 1)
			w.pending = append([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"), attrs...)
			w.pending = append(w.pending, '>')
		case bytes.HasPrefix(msg, []byte("<close")):
			w.pending = append(w.pending, StreamEnd...)
		default:
			w.pending = msg
		}
	}
	n := copy(p, w.pending)
	w.pending = w.pending[n:]
	if len(w.pending) == 0 {
		w.pending = nil
	}
	return n, nil
}
