package sm

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/mam"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Personal Eventing Protocol (XEP-0163): every account is a publish-subscribe
// service (XEP-0060) at its bare JID, with the subset PEP clients use:
// publish with auto-create and publish-options, retract, items, create,
// configure, delete and purge. There are no explicit subscriptions: the
// account's contacts, and its own sessions, get notifications when their
// entity capabilities (caps.go) ask for a node with NODE+notify.
const (
	nsPubSub         = "http://jabber.org/protocol/pubsub"
	nsPubSubOwner    = "http://jabber.org/protocol/pubsub#owner"
	nsPubSubEvent    = "http://jabber.org/protocol/pubsub#event"
	nsPubSubErrors   = "http://jabber.org/protocol/pubsub#errors"
	nsPubSubOptions  = "http://jabber.org/protocol/pubsub#publish-options"
	nsPubSubNodeConf = "http://jabber.org/protocol/pubsub#node_config"

	// pepMaxItems is what max_items "max" means, and the highest number a
	// node may be configured with, as Prosody's default.
	pepMaxItems = 256
	// pepMaxNodes bounds the nodes of one account.
	pepMaxNodes = 256
)

// pepFeatures are the pubsub features announced on an account's bare JID:
// only those implemented.
func pepFeatures() []string {
	var fs []string
	for _, f := range []string{"access-open", "access-presence", "access-whitelist", "auto-create", "config-node",
		"create-nodes", "delete-items", "delete-nodes", "filtered-notifications", "last-published", "persistent-items",
		"publish", "publish-options", "purge-nodes", "retract-items", "retrieve-items"} {
		fs = append(fs, nsPubSub+"#"+f)
	}
	return fs
}

// pepDefault is the configuration of a node created without options, as
// Prosody's and ejabberd's PEP do.
func pepDefault(node string) storage.PEPNode {
	return storage.PEPNode{Node: node, AccessModel: storage.PEPAccessPresence, MaxItems: 1, PersistItems: true,
		SendLast: storage.PEPSendLastOnSubPres, NotifyRetract: true}
}

// pepMax is the number of items a node keeps.
func pepMax(n storage.PEPNode) int {
	if n.MaxItems <= 0 || n.MaxItems > pepMaxItems {
		return pepMaxItems
	}
	return n.MaxItems
}

// errBadOption is a configuration value the server does not support.
var errBadOption = errors.New("pep: unsupported option value")

// applyOption sets one configuration field; unknown fields are ignored,
// as Prosody does, so that a client's extra option does not fail a
// publication.
func applyOption(n *storage.PEPNode, field string, vals []string) error {
	v := ""
	if len(vals) > 0 {
		v = vals[0]
	}
	boolean := func() (bool, error) {
		switch v {
		case "1", "true":
			return true, nil
		case "0", "false":
			return false, nil
		}
		return false, errBadOption
	}
	var err error
	switch field {
	case "pubsub#access_model":
		switch v {
		case storage.PEPAccessPresence, storage.PEPAccessOpen, storage.PEPAccessWhitelist:
			n.AccessModel = v
		default:
			return errBadOption
		}
	case "pubsub#max_items":
		if v == "max" {
			n.MaxItems = 0
			return nil
		}
		i, e := strconv.Atoi(v)
		if e != nil || i < 1 || i > pepMaxItems {
			return errBadOption
		}
		n.MaxItems = i
	case "pubsub#persist_items":
		n.PersistItems, err = boolean()
	case "pubsub#notify_retract":
		n.NotifyRetract, err = boolean()
	case "pubsub#send_last_published_item":
		switch v {
		case storage.PEPSendLastNever, storage.PEPSendLastOnSub, storage.PEPSendLastOnSubPres:
			n.SendLast = v
		default:
			return errBadOption
		}
	}
	return err
}

