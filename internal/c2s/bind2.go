package c2s

import (
	"context"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// bind2 binds a resource as the Bind 2 request b asks (XEP-0386), enables
// what it lists (Stream Management, carbons, the CSI state), and writes
// what answer makes of the <bound/> element. Until that is out the
// session has no transport: what reaches it meanwhile waits, so that
// nothing precedes <success/>.
func (c *conn) bind2(ctx context.Context, b *xmlstream.Element, agent string, answer func(bound string) []byte) bool {
	full := c.bind2JID(b, agent)
	s := newSession(c, full)
	s.cur, s.attaching = nil, true
	var inner strings.Builder
	inner.WriteString("<bound xmlns='" + nsBind2 + "'>")
	if e := b.Child(nsSM, "enable"); e != nil {
		s.mu.Lock()
		inner.WriteString(s.enableLocked(e))
		s.mu.Unlock()
	}
	if !c.claimSession(s) {
		if s.id != "" {
			c.srv.forgetResumable(s.id, s)
		}
		c.fail("policy-violation", TooManySessions)
		return false
	}
	if err := c.sm.Bind(ctx, s); err != nil {
		c.srv.releaseSession(s)
		if s.id != "" {
			c.srv.forgetResumable(s.id, s)
		}
		c.srv.log.Warn("bind2", "jid", full.String(), "err", err)
		c.fail("internal-server-error", "resource binding failed")
		return false
	}
	c.full, c.sess = full, s
	c.srv.deps.metrics().SessionBound()
	if b.Child(nsCarbons, "enable") != nil {
		c.enableCarbons(ctx, s)
	}
	if b.Child(nsCSI, "inactive") != nil {
		c.setInactive(true)
	}
	inner.WriteString("</bound>")

	s.mu.Lock()
	if s.ending || s.closing {
		// Another session took the resource over meanwhile.
		s.mu.Unlock()
		c.fail("conflict", "")
		return false
	}
	s.attaching, s.cur = false, c
	out := answer(inner.String())
	for _, e := range s.early {
		out = append(out, e...)
	}
	s.early = nil
	for _, u := range s.unacked {
		out = append(out, u.data...)
	}
	err := c.write(out)
	s.mu.Unlock()
	c.srv.log.Debug("bound", "jid", full.String(), "bind2", true)
	c.bound()
	return err == nil
}

// bind2JID chooses the resource: the client's tag, '/', and a part that is
// the same for every login of the same user-agent (so that a reconnecting
// client takes its old session's place) without revealing its id, as
// XEP-0386 recommends. A client without a user-agent id gets a random one.
func (c *conn) bind2JID(b *xmlstream.Element, agent string) jid.JID {
	id := stanza.NewID()
	if agent != "" {
		id = c.srv.deps.Auth.Pseudonym(c.user.String(), agent)
	}
	if t := b.Child(nsBind2, "tag"); t != nil {
		if tag := strings.TrimSpace(t.Text()); tag != "" && len(tag) <= 64 {
			if full, err := c.user.WithResource(tag + "/" + id); err == nil {
				return full
			}
		}
	}
	// A tag that makes no valid resource is dropped rather than refused:
	// it only labels the client.
	full, err := c.user.WithResource(id)
	if err != nil {
		full, _ = c.user.WithResource(stanza.NewID())
	}
	return full
}

// enableCarbons turns Message Carbons on for s through the session
// manager, which owns them, with the request the client would have sent;
// its answer is for nobody.
func (c *conn) enableCarbons(ctx context.Context, s *session) {
	id := "bind2-carbons-" + stanza.NewID()
	iq := xmlstream.NewElement(xmlstream.NSClient, stanza.IQ)
	iq.SetAttr("type", "set")
	iq.SetAttr("id", id)
	iq.SetAttr("from", s.full.String())
	iq.AddChild(xmlstream.NewElement(nsCarbons, "enable"))
	s.mu.Lock()
	s.swallow = id
	s.mu.Unlock()
	s.sm.HandleFromSession(ctx, s, router.Stanza{El: iq, From: s.full})
}
