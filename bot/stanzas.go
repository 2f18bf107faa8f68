package bot

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces the bot speaks.
const (
	nsSM     = "urn:xmpp:sm:3"
	nsSASL2  = "urn:xmpp:sasl:2"
	nsBind2  = "urn:xmpp:bind:0"
	nsFAST   = "urn:xmpp:fast:0"
	nsCB     = "urn:xmpp:sasl-cb:0"
	nsDelay  = "urn:xmpp:delay"
	nsJSON   = "urn:xmpp:json:0"
	nsClient = xmlstream.NSClient
)

// A Message is a message stanza, received or to send.
type Message struct {
	// ID is the stanza's id; a message sent without one gets one.
	ID string
	// From is the sender's full JID (set on received messages). To is the
	// recipient.
	From, To string
	// Type is chat, normal, headline, groupchat or error; a message
	// received without one is normal, a message sent without one chat.
	Type string
	// Body, Subject and Thread are the message's text, subject and thread
	// id, "" if absent.
	Body, Subject, Thread string
	// JSON is the content of a JSON container (XEP-0335), nil if absent.
	JSON json.RawMessage
	// Payloads are the other child elements, which the bot does not
	// interpret (chat states, receipts, anything else).
	Payloads []Payload
	// Error is the error of a message of type error.
	Error *Error
}

// A Presence is a presence stanza: availability, or a subscription
// change other than a request (those go to OnSubscription).
type Presence struct {
	// From is the full JID of the contact's resource; To is the bot.
	From, To string
	// Type is "" for available, or unavailable, subscribed, unsubscribe,
	// unsubscribed, probe or error.
	Type string
	// Show is away, chat, dnd, xa or "" (available).
	Show string
	// Status is the human-readable status text.
	Status string
	// Priority is the resource's priority.
	Priority int
	// Payloads are the other child elements (entity capabilities, vCard
	// hashes…).
	Payloads []Payload
	// Error is the error of a presence of type error.
	Error *Error
}

// An IQ is a request the bot received or the answer to one it sent.
type IQ struct {
	// ID matches a request and its answer; From and To are the full JIDs
	// of the sender and the recipient.
	ID, From, To string
	// Type is get or set for requests, result or error for answers.
	Type string
	// Payload is the request's child element, or the result's (empty for
	// a result without one).
	Payload Payload
	// Error is the error of an IQ of type error.
	Error *Error
}

// A Payload is one child element of a stanza, kept as XML.
type Payload struct {
	// Space and Local name the element (set on received payloads; on
	// payloads to send, the XML says it).
	Space, Local string
	// XML is the element, serialized with its namespace declared, such
	// as <active xmlns='http://jabber.org/protocol/chatstates'/>.
	XML string
}

// Error is an XMPP stanza error (RFC 6120 §8.3). A handler that returns
// one sends it as it is; SendIQ returns one when the answer is an error.
type Error struct {
	// Type is cancel, continue, modify, auth or wait; empty means the
	// type RFC 6120 gives Condition.
	Type string
	// Condition is the defined condition, such as bad-request or
	// item-not-found.
	Condition string
	// Text is an optional explanation for humans.
	Text string
}

// Error implements the error interface.
func (e *Error) Error() string {
	s := "xmpp error: " + e.Condition
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// Is makes errors.Is(err, &Error{Condition: c}) true for every error of
// condition c.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Condition == e.Condition && (t.Type == "" || t.Type == e.Type)
}

// Bare returns the bare form (local@domain) of the JID j, or j itself if
// it is not a valid JID.
func Bare(j string) string {
	p, err := jid.Parse(j)
	if err != nil {
		return j
	}
	return p.BareString()
}

// parseError reads the <error/> of an error stanza.
func parseError(el *xmlstream.Element) *Error {
	e := el.Child(el.Space, "error")
	if e == nil {
		return &Error{Type: stanza.Cancel, Condition: stanza.UndefinedCondition}
	}
	out := &Error{Type: e.Attr("type")}
	for c := range e.ChildElements {
		if c.Space != stanza.NSStanzas {
			continue
		}
		if c.Local == "text" {
			out.Text = c.Text()
		} else if out.Condition == "" {
			out.Condition = c.Local
		}
	}
	if out.Condition == "" {
		out.Condition = stanza.UndefinedCondition
	}
	return out
}

// errorElement builds the <error/> of e.
func errorElement(e *Error) *xmlstream.Element {
	el := xmlstream.NewElement(nsClient, "error")
	typ := e.Type
	if typ == "" {
		typ = stanza.ErrorType(e.Condition)
	}
	el.SetAttr("type", typ)
	el.AddChild(xmlstream.NewElement(stanza.NSStanzas, e.Condition))
	if e.Text != "" {
		el.AddChild(xmlstream.NewElement(stanza.NSStanzas, "text")).AddText(e.Text)
	}
	return el
}