// parseForm returns the fields of a data form with their values, checking
// its FORM_TYPE when there is one.
func parseForm(x *xmlstream.Element, formType string) (map[string][]string, error) {
	fields := map[string][]string{}
	for f := range x.ChildElements {
		if f.Space != nsXData || f.Local != "field" || f.Attr("var") == "" {
			continue
		}
		var vals []string
		for v := range f.ChildElements {
			if v.Space == nsXData && v.Local == "value" {
				vals = append(vals, v.Text())
			}
		}
		fields[f.Attr("var")] = vals
	}
	if ft, ok := fields["FORM_TYPE"]; ok && (len(ft) != 1 || ft[0] != formType) {
		return nil, errBadOption
	}
	delete(fields, "FORM_TYPE")
	return fields, nil
}

// applyForm applies every field of a form to n.
func applyForm(n *storage.PEPNode, fields map[string][]string) error {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := applyOption(n, k, fields[k]); err != nil {
			return err
		}
	}
	return nil
}

// configForm is the node configuration form (XEP-0060 §8.2).
func configForm(n storage.PEPNode) *xmlstream.Element {
	x := xmlstream.NewElement(nsXData, "x")
	x.SetAttr("type", "form")
	add := func(v, typ, label string, val string, opts ...string) {
		f := x.AddChild(xmlstream.NewElement(nsXData, "field"))
		f.SetAttr("var", v)
		f.SetAttr("type", typ)
		if label != "" {
			f.SetAttr("label", label)
		}
		f.AddChild(xmlstream.NewElement(nsXData, "value")).AddText(val)
		for _, o := range opts {
			f.AddChild(xmlstream.NewElement(nsXData, "option")).AddChild(xmlstream.NewElement(nsXData, "value")).AddText(o)
		}
	}
	b := func(v bool) string {
		if v {
			return "true"
		}
		return "false"
	}
	maxItems := "max"
	if n.MaxItems > 0 {
		maxItems = strconv.Itoa(n.MaxItems)
	}
	add("FORM_TYPE", "hidden", "", nsPubSubNodeConf)
	add("pubsub#access_model", "list-single", "Who may subscribe and retrieve items", n.AccessModel,
		storage.PEPAccessOpen, storage.PEPAccessPresence, storage.PEPAccessWhitelist)
	add("pubsub#max_items", "text-single", "Max number of items to persist", maxItems)
	add("pubsub#persist_items", "boolean", "Persist items to storage", b(n.PersistItems))
	add("pubsub#send_last_published_item", "list-single", "When to send the last published item", n.SendLast,
		storage.PEPSendLastNever, storage.PEPSendLastOnSub, storage.PEPSendLastOnSubPres)
	add("pubsub#notify_retract", "boolean", "Notify subscribers when items are removed", b(n.NotifyRetract))
	return x
}

// pepError builds an error reply with an application condition in the
// pubsub#errors namespace; feature names the unsupported feature.
func pepError(el *xmlstream.Element, cond, app, feature string) *xmlstream.Element {
	r := stanza.ErrorReply(el, cond, "")
	if app != "" {
		e := r.Child(r.Space, "error")
		a := e.AddChild(xmlstream.NewElement(nsPubSubErrors, app))
		if feature != "" {
			a.SetAttr("feature", feature)
		}
	}
	return r
}

// pepRequest is one pubsub request to an account's bare JID.
type pepRequest struct {
	owner, from jid.JID
	el          *xmlstream.Element
	isOwner     bool
}

