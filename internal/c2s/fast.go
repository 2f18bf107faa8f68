package c2s

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/auth"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// fastTokenTTL is how long a FAST token (XEP-0484) lives. A login with a
// token past half of it gets a fresh one unasked, so that a client that
// logs in now and then never falls back to its password.
const fastTokenTTL = 14 * 24 * time.Hour

// newFastToken returns a random token. At 72 characters it is longer than
// SHA-256's block, so HMAC keys with its hash, which is all we store
// (auth.HTKey).
func newFastToken() string {
	var b [54]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// denied is a failed FAST login: it counts as a wrong password does.
func denied(text string) error {
	return &auth.Failure{Condition: "not-authorized", Text: text, Checked: true}
}

// fastAuthenticate logs in with an HT mechanism and a FAST token, in one
// step: in is the initial response, authcid NUL HMAC.
func (c *conn) fastAuthenticate(ctx context.Context, req *xmlstream.Element, mech, agent string, in []byte, hasIR bool) bool {
	tokens := c.srv.deps.Tokens
	ti := c.tlsInfo()
	if tokens == nil || !slices.Contains(auth.HTMechanisms(ti), mech) {
		return c.authFailure(&auth.Failure{Condition: "invalid-mechanism"}, true)
	}
	if !hasIR {
		return c.authFailure(&auth.Failure{Condition: "malformed-request", Text: "HT needs an initial response"}, true)
	}
	f := req.Child(nsFAST, "fast")
	if f == nil {
		return c.authFailure(&auth.Failure{Condition: "malformed-request", Text: "a token login needs <fast count='…'/>"}, true)
	}
	// Counts stay below 2^63 so that every backend can store them.
	count, err := strconv.ParseUint(f.Attr("count"), 10, 63)
	if err != nil {
		return c.authFailure(&auth.Failure{Condition: "malformed-request", Text: "bad FAST count"}, true)
	}
	name, mac, err := auth.ParseHTInitial(in)
	if err != nil {
		return c.authFailure(err, true)
	}
	cb, err := auth.HTBinding(mech, ti)
	if err != nil {
		return c.authFailure(err, true)
	}
	user, err := jid.New(name, c.domain, "")
	if err != nil || agent == "" {
		// A token is bound to a user-agent id: without one nothing matches.
		return c.authFailure(denied(""), true)
	}
	c.tried = user.String()
	// Only the address's failures hold a token back: a token cannot be
	// guessed, and a device holding one must get in even while guesses
	// from elsewhere have the account refusing passwords.
	if !c.loginGate("", true, true) {
		return false
	}
	ts, err := tokens.FastTokens(ctx, user.String(), agent)
	if err != nil {
		c.srv.log.Warn("fast tokens", "user", user.String(), "err", err)
		return c.authFailure(&auth.Failure{Condition: "temporary-auth-failure"}, true)
	}
	now := time.Now()
	var match *storage.FastToken
	for i := range ts {
		t := &ts[i]
		if t.Mechanism == mech && now.Before(t.Expiry) && auth.CheckHT(t.Hash, cb, mac) {
			match = t
			break
		}
	}
	if match == nil {
		return c.authFailure(denied(""), true)
	}
	switch err := tokens.UseFastToken(ctx, user.String(), agent, match.Hash, count); {
	case errors.Is(err, storage.ErrReplay):
		return c.authFailure(denied("FAST count not increased"), true)
	case errors.Is(err, storage.ErrNotFound):
		return c.authFailure(denied(""), true)
	case err != nil:
		c.srv.log.Warn("fast token use", "user", user.String(), "err", err)
		return c.authFailure(&auth.Failure{Condition: "temporary-auth-failure"}, true)
	}
	invalidate := f.Attr("invalidate") == "true" || f.Attr("invalidate") == "1"
	if invalidate {
		if err := tokens.DeleteFastTokens(ctx, user.String(), agent); err != nil {
			c.srv.log.Warn("fast token invalidate", "user", user.String(), "err", err)
		}
	}
	rotate := !invalidate && match.Expiry.Sub(now) < fastTokenTTL/2
	return c.sasl2Success(ctx, req, agent, user, auth.HTResponder(match.Hash, cb), mech, rotate)
}

// fastIssue issues a token if the <authenticate/> req asks for one, or
// rotate asks to replace the one of mechanism used, and returns its
// <token/> for <success/>; "" if there is none. Tokens need a user-agent
// id to be bound to: a request without one is ignored.
func (c *conn) fastIssue(ctx context.Context, req *xmlstream.Element, agent, used string, rotate bool) string {
	tokens := c.srv.deps.Tokens
	if tokens == nil || agent == "" {
		return ""
	}
	if f := req.Child(nsFAST, "fast"); f != nil && (f.Attr("invalidate") == "true" || f.Attr("invalidate") == "1") {
		// The client logs out of this token: it wants no other.
		return ""
	}
	mech := ""
	if rt := req.Child(nsFAST, "request-token"); rt != nil {
		mech = rt.Attr("mechanism")
	} else if rotate {
		mech = used
	}
	if mech == "" || !slices.Contains(auth.HTMechanisms(c.tlsInfo()), mech) {
		return ""
	}
	tok := newFastToken()
	exp := time.Now().Add(fastTokenTTL).UTC().Truncate(time.Second)
	err := tokens.AddFastToken(ctx, storage.FastToken{User: c.user.String(), Agent: agent, Mechanism: mech, Hash: auth.HTKey(tok), Expiry: exp})
	if err != nil {
		c.srv.log.Warn("fast token", "user", c.user.String(), "err", err)
		return ""
	}
	return "<token xmlns='" + nsFAST + "' expiry='" + exp.Format(time.RFC3339) + "' token='" + tok + "'/>"
}
