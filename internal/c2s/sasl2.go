package c2s

import (
	"context"
	"encoding/base64"
	"strings"
	"unicode/utf8"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces of Extensible SASL Profile (XEP-0388), Bind 2 (XEP-0386),
// FAST (XEP-0484) and Message Carbons (XEP-0280).
const (
	nsSASL2   = "urn:xmpp:sasl:2"
	nsBind2   = "urn:xmpp:bind:0"
	nsFAST    = "urn:xmpp:fast:0"
	nsCarbons = "urn:xmpp:carbons:2"
)

// maxAgentID bounds a user-agent id: clients send a UUID.
const maxAgentID = 256

// sasl2Exchange is a SASL2 authentication in progress.
type sasl2Exchange struct {
	x     *auth.Exchange
	req   *xmlstream.Element // the <authenticate/>, for its inline requests
	agent string             // the user-agent id, "" if none
}

// appendSASL2Features appends the SASL2 stream feature with mechs, the
// SASL mechanisms the connection offers, and what may be negotiated
// inline: Bind 2 and what it can enable, resumption, FAST.
func (c *conn) appendSASL2Features(f []byte, mechs []string, ti *auth.TLSInfo) []byte {
	f = append(f, "<authentication xmlns='"+nsSASL2+"'>"...)
	f = appendMechanisms(f, mechs)
	f = append(f, "<inline><bind xmlns='"+nsBind2+"'><inline>"...)
	f = append(f, "<feature var='"+nsCarbons+"'/><feature var='"+nsCSI+"'/><feature var='"+nsSM+"'/>"...)
	f = append(f, "</inline></bind>"...)
	if c.srv.cfg.ResumeTimeout > 0 {
		f = append(f, "<sm xmlns='"+nsSM+"'/>"...)
	}
	if c.srv.deps.Tokens != nil {
		f = append(f, "<fast xmlns='"+nsFAST+"'>"...)
		f = appendMechanisms(f, auth.HTMechanisms(ti))
		f = append(f, "</fast>"...)
	}
	return append(f, "</inline></authentication>"...)
}

// handleSASL2 handles a SASL2 element before authentication.
func (c *conn) handleSASL2(ctx context.Context, el *xmlstream.Element) bool {
	switch el.Local {
	case "authenticate":
		return c.sasl2Authenticate(ctx, el)
	case "response":
		if c.s2 == nil {
			return c.authFailure(&auth.Failure{Condition: "malformed-request", Text: "no authentication in progress"}, true)
		}
		in, ok := decodeSASL2(el.Text())
		if !ok {
			c.s2 = nil
			return c.authFailure(&auth.Failure{Condition: "incorrect-encoding"}, true)
		}
		return c.sasl2Step(ctx, in)
	case "abort":
		c.s2 = nil
		return c.write([]byte("<failure xmlns='"+nsSASL2+"'><aborted xmlns='"+stanza.NSSASL+"'/></failure>")) == nil
	}
	c.fail("unsupported-stanza-type", "")
	return false
}

// decodeSASL2 decodes SASL data; in SASL2 empty data is an empty
// element, and "=" is accepted as in RFC 6120.
func decodeSASL2(text string) ([]byte, bool) {
	text = strings.TrimSpace(text)
	if text == "" || text == "=" {
		return []byte{}, true
	}
	b, err := base64.StdEncoding.DecodeString(text)
	return b, err == nil
}

func (c *conn) sasl2Authenticate(ctx context.Context, el *xmlstream.Element) bool {
	c.s2 = nil
	mech := el.Attr("mechanism")
	c.mech = mech
	if mech == "" {
		return c.authFailure(&auth.Failure{Condition: "invalid-mechanism", Text: "no mechanism"}, true)
	}
	if !c.loginGate("", true, false) {
		return false
	}
	agent := ""
	if ua := el.Child(nsSASL2, "user-agent"); ua != nil {
		agent = ua.Attr("id")
		if len(agent) > maxAgentID || !utf8.ValidString(agent) {
			return c.authFailure(&auth.Failure{Condition: "malformed-request", Text: "user-agent id too long"}, true)
		}
	}
	var in []byte
	ir := el.Child(nsSASL2, "initial-response")
	if ir != nil {
		var ok bool
		if in, ok = decodeSASL2(ir.Text()); !ok {
			return c.authFailure(&auth.Failure{Condition: "incorrect-encoding"}, true)
		}
	}
	ti := c.tlsInfo()
	if strings.HasPrefix(mech, "HT-") {
		return c.fastAuthenticate(ctx, el, mech, agent, in, ir != nil)
	}
	x, err := c.srv.deps.Auth.StartSASL2(ctx, mech, c.domain, ti, c.srv.deps.Auth.Mechanisms(ti))
	if err != nil {
		return c.authFailure(err, true)
	}
	c.s2 = &sasl2Exchange{x: x, req: el, agent: agent}
	if ir == nil {
		return c.write([]byte("<challenge xmlns='"+nsSASL2+"'/>")) == nil
	}
	return c.sasl2Step(ctx, in)
}

func (c *conn) sasl2Step(ctx context.Context, in []byte) bool {
	s2 := c.s2
	out, done, err := s2.x.Step(in)
	if done {
		c.tried = s2.x.Attempted()
		if !c.loginGate(c.tried, true, true) {
			c.s2 = nil
			return false
		}
	}
	if err != nil {
		c.s2 = nil
		return c.authFailure(err, true)
	}
	if !done {
		return c.write([]byte("<challenge xmlns='"+nsSASL2+"'>"+base64.StdEncoding.EncodeToString(out)+"</challenge>")) == nil
	}
	c.s2 = nil
	return c.sasl2Success(ctx, s2.req, s2.agent, s2.x.User(), out, "", false)
}

// sasl2Success completes an authentication as user: it issues a FAST
// token if asked (or rotate says the one used, of mechanism used, is
// getting old), then resumes a session or binds one if the
// <authenticate/> req asks, and answers with <success/> carrying the
// results of all that.
func (c *conn) sasl2Success(ctx context.Context, req *xmlstream.Element, agent string, user jid.JID, additional []byte, used string, rotate bool) bool {
	c.user = user
	c.authenticated()
	c.srv.log.Info("login", "user", user.String(), "remote", c.remote(), "mechanism", c.mech, "sasl2", true)
	c.srv.deps.metrics().ClientAuth(c.mech, true)
	inner := c.fastIssue(ctx, req, agent, used, rotate)
	if r := req.Child(nsSM, "resume"); r != nil {
		failed, resumed, err := c.resume(r.Attr("previd"), r.Attr("h"), func(res string) []byte {
			return successXML(additional, c.full.String(), inner+res)
		})
		if resumed {
			return err == nil
		}
		inner += failed
	}
	if b := req.Child(nsBind2, "bind"); b != nil {
		return c.bind2(ctx, b, agent, func(bound string) []byte {
			return successXML(additional, c.full.String(), inner+bound)
		})
	}
	c.state = stateBind
	return c.write(successXML(additional, user.String(), inner)) == nil
}

// successXML is the SASL2 <success/>: additional data, the identity the
// client now has (its full JID once bound), then the inline results.
func successXML(additional []byte, authz, inner string) []byte {
	b := []byte("<success xmlns='" + nsSASL2 + "'>")
	if len(additional) > 0 {
		b = append(b, "<additional-data>"...)
		b = base64.StdEncoding.AppendEncode(b, additional)
		b = append(b, "</additional-data>"...)
	}
	b = append(b, "<authorization-identifier>"...)
	b = xmlstream.AppendEscapedText(b, authz)
	b = append(b, "</authorization-identifier>"...)
	b = append(b, inner...)
	return append(b, "</success>"...)
}

// failureXML is the <failure/> of either SASL profile, with text when it
// is not "" (RFC 6120 §6.4.5, XEP-0388).
func failureXML(cond, text string, sasl2 bool) string {
	var s string
	if sasl2 {
		s = "<failure xmlns='" + nsSASL2 + "'><" + cond + " xmlns='" + stanza.NSSASL + "'/>"
	} else {
		s = "<failure xmlns='" + stanza.NSSASL + "'><" + cond + "/>"
	}
	if text != "" {
		s += "<text xml:lang='en'>" + string(xmlstream.AppendEscapedText(nil, text)) + "</text>"
	}
	return s + "</failure>"
}
