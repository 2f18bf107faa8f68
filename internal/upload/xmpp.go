package upload

import (
	"context"
	"fmt"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces of HTTP File Upload and of data forms (XEP-0004).
const (
	NS     = "urn:xmpp:http:upload:0"
	nsData = "jabber:x:data"
)

// defaultContentType is assumed when a request names no type, as HTTP
// does for content of unknown type.
const defaultContentType = "application/octet-stream"

// HandleStanza implements router.Component: it answers disco, ping and
// slot requests and refuses any other request.
func (s *Service) HandleStanza(ctx context.Context, st router.Stanza) {
	if !stanza.IsRequest(st.El) {
		// Messages, presence and IQ answers carry nothing the service acts on.
		return
	}
	parent, ok := s.parents[st.To.Domain()]
	if !ok {
		s.bounce(ctx, st, stanza.ServiceUnavailable, "")
		return
	}
	if !st.To.IsBare() || st.To.Local() != "" {
		// Only the service itself exists: no users or resources under it.
		s.bounce(ctx, st, stanza.ServiceUnavailable, "")
		return
	}
	get := st.El.Attr("type") == "get"
	switch {
	case get && st.El.Child(stanza.NSDiscoInfo, "query") != nil && st.El.Child(stanza.NSDiscoInfo, "query").Attr("node") == "":
		s.reply(ctx, st, s.discoInfo(st.El))
	case get && st.El.Child(stanza.NSDiscoItems, "query") != nil:
		r := stanza.Result(st.El)
		r.AddChild(xmlstream.NewElement(stanza.NSDiscoItems, "query"))
		s.reply(ctx, st, r)
	case get && st.El.Child(stanza.NSPing, "ping") != nil:
		s.reply(ctx, st, stanza.Result(st.El))
	case get && st.El.Child(NS, "request") != nil:
		s.slotRequest(ctx, st, parent, st.El.Child(NS, "request"))
	default:
		s.bounce(ctx, st, stanza.ServiceUnavailable, "")
	}
}

// bounce answers st with an error from the address st was sent to.
func (s *Service) bounce(ctx context.Context, st router.Stanza, condition, text string) {
	s.deps.Router.Route(ctx, router.Stanza{El: s.errorReply(st, condition, text), From: st.To, To: st.From})
}

func (s *Service) errorReply(st router.Stanza, condition, text string) *xmlstream.Element {
	r := stanza.ErrorReply(st.El, condition, text)
	r.SetAttr("from", st.To.String())
	r.SetAttr("to", st.From.String())
	return r
}

func (s *Service) reply(ctx context.Context, st router.Stanza, r *xmlstream.Element) {
	r.SetAttr("from", st.To.String())
	r.SetAttr("to", st.From.String())
	s.deps.Router.Route(ctx, router.Stanza{El: r, From: st.To, To: st.From})
}

// discoInfo answers disco#info: the file store identity, the feature and
// the XEP-0128 form with the size limit, which clients read before they
// ask for a slot.
func (s *Service) discoInfo(iq *xmlstream.Element) *xmlstream.Element {
	r := stanza.Result(iq)
	q := r.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "query"))
	id := q.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "identity"))
	id.SetAttr("category", "store")
	id.SetAttr("type", "file")
	id.SetAttr("name", "HTTP File Upload")
	for _, f := range []string{stanza.NSDiscoInfo, stanza.NSDiscoItems, stanza.NSPing, NS} {
		q.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "feature")).SetAttr("var", f)
	}
	x := q.AddChild(xmlstream.NewElement(nsData, "x"))
	x.SetAttr("type", "result")
	for _, f := range [][3]string{
		{"FORM_TYPE", "hidden", NS},
		{"max-file-size", "", strconv.FormatInt(s.cfg.MaxFileSize, 10)},
	} {
		fe := x.AddChild(xmlstream.NewElement(nsData, "field"))
		fe.SetAttr("var", f[0])
		if f[1] != "" {
			fe.SetAttr("type", f[1])
		}
		fe.AddChild(xmlstream.NewElement(nsData, "value")).AddText(f[2])
	}
	return r
}

