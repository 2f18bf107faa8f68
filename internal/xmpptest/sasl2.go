package xmpptest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/xdg-go/scram"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces of SASL2 (XEP-0388), Bind 2 (XEP-0386) and FAST (XEP-0484).
const (
	NSSASL2 = "urn:xmpp:sasl:2"
	NSBind2 = "urn:xmpp:bind:0"
	NSFAST  = "urn:xmpp:fast:0"
)

// SASL2 describes a SASL2 <authenticate/> request.
type SASL2 struct {
	// Mech is a SCRAM mechanism; CBType picks the binding of a -PLUS one.
	Mech, CBType string
	User         string
	Password     string
	// Agent is the user-agent id, "" for no <user-agent/>.
	Agent string
	// Inline is raw XML added to <authenticate/>: <bind/>, <resume/>,
	// <request-token/>.
	Inline string
}

// SASL2Result is how a SASL2 authentication ended.
type SASL2Result struct {
	// Final is the <success/> or <failure/>.
	Final *xmlstream.Element
	// ServerFirst is SCRAM's server-first-message.
	ServerFirst string
}

// Condition is the failure condition, "" on success.
func (r SASL2Result) Condition() string {
	if r.Final.Local == "success" {
		return ""
	}
	for _, ch := range r.Final.Children() {
		if ch.Local != "text" {
			return ch.Local
		}
	}
	return "failure"
}

// SASL2Features returns the <authentication/> feature, nil if absent.
func (c *Client) SASL2Features() *xmlstream.Element {
	return c.Features.Child(NSSASL2, "authentication")
}

func userAgent(id string) string {
	if id == "" {
		return ""
	}
	return "<user-agent id='" + id + "'><software>Ambrosia tests</software><device>test</device></user-agent>"
}

// AuthSASL2 authenticates with SCRAM over SASL2 and checks the server's
// signature on success. On success the stream goes on without a restart.
func (c *Client) AuthSASL2(a SASL2) SASL2Result {
	c.t.Helper()
	h := scram.SHA1
	switch {
	case strings.HasPrefix(a.Mech, "SCRAM-SHA-256"):
		h = scram.SHA256
	case strings.HasPrefix(a.Mech, "SCRAM-SHA-512"):
		h = scram.SHA512
	}
	cl, err := h.NewClient(a.User, a.Password, "")
	if err != nil {
		c.t.Fatal(err)
	}
	conv := cl.NewConversation()
	if strings.HasSuffix(a.Mech, "-PLUS") {
		var cb scram.ChannelBinding
		if a.CBType == "tls-server-end-point" {
			cb, err = scram.NewTLSServerEndpointBinding(c.TLSState())
		} else {
			cb, err = scram.NewTLSExporterBinding(c.TLSState())
		}
		if err != nil {
			c.t.Fatal(err)
		}
		conv = cl.NewConversationWithChannelBinding(cb)
	}
	first, err := conv.Step("")
	if err != nil {
		c.t.Fatal(err)
	}
	c.Send("<authenticate xmlns='" + NSSASL2 + "' mechanism='" + a.Mech + "'><initial-response>" +
		base64.StdEncoding.EncodeToString([]byte(first)) + "</initial-response>" + userAgent(a.Agent) + a.Inline + "</authenticate>")
	var res SASL2Result
	for {
		el := c.Element()
		if el.Space != NSSASL2 {
			c.t.Fatalf("sasl2: unexpected %s", el)
		}
		switch el.Local {
		case "challenge":
			in, err := base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text()))
			if err != nil {
				c.t.Fatal(err)
			}
			if res.ServerFirst == "" {
				res.ServerFirst = string(in)
			}
			out, err := conv.Step(string(in))
			if err != nil {
				c.t.Fatalf("scram client: %v", err)
			}
			c.Send("<response xmlns='" + NSSASL2 + "'>" + base64.StdEncoding.EncodeToString([]byte(out)) + "</response>")
		case "success":
			ad := el.Child(NSSASL2, "additional-data")
			if ad == nil {
				c.t.Fatalf("sasl2 success without additional data: %s", el)
			}
			in, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(ad.Text()))
			if _, err := conv.Step(string(in)); err != nil || !conv.Valid() {
				c.t.Fatalf("server signature not valid: %v", err)
			}
			c.noteSuccess(el)
			res.Final = el
			return res
		case "failure":
			res.Final = el
			return res
		default:
			c.t.Fatalf("sasl2: unexpected %s", el)
		}
	}
}

// noteSuccess takes the bound JID and the Stream Management state from a
// SASL2 <success/>.
func (c *Client) noteSuccess(el *xmlstream.Element) {
	if id := el.Child(NSSASL2, "authorization-identifier"); id != nil && strings.Contains(id.Text(), "/") {
		c.JID = id.Text()
	}
	if b := el.Child(NSBind2, "bound"); b != nil && b.Child(NSSM, "enabled") != nil {
		c.smOn, c.Handled = true, 0
	}
	if el.Child(NSSM, "resumed") != nil {
		c.smOn = true
	}
}

// HTInitial is an HT initial response: user NUL HMAC(token, "Initiator" ||
// cb).
func HTInitial(user, token string, cb []byte) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("Initiator"))
	m.Write(cb)
	return append([]byte(user+"\x00"), m.Sum(nil)...)
}

// HTResponder is the server's HT proof the client expects.
func HTResponder(token string, cb []byte) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("Responder"))
	m.Write(cb)
	return m.Sum(nil)
}

// AuthFAST logs in with a FAST token over HT mechanism mech (cb is its
// channel binding data, nil for -NONE) and count; inline is added to
// <authenticate/> (and may hold attributes for <fast/> through fastAttrs).
// It returns the <success/> or <failure/>, having checked the server's
// proof on success.
func (c *Client) AuthFAST(mech, user, token, agent string, count uint64, fastAttrs, inline string, cb []byte) *xmlstream.Element {
	c.t.Helper()
	c.Send("<authenticate xmlns='" + NSSASL2 + "' mechanism='" + mech + "'><initial-response>" +
		base64.StdEncoding.EncodeToString(HTInitial(user, token, cb)) + "</initial-response>" + userAgent(agent) +
		"<fast xmlns='" + NSFAST + "' count='" + strconv.FormatUint(count, 10) + "'" + fastAttrs + "/>" + inline + "</authenticate>")
	el := c.Element()
	if el.Space != NSSASL2 || (el.Local != "success" && el.Local != "failure") {
		c.t.Fatalf("fast: unexpected %s", el)
	}
	if el.Local == "success" {
		var got []byte
		if ad := el.Child(NSSASL2, "additional-data"); ad != nil {
			got, _ = base64.StdEncoding.DecodeString(strings.TrimSpace(ad.Text()))
		}
		if !hmac.Equal(got, HTResponder(token, cb)) {
			c.t.Fatalf("fast: server proof wrong: %s", el)
		}
		c.noteSuccess(el)
	}
	return el
}