// pepIQ answers an IQ for the PEP service at owner's bare JID from the
// entity from; ok is false when el is not for PEP. Notifications the
// request causes are sent before it returns.
func (m *SM) pepIQ(ctx context.Context, from, owner jid.JID, el *xmlstream.Element) (reply *xmlstream.Element, ok bool) {
	ps := el.Child(nsPubSub, "pubsub")
	own := el.Child(nsPubSubOwner, "pubsub")
	items := el.Child(stanza.NSDiscoItems, "query")
	if ps == nil && own == nil && items == nil {
		return nil, false
	}
	if m.deps.PEP == nil {
		if items != nil {
			return nil, false
		}
		return stanza.ErrorReply(el, stanza.ServiceUnavailable, ""), true
	}
	r := pepRequest{owner: owner.Bare(), from: from, el: el, isOwner: from.Bare().Equal(owner.Bare())}
	typ := el.Attr("type")
	switch {
	case items != nil:
		if typ != "get" || items.Attr("node") != "" {
			return nil, false
		}
		return m.pepDiscoItems(ctx, r), true
	case own != nil:
		return m.pepOwner(ctx, r, own), true
	}
	var op *xmlstream.Element
	for c := range ps.ChildElements {
		if c.Space == nsPubSub && c.Local != "publish-options" && c.Local != "configure" {
			op = c
			break
		}
	}
	if op == nil {
		return stanza.ErrorReply(el, stanza.BadRequest, ""), true
	}
	switch {
	case op.Local == "publish" && typ == "set":
		return m.pepPublish(ctx, r, op, ps.Child(nsPubSub, "publish-options")), true
	case op.Local == "retract" && typ == "set":
		return m.pepRetract(ctx, r, op), true
	case op.Local == "items" && typ == "get":
		return m.pepItems(ctx, r, op), true
	case op.Local == "create" && typ == "set":
		return m.pepCreate(ctx, r, op, ps.Child(nsPubSub, "configure")), true
	}
	feature := map[string]string{"subscribe": "subscribe", "unsubscribe": "subscribe", "options": "subscription-options",
		"subscriptions": "retrieve-subscriptions", "affiliations": "retrieve-affiliations", "default": "retrieve-default"}[op.Local]
	if feature != "" {
		return pepError(el, stanza.FeatureNotImplemented, "unsupported", feature), true
	}
	return stanza.ErrorReply(el, stanza.BadRequest, ""), true
}

// node loads a node; err is non-nil for a storage failure.
func (m *SM) node(ctx context.Context, owner jid.JID, name string) (storage.PEPNode, bool, error) {
	n, err := m.deps.PEP.PEPNode(ctx, owner.String(), name)
	if errors.Is(err, storage.ErrNotFound) {
		return n, false, nil
	}
	if err != nil {
		m.log.Error("pep node load", "user", owner.String(), "node", name, "err", err)
		return n, false, err
	}
	return n, true, nil
}

// mayRead reports whether who may retrieve the items of node n of owner
// (XEP-0060 §6.5.9 access models), and the error to answer otherwise.
func (m *SM) mayRead(ctx context.Context, owner, who jid.JID, n storage.PEPNode) (cond, app string) {
	if who.Bare().Equal(owner) {
		return "", ""
	}
	switch n.AccessModel {
	case storage.PEPAccessOpen:
		return "", ""
	case storage.PEPAccessPresence:
		if m.subscribedTo(ctx, owner.String(), who.BareString()) {
			return "", ""
		}
		return stanza.NotAuthorized, "presence-subscription-required"
	}
	return stanza.NotAllowed, "closed-node"
}

