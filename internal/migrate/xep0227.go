package migrate

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces of XEP-0227 and of what a user element holds.
const (
	NSPIE         = "urn:xmpp:pie:0"
	nsPIESCRAM    = "urn:xmpp:pie:0#scram"
	nsPIEMAM      = "urn:xmpp:pie:0#mam"
	nsXInclude    = "http://www.w3.org/2001/XInclude"
	nsRoster      = "jabber:iq:roster"
	nsPrivate     = "jabber:iq:private"
	nsPrivacy     = "jabber:iq:privacy"
	nsVCard       = "vcard-temp"
	nsPubSub      = "http://jabber.org/protocol/pubsub"
	nsPubSubOwner = "http://jabber.org/protocol/pubsub#owner"
	nsXData       = "jabber:x:data"
	nsDelay       = "urn:xmpp:delay"
	nsMAM         = "urn:xmpp:mam:2"
	nsForward     = "urn:xmpp:forward:0"
)

// pepMaxItems is the most items a PEP node keeps on Ambrosia.
const pepMaxItems = 256

// Opener opens a file that an XEP-0227 file includes (XInclude, as
// ejabberd's export_piefxis writes one file per host), given the href as
// written. Read refuses includes when it is nil.
type Opener func(href string) (io.ReadCloser, string, error)

// DirOpener opens includes relative to dir, refusing hrefs that leave it.
func DirOpener(dir string) Opener {
	return func(href string) (io.ReadCloser, string, error) {
		if filepath.IsAbs(href) || strings.Contains(href, "..") || strings.Contains(href, "://") {
			return nil, "", fmt.Errorf("include %q outside the file's directory", href)
		}
		p := filepath.Join(dir, href)
		f, err := openFile(p)
		return f, p, err
	}
}

// ReadXEP0227 reads one XEP-0227 document from r, named file in errors,
// and adds what it holds to d. Its root is <server-data/> (with <host/>
// elements or XIncludes of host files) or a single <host/>. now stamps
// offline messages that carry no delay.
func ReadXEP0227(d *Data, r io.Reader, file string, open Opener, now time.Time) error {
	root, err := parseXML(r, file)
	if err != nil {
		return err
	}
	rd := &pieReader{d: d, file: file, open: open, now: now}
	return rd.root(root, 0)
}

type pieReader struct {
	d    *Data
	file string
	open Opener
	now  time.Time
}

func (r *pieReader) errAt(e *elem, format string, args ...any) error {
	return &FormatError{File: r.file, Line: e.Line, Element: e.Name.Local, Msg: fmt.Sprintf(format, args...)}
}

func (r *pieReader) root(root *elem, depth int) error {
	switch {
	case root.is(NSPIE, "server-data"):
		for _, c := range root.children() {
			switch {
			case c.is(NSPIE, "host"):
				if err := r.host(c); err != nil {
					return err
				}
			case c.is(nsXInclude, "include"):
				if err := r.include(c, depth); err != nil {
					return err
				}
			default:
				return r.errAt(c, "unexpected element in <server-data/> (namespace %q)", c.Name.Space)
			}
		}
		return nil
	case root.is(NSPIE, "host"):
		return r.host(root)
	default:
		return r.errAt(root, "not an XEP-0227 file: the root must be <server-data xmlns='%s'/> or <host/>, not namespace %q", NSPIE, root.Name.Space)
	}
}

func (r *pieReader) include(c *elem, depth int) error {
	href := c.attr("href")
	if href == "" {
		return r.errAt(c, "no href")
	}
	if r.open == nil {
		return r.errAt(c, "includes are not allowed here")
	}
	if depth > 2 {
		return r.errAt(c, "includes nested too deeply")
	}
	f, name, err := r.open(href)
	if err != nil {
		return r.errAt(c, "%v", err)
	}
	defer f.Close()
	sub, err := parseXML(f, name)
	if err != nil {
		return err
	}
	r.d.included = append(r.d.included, name)
	saved := r.file
	r.file = name
	defer func() { r.file = saved }()
	return r.root(sub, depth+1)
}

