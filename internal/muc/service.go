package muc

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/mam"
	"github.com/ambrosia-xmpp/ambrosia/internal/muc/room"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

const nsRSM = "http://jabber.org/protocol/rsm"

// Page sizes of the room directory: without a max a client gets
// defaultItems rooms, and never more than maxItems at once.
const (
	defaultItems = 100
	maxItems     = 500
)

// dirTTL is how long the directory of public rooms read from storage is
// reused: listing every room for each disco#items would cost a read of
// every room's configuration.
const dirTTL = 5 * time.Second

// dirCache is the directory of a service's public rooms, s.mu held.
type dirCache struct {
	at    map[string]time.Time
	items map[string][]dirItem
}

type dirItem struct{ jid, name string }

// ServiceFeatures are the disco#info features of the service itself.
func ServiceFeatures() []string {
	return []string{room.NS, room.NS + "#stable_id", stanza.NSDiscoInfo, stanza.NSDiscoItems, nsRSM, room.NSVCard, stanza.NSPing}
}

// serviceStanza answers what is sent to the service's own JID.
func (s *Service) serviceStanza(ctx context.Context, st router.Stanza) {
	if !stanza.IsRequest(st.El) {
		return
	}
	get := st.El.Attr("type") == "get"
	switch {
	case get && st.El.Child(stanza.NSDiscoInfo, "query") != nil:
		q := st.El.Child(stanza.NSDiscoInfo, "query")
		if q.Attr("node") != "" {
			s.bounce(ctx, st, stanza.ItemNotFound, "")
			return
		}
		r := stanza.Result(st.El)
		rq := r.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "query"))
		id := rq.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "identity"))
		id.SetAttr("category", "conference")
		id.SetAttr("type", "text")
		id.SetAttr("name", s.cfg.Name)
		for _, f := range ServiceFeatures() {
			rq.AddChild(xmlstream.NewElement(stanza.NSDiscoInfo, "feature")).SetAttr("var", f)
		}
		s.reply(ctx, st, r)
	case get && st.El.Child(stanza.NSDiscoItems, "query") != nil:
		s.directory(ctx, st, st.El.Child(stanza.NSDiscoItems, "query"))
	case get && st.El.Child(stanza.NSPing, "ping") != nil:
		s.reply(ctx, st, stanza.Result(st.El))
	case st.El.Child(room.NSVCard, "vCard") != nil && get:
		r := stanza.Result(st.El)
		r.AddChild(xmlstream.NewElement(room.NSVCard, "vCard"))
		s.reply(ctx, st, r)
	default:
		s.bounce(ctx, st, stanza.ServiceUnavailable, "")
	}
}

// publicRooms lists the rooms of a service anyone may discover: stored,
// public, configured, sorted by JID.
func (s *Service) publicRooms(ctx context.Context, service string) ([]dirItem, error) {
	s.mu.Lock()
	if at, ok := s.dirCache.at[service]; ok && time.Since(at) < dirTTL {
		items := s.dirCache.items[service]
		s.mu.Unlock()
		return items, nil
	}
	s.mu.Unlock()
	rooms, err := s.deps.Store.MUCRooms(ctx, service)
	if err != nil {
		return nil, err
	}
	var items []dirItem
	for _, rec := range rooms {
		st, err := decodeState(rec.Config)
		if err != nil || !st.Config.Public || st.Locked {
			continue
		}
		name := st.Config.Name
		if name == "" {
			name, _, _ = strings.Cut(rec.Room, "@")
		}
		items = append(items, dirItem{jid: rec.Room, name: name})
	}
	s.mu.Lock()
	if s.dirCache.at == nil {
		s.dirCache.at, s.dirCache.items = map[string]time.Time{}, map[string][]dirItem{}
	}
	s.dirCache.at[service], s.dirCache.items[service] = time.Now(), items
	s.mu.Unlock()
	return items, nil
}

// forgetDirectory drops the cached directory after a room changed.
func (s *Service) forgetDirectory(service string) {
	s.mu.Lock()
	delete(s.dirCache.at, service)
	s.mu.Unlock()
}

