package componentclient

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

const (
	testDomain = "echo.localhost"
	testSecret = "s3cret"
	// serverHeader is what Ambrosia's component listener answers with.
	serverHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='3BF96D32' from='echo.localhost'>"
)

// runSession feeds the parts one after the other and describes every
// action and the error that ended the session, one line each.
func runSession(parts ...[]byte) []string {
	s := newSession(testDomain, testSecret, xmlstream.DefaultLimits())
	var out []string
	for _, p := range parts {
		s.feed(p)
		for {
			a, err := s.next()
			if errors.Is(err, xmlstream.ErrNeedMore) {
				break
			}
			if err != nil {
				return append(out, describeErr(err))
			}
			out = append(out, describe(a))
		}
	}
	return out
}

func describe(a action) string {
	switch a.kind {
	case actSend:
		return "send " + string(a.out)
	case actReady:
		return "ready"
	case actRoute:
		return fmt.Sprintf("route %s from=%s to=%s id=%s", a.st.El.Local, a.st.From, a.st.To, a.st.El.Attr("id"))
	case actDrop:
		return fmt.Sprintf("drop %s id=%s: %s", a.el.Local, a.el.Attr("id"), a.why)
	}
	return fmt.Sprintf("kind %d", a.kind)
}

func describeErr(err error) string {
	var se *StreamError
	var pe *protocolError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("stream error %s handshake=%v text=%q", se.Condition, se.Handshake, se.Text)
	case errors.As(err, &pe):
		return "protocol error " + pe.cond
	case errors.Is(err, errStreamEnd):
		return "end"
	}
	return "error " + err.Error()
}

func TestHandshakeValue(t *testing.T) {
	// Stream id first, then the secret; lowercase hex (sha1sum agrees).
	if got := handshake("3BF96D32", "s3cret"); got != "a984b871214a298f0f743fcd25f99b10838ba12b" {
		t.Fatalf("handshake %s", got)
	}
}

func TestSession(t *testing.T) {
	proof := "send <handshake>" + handshake("3BF96D32", testSecret) + "</handshake>"
	cases := []struct {
		name string
		in   string
		want []string
	}{
		{"stanzas", serverHeader + "<handshake/>" +
			"<message from='alice@localhost/res' to='bot@echo.localhost' id='m1'><body>hi</body></message> \n" +
			"<iq type='get' from='alice@localhost/res' to='echo.localhost' id='q1'><query xmlns='jabber:iq:version'/></iq>" +
			"<presence from='localhost' to='Bot@Echo.Localhost/x' id='p1'/>" +
			"</stream:stream>",
			[]string{proof, "ready",
				"route message from=alice@localhost/res to=bot@echo.localhost id=m1",
				"route iq from=alice@localhost/res to=echo.localhost id=q1",
				"route presence from=localhost to=bot@echo.localhost/x id=p1",
				"end"}},
		{"not for the domain", serverHeader + "<handshake/>" +
			"<message from='alice@localhost' to='bob@localhost' id='a'/>" +
			"<message from='alice@localhost' to='bot@a.echo.localhost' id='b'/>" +
			"<message from='alice@localhost' id='c'/>" +
			"<message from='alice@localhost' to='a@b@echo.localhost' id='d'/>" +
			"<message to='bot@echo.localhost' id='e'/>" +
			"<message from='@localhost' to='bot@echo.localhost' id='f'/>" +
			"<r xmlns='urn:xmpp:sm:3' id='g'/>" +
			"<handshake id='h'/>" +
			"<message from='alice@localhost' to='bot@echo.localhost' id='ok'/>",
			[]string{proof, "ready",
				"drop message id=a: not for this component's domain",
				"drop message id=b: not for this component's domain",
				"drop message id=c: malformed or missing 'to'",
				"drop message id=d: malformed or missing 'to'",
				"drop message id=e: malformed or missing 'from'",
				"drop message id=f: malformed or missing 'from'",
				"drop r id=g: not a stanza",
				"drop handshake id=h: second handshake",
				"route message from=alice@localhost to=bot@echo.localhost id=ok"}},
		{"refused", serverHeader + "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" +
			"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>bad secret</text></stream:error></stream:stream>",
			[]string{proof, `stream error not-authorized handshake=true text="bad secret"`}},
		{"error after the handshake", serverHeader + "<handshake/><stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
			[]string{proof, "ready", `stream error system-shutdown handshake=false text=""`}},
		{"error without a condition", serverHeader + "<stream:error/>",
			[]string{proof, `stream error undefined-condition handshake=true text=""`}},
		{"no stream id", "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>",
			[]string{"protocol error undefined-condition"}},
		{"client namespace", "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x'>",
			[]string{"protocol error invalid-namespace"}},
		{"not a stream", "<stream xmlns='jabber:component:accept' id='x'>",
			[]string{"protocol error invalid-namespace"}},
		{"stanza before the handshake", serverHeader + "<message from='a@localhost' to='bot@echo.localhost'/>",
			[]string{proof, "protocol error unsupported-stanza-type"}},
		{"not well-formed", serverHeader + "<handshake/><message from='a@localhost' to='bot@echo.localhost'></presence>",
			[]string{proof, "ready", "protocol error not-well-formed"}},
		{"restricted xml", serverHeader + "<handshake/><!-- hi -->",
			[]string{proof, "ready", "protocol error restricted-xml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := runSession([]byte(tc.in))
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			// Byte by byte, as a slow network delivers it: the same.
			parts := make([][]byte, len(tc.in))
			for i := range tc.in {
				parts[i] = []byte{tc.in[i]}
			}
			if bytewise := runSession(parts...); strings.Join(bytewise, "\n") != strings.Join(got, "\n") {
				t.Fatalf("byte by byte:\n  %s", strings.Join(bytewise, "\n  "))
			}
		})
	}
}

