package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
)

// decodeJSON reads body, one JSON object, into v. Fields v does not have
// are refused, so that a typo is an error rather than a default. Errors
// are 400s naming the field, or the body and the offset, or 413 when the
// body went over the limit of an http.MaxBytesReader.
func decodeJSON(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	switch _, err := dec.Token(); {
	case err == io.EOF:
		return nil
	case err == nil:
		return badRequest("body", "data after the JSON object")
	default:
		if e := jsonError(err); e.status == http.StatusRequestEntityTooLarge {
			return e
		}
		return badRequest("body", "data after the JSON object")
	}
}

// jsonError turns an error of json.Decoder into an answer.
func jsonError(err error) *httpError {
	var (
		big *http.MaxBytesError
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &big):
		return &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes", big.Limit)}
	case errors.Is(err, io.EOF):
		return badRequest("body", "empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("body", "the JSON ends too soon")
	case errors.As(err, &syn):
		return badRequest("body", "malformed JSON at offset %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return badRequest(field, "want %s, not a JSON %s (offset %d)", jsonKind(typ.Type), typ.Value, typ.Offset)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if n, err := strconv.Unquote(name); err == nil && n != "" {
			name = n
		}
		return badRequest(name, "unknown field")
	}
	return badRequest("body", "%v", err)
}

// jsonKind names what JSON value a Go type takes.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "another value"
}

// parseJID parses s, the value of field, which is required.
func parseJID(field, s string) (jid.JID, error) {
	if s == "" {
		return jid.JID{}, badRequest(field, "required")
	}
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, badRequest(field, "%q is not a JID: %v", s, err)
	}
	return j, nil
}

// parseUser parses s, the value of field, as the bare JID of a user or a
// room (local@domain).
func parseUser(field, s string) (jid.JID, error) {
	j, err := parseJID(field, s)
	if err != nil {
		return j, err
	}
	if j.Local() == "" || !j.IsBare() {
		return jid.JID{}, badRequest(field, "%q is not a bare JID local@domain", s)
	}
	return j, nil
}

// parseBare parses s, the value of field, as a JID without a resource
// (a user, a room or a domain).
func parseBare(field, s string) (jid.JID, error) {
	j, err := parseJID(field, s)
	if err != nil {
		return j, err
	}
	if !j.IsBare() {
		return jid.JID{}, badRequest(field, "%q has a resource; want a bare JID", s)
	}
	return j, nil
}

// parseDomain parses s, the value of field, as a domain.
func parseDomain(field, s string) (string, error) {
	j, err := parseJID(field, s)
	if err != nil {
		return "", err
	}
	if j.Local() != "" || !j.IsBare() {
		return "", badRequest(field, "%q is not a domain", s)
	}
	return j.Domain(), nil
}

// oneOf checks that v, the value of field, is one of set.
func oneOf(field, v string, set ...string) error {
	for _, s := range set {
		if v == s {
			return nil
		}
	}
	return badRequest(field, "%q is not one of %s", v, strings.Join(set, ", "))
}
