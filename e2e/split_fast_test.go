package e2e

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

// TestSplitFAST: in a split server, FAST (XEP-0484) works across
// gateways: a token requested with SCRAM through gateway A logs in
// through gateway B, where the session works; a count already used
// through B is refused through A, since the service's store keeps the
// count for all gateways; a higher one passes.
func TestSplitFAST(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	dir := t.TempDir()
	ambrosia(t, "pw\n", "user", "add", "alice@"+domain, "--data", dir, "--create")
	a, b := startGateway(t, "gateway A"), startGateway(t, "gateway B")
	startSM(t, "service sm", dir, []*splitGateway{a, b})
	a.waitLog(t, `"msg":"bound"`, 1)
	b.waitLog(t, `"msg":"bound"`, 1)
	pem, err := os.ReadFile(filepath.Join(dir, "tls", domain+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	open := func(g *splitGateway) *xmpptest.Client {
		t.Helper()
		c := xmpptest.Dial(t, "127.0.0.1:"+strconv.Itoa(g.port), domain)
		c.Open()
		c.StartTLS(roots)
		return c
	}
	const agent = "d4565fa7-4d72-4749-b3d3-740edbf87770"
	const mech = "HT-SHA-256-NONE"

	c := open(a)
	f := c.SASL2Features()
	if f == nil || !offers(f, mech) {
		t.Fatalf("gateway A offers no FAST %s: %s", mech, c.Features)
	}
	r := c.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256", User: "alice", Password: "pw", Agent: agent,
		Inline: "<request-token xmlns='" + xmpptest.NSFAST + "' mechanism='" + mech + "'/>"})
	tok := r.Final.Child(xmpptest.NSFAST, "token")
	if r.Condition() != "" || tok == nil || tok.Attr("token") == "" {
		t.Fatalf("no token through gateway A: %s", r.Final)
	}
	token := tok.Attr("token")
	c.Close()

	c = open(b)
	el := c.AuthFAST(mech, "alice", token, agent, 1, "", "<bind xmlns='"+xmpptest.NSBind2+"'><tag>e2e</tag></bind>", nil)
	if el.Local != "success" {
		t.Fatalf("token login through gateway B: %s", el)
	}
	c.Send("<iq xmlns='jabber:client' type='get' id='ping1' to='" + domain + "'><ping xmlns='urn:xmpp:ping'/></iq>")
	c.Expect("the ping's result", func(el *xmlstream.Element) bool {
		return el.Local == "iq" && el.Attr("id") == "ping1" && el.Attr("type") == "result"
	})
	c.Close()

	tests := []struct {
		name  string
		via   *splitGateway
		count uint64
		want  string
	}{
		{"count used through B, replayed through A", a, 1, "failure"},
		{"lower count", b, 0, "failure"},
		{"wrong agent", a, 5, "failure"},
		{"higher count", a, 2, "success"},
		{"count used through A, replayed through B", b, 2, "failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ag := agent
			if tt.name == "wrong agent" {
				ag = "another-agent"
			}
			c := open(tt.via)
			el := c.AuthFAST(mech, "alice", token, ag, tt.count, "", "", nil)
			if el.Local != tt.want {
				t.Fatalf("got %s, want %s", el, tt.want)
			}
			if tt.want == "failure" && el.Child("urn:ietf:params:xml:ns:xmpp-sasl", "not-authorized") == nil {
				t.Fatalf("failure without not-authorized: %s", el)
			}
			c.Close()
		})
	}
}

// offers reports whether a SASL2 <authentication/> feature offers FAST
// with mech.
func offers(f *xmlstream.Element, mech string) bool {
	inl := f.Child(xmpptest.NSSASL2, "inline")
	if inl == nil {
		return false
	}
	fast := inl.Child(xmpptest.NSFAST, "fast")
	if fast == nil {
		return false
	}
	for _, m := range fast.Children() {
		if m.Text() == mech {
			return true
		}
	}
	return false
}
