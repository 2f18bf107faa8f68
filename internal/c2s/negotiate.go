package c2s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// process handles every complete event the parser holds. It reports false
// when the connection is finished.
func (c *conn) process(ctx context.Context) bool {
	for {
		ev, err := c.parser.Next()
		if errors.Is(err, xmlstream.ErrNeedMore) {
			if c.ws != nil && c.ws.r.err != nil {
				return c.wsFailed()
			}
			return true
		}
		if err != nil {
			var xe *xmlstream.Error
			if errors.As(err, &xe) {
				// The text names the limit or rule broken ("stanza too
				// large"), so that a client's developer learns why.
				if xe.Condition == xmlstream.CondPolicyViolation {
					c.srv.deps.metrics().LimitHit("c2s", xe.Msg)
					c.srv.log.Info("stream closed by a limit", "remote", c.raw.RemoteAddr().String(), "user", c.user.String(), "reason", xe.Msg)
				}
				c.fail(xe.Condition, xe.Msg)
			} else {
				c.fail("not-well-formed", "")
			}
			return false
		}
		switch ev.Kind {
		case xmlstream.EventStreamStart:
			if !c.streamStart(ev.Elem) {
				return false
			}
		case xmlstream.EventStreamEnd:
			c.closeStream("", "", "")
			return false
		case xmlstream.EventElement:
			if !c.element(ctx, ev.Elem) {
				return false
			}
		}
	}
}

// streamStart answers a stream header with ours and the features of the
// current state.
func (c *conn) streamStart(h *xmlstream.Element) bool {
	if h.Space != xmlstream.NSStream || h.Local != "stream" {
		c.writeHeader("")
		c.fail("invalid-namespace", "")
		return false
	}
	to := h.Attr("to")
	if c.domain == "" {
		d, err := jid.Parse(to)
		if err == nil {
			if sm, ok := c.srv.deps.Router.SessionManager(d.Domain()); ok && d.IsBare() && d.Local() == "" {
				c.domain, c.sm = d.Domain(), sm
			}
		}
		if c.domain == "" {
			c.writeHeader("")
			c.fail("host-unknown", "")
			return false
		}
	} else if to != "" {
		// A restart (after STARTTLS or authentication) stays with the
		// domain the stream began with: the credentials were checked for
		// that one, and TLS presented its certificate.
		if d, err := jid.Parse(to); err != nil || d.Domain() != c.domain || d.Local() != "" || !d.IsBare() {
			c.writeHeader("")
			c.fail("host-unknown", "a restarted stream must be to "+c.domain)
			return false
		}
	}
	if h.Attr("version") != "1.0" {
		c.writeHeader(h.Attr("from"))
		c.fail("unsupported-version", "")
		return false
	}
	// The header and the features go out in one write: one system call
	// (and one TLS record) fewer per stream, three per login with
	// STARTTLS. They are built in a pooled buffer: a login's two streams
	// allocated a quarter of its bytes here, which the collector then
	// paid for.
	bp := c.srv.writePool.Get().(*[]byte)
	f := c.appendHeader((*bp)[:0], h.Attr("from"))
	c.opened = true
	f = append(f, "<stream:features>"...)
	switch c.state {
	case stateStart, stateTLS, stateAuth:
		if c.tls == nil && c.srv.deps.TLS != nil && c.virt == nil && c.ws == nil {
			f = append(f, "<starttls xmlns='"+stanza.NSTLS+"'>"...)
			if !c.srv.cfg.AllowPlain {
				f = append(f, "<required/>"...)
			}
			f = append(f, "</starttls>"...)
		}
		// A WebSocket is encrypted, or was let in as coming through a
		// proxy that terminated TLS; a virtual connection's carrier
		// (BOSH) was checked the same way.
		if c.tls != nil || c.ws != nil || c.virt != nil || c.srv.cfg.AllowPlain || c.srv.deps.TLS == nil {
			c.state = stateAuth
			ti := c.tlsInfo()
			if c.registrationOpen() {
				f = append(f, "<register xmlns='http://jabber.org/features/iq-register'/>"...)
				if c.srv.deps.Invites != nil {
					f = append(f, "<register xmlns='"+nsInvite+"'/><register xmlns='"+nsIBRToken+"'/>"...)
				}
			}
			mechs := c.srv.deps.Auth.Mechanisms(ti)
			f = append(f, "<mechanisms xmlns='"+stanza.NSSASL+"'>"...)
			f = appendMechanisms(f, mechs)
			f = append(f, "</mechanisms>"...)
			if cbs := auth.ChannelBindings(ti); len(cbs) > 0 {
				f = append(f, "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>"...)
				for _, t := range cbs {
					f = append(f, "<channel-binding type='"+t+"'/>"...)
				}
				f = append(f, "</sasl-channel-binding>"...)
			}
			f = c.appendSASL2Features(f, mechs, ti)
		} else {
			c.state = stateTLS
		}
	case stateBind:
		f = append(f, "<bind xmlns='"+stanza.NSBind+"'/>"...)
		f = append(f, "<session xmlns='"+stanza.NSSession+"'><optional/></session>"...)
		f = append(f, "<ver xmlns='urn:xmpp:features:rosterver'/>"...)
		f = append(f, "<csi xmlns='"+nsCSI+"'/>"...)
		f = append(f, "<sm xmlns='"+nsSM+"'/>"...)
	}
	f = append(f, "</stream:features>"...)
	ok := c.write(f) == nil
	if cap(f) <= 64<<10 {
		*bp = f[:0]
		c.srv.writePool.Put(bp)
	}
	return ok
}