func (r *pieReader) host(h *elem) error {
	domain, err := jid.Parse(h.attr("jid"))
	if err != nil || domain.Local() != "" || domain.Resource() != "" || h.attr("jid") == "" {
		return r.errAt(h, "jid %q is not a domain", h.attr("jid"))
	}
	for _, c := range h.children() {
		if !c.is(NSPIE, "user") {
			r.d.skip(fmt.Sprintf("<%s xmlns='%s'/> in a host", c.Name.Local, c.Name.Space))
			continue
		}
		u, err := r.user(c, domain.String())
		if err != nil {
			return err
		}
		r.d.Users = append(r.d.Users, u)
	}
	return nil
}

func (r *pieReader) user(e *elem, domain string) (*User, error) {
	name := e.attr("name")
	if name == "" {
		return nil, r.errAt(e, "no name")
	}
	j, err := jid.New(name, domain, "")
	if err != nil {
		return nil, r.errAt(e, "name %q: %v", name, err)
	}
	u := &User{JID: j.String(), Source: fmt.Sprintf("%s:%d", r.file, e.Line), Password: e.attr("password")}
	if rest, ok := strings.CutPrefix(u.Password, "scram:"); ok {
		// ejabberd before 21.x wrote its SCRAM-SHA-1 keys into the
		// password: "scram:" StoredKey,ServerKey,Salt,IterationCount.
		cr, err := oldEjabberdSCRAM(rest)
		if err != nil {
			return nil, r.errAt(e, "password in ejabberd's scram: form: %v", err)
		}
		u.Password, u.Credentials = "", []storage.Credential{cr}
	}
	pending := map[string]bool{}
	for _, c := range e.children() {
		switch {
		case c.is(nsPIESCRAM, "scram-credentials"):
			cr, err := r.scram(c)
			if err != nil {
				return nil, err
			}
			if slices.ContainsFunc(u.Credentials, func(x storage.Credential) bool { return x.Hash == cr.Hash }) {
				return nil, r.errAt(c, "a second %s credential", cr.Hash)
			}
			u.Credentials = append(u.Credentials, cr)
		case c.is(nsRoster, "query"):
			items, err := r.roster(c, u.JID)
			if err != nil {
				return nil, err
			}
			u.Roster = append(u.Roster, items...)
		case c.is(xmlstream.NSClient, "presence") || c.is(NSPIE, "presence"):
			if c.attr("type") != "subscribe" {
				r.d.skip("presence other than subscription requests")
				continue
			}
			from, err := jid.Parse(c.attr("from"))
			if err != nil {
				return nil, r.errAt(c, "from %q: %v", c.attr("from"), err)
			}
			pending[from.BareString()] = true
		case c.is(nsVCard, "vCard"):
			if u.VCard, err = c.serialize(""); err != nil {
				return nil, r.errAt(c, "%v", err)
			}
		case c.is(nsPrivate, "query"):
			for _, p := range c.children() {
				if p.Name.Space == "" {
					return nil, r.errAt(p, "private XML without a namespace")
				}
				b, err := p.serialize("")
				if err != nil {
					return nil, r.errAt(p, "%v", err)
				}
				u.Private = append(u.Private, PrivateItem{Key: p.Name.Space, XML: b})
			}
		case c.is(NSPIE, "offline-messages"):
			for _, m := range c.children() {
				msg, err := r.offline(m, domain)
				if err != nil {
					return nil, err
				}
				u.Offline = append(u.Offline, msg)
			}
		case c.is(nsPubSub, "pubsub"):
			if err := r.pepItems(c, u); err != nil {
				return nil, err
			}
		case c.is(nsPubSubOwner, "pubsub"):
			if err := r.pepConfig(c, u); err != nil {
				return nil, err
			}
		case c.is(nsPIEMAM, "archive"):
			for _, res := range c.children() {
				m, err := r.archived(res, u.JID)
				if err != nil {
					return nil, err
				}
				u.Archive = append(u.Archive, m)
			}
		case c.is(nsPrivacy, "query"):
			r.d.skip("privacy lists (jabber:iq:privacy)")
		default:
			r.d.skip(fmt.Sprintf("<%s xmlns='%s'/> in a user", c.Name.Local, c.Name.Space))
		}
	}
	u.Roster = addPending(u.Roster, pending)
	return u, nil
}

// addPending marks incoming subscription requests on the roster,
// creating items for contacts not on it.
func addPending(items []storage.RosterItem, pending map[string]bool) []storage.RosterItem {
	for i := range items {
		if pending[items[i].Contact] {
			items[i].PendingIn = true
			delete(pending, items[i].Contact)
		}
	}
	rest := make([]string, 0, len(pending))
	for c := range pending {
		rest = append(rest, c)
	}
	slices.Sort(rest)
	for _, c := range rest {
		items = append(items, storage.RosterItem{Contact: c, Subscription: storage.SubscriptionNone, PendingIn: true})
	}
	return items
}

