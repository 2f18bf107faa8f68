package migrate

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/ambrosia-xmpp/ambrosia/internal/mam"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// exportPrivateKeys returns the private XML namespaces an export looks
// for: storage keeps documents by namespace without listing them, so the
// export asks for those clients use (XEP-0048 bookmarks, XEP-0145 roster
// notes, XEP-0209 metacontacts, XEP-0049's own example).
func exportPrivateKeys() []string {
	return []string{"storage:bookmarks", "storage:rosternotes", "storage:metacontacts", "storage:imprefs", "exodus:prefs", "gajim:prefs"}
}

// Export reads the accounts of domains (all domains when empty) from st
// with their data, message archives included. Rooms are not part of XEP-0227 and are not read.
func Export(ctx context.Context, st Store, domains []string) (*Data, error) {
	d := &Data{}
	var users []string
	if len(domains) == 0 {
		domains = []string{""}
	}
	for _, dom := range domains {
		us, err := st.ListAccounts(ctx, dom)
		if err != nil {
			return nil, err
		}
		users = append(users, us...)
	}
	for _, j := range users {
		u := &User{JID: j, Source: "store"}
		for _, h := range []string{"SHA-1", "SHA-256", "SHA-512"} {
			c, err := st.Credential(ctx, j, h)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			u.Credentials = append(u.Credentials, c)
		}
		items, _, err := st.RosterItems(ctx, j)
		if err != nil {
			return nil, err
		}
		u.Roster = items
		get := func(key string) ([]byte, error) {
			b, err := st.PrivateXML(ctx, j, key)
			if errors.Is(err, storage.ErrNotFound) || err == nil && len(b) == 0 {
				return nil, nil
			}
			return b, err
		}
		if u.VCard, err = get(nsVCard); err != nil {
			return nil, err
		}
		for _, k := range exportPrivateKeys() {
			b, err := get(k)
			if err != nil {
				return nil, err
			}
			if b != nil {
				u.Private = append(u.Private, PrivateItem{Key: k, XML: b})
			}
		}
		msgs, err := st.OfflineMessages(ctx, j)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			u.Offline = append(u.Offline, OfflineMessage{Stanza: m.Stanza, Stored: m.Stored})
		}
		nodes, err := st.PEPNodes(ctx, j)
		if err != nil {
			return nil, err
		}
		for _, n := range nodes {
			its, err := st.PEPItems(ctx, j, n.Node, nil, 0)
			if err != nil {
				return nil, err
			}
			// Newest first from storage; oldest first in the file, the
			// order they are published again on import.
			for i, k := 0, len(its)-1; i < k; i, k = i+1, k-1 {
				its[i], its[k] = its[k], its[i]
			}
			u.PEP = append(u.PEP, PEPNode{Config: n, Items: its})
		}
		q := storage.ArchiveQuery{Max: 1000}
		for {
			page, err := st.QueryArchive(ctx, j, q)
			if err != nil {
				return nil, err
			}
			for _, it := range page.Items {
				u.Archive = append(u.Archive, ArchivedMessage{Stanza: it.Stanza, Stamp: it.Stamp, With: it.With})
			}
			if page.Complete || len(page.Items) == 0 {
				break
			}
			q.AfterID = page.Items[len(page.Items)-1].ID
		}
		d.Users = append(d.Users, u)
	}
	return d, nil
}

// WriteOptions tune what WriteXEP0227 writes.
type WriteOptions struct {
	// KeysBase64Twice encodes SCRAM salts and keys in base64 twice, as
	// ejabberd 23.01 writes and reads them (it keeps them in base64 and
	// encodes once more): ejabberdctl import_piefxis of a file written
	// without it gives accounts nobody can log in to.
	KeysBase64Twice bool
}

// WriteXEP0227 writes d's users as one XEP-0227 document, grouped by
// host in the order first met.
func WriteXEP0227(w io.Writer, d *Data) error { return WriteXEP0227With(w, d, WriteOptions{}) }

