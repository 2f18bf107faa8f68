package link

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Operations of a <fast/> request: one per method of storage.FastTokens.
const (
	fastAdd    = "add"
	fastGet    = "get"
	fastUse    = "use"
	fastDelete = "delete"
)

// maxAgentLen bounds a user-agent id on the wire; XEP-0388 ids are UUIDs.
const maxAgentLen = 1023

// FastTokens returns the FAST token store (XEP-0484) of the client edge:
// every operation is answered by the service instance that owns the
// user, from its own store. The store decides, so a token's count is
// checked once for all gateways, and a token issued through one gateway
// logs in through any other.
func (g *Gateway) FastTokens() storage.FastTokens { return gatewayTokens{g} }

// gatewayTokens forwards storage.FastTokens over the links.
type gatewayTokens struct{ g *Gateway }

var _ storage.FastTokens = gatewayTokens{}

// AddFastToken implements storage.FastTokens.
func (gt gatewayTokens) AddFastToken(ctx context.Context, t storage.FastToken) error {
	_, err := gt.ask(ctx, t.User, "op", fastAdd, "agent", t.Agent, "mechanism", t.Mechanism,
		"hash", base64.StdEncoding.EncodeToString(t.Hash), "expiry", t.Expiry.UTC().Format(time.RFC3339Nano))
	return err
}

// FastTokens implements storage.FastTokens.
func (gt gatewayTokens) FastTokens(ctx context.Context, user, agent string) ([]storage.FastToken, error) {
	el, err := gt.ask(ctx, user, "op", fastGet, "agent", agent)
	if err != nil {
		return nil, err
	}
	return parseTokens(el, user, agent)
}

// UseFastToken implements storage.FastTokens.
func (gt gatewayTokens) UseFastToken(ctx context.Context, user, agent string, hash []byte, count uint64) error {
	_, err := gt.ask(ctx, user, "op", fastUse, "agent", agent,
		"hash", base64.StdEncoding.EncodeToString(hash), "count", strconv.FormatUint(count, 10))
	return err
}

// DeleteFastTokens implements storage.FastTokens.
func (gt gatewayTokens) DeleteFastTokens(ctx context.Context, user, agent string) error {
	_, err := gt.ask(ctx, user, "op", fastDelete, "agent", agent)
	return err
}

// ask sends one <fast/> request about user's tokens and returns the
// answer, or the storage error it carries.
func (gt gatewayTokens) ask(ctx context.Context, user string, attrs ...string) (*xmlstream.Element, error) {
	rm := gt.g.remote(domainOf(user))
	if rm == nil || rm.kind != "sm" {
		return nil, storage.ErrNotFound
	}
	el, err := gt.g.ask(ctx, rm, user, func(id string) []byte {
		return frame("fast", nil, append([]string{"id", id, "user", user}, attrs...)...)
	})
	if err != nil {
		return nil, err
	}
	return el, fastError(el.Attr("error"))
}

// fastError maps the error condition of a <fast-result/> to the storage
// error the client edge expects.
func fastError(cond string) error {
	switch cond {
	case "":
		return nil
	case stanza.ItemNotFound:
		return storage.ErrNotFound
	case stanza.Conflict:
		return storage.ErrReplay
	}
	return errors.New("gateway: fast token request: " + cond)
}

// fastCondition is the error condition of a <fast-result/> for the
// store's err.
func fastCondition(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, storage.ErrNotFound):
		return stanza.ItemNotFound
	case errors.Is(err, storage.ErrReplay):
		return stanza.Conflict
	}
	return stanza.InternalServerError
}

// tokenElement is one token of a <fast-result/>.
func tokenElement(t storage.FastToken) *xmlstream.Element {
	el := xmlstream.NewElement(NS, "token")
	el.SetAttr("mechanism", t.Mechanism)
	el.SetAttr("hash", base64.StdEncoding.EncodeToString(t.Hash))
	el.SetAttr("expiry", t.Expiry.UTC().Format(time.RFC3339Nano))
	el.SetAttr("count", strconv.FormatUint(t.Count, 10))
	return el
}