// slotRequest answers a slot request (XEP-0363 §4) from a user of parent.
func (s *Service) slotRequest(ctx context.Context, st router.Stanza, parent string, req *xmlstream.Element) {
	if st.From.Domain() != parent || st.From.Local() == "" {
		s.bounce(ctx, st, stanza.Forbidden, "Only users of "+parent+" may upload files here.")
		return
	}
	name, size, ctype, msg := parseRequest(req)
	if msg != "" {
		s.bounce(ctx, st, stanza.BadRequest, msg)
		return
	}
	if size > s.cfg.MaxFileSize {
		r := s.errorReply(st, stanza.NotAcceptable, fmt.Sprintf("File too large: the limit is %d bytes.", s.cfg.MaxFileSize))
		tl := r.Child(r.Space, "error").AddChild(xmlstream.NewElement(NS, "file-too-large"))
		tl.AddChild(xmlstream.NewElement(NS, "max-file-size")).AddText(strconv.FormatInt(s.cfg.MaxFileSize, 10))
		s.deps.Router.Route(ctx, router.Stanza{El: r, From: st.To, To: st.From})
		return
	}
	owner := st.From.BareString()
	now := s.deps.Now()
	expires := now.Add(s.cfg.SlotTimeout)
	id, used, err := s.store.reserve(owner, size, s.cfg.Quota, expires)
	if err != nil {
		r := s.errorReply(st, stanza.ResourceConstraint, fmt.Sprintf(
			"Upload quota exceeded: %d of %d bytes in use, and this file has %d; wait for older files to expire.",
			used, s.cfg.Quota, size))
		if at := s.store.retryAt(owner, size, s.cfg.Quota); !at.IsZero() {
			// XEP-0363 §5: when the request may succeed.
			r.Child(r.Space, "error").AddChild(xmlstream.NewElement(NS, "retry")).SetAttr("stamp", at.UTC().Format(time.RFC3339))
		}
		s.deps.Router.Route(ctx, router.Stanza{El: r, From: st.To, To: st.From})
		return
	}
	path := pathPrefix + id + "/" + name
	tok := signToken(s.store.secret, claims{Path: path, Size: size, ContentType: ctype, Owner: owner, Expires: expires.Unix()})
	u := s.fileURL(st.To.Domain(), id, name)
	s.log.Debug("slot", "owner", owner, "id", id, "size", size, "type", ctype)

	r := stanza.Result(st.El)
	slot := r.AddChild(xmlstream.NewElement(NS, "slot"))
	put := slot.AddChild(xmlstream.NewElement(NS, "put"))
	put.SetAttr("url", u)
	h := put.AddChild(xmlstream.NewElement(NS, "header"))
	h.SetAttr("name", "Authorization")
	h.AddText("Bearer " + tok)
	slot.AddChild(xmlstream.NewElement(NS, "get")).SetAttr("url", u)
	s.reply(ctx, st, r)
}

// fileURL is the public URL of a file, the same for PUT and GET.
func (s *Service) fileURL(service, id, name string) string {
	var u url.URL
	if s.base != nil {
		u = *s.base
	} else {
		u = url.URL{Scheme: "https", Host: service}
		if s.port != "443" {
			u.Host = service + ":" + s.port
		}
	}
	u.Path += pathPrefix + id + "/" + name
	return u.String()
}

// parseRequest reads a slot request's attributes; msg, when not empty,
// says what is wrong with them.
func parseRequest(req *xmlstream.Element) (name string, size int64, ctype, msg string) {
	name = req.Attr("filename")
	if name == "" {
		return "", 0, "", "The filename attribute is missing."
	}
	if !validName(name) {
		return "", 0, "", "Invalid filename: it must be one path segment of printable characters, at most 255 bytes."
	}
	sz := req.Attr("size")
	size, err := strconv.ParseInt(sz, 10, 64)
	if sz == "" || err != nil || size <= 0 {
		return "", 0, "", "The size attribute must be a positive number of bytes."
	}
	ctype = strings.TrimSpace(req.Attr("content-type"))
	if ctype == "" {
		ctype = defaultContentType
	}
	if mt, _, err := mime.ParseMediaType(ctype); err != nil || len(ctype) > 255 || !strings.Contains(mt, "/") {
		return "", 0, "", "Invalid content-type: it must be a MIME type such as image/png."
	}
	return name, size, ctype, ""
}
