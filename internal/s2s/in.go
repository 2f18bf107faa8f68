package s2s

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/limit"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// inStream is one incoming server stream. Its goroutine reads and
// negotiates; dialback checks run beside it and answer through the
// shared writer.
type inStream struct {
	svc *Service
	c   *xconn

	// Reading goroutine only.
	from, to string // of the current stream header
	id       string
	opened   bool   // our header is sent
	sasl     bool   // authenticated by SASL: no second one
	smOn     bool   // stream management acknowledgements enabled
	handled  uint32 // stanzas taken since stream management was enabled, for <a h/>

	ticket  *limit.Ticket // its place in the connection limits
	refused string        // why the limits refused it, "" if admitted

	mu      sync.Mutex
	authed  map[pair]string // (local, remote) pairs the peer may use, with how it proved it
	closing bool
	pending int // dialback checks running
	wg      sync.WaitGroup
}

func newInStream(s *Service, nc net.Conn) *inStream {
	in := &inStream{svc: s, c: newXConn(nc, s.cfg.Limits), authed: make(map[pair]string)}
	s.shape(in.c)
	if s.conns != nil {
		in.ticket, in.refused = s.conns.Admit(limit.AddrOf(nc.RemoteAddr()))
		in.ticket.OnEvict(func() { go in.close("policy-violation") })
	}
	return in
}

// refuse closes a stream the limits refused, before reading anything: the
// peer tries again later, as after any failed connection.
func (in *inStream) refuse() {
	in.svc.metrics.LimitHit("s2s", in.refused)
	in.svc.refusals.log(in.svc.log, in.c.nc.RemoteAddr().String(), in.refused)
	in.c.nc.Close()
}

// close ends the stream from another goroutine.
func (in *inStream) close(cond string) {
	in.mu.Lock()
	if in.closing {
		in.mu.Unlock()
		return
	}
	in.closing = true
	in.mu.Unlock()
	in.c.fail(nil, cond, "")
}

// fail ends the stream from the reading goroutine with a stream error.
func (in *inStream) fail(cond, text string) {
	in.mu.Lock()
	if in.closing {
		in.mu.Unlock()
		return
	}
	in.closing = true
	in.mu.Unlock()
	var h []byte
	if !in.opened {
		h = streamHeader("", "", stanza.NewID())
	}
	in.c.fail(h, cond, text)
}

func (in *inStream) isAuthed() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.authed) > 0
}

// serve runs the stream until it ends.
func (in *inStream) serve(ctx context.Context, directTLS bool) {
	remote := in.c.nc.RemoteAddr().String()
	in.svc.metrics.S2SStreamUp(true)
	defer func() {
		in.ticket.Release()
		in.svc.metrics.S2SStreamDown(true)
		in.wg.Wait()
		in.c.nc.Close()
		in.c.p.Reset()
	}()
	// The negotiation must finish in time; afterwards the peer may stay
	// silent for as long as its own idle timeout allows.
	_ = in.c.nc.SetReadDeadline(time.Now().Add(in.svc.cfg.ConnectTimeout))
	if directTLS {
		t := tls.Server(in.c.nc, in.tlsConfig(true))
		if err := t.HandshakeContext(ctx); err != nil {
			in.svc.log.Debug("tls handshake", "remote", remote, "err", err)
			return
		}
		in.c.upgrade(t)
	}
	for {
		ev, err := in.c.next()
		if err != nil {
			var xe *xmlstream.Error
			switch {
			case errors.As(err, &xe):
				if xe.Condition == xmlstream.CondPolicyViolation {
					in.svc.metrics.LimitHit("s2s", xe.Msg)
					in.svc.log.Info("stream closed by a limit", "remote", remote, "from", in.from, "reason", xe.Msg)
				}
				in.fail(xe.Condition, xe.Msg)
			case errors.Is(err, os.ErrDeadlineExceeded):
				if !in.isAuthed() {
					in.svc.log.Info("incoming stream negotiation timed out", "remote", remote, "from", in.from)
				}
				in.fail("connection-timeout", "")
			default:
				in.fail("", "")
			}
			return
		}
		switch ev.Kind {
		case xmlstream.EventStreamStart:
			if !in.streamStart(ev.Elem) {
				return
			}
		case xmlstream.EventStreamEnd:
			in.fail("", "")
			return
		case xmlstream.EventElement:
			if !in.element(ctx, ev.Elem) {
				return
			}
		}
		if in.isAuthed() {
			in.ticket.Authenticated()
			_ = in.c.nc.SetReadDeadline(time.Now().Add(2 * in.svc.cfg.IdleTimeout))
		}
	}
}

// tlsConfig is the server TLS configuration for this stream.
func (in *inStream) tlsConfig(direct bool) *tls.Config {
	c := in.svc.serverTLS.Clone()
	if direct {
		c.NextProtos = []string{"xmpp-server"}
	}
	return c
}

