package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// httpError is an answer other than success, with the message shown to
// the caller.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// badRequest is a 400 about field (a JSON field of the body, a path or
// query parameter, or "body").
func badRequest(field, format string, args ...any) *httpError {
	return &httpError{http.StatusBadRequest, field + ": " + fmt.Sprintf(format, args...)}
}

// forbidden is a 403: the caller may not do what it asked.
func forbidden(format string, args ...any) error {
	return &httpError{http.StatusForbidden, fmt.Sprintf(format, args...)}
}

// adminOnly is the 403 of the calls only the admin may make.
func adminOnly(c caller) error {
	if c.admin {
		return nil
	}
	return forbidden("only the admin may make this call")
}

// writeError answers with err: an httpError as it says, a Backend's error
// by the sentinel it wraps, anything else 500 with a message that tells
// nothing of the server's insides (the log has the error).
func (a *API) writeError(w http.ResponseWriter, r *http.Request, c caller, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		if he.status == http.StatusForbidden {
			a.log.Debug("api call refused", "caller", c, "method", r.Method, "path", r.URL.Path, "err", he.msg)
		}
		writeJSONError(w, he.status, he.msg)
	case errors.Is(err, ErrNotFound):
		writeJSONError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrConflict):
		writeJSONError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrInvalid):
		writeJSONError(w, http.StatusBadRequest, err.Error())
	default:
		a.log.Error("api call failed", "caller", c, "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSONError(w, http.StatusInternalServerError, "internal error")
	}
}

// errorBody is the JSON of every error.
type errorBody struct {
	Error string `json:"error"`
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(errorBody{msg}) // a struct of one string always marshals
	writeJSON(w, status, b)
}

// writeJSON answers with b, a JSON document.
func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