func (m *SM) pepPublish(ctx context.Context, r pepRequest, pub, opts *xmlstream.Element) *xmlstream.Element {
	el := r.el
	if !r.isOwner {
		return stanza.ErrorReply(el, stanza.Forbidden, "")
	}
	name := pub.Attr("node")
	if name == "" {
		return pepError(el, stanza.BadRequest, "nodeid-required", "")
	}
	var item *xmlstream.Element
	nItems := 0
	for c := range pub.ChildElements {
		if c.Space == nsPubSub && c.Local == "item" {
			item = c
			nItems++
		}
	}
	switch {
	case nItems == 0:
		return pepError(el, stanza.BadRequest, "item-required", "")
	case nItems > 1:
		return pepError(el, stanza.BadRequest, "invalid-payload", "")
	}
	kids := item.Children()
	switch {
	case len(kids) == 0:
		return pepError(el, stanza.BadRequest, "payload-required", "")
	case len(kids) > 1:
		return pepError(el, stanza.BadRequest, "invalid-payload", "")
	}
	var options map[string][]string
	if opts != nil {
		x := opts.Child(nsXData, "x")
		var err error
		if x != nil {
			options, err = parseForm(x, nsPubSubOptions)
		}
		if x == nil || err != nil {
			return pepError(el, stanza.BadRequest, "invalid-options", "")
		}
	}
	n, exists, err := m.node(ctx, r.owner, name)
	if err != nil {
		return stanza.ErrorReply(el, stanza.InternalServerError, "")
	}
	if !exists {
		if resp := m.checkNodeQuota(ctx, r); resp != nil {
			return resp
		}
		n = pepDefault(name)
		if applyForm(&n, options) != nil {
			return pepError(el, stanza.Conflict, "precondition-not-met", "")
		}
		if err := m.deps.PEP.PutPEPNode(ctx, r.owner.String(), n); err != nil {
			m.log.Error("pep node create", "user", r.owner.String(), "node", name, "err", err)
			return stanza.ErrorReply(el, stanza.InternalServerError, "")
		}
	} else if options != nil {
		// XEP-0060 §7.1.5: the options are preconditions on the node.
		want := n
		if applyForm(&want, options) != nil || want != n {
			return pepError(el, stanza.Conflict, "precondition-not-met", "")
		}
	}
	id := item.Attr("id")
	if id == "" {
		id = stanza.NewID()
	}
	payload := kids[0].AppendXML(nil, "")
	it := storage.PEPItem{ID: id, Publisher: r.from.String(), Payload: payload, Published: time.Now().UTC()}
	if err := m.deps.PEP.PublishPEPItem(ctx, r.owner.String(), name, it, pepMax(n)); err != nil {
		m.log.Error("pep publish", "user", r.owner.String(), "node", name, "err", err)
		return stanza.ErrorReply(el, stanza.InternalServerError, "")
	}
	res := stanza.Result(el)
	p := res.AddChild(xmlstream.NewElement(nsPubSub, "pubsub")).AddChild(xmlstream.NewElement(nsPubSub, "publish"))
	p.SetAttr("node", name)
	p.AddChild(xmlstream.NewElement(nsPubSub, "item")).SetAttr("id", id)
	m.pepNotify(ctx, r.owner, n, func() *xmlstream.Element { return itemsEvent(name, []storage.PEPItem{it}) })
	return res
}

// checkNodeQuota refuses a new node beyond pepMaxNodes.
func (m *SM) checkNodeQuota(ctx context.Context, r pepRequest) *xmlstream.Element {
	nodes, err := m.deps.PEP.PEPNodes(ctx, r.owner.String())
	if err != nil {
		m.log.Error("pep nodes", "user", r.owner.String(), "err", err)
		return stanza.ErrorReply(r.el, stanza.InternalServerError, "")
	}
	if len(nodes) >= pepMaxNodes {
		return pepError(r.el, stanza.NotAllowed, "max-nodes-exceeded", "")
	}
	return nil
}

// itemsEvent is the event payload of published items.
func itemsEvent(node string, items []storage.PEPItem) *xmlstream.Element {
	ev := xmlstream.NewElement(nsPubSubEvent, "event")
	its := ev.AddChild(xmlstream.NewElement(nsPubSubEvent, "items"))
	its.SetAttr("node", node)
	for _, it := range items {
		e := its.AddChild(xmlstream.NewElement(nsPubSubEvent, "item"))
		e.SetAttr("id", it.ID)
		if p := payloadElement(it.Payload); p != nil {
			e.AddChild(p)
		}
	}
	return ev
}

// payloadElement parses a stored payload; nil if it cannot be read.
func payloadElement(b []byte) *xmlstream.Element {
	el, err := mam.ParseStored(b)
	if err != nil {
		return nil
	}
	return el
}