// oldEjabberdSCRAM reads the keys older ejabberd releases exported in the
// password attribute, each in base64.
func oldEjabberdSCRAM(v string) (storage.Credential, error) {
	f := strings.Split(v, ",")
	if len(f) != 4 {
		return storage.Credential{}, fmt.Errorf("%d fields, want 4", len(f))
	}
	cr := storage.Credential{Hash: "SHA-1"}
	for i, dst := range []*[]byte{&cr.StoredKey, &cr.ServerKey, &cr.Salt} {
		b, err := base64.StdEncoding.DecodeString(f[i])
		if err != nil || len(b) == 0 {
			return cr, fmt.Errorf("field %d is not base64", i+1)
		}
		*dst = b
	}
	n, err := strconv.Atoi(f[3])
	if err != nil || n <= 0 {
		return cr, fmt.Errorf("iteration count %q", f[3])
	}
	cr.Iterations = n
	if len(cr.StoredKey) != 20 || len(cr.ServerKey) != 20 {
		return cr, errors.New("the keys are not SHA-1 keys")
	}
	return cr, nil
}

func (r *pieReader) scram(c *elem) (storage.Credential, error) {
	hash, ok := strings.CutPrefix(c.attr("mechanism"), "SCRAM-")
	if !ok || !slices.Contains([]string{"SHA-1", "SHA-256", "SHA-512"}, hash) {
		return storage.Credential{}, r.errAt(c, "mechanism %q is not SCRAM-SHA-1, -256 or -512", c.attr("mechanism"))
	}
	cr := storage.Credential{Hash: hash}
	field := func(name string) (*elem, string, error) {
		f := c.child(nsPIESCRAM, name)
		if f == nil {
			return nil, "", r.errAt(c, "no <%s/>", name)
		}
		return f, strings.TrimSpace(f.text()), nil
	}
	f, v, err := field("iter-count")
	if err != nil {
		return cr, err
	}
	if cr.Iterations, err = strconv.Atoi(v); err != nil || cr.Iterations <= 0 {
		return cr, r.errAt(f, "%q is not a positive iteration count", v)
	}
	for _, k := range []struct {
		name string
		dst  *[]byte
	}{{"salt", &cr.Salt}, {"server-key", &cr.ServerKey}, {"stored-key", &cr.StoredKey}} {
		f, v, err := field(k.name)
		if err != nil {
			return cr, err
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) == 0 {
			return cr, r.errAt(f, "not base64")
		}
		*k.dst = b
	}
	// ejabberd (23.01 at least) keeps its keys and salt in base64 and
	// encodes them once more on export: keys of the wrong length that
	// decode again to the right one tell.
	size := map[string]int{"SHA-1": 20, "SHA-256": 32, "SHA-512": 64}[hash]
	if len(cr.StoredKey) != size {
		sk, err1 := base64.StdEncoding.DecodeString(string(cr.StoredKey))
		svk, err2 := base64.StdEncoding.DecodeString(string(cr.ServerKey))
		salt, err3 := base64.StdEncoding.DecodeString(string(cr.Salt))
		if err1 != nil || err2 != nil || err3 != nil || len(sk) != size || len(svk) != size || len(salt) == 0 {
			return cr, r.errAt(c, "the keys are not %d-byte %s keys", size, hash)
		}
		cr.StoredKey, cr.ServerKey, cr.Salt = sk, svk, salt
	}
	if len(cr.ServerKey) != size {
		return cr, r.errAt(c, "the server key is not a %d-byte %s key", size, hash)
	}
	return cr, nil
}

