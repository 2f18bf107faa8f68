package c2s_test

import (
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

const (
	alice    = "alice@localhost"
	alicePW  = "wonderland"
	phoneID  = "d4565fa7-4d72-4749-b3d3-740edbf87770"
	laptopID = "0b4bb0e1-5a4c-43a0-8c62-6f0d1b9f7d1e"
)

// sasl2Client connects with STARTTLS, ready to authenticate.
func sasl2Client(t *testing.T, s *xmpptest.Server) *xmpptest.Client {
	t.Helper()
	c := xmpptest.Dial(t, s.Addr, s.Domain)
	c.Open()
	c.StartTLS(s.Roots)
	return c
}

func startSASL2(t *testing.T, adjust func(*c2s.Config)) *xmpptest.Server {
	t.Helper()
	s := xmpptest.StartServer(t, adjust)
	s.AddUser(t, alice, alicePW)
	s.AddUser(t, "bob@localhost", "builder")
	return s
}

func texts(el *xmlstream.Element, space, local string) []string {
	var out []string
	for _, ch := range el.Children() {
		if ch.Space == space && ch.Local == local {
			out = append(out, ch.Text())
		}
	}
	return out
}

func TestSASL2Features(t *testing.T) {
	s := startSASL2(t, nil)
	c := sasl2Client(t, s)
	a := c.SASL2Features()
	if a == nil {
		t.Fatalf("no SASL2 feature in %s", c.Features)
	}
	if got, want := texts(a, xmpptest.NSSASL2, "mechanism"), c.Mechanisms(); !slices.Equal(got, want) {
		t.Fatalf("SASL2 mechanisms %v, legacy %v", got, want)
	}
	in := a.Child(xmpptest.NSSASL2, "inline")
	if in == nil {
		t.Fatal("no inline features")
	}
	b := in.Child(xmpptest.NSBind2, "bind")
	if b == nil {
		t.Fatal("no bind2")
	}
	var vars []string
	for _, f := range b.Child(xmpptest.NSBind2, "inline").Children() {
		vars = append(vars, f.Attr("var"))
	}
	sort.Strings(vars)
	if want := []string{"urn:xmpp:carbons:2", "urn:xmpp:csi:0", "urn:xmpp:sm:3"}; !slices.Equal(vars, want) {
		t.Fatalf("bind2 inline features %v, want %v", vars, want)
	}
	if in.Child(xmpptest.NSSM, "sm") == nil {
		t.Fatal("no inline resumption")
	}
	fast := in.Child(xmpptest.NSFAST, "fast")
	if fast == nil || !slices.Contains(texts(fast, xmpptest.NSFAST, "mechanism"), "HT-SHA-256-NONE") {
		t.Fatalf("fast: %v", fast)
	}
	// The legacy feature stays.
	if c.Features.Child("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms") == nil {
		t.Fatal("legacy SASL gone")
	}
	// Without resumption, none is offered inline.
	s2 := startSASL2(t, func(cfg *c2s.Config) { cfg.ResumeTimeout = 0 })
	c2 := sasl2Client(t, s2)
	if c2.SASL2Features().Child(xmpptest.NSSASL2, "inline").Child(xmpptest.NSSM, "sm") != nil {
		t.Fatal("resumption offered with resume_timeout 0")
	}
}

// TestSASL2SSDP checks the downgrade protection value against what a
// client computes from the features it saw (XEP-0474), and that the
// client's proof, which signs it, is accepted.
func TestSASL2SSDP(t *testing.T) {
	s := startSASL2(t, nil)
	for _, tc := range []struct{ mech, cb string }{
		{"SCRAM-SHA-256", ""},
		{"SCRAM-SHA-1", ""},
		{"SCRAM-SHA-512-PLUS", "tls-exporter"},
		{"SCRAM-SHA-256-PLUS", "tls-server-end-point"},
	} {
		t.Run(tc.mech, func(t *testing.T) {
			c := sasl2Client(t, s)
			mechs := texts(c.SASL2Features(), xmpptest.NSSASL2, "mechanism")
			var cbs []string
			if x := c.Features.Child("urn:xmpp:sasl-cb:0", "sasl-channel-binding"); x != nil {
				for _, ch := range x.Children() {
					cbs = append(cbs, ch.Attr("type"))
				}
			}
			if len(cbs) == 0 {
				t.Fatal("no channel bindings advertised")
			}
			r := c.AuthSASL2(xmpptest.SASL2{Mech: tc.mech, CBType: tc.cb, User: "alice", Password: alicePW, Agent: phoneID})
			if r.Condition() != "" {
				t.Fatalf("failed: %s", r.Final)
			}
			var d string
			for _, a := range strings.Split(r.ServerFirst, ",") {
				if v, ok := strings.CutPrefix(a, "h="); ok {
					d = v
				}
			}
			if want := clientSSDP(tc.mech, mechs, cbs); d != want {
				t.Fatalf("server-first %q: h=%q, want %q", r.ServerFirst, d, want)
			}
			if got := r.Final.Child(xmpptest.NSSASL2, "authorization-identifier").Text(); got != alice {
				t.Fatalf("authorization-identifier %q", got)
			}
		})
	}
}

// clientSSDP is the value as a client computes it, written out here
// independently of the server's code.
func clientSSDP(mech string, mechs, cbs []string) string {
	m := slices.Clone(mechs)
	sort.Strings(m)
	c := slices.Clone(cbs)
	sort.Strings(c)
	s := strings.Join(m, "\x1e") + "\x1f" + strings.Join(c, "\x1e")
	var sum []byte
	switch {
	case strings.HasPrefix(mech, "SCRAM-SHA-256"):
		h := sha256.Sum256([]byte(s))
		sum = h[:]
	case strings.HasPrefix(mech, "SCRAM-SHA-512"):
		h := sha512Sum(s)
		sum = h
	default:
		sum = sha1Sum(s)
	}
	return base64.StdEncoding.EncodeToString(sum)
}

func TestSASL2Bind2(t *testing.T) {
	s := startSASL2(t, nil)
	bind := "<bind xmlns='urn:xmpp:bind:0'><tag>AwesomeXMPP</tag><enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='urn:xmpp:sm:3' resume='true'/><inactive xmlns='urn:xmpp:csi:0'/></bind>"
	c := sasl2Client(t, s)
	r := c.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256", User: "alice", Password: alicePW, Agent: phoneID, Inline: bind})
	if r.Condition() != "" {
		t.Fatalf("failed: %s", r.Final)
	}
	full := r.Final.Child(xmpptest.NSSASL2, "authorization-identifier").Text()
	if !strings.HasPrefix(full, alice+"/AwesomeXMPP/") || strings.Contains(full, phoneID) {
		t.Fatalf("bound %q", full)
	}
	b := r.Final.Child(xmpptest.NSBind2, "bound")
	en := b.Child(xmpptest.NSSM, "enabled")
	if en == nil || en.Attr("id") == "" || en.Attr("resume") != "true" {
		t.Fatalf("bound: %s", b)
	}
	// The session works, counted by Stream Management.
	ping(c, "p1")
	if h := c.RequestAck(); h != 1 {
		t.Fatalf("server handled %d, want 1", h)
	}
	// Carbons are on: a message bob sends to alice's other resource is
	// copied here; CSI holds nothing that is a message.
	c.Send("<presence/>")
	ping(c, "p2")
	other := s.Login(t, "alice", alicePW, "desktop")
	other.Send("<presence/>")
	bob := s.Login(t, "bob", "builder", "b")
	bob.Send("<message to='" + other.JID + "' type='chat' id='m1'><body>hi</body></message>")
	c.Expect("carbon", func(e *xmlstream.Element) bool { return e.Child("urn:xmpp:carbons:2", "received") != nil })

	// The same user-agent and tag get the same resource again, which
	// replaces the old session.
	c2 := sasl2Client(t, s)
	r2 := c2.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256", User: "alice", Password: alicePW, Agent: phoneID, Inline: "<bind xmlns='urn:xmpp:bind:0'><tag>AwesomeXMPP</tag></bind>"})
	if got := r2.Final.Child(xmpptest.NSSASL2, "authorization-identifier").Text(); got != full {
		t.Fatalf("second bind %q, want %q", got, full)
	}
	if cond := c.StreamError(); cond != "conflict" {
		t.Fatalf("old session got %q, want conflict", cond)
	}
	// Another user-agent gets another resource.
	c3 := sasl2Client(t, s)
	r3 := c3.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256", User: "alice", Password: alicePW, Agent: laptopID, Inline: "<bind xmlns='urn:xmpp:bind:0'><tag>AwesomeXMPP</tag></bind>"})
	if got := r3.Final.Child(xmpptest.NSSASL2, "authorization-identifier").Text(); got == full {
		t.Fatal("two user-agents share a resource")
	}
}

func TestSASL2WithoutBind(t *testing.T) {
	s := startSASL2(t, nil)
	c := sasl2Client(t, s)
	r := c.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256-PLUS", User: "alice", Password: alicePW})
	if r.Condition() != "" || r.Final.Child(xmpptest.NSSASL2, "authorization-identifier").Text() != alice {
		t.Fatalf("got %s", r.Final)
	}
	// No stream restart: legacy binding follows at once.
	if jid := c.Bind("laptop"); jid != alice+"/laptop" {
		t.Fatalf("bound %q", jid)
	}
	ping(c, "p")
}

func TestSASL2ResumeInline(t *testing.T) {
	s := startSASL2(t, nil)
	bind := "<bind xmlns='urn:xmpp:bind:0'><tag>T</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>"
	c := sasl2Client(t, s)
	r := c.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256", User: "alice", Password: alicePW, Agent: phoneID, Inline: bind})
	full := c.JID
	id := r.Final.Child(xmpptest.NSBind2, "bound").Child(xmpptest.NSSM, "enabled").Attr("id")
	c.Send("<presence/>")
	bob := s.Login(t, "bob", "builder", "b")
	c.Kill()
	xmpptest.CheckFor(t, 5*time.Second, func() error { return nil })
	send(bob, full, "m1", "m2")
	ping(bob, "sync")

	c2 := sasl2Client(t, s)
	r2 := c2.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256", User: "alice", Password: alicePW, Agent: phoneID,
		Inline: "<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='0'/>" + bind})
	res := r2.Final.Child(xmpptest.NSSM, "resumed")
	if res == nil || res.Attr("previd") != id || r2.Final.Child(xmpptest.NSBind2, "bound") != nil {
		t.Fatalf("success %s", r2.Final)
	}
	if got := r2.Final.Child(xmpptest.NSSASL2, "authorization-identifier").Text(); got != full {
		t.Fatalf("resumed as %q, want %q", got, full)
	}
	for _, want := range []string{"m1", "m2"} {
		c2.Expect(want, func(e *xmlstream.Element) bool { return e.Local == "message" && e.Attr("id") == want })
	}
	ping(c2, "after")

	// An unknown session: <failed/>, then the bind goes ahead.
	c3 := sasl2Client(t, s)
	r3 := c3.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256", User: "alice", Password: alicePW, Agent: laptopID,
		Inline: "<resume xmlns='urn:xmpp:sm:3' previd='nope' h='3'/>" + bind})
	f := r3.Final.Child(xmpptest.NSSM, "failed")
	if r3.Condition() != "" || f == nil || failedCondition(f) != "item-not-found" || r3.Final.Child(xmpptest.NSBind2, "bound") == nil {
		t.Fatalf("success %s", r3.Final)
	}
	ping(c3, "bound")
}