func (m *SM) pepRetract(ctx context.Context, r pepRequest, op *xmlstream.Element) *xmlstream.Element {
	el := r.el
	if !r.isOwner {
		return stanza.ErrorReply(el, stanza.Forbidden, "")
	}
	name := op.Attr("node")
	if name == "" {
		return pepError(el, stanza.BadRequest, "nodeid-required", "")
	}
	item := op.Child(nsPubSub, "item")
	if item == nil || item.Attr("id") == "" {
		return pepError(el, stanza.BadRequest, "item-required", "")
	}
	n, exists, err := m.node(ctx, r.owner, name)
	if err != nil {
		return stanza.ErrorReply(el, stanza.InternalServerError, "")
	}
	if !exists {
		return stanza.ErrorReply(el, stanza.ItemNotFound, "")
	}
	id := item.Attr("id")
	if err := m.deps.PEP.RetractPEPItem(ctx, r.owner.String(), name, id); errors.Is(err, storage.ErrNotFound) {
		return stanza.ErrorReply(el, stanza.ItemNotFound, "")
	} else if err != nil {
		m.log.Error("pep retract", "user", r.owner.String(), "node", name, "err", err)
		return stanza.ErrorReply(el, stanza.InternalServerError, "")
	}
	notify := n.NotifyRetract
	switch op.Attr("notify") {
	case "1", "true":
		notify = true
	case "0", "false":
		notify = false
	}
	if notify {
		m.pepNotify(ctx, r.owner, n, func() *xmlstream.Element {
			ev := xmlstream.NewElement(nsPubSubEvent, "event")
			its := ev.AddChild(xmlstream.NewElement(nsPubSubEvent, "items"))
			its.SetAttr("node", name)
			its.AddChild(xmlstream.NewElement(nsPubSubEvent, "retract")).SetAttr("id", id)
			return ev
		})
	}
	return stanza.Result(el)
}

func (m *SM) pepItems(ctx context.Context, r pepRequest, op *xmlstream.Element) *xmlstream.Element {
	el := r.el
	name := op.Attr("node")
	if name == "" {
		return pepError(el, stanza.BadRequest, "nodeid-required", "")
	}
	max := 0
	if v := op.Attr("max_items"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < 1 {
			return stanza.ErrorReply(el, stanza.BadRequest, "max_items must be a positive number.")
		}
		max = i
	}
	var ids []string
	for c := range op.ChildElements {
		if c.Space == nsPubSub && c.Local == "item" {
			if c.Attr("id") == "" {
				return pepError(el, stanza.BadRequest, "item-required", "")
			}
			ids = append(ids, c.Attr("id"))
		}
	}
	n, exists, err := m.node(ctx, r.owner, name)
	if err != nil {
		return stanza.ErrorReply(el, stanza.InternalServerError, "")
	}
	if !exists {
		return stanza.ErrorReply(el, stanza.ItemNotFound, "")
	}
	if cond, app := m.mayRead(ctx, r.owner, r.from, n); cond != "" {
		return pepError(el, cond, app, "")
	}
	if max == 0 || max > pepMax(n) {
		max = pepMax(n)
	}
	items, err := m.deps.PEP.PEPItems(ctx, r.owner.String(), name, ids, max)
	if err != nil {
		m.log.Error("pep items", "user", r.owner.String(), "node", name, "err", err)
		return stanza.ErrorReply(el, stanza.InternalServerError, "")
	}
	if len(ids) == 1 && len(items) == 0 {
		return stanza.ErrorReply(el, stanza.ItemNotFound, "")
	}
	res := stanza.Result(el)
	its := res.AddChild(xmlstream.NewElement(nsPubSub, "pubsub")).AddChild(xmlstream.NewElement(nsPubSub, "items"))
	its.SetAttr("node", name)
	// Oldest first, as they were published.
	for i := len(items) - 1; i >= 0; i-- {
		e := its.AddChild(xmlstream.NewElement(nsPubSub, "item"))
		e.SetAttr("id", items[i].ID)
		if p := payloadElement(items[i].Payload); p != nil {
			e.AddChild(p)
		}
	}
	return res
}