// WriteXEP0227With is WriteXEP0227 with options.
func WriteXEP0227With(w io.Writer, d *Data, o WriteOptions) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='" + NSPIE + "'>\n")
	var hosts []string
	byHost := map[string][]*User{}
	for _, u := range d.Users {
		h, err := storage.UserDomain(u.JID)
		if err != nil {
			return err
		}
		if _, ok := byHost[h]; !ok {
			hosts = append(hosts, h)
		}
		byHost[h] = append(byHost[h], u)
	}
	for _, h := range hosts {
		host := xmlstream.NewElement(NSPIE, "host")
		host.SetAttr("jid", h)
		open := host.AppendXML(nil, NSPIE)
		// Write the host's start tag, then one user per line.
		bw.WriteString("  " + string(open[:len(open)-2]) + ">\n")
		for _, u := range byHost[h] {
			el, err := userElement(u, o)
			if err != nil {
				return fmt.Errorf("%s: %w", u.JID, err)
			}
			bw.WriteString("    ")
			bw.Write(el.AppendXML(nil, NSPIE))
			bw.WriteString("\n")
		}
		bw.WriteString("  </host>\n")
	}
	bw.WriteString("</server-data>\n")
	return bw.Flush()
}

func userElement(u *User, o WriteOptions) (*xmlstream.Element, error) {
	b64 := func(b []byte) string {
		s := base64.StdEncoding.EncodeToString(b)
		if o.KeysBase64Twice {
			s = base64.StdEncoding.EncodeToString([]byte(s))
		}
		return s
	}
	local, _, _ := cutAt(u.JID)
	el := xmlstream.NewElement(NSPIE, "user")
	el.SetAttr("name", local)
	if u.Password != "" {
		el.SetAttr("password", u.Password)
	}
	for _, c := range u.Credentials {
		sc := xmlstream.NewElement(nsPIESCRAM, "scram-credentials")
		sc.SetAttr("mechanism", "SCRAM-"+c.Hash)
		add := func(name, v string) { sc.AddChild(xmlstream.NewElement(nsPIESCRAM, name)).AddText(v) }
		add("iter-count", strconv.Itoa(c.Iterations))
		add("salt", b64(c.Salt))
		add("server-key", b64(c.ServerKey))
		add("stored-key", b64(c.StoredKey))
		el.AddChild(sc)
	}
	var pending []string
	if len(u.Roster) > 0 {
		q := xmlstream.NewElement(nsRoster, "query")
		for _, it := range u.Roster {
			if it.PendingIn {
				pending = append(pending, it.Contact)
			}
			if it.PendingIn && it.Subscription == storage.SubscriptionNone && !it.Ask && it.Name == "" && len(it.Groups) == 0 {
				// Only a request: ejabberd and Prosody keep no item.
				continue
			}
			item := xmlstream.NewElement(nsRoster, "item")
			item.SetAttr("jid", it.Contact)
			if it.Name != "" {
				item.SetAttr("name", it.Name)
			}
			sub := it.Subscription
			if sub == "" {
				sub = storage.SubscriptionNone
			}
			item.SetAttr("subscription", sub)
			if it.Ask {
				item.SetAttr("ask", "subscribe")
			}
			if it.Approved {
				item.SetAttr("approved", "true")
			}
			for _, g := range it.Groups {
				item.AddChild(xmlstream.NewElement(nsRoster, "group")).AddText(g)
			}
			q.AddChild(item)
		}
		if len(q.Children()) > 0 {
			el.AddChild(q)
		}
	}
	for _, p := range pending {
		pr := xmlstream.NewElement(xmlstream.NSClient, "presence")
		pr.SetAttr("from", p)
		pr.SetAttr("to", u.JID)
		pr.SetAttr("type", "subscribe")
		el.AddChild(pr)
	}
	if u.VCard != nil {
		v, err := xmlstream.ParseStanza(u.VCard, "")
		if err != nil {
			return nil, fmt.Errorf("vCard: %w", err)
		}
		el.AddChild(v)
	}
	if len(u.Private) > 0 {
		q := xmlstream.NewElement(nsPrivate, "query")
		for _, p := range u.Private {
			v, err := xmlstream.ParseStanza(p.XML, "")
			if err != nil {
				return nil, fmt.Errorf("private XML %s: %w", p.Key, err)
			}
			q.AddChild(v)
		}
		el.AddChild(q)
	}
	if len(u.Offline) > 0 {
		off := xmlstream.NewElement(NSPIE, "offline-messages")
		for _, m := range u.Offline {
			v, err := xmlstream.ParseStanza(m.Stanza, xmlstream.NSClient)
			if err != nil {
				return nil, fmt.Errorf("offline message: %w", err)
			}
			v.Space = xmlstream.NSClient
			off.AddChild(v)
		}
		el.AddChild(off)
	}
	if len(u.Archive) > 0 {
		arch := xmlstream.NewElement(nsPIEMAM, "archive")
		for _, m := range u.Archive {
			v, err := xmlstream.ParseStanza(m.Stanza, xmlstream.NSClient)
			if err != nil {
				return nil, fmt.Errorf("archived message: %w", err)
			}
			v.Space = xmlstream.NSClient
			res := arch.AddChild(xmlstream.NewElement(nsMAM, "result"))
			res.SetAttr("id", mam.IDAt(m.Stamp))
			fwd := res.AddChild(xmlstream.NewElement(nsForward, "forwarded"))
			fwd.AddChild(xmlstream.NewElement(nsDelay, "delay")).SetAttr("stamp", m.Stamp.UTC().Format(mam.StampFormat))
			fwd.AddChild(v)
		}
		el.AddChild(arch)
	}
	if len(u.PEP) > 0 {
		owner := xmlstream.NewElement(nsPubSubOwner, "pubsub")
		items := xmlstream.NewElement(nsPubSub, "pubsub")
		for _, n := range u.PEP {
			cfg := owner.AddChild(xmlstream.NewElement(nsPubSubOwner, "configure"))
			cfg.SetAttr("node", n.Config.Node)
			cfg.AddChild(pepForm(n.Config))
			if len(n.Items) == 0 {
				continue
			}
			is := items.AddChild(xmlstream.NewElement(nsPubSub, "items"))
			is.SetAttr("node", n.Config.Node)
			for _, it := range n.Items {
				v, err := xmlstream.ParseStanza(it.Payload, "")
				if err != nil {
					return nil, fmt.Errorf("PEP item %s/%s: %w", n.Config.Node, it.ID, err)
				}
				item := is.AddChild(xmlstream.NewElement(nsPubSub, "item"))
				item.SetAttr("id", it.ID)
				item.AddChild(v)
			}
		}
		el.AddChild(owner)
		if len(items.Children()) > 0 {
			el.AddChild(items)
		}
	}
	return el, nil
}