// streamStart answers a stream header with ours and the features.
func (in *inStream) streamStart(h *xmlstream.Element) bool {
	in.id = stanza.NewID()
	if h.Space != xmlstream.NSStream || h.Local != "stream" || in.c.p.DefaultNS() != xmlstream.NSServer {
		in.fail("invalid-namespace", "")
		return false
	}
	to, err := domainOf(h.Attr("to"))
	if err != nil || !in.svc.isLocal(to) {
		in.fail("host-unknown", "")
		return false
	}
	in.to = to
	in.from = ""
	if f := h.Attr("from"); f != "" {
		if in.from, err = domainOf(f); err != nil {
			in.fail("invalid-from", "")
			return false
		}
	}
	b := streamHeader(in.to, in.from, in.id)
	in.opened = true
	b = append(b, "<stream:features>"...)
	switch {
	case in.c.tls == nil:
		b = append(b, "<starttls xmlns='"+stanza.NSTLS+"'><required/></starttls>"...)
	case !in.sasl:
		if in.from != "" && in.svc.validFor(in.c.tls.ConnectionState().PeerCertificates, in.from) {
			b = append(b, "<mechanisms xmlns='"+stanza.NSSASL+"'><mechanism>EXTERNAL</mechanism></mechanisms>"...)
		}
		b = append(b, "<dialback xmlns='"+nsDialbackFeature+"'><errors/></dialback>"...)
		b = append(b, smFeature...)
	default:
		b = append(b, smFeature...)
	}
	b = append(b, "</stream:features>"...)
	if err := in.c.write(b); err != nil {
		in.fail("", "")
		return false
	}
	return true
}

// element handles one top-level element; false ends the stream.
func (in *inStream) element(ctx context.Context, el *xmlstream.Element) bool {
	switch {
	case el.Space == stanza.NSTLS && el.Local == "starttls":
		return in.startTLS()
	case el.Space == stanza.NSSASL && el.Local == "auth":
		return in.saslExternal(el)
	case el.Space == NSDialback:
		return in.dialback(ctx, el)
	case el.Space == NSSM:
		return in.streamManagement(el)
	case el.Space == xmlstream.NSServer && (el.Local == stanza.Message || el.Local == stanza.Presence || el.Local == stanza.IQ):
		return in.stanza(ctx, el)
	}
	in.fail("unsupported-stanza-type", "")
	return false
}

func (in *inStream) startTLS() bool {
	if in.c.tls != nil {
		in.fail("policy-violation", "TLS is already up")
		return false
	}
	if err := in.c.write([]byte("<proceed xmlns='" + stanza.NSTLS + "'/>")); err != nil {
		return false
	}
	t := tls.Server(in.c.nc, in.tlsConfig(false))
	if err := t.Handshake(); err != nil {
		in.svc.log.Debug("starttls handshake", "remote", in.c.nc.RemoteAddr().String(), "err", err)
		return false
	}
	in.c.upgrade(t)
	in.opened = false
	return true
}

// saslExternal authenticates the peer's domain by its certificate
// (XEP-0178).
func (in *inStream) saslExternal(el *xmlstream.Element) bool {
	failure := func(cond string) bool {
		if err := in.c.write([]byte("<failure xmlns='" + stanza.NSSASL + "'><" + cond + "/></failure>")); err != nil {
			return false
		}
		return true
	}
	if in.c.tls == nil || in.sasl {
		in.fail("policy-violation", "")
		return false
	}
	if el.Attr("mechanism") != "EXTERNAL" {
		return failure("invalid-mechanism")
	}
	authz := ""
	if t := el.Text(); t != "" && t != "=" {
		b, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			return failure("incorrect-encoding")
		}
		if authz, err = domainOf(string(b)); err != nil {
			return failure("invalid-authzid")
		}
	}
	domain := in.from
	if authz != "" {
		if domain != "" && authz != domain {
			return failure("invalid-authzid")
		}
		domain = authz
	}
	if domain == "" || in.svc.isLocal(domain) || !in.svc.validFor(in.c.tls.ConnectionState().PeerCertificates, domain) {
		in.svc.log.Info("incoming SASL EXTERNAL refused", "from", domain, "remote", in.c.nc.RemoteAddr().String())
		in.svc.metrics.S2SAuth(MethodSASLExternal, true, false)
		return failure("not-authorized")
	}
	if err := in.c.write([]byte("<success xmlns='" + stanza.NSSASL + "'/>")); err != nil {
		return false
	}
	in.mu.Lock()
	in.authed[pair{in.to, domain}] = MethodSASLExternal
	in.mu.Unlock()
	in.sasl = true
	in.opened = false
	in.c.p.Reset()
	in.svc.log.Info("incoming stream authenticated", "from", domain, "to", in.to, "auth", MethodSASLExternal)
	in.svc.metrics.S2SAuth(MethodSASLExternal, true, true)
	return true
}

