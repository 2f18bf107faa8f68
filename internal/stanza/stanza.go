package stanza

import (
	"crypto/rand"
	"encoding/base64"

	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces used across the server.
const (
	NSStanzas    = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSStreams    = "urn:ietf:params:xml:ns:xmpp-streams"
	NSSASL       = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSTLS        = "urn:ietf:params:xml:ns:xmpp-tls"
	NSBind       = "urn:ietf:params:xml:ns:xmpp-bind"
	NSSession    = "urn:ietf:params:xml:ns:xmpp-session"
	NSRoster     = "jabber:iq:roster"
	NSVersion    = "jabber:iq:version"
	NSPing       = "urn:xmpp:ping"
	NSDiscoInfo  = "http://jabber.org/protocol/disco#info"
	NSDiscoItems = "http://jabber.org/protocol/disco#items"
)

// Stanza kinds: the local names of the three stanza elements.
const (
	Message  = "message"
	Presence = "presence"
	IQ       = "iq"
)

// Error types (RFC 6120 §8.3.2).
const (
	Auth     = "auth"
	Cancel   = "cancel"
	Continue = "continue"
	Modify   = "modify"
	Wait     = "wait"
)

// Error conditions (RFC 6120 §8.3.3) that the server produces.
const (
	BadRequest            = "bad-request"
	Conflict              = "conflict"
	FeatureNotImplemented = "feature-not-implemented"
	Forbidden             = "forbidden"
	ItemNotFound          = "item-not-found"
	InternalServerError   = "internal-server-error"
	JIDMalformed          = "jid-malformed"
	NotAcceptable         = "not-acceptable"
	NotAllowed            = "not-allowed"
	NotAuthorized         = "not-authorized"
	PolicyViolation       = "policy-violation"
	RecipientUnavailable  = "recipient-unavailable"
	RemoteServerNotFound  = "remote-server-not-found"
	RemoteServerTimeout   = "remote-server-timeout"
	ResourceConstraint    = "resource-constraint"
	ServiceUnavailable    = "service-unavailable"
	UndefinedCondition    = "undefined-condition"
	UnexpectedRequest     = "unexpected-request"
)

// KnownCondition reports whether c is one of the stanza error conditions
// of RFC 6120 §8.3.3: what a program outside the server may name.
func KnownCondition(c string) bool {
	switch c {
	case BadRequest, Conflict, FeatureNotImplemented, Forbidden, "gone", InternalServerError, ItemNotFound,
		JIDMalformed, NotAcceptable, NotAllowed, NotAuthorized, PolicyViolation, RecipientUnavailable, "redirect",
		"registration-required", RemoteServerNotFound, RemoteServerTimeout, ResourceConstraint, ServiceUnavailable,
		"subscription-required", UndefinedCondition, UnexpectedRequest:
		return true
	}
	return false
}

// ErrorType returns the error type RFC 6120 §8.3.3 gives with condition.
func ErrorType(condition string) string {
	switch condition {
	case BadRequest, JIDMalformed, NotAcceptable, PolicyViolation:
		return Modify
	case Forbidden, NotAuthorized:
		return Auth
	case RecipientUnavailable, RemoteServerTimeout, ResourceConstraint, UnexpectedRequest:
		return Wait
	default:
		return Cancel
	}
}

// IsRequest reports whether el is an IQ of type get or set, the only kind
// that must always be answered.
func IsRequest(el *xmlstream.Element) bool {
	if el.Local != IQ {
		return false
	}
	t := el.Attr("type")
	return t == "get" || t == "set"
}

// MayBounce reports whether an error reply to el is allowed: RFC 6120 §8.3.1
// forbids answering an error with an error, and IQ results are never answered.
func MayBounce(el *xmlstream.Element) bool {
	t := el.Attr("type")
	if t == "error" {
		return false
	}
	if el.Local == IQ && t == "result" {
		return false
	}
	return true
}

// ErrorReply builds the error stanza answering el: to and from swapped, the
// original payload kept (RFC 6120 §8.3.1 allows it, and clients use it to
// match the failure), and an <error/> with condition and its default type.
// text, when not empty, is added as a human-readable explanation.
func ErrorReply(el *xmlstream.Element, condition, text string) *xmlstream.Element {
	r := xmlstream.NewElement(el.Space, el.Local)
	copyAddressing(r, el)
	r.SetAttr("type", "error")
	for _, n := range el.Nodes {
		if n.Elem != nil && n.Elem.Local == "error" {
			continue
		}
		if n.Elem != nil {
			r.AddChild(n.Elem)
		}
	}
	e := r.AddChild(xmlstream.NewElement(el.Space, "error"))
	e.SetAttr("type", ErrorType(condition))
	e.AddChild(xmlstream.NewElement(NSStanzas, condition))
	if text != "" {
		e.AddChild(xmlstream.NewElement(NSStanzas, "text")).AddText(text)
	}
	return r
}

// Result builds the empty IQ result for the request el.
func Result(el *xmlstream.Element) *xmlstream.Element {
	r := xmlstream.NewElement(el.Space, IQ)
	copyAddressing(r, el)
	r.SetAttr("type", "result")
	return r
}

// copyAddressing sets r's id from el and swaps el's to and from into r.
func copyAddressing(r, el *xmlstream.Element) {
	if id := el.Attr("id"); id != "" {
		r.SetAttr("id", id)
	}
	if f := el.Attr("from"); f != "" {
		r.SetAttr("to", f)
	}
	if t := el.Attr("to"); t != "" {
		r.SetAttr("from", t)
	}
}

// ErrorCondition returns the defined condition of an error stanza, "" if el
// carries none.
func ErrorCondition(el *xmlstream.Element) string {
	e := el.Child(el.Space, "error")
	if e == nil {
		return ""
	}
	for _, n := range e.Nodes {
		if n.Elem != nil && n.Elem.Space == NSStanzas && n.Elem.Local != "text" {
			return n.Elem.Local
		}
	}
	return ""
}

// NewID returns a random identifier for stanzas and resources the server
// generates: 12 random bytes, unguessable and URL-safe.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// AppendStreamError appends an RFC 6120 §4.9 stream error to dst:
// <stream:error> with the defined condition cond (whose element carries
// value, for see-other-host, when value is not empty), an optional <text/>
// and extra, already serialized application-specific children. The
// stream prefix is the one every Ambrosia stream header declares.
func AppendStreamError(dst []byte, cond, value, text, extra string) []byte {
	dst = append(dst, "<stream:error><"+cond+" xmlns='"+NSStreams+"'"...)
	if value == "" {
		dst = append(dst, "/>"...)
	} else {
		dst = append(dst, '>')
		dst = xmlstream.AppendEscapedText(dst, value)
		dst = append(dst, "</"+cond+">"...)
	}
	if text != "" {
		dst = append(dst, "<text xmlns='"+NSStreams+"'>"...)
		dst = xmlstream.AppendEscapedText(dst, text)
		dst = append(dst, "</text>"...)
	}
	dst = append(dst, extra...)
	return append(dst, "</stream:error>"...)
}