// directory answers disco#items on the service with its public rooms,
// paged with result set management (XEP-0059) for services with many.
func (s *Service) directory(ctx context.Context, st router.Stanza, q *xmlstream.Element) {
	if q.Attr("node") != "" {
		s.bounce(ctx, st, stanza.ItemNotFound, "")
		return
	}
	items, err := s.publicRooms(ctx, st.To.Domain())
	if err != nil {
		s.log.Error("room directory", "err", err)
		s.bounce(ctx, st, stanza.InternalServerError, "")
		return
	}
	max, after, before, last := defaultItems, "", "", false
	set := q.Child(nsRSM, "set")
	if set != nil {
		if m := set.Child(nsRSM, "max"); m != nil {
			n, err := strconv.Atoi(m.Text())
			if err != nil || n < 0 {
				s.bounce(ctx, st, stanza.BadRequest, "Bad RSM max.")
				return
			}
			max = n
		}
		if a := set.Child(nsRSM, "after"); a != nil {
			after = a.Text()
		}
		if b := set.Child(nsRSM, "before"); b != nil {
			before, last = b.Text(), true
		}
		if set.Child(nsRSM, "index") != nil {
			s.bounce(ctx, st, stanza.FeatureNotImplemented, "RSM index is not supported.")
			return
		}
	}
	max = min(max, maxItems)
	lo, hi := 0, len(items)
	if after != "" {
		i, found := slices.BinarySearchFunc(items, after, func(d dirItem, k string) int { return strings.Compare(d.jid, k) })
		if !found {
			s.bounce(ctx, st, stanza.ItemNotFound, "No such room to page after.")
			return
		}
		lo = i + 1
	}
	if before != "" {
		i, found := slices.BinarySearchFunc(items, before, func(d dirItem, k string) int { return strings.Compare(d.jid, k) })
		if !found {
			s.bounce(ctx, st, stanza.ItemNotFound, "No such room to page before.")
			return
		}
		hi = i
	}
	if lo > hi {
		lo = hi
	}
	page := items[lo:hi]
	first := lo
	if len(page) > max {
		if last {
			first = hi - max
			page = items[hi-max : hi]
		} else {
			page = page[:max]
		}
	}
	r := stanza.Result(st.El)
	rq := r.AddChild(xmlstream.NewElement(stanza.NSDiscoItems, "query"))
	for _, it := range page {
		e := rq.AddChild(xmlstream.NewElement(stanza.NSDiscoItems, "item"))
		e.SetAttr("jid", it.jid)
		e.SetAttr("name", it.name)
	}
	if set != nil {
		rs := rq.AddChild(xmlstream.NewElement(nsRSM, "set"))
		if len(page) > 0 {
			f := rs.AddChild(xmlstream.NewElement(nsRSM, "first"))
			f.SetAttr("index", strconv.Itoa(first))
			f.AddText(page[0].jid)
			rs.AddChild(xmlstream.NewElement(nsRSM, "last")).AddText(page[len(page)-1].jid)
		}
		rs.AddChild(xmlstream.NewElement(nsRSM, "count")).AddText(strconv.Itoa(len(items)))
	}
	s.reply(ctx, st, r)
}

// archiveQuery serves a query of a room's archive (XEP-0313 §5.2) or of
// its form, for those the room lets read it, and returns the stanzas to
// send: the room's lock is held, so nothing is routed here.
func (s *Service) archiveQuery(ctx context.Context, r *room.Room, st router.Stanza, q *xmlstream.Element) []room.Delivery {
	answer := func(el *xmlstream.Element) []room.Delivery {
		el.SetAttr("from", st.To.String())
		el.RemoveAttr("to")
		return []room.Delivery{{El: el, To: []jid.JID{st.From}}}
	}
	fail := func(cond, text string) []room.Delivery {
		return answer(stanza.ErrorReply(st.El, cond, text))
	}
	if !s.cfg.Archive || !r.MayReadArchive(st.From) {
		cond := stanza.Forbidden
		if !s.cfg.Archive || !r.Config().Logging {
			cond = stanza.ServiceUnavailable
		}
		return fail(cond, "")
	}
	if st.El.Attr("type") == "get" {
		return answer(mam.FormResult(st.El))
	}
	aq, err := mam.ParseQuery(q, false)
	if err != nil {
		return fail(stanza.BadRequest, err.Error())
	}
	key := st.To.BareString()
	s.writer.Flush()
	page, err := s.deps.Store.QueryArchive(ctx, key, aq)
	if err != nil {
		cond := stanza.InternalServerError
		if isNotFound(err) {
			cond = stanza.ItemNotFound
		} else {
			s.log.Error("room archive query", "room", key, "err", err)
		}
		return fail(cond, "")
	}
	queryID := q.Attr("queryid")
	var out []room.Delivery
	for _, it := range page.Items {
		orig, err := mam.ParseStored(it.Stanza)
		if err != nil {
			s.log.Error("archived message unreadable, skipped", "room", key, "id", it.ID, "err", err)
			continue
		}
		m := mam.ResultMessage(queryID, it, orig)
		m.SetAttr("from", key)
		out = append(out, room.Delivery{El: m, To: []jid.JID{st.From}})
	}
	return append(out, answer(mam.Fin(st.El, page))...)
}
