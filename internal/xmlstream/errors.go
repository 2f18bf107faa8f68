package xmlstream

import "errors"

// ErrNeedMore is returned by Parser.Next when the bytes fed so far do not
// contain another complete event.
var ErrNeedMore = errors.New("xmlstream: need more input")

// Stream error conditions (RFC 6120 §4.9.3) that the parser reports.
const (
	CondNotWellFormed       = "not-well-formed"
	CondRestrictedXML       = "restricted-xml"
	CondPolicyViolation     = "policy-violation"
	CondUnsupportedEncoding = "unsupported-encoding"
)

// Error is a parse failure, carrying the stream error condition the server
// should send before closing the stream. Undeclared namespace prefixes are
// reported as not-well-formed because they violate Namespaces in XML, which
// RFC 6120 folds into that condition; invalid-namespace is left to callers
// that check which namespaces a stream uses.
type Error struct {
	Condition string // RFC 6120 stream error condition
	Msg       string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return "xmlstream: " + e.Condition + ": " + e.Msg
}

func errNWF(msg string) *Error        { return &Error{Condition: CondNotWellFormed, Msg: msg} }
func errRestricted(msg string) *Error { return &Error{Condition: CondRestrictedXML, Msg: msg} }
func errPolicy(msg string) *Error     { return &Error{Condition: CondPolicyViolation, Msg: msg} }
