package link

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

func mustParse(t testing.TB, b []byte) *xmlstream.Element {
	t.Helper()
	el, err := xmlstream.ParseStanza(b, NS)
	if err != nil {
		t.Fatalf("parse %s: %v", b, err)
	}
	return el
}

func TestFrame(t *testing.T) {
	msg := xmlstream.NewElement(xmlstream.NSClient, "message")
	msg.SetAttr("to", "bob@example.org")
	msg.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body")).AddText("a < b & 'c'")
	tests := []struct {
		name    string
		b       []byte
		local   string
		attrs   map[string]string
		payload bool
	}{
		{"deliver", frame("deliver", msg, "sid", "s1", "o", "g:1", "k", "2"), "deliver", map[string]string{"sid": "s1", "o": "g:1", "k": "2"}, true},
		{"empty attrs left out", frame("route", msg, "o", ""), "route", map[string]string{}, true},
		{"escaped attr", frame("close", nil, "sid", "a'b", "condition", "conflict"), "close", map[string]string{"sid": "a'b"}, false},
	}
	for _, tt := range tests {
		el := mustParse(t, tt.b)
		if el.Space != NS || el.Local != tt.local {
			t.Errorf("%s: got {%s}%s", tt.name, el.Space, el.Local)
		}
		for k, v := range tt.attrs {
			if el.Attr(k) != v {
				t.Errorf("%s: %s=%q, want %q", tt.name, k, el.Attr(k), v)
			}
		}
		if tt.name == "empty attrs left out" && el.HasAttr("o") {
			t.Errorf("%s: empty attribute written", tt.name)
		}
		p := payload(el)
		if (p != nil) != tt.payload {
			t.Fatalf("%s: payload %v", tt.name, p)
		}
		if p != nil && (p.Space != xmlstream.NSClient || p.Child(xmlstream.NSClient, "body").Text() != "a < b & 'c'") {
			t.Errorf("%s: payload %s", tt.name, p)
		}
	}
}

