package bot

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// AuthError is the server refusing the bot's credentials. Run returns it
// instead of trying again, since trying again would not help.
type AuthError struct {
	// Mechanism is the SASL mechanism that was refused.
	Mechanism string
	// Condition is the SASL failure condition, such as not-authorized.
	Condition string
	// Text is the server's explanation, if any.
	Text string
}

// Error implements the error interface.
func (e *AuthError) Error() string {
	s := "authentication refused (" + e.Mechanism + "): " + e.Condition
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// permanent reports whether a SASL failure condition means the
// credentials or the account are wrong, so that trying again is useless.
func permanent(cond string) bool {
	switch cond {
	case "not-authorized", "account-disabled", "credentials-expired", "invalid-authzid", "encryption-required":
		return true
	}
	return false
}

// A Session says how the bot is logged in: what the server offered and
// what the bot used.
type Session struct {
	// JID is the full JID the server bound.
	JID string
	// Address is the server address connected to, host:port.
	Address string
	// TLS says how the stream is encrypted: "direct", "starttls", or ""
	// for none (Config.Plaintext).
	TLS string
	// Mechanism is the SASL mechanism that authenticated the bot, such
	// as SCRAM-SHA-256-PLUS or HT-SHA-256-EXPR (a FAST token).
	Mechanism string
	// ChannelBinding is the channel binding type the mechanism used, ""
	// for none.
	ChannelBinding string
	// SASL2, Bind2 and FAST say whether the login used Extensible SASL
	// (XEP-0388), Bind 2 (XEP-0386) and a FAST token (XEP-0484).
	SASL2, Bind2, FAST bool
	// StreamManagement says whether Stream Management (XEP-0198) with
	// resumption is on; Resumed, whether this connection resumed the
	// previous one's session rather than starting a new one.
	StreamManagement, Resumed bool
	// Offered is what the server offered.
	Offered Offered
}

// Offered is what a server offered the bot.
type Offered struct {
	// Mechanisms are the SASL mechanisms offered (SASL2's when it is
	// offered, else those of RFC 6120).
	Mechanisms []string
	// ChannelBindings are the channel binding types the server
	// announced (XEP-0440), nil if it did not.
	ChannelBindings []string
	// SASL2, Bind2, FAST and StreamManagement say whether each was
	// offered.
	SASL2, Bind2, FAST, StreamManagement bool
	// FASTMechanisms are the token mechanisms offered.
	FASTMechanisms []string
}

// login is the outcome of negotiating one connection.
type login struct {
	sess Session
	// resumed: the previous session goes on; h is the count of our
	// stanzas the server had (for resumption, or from a failed one when
	// hasH).
	resumed bool
	h       uint32
	hasH    bool
	// enabled: Stream Management is on for a new session, with id (and
	// resumable when the server keeps sessions).
	enabled   bool
	smID      string
	resumable bool
	// stash holds stanzas that arrived during negotiation, with whether
	// each is counted for Stream Management.
	stash []stashed
}

type stashed struct {
	el      *xmlstream.Element
	counted bool
}

// smState is what resumption needs from the previous session.
type smState struct {
	id  string
	h   uint32
	jid string // the full JID of the session
}

// negotiate takes a connected socket to a logged-in session: STARTTLS,
// authentication (SASL2 with Bind 2 and inline Stream Management when
// offered, RFC 6120 SASL and resource binding otherwise), resumption of
// prev when it is set, or a new session with Stream Management enabled.
func (b *Bot) negotiate(ctx context.Context, c *conn, prev smState) (*login, error) {
	a := b.acct
	stop := context.AfterFunc(ctx, func() { c.fail(ctx.Err()) })
	defer stop()
	_ = c.raw.SetDeadline(time.Now().Add(a.Timeout))
	defer func() { _ = c.raw.SetDeadline(time.Time{}) }()

	lg := &login{}
	lg.sess.Address = c.addr
	if c.direct {
		if err := c.handshake(ctx, a.tlsConfig(true)); err != nil {
			return nil, err
		}
		lg.sess.TLS = "direct"
	}
	f, err := c.open(a)
	if err != nil {
		return nil, err
	}
	if c.tls == nil && !a.Plaintext {
		if f.Child(stanza.NSTLS, "starttls") == nil {
			return nil, errors.New("the server offers no STARTTLS")
		}
		if err := c.startTLS(ctx, a); err != nil {
			return nil, err
		}
		lg.sess.TLS = "starttls"
		if f, err = c.open(a); err != nil {
			return nil, err
		}
	}
	off := offered(f)
	lg.sess.Offered = off
	if off.SASL2 {
		return lg, b.sasl2(ctx, c, f, prev, lg)
	}
	if len(off.Mechanisms) == 0 {
		return nil, errors.New("the server offers no SASL mechanism")
	}
	if err := b.legacyAuth(c, off, lg); err != nil {
		return nil, err
	}
	c.p.Reset()
	if f, err = c.open(a); err != nil {
		return nil, err
	}
	sm := f.Child(nsSM, "sm") != nil
	lg.sess.Offered.StreamManagement = sm
	return lg, b.bindAndEnable(c, lg, prev, sm, f.Child(stanza.NSSession, "session"))
}

// offered reads the authentication features.
func offered(f *xmlstream.Element) Offered {
	var o Offered
	if m := f.Child(stanza.NSSASL, "mechanisms"); m != nil {
		o.Mechanisms = texts(m, "mechanism")
	}
	if cb := f.Child(nsCB, "sasl-channel-binding"); cb != nil {
		o.ChannelBindings = []string{}
		for e := range cb.ChildElements {
			if e.Local == "channel-binding" {
				o.ChannelBindings = append(o.ChannelBindings, e.Attr("type"))
			}
		}
	}
	au := f.Child(nsSASL2, "authentication")
	if au == nil {
		return o
	}
	o.SASL2 = true
	o.Mechanisms = texts(au, "mechanism")
	if in := au.Child(nsSASL2, "inline"); in != nil {
		if bind := in.Child(nsBind2, "bind"); bind != nil {
			o.Bind2 = true
		}
		if in.Child(nsSM, "sm") != nil {
			o.StreamManagement = true
		}
		if fast := in.Child(nsFAST, "fast"); fast != nil {
			o.FAST = true
			o.FASTMechanisms = texts(fast, "mechanism")
		}
	}
	return o
}

// bind2Features returns the features Bind 2 can enable inline.
func bind2Features(f *xmlstream.Element) []string {
	au := f.Child(nsSASL2, "authentication")
	if au == nil {
		return nil
	}
	in := au.Child(nsSASL2, "inline")
	if in == nil {
		return nil
	}
	bind := in.Child(nsBind2, "bind")
	if bind == nil {
		return nil
	}
	var out []string
	if inl := bind.Child(nsBind2, "inline"); inl != nil {
		for e := range inl.ChildElements {
			if e.Local == "feature" {
				out = append(out, e.Attr("var"))
			}
		}
	}
	return out
}

func texts(el *xmlstream.Element, local string) []string {
	var out []string
	for e := range el.ChildElements {
		if e.Local == local {
			out = append(out, strings.TrimSpace(e.Text()))
		}
	}
	return out
}

func b64(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

func unb64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "=" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// saslFailure reads a <failure/> of either SASL profile.
func saslFailure(el *xmlstream.Element, mech string) *AuthError {
	e := &AuthError{Mechanism: mech, Condition: "failure"}
	for c := range el.ChildElements {
		switch {
		case c.Local == "text":
			e.Text = c.Text()
		case c.Space == stanza.NSSASL || e.Condition == "failure":
			e.Condition = c.Local
		}
	}
	return e
}

// legacyAuth authenticates with RFC 6120 SASL.
func (b *Bot) legacyAuth(c *conn, off Offered, lg *login) error {
	a := b.acct
	ch, ok := chooseMechanism(off.Mechanisms, c.tls, off.ChannelBindings, off.ChannelBindings != nil)
	if !ok {
		return fmt.Errorf("no usable SASL mechanism among %v", off.Mechanisms)
	}
	x, err := newExchange(ch, c.tls, a.bare.Local(), a.Password)
	if err != nil {
		return err
	}
	lg.sess.Mechanism, lg.sess.ChannelBinding = ch.mech, ch.cb
	if err := c.write([]byte("<auth xmlns='"+stanza.NSSASL+"' mechanism='"+ch.mech+"'>"+b64(x.first)+"</auth>"), a.Timeout); err != nil {
		return err
	}
	for {
		el, err := c.next()
		if err != nil {
			return err
		}
		if el.Space != stanza.NSSASL {
			return fmt.Errorf("sasl: unexpected <%s/>", el.Local)
		}
		switch el.Local {
		case "challenge":
			in, err := unb64(el.Text())
			if err != nil {
				return fmt.Errorf("sasl: %w", err)
			}
			out, err := x.step(in)
			if err != nil {
				return err
			}
			if err := c.write([]byte("<response xmlns='"+stanza.NSSASL+"'>"+b64(out)+"</response>"), a.Timeout); err != nil {
				return err
			}
		case "success":
			in, err := unb64(el.Text())
			if err != nil {
				return fmt.Errorf("sasl: %w", err)
			}
			return x.verify(in)
		case "failure":
			return authFailed(saslFailure(el, ch.mech))
		default:
			return fmt.Errorf("sasl: unexpected <%s/>", el.Local)
		}
	}
}

// authFailed turns a refusal into the error Run acts on: a permanent one
// as it is, a passing one (temporary-auth-failure…) wrapped so that Run
// tries again later.
func authFailed(e *AuthError) error {
	if permanent(e.Condition) {
		return e
	}
	return fmt.Errorf("sasl: %s", e.Error())
}

// sasl2 authenticates with SASL2 (XEP-0388), with a FAST token when the
// bot has one, and asks inline for what the server offers: resumption,
// Bind 2 with Stream Management, a FAST token.
func (b *Bot) sasl2(ctx context.Context, c *conn, f *xmlstream.Element, prev smState, lg *login) error {
	a := b.acct
	off := lg.sess.Offered
	lg.sess.SASL2 = true
	tok := b.usableToken(ctx, off, c)
	for {
		var mech, cb string
		var first []byte
		var x *exchange
		var inline strings.Builder
		var htCB []byte
		if tok != nil {
			var err error
			htCB, err = htBinding(tok.Mechanism, c.tls)
			if err != nil {
				tok = nil
				continue
			}
			tok.Count++
			if err := a.Tokens.StoreToken(ctx, b.tokenKey(), tok); err != nil {
				b.log.Warn("storing the FAST token", "err", err)
			}
			mech = tok.Mechanism
			first = append([]byte(a.bare.Local()+"\x00"), htMAC(tok.Secret, "Initiator", htCB)...)
			inline.WriteString("<fast xmlns='" + nsFAST + "' count='" + strconv.FormatUint(tok.Count, 10) + "'/>")
		} else {
			ch, ok := chooseMechanism(off.Mechanisms, c.tls, off.ChannelBindings, off.ChannelBindings != nil)
			if !ok {
				return fmt.Errorf("no usable SASL mechanism among %v", off.Mechanisms)
			}
			var err error
			if x, err = newExchange(ch, c.tls, a.bare.Local(), a.Password); err != nil {
				return err
			}
			mech, cb, first = ch.mech, ch.cb, x.first
		}
		requested := ""
		if off.FAST {
			if requested = chooseHT(off.FASTMechanisms, c.tls); requested != "" && tok == nil {
				inline.WriteString("<request-token xmlns='" + nsFAST + "' mechanism='" + requested + "'/>")
			}
		}
		if prev.id != "" && off.StreamManagement {
			inline.WriteString("<resume xmlns='" + nsSM + "' previd='" + string(xmlstream.AppendEscapedAttr(nil, prev.id)) +
				"' h='" + strconv.FormatUint(uint64(prev.h), 10) + "'/>")
		}
		bindSM := false
		if off.Bind2 {
			inline.WriteString("<bind xmlns='" + nsBind2 + "'><tag>" + string(xmlstream.AppendEscapedText(nil, a.Resource)) + "</tag>")
			if slices.Contains(bind2Features(f), nsSM) {
				bindSM = true
				inline.WriteString("<enable xmlns='" + nsSM + "' resume='true'/>")
			}
			inline.WriteString("</bind>")
		}
		req := "<authenticate xmlns='" + nsSASL2 + "' mechanism='" + string(xmlstream.AppendEscapedAttr(nil, mech)) + "'><initial-response>" + b64(first) +
			"</initial-response><user-agent id='" + b.agent + "'><software>Ambrosia bot</software></user-agent>" +
			inline.String() + "</authenticate>"
		if err := c.write([]byte(req), a.Timeout); err != nil {
			return err
		}
		lg.sess.Mechanism, lg.sess.ChannelBinding, lg.sess.FAST = mech, cb, tok != nil
		success, err := b.sasl2Exchange(c, x, mech)
		var ae *AuthError
		if tok != nil && errors.As(err, &ae) {
			// The token is refused (expired, revoked, or the server
			// forgot it): forget it and log in with the password on
			// the same stream.
			b.log.Info("FAST token refused; logging in with the password", "condition", ae.Condition)
			if err := a.Tokens.StoreToken(ctx, b.tokenKey(), nil); err != nil {
				b.log.Warn("deleting the FAST token", "err", err)
			}
			tok = nil
			continue
		}
		if err != nil {
			return err
		}
		if tok != nil {
			var got []byte
			if ad := success.Child(nsSASL2, "additional-data"); ad != nil {
				got, _ = unb64(ad.Text())
			}
			if !hmac.Equal(got, htMAC(tok.Secret, "Responder", htCB)) {
				return errors.New("fast: the server's proof is wrong")
			}
		}
		if t := success.Child(nsFAST, "token"); t != nil {
			b.keepToken(ctx, t, requested, mech)
		}
		return b.afterSASL2(c, success, prev, bindSM, lg)
	}
}

// sasl2Exchange runs the challenges of a SASL2 authentication up to its
// <success/>, whose additional data it checks for a password login (x
// not nil).
func (b *Bot) sasl2Exchange(c *conn, x *exchange, mech string) (*xmlstream.Element, error) {
	a := b.acct
	for {
		el, err := c.next()
		if err != nil {
			return nil, err
		}
		if el.Space != nsSASL2 {
			if el.Space == xmlstream.NSStream && el.Local == "features" {
				continue
			}
			return nil, fmt.Errorf("sasl2: unexpected <%s/>", el.Local)
		}
		switch el.Local {
		case "challenge":
			if x == nil {
				return nil, errors.New("sasl2: unexpected challenge")
			}
			in, err := unb64(el.Text())
			if err != nil {
				return nil, fmt.Errorf("sasl2: %w", err)
			}
			out, err := x.step(in)
			if err != nil {
				return nil, err
			}
			if err := c.write([]byte("<response xmlns='"+nsSASL2+"'>"+b64(out)+"</response>"), a.Timeout); err != nil {
				return nil, err
			}
		case "success":
			if x != nil {
				var in []byte
				if ad := el.Child(nsSASL2, "additional-data"); ad != nil {
					if in, err = unb64(ad.Text()); err != nil {
						return nil, fmt.Errorf("sasl2: %w", err)
					}
				}
				if err := x.verify(in); err != nil {
					return nil, err
				}
			}
			return el, nil
		case "failure":
			ae := saslFailure(el, mech)
			if x == nil {
				// A refused token is for sasl2 to handle.
				return nil, ae
			}
			return nil, authFailed(ae)
		case "continue":
			_ = c.write([]byte("<abort xmlns='"+nsSASL2+"'/>"), a.Timeout)
			return nil, errors.New("sasl2: the server asks for tasks the bot does not know")
		default:
			return nil, fmt.Errorf("sasl2: unexpected <%s/>", el.Local)
		}
	}
}

// afterSASL2 reads the inline results of a SASL2 success, and binds a
// resource and enables Stream Management the RFC 6120 way when the
// server did not do it inline.
func (b *Bot) afterSASL2(c *conn, success *xmlstream.Element, prev smState, bindSM bool, lg *login) error {
	off := lg.sess.Offered
	if r := success.Child(nsSM, "resumed"); r != nil {
		lg.sess.JID = prev.jid
		return resumed(c, r, lg)
	}
	if fl := success.Child(nsSM, "failed"); fl != nil {
		failedResume(fl, lg)
	}
	if bound := success.Child(nsBind2, "bound"); bound != nil {
		lg.sess.Bind2 = true
		id := success.Child(nsSASL2, "authorization-identifier")
		if id == nil {
			return errors.New("bind2: no authorization-identifier")
		}
		full, err := jid.Parse(strings.TrimSpace(id.Text()))
		if err != nil || full.Resource() == "" {
			return fmt.Errorf("bind2: bound JID %q", id.Text())
		}
		lg.sess.JID = full.String()
		e := bound.Child(nsSM, "enabled")
		if e == nil {
			e = success.Child(nsSM, "enabled")
		}
		if e != nil {
			enabled(c, e, lg)
			return nil
		}
		if bindSM {
			b.log.Warn("Stream Management was asked for inline but not enabled")
			return nil
		}
		if off.StreamManagement {
			return b.enable(c, lg)
		}
		return nil
	}
	return b.bindAndEnable(c, lg, smState{}, off.StreamManagement, nil)
}

// resumed takes a <resumed/>: the previous session goes on.
func resumed(c *conn, r *xmlstream.Element, lg *login) error {
	h, err := strconv.ParseUint(r.Attr("h"), 10, 32)
	if err != nil {
		return fmt.Errorf("resumed: bad h %q", r.Attr("h"))
	}
	lg.resumed, lg.h, lg.hasH = true, uint32(h), true
	lg.sess.Resumed, lg.sess.StreamManagement = true, true
	c.sm = true
	return nil
}

// failedResume takes the <failed/> of a resumption: a new session, but
// the h it may carry still says what of the old one's stanzas arrived.
func failedResume(fl *xmlstream.Element, lg *login) {
	if h, err := strconv.ParseUint(fl.Attr("h"), 10, 32); err == nil {
		lg.h, lg.hasH = uint32(h), true
	}
}

// enabled takes an <enabled/>.
func enabled(c *conn, e *xmlstream.Element, lg *login) {
	lg.enabled = true
	lg.smID = e.Attr("id")
	r := e.Attr("resume")
	lg.resumable = (r == "true" || r == "1") && lg.smID != ""
	lg.sess.StreamManagement = lg.resumable
	c.sm = true
}

// bindAndEnable resumes prev or binds a resource (RFC 6120 §7), starts
// the session where the server wants one (RFC 3921), and enables Stream
// Management when sm says the server offers it.
func (b *Bot) bindAndEnable(c *conn, lg *login, prev smState, sm bool, session *xmlstream.Element) error {
	a := b.acct
	if sm && prev.id != "" {
		if err := c.write([]byte("<resume xmlns='"+nsSM+"' previd='"+string(xmlstream.AppendEscapedAttr(nil, prev.id))+
			"' h='"+strconv.FormatUint(uint64(prev.h), 10)+"'/>"), a.Timeout); err != nil {
			return err
		}
		el, err := b.await(c, lg, func(el *xmlstream.Element) bool { return el.Space == nsSM })
		if err != nil {
			return err
		}
		switch el.Local {
		case "resumed":
			lg.sess.JID = prev.jid
			return resumed(c, el, lg)
		case "failed":
			failedResume(el, lg)
		default:
			return fmt.Errorf("resume: unexpected <%s/>", el.Local)
		}
	}
	full, err := b.bind(c, lg, a.Resource)
	var se *Error
	if errors.As(err, &se) && se.Condition == stanza.Conflict {
		full, err = b.bind(c, lg, "")
	}
	if err != nil {
		return err
	}
	lg.sess.JID = full
	if session != nil && session.Child(stanza.NSSession, "optional") == nil {
		if _, err := b.negotiationIQ(c, lg, "<iq type='set' id='sess-"+stanza.NewID()+"'><session xmlns='"+stanza.NSSession+"'/></iq>"); err != nil {
			return fmt.Errorf("session: %w", err)
		}
	}
	if !sm {
		return nil
	}
	return b.enable(c, lg)
}

// enable asks for Stream Management with resumption.
func (b *Bot) enable(c *conn, lg *login) error {
	if err := c.write([]byte("<enable xmlns='"+nsSM+"' resume='true'/>"), b.acct.Timeout); err != nil {
		return err
	}
	el, err := b.await(c, lg, func(el *xmlstream.Element) bool { return el.Space == nsSM })
	if err != nil {
		return err
	}
	if el.Local == "enabled" {
		enabled(c, el, lg)
	} else {
		b.log.Warn("the server did not enable Stream Management", "answer", el.Local)
	}
	return nil
}

// bind binds resource ("" lets the server choose) and returns the full
// JID.
func (b *Bot) bind(c *conn, lg *login, resource string) (string, error) {
	inner := ""
	if resource != "" {
		inner = "<resource>" + string(xmlstream.AppendEscapedText(nil, resource)) + "</resource>"
	}
	res, err := b.negotiationIQ(c, lg, "<iq type='set' id='bind-"+stanza.NewID()+"'><bind xmlns='"+stanza.NSBind+"'>"+inner+"</bind></iq>")
	if err != nil {
		return "", err
	}
	if bd := res.Child(stanza.NSBind, "bind"); bd != nil {
		if j := bd.Child(stanza.NSBind, "jid"); j != nil {
			if full, err := jid.Parse(strings.TrimSpace(j.Text())); err == nil && full.Resource() != "" {
				return full.String(), nil
			}
		}
	}
	return "", errors.New("bind: no JID in the result")
}

// negotiationIQ sends an IQ request during negotiation and returns its
// result; an error result is an *Error.
func (b *Bot) negotiationIQ(c *conn, lg *login, iq string) (*xmlstream.Element, error) {
	req, err := xmlstream.ParseStanza([]byte(iq), nsClient)
	if err != nil {
		return nil, err
	}
	id := req.Attr("id")
	if err := c.write([]byte(iq), b.acct.Timeout); err != nil {
		return nil, err
	}
	el, err := b.await(c, lg, func(el *xmlstream.Element) bool {
		t := el.Attr("type")
		return el.Local == stanza.IQ && el.Attr("id") == id && (t == "result" || t == "error")
	})
	if err != nil {
		return nil, err
	}
	if el.Attr("type") == "error" {
		return nil, parseError(el)
	}
	return el, nil
}

// await reads until an element match accepts; stanzas on the way are
// kept for the handlers, other elements skipped.
func (b *Bot) await(c *conn, lg *login, match func(*xmlstream.Element) bool) (*xmlstream.Element, error) {
	for range 1000 {
		el, err := c.next()
		if err != nil {
			return nil, err
		}
		if match(el) {
			return el, nil
		}
		if isStanza(el) {
			lg.stash = append(lg.stash, stashed{el: el, counted: c.sm})
		}
	}
	return nil, errors.New("no answer during negotiation")
}

// isStanza reports whether el is a message, presence or IQ.
func isStanza(el *xmlstream.Element) bool {
	if el.Space != nsClient {
		return false
	}
	return el.Local == stanza.Message || el.Local == stanza.Presence || el.Local == stanza.IQ
}

// usableToken returns the stored FAST token if this connection can use
// it: the server offers its mechanism and the token has not expired.
func (b *Bot) usableToken(ctx context.Context, off Offered, c *conn) *Token {
	if !off.FAST {
		return nil
	}
	t, err := b.acct.Tokens.LoadToken(ctx, b.tokenKey())
	if err != nil {
		b.log.Warn("loading the FAST token", "err", err)
		return nil
	}
	if t == nil || !slices.Contains(off.FASTMechanisms, t.Mechanism) || (!t.Expiry.IsZero() && time.Now().After(t.Expiry)) {
		return nil
	}
	if _, err := htBinding(t.Mechanism, c.tls); err != nil {
		return nil
	}
	return t
}

// keepToken stores a token the server issued: for the mechanism the bot
// asked for, or the one it used when the server rotates a token unasked.
func (b *Bot) keepToken(ctx context.Context, t *xmlstream.Element, requested, used string) {
	mech := requested
	if strings.HasPrefix(used, "HT-") {
		mech = used
	}
	if mech == "" || t.Attr("token") == "" {
		return
	}
	tok := &Token{Mechanism: mech, Secret: t.Attr("token")}
	if exp, err := time.Parse(time.RFC3339, t.Attr("expiry")); err == nil {
		tok.Expiry = exp
	}
	if err := b.acct.Tokens.StoreToken(ctx, b.tokenKey(), tok); err != nil {
		b.log.Warn("storing the FAST token", "err", err)
	}
}

// tokenKey names the bot's token in the TokenStore.
func (b *Bot) tokenKey() string {
	return b.acct.bare.String() + "/" + b.agent
}
