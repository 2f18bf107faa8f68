package bot

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// A JSONHandler answers a JSON container (XEP-0335, <json
// xmlns='urn:xmpp:json:0'/>) that arrived in a message or an IQ request
// from the full JID from.
//
// A reply that is not nil goes back to from in the same kind of stanza:
// a message of the request's type and thread, or the IQ's result. It is
// marshaled with encoding/json unless it is already a json.RawMessage or
// a []byte holding JSON. A nil reply sends nothing for a message and an
// empty result for an IQ. An error is sent back as an XMPP error: an
// *Error as it is, anything else as internal-server-error (the text
// stays in the bot's log).
type JSONHandler func(ctx context.Context, from string, data json.RawMessage) (reply any, err error)

// HandleJSON makes a JSONHandler that decodes the container into a value
// of type T first. Content that does not decode is answered with
// bad-request, saying why, and h is not called.
func HandleJSON[T any](h func(ctx context.Context, from string, req T) (reply any, err error)) JSONHandler {
	return func(ctx context.Context, from string, data json.RawMessage) (any, error) {
		var req T
		if err := json.Unmarshal(data, &req); err != nil {
			return nil, &Error{Condition: stanza.BadRequest, Text: err.Error()}
		}
		return h(ctx, from, req)
	}
}

// marshalJSON encodes v for a JSON container.
func marshalJSON(v any) (json.RawMessage, error) {
	switch v := v.(type) {
	case json.RawMessage:
		if !json.Valid(v) {
			return nil, fmt.Errorf("bot: not valid JSON: %.40q", v)
		}
		return v, nil
	case []byte:
		if !json.Valid(v) {
			return nil, fmt.Errorf("bot: not valid JSON: %.40q", v)
		}
		return v, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("bot: %w", err)
	}
	return b, nil
}

// jsonElement is the XEP-0335 container holding data.
func jsonElement(data json.RawMessage) (*xmlstream.Element, error) {
	if !json.Valid(data) {
		return nil, fmt.Errorf("bot: not valid JSON: %.40q", data)
	}
	el := xmlstream.NewElement(nsJSON, "json")
	el.AddText(string(data))
	return el, nil
}

// jsonOf returns the JSON of a container element, false if it holds
// none.
func jsonOf(el *xmlstream.Element) (json.RawMessage, bool) {
	if el == nil || el.Space != nsJSON || el.Local != "json" {
		return nil, false
	}
	raw := []byte(el.Text())
	if !json.Valid(raw) {
		return nil, false
	}
	return json.RawMessage(raw), true
}