func TestStanzaLimit(t *testing.T) {
	s := newSession(testDomain, testSecret, xmlstream.Limits{MaxStanzaBytes: 100})
	s.feed([]byte(serverHeader + "<handshake/><message from='a@localhost' to='bot@echo.localhost'><body>" + strings.Repeat("x", 200)))
	for {
		_, err := s.next()
		if err == nil {
			continue
		}
		var pe *protocolError
		if !errors.As(err, &pe) || pe.cond != xmlstream.CondPolicyViolation {
			t.Fatalf("got %v, want policy-violation", err)
		}
		return
	}
}

// FuzzSession feeds what a server might send in two parts split at a
// fuzzed point. It must never panic, the split must not change the
// outcome, and the session keeps its promises whatever the input: one
// handshake answer, after the header; stanzas routed only after the
// server's <handshake/>, and only stanzas addressed to the domain.
func FuzzSession(f *testing.F) {
	f.Add([]byte(serverHeader+"<handshake/><message from='alice@localhost' to='bot@echo.localhost'><body>hi</body></message>"), uint(40))
	f.Add([]byte(serverHeader+"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"), uint(7))
	f.Fuzz(func(t *testing.T, data []byte, split uint) {
		at := int(split % uint(len(data)+1))
		whole := runSession(data)
		if got := runSession(data[:at], data[at:]); strings.Join(got, "\n") != strings.Join(whole, "\n") {
			t.Fatalf("split at %d:\n got %q\nwant %q", at, got, whole)
		}
		s := newSession(testDomain, testSecret, xmlstream.DefaultLimits())
		s.feed(data)
		sent, readyCount := 0, 0
		for {
			a, err := s.next()
			if err != nil {
				return
			}
			switch a.kind {
			case actSend:
				sent++
				if sent > 1 || readyCount > 0 || !strings.HasPrefix(string(a.out), "<handshake>") {
					t.Fatalf("unexpected write %q", a.out)
				}
			case actReady:
				readyCount++
				if readyCount > 1 || sent != 1 {
					t.Fatalf("ready %d times after %d handshakes", readyCount, sent)
				}
			case actRoute:
				if readyCount != 1 {
					t.Fatal("stanza routed before the handshake")
				}
				if a.st.To.Domain() != testDomain || a.st.From.IsZero() {
					t.Fatalf("routed from %q to %q", a.st.From, a.st.To)
				}
				if l := a.st.El.Local; l != "message" && l != "presence" && l != "iq" {
					t.Fatalf("routed a <%s/>", l)
				}
			case actDrop:
				if readyCount != 1 || a.why == "" {
					t.Fatalf("dropped %q before the handshake or without a reason", a.el.Local)
				}
			default:
				t.Fatalf("action kind %d", a.kind)
			}
		}
	})
}