// parseTokens reads the tokens of a <fast-result/> answering a get for
// user's agent.
func parseTokens(el *xmlstream.Element, user, agent string) ([]storage.FastToken, error) {
	var out []storage.FastToken
	for _, c := range el.Children() {
		if c.Space != NS || c.Local != "token" {
			continue
		}
		t := storage.FastToken{User: user, Agent: agent, Mechanism: c.Attr("mechanism")}
		var err error
		if t.Hash, err = base64.StdEncoding.DecodeString(c.Attr("hash")); err != nil || len(t.Hash) == 0 {
			return nil, errors.New("gateway: bad FAST token hash")
		}
		if t.Expiry, err = time.Parse(time.RFC3339Nano, c.Attr("expiry")); err != nil {
			return nil, errors.New("gateway: bad FAST token expiry")
		}
		if t.Count, err = strconv.ParseUint(c.Attr("count"), 10, 64); err != nil {
			return nil, errors.New("gateway: bad FAST token count")
		}
		if t.Mechanism == "" {
			return nil, errors.New("gateway: FAST token without a mechanism")
		}
		out = append(out, t)
	}
	return out, nil
}

// fastRequest is a gateway's <fast/> request, checked.
type fastRequest struct {
	op, user, agent string
	token           storage.FastToken // add: the token; use: Hash and Count
}

// parseFastRequest checks a <fast/> request; the error is the condition
// to answer with.
func parseFastRequest(el *xmlstream.Element) (fastRequest, string) {
	r := fastRequest{op: el.Attr("op"), agent: el.Attr("agent")}
	u, err := jid.Parse(el.Attr("user"))
	if err != nil || u.Local() == "" || u.Resource() != "" {
		return r, stanza.ItemNotFound
	}
	r.user = u.String()
	if len(r.agent) > maxAgentLen || (r.agent == "" && r.op != fastDelete) {
		return r, stanza.BadRequest
	}
	hash := func() bool {
		b, err := base64.StdEncoding.DecodeString(el.Attr("hash"))
		r.token.Hash = b
		return err == nil && len(b) == sha256.Size
	}
	switch r.op {
	case fastGet, fastDelete:
	case fastAdd:
		r.token.User, r.token.Agent, r.token.Mechanism = r.user, r.agent, el.Attr("mechanism")
		if r.token.Expiry, err = time.Parse(time.RFC3339Nano, el.Attr("expiry")); err != nil ||
			!strings.HasPrefix(r.token.Mechanism, "HT-") || len(r.token.Mechanism) > 64 || !hash() {
			return r, stanza.BadRequest
		}
	case fastUse:
		// Counts stay below 2^63 so that every backend can store them.
		if r.token.Count, err = strconv.ParseUint(el.Attr("count"), 10, 63); err != nil || !hash() {
			return r, stanza.BadRequest
		}
	default:
		return r, stanza.BadRequest
	}
	return r, ""
}

// fast answers a gateway's <fast/> request from the service's token
// store.
func (l *slink) fast(ctx context.Context, el *xmlstream.Element) {
	res := xmlstream.NewElement(NS, "fast-result")
	res.SetAttr("id", el.Attr("id"))
	r, cond := parseFastRequest(el)
	tokens := l.s.deps.Tokens
	if cond == "" {
		if _, ok := l.s.bound[domainOf(r.user)]; !ok {
			cond = stanza.ItemNotFound
		} else if tokens == nil {
			cond = stanza.ServiceUnavailable
		}
	}
	if cond == "" {
		var err error
		switch r.op {
		case fastAdd:
			err = tokens.AddFastToken(ctx, r.token)
		case fastGet:
			var ts []storage.FastToken
			ts, err = tokens.FastTokens(ctx, r.user, r.agent)
			for _, t := range ts {
				res.AddChild(tokenElement(t))
			}
		case fastUse:
			err = tokens.UseFastToken(ctx, r.user, r.agent, r.token.Hash, r.token.Count)
		case fastDelete:
			err = tokens.DeleteFastTokens(ctx, r.user, r.agent)
		}
		cond = fastCondition(err)
		if cond == stanza.InternalServerError {
			l.s.log.Warn("fast tokens", "op", r.op, "user", r.user, "err", err)
		}
	}
	if cond != "" {
		res.SetAttr("error", cond)
	}
	l.mu.Lock()
	c := l.c
	l.mu.Unlock()
	if c != nil {
		c.enqueueUrgent(res.AppendXML(nil, NS))
	}
}
