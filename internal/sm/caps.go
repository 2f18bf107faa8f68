package sm

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Entity capabilities (XEP-0115). A client's presence names the hash of
// what it supports; the server learns the features behind an unknown hash
// by asking that very client with disco#info, checks the answer against the
// hash, and keeps it in a cache shared by every user of the session
// manager, since most clients of one version send the same hash. The
// features say which PEP nodes a client wants notifications of (+notify,
// XEP-0163 §4.2).
const (
	nsCaps = "http://jabber.org/protocol/caps"
	// maxCapsCache bounds the verified hashes kept; the oldest goes first.
	maxCapsCache = 4096
	// maxCapsPending bounds the disco#info queries awaiting an answer.
	maxCapsPending = 1024
	// capsQueryWait is how long an answer is awaited; a later one is
	// ignored, and the hash is asked again at the next presence.
	capsQueryWait = time.Minute
	// maxInterested bounds the presences remembered per user: each is a
	// session of the user or of a contact.
	maxInterested = 1024
)

// capsState is the session manager's knowledge of entity capabilities.
// The zero value is ready to use.
type capsState struct {
	mu sync.Mutex
	// cache holds the feature sets of verified hashes, by ver; order
	// lists the hashes oldest first, for eviction.
	cache map[string]map[string]bool
	order []string
	// pending are the queries sent, by IQ id; asking maps a ver to the id
	// of the query about it, so that one hash is asked once at a time.
	pending map[string]*capsQuery
	asking  map[string]string
	// interested holds, per user (bare JID), the full JIDs of the
	// sessions that sent the user available presence with capabilities,
	// and their ver: the user's own sessions and contacts'. They are the
	// candidates for the user's PEP notifications.
	interested map[string]map[string]string
}

// capsQuery is a disco#info query about one hash.
type capsQuery struct {
	to      jid.JID // the exact full JID asked
	ver     string
	sent    time.Time
	waiters []capsWaiter
}

// capsWaiter is a presence processed once its hash is known.
type capsWaiter struct {
	owner, full jid.JID
}

// presenceCaps returns the node and ver of the caps element of presence
// p; ok is false without one, or for a hash other than sha-1, the only one
// verified.
func presenceCaps(p *xmlstream.Element) (node, ver string, ok bool) {
	c := p.Child(nsCaps, "c")
	if c == nil || c.Attr("hash") != "sha-1" || c.Attr("ver") == "" || c.Attr("node") == "" {
		return "", "", false
	}
	return c.Attr("node"), c.Attr("ver"), true
}

// errCapsMalformed reports a disco#info answer XEP-0115 §5.4 calls
// malformed.
var errCapsMalformed = errors.New("caps: malformed disco#info")