// pipeConn returns a conn writing into a pipe and a function reading what
// it wrote so far.
func pipeConn(t *testing.T) (*conn, func() string) {
	a, b := net.Pipe()
	c := newConn(a)
	got := make(chan string, 1000)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := b.Read(buf)
			if n > 0 {
				got <- string(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { c.kill(); b.Close() })
	var acc strings.Builder
	return c, func() string {
		for {
			select {
			case s := <-got:
				acc.WriteString(s)
			default:
				return acc.String()
			}
		}
	}
}

func TestOutboxAckAndResume(t *testing.T) {
	var o outbox
	for i := 1; i <= 5; i++ {
		if seq := o.send([]byte("<e n='"+string(rune('0'+i))+"'/>"), "u@example.org"); seq != uint64(i) {
			t.Fatalf("seq %d, want %d", seq, i)
		}
	}
	if err := o.attach(newConn(discard{}), 3); err == nil {
		t.Fatal("a first link claiming events must fail")
	}
	c1, read1 := pipeConn(t)
	if err := o.attach(c1, 0); err != nil {
		t.Fatal(err)
	}
	waitForBoth(read1, "<e n='1'/>", "<e n='5'/>")
	if err := o.ack(2); err != nil {
		t.Fatal(err)
	}
	if err := o.ack(1); err != nil {
		t.Fatal("an old h must be ignored")
	}
	if err := o.ack(9); err == nil {
		t.Fatal("h beyond what was sent must fail")
	}
	if sent, acked := o.state(); sent != 5 || acked != 2 {
		t.Fatalf("state %d %d", sent, acked)
	}
	o.detach()
	// The peer says it got 3: events 4 and 5 go out again, in order.
	c, read := pipeConn(t)
	if err := o.attach(c, 3); err != nil {
		t.Fatal(err)
	}
	out := waitForBoth(read, "<e n='4'/>", "<e n='5'/>")
	if strings.Contains(out, "n='3'") || strings.Index(out, "n='4'") > strings.Index(out, "n='5'") {
		t.Fatalf("resent %q", out)
	}
	if err := o.ack(4); err != nil {
		t.Fatal(err)
	}
	items := o.detach()
	if len(items) != 1 || items[0].seq != 5 || items[0].user != "u@example.org" {
		t.Fatalf("unacknowledged %+v", items)
	}
	if err := o.attach(c, 7); err == nil {
		t.Fatal("a peer claiming more than was sent must fail")
	}
	ep := o.epoch()
	o.reset()
	if sent, _ := o.state(); sent != 0 || o.epoch() != ep+1 || len(o.detach()) != 0 {
		t.Fatal("reset must forget everything")
	}
}

// discard is a connection that takes every write and never reads.
type discard struct{ net.Conn }

func (discard) Write(b []byte) (int, error)      { return len(b), nil }
func (discard) Close() error                     { return nil }
func (discard) SetWriteDeadline(time.Time) error { return nil }

func waitForBoth(read func() string, a, b string) string {
	var s string
	for i := 0; i < 1e6; i++ {
		s = read()
		if strings.Contains(s, a) && strings.Contains(s, b) {
			break
		}
	}
	return s
}

func TestConnAck(t *testing.T) {
	c, read := pipeConn(t)
	c.setAck(3)
	c.setAck(2) // never goes back
	out := waitForBoth(read, "h='3'", "h='3'")
	if !strings.Contains(out, "<a xmlns='urn:xmpp:sm:3' h='3'/>") || strings.Contains(out, "h='2'") {
		t.Fatalf("wrote %q", out)
	}
}

func TestChunks(t *testing.T) {
	body := strings.Repeat("x<&>'\"y", ChunkThreshold/3)
	msg := xmlstream.NewElement(xmlstream.NSClient, "message")
	msg.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body")).AddText(body)
	data := frame("deliver", msg, "sid", "s1")
	var ch chunker
	parts := ch.split(data)
	if len(parts) < 2 {
		t.Fatalf("%d bytes in %d chunks", len(data), len(parts))
	}
	var a assembler
	var whole *xmlstream.Element
	for i, p := range parts {
		if len(p) > 2*chunkSize+64 && i < len(parts)-1 {
			t.Fatalf("chunk of %d bytes", len(p))
		}
		el := mustParse(t, p)
		got, err := a.add(el)
		if err != nil {
			t.Fatal(err)
		}
		if (got != nil) != (i == len(parts)-1) {
			t.Fatalf("chunk %d of %d: whole=%v", i, len(parts), got != nil)
		}
		whole = got
	}
	if whole.Local != "deliver" || payload(whole).Child(xmlstream.NSClient, "body").Text() != body {
		t.Fatal("reassembled event differs")
	}
}

func TestAssemblerBadInput(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
	}{
		{"no id", []string{"<chunk>x</chunk>"}},
		{"second event not xml", []string{"<chunk id='1' more='1'>&lt;a</chunk>", "<chunk id='2'>/&gt;</chunk>"}},
		{"not xml", []string{"<chunk id='1'>&lt;a</chunk>"}},
	}
	for _, tt := range tests {
		var a assembler
		var err error
		for _, c := range tt.chunks {
			if _, err = a.add(mustParse(t, []byte(c))); err != nil {
				break
			}
		}
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	var a assembler
	big := "<chunk id='1' more='1'>" + strings.Repeat("a", chunkSize) + "</chunk>"
	var err error
	for i := 0; i < MaxEventBytes/chunkSize+2 && err == nil; i++ {
		_, err = a.add(mustParse(t, []byte(big)))
	}
	if err == nil {
		t.Error("an event past MaxEventBytes was accepted")
	}
}

func TestDedup(t *testing.T) {
	var d dedup
	d.init(2)
	if d.seen("a") || d.seen("b") || !d.seen("a") {
		t.Fatal("a key must be seen once")
	}
	d.seen("c") // pushes "a" out
	if d.seen("a") {
		t.Fatal("the oldest key must be forgotten")
	}
}

func TestParseCredential(t *testing.T) {
	good := frame("cred-result", nil, "id", "1", "hash", "SHA-256", "iterations", "4096", "salt", "c2FsdA==", "stored-key", "c3Q=", "server-key", "c2U=")
	c, err := parseCredential(mustParse(t, good))
	if err != nil || c.Iterations != 4096 || string(c.Salt) != "salt" || string(c.StoredKey) != "st" || string(c.ServerKey) != "se" {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{
		"<cred-result iterations='0' salt='c2FsdA==' stored-key='c3Q=' server-key='c2U='/>",
		"<cred-result iterations='1' salt='!!' stored-key='c3Q=' server-key='c2U='/>",
		"<cred-result iterations='1' salt='c2FsdA==' server-key='c2U='/>",
	} {
		if _, err := parseCredential(mustParse(t, []byte(bad))); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// TestChunksInterleaved: a large event goes out in chunks, and small
// events queued after it for other users go out between its chunks, while
// an event of the same user waits for its end. The peer's counter then
// counts events in the order they completed on the wire, which is what an
// acknowledgement releases.
func TestChunksInterleaved(t *testing.T) {
	a, b := net.Pipe()
	c := newConn(a)
	t.Cleanup(func() { c.kill(); b.Close() })
	var o outbox
	if err := o.attach(c, 0); err != nil {
		t.Fatal(err)
	}
	msg := xmlstream.NewElement(xmlstream.NSClient, "message")
	msg.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body")).AddText(strings.Repeat("big ", 3*ChunkThreshold))
	o.send(frame("to", msg, "o", "big"), "u1@example.org")
	// The writer is blocked in the pipe: these are queued behind the big one.
	o.send([]byte("<to o='small-other'/>"), "u2@example.org")
	o.send([]byte("<to o='small-same'/>"), "u1@example.org")

	p := xmlstream.NewParser(linkLimits)
	p.Feed(header("", "", ""))
	var asm assembler
	var order []string
	lastChunk := -1
	buf := make([]byte, 64<<10)
	for len(order) < 3 {
		n, err := b.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		p.Feed(buf[:n])
		for {
			ev, err := p.Next()
			if err != nil {
				break
			}
			if ev.Kind != xmlstream.EventElement {
				continue
			}
			el := ev.Elem
			if el.Local == "chunk" {
				if el.Attr("more") == "" {
					lastChunk = len(order)
				}
				if el, err = asm.add(el); err != nil {
					t.Fatal(err)
				} else if el == nil {
					continue
				}
			}
			order = append(order, el.Attr("o"))
		}
	}
	if want := []string{"small-other", "big", "small-same"}; strings.Join(order, " ") != strings.Join(want, " ") {
		t.Fatalf("completed in the order %v, want %v", order, want)
	}
	if lastChunk != 1 {
		t.Fatalf("the big event's last chunk came at %d", lastChunk)
	}
	// The peer got one event: the small one, sequence number 2.
	if err := o.ack(1); err != nil {
		t.Fatal(err)
	}
	left := o.detach()
	if len(left) != 2 || left[0].seq != 1 || left[1].seq != 3 {
		t.Fatalf("unacknowledged after h=1: %+v", left)
	}
	if _, acked := o.state(); acked != 0 {
		t.Fatalf("acknowledged prefix %d, want 0 (event 1 is not)", acked)
	}
}
