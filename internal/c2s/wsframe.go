package c2s

import (
	"encoding/binary"
	"unicode/utf8"
)

// The server side of RFC 6455 framing, written here rather than taken from
// a WebSocket library: a library reads frames from a connection it owns,
// with a goroutine blocked in Read for as long as the connection lives and
// a read buffer that lives as long. An idle WebSocket session would then
// cost what an idle TCP session does not. Here frames are decoded from the
// bytes the c2s read path already has (from the poller's worker, like a
// TCP session's), and a frame is kept only while it is incomplete.

// WebSocket opcodes (RFC 6455 §5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA
)

// WebSocket close codes (RFC 6455 §7.4.1).
const (
	wsCloseNormal      = 1000
	wsCloseProtocol    = 1002
	wsCloseUnsupported = 1003
	wsCloseInvalidData = 1007
	wsClosePolicy      = 1008
	wsCloseTooBig      = 1009
)

// wsError is a WebSocket protocol violation: the close code the server
// answers with, and the stream error condition and text sent before it.
type wsError struct {
	code      uint16
	condition string
	text      string
}

func (e *wsError) Error() string { return "websocket: " + e.text }

// wsReader decodes the frames a client sends. It keeps nothing between
// frames but a frame that arrived in part (partial) and the fragments of a
// message split over several frames (msg); an idle session holds neither.
type wsReader struct {
	max     int    // the largest message payload accepted
	partial []byte // an incomplete frame, header included
	msg     []byte // fragments of a text message not finished yet
	inMsg   bool   // a fragmented text message is in progress
	err     *wsError
}

// wsSink receives what the frames carry.
type wsSink interface {
	// wsMessage receives a complete text message; the slice is valid only
	// during the call.
	wsMessage(p []byte)
	// wsControl receives a ping, pong or close frame's payload.
	wsControl(op byte, p []byte)
}

// feed decodes data, which it may modify (payloads are unmasked in
// place), and hands complete messages and control frames to s. After an
// error it ignores further input; the error stays in r.err.
func (r *wsReader) feed(data []byte, s wsSink) *wsError {
	for len(data) > 0 && r.err == nil {
		if len(r.partial) == 0 {
			total, err := r.frameSize(data)
			if err != nil {
				r.err = err
				break
			}
			if total > 0 && total <= len(data) {
				r.frame(data[:total], s)
				data = data[total:]
				continue
			}
			// Incomplete: keep it, with room for the whole frame once its
			// size is known, so that completing it needs no copy more.
			size := 14
			if total > 0 {
				size = total
			}
			r.partial = append(make([]byte, 0, size), data...)
			break
		}
		// Complete the kept frame: first its header, then its payload.
		k := min(r.need(), len(data))
		r.partial = append(r.partial, data[:k]...)
		data = data[k:]
		total, err := r.frameSize(r.partial)
		if err != nil {
			r.err = err
			break
		}
		if total > 0 && len(r.partial) == total {
			f := r.partial
			r.partial = nil
			r.frame(f, s)
		}
	}
	return r.err
}

// need says how many bytes the kept partial frame lacks: up to its
// length field while that is incomplete, else up to its end.
func (r *wsReader) need() int {
	if len(r.partial) < 2 {
		return 2 - len(r.partial)
	}
	hl := headerLen(r.partial[1])
	if len(r.partial) < hl {
		return hl - len(r.partial)
	}
	total, _ := r.frameSize(r.partial)
	return total - len(r.partial)
}

// headerLen is the length of a client frame's header given its second
// byte: the length bytes and the masking key.
func headerLen(b1 byte) int {
	switch b1 & 0x7F {
	case 126:
		return 2 + 2 + 4
	case 127:
		return 2 + 8 + 4
	}
	return 2 + 4
}