// capsVer computes the verification string of a disco#info query element
// (XEP-0115 §5.1) with SHA-1, base64-encoded.
func capsVer(q *xmlstream.Element) (string, error) {
	var ids, feats []string
	var forms [][2]string // FORM_TYPE and its part
	formTypes := map[string]bool{}
	for c := range q.ChildElements {
		switch {
		case c.Space == stanza.NSDiscoInfo && c.Local == "identity":
			if c.Attr("category") == "" || c.Attr("type") == "" {
				return "", errCapsMalformed
			}
			s := c.Attr("category") + "/" + c.Attr("type") + "/" + c.AttrNS(xmlstream.NSXML, "lang") + "/" + c.Attr("name")
			if slices.Contains(ids, s) {
				return "", errCapsMalformed
			}
			ids = append(ids, s)
		case c.Space == stanza.NSDiscoInfo && c.Local == "feature":
			v := c.Attr("var")
			if v == "" || slices.Contains(feats, v) {
				return "", errCapsMalformed
			}
			feats = append(feats, v)
		case c.Space == nsXData && c.Local == "x":
			ft, s, err := capsForm(c)
			if err != nil {
				return "", err
			}
			if ft == "" {
				continue // no hidden FORM_TYPE: ignored (§5.4 3.6)
			}
			if formTypes[ft] {
				return "", errCapsMalformed
			}
			formTypes[ft] = true
			forms = append(forms, [2]string{ft, s})
		}
	}
	if len(ids) == 0 {
		return "", errCapsMalformed
	}
	slices.Sort(ids)
	slices.Sort(feats)
	slices.SortFunc(forms, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	var b strings.Builder
	for _, l := range [][]string{ids, feats} {
		for _, s := range l {
			b.WriteString(s)
			b.WriteByte('<')
		}
	}
	for _, f := range forms {
		b.WriteString(f[1])
	}
	sum := sha1.Sum([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// capsForm returns the FORM_TYPE of an extended information form and its
// part of the verification string; ft is "" for a form to ignore.
func capsForm(x *xmlstream.Element) (ft, s string, err error) {
	type field struct {
		name   string
		values []string
	}
	var fields []field
	for f := range x.ChildElements {
		if f.Space != nsXData || f.Local != "field" {
			continue
		}
		var vals []string
		for v := range f.ChildElements {
			if v.Space == nsXData && v.Local == "value" {
				vals = append(vals, v.Text())
			}
		}
		name := f.Attr("var")
		if name == "FORM_TYPE" {
			if f.Attr("type") != "hidden" {
				return "", "", nil
			}
			if len(vals) == 0 {
				return "", "", errCapsMalformed
			}
			for _, v := range vals[1:] {
				if v != vals[0] {
					return "", "", errCapsMalformed
				}
			}
			if ft != "" {
				return "", "", errCapsMalformed
			}
			ft = vals[0]
			continue
		}
		if name == "" {
			continue
		}
		slices.Sort(vals)
		fields = append(fields, field{name, vals})
	}
	if ft == "" {
		return "", "", nil
	}
	slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.name, b.name) })
	var b strings.Builder
	b.WriteString(ft)
	b.WriteByte('<')
	for _, f := range fields {
		b.WriteString(f.name)
		b.WriteByte('<')
		for _, v := range f.values {
			b.WriteString(v)
			b.WriteByte('<')
		}
	}
	return ft, b.String(), nil
}

// capsPresence records the capabilities of an available presence from
// full to owner, or forgets them on unavailable presence, and sends the
// owner's last published items that the new session wants. A hash not yet
// known is asked of the session; the items follow its answer.
func (m *SM) capsPresence(ctx context.Context, owner, full jid.JID, p *xmlstream.Element) {
	if m.deps.PEP == nil || full.Resource() == "" {
		return
	}
	typ := p.Attr("type")
	if typ != "" && typ != "unavailable" {
		return
	}
	c := &m.caps
	key := owner.String()
	c.mu.Lock()
	if typ == "unavailable" {
		c.forgetLocked(key, full.String())
		c.mu.Unlock()
		return
	}
	node, ver, ok := presenceCaps(p)
	if !ok {
		c.forgetLocked(key, full.String())
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if !full.Bare().Equal(owner) && !m.subscribedTo(ctx, owner.String(), full.BareString()) {
		// Only those the user sends presence to are candidates: anyone
		// else's presence must not grow the table.
		return
	}
	c.mu.Lock()
	if c.interested == nil {
		c.interested = make(map[string]map[string]string)
	}
	set := c.interested[key]
	if set == nil {
		set = make(map[string]string)
		c.interested[key] = set
	}
	prev, had := set[full.String()]
	if had && prev == ver {
		c.mu.Unlock()
		return // a change of status, not of session or capabilities
	}
	if !had && len(set) >= maxInterested {
		c.mu.Unlock()
		return
	}
	set[full.String()] = ver
	if feats, known := c.cache[ver]; known {
		c.mu.Unlock()
		m.pepSendLast(ctx, owner, full, feats)
		return
	}
	q := c.askLocked(full, ver, capsWaiter{owner: owner, full: full})
	c.mu.Unlock()
	if q == nil {
		return
	}
	iq := xmlstream.NewElement(xmlstream.NSClient, stanza.IQ)
	iq.SetAttr("type", "get")
	iq.SetAttr("id", q.id)
	iq.SetAttr("from", m.domain.String())
	iq.SetAttr("to", full.String())
	iq.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "query")).SetAttr("node", node+"#"+ver)
	m.deps.Router.Route(ctx, router.Stanza{El: iq, From: m.domain, To: full})
}

