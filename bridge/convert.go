package bridge

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces of the extensions the model knows.
const (
	nsChatStates = "http://jabber.org/protocol/chatstates"
	nsCorrect    = "urn:xmpp:message-correct:0"
	nsReply      = "urn:xmpp:reply:0"
	nsReactions  = "urn:xmpp:reactions:0"
	nsRetract    = "urn:xmpp:message-retract:1"
	nsReceipts   = "urn:xmpp:receipts"
	nsMarkers    = "urn:xmpp:chat-markers:0"
	nsOOB        = "jabber:x:oob"
	nsSFS        = "urn:xmpp:sfs:0"
	nsFileMeta   = "urn:xmpp:file:metadata:0"
	nsURLData    = "http://jabber.org/protocol/url-data"
	nsSID        = "urn:xmpp:sid:0"
	nsDelay      = "urn:xmpp:delay"
	nsMUCUser    = "http://jabber.org/protocol/muc#user"
	nsCarbons    = "urn:xmpp:carbons:2"
	nsForward    = "urn:xmpp:forward:0"
	nsPrivilege  = "urn:xmpp:privilege:2"
	nsRosterX    = "http://jabber.org/protocol/rosterx"
	nsNick       = "http://jabber.org/protocol/nick"
	nsVCardUpd   = "vcard-temp:x:update"
	nsVCard      = "vcard-temp"
)

const stampFormat = "2006-01-02T15:04:05Z"

// inbound is an XMPP message read into the model, with what else it
// carries.
type inbound struct {
	msg       Message
	xmppID    string // origin-id, else the id attribute
	state     ChatState
	reaction  *Reaction // reactions to an XMPP id, mapped later
	reactTo   string
	retract   string // XMPP id retracted
	displayed string // XMPP id of a displayed marker
	replace   string // XMPP id corrected
	replyTo   string // XMPP id answered
	receipt   bool   // asks for a receipt
	hasBody   bool
}

// readMessage reads an XMPP message into the model. Elements the model
// does not know go to Extensions, serialized as they came.
func readMessage(el *xmlstream.Element) inbound {
	in := inbound{xmppID: el.Attr("id")}
	var sfs []Attachment
	for c := range el.ChildElements {
		switch {
		case isContent(c.Space) && c.Local == "body":
			in.msg.Body = c.Text()
			in.hasBody = true
		case c.Space == nsSID && c.Local == "origin-id":
			if id := c.Attr("id"); id != "" {
				in.xmppID = id
			}
		case c.Space == nsSID && c.Local == "stanza-id":
			// The sender's server's id, not ours to keep.
		case c.Space == nsChatStates:
			in.state = ChatState(c.Local)
		case c.Space == nsCorrect && c.Local == "replace":
			in.replace = c.Attr("id")
		case c.Space == nsReply && c.Local == "reply":
			in.replyTo = c.Attr("id")
		case c.Space == nsReactions && c.Local == "reactions":
			r := Reaction{}
			for e := range c.ChildElements {
				if e.Local == "reaction" && e.Space == nsReactions {
					r.Emojis = append(r.Emojis, e.Text())
				}
			}
			in.reaction, in.reactTo = &r, c.Attr("id")
		case c.Space == nsRetract && c.Local == "retract":
			in.retract = c.Attr("id")
		case c.Space == nsReceipts && c.Local == "request":
			in.receipt = true
		case c.Space == nsReceipts:
			// Receipts from the user's client go no further.
		case c.Space == nsMarkers && c.Local == "displayed":
			in.displayed = c.Attr("id")
		case c.Space == nsMarkers && c.Local == "markable":
		case c.Space == nsOOB && c.Local == "x":
			a := Attachment{}
			if u := c.Child(nsOOB, "url"); u != nil {
				a.URL = u.Text()
			}
			if d := c.Child(nsOOB, "desc"); d != nil {
				a.Name = d.Text()
			}
			if a.URL != "" {
				in.msg.Attachments = append(in.msg.Attachments, a)
			}
		case c.Space == nsSFS && c.Local == "file-sharing":
			if a, ok := readFileSharing(c); ok {
				sfs = append(sfs, a)
			}
		case c.Space == nsDelay && c.Local == "delay":
			if t, err := time.Parse(time.RFC3339Nano, c.Attr("stamp")); err == nil {
				in.msg.Time = t
			}
		default:
			in.msg.Extensions = append(in.msg.Extensions, extension(c))
		}
	}
	// A client that shares a file with XEP-0447 usually adds XEP-0066 for
	// older clients: the same URL once, with what the first tells more.
	for _, f := range sfs {
		i := slices.IndexFunc(in.msg.Attachments, func(a Attachment) bool { return a.URL == f.URL })
		if i < 0 {
			in.msg.Attachments = append(in.msg.Attachments, f)
			continue
		}
		if f.Name != "" {
			in.msg.Attachments[i].Name = f.Name
		}
		in.msg.Attachments[i].MediaType, in.msg.Attachments[i].Size = f.MediaType, f.Size
	}
	if strings.HasPrefix(in.msg.Body, "/me ") {
		in.msg.Action = true
		in.msg.Body = in.msg.Body[len("/me "):]
	}
	if len(in.msg.Attachments) == 1 && in.msg.Body == in.msg.Attachments[0].URL {
		// A client that shares a file puts its URL in the body too.
		in.msg.Body = ""
	}
	return in
}

