package c2s

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"net/http/httptest"
	"strings"
	"testing"
)

// maskedFrame builds a client frame.
func maskedFrame(op byte, fin bool, p []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch {
	case len(p) < 126:
		b = append(b, 0x80|byte(len(p)))
	case len(p) <= 0xFFFF:
		b = append(b, 0x80|126, byte(len(p)>>8), byte(len(p)))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
	}
	key := []byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key...)
	for i, c := range p {
		b = append(b, c^key[i&3])
	}
	return b
}

type recorder struct {
	msgs     []string
	controls []string
}

func (r *recorder) wsMessage(p []byte) { r.msgs = append(r.msgs, string(p)) }
func (r *recorder) wsControl(op byte, p []byte) {
	r.controls = append(r.controls, string(rune('0'+op))+string(p))
}

// Frames are decoded whatever way the bytes are split, and nothing is
// kept once a frame is complete.
func TestWSReaderSplits(t *testing.T) {
	long := strings.Repeat("y", 70000)
	var in []byte
	in = append(in, maskedFrame(wsText, true, []byte("<presence/>"))...)
	in = append(in, maskedFrame(wsPing, true, []byte("p"))...)
	in = append(in, maskedFrame(wsText, false, []byte("<message>"))...)
	in = append(in, maskedFrame(wsContinuation, true, []byte("</message>"))...)
	in = append(in, maskedFrame(wsText, true, []byte(long))...)
	in = append(in, maskedFrame(wsText, true, []byte(strings.Repeat("z", 300)))...)
	for _, step := range []int{1, 2, 3, 7, 13, 100, 4096, len(in)} {
		r := &wsReader{max: 100000}
		rec := &recorder{}
		data := bytes.Clone(in)
		for i := 0; i < len(data); i += step {
			if err := r.feed(data[i:min(i+step, len(data))], rec); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
		want := []string{"<presence/>", "<message></message>", long, strings.Repeat("z", 300)}
		if len(rec.msgs) != len(want) {
			t.Fatalf("step %d: %d messages", step, len(rec.msgs))
		}
		for i := range want {
			if rec.msgs[i] != want[i] {
				t.Fatalf("step %d: message %d differs", step, i)
			}
		}
		if len(rec.controls) != 1 || rec.controls[0] != "9p" {
			t.Fatalf("step %d: controls %q", step, rec.controls)
		}
		if r.partial != nil || r.msg != nil {
			t.Fatalf("step %d: buffers kept after complete frames", step)
		}
	}
}

func TestWSReaderErrors(t *testing.T) {
	unmasked := maskedFrame(wsText, true, []byte("x"))
	unmasked[1] &^= 0x80
	for _, tc := range []struct {
		name string
		in   []byte
		code uint16
	}{
		{"too big", maskedFrame(wsText, true, make([]byte, 101)), wsCloseTooBig},
		{"too big in fragments", append(maskedFrame(wsText, false, make([]byte, 60)), maskedFrame(wsContinuation, true, make([]byte, 60))...), wsCloseTooBig},
		{"too big header only", []byte{0x81, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0}, wsCloseTooBig},
		{"binary", maskedFrame(wsBinary, true, []byte("x")), wsCloseUnsupported},
		{"unmasked", unmasked, wsCloseProtocol},
		{"reserved bits", append([]byte{0xC1}, maskedFrame(wsText, true, nil)[1:]...), wsCloseProtocol},
		{"unknown opcode", maskedFrame(0x3, true, nil), wsCloseProtocol},
		{"long ping", maskedFrame(wsPing, true, make([]byte, 126)), wsCloseProtocol},
		{"fragmented ping", maskedFrame(wsPing, false, nil), wsCloseProtocol},
		{"stray continuation", maskedFrame(wsContinuation, true, []byte("x")), wsCloseProtocol},
		{"text in a message", append(maskedFrame(wsText, false, []byte("a")), maskedFrame(wsText, true, []byte("b"))...), wsCloseProtocol},
		{"not utf-8", maskedFrame(wsText, true, []byte{0xff, 0xfe}), wsCloseInvalidData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &wsReader{max: 100}
			err := r.feed(tc.in, &recorder{})
			if err == nil || err.code != tc.code {
				t.Fatalf("got %v, want code %d", err, tc.code)
			}
		})
	}
}

// FuzzWSReader checks that no input panics the decoder, that a split
// changes nothing, and that no message exceeds the limit.
func FuzzWSReader(f *testing.F) {
	f.Add(maskedFrame(wsText, true, []byte("<presence/>")), 3)
	f.Add(append(maskedFrame(wsText, false, []byte("<a>")), maskedFrame(wsContinuation, true, []byte("</a>"))...), 1)
	f.Add(maskedFrame(wsClose, true, []byte{3, 232}), 2)
	f.Add([]byte{0x81, 0xFE, 0x00, 0x10, 1, 2, 3, 4}, 5)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		const max = 512
		whole := &recorder{}
		r1 := &wsReader{max: max}
		err1 := r1.feed(bytes.Clone(in), whole)
		parts := &recorder{}
		r2 := &wsReader{max: max}
		var err2 *wsError
		data := bytes.Clone(in)
		if split <= 0 {
			split = 1
		}
		for i := 0; i < len(data) && err2 == nil; i += split {
			err2 = r2.feed(data[i:min(i+split, len(data))], parts)
		}
		if (err1 == nil) != (err2 == nil) || (err1 != nil && err1.code != err2.code) {
			t.Fatalf("whole: %v, split: %v", err1, err2)
		}
		if strings.Join(whole.msgs, "\x00") != strings.Join(parts.msgs, "\x00") {
			t.Fatalf("messages differ when split")
		}
		for _, m := range whole.msgs {
			if len(m) > max {
				t.Fatalf("message of %d bytes", len(m))
			}
		}
	})
}