// forgetLocked drops one remembered presence; c.mu is held.
func (c *capsState) forgetLocked(owner, full string) {
	set := c.interested[owner]
	delete(set, full)
	if len(set) == 0 {
		delete(c.interested, owner)
	}
}

// newQuery is a query to send.
type newQuery struct{ id string }

// askLocked adds w to the query about ver, and returns the query to send
// if there is none yet; c.mu is held.
func (c *capsState) askLocked(to jid.JID, ver string, w capsWaiter) *newQuery {
	now := time.Now()
	if id, ok := c.asking[ver]; ok {
		if q := c.pending[id]; q != nil && now.Sub(q.sent) <= capsQueryWait {
			q.waiters = append(q.waiters, w)
			return nil
		}
		c.dropLocked(id)
	}
	if len(c.pending) >= maxCapsPending {
		for id, q := range c.pending {
			if now.Sub(q.sent) > capsQueryWait {
				c.dropLocked(id)
			}
		}
		if len(c.pending) >= maxCapsPending {
			return nil // clients that never answer cannot fill memory
		}
	}
	if c.pending == nil {
		c.pending = make(map[string]*capsQuery)
		c.asking = make(map[string]string)
	}
	id := "caps-" + stanza.NewID()
	c.pending[id] = &capsQuery{to: to, ver: ver, sent: now, waiters: []capsWaiter{w}}
	c.asking[ver] = id
	return &newQuery{id: id}
}

func (c *capsState) dropLocked(id string) {
	if q := c.pending[id]; q != nil && c.asking[q.ver] == id {
		delete(c.asking, q.ver)
	}
	delete(c.pending, id)
}

// capsAnswer takes the answer to a capabilities query, reporting whether
// s was one. Only an IQ of type result or error with the query's id, from
// the very full JID asked, is the answer: another entity that guesses or
// sees the id cannot plant features for a hash (the class of
// CVE-2024-46957).
func (m *SM) capsAnswer(ctx context.Context, s router.Stanza) bool {
	typ := s.El.Attr("type")
	if s.El.Local != stanza.IQ || (typ != "result" && typ != "error") {
		return false
	}
	c := &m.caps
	id := s.El.Attr("id")
	c.mu.Lock()
	q := c.pending[id]
	if q == nil || !q.to.Equal(s.From) || !s.To.Equal(m.domain) {
		c.mu.Unlock()
		return false
	}
	c.dropLocked(id)
	c.mu.Unlock()
	if typ == "error" || time.Since(q.sent) > capsQueryWait {
		return true
	}
	info := s.El.Child(stanza.NSDiscoInfo, "query")
	if info == nil {
		return true
	}
	ver, err := capsVer(info)
	if err != nil || ver != q.ver {
		m.log.Debug("caps answer refused", "from", s.From.String(), "ver", q.ver, "computed", ver, "err", err)
		return true
	}
	feats := make(map[string]bool)
	for f := range info.ChildElements {
		if f.Space == stanza.NSDiscoInfo && f.Local == "feature" {
			feats[f.Attr("var")] = true
		}
	}
	c.mu.Lock()
	if c.cache == nil {
		c.cache = make(map[string]map[string]bool)
	}
	if _, ok := c.cache[ver]; !ok {
		if len(c.order) >= maxCapsCache {
			delete(c.cache, c.order[0])
			c.order = c.order[1:]
		}
		c.order = append(c.order, ver)
	}
	c.cache[ver] = feats
	var due []capsWaiter
	for _, w := range q.waiters {
		// Only sessions still there with the same capabilities.
		if c.interested[w.owner.String()][w.full.String()] == ver {
			due = append(due, w)
		}
	}
	c.mu.Unlock()
	for _, w := range due {
		m.pepSendLast(ctx, w.owner, w.full, feats)
	}
	return true
}

// notifyTargets returns the remembered sessions of owner's contacts and
// own whose capabilities ask for notifications of node.
func (m *SM) notifyTargets(owner jid.JID, node string) []jid.JID {
	want := node + "+notify"
	c := &m.caps
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []jid.JID
	for full, ver := range c.interested[owner.String()] {
		if !c.cache[ver][want] {
			continue
		}
		j, err := jid.Parse(full)
		if err == nil {
			out = append(out, j)
		}
	}
	return out
}