// dialback handles db:result (we receive) and db:verify (we are the
// authoritative server).
func (in *inStream) dialback(ctx context.Context, el *xmlstream.Element) bool {
	d, err := parseDialback(el)
	if err != nil {
		in.fail("invalid-xml", err.Error())
		return false
	}
	if d.Type != "" {
		// Answers only travel on streams we opened.
		in.fail("unsupported-stanza-type", "")
		return false
	}
	if !in.svc.isLocal(d.To) {
		in.fail("host-unknown", "")
		return false
	}
	if d.Verify {
		typ := "invalid"
		if checkKey(in.svc.cfg.Secret, d.From, d.To, d.ID, d.Key) {
			typ = "valid"
		}
		return in.c.write(dbXML(true, d.To, d.From, d.ID, typ, "")) == nil
	}
	if in.c.tls == nil {
		in.fail("policy-violation", "TLS is required")
		return false
	}
	if in.svc.isLocal(d.From) {
		in.fail("invalid-from", "")
		return false
	}
	peer := in.c.tls.ConnectionState().PeerCertificates
	in.mu.Lock()
	in.pending++
	in.mu.Unlock()
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		ok := in.svc.validFor(peer, d.From)
		how := "certificate"
		if !ok {
			how = "db:verify"
			var err error
			ok, err = in.svc.verifyKey(ctx, d.To, d.From, in.id, d.Key)
			if err != nil {
				in.svc.log.Info("dialback verification failed", "from", d.From, "err", err)
			}
		}
		in.mu.Lock()
		in.pending--
		if ok {
			in.authed[pair{d.To, d.From}] = MethodDialback
		}
		any := len(in.authed) > 0 || in.pending > 0
		closing := in.closing
		in.mu.Unlock()
		in.svc.metrics.S2SAuth(MethodDialback, true, ok)
		if closing {
			return
		}
		if ok {
			in.svc.log.Info("incoming stream authenticated", "from", d.From, "to", d.To, "auth", MethodDialback, "by", how)
			_ = in.c.write(dbXML(false, d.To, d.From, "", "valid", ""))
			return
		}
		in.svc.log.Warn("incoming dialback refused", "from", d.From, "to", d.To, "remote", in.c.nc.RemoteAddr().String())
		_ = in.c.write(dbXML(false, d.To, d.From, "", "invalid", ""))
		if !any {
			in.close("not-authorized")
		}
	}()
	return true
}

// stanza checks a stanza's addresses against the authenticated domain
// pairs and routes it.
func (in *inStream) stanza(ctx context.Context, el *xmlstream.Element) bool {
	fromAttr, toAttr := el.Attr("from"), el.Attr("to")
	if fromAttr == "" || toAttr == "" {
		in.fail("improper-addressing", "")
		return false
	}
	from, err := jid.Parse(fromAttr)
	if err != nil {
		in.fail("invalid-from", "")
		return false
	}
	to, err := jid.Parse(toAttr)
	if err != nil {
		in.fail("improper-addressing", "")
		return false
	}
	in.mu.Lock()
	ok := in.authed[pair{to.Domain(), from.Domain()}] != ""
	anyTo := false
	for k := range in.authed {
		if k.local == to.Domain() {
			anyTo = true
		}
	}
	in.mu.Unlock()
	if !ok {
		cond := "invalid-from"
		if !anyTo && !in.svc.isLocal(to.Domain()) {
			cond = "host-unknown"
		}
		in.svc.log.Warn("stanza outside the authenticated domains", "from", fromAttr, "to", toAttr, "error", cond)
		in.fail(cond, "")
		return false
	}
	if s := from.String(); s != fromAttr {
		el.SetAttr("from", s)
	}
	in.svc.router.Route(ctx, router.Stanza{El: el, From: from, To: to})
	in.handled++
	return true
}

// streamManagement answers XEP-0198 requests: acknowledgements only, as
// the peer's outgoing side resends what was not acknowledged on a new
// stream.
func (in *inStream) streamManagement(el *xmlstream.Element) bool {
	switch el.Local {
	case "enable":
		if in.smOn || !in.isAuthed() {
			return in.c.write(smNotAuthd) == nil
		}
		in.smOn = true
		// XEP-0198 §4: the count starts at enable. A peer may send
		// stanzas before it enables acknowledgements (Prosody does when
		// stanzas wait for the stream): counting those too would
		// acknowledge more than the peer has sent since, which it takes
		// as a broken stream.
		in.handled = 0
		in.svc.log.Debug("incoming stream management enabled", "from", in.from, "to", in.to)
		return in.c.write(smEnabled) == nil
	case "r":
		if !in.smOn {
			in.fail("unsupported-stanza-type", "stream management is not enabled")
			return false
		}
		return in.c.write(ackXML(in.handled)) == nil
	case "a":
		// Nothing is sent on an incoming stream.
		return true
	}
	in.fail("unsupported-stanza-type", "")
	return false
}