// frameSize checks the header at the start of b and returns the frame's
// whole length, or 0 if the header is not complete yet. Limits are checked
// as soon as the header says enough, so that an oversized frame is refused
// before its payload is kept.
func (r *wsReader) frameSize(b []byte) (int, *wsError) {
	if len(b) < 2 {
		return 0, nil
	}
	b0, b1 := b[0], b[1]
	op := b0 & 0x0F
	if b0&0x70 != 0 {
		return 0, &wsError{wsCloseProtocol, "bad-format", "reserved bits set in a WebSocket frame"}
	}
	if b1&0x80 == 0 {
		return 0, &wsError{wsCloseProtocol, "bad-format", "a client's WebSocket frames must be masked"}
	}
	switch op {
	case wsText, wsContinuation:
	case wsBinary:
		return 0, &wsError{wsCloseUnsupported, "unsupported-encoding", "XMPP over WebSocket uses text frames, not binary ones"}
	case wsClose, wsPing, wsPong:
		if b0&0x80 == 0 || b1&0x7F > 125 {
			return 0, &wsError{wsCloseProtocol, "bad-format", "a WebSocket control frame must be final and at most 125 bytes"}
		}
	default:
		return 0, &wsError{wsCloseProtocol, "bad-format", "unknown WebSocket opcode"}
	}
	hl := headerLen(b1)
	if len(b) < hl-4 {
		return 0, nil
	}
	var n uint64
	switch b1 & 0x7F {
	case 126:
		n = uint64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		n = binary.BigEndian.Uint64(b[2:])
	default:
		n = uint64(b1 & 0x7F)
	}
	if n > uint64(r.max) || (op <= wsText && uint64(len(r.msg))+n > uint64(r.max)) {
		return 0, &wsError{wsCloseTooBig, "policy-violation", "WebSocket message larger than the stanza size limit"}
	}
	if len(b) < hl {
		return 0, nil // the masking key is still to come
	}
	return hl + int(n), nil
}

// frame handles one complete frame, checked by frameSize.
func (r *wsReader) frame(f []byte, s wsSink) {
	fin, op := f[0]&0x80 != 0, f[0]&0x0F
	hl := headerLen(f[1])
	key := f[hl-4 : hl]
	p := f[hl:]
	for i := range p {
		p[i] ^= key[i&3]
	}
	switch op {
	case wsText:
		if r.inMsg {
			r.err = &wsError{wsCloseProtocol, "bad-format", "a new WebSocket message before the previous one was finished"}
			return
		}
		if fin {
			r.message(p, s)
			return
		}
		r.inMsg = true
		r.msg = append(r.msg, p...)
	case wsContinuation:
		if !r.inMsg {
			r.err = &wsError{wsCloseProtocol, "bad-format", "a WebSocket continuation frame with no message to continue"}
			return
		}
		r.msg = append(r.msg, p...)
		if fin {
			m := r.msg
			r.msg, r.inMsg = nil, false
			r.message(m, s)
		}
	default:
		s.wsControl(op, p)
	}
}

func (r *wsReader) message(p []byte, s wsSink) {
	if !utf8.Valid(p) {
		r.err = &wsError{wsCloseInvalidData, "bad-format", "a WebSocket text message that is not UTF-8"}
		return
	}
	s.wsMessage(p)
}

// appendFrameHeader appends the header of an unmasked server frame.
func appendFrameHeader(dst []byte, op byte, n int) []byte {
	dst = append(dst, 0x80|op)
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xFFFF:
		return append(dst, 126, byte(n>>8), byte(n))
	}
	dst = append(dst, 127)
	return binary.BigEndian.AppendUint64(dst, uint64(n))
}

// appendFrame appends an unmasked server frame carrying p.
func appendFrame(dst []byte, op byte, p []byte) []byte {
	return append(appendFrameHeader(dst, op, len(p)), p...)
}

// appendCloseFrame appends a close frame with a status code.
func appendCloseFrame(dst []byte, code uint16) []byte {
	return appendFrame(dst, wsClose, []byte{byte(code >> 8), byte(code)})
}