func isContent(ns string) bool {
	return ns == xmlstream.NSClient || ns == xmlstream.NSServer || ns == xmlstream.NSComponent
}

// extension serializes an element the model does not know, elements of
// the content namespace in jabber:client whatever stream it came on.
func extension(c *xmlstream.Element) Extension {
	if isContent(c.Space) && c.Space != xmlstream.NSClient {
		c = c.ShallowCopy()
		c.Space = xmlstream.NSClient
	}
	return Extension{XML: string(c.AppendXML(nil, ""))}
}

// ids are the XMPP ids the conversion needs: those of the messages a
// correction, a reply or a reaction points to, already mapped.
type ids struct {
	id, replaces, replyTo string
}

// writeMessage builds the XMPP message of a model message, from and to
// set by the caller.
func writeMessage(typ string, m Message, x ids) *xmlstream.Element {
	el := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	if typ != "" {
		el.SetAttr("type", typ)
	}
	el.SetAttr("id", x.id)
	body := m.Body
	if m.Action {
		body = "/me " + body
	}
	if body == "" && len(m.Attachments) > 0 {
		body = m.Attachments[0].URL
	}
	if body != "" {
		el.AddChild(xmlstream.NewElement(xmlstream.NSClient, "body")).AddText(body)
	}
	for _, a := range m.Attachments {
		oob := el.AddChild(xmlstream.NewElement(nsOOB, "x"))
		oob.AddChild(xmlstream.NewElement(nsOOB, "url")).AddText(a.URL)
		if a.Name != "" {
			oob.AddChild(xmlstream.NewElement(nsOOB, "desc")).AddText(a.Name)
		}
		el.AddChild(fileSharing(a))
	}
	if x.replaces != "" {
		el.AddChild(xmlstream.NewElement(nsCorrect, "replace")).SetAttr("id", x.replaces)
	}
	if x.replyTo != "" {
		el.AddChild(xmlstream.NewElement(nsReply, "reply")).SetAttr("id", x.replyTo)
	}
	el.AddChild(xmlstream.NewElement(nsSID, "origin-id")).SetAttr("id", x.id)
	el.AddChild(xmlstream.NewElement(nsMarkers, "markable"))
	if !m.Time.IsZero() && time.Since(m.Time) > 2*time.Second {
		d := el.AddChild(xmlstream.NewElement(nsDelay, "delay"))
		d.SetAttr("stamp", m.Time.UTC().Format(stampFormat))
	}
	for _, e := range m.Extensions {
		c, err := xmlstream.ParseStanza([]byte(e.XML), xmlstream.NSClient)
		if err != nil {
			continue // a network that mangled it: drop rather than send broken XML
		}
		el.AddChild(c)
	}
	return el
}

// bare builds a message with one payload element, from and to set by the
// caller.
func bare(typ string, payload *xmlstream.Element) *xmlstream.Element {
	el := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	if typ != "" {
		el.SetAttr("type", typ)
	}
	el.SetAttr("id", stanza.NewID())
	if payload != nil {
		el.AddChild(payload)
	}
	return el
}

// readFileSharing reads an XEP-0447 file shared by URL; other sources
// (Jingle, encrypted) are not links the network could follow.
func readFileSharing(c *xmlstream.Element) (Attachment, bool) {
	var a Attachment
	if src := c.Child(nsSFS, "sources"); src != nil {
		if u := src.Child(nsURLData, "url-data"); u != nil {
			a.URL = u.Attr("target")
		}
	}
	if f := c.Child(nsFileMeta, "file"); f != nil {
		if n := f.Child(nsFileMeta, "name"); n != nil {
			a.Name = n.Text()
		}
		if t := f.Child(nsFileMeta, "media-type"); t != nil {
			a.MediaType = t.Text()
		}
		if z := f.Child(nsFileMeta, "size"); z != nil {
			a.Size, _ = strconv.ParseInt(z.Text(), 10, 64)
		}
	}
	return a, a.URL != ""
}

// fileSharing is an attachment as XEP-0447 shows it, which clients
// display inline with its name, type and size.
func fileSharing(a Attachment) *xmlstream.Element {
	fs := xmlstream.NewElement(nsSFS, "file-sharing")
	fs.SetAttr("disposition", "inline")
	f := fs.AddChild(xmlstream.NewElement(nsFileMeta, "file"))
	if a.MediaType != "" {
		f.AddChild(xmlstream.NewElement(nsFileMeta, "media-type")).AddText(a.MediaType)
	}
	if a.Name != "" {
		f.AddChild(xmlstream.NewElement(nsFileMeta, "name")).AddText(a.Name)
	}
	if a.Size > 0 {
		f.AddChild(xmlstream.NewElement(nsFileMeta, "size")).AddText(strconv.FormatInt(a.Size, 10))
	}
	fs.AddChild(xmlstream.NewElement(nsSFS, "sources")).AddChild(xmlstream.NewElement(nsURLData, "url-data")).SetAttr("target", a.URL)
	return fs
}