func pepForm(n storage.PEPNode) *xmlstream.Element {
	x := xmlstream.NewElement(nsXData, "x")
	x.SetAttr("type", "submit")
	field := func(v, val string) {
		f := x.AddChild(xmlstream.NewElement(nsXData, "field"))
		f.SetAttr("var", v)
		if v == "FORM_TYPE" {
			f.SetAttr("type", "hidden")
		}
		f.AddChild(xmlstream.NewElement(nsXData, "value")).AddText(val)
	}
	b := func(v bool) string {
		if v {
			return "true"
		}
		return "false"
	}
	field("FORM_TYPE", "http://jabber.org/protocol/pubsub#node_config")
	field("pubsub#access_model", n.AccessModel)
	max := "max"
	if n.MaxItems > 0 {
		max = strconv.Itoa(n.MaxItems)
	}
	field("pubsub#max_items", max)
	field("pubsub#persist_items", b(n.PersistItems))
	field("pubsub#send_last_published_item", n.SendLast)
	field("pubsub#notify_retract", b(n.NotifyRetract))
	return x
}

func cutAt(j string) (local, domain string, ok bool) {
	for i := 0; i < len(j); i++ {
		if j[i] == '@' {
			return j[:i], j[i+1:], true
		}
	}
	return "", j, false
}
