package c2s_test

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/c2s"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmpptest"
)

const requestToken = "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>"

// fastToken logs in with the password and asks for a token.
func fastToken(t *testing.T, s *xmpptest.Server, agent, mech string) string {
	t.Helper()
	c := sasl2Client(t, s)
	r := c.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256", User: "alice", Password: alicePW, Agent: agent,
		Inline: "<request-token xmlns='urn:xmpp:fast:0' mechanism='" + mech + "'/>"})
	tok := r.Final.Child(xmpptest.NSFAST, "token")
	if r.Condition() != "" || tok == nil {
		t.Fatalf("no token: %s", r.Final)
	}
	exp, err := time.Parse(time.RFC3339, tok.Attr("expiry"))
	if err != nil || exp.Before(time.Now().Add(24*time.Hour)) {
		t.Fatalf("expiry %q: %v", tok.Attr("expiry"), err)
	}
	c.Close()
	return tok.Attr("token")
}

func fastLogin(t *testing.T, s *xmpptest.Server, token, agent string, count uint64, inline string) (*xmpptest.Client, *xmlstream.Element) {
	t.Helper()
	c := sasl2Client(t, s)
	return c, c.AuthFAST("HT-SHA-256-NONE", "alice", token, agent, count, "", inline, nil)
}

func failedWith(t *testing.T, el *xmlstream.Element, cond string) {
	t.Helper()
	if el.Local != "failure" || el.Child("urn:ietf:params:xml:ns:xmpp-sasl", cond) == nil {
		t.Fatalf("got %s, want failure %s", el, cond)
	}
}

func TestFASTLogin(t *testing.T) {
	s := startSASL2(t, nil)
	token := fastToken(t, s, phoneID, "HT-SHA-256-NONE")
	if len(token) <= 64 {
		t.Fatalf("token of %d bytes: HMAC would not key with its hash", len(token))
	}
	// Only the hash is stored.
	ts, err := s.Store.FastTokens(t.Context(), alice, phoneID)
	if err != nil || len(ts) != 1 {
		t.Fatalf("stored %v %v", ts, err)
	}
	if sum := sha256.Sum256([]byte(token)); !bytes.Equal(ts[0].Hash, sum[:]) || bytes.Contains(ts[0].Hash, []byte(token)) {
		t.Fatal("stored token is not its hash")
	}

	c, el := fastLogin(t, s, token, phoneID, 1, "<bind xmlns='urn:xmpp:bind:0'><tag>Phone</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>")
	if el.Local != "success" || el.Child(xmpptest.NSBind2, "bound").Child(xmpptest.NSSM, "enabled") == nil {
		t.Fatalf("got %s", el)
	}
	ping(c, "p")

	// Replayed or lower counts are refused; a higher one passes.
	for _, n := range []uint64{1, 0} {
		_, el := fastLogin(t, s, token, phoneID, n, "")
		failedWith(t, el, "not-authorized")
	}
	if _, el := fastLogin(t, s, token, phoneID, 7, ""); el.Local != "success" {
		t.Fatalf("count 7: %s", el)
	}
	// Another user-agent, a wrong token, another user.
	_, el = fastLogin(t, s, token, laptopID, 8, "")
	failedWith(t, el, "not-authorized")
	_, el = fastLogin(t, s, token+"x", phoneID, 9, "")
	failedWith(t, el, "not-authorized")
	c2 := sasl2Client(t, s)
	failedWith(t, c2.AuthFAST("HT-SHA-256-NONE", "bob", token, phoneID, 10, "", "", nil), "not-authorized")
	// The token works only with its mechanism.
	c3 := sasl2Client(t, s)
	failedWith(t, c3.AuthFAST("HT-SHA-256-EXPR", "alice", token, phoneID, 11, "", "", nil), "not-authorized")
}

func TestFASTChannelBound(t *testing.T) {
	s := startSASL2(t, nil)
	for _, mech := range []string{"HT-SHA-256-EXPR", "HT-SHA-256-ENDP"} {
		t.Run(mech, func(t *testing.T) {
			token := fastToken(t, s, phoneID, mech)
			c := sasl2Client(t, s)
			var cb scram.ChannelBinding
			var err error
			if mech == "HT-SHA-256-EXPR" {
				cb, err = scram.NewTLSExporterBinding(c.TLSState())
			} else {
				cb, err = scram.NewTLSServerEndpointBinding(c.TLSState())
			}
			if err != nil {
				t.Fatal(err)
			}
			if el := c.AuthFAST(mech, "alice", token, phoneID, 1, "", "", cb.Data); el.Local != "success" {
				t.Fatalf("got %s", el)
			}
			// Other binding data fails: tls-exporter differs for each
			// connection, the end point's hash for each certificate.
			c2 := sasl2Client(t, s)
			other := bytes.Clone(cb.Data)
			if mech == "HT-SHA-256-ENDP" {
				other[0] ^= 1
			}
			failedWith(t, c2.AuthFAST(mech, "alice", token, phoneID, 2, "", "", other), "not-authorized")
		})
	}
}