func (m *SM) pepCreate(ctx context.Context, r pepRequest, op, conf *xmlstream.Element) *xmlstream.Element {
	el := r.el
	if !r.isOwner {
		return stanza.ErrorReply(el, stanza.Forbidden, "")
	}
	name := op.Attr("node")
	if name == "" {
		// Instant nodes make no sense for PEP, whose nodes are namespaces.
		return pepError(el, stanza.NotAcceptable, "nodeid-required", "")
	}
	n := pepDefault(name)
	if conf != nil {
		if x := conf.Child(nsXData, "x"); x != nil {
			fields, err := parseForm(x, nsPubSubNodeConf)
			if err != nil || applyForm(&n, fields) != nil {
				return stanza.ErrorReply(el, stanza.NotAcceptable, "")
			}
		}
	}
	_, exists, err := m.node(ctx, r.owner, name)
	if err != nil {
		return stanza.ErrorReply(el, stanza.InternalServerError, "")
	}
	if exists {
		return stanza.ErrorReply(el, stanza.Conflict, "")
	}
	if resp := m.checkNodeQuota(ctx, r); resp != nil {
		return resp
	}
	if err := m.deps.PEP.PutPEPNode(ctx, r.owner.String(), n); err != nil {
		m.log.Error("pep node create", "user", r.owner.String(), "node", name, "err", err)
		return stanza.ErrorReply(el, stanza.InternalServerError, "")
	}
	return stanza.Result(el)
}

// pepOwner serves the owner namespace: configure, delete, purge.
func (m *SM) pepOwner(ctx context.Context, r pepRequest, ps *xmlstream.Element) *xmlstream.Element {
	el := r.el
	var op *xmlstream.Element
	for c := range ps.ChildElements {
		if c.Space == nsPubSubOwner {
			op = c
			break
		}
	}
	if op == nil {
		return stanza.ErrorReply(el, stanza.BadRequest, "")
	}
	feature := map[string]string{"configure": "config-node", "delete": "delete-nodes", "purge": "purge-nodes",
		"subscriptions": "manage-subscriptions", "affiliations": "modify-affiliations", "default": "retrieve-default"}[op.Local]
	switch op.Local {
	case "configure", "delete", "purge":
	case "subscriptions", "affiliations", "default":
		return pepError(el, stanza.FeatureNotImplemented, "unsupported", feature)
	default:
		return stanza.ErrorReply(el, stanza.BadRequest, "")
	}
	if !r.isOwner {
		return stanza.ErrorReply(el, stanza.Forbidden, "")
	}
	name := op.Attr("node")
	if name == "" {
		return pepError(el, stanza.BadRequest, "nodeid-required", "")
	}
	get := el.Attr("type") == "get"
	if get && op.Local != "configure" {
		return stanza.ErrorReply(el, stanza.BadRequest, "")
	}
	n, exists, err := m.node(ctx, r.owner, name)
	if err != nil {
		return stanza.ErrorReply(el, stanza.InternalServerError, "")
	}
	if !exists {
		return stanza.ErrorReply(el, stanza.ItemNotFound, "")
	}
	owner := r.owner.String()
	switch op.Local {
	case "configure":
		if get {
			res := stanza.Result(el)
			c := res.AddChild(xmlstream.NewElement(nsPubSubOwner, "pubsub")).AddChild(xmlstream.NewElement(nsPubSubOwner, "configure"))
			c.SetAttr("node", name)
			c.AddChild(configForm(n))
			return res
		}
		x := op.Child(nsXData, "x")
		if x == nil {
			return stanza.ErrorReply(el, stanza.BadRequest, "")
		}
		if x.Attr("type") == "cancel" {
			return stanza.Result(el)
		}
		fields, err := parseForm(x, nsPubSubNodeConf)
		if err != nil || x.Attr("type") != "submit" || applyForm(&n, fields) != nil {
			return stanza.ErrorReply(el, stanza.NotAcceptable, "")
		}
		err = m.deps.PEP.PutPEPNode(ctx, owner, n)
		if err == nil {
			return stanza.Result(el)
		}
	case "delete":
		err = m.deps.PEP.DeletePEPNode(ctx, owner, name)
		if err == nil {
			m.pepNotify(ctx, r.owner, n, func() *xmlstream.Element {
				ev := xmlstream.NewElement(nsPubSubEvent, "event")
				ev.AddChild(xmlstream.NewElement(nsPubSubEvent, "delete")).SetAttr("node", name)
				return ev
			})
			return stanza.Result(el)
		}
	case "purge":
		err = m.deps.PEP.PurgePEPNode(ctx, owner, name)
		if err == nil {
			m.pepNotify(ctx, r.owner, n, func() *xmlstream.Element {
				ev := xmlstream.NewElement(nsPubSubEvent, "event")
				ev.AddChild(xmlstream.NewElement(nsPubSubEvent, "purge")).SetAttr("node", name)
				return ev
			})
			return stanza.Result(el)
		}
	}
	m.log.Error("pep "+op.Local, "user", owner, "node", name, "err", err)
	return stanza.ErrorReply(el, stanza.InternalServerError, "")
}

