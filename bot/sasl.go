package bot

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/xdg-go/scram"
)

// Channel binding types (RFC 5929, RFC 9266).
const (
	cbExporter = "tls-exporter"
	cbEndpoint = "tls-server-end-point"
	cbUnique   = "tls-unique"
)

// scramMechanisms are the SCRAM mechanisms the bot uses, strongest first;
// each may be offered with -PLUS.
var scramMechanisms = []string{"SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1"}

// htMechanisms are the FAST mechanisms (XEP-0484) and the channel binding
// each signs, strongest first.
var htMechanisms = []struct{ name, cb string }{
	{"HT-SHA-256-EXPR", cbExporter},
	{"HT-SHA-256-ENDP", cbEndpoint},
	{"HT-SHA-256-NONE", ""},
}

// channelBinding returns the data of channel binding typ on the TLS
// connection cs.
func channelBinding(cs *tls.ConnectionState, typ string) (scram.ChannelBinding, error) {
	if cs == nil {
		return scram.ChannelBinding{}, errors.New("no TLS")
	}
	switch typ {
	case cbExporter:
		return scram.NewTLSExporterBinding(cs)
	case cbEndpoint:
		return scram.NewTLSServerEndpointBinding(cs)
	case cbUnique:
		if cs.Version >= tls.VersionTLS13 || len(cs.TLSUnique) == 0 {
			return scram.ChannelBinding{}, errors.New("tls-unique is undefined here")
		}
		return scram.NewTLSUniqueBinding(cs.TLSUnique), nil
	}
	return scram.ChannelBinding{}, fmt.Errorf("unknown channel binding %q", typ)
}

// bindingFor picks the channel binding a -PLUS mechanism uses: among the
// types the server lists (XEP-0440), the strongest the connection
// provides; "" if none. Without a list the bot does not guess: servers
// that offer -PLUS without one differ on the type (ejabberd 23.01 refuses
// tls-exporter on TLS 1.3, the default RFC 9266 gives it).
func bindingFor(cs *tls.ConnectionState, listed []string, hasList bool) string {
	if cs == nil || !hasList {
		return ""
	}
	for _, t := range []string{cbExporter, cbEndpoint, cbUnique} {
		if !slices.Contains(listed, t) {
			continue
		}
		if _, err := channelBinding(cs, t); err == nil {
			return t
		}
	}
	return ""
}

// choice is the mechanism chosen for a password login.
type choice struct {
	mech string
	cb   string // channel binding of a -PLUS mechanism
	// advertise sends the SCRAM flag "y": the bot could bind the channel
	// but the server offers no -PLUS, which a server that does support it
	// takes as a downgrade (RFC 5802 §6).
	advertise bool
}

// chooseMechanism picks the strongest mechanism of offered the bot can
// use on the connection cs (nil without TLS): a SCRAM mechanism with
// channel binding, then without, then PLAIN over TLS only.
func chooseMechanism(offered []string, cs *tls.ConnectionState, cbList []string, hasList bool) (choice, bool) {
	cb := bindingFor(cs, cbList, hasList)
	if cb != "" {
		for _, m := range scramMechanisms {
			if slices.Contains(offered, m+"-PLUS") {
				return choice{mech: m + "-PLUS", cb: cb}, true
			}
		}
	}
	anyPlus := slices.ContainsFunc(offered, func(m string) bool { return strings.HasSuffix(m, "-PLUS") })
	for _, m := range scramMechanisms {
		if slices.Contains(offered, m) {
			return choice{mech: m, advertise: cs != nil && !anyPlus && canBind(cs)}, true
		}
	}
	if cs != nil && slices.Contains(offered, "PLAIN") {
		return choice{mech: "PLAIN"}, true
	}
	return choice{}, false
}

// canBind reports whether some channel binding works on cs.
func canBind(cs *tls.ConnectionState) bool {
	for _, t := range []string{cbExporter, cbEndpoint} {
		if _, err := channelBinding(cs, t); err == nil {
			return true
		}
	}
	return false
}

// chooseHT picks the FAST mechanism for a token request: the strongest
// of offered whose channel binding the connection provides.
func chooseHT(offered []string, cs *tls.ConnectionState) string {
	for _, m := range htMechanisms {
		if !slices.Contains(offered, m.name) {
			continue
		}
		if m.cb == "" {
			return m.name
		}
		if _, err := channelBinding(cs, m.cb); err == nil {
			return m.name
		}
	}
	return ""
}

// htBinding returns the channel binding data HT mechanism mech signs.
func htBinding(mech string, cs *tls.ConnectionState) ([]byte, error) {
	for _, m := range htMechanisms {
		if m.name != mech {
			continue
		}
		if m.cb == "" {
			return nil, nil
		}
		cb, err := channelBinding(cs, m.cb)
		if err != nil {
			return nil, err
		}
		return cb.Data, nil
	}
	return nil, fmt.Errorf("unknown mechanism %s", mech)
}

// htMAC is HMAC-SHA-256(token, label || cb) of the HT mechanisms.
func htMAC(token, label string, cb []byte) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(label))
	m.Write(cb)
	return m.Sum(nil)
}

// exchange is one password authentication in progress.
type exchange struct {
	mech  string
	conv  *scram.ClientConversation // nil for PLAIN
	first []byte                    // the initial response
}

// newExchange starts authenticating user with password by c.
func newExchange(c choice, cs *tls.ConnectionState, user, password string) (*exchange, error) {
	if c.mech == "PLAIN" {
		return &exchange{mech: c.mech, first: []byte("\x00" + user + "\x00" + password)}, nil
	}
	h := scram.SHA1
	switch {
	case strings.HasPrefix(c.mech, "SCRAM-SHA-512"):
		h = scram.SHA512
	case strings.HasPrefix(c.mech, "SCRAM-SHA-256"):
		h = scram.SHA256
	}
	cl, err := h.NewClient(user, password, "")
	if err != nil {
		return nil, fmt.Errorf("scram: %w", err)
	}
	var conv *scram.ClientConversation
	switch {
	case c.cb != "":
		cb, err := channelBinding(cs, c.cb)
		if err != nil {
			return nil, err
		}
		conv = cl.NewConversationWithChannelBinding(cb)
	case c.advertise:
		conv = cl.NewConversationAdvertisingChannelBinding()
	default:
		conv = cl.NewConversation()
	}
	first, err := conv.Step("")
	if err != nil {
		return nil, fmt.Errorf("scram: %w", err)
	}
	return &exchange{mech: c.mech, conv: conv, first: []byte(first)}, nil
}

// step answers a challenge.
func (x *exchange) step(challenge []byte) ([]byte, error) {
	if x.conv == nil {
		return nil, errors.New("unexpected challenge")
	}
	if x.conv.Done() {
		return nil, errors.New("challenge after the end of the exchange")
	}
	out, err := x.conv.Step(string(challenge))
	if err != nil {
		return nil, fmt.Errorf("scram: %w", err)
	}
	return []byte(out), nil
}

// verify checks the server's final message, which comes with success
// (or, from some servers, as a last challenge): the proof that the server
// knows the password too. A mechanism without such proof (PLAIN) has
// nothing to check.
func (x *exchange) verify(final []byte) error {
	if x.conv == nil {
		return nil
	}
	if !x.conv.Done() {
		if _, err := x.conv.Step(string(final)); err != nil {
			return fmt.Errorf("scram: server signature: %w", err)
		}
	}
	if !x.conv.Valid() {
		return errors.New("scram: the server's signature is not valid")
	}
	return nil
}
