package bot

import (
	"context"
	"fmt"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// A RosterItem is a contact in the bot's roster (RFC 6121 §2).
type RosterItem struct {
	// JID is the contact's bare JID.
	JID string
	// Name is the name the bot gives the contact, "" for none.
	Name string
	// Subscription is none, to, from or both: whether the bot sees the
	// contact's presence (to), the contact the bot's (from), or both. The
	// server keeps it; SetRosterItem ignores it.
	Subscription string
	// Pending says the bot asked to see the contact's presence and the
	// contact has not answered yet.
	Pending bool
	// Groups are the roster groups the contact is in.
	Groups []string
}

// Roster returns the bot's roster.
func (b *Bot) Roster(ctx context.Context) ([]RosterItem, error) {
	res, err := b.SendIQ(ctx, "", "get", "<query xmlns='"+stanza.NSRoster+"'/>")
	if err != nil {
		return nil, err
	}
	if res.Payload.XML == "" {
		return nil, nil
	}
	q, err := xmlstream.ParseStanza([]byte(res.Payload.XML), nsClient)
	if err != nil {
		return nil, fmt.Errorf("bot: roster: %w", err)
	}
	var items []RosterItem
	for it := range q.ChildElements {
		if it.Local != "item" || it.Space != stanza.NSRoster {
			continue
		}
		ri := RosterItem{JID: it.Attr("jid"), Name: it.Attr("name"), Subscription: it.Attr("subscription"), Pending: it.Attr("ask") == "subscribe"}
		if ri.Subscription == "" {
			ri.Subscription = "none"
		}
		for g := range it.ChildElements {
			if g.Local == "group" {
				ri.Groups = append(ri.Groups, strings.TrimSpace(g.Text()))
			}
		}
		items = append(items, ri)
	}
	return items, nil
}

// SetRosterItem adds a contact to the roster or changes its name and
// groups. It does not ask for the contact's presence: Subscribe does.
func (b *Bot) SetRosterItem(ctx context.Context, item RosterItem) error {
	j, err := jid.Parse(item.JID)
	if err != nil {
		return fmt.Errorf("bot: %q: %w", item.JID, err)
	}
	it := xmlstream.NewElement(stanza.NSRoster, "item")
	it.SetAttr("jid", j.BareString())
	if item.Name != "" {
		it.SetAttr("name", item.Name)
	}
	for _, g := range item.Groups {
		it.AddChild(xmlstream.NewElement(stanza.NSRoster, "group")).AddText(g)
	}
	return b.setRoster(ctx, it)
}

// RemoveRosterItem removes a contact from the roster, which also ends
// the subscriptions both ways.
func (b *Bot) RemoveRosterItem(ctx context.Context, contact string) error {
	j, err := jid.Parse(contact)
	if err != nil {
		return fmt.Errorf("bot: %q: %w", contact, err)
	}
	it := xmlstream.NewElement(stanza.NSRoster, "item")
	it.SetAttr("jid", j.BareString())
	it.SetAttr("subscription", "remove")
	return b.setRoster(ctx, it)
}

func (b *Bot) setRoster(ctx context.Context, item *xmlstream.Element) error {
	q := xmlstream.NewElement(stanza.NSRoster, "query")
	q.AddChild(item)
	_, err := b.SendIQ(ctx, "", "set", string(q.AppendXML(nil, "")))
	return err
}

// Subscribe asks to see the presence of contact (a bare JID); the server
// adds the contact to the roster.
func (b *Bot) Subscribe(ctx context.Context, contact string) error {
	j, err := jid.Parse(contact)
	if err != nil {
		return fmt.Errorf("bot: %q: %w", contact, err)
	}
	return b.sendPresence(ctx, j.BareString(), "subscribe")
}