func (r *pieReader) roster(q *elem, user string) ([]storage.RosterItem, error) {
	var out []storage.RosterItem
	for _, it := range q.children() {
		if !it.is(nsRoster, "item") {
			return nil, r.errAt(it, "unexpected element in the roster")
		}
		c, err := jid.Parse(it.attr("jid"))
		if err != nil || c.Resource() != "" {
			return nil, r.errAt(it, "jid %q is not a bare JID", it.attr("jid"))
		}
		if c.String() == user {
			r.d.skip("roster items of a user for itself")
			continue
		}
		item := storage.RosterItem{Contact: c.String(), Name: it.attr("name"), Subscription: it.attr("subscription")}
		switch item.Subscription {
		case "":
			item.Subscription = storage.SubscriptionNone
		case storage.SubscriptionNone, storage.SubscriptionTo, storage.SubscriptionFrom, storage.SubscriptionBoth:
		default:
			return nil, r.errAt(it, "subscription %q of %s", item.Subscription, item.Contact)
		}
		switch it.attr("ask") {
		case "":
		case "subscribe":
			item.Ask = true
		default:
			return nil, r.errAt(it, "ask %q of %s", it.attr("ask"), item.Contact)
		}
		item.Approved = it.attr("approved") == "true" || it.attr("approved") == "1"
		for _, g := range it.children() {
			if g.is(nsRoster, "group") && g.text() != "" {
				item.Groups = append(item.Groups, g.text())
			}
		}
		out = append(out, item)
	}
	return out, nil
}

// offline reads one stored message; one without a delay gets the import's
// time, as the server stamps what it stores.
func (r *pieReader) offline(m *elem, domain string) (OfflineMessage, error) {
	if m.Name.Local != "message" || m.Name.Space != xmlstream.NSClient && m.Name.Space != NSPIE && m.Name.Space != "" {
		return OfflineMessage{}, r.errAt(m, "an offline message must be a jabber:client <message/>")
	}
	el := m.element()
	el.Space = xmlstream.NSClient
	stored := r.now
	if d := el.Child(nsDelay, "delay"); d != nil {
		t, err := time.Parse(time.RFC3339Nano, d.Attr("stamp"))
		if err != nil {
			return OfflineMessage{}, r.errAt(m, "delay stamp %q: %v", d.Attr("stamp"), err)
		}
		stored = t.UTC()
	} else {
		d := xmlstream.NewElement(nsDelay, "delay")
		d.SetAttr("from", domain)
		d.SetAttr("stamp", stored.UTC().Format("2006-01-02T15:04:05Z"))
		d.AddText("Offline Storage")
		el.AddChild(d)
	}
	b, err := checkedXML(el, xmlstream.NSClient)
	if err != nil {
		return OfflineMessage{}, r.errAt(m, "%v", err)
	}
	return OfflineMessage{Stanza: b, Stored: stored}, nil
}

// archived reads one message of an archive: a MAM result with the
// forwarded message and its delay.
func (r *pieReader) archived(res *elem, user string) (ArchivedMessage, error) {
	if !res.is(nsMAM, "result") {
		return ArchivedMessage{}, r.errAt(res, "an archive holds <result xmlns='%s'/> elements", nsMAM)
	}
	fwd := res.child(nsForward, "forwarded")
	if fwd == nil {
		return ArchivedMessage{}, r.errAt(res, "no <forwarded/>")
	}
	var m *elem
	for _, c := range fwd.children() {
		if c.Name.Local == "message" && (c.Name.Space == xmlstream.NSClient || c.Name.Space == "") {
			m = c
		}
	}
	delay := fwd.child(nsDelay, "delay")
	if m == nil || delay == nil {
		return ArchivedMessage{}, r.errAt(fwd, "want a jabber:client <message/> and a <delay/>")
	}
	stamp, err := time.Parse(time.RFC3339Nano, delay.attr("stamp"))
	if err != nil {
		return ArchivedMessage{}, r.errAt(delay, "stamp %q: %v", delay.attr("stamp"), err)
	}
	el := m.element()
	el.Space = xmlstream.NSClient
	b, err := checkedXML(el, xmlstream.NSClient)
	if err != nil {
		return ArchivedMessage{}, r.errAt(m, "%v", err)
	}
	return ArchivedMessage{Stanza: b, Stamp: stamp.UTC(), With: otherParty(user, m.attr("from"), m.attr("to"))}, nil
}

// otherParty returns the bare JID of whoever of from and to is not
// user, "" when neither parses.
func otherParty(user, from, to string) string {
	for _, s := range []string{from, to} {
		if j, err := jid.Parse(s); err == nil && j.BareString() != user {
			return j.BareString()
		}
	}
	if j, err := jid.Parse(to); err == nil {
		return j.BareString()
	}
	return ""
}