// pepDiscoItems lists the nodes of owner that the asker may read.
func (m *SM) pepDiscoItems(ctx context.Context, r pepRequest) *xmlstream.Element {
	nodes, err := m.deps.PEP.PEPNodes(ctx, r.owner.String())
	if err != nil {
		m.log.Error("pep nodes", "user", r.owner.String(), "err", err)
		return stanza.ErrorReply(r.el, stanza.InternalServerError, "")
	}
	res := stanza.Result(r.el)
	q := res.AddChild(xmlstream.NewElement(stanza.NSDiscoItems, "query"))
	for _, n := range nodes {
		if cond, _ := m.mayRead(ctx, r.owner, r.from, n); cond != "" {
			continue
		}
		it := q.AddChild(xmlstream.NewElement(stanza.NSDiscoItems, "item"))
		it.SetAttr("jid", r.owner.String())
		it.SetAttr("node", n.Node)
	}
	return res
}

// eventMessage wraps an event for one recipient.
func eventMessage(owner, to jid.JID, ev *xmlstream.Element) *xmlstream.Element {
	msg := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	msg.SetAttr("type", "headline")
	msg.SetAttr("from", owner.String())
	msg.SetAttr("to", to.String())
	msg.SetAttr("id", stanza.NewID())
	msg.AddChild(ev)
	return msg
}

// pepNotify sends an event of node n to every session that asked for it
// through its capabilities and may read the node. mk builds a fresh event
// for each recipient, since a routed stanza belongs to its receiver.
func (m *SM) pepNotify(ctx context.Context, owner jid.JID, n storage.PEPNode, mk func() *xmlstream.Element) {
	for _, to := range m.notifyTargets(owner, n.Node) {
		if cond, _ := m.mayRead(ctx, owner, to, n); cond != "" {
			continue
		}
		m.pepSend(ctx, owner, to, eventMessage(owner, to, mk()))
	}
}

// pepSend delivers a notification: to one of the owner's own sessions
// directly, and only while it is available, so that a headline for a
// session gone does not reach the others; anything else goes through the
// router, local or not.
func (m *SM) pepSend(ctx context.Context, owner, to jid.JID, msg *xmlstream.Element) {
	if !to.Bare().Equal(owner) {
		m.deps.Router.Route(ctx, router.Stanza{El: msg, From: owner, To: to})
		return
	}
	u := m.user(owner.String())
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, x := range u.sessions {
		if x.available && x.s.JID().Equal(to) {
			x.s.Deliver(msg)
		}
	}
}

// pepSendLast sends full the last published item of every node of owner
// that its features ask notifications of (XEP-0163 §4.3), unless the node
// says never or full may not read it.
func (m *SM) pepSendLast(ctx context.Context, owner, full jid.JID, feats map[string]bool) {
	nodes, err := m.deps.PEP.PEPNodes(ctx, owner.String())
	if err != nil {
		m.log.Error("pep nodes", "user", owner.String(), "err", err)
		return
	}
	for _, n := range nodes {
		if !feats[n.Node+"+notify"] || n.SendLast == storage.PEPSendLastNever {
			continue
		}
		if cond, _ := m.mayRead(ctx, owner, full, n); cond != "" {
			continue
		}
		items, err := m.deps.PEP.PEPItems(ctx, owner.String(), n.Node, nil, 1)
		if err != nil || len(items) == 0 {
			continue
		}
		m.pepSend(ctx, owner, full, eventMessage(owner, full, itemsEvent(n.Node, items)))
	}
}