func TestFASTRotation(t *testing.T) {
	s := startSASL2(t, nil)
	old := fastToken(t, s, phoneID, "HT-SHA-256-NONE")
	_, el := fastLogin(t, s, old, phoneID, 1, requestToken)
	tok := el.Child(xmpptest.NSFAST, "token")
	if el.Local != "success" || tok == nil || tok.Attr("token") == old {
		t.Fatalf("got %s", el)
	}
	fresh := tok.Attr("token")
	// The client may have missed the new token: the old one still works.
	if _, el := fastLogin(t, s, old, phoneID, 2, ""); el.Local != "success" {
		t.Fatalf("old token before the new one is used: %s", el)
	}
	if _, el := fastLogin(t, s, fresh, phoneID, 1, ""); el.Local != "success" {
		t.Fatalf("new token: %s", el)
	}
	_, el = fastLogin(t, s, old, phoneID, 3, "")
	failedWith(t, el, "not-authorized")

	// A token close to its expiry is replaced unasked.
	ageing := "an ageing token of more than sixty-four bytes, so that HMAC keys with its hash"
	if err := s.Store.AddFastToken(t.Context(), storage.FastToken{User: alice, Agent: laptopID, Mechanism: "HT-SHA-256-NONE", Hash: auth.HTKey(ageing), Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_, el = fastLogin(t, s, ageing, laptopID, 1, "")
	if el.Local != "success" || el.Child(xmpptest.NSFAST, "token") == nil {
		t.Fatalf("ageing token: %s", el)
	}
}

func TestFASTExpiredInvalidatedRemoved(t *testing.T) {
	s := startSASL2(t, func(cfg *c2s.Config) { cfg.MaxAuthFailures = 10 })
	expired := "an expired token of more than sixty-four bytes, so that HMAC keys with its hash"
	if err := s.Store.AddFastToken(t.Context(), storage.FastToken{User: alice, Agent: laptopID, Mechanism: "HT-SHA-256-NONE", Hash: auth.HTKey(expired), Expiry: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	_, el := fastLogin(t, s, expired, laptopID, 1, "")
	failedWith(t, el, "not-authorized")

	// invalidate logs in once more and ends the token, with no new one.
	token := fastToken(t, s, phoneID, "HT-SHA-256-NONE")
	c := sasl2Client(t, s)
	el = c.AuthFAST("HT-SHA-256-NONE", "alice", token, phoneID, 1, " invalidate='true'", requestToken, nil)
	if el.Local != "success" || el.Child(xmpptest.NSFAST, "token") != nil {
		t.Fatalf("invalidate: %s", el)
	}
	_, el = fastLogin(t, s, token, phoneID, 2, "")
	failedWith(t, el, "not-authorized")

	// A password change ends every token.
	token = fastToken(t, s, phoneID, "HT-SHA-256-NONE")
	creds, err := auth.DeriveCredentials("new password", auth.DefaultIterations)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.SetCredentials(t.Context(), alice, creds); err != nil {
		t.Fatal(err)
	}
	_, el = fastLogin(t, s, token, phoneID, 3, "")
	failedWith(t, el, "not-authorized")
}

func TestFASTFailuresCount(t *testing.T) {
	s := startSASL2(t, func(cfg *c2s.Config) { cfg.MaxAuthFailures = 2 })
	token := fastToken(t, s, phoneID, "HT-SHA-256-NONE")
	c := sasl2Client(t, s)
	failedWith(t, c.AuthFAST("HT-SHA-256-NONE", "alice", token+"x", phoneID, 1, "", "", nil), "not-authorized")
	failedWith(t, c.AuthFAST("HT-SHA-256-NONE", "alice", token, laptopID, 2, "", "", nil), "not-authorized")
	if cond := c.StreamError(); cond != "policy-violation" {
		t.Fatalf("after max failures: %q", cond)
	}
	// Without a user-agent id a token request is ignored.
	c2 := sasl2Client(t, s)
	r := c2.AuthSASL2(xmpptest.SASL2{Mech: "SCRAM-SHA-256", User: "alice", Password: alicePW, Inline: requestToken})
	if r.Condition() != "" || r.Final.Child(xmpptest.NSFAST, "token") != nil {
		t.Fatalf("got %s", r.Final)
	}
}