// appendMechanisms appends a <mechanism/> element for each of mechs.
func appendMechanisms(f []byte, mechs []string) []byte {
	for _, m := range mechs {
		f = append(f, "<mechanism>"...)
		f = append(f, m...)
		f = append(f, "</mechanism>"...)
	}
	return f
}

func (c *conn) writeHeader(to string) {
	_ = c.write([]byte(c.header(to)))
	c.opened = true
}

// header returns our stream header, answering a client that said from=to.
func (c *conn) header(to string) string { return string(c.appendHeader(nil, to)) }

// appendHeader appends our stream header to b.
func (c *conn) appendHeader(b []byte, to string) []byte {
	b = append(b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en' id='"...)
	b = append(b, stanza.NewID()...)
	b = append(b, '\'')
	if c.domain != "" {
		b = append(b, " from='"...)
		b = append(b, c.domain...)
		b = append(b, '\'')
	}
	if to != "" {
		if j, err := jid.Parse(to); err == nil {
			b = append(b, " to='"...)
			b = xmlstream.AppendEscapedAttr(b, j.String())
			b = append(b, '\'')
		}
	}
	return append(b, '>')
}

// element handles one top-level element according to the state.
func (c *conn) element(ctx context.Context, el *xmlstream.Element) bool {
	switch c.state {
	case stateStart:
		c.fail("not-authorized", "")
		return false
	case stateTLS:
		if el.Space == stanza.NSTLS && el.Local == "starttls" {
			return c.handleStartTLS(ctx)
		}
		if el.Space == stanza.NSSASL && el.Local == "auth" {
			c.fail("policy-violation", "TLS is required")
			return false
		}
		c.fail("not-authorized", "")
		return false
	case stateAuth:
		if el.Space == stanza.NSTLS && el.Local == "starttls" && c.tls == nil && c.srv.deps.TLS != nil && c.virt == nil && c.ws == nil {
			return c.handleStartTLS(ctx)
		}
		if el.Space == stanza.NSSASL {
			return c.handleSASL(ctx, el)
		}
		if el.Space == nsSASL2 {
			return c.handleSASL2(ctx, el)
		}
		if el.Space == xmlstream.NSClient && el.Local == stanza.IQ && el.Child(nsRegister, "query") != nil {
			return c.handleRegister(ctx, el)
		}
		if el.Space == xmlstream.NSClient && el.Local == stanza.IQ && el.Child(nsPARS, "preauth") != nil {
			return c.handlePreauth(ctx, el)
		}
		c.fail("not-authorized", "")
		return false
	case stateBind:
		if el.Space == nsSASL2 || el.Space == stanza.NSSASL {
			c.fail("policy-violation", "already authenticated")
			return false
		}
		if el.Space == nsSM {
			return c.handleSMUnbound(ctx, el)
		}
		if el.Local == stanza.IQ && el.Space == xmlstream.NSClient {
			if b := el.Child(stanza.NSBind, "bind"); b != nil && el.Attr("type") == "set" {
				return c.handleBind(ctx, el, b)
			}
		}
		c.fail("not-authorized", "bind a resource first")
		return false
	case stateSession:
		if el.Space == nsSASL2 || el.Space == stanza.NSSASL {
			c.fail("policy-violation", "already authenticated")
			return false
		}
		return c.handleStanza(ctx, el)
	}
	return false
}

func (c *conn) handleStartTLS(ctx context.Context) bool {
	if err := c.write([]byte("<proceed xmlns='" + stanza.NSTLS + "'/>")); err != nil {
		return false
	}
	// TLS must not start before <proceed/> is on the wire.
	c.out.waitIdle(c.srv.cfg.WriteTimeout)
	// The handshake is the reader's next step (conn.run), which waits for
	// the ClientHello in the poller.
	c.hsDeadline = c.tlsDeadline()
	c.pendingTLS = true
	c.parser.Reset()
	c.state = stateStart
	return true
}

// startTLS puts TLS on the connection and completes the handshake.
func (c *conn) startTLS(ctx context.Context) error {
	c.rec = &recordConn{Conn: c.out, pool: &c.srv.readPool}
	c.rec.read = c.raw.Read
	t := tls.Server(c.rec, c.srv.deps.TLS)
	hctx, cancel := context.WithDeadline(ctx, c.tlsDeadline())
	defer cancel()
	if err := t.HandshakeContext(hctx); err != nil {
		return err
	}
	c.wmu.Lock()
	c.tls, c.nc = t, t
	c.wmu.Unlock()
	return nil
}

func (c *conn) handleSASL(ctx context.Context, el *xmlstream.Element) bool {
	switch el.Local {
	case "auth":
		c.mech = el.Attr("mechanism")
		if !c.loginGate("", false, false) {
			return false
		}
		x, err := c.srv.deps.Auth.Start(ctx, c.mech, c.domain, c.tlsInfo())
		if err != nil {
			return c.saslFailure(err)
		}
		c.sasl = x
		text := strings.TrimSpace(el.Text())
		if text == "" {
			// No initial response: ask for it with an empty challenge.
			return c.write([]byte("<challenge xmlns='"+stanza.NSSASL+"'/>")) == nil
		}
		return c.saslStep(ctx, text)
	case "response":
		if c.sasl == nil {
			return c.saslFailure(&auth.Failure{Condition: "malformed-request"})
		}
		return c.saslStep(ctx, strings.TrimSpace(el.Text()))
	case "abort":
		c.sasl = nil
		return c.write([]byte("<failure xmlns='"+stanza.NSSASL+"'><aborted/></failure>")) == nil
	}
	c.fail("unsupported-stanza-type", "")
	return false
}

func (c *conn) saslStep(ctx context.Context, text string) bool {
	var in []byte
	if text != "=" {
		var err error
		in, err = base64.StdEncoding.DecodeString(text)
		if err != nil {
			c.sasl = nil
			return c.saslFailure(&auth.Failure{Condition: "incorrect-encoding"})
		}
	}
	x := c.sasl
	out, done, err := x.Step(in)
	if done {
		c.tried = x.Attempted()
		if !c.loginGate(c.tried, false, true) {
			c.sasl = nil
			return false
		}
	}
	if err != nil {
		c.sasl = nil
		return c.saslFailure(err)
	}
	if !done {
		return c.write([]byte("<challenge xmlns='"+stanza.NSSASL+"'>"+base64.StdEncoding.EncodeToString(out)+"</challenge>")) == nil
	}
	c.user = c.sasl.User()
	c.sasl = nil
	s := "<success xmlns='" + stanza.NSSASL + "'"
	if len(out) > 0 {
		s += ">" + base64.StdEncoding.EncodeToString(out) + "</success>"
	} else {
		s += "/>"
	}
	if c.write([]byte(s)) != nil {
		return false
	}
	c.srv.log.Info("login", "user", c.user.String(), "remote", c.remote(), "mechanism", c.mech)
	c.srv.deps.metrics().ClientAuth(c.mech, true)
	c.parser.Reset()
	c.state = stateBind
	c.authenticated()
	return true
}

// saslFailure reports a failed attempt. Repeated failures on one connection
// are answered ever more slowly, and too many end the stream.
func (c *conn) saslFailure(err error) bool { return c.authFailure(err, false) }

// authFailure is saslFailure for either profile: sasl2 answers with the
// <failure/> of XEP-0388, which may carry a text.
func (c *conn) authFailure(err error, sasl2 bool) bool {
	c.srv.deps.metrics().ClientAuth(c.mech, false)
	if c.redirect != "" {
		c.fail("see-other-host="+c.redirect, "")
		return false
	}
	cond := "temporary-auth-failure"
	var f *auth.Failure
	if errors.As(err, &f) {
		cond = f.Condition
	} else {
		c.srv.log.Warn("authentication error", "err", err)
	}
	if f != nil && f.Checked {
		// The line operators and fail2ban look for (README).
		c.srv.log.Info("login failed", "remote", c.remote(), "user", c.tried, "mechanism", c.mech, "condition", cond)
		c.loginFailed()
	} else {
		c.srv.log.Debug("authentication failed", "remote", c.remote(), "err", err)
	}
	text := ""
	if f != nil && sasl2 {
		text = f.Text
	}
	if f == nil || !f.Checked {
		// Nothing was learned about credentials: answer at once and let the
		// client try another mechanism.
		return c.write([]byte(failureXML(cond, text, sasl2))) == nil
	}
	c.failures++
	if c.failures > 1 && c.srv.deps.Failures == nil {
		// Without the failures counted across connections, at least this
		// connection's are slowed down.
		time.Sleep(time.Duration(c.failures-1) * time.Second)
	}
	if c.write([]byte(failureXML(cond, text, sasl2))) != nil {
		return false
	}
	if int(c.failures) >= c.srv.cfg.MaxAuthFailures {
		c.fail("policy-violation", "too many failed authentication attempts")
		return false
	}
	return true
}

func (c *conn) handleBind(ctx context.Context, iq, b *xmlstream.Element) bool {
	res := ""
	if r := b.Child(stanza.NSBind, "resource"); r != nil {
		res = strings.TrimSpace(r.Text())
	}
	if res == "" {
		res = stanza.NewID()
	}
	full, err := c.user.WithResource(res)
	if err != nil {
		e := stanza.ErrorReply(iq, stanza.BadRequest, "")
		e.RemoveAttr("from")
		return c.write(e.AppendXML(nil, c.streamNS())) == nil
	}
	c.full = full
	c.sess = newSession(c, full)
	if !c.claimSession(c.sess) {
		c.sess = nil
		e := stanza.ErrorReply(iq, stanza.ResourceConstraint, TooManySessions)
		e.RemoveAttr("from")
		return c.write(e.AppendXML(nil, xmlstream.NSClient)) == nil
	}
	if err := c.sm.Bind(ctx, c.sess); err != nil {
		c.srv.releaseSession(c.sess)
		c.sess = nil
		e := stanza.ErrorReply(iq, stanza.NotAllowed, err.Error())
		e.RemoveAttr("from")
		return c.write(e.AppendXML(nil, c.streamNS())) == nil
	}
	c.srv.deps.metrics().SessionBound()
	c.bound()
	r := stanza.Result(iq)
	r.RemoveAttr("from")
	r.AddChild(xmlstream.NewElement(stanza.NSBind, "bind")).
		AddChild(xmlstream.NewElement(stanza.NSBind, "jid")).AddText(full.String())
	c.sess.Deliver(r)
	return true
}

// bound moves the connection to the session state, by binding or by
// resuming a session.
func (c *conn) bound() {
	c.state = stateSession
	c.setDeadline(c.srv.cfg.IdleTimeout)
	if c.srv.cfg.IdleTimeout <= 0 {
		_ = c.raw.SetReadDeadline(time.Time{})
	}
}

// handleStanza stamps a bound client's stanza with its true address and
// hands it to the session manager.
func (c *conn) handleStanza(ctx context.Context, el *xmlstream.Element) bool {
	if el.Space == nsCSI && (el.Local == "active" || el.Local == "inactive") {
		c.setInactive(el.Local == "inactive")
		return true
	}
	if el.Space == nsSM {
		return c.handleSM(el)
	}
	if el.Space != xmlstream.NSClient {
		c.fail("unsupported-stanza-type", "")
		return false
	}
	switch el.Local {
	case stanza.Message, stanza.Presence, stanza.IQ:
	default:
		c.fail("unsupported-stanza-type", "")
		return false
	}
	ok, n, counted := c.sess.received(c)
	if !ok {
		// Another connection resumed the session: this one is closing.
		return true
	}
	if counted {
		defer c.sess.release(n)
		ctx = c.sess.accept(ctx, n)
	}
	c.srv.deps.metrics().ClientStanza(el.Local)
	if el.Local == stanza.IQ && el.Attr("type") == "set" && el.Child(stanza.NSSession, "session") != nil && el.Attr("to") == "" {
		// RFC 3921 session establishment, kept for old clients: a no-op.
		r := stanza.Result(el)
		r.RemoveAttr("from")
		c.sess.Deliver(r)
		return true
	}
	// The answer to our idle ping ends here.
	if el.Local == stanza.IQ && el.Attr("type") == "result" && strings.HasPrefix(el.Attr("id"), "idle-") && (el.Attr("to") == "" || el.Attr("to") == c.domain) {
		return true
	}
	el.SetAttr("from", c.full.String())
	s := router.Stanza{El: el, From: c.full}
	if to := el.Attr("to"); to != "" {
		j, err := jid.Parse(to)
		if err != nil {
			if stanza.MayBounce(el) {
				e := stanza.ErrorReply(el, stanza.JIDMalformed, "")
				e.RemoveAttr("from")
				c.sess.Deliver(e)
			}
			return true
		}
		s.To = j
	}
	c.sess.sm.HandleFromSession(ctx, c.sess, s)
	return true
}

// tlsInfo describes the connection's TLS for channel binding; nil when the
// connection is not encrypted.
func (c *conn) tlsInfo() *auth.TLSInfo {
	if c.tls == nil {
		if c.virt != nil && c.virt.info.Secure {
			return &auth.TLSInfo{} // encrypted by the carrier, nothing to bind to
		}
		return nil
	}
	st := c.tls.ConnectionState()
	ti := &auth.TLSInfo{State: &st}
	if cert, err := c.srv.deps.TLS.GetCertificate(&tls.ClientHelloInfo{ServerName: st.ServerName}); err == nil && len(cert.Certificate) > 0 {
		ti.Leaf = cert.Leaf
		if ti.Leaf == nil {
			ti.Leaf, _ = x509.ParseCertificate(cert.Certificate[0])
		}
	}
	return ti
}
