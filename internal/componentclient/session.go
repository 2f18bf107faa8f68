package componentclient

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// StreamError is a stream error the server sent (RFC 6120 §4.9).
type StreamError struct {
	// Condition is the defined condition, such as not-authorized.
	Condition string
	// Text is the server's explanation, "" if it gave none.
	Text string
	// Handshake is set when the error came before the handshake
	// succeeded: the server refused the component.
	Handshake bool
}

// Error implements error.
func (e *StreamError) Error() string {
	what := "server closed the stream"
	if e.Handshake {
		what = "server refused the component"
	}
	s := "componentclient: " + what + ": " + e.Condition
	if e.Text != "" {
		s += " (" + e.Text + ")"
	}
	return s
}

// protocolError is the server breaking the protocol; cond is the stream
// error the client answers with.
type protocolError struct {
	cond, msg string
}

func (e *protocolError) Error() string {
	return "componentclient: server stream: " + e.cond + ": " + e.msg
}

// errStreamEnd is the server closing its stream without an error.
var errStreamEnd = errors.New("componentclient: server closed the stream")

// sessionState is how far the handshake has come.
type sessionState uint8

const (
	waitHeader    sessionState = iota // for the server's stream header
	waitHandshake                     // for <handshake/>, ours sent
	ready                             // stanzas flow
	ended                             // the server's stream ended
)

// actionKind tells the connection what to do with one thing the server
// sent.
type actionKind uint8

const (
	actSend  actionKind = iota + 1 // write out (our handshake)
	actReady                       // the handshake succeeded
	actRoute                       // route st into the component's router
	actDrop                        // drop el, see why
)

// action is one result of session.next.
type action struct {
	kind actionKind
	out  []byte             // actSend
	st   router.Stanza      // actRoute
	el   *xmlstream.Element // actDrop
	why  string             // actDrop
}

// session is the protocol of one connection as the client sees it,
// without the socket: fed what the server sends, it says what to write
// back and which stanzas to route. The connection's reading goroutine owns
// it; the fuzz target drives it directly.
type session struct {
	domain string // the component's domain, normalized
	secret string
	p      *xmlstream.Parser
	state  sessionState
}

func newSession(domain, secret string, l xmlstream.Limits) *session {
	return &session{domain: domain, secret: secret, p: xmlstream.NewParser(l)}
}

// header is the stream header the client opens with (XEP-0114 §3).
func (s *session) header() []byte {
	return []byte("<stream:stream xmlns='" + xmlstream.NSComponent + "' xmlns:stream='" + xmlstream.NSStream +
		"' to='" + string(xmlstream.AppendEscapedAttr(nil, s.domain)) + "'>")
}

// handshake returns the proof of the secret for stream id: the lowercase
// hex SHA-1 of the id followed by the secret.
func handshake(id, secret string) string {
	sum := sha1.Sum([]byte(id + secret))
	return hex.EncodeToString(sum[:])
}

// feed hands the session bytes read from the server.
func (s *session) feed(b []byte) { s.p.Feed(b) }

// next returns what to do about the next complete thing the server sent,
// xmlstream.ErrNeedMore when more input is needed, or the error that ends
// the connection: a *StreamError the server sent, a *protocolError, or
// errStreamEnd.
func (s *session) next() (action, error) {
	for {
		if s.state == ended {
			return action{}, errStreamEnd
		}
		ev, err := s.p.Next()
		if errors.Is(err, xmlstream.ErrNeedMore) {
			return action{}, err
		}
		if err != nil {
			var xe *xmlstream.Error
			if errors.As(err, &xe) {
				return action{}, &protocolError{xe.Condition, xe.Msg}
			}
			return action{}, &protocolError{xmlstream.CondNotWellFormed, err.Error()}
		}
		switch ev.Kind {
		case xmlstream.EventStreamStart:
			return s.streamStart(ev.Elem)
		case xmlstream.EventStreamEnd:
			s.state = ended
			return action{}, errStreamEnd
		case xmlstream.EventElement:
			return s.element(ev.Elem)
		}
	}
}

// streamStart checks the server's stream header and answers with the
// handshake.
func (s *session) streamStart(h *xmlstream.Element) (action, error) {
	if h.Space != xmlstream.NSStream || h.Local != "stream" {
		return action{}, &protocolError{"invalid-namespace", "not a stream header"}
	}
	if ns := s.p.DefaultNS(); ns != xmlstream.NSComponent {
		return action{}, &protocolError{"invalid-namespace", fmt.Sprintf("content namespace %q", ns)}
	}
	id := h.Attr("id")
	if id == "" {
		return action{}, &protocolError{"undefined-condition", "no stream id to hash the secret with"}
	}
	s.state = waitHandshake
	return action{kind: actSend, out: []byte("<handshake>" + handshake(id, s.secret) + "</handshake>")}, nil
}

// element handles a top-level element.
func (s *session) element(el *xmlstream.Element) (action, error) {
	if el.Space == xmlstream.NSStream && el.Local == "error" {
		return action{}, streamError(el, s.state != ready)
	}
	if s.state == waitHandshake {
		if el.Space != xmlstream.NSComponent || el.Local != "handshake" {
			return action{}, &protocolError{"unsupported-stanza-type", "<" + el.Local + "/> before <handshake/>"}
		}
		s.state = ready
		return action{kind: actReady}, nil
	}
	st, why := s.inbound(el)
	if why != "" {
		return action{kind: actDrop, el: el, why: why}, nil
	}
	return action{kind: actRoute, st: st}, nil
}

// inbound checks a stanza from the server: a message, presence or IQ for
// the component's domain or an address in it, from a valid address. It
// returns why it must be dropped, "" if it may be routed.
func (s *session) inbound(el *xmlstream.Element) (router.Stanza, string) {
	switch {
	case el.Space != xmlstream.NSComponent:
		return router.Stanza{}, "not a stanza"
	case el.Local == "handshake":
		return router.Stanza{}, "second handshake"
	case el.Local != stanza.Message && el.Local != stanza.Presence && el.Local != stanza.IQ:
		return router.Stanza{}, "not a stanza"
	}
	to, err := jid.Parse(el.Attr("to"))
	if err != nil {
		return router.Stanza{}, "malformed or missing 'to'"
	}
	if to.Domain() != s.domain {
		return router.Stanza{}, "not for this component's domain"
	}
	from, err := jid.Parse(el.Attr("from"))
	if err != nil {
		return router.Stanza{}, "malformed or missing 'from'"
	}
	return router.Stanza{El: el, From: from, To: to}, ""
}

// streamError reads a <stream:error/>.
func streamError(el *xmlstream.Element, handshake bool) *StreamError {
	e := &StreamError{Condition: stanza.UndefinedCondition, Handshake: handshake}
	for _, c := range el.Children() {
		if c.Space != stanza.NSStreams {
			continue
		}
		if c.Local == "text" {
			e.Text = c.Text()
		} else {
			e.Condition = c.Local
		}
	}
	return e
}
