package stanza

import (
	"strings"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

func parse(t *testing.T, s string) *xmlstream.Element {
	t.Helper()
	p := xmlstream.NewParser(xmlstream.DefaultLimits())
	p.Feed([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" + s))
	if _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	ev, err := p.Next()
	if err != nil {
		t.Fatal(err)
	}
	return ev.Elem
}

func TestErrorReply(t *testing.T) {
	in := parse(t, "<iq type='get' id='q1' from='a@x/r' to='b@x'><query xmlns='urn:q'/></iq>")
	r := ErrorReply(in, ServiceUnavailable, "gone")
	got := r.String()
	for _, want := range []string{"type='error'", "id='q1'", "to='a@x/r'", "from='b@x'", "<query xmlns='urn:q'/>", "type='cancel'", "<service-unavailable xmlns='" + NSStanzas + "'/>", ">gone</text>"} {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %s", got, want)
		}
	}
	if ErrorCondition(r) != ServiceUnavailable {
		t.Errorf("condition %q", ErrorCondition(r))
	}
}

func TestErrorTypes(t *testing.T) {
	for cond, typ := range map[string]string{
		BadRequest: Modify, NotAuthorized: Auth, Forbidden: Auth, ResourceConstraint: Wait,
		ServiceUnavailable: Cancel, ItemNotFound: Cancel, JIDMalformed: Modify, "made-up": Cancel,
	} {
		if got := ErrorType(cond); got != typ {
			t.Errorf("%s: %s, want %s", cond, got, typ)
		}
	}
}

func TestMayBounce(t *testing.T) {
	for s, want := range map[string]bool{
		"<message type='error'/>":      false,
		"<iq type='result'/>":          false,
		"<iq type='get'/>":             true,
		"<message/>":                   true,
		"<presence type='subscribe'/>": true,
	} {
		if got := MayBounce(parse(t, s)); got != want {
			t.Errorf("%s: %v", s, got)
		}
	}
	if !IsRequest(parse(t, "<iq type='set'/>")) || IsRequest(parse(t, "<iq type='result'/>")) || IsRequest(parse(t, "<message/>")) {
		t.Error("IsRequest")
	}
	if a, b := NewID(), NewID(); a == b || len(a) != 16 {
		t.Errorf("ids %q %q", a, b)
	}
}

func TestAppendStreamError(t *testing.T) {
	const ns = "urn:ietf:params:xml:ns:xmpp-streams"
	tests := []struct {
		cond, value, text, extra, want string
	}{
		{"conflict", "", "", "", "<stream:error><conflict xmlns='" + ns + "'/></stream:error>"},
		{"policy-violation", "", "too <big> & bad", "", "<stream:error><policy-violation xmlns='" + ns + "'/><text xmlns='" + ns + "'>too &lt;big&gt; &amp; bad</text></stream:error>"},
		{"see-other-host", "[2001:db8::1]:5222", "", "", "<stream:error><see-other-host xmlns='" + ns + "'>[2001:db8::1]:5222</see-other-host></stream:error>"},
		{"undefined-condition", "", "", "<x xmlns='urn:example'/>", "<stream:error><undefined-condition xmlns='" + ns + "'/><x xmlns='urn:example'/></stream:error>"},
	}
	for _, tt := range tests {
		if got := string(AppendStreamError([]byte("pre"), tt.cond, tt.value, tt.text, tt.extra)); got != "pre"+tt.want {
			t.Errorf("%s: got %s", tt.cond, got)
		}
	}
}