// payloadOf keeps a child element as a Payload.
func payloadOf(c *xmlstream.Element) Payload {
	return Payload{Space: c.Space, Local: c.Local, XML: string(c.AppendXML(nil, ""))}
}

// parsePayload parses the XML of a payload to send, so that a mistake is
// an error for the caller instead of a broken stream.
func parsePayload(p Payload) (*xmlstream.Element, error) {
	el, err := xmlstream.ParseStanza([]byte(p.XML), nsClient)
	if err != nil {
		return nil, fmt.Errorf("bot: payload %.40q: %w", p.XML, err)
	}
	return el, nil
}

// readMessage turns a message stanza into a Message.
func readMessage(el *xmlstream.Element) *Message {
	m := &Message{ID: el.Attr("id"), From: el.Attr("from"), To: el.Attr("to"), Type: el.Attr("type")}
	if m.Type == "" {
		m.Type = "normal"
	}
	for c := range el.ChildElements {
		switch {
		case c.Space == el.Space && c.Local == "body":
			if m.Body == "" {
				m.Body = c.Text()
			}
		case c.Space == el.Space && c.Local == "subject":
			if m.Subject == "" {
				m.Subject = c.Text()
			}
		case c.Space == el.Space && c.Local == "thread":
			m.Thread = c.Text()
		case c.Space == el.Space && c.Local == "error":
			m.Error = parseError(el)
		case c.Space == nsJSON && c.Local == "json" && m.JSON == nil:
			if raw, ok := jsonOf(c); ok {
				m.JSON = raw
			} else {
				m.Payloads = append(m.Payloads, payloadOf(c))
			}
		default:
			m.Payloads = append(m.Payloads, payloadOf(c))
		}
	}
	return m
}

// element builds the message stanza of m.
func (m *Message) element() (*xmlstream.Element, error) {
	el := xmlstream.NewElement(nsClient, stanza.Message)
	if m.To != "" {
		to, err := jid.Parse(m.To)
		if err != nil {
			return nil, fmt.Errorf("bot: to %q: %w", m.To, err)
		}
		el.SetAttr("to", to.String())
	}
	typ := m.Type
	if typ == "" {
		typ = "chat"
	}
	if typ != "normal" {
		el.SetAttr("type", typ)
	}
	id := m.ID
	if id == "" {
		id = stanza.NewID()
	}
	el.SetAttr("id", id)
	for _, t := range []struct{ name, text string }{{"subject", m.Subject}, {"body", m.Body}, {"thread", m.Thread}} {
		if t.text != "" {
			el.AddChild(xmlstream.NewElement(nsClient, t.name)).AddText(t.text)
		}
	}
	if m.JSON != nil {
		j, err := jsonElement(m.JSON)
		if err != nil {
			return nil, err
		}
		el.AddChild(j)
	}
	for _, p := range m.Payloads {
		c, err := parsePayload(p)
		if err != nil {
			return nil, err
		}
		el.AddChild(c)
	}
	if m.Error != nil {
		el.SetAttr("type", "error")
		el.AddChild(errorElement(m.Error))
	}
	return el, nil
}

// readPresence turns a presence stanza into a Presence.
func readPresence(el *xmlstream.Element) *Presence {
	p := &Presence{From: el.Attr("from"), To: el.Attr("to"), Type: el.Attr("type")}
	for c := range el.ChildElements {
		switch {
		case c.Space == el.Space && c.Local == "show":
			p.Show = strings.TrimSpace(c.Text())
		case c.Space == el.Space && c.Local == "status":
			if p.Status == "" {
				p.Status = c.Text()
			}
		case c.Space == el.Space && c.Local == "priority":
			p.Priority, _ = strconv.Atoi(strings.TrimSpace(c.Text()))
		case c.Space == el.Space && c.Local == "error":
			p.Error = parseError(el)
		default:
			p.Payloads = append(p.Payloads, payloadOf(c))
		}
	}
	return p
}

// presenceElement builds an available presence with show and status.
func presenceElement(show, status string, priority int) *xmlstream.Element {
	el := xmlstream.NewElement(nsClient, stanza.Presence)
	if show != "" {
		el.AddChild(xmlstream.NewElement(nsClient, "show")).AddText(show)
	}
	if status != "" {
		el.AddChild(xmlstream.NewElement(nsClient, "status")).AddText(status)
	}
	if priority != 0 {
		el.AddChild(xmlstream.NewElement(nsClient, "priority")).AddText(strconv.Itoa(priority))
	}
	return el
}

// readIQ turns an IQ stanza into an IQ.
func readIQ(el *xmlstream.Element) *IQ {
	iq := &IQ{ID: el.Attr("id"), From: el.Attr("from"), To: el.Attr("to"), Type: el.Attr("type")}
	for c := range el.ChildElements {
		if c.Space == el.Space && c.Local == "error" {
			iq.Error = parseError(el)
			continue
		}
		if iq.Payload.XML == "" {
			iq.Payload = payloadOf(c)
		}
	}
	return iq
}