// pepNode returns u's node name, creating it with the default
// configuration.
func pepNode(u *User, name string) *PEPNode {
	for i := range u.PEP {
		if u.PEP[i].Config.Node == name {
			return &u.PEP[i]
		}
	}
	u.PEP = append(u.PEP, PEPNode{Config: DefaultPEPConfig(name)})
	return &u.PEP[len(u.PEP)-1]
}

// DefaultPEPConfig is the configuration of a node the input names without
// configuring it: the defaults of Ambrosia, Prosody and ejabberd alike.
func DefaultPEPConfig(node string) storage.PEPNode {
	return storage.PEPNode{Node: node, AccessModel: storage.PEPAccessPresence, MaxItems: 1, PersistItems: true,
		SendLast: storage.PEPSendLastOnSubPres, NotifyRetract: true}
}

func (r *pieReader) pepItems(p *elem, u *User) error {
	for _, items := range p.children() {
		if !items.is(nsPubSub, "items") || items.attr("node") == "" {
			return r.errAt(items, "want <items node='...'/>")
		}
		n := pepNode(u, items.attr("node"))
		for _, it := range items.children() {
			if !it.is(nsPubSub, "item") {
				return r.errAt(it, "want <item/>")
			}
			kids := it.children()
			if len(kids) != 1 {
				return r.errAt(it, "an item has one payload element, this has %d", len(kids))
			}
			id := it.attr("id")
			if id == "" {
				id = strconv.Itoa(len(n.Items) + 1)
			}
			b, err := kids[0].serialize("")
			if err != nil {
				return r.errAt(kids[0], "%v", err)
			}
			n.Items = append(n.Items, storage.PEPItem{ID: id, Publisher: u.JID, Payload: b, Published: r.now})
		}
	}
	return nil
}

func (r *pieReader) pepConfig(p *elem, u *User) error {
	for _, c := range p.children() {
		node := c.attr("node")
		if node == "" {
			return r.errAt(c, "no node")
		}
		switch c.Name.Local {
		case "configure":
			n := pepNode(u, node)
			x := c.child(nsXData, "x")
			if x == nil {
				continue
			}
			for _, f := range x.children() {
				if !f.is(nsXData, "field") {
					continue
				}
				var v string
				if val := f.child(nsXData, "value"); val != nil {
					v = strings.TrimSpace(val.text())
				}
				if v == "" {
					continue // a field left empty keeps the default
				}
				if note := applyPEPOption(&n.Config, f.attr("var"), v); note != "" {
					r.d.skip(fmt.Sprintf("PEP option %s: %s", f.attr("var"), note))
				}
			}
		case "affiliations", "subscriptions":
			if len(c.children()) > 0 {
				r.d.skip("PEP " + c.Name.Local + " (Ambrosia derives them from the roster)")
			}
		default:
			r.d.skip("<" + c.Name.Local + "/> in PEP configuration")
		}
	}
	return nil
}

// applyPEPOption sets one node configuration field; it returns a note
// when the value is not one Ambrosia keeps (the default stays).
func applyPEPOption(n *storage.PEPNode, field, v string) string {
	boolean := func(dst *bool) string {
		switch v {
		case "1", "true":
			*dst = true
		case "0", "false":
			*dst = false
		default:
			return fmt.Sprintf("%q is not a boolean", v)
		}
		return ""
	}
	switch field {
	case "pubsub#access_model":
		switch v {
		case storage.PEPAccessPresence, storage.PEPAccessOpen, storage.PEPAccessWhitelist:
			n.AccessModel = v
		case "roster", "authorize":
			n.AccessModel = storage.PEPAccessWhitelist
			return v + " kept as whitelist"
		default:
			return fmt.Sprintf("access model %q unknown", v)
		}
	case "pubsub#max_items":
		if v == "max" {
			n.MaxItems = 0
			return ""
		}
		i, err := strconv.Atoi(v)
		if err != nil || i < 1 {
			return fmt.Sprintf("%q is not a number of items", v)
		}
		n.MaxItems = min(i, pepMaxItems)
	case "pubsub#persist_items":
		return boolean(&n.PersistItems)
	case "pubsub#notify_retract":
		return boolean(&n.NotifyRetract)
	case "pubsub#send_last_published_item":
		switch v {
		case storage.PEPSendLastNever, storage.PEPSendLastOnSub, storage.PEPSendLastOnSubPres:
			n.SendLast = v
		default:
			return fmt.Sprintf("%q unknown", v)
		}
	}
	return ""
}