func TestSASL2Failures(t *testing.T) {
	s := startSASL2(t, func(cfg *c2s.Config) { cfg.MaxAuthFailures = 2 })
	t.Run("unknown mechanism", func(t *testing.T) {
		c := sasl2Client(t, s)
		c.Send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='X-NOPE'><initial-response>AA==</initial-response></authenticate>")
		if el := c.Element(); el.Local != "failure" || el.Child("urn:ietf:params:xml:ns:xmpp-sasl", "invalid-mechanism") == nil {
			t.Fatalf("got %s", el)
		}
		// Not a credential failure: the client may go on.
		if r := c.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256", User: "alice", Password: alicePW}); r.Condition() != "" {
			t.Fatalf("then: %s", r.Final)
		}
	})
	t.Run("wrong password counts", func(t *testing.T) {
		c := sasl2Client(t, s)
		if r := c.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256", User: "alice", Password: "nope"}); r.Condition() != "not-authorized" {
			t.Fatalf("got %s", r.Final)
		}
		if r := c.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256", User: "nobody", Password: "nope"}); r.Condition() != "not-authorized" {
			t.Fatalf("got %s", r.Final)
		}
		if cond := c.StreamError(); cond != "policy-violation" {
			t.Fatalf("after max failures: %q", cond)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		for name, tc := range map[string]struct{ send, want string }{
			"bad base64":         {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'><initial-response>!!!</initial-response></authenticate>", "incorrect-encoding"},
			"no mechanism":       {"<authenticate xmlns='urn:xmpp:sasl:2'><initial-response>AA==</initial-response></authenticate>", "invalid-mechanism"},
			"response first":     {"<response xmlns='urn:xmpp:sasl:2'>AA==</response>", "malformed-request"},
			"bad scram":          {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'><initial-response>" + base64.StdEncoding.EncodeToString([]byte("q,,n=alice")) + "</initial-response></authenticate>", "malformed-request"},
			"long agent":         {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'><user-agent id='" + strings.Repeat("x", 300) + "'/></authenticate>", "malformed-request"},
			"abort":              {"<abort xmlns='urn:xmpp:sasl:2'/>", "aborted"},
			"ht without fast":    {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>AA==</initial-response><user-agent id='a'/></authenticate>", "malformed-request"},
			"ht without ir":      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><fast xmlns='urn:xmpp:fast:0' count='1'/></authenticate>", "malformed-request"},
			"ht bad count":       {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>AA==</initial-response><fast xmlns='urn:xmpp:fast:0' count='-1'/></authenticate>", "malformed-request"},
			"ht short hmac":      {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>" + base64.StdEncoding.EncodeToString([]byte("alice\x00abc")) + "</initial-response><fast xmlns='urn:xmpp:fast:0' count='1'/></authenticate>", "malformed-request"},
			"ht unknown flavour": {"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-UNIQ'><initial-response>AA==</initial-response></authenticate>", "invalid-mechanism"},
		} {
			t.Run(name, func(t *testing.T) {
				c := sasl2Client(t, s)
				c.Send(tc.send)
				el := c.Element()
				if el.Space != xmpptest.NSSASL2 || el.Local != "failure" || el.Child("urn:ietf:params:xml:ns:xmpp-sasl", tc.want) == nil {
					t.Fatalf("got %s, want failure %s", el, tc.want)
				}
				ping2 := c.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256", User: "alice", Password: alicePW})
				if ping2.Condition() != "" {
					t.Fatalf("stream unusable after: %s", ping2.Final)
				}
			})
		}
	})
	t.Run("authenticate after success", func(t *testing.T) {
		c := sasl2Client(t, s)
		c.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256", User: "alice", Password: alicePW})
		c.Send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'><initial-response>AA==</initial-response></authenticate>")
		if cond := c.StreamError(); cond != "policy-violation" {
			t.Fatalf("got %q", cond)
		}
		b := s.Login(t, "bob", "builder", "x")
		b.Send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'/>")
		if cond := b.StreamError(); cond != "policy-violation" {
			t.Fatalf("bound session: got %q", cond)
		}
	})
	t.Run("bind2 without SASL2", func(t *testing.T) {
		c := s.Authenticate(t, "alice", alicePW) // legacy SASL
		c.Send("<bind xmlns='urn:xmpp:bind:0'><tag>x</tag></bind>")
		if cond := c.StreamError(); cond != "not-authorized" {
			t.Fatalf("got %q", cond)
		}
		c2 := sasl2Client(t, s)
		c2.Send("<bind xmlns='urn:xmpp:bind:0'><tag>x</tag></bind>")
		if cond := c2.StreamError(); cond != "not-authorized" {
			t.Fatalf("before auth: got %q", cond)
		}
	})
}