// FuzzWSFrames checks that the writer frames what the session code writes
// into messages that each hold whole elements, and never panics.
func FuzzWSFrames(f *testing.F) {
	f.Add([]byte("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' id='x' from='localhost'>"))
	f.Add([]byte("<message to='a@b' id='1'><body>a &gt; b</body></message><presence/></stream:stream>"))
	f.Add([]byte("<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"))
	f.Fuzz(func(t *testing.T, p []byte) {
		w := &wsConn{}
		out := w.frames(nil, p)
		for len(out) > 0 {
			if len(out) < 2 || out[0]&0x80 == 0 || out[1]&0x80 != 0 {
				t.Fatalf("bad frame header % x", out[:min(len(out), 2)])
			}
			n, hl := int(out[1]&0x7F), 2
			switch n {
			case 126:
				n, hl = int(binary.BigEndian.Uint16(out[2:])), 4
			case 127:
				n, hl = int(binary.BigEndian.Uint64(out[2:])), 10
			}
			if len(out) < hl+n {
				t.Fatalf("frame of %d bytes in %d", n, len(out)-hl)
			}
			out = out[hl+n:]
		}
	})
}

func TestWSFrames(t *testing.T) {
	w := &wsConn{seeOther: "wss://other.example:5281/xmpp-websocket"}
	in := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en' id='i1' from='localhost'>" +
		"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>" +
		"<message to='a@localhost' id='m&apos;>'><body>1 > 0</body><x xmlns='y'><z/></x></message><presence xmlns='jabber:client'/>" +
		"</stream:stream>"
	out := w.frames(nil, []byte(in))
	var got []string
	for len(out) > 0 {
		n, hl := int(out[1]&0x7F), 2
		if n == 126 {
			n, hl = int(binary.BigEndian.Uint16(out[2:])), 4
		}
		got = append(got, string(out[0]&0x0F+'0')+" "+string(out[hl:hl+n]))
		out = out[hl+n:]
	}
	want := []string{
		"1 <open xmlns='urn:ietf:params:xml:ns:xmpp-framing' version='1.0' xml:lang='en' id='i1' from='localhost'/>",
		"1 <stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
		"1 <message xmlns='jabber:client' to='a@localhost' id='m&apos;>'><body>1 > 0</body><x xmlns='y'><z/></x></message>",
		"1 <presence xmlns='jabber:client'/>",
		"1 <close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='wss://other.example:5281/xmpp-websocket'/>",
		"8 \x03\xe8",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWSRedirect(t *testing.T) {
	ws := &wsState{scheme: "wss", rest: ":5281/xmpp-websocket"}
	for in, want := range map[string]string{
		"gw2.example.org:5222": "wss://gw2.example.org:5281/xmpp-websocket",
		"gw2.example.org":      "wss://gw2.example.org:5281/xmpp-websocket",
		"[2001:db8::1]:5222":   "wss://[2001:db8::1]:5281/xmpp-websocket",
	} {
		if got := ws.redirect(in); got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}

func TestWSRedirectScheme(t *testing.T) {
	for _, tc := range []struct {
		remote, proto string
		tls           bool
		want          string
	}{
		{"203.0.113.1:5", "", true, "wss"},
		{"10.0.0.1:5", "https", false, "wss"},
		{"10.0.0.1:5", "http", false, "ws"},
		{"10.0.0.1:5", "", false, "wss"},
		{"127.0.0.1:5", "", false, "ws"},
		{"[::1]:5", "", false, "ws"},
	} {
		r := httptest.NewRequest("GET", "/xmpp-websocket", nil)
		r.RemoteAddr = tc.remote
		if tc.proto != "" {
			r.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := redirectScheme(r); got != tc.want {
			t.Errorf("%+v: got %s", tc, got)
		}
	}
}

type discard struct{}

func (discard) wsMessage([]byte)       {}
func (discard) wsControl(byte, []byte) {}

// BenchmarkWSReader decodes chat messages arriving several to a read.
func BenchmarkWSReader(b *testing.B) {
	msg := []byte("<message xmlns='jabber:client' to='bob@localhost/b' type='chat' id='abc123'><body>Hello there, how are you?</body></message>")
	var in []byte
	for range 8 {
		in = append(in, maskedFrame(wsText, true, msg)...)
	}
	buf := make([]byte, len(in))
	r := &wsReader{max: 1 << 20}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, in) // feed unmasks in place
		if err := r.feed(buf, discard{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWSFrames frames a delivered chat message.
func BenchmarkWSFrames(b *testing.B) {
	msg := []byte("<message to='bob@localhost/b' type='chat' id='abc123' from='alice@localhost/a'><body>Hello there, how are you?</body></message>")
	w := &wsConn{}
	out := make([]byte, 0, 512)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		out = w.frames(out[:0], msg)
	}
}
