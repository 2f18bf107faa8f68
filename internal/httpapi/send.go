package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// NSJSON is the namespace of XEP-0335 JSON containers.
const NSJSON = "urn:xmpp:json:0"

// sendRequest is the body of POST /api/v1/send, in either of its forms:
// From and Stanza, a stanza as XML; or From, To, Type, Body and JSON, the
// parts of a message.
type sendRequest struct {
	From   string          `json:"from"`
	Stanza string          `json:"stanza"`
	To     string          `json:"to"`
	Type   string          `json:"type"`
	Body   string          `json:"body"`
	JSON   json.RawMessage `json:"json"`
}

func (a *API) send(r *http.Request, c caller) (any, error) {
	var q sendRequest
	if err := decodeJSON(r.Body, &q); err != nil {
		return nil, err
	}
	from, err := parseJID("from", q.From)
	if err != nil {
		return nil, err
	}
	if !c.actsAs(from) {
		if from.Local() == "" {
			return nil, forbidden("only the admin sends as a domain")
		}
		return nil, forbidden("%s is not a user of appservice %s", from.BareString(), c.service())
	}
	el, err := q.element(from)
	if err != nil {
		return nil, err
	}
	return nil, a.backend.Send(r.Context(), from, el)
}

// element is the stanza q asks to send as from.
func (q *sendRequest) element(from jid.JID) (*xmlstream.Element, error) {
	if string(q.JSON) == "null" {
		q.JSON = nil
	}
	if q.Stanza == "" {
		return q.message()
	}
	if q.To != "" || q.Type != "" || q.Body != "" || q.JSON != nil {
		return nil, badRequest("stanza", "give either stanza, or to, type, body and json; not both")
	}
	return parseStanza(q.Stanza, from)
}

// maxStanza is the size of the largest stanza the API sends: what a
// client stream may send.
func maxStanza() int { return xmlstream.DefaultLimits().MaxStanzaBytes }

// parseStanza parses s, a message, presence or iq in the jabber:client
// namespace (the default), to be sent as from. Its addresses must be
// JIDs, and a from address the request's from.
func parseStanza(s string, from jid.JID) (*xmlstream.Element, error) {
	if len(s) > maxStanza() {
		return nil, badRequest("stanza", "larger than %d bytes", maxStanza())
	}
	el, err := xmlstream.ParseStanza([]byte(strings.TrimSpace(s)), xmlstream.NSClient)
	if err != nil {
		return nil, badRequest("stanza", "not a well-formed XML element: %v", err)
	}
	if el.Space != xmlstream.NSClient {
		return nil, badRequest("stanza", "namespace %q; want %s (the default)", el.Space, xmlstream.NSClient)
	}
	switch el.Local {
	case stanza.Message, stanza.Presence:
	case stanza.IQ:
		if err := oneOf("stanza", el.Attr("type"), "get", "set", "result", "error"); err != nil {
			return nil, badRequest("stanza", "iq type %q is not one of get, set, result, error", el.Attr("type"))
		}
		if el.Attr("id") == "" {
			return nil, badRequest("stanza", "an iq needs an id")
		}
	default:
		return nil, badRequest("stanza", "<%s/> is not a message, presence or iq", el.Local)
	}
	for _, attr := range []string{"to", "from"} {
		if !el.HasAttr(attr) {
			continue
		}
		j, err := jid.Parse(el.Attr(attr))
		if err != nil {
			return nil, badRequest("stanza", "%s=%q is not a JID: %v", attr, el.Attr(attr), err)
		}
		if attr == "from" && j != from {
			return nil, badRequest("stanza", "from=%q is not the request's from %q", el.Attr(attr), from)
		}
	}
	return el, nil
}

// message builds the message of the second form: to, type, body and an
// XEP-0335 container of json, with an id of the server's making.
func (q *sendRequest) message() (*xmlstream.Element, error) {
	to, err := parseJID("to", q.To)
	if err != nil {
		return nil, err
	}
	if q.Type != "" {
		if err := oneOf("type", q.Type, "chat", "normal", "groupchat", "headline"); err != nil {
			return nil, err
		}
	}
	if q.Body == "" && q.JSON == nil {
		return nil, badRequest("body", "required, unless json is given (or stanza, for other stanzas)")
	}
	if err := xmlText("body", q.Body); err != nil {
		return nil, err
	}
	el := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	el.SetAttr("to", to.String())
	if q.Type != "" {
		el.SetAttr("type", q.Type)
	}
	el.SetAttr("id", stanza.NewID())
	if q.Body != "" {
		el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body")).AddText(q.Body)
	}
	if q.JSON != nil {
		var b bytes.Buffer
		if err := json.Compact(&b, q.JSON); err != nil {
			return nil, badRequest("json", "not valid JSON: %v", err)
		}
		if err := xmlText("json", b.String()); err != nil {
			return nil, err
		}
		el.AddChild(xmlstream.NewElement(NSJSON, "json")).AddText(b.String())
	}
	if n := len(el.AppendXML(nil, xmlstream.NSClient)); n > maxStanza() {
		return nil, badRequest("body", "the message would be %d bytes; at most %d", n, maxStanza())
	}
	return el, nil
}

// xmlText checks that s, the value of field, holds only characters XML
// can carry, which the serializer would otherwise replace.
func xmlText(field, s string) error {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return badRequest(field, "invalid UTF-8 at byte %d", i)
			}
		}
		if !isXMLChar(r) {
			return badRequest(field, "%U at byte %d cannot be carried by XML", r, i)
		}
	}
	return nil
}

// isXMLChar reports whether r is allowed by the Char production of XML 1.0.
func isXMLChar(r rune) bool {
	switch {
	case r < 0x20:
		return r == '\t' || r == '\n' || r == '\r'
	case r <= 0xD7FF:
		return true
	case r < 0xE000:
		return false
	case r <= 0xFFFD:
		return true
	}
	return 0x10000 <= r && r <= 0x10FFFF
}
