// Package bosh serves XMPP over BOSH (XEP-0124, with XEP-0206): an
// http.Handler that keeps a table of sessions and carries each session's
// XMPP stream, which a Stream (the client edge's virtual connection)
// serves with the same code as TCP streams.
//
// A waiting session holds no goroutine of its own: the requests it holds
// are each parked on the request's own net/http goroutine, the wait and
// inactivity deadlines are timers, and what the server has for the
// client is a queue written into whichever request is answered next. A
// request's payload is fed to the stream on the request's goroutine.
//
// Cross-origin headers (CORS) are the HTTP listener's business.
package bosh

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Config bounds what clients may ask for.
type Config struct {
	// MaxWait is the longest a request is held waiting for something to
	// send; a client asking for more gets this.
	MaxWait time.Duration
	// MaxHold is the most requests held at once per session.
	MaxHold int
	// Inactivity ends a session that has no request held for that long.
	Inactivity time.Duration
	// MaxPause is the longest a client may pause its session (pause).
	MaxPause time.Duration
	// Polling is the shortest interval between two empty requests of a
	// polling session (hold or wait of 0).
	Polling time.Duration
	// MaxBodyBytes bounds one request's body; a bigger one is refused
	// with 413.
	MaxBodyBytes int
	// Peer returns a request's client address and whether it came over
	// an encrypted or trusted carrier (TLS, loopback, a proxy that
	// terminated TLS); nil means the socket's address, and TLS or
	// loopback.
	Peer func(*http.Request) (addr string, secure bool)
	// AllowPlain opens sessions from carriers that are not secure
	// (c2s.allow_plain): SASL PLAIN is then still not offered.
	AllowPlain bool
}

// DefaultConfig returns the defaults of Prosody and ejabberd.
func DefaultConfig() Config {
	return Config{
		MaxWait:      60 * time.Second,
		MaxHold:      1,
		Inactivity:   60 * time.Second,
		MaxPause:     120 * time.Second,
		Polling:      5 * time.Second,
		MaxBodyBytes: 1 << 20,
	}
}

// Sink receives the server's side of a session's stream; the session
// implements it (c2s.Sink has the same methods).
type Sink interface {
	// Send queues stream content for the client: features, stanzas and
	// nonzas with their namespaces. It never blocks.
	Send(p []byte)
	// End says the stream is over; streamError is the <stream:error/>
	// that ended it, nil for an orderly end.
	End(streamError []byte)
}

// Stream is the XMPP stream of a session: c2s.Virtual.
type Stream interface {
	// Feed hands the client's stream bytes, whole elements; it reports
	// false once the stream is finished.
	Feed(b []byte) bool
	// Close ends the stream with a stream error ("" for none).
	Close(condition string)
}

// Opener opens the stream of a new session.
type Opener interface {
	Open(ctx context.Context, sink Sink, remote net.Addr, secure bool) (Stream, error)
}

// OpenFunc is an Opener as a function.
type OpenFunc func(ctx context.Context, sink Sink, remote net.Addr, secure bool) (Stream, error)

// Open implements Opener.
func (f OpenFunc) Open(ctx context.Context, sink Sink, remote net.Addr, secure bool) (Stream, error) {
	return f(ctx, sink, remote, secure)
}

// Handler serves BOSH requests.
type Handler struct {
	cfg  Config
	open Opener
	log  *slog.Logger

	// reportAfter is how long an answer may go unacknowledged before
	// the client is told it seems lost (XEP-0124 §9.3): longer than a
	// round trip, so that answers in flight are not reported.
	reportAfter time.Duration

	mu       sync.Mutex
	sessions map[string]*session
}

// New returns a Handler opening streams with open.
func New(cfg Config, open Opener, log *slog.Logger) (*Handler, error) {
	if open == nil || log == nil {
		return nil, errors.New("bosh: an opener and a logger are required")
	}
	d := DefaultConfig()
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = d.MaxWait
	}
	if cfg.MaxHold <= 0 {
		cfg.MaxHold = d.MaxHold
	}
	if cfg.Inactivity <= 0 {
		cfg.Inactivity = d.Inactivity
	}
	if cfg.MaxPause <= 0 {
		cfg.MaxPause = d.MaxPause
	}
	if cfg.Polling <= 0 {
		cfg.Polling = d.Polling
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = d.MaxBodyBytes
	}
	if cfg.Peer == nil {
		cfg.Peer = peerDefault
	}
	return &Handler{cfg: cfg, open: open, log: log.With("component", "bosh"), reportAfter: 2 * time.Second, sessions: map[string]*session{}}, nil
}

// secureDefault trusts TLS and loopback.
func peerDefault(r *http.Request) (string, bool) {
	if r.TLS != nil {
		return r.RemoteAddr, true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr, false
	}
	ip := net.ParseIP(host)
	return r.RemoteAddr, ip != nil && ip.IsLoopback()
}

// Len reports the number of sessions.
func (h *Handler) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "BOSH: POST a <body/>", http.StatusMethodNotAllowed)
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, int64(h.cfg.MaxBodyBytes)+1))
	if err != nil {
		return
	}
	if len(data) > h.cfg.MaxBodyBytes {
		reply(w, http.StatusRequestEntityTooLarge, "", terminateBody("policy-violation", nil))
		return
	}
	b, err := parseBody(data)
	if err != nil || !b.hasRID {
		reply(w, http.StatusBadRequest, "", terminateBody("bad-request", nil))
		return
	}
	if b.sid == "" {
		h.create(w, r, b)
		return
	}
	h.mu.Lock()
	s := h.sessions[b.sid]
	h.mu.Unlock()
	if s == nil {
		reply(w, http.StatusOK, "", terminateBody("item-not-found", nil))
		return
	}
	resp, ch := s.handle(b)
	if ch != nil {
		select {
		case resp = <-ch:
		case <-r.Context().Done():
			// The client went away: the answer, when it comes, is kept
			// for a retry of the same rid.
			return
		}
	}
	reply(w, http.StatusOK, s.ctype, resp)
}

func reply(w http.ResponseWriter, status int, ctype string, b []byte) {
	if ctype == "" {
		ctype = "text/xml; charset=utf-8"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// newSID returns a session id that cannot be guessed.
func newSID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// forget removes s from the table.
func (h *Handler) forget(s *session) {
	h.mu.Lock()
	if h.sessions[s.sid] == s {
		delete(h.sessions, s.sid)
	}
	h.mu.Unlock()
}

// terminateBody is a terminal response, with a binding condition (XEP-0124
// §17) if cond is not "".
func terminateBody(cond string, payload []byte) []byte {
	b := []byte("<body xmlns='" + NSHTTPBind + "' xmlns:stream='" + nsStream + "' type='terminate'")
	if cond != "" {
		b = append(b, " condition='"...)
		b = escapeAttr(b, cond)
		b = append(b, '\'')
	}
	if len(payload) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = append(b, payload...)
	return append(b, "</body>"...)
}
