// Package muc is the multi-user chat service (XEP-0045): the component
// that serves conference.<domain>, keeps its rooms in storage and runs
// each room on the engine of package room. It answers for the service
// itself (discovery of the service and of its public rooms, with result
// set management), loads a room when a stanza first reaches it, creates
// rooms as its policy allows, archives room messages (XEP-0313 on the
// room JID) and routes what the rooms send.
//
// The same code serves `ambrosia serve`, in process, and `ambrosia service
// muc`, linked to gateways: there rooms spread over instances by a hash
// of the room JID, and an instance that takes over a room loads it from
// the shared store.
package muc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/mam"
	"github.com/ambrosia-xmpp/ambrosia/internal/muc/room"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Who may create rooms.
const (
	CreateAnyone = "anyone" // any user, remote ones included
	CreateLocal  = "local"  // users of the domain the service belongs to
	CreateAdmins = "admins" // the service's admins only
	CreateNobody = "nobody" // rooms exist only as made by other means
)

// Config configures the service.
type Config struct {
	// Services maps each conference domain served to the domain whose
	// users are its local users, e.g. conference.example.org to
	// example.org.
	Services map[string]string
	// Name is the service's name in discovery.
	Name string
	// Create is one of the Create values.
	Create string
	// Admins are bare JIDs that may always create rooms.
	Admins []string
	// MaxRoomsPerUser bounds the rooms one user may have created that
	// still exist; 0 does not limit.
	MaxRoomsPerUser int
	// Archive keeps the messages of rooms with logging on (XEP-0313).
	Archive bool
	// Limits bound each room.
	Limits room.Limits
}

// DefaultConfig is the service as `ambrosia serve` runs it by default.
func DefaultConfig() Config {
	return Config{Name: "Chatrooms", Create: CreateLocal, MaxRoomsPerUser: 100, Archive: true, Limits: room.DefaultLimits()}
}

// Store is what the service keeps in storage: rooms and affiliations, the
// rooms' archives and their vCards.
type Store interface {
	storage.MUC
	storage.Archive
	storage.PrivateData
}

// Metrics receives the service's events; nil records nothing.
type Metrics interface {
	// ArchiveWritten reports n archive entries written.
	ArchiveWritten(n int)
}

// Deps are the service's dependencies.
type Deps struct {
	Router  *router.Router
	Store   Store
	Log     *slog.Logger
	Metrics Metrics
	// Observer hears of joins, leaves and messages in the rooms it
	// watches; nil: nobody.
	Observer Observer
	// Hook decides about messages to rooms before the room takes them
	// ("room_message"); nil lets everything through.
	Hook router.Hook
}

// Observer hears of what happens in rooms, for application services.
type Observer interface {
	// Watches reports whether the events of room (a bare JID) are wanted.
	Watches(room jid.JID) bool
	// RoomEvent reports one event of a watched room; it must return at
	// once (it is called under the room's lock).
	RoomEvent(room jid.JID, ev room.Event)
}

// Service is the conference service of one or more domains.
type Service struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	ids    mam.IDs
	writer *mam.Writer

	mu       sync.Mutex
	rooms    map[string]*entry // loaded rooms by bare JID
	creators map[string]int    // existing rooms by creator's bare JID
	dirCache dirCache
}

// entry is a loaded room; its mutex serializes the room's stanzas, which
// fixes the order every occupant sees them in.
//
// What a room sends is routed after e.mu is released, never under it:
// routing may come back to this room (an invitation to the room itself)
// or reach another room whose stanza waits for this one, and either would
// deadlock. The stanzas wait in out, in order, and whoever finds nobody
// draining it drains it; lock order: e.mu, then e.outMu.
type entry struct {
	mu   sync.Mutex
	r    *room.Room
	gone bool // removed from the service: look it up again

	outMu    sync.Mutex
	out      []room.Delivery
	draining bool
	drained  *sync.Cond // on outMu: signalled when draining stops
}

// enqueue adds what a room sends to its queue, e.mu held.
func (e *entry) enqueue(ds []room.Delivery) {
	if len(ds) == 0 {
		return
	}
	e.outMu.Lock()
	e.out = append(e.out, ds...)
	e.outMu.Unlock()
}

// flush routes the room's queue unless another goroutine is at it; e.mu
// must not be held. The order of the queue is the order of routing.
func (s *Service) flush(ctx context.Context, e *entry) {
	e.outMu.Lock()
	if e.draining {
		e.outMu.Unlock()
		return
	}
	e.draining = true
	for len(e.out) > 0 {
		batch := e.out
		e.out = nil
		e.outMu.Unlock()
		s.route(ctx, batch)
		clear(batch)
		e.outMu.Lock()
	}
	e.draining = false
	if e.drained != nil {
		e.drained.Broadcast()
	}
	e.outMu.Unlock()
}

// waitDrained waits until the room's queue is routed, whoever routes it:
// the service stops only once its last words are out.
func (e *entry) waitDrained() {
	e.outMu.Lock()
	if e.drained == nil {
		e.drained = sync.NewCond(&e.outMu)
	}
	for e.draining || len(e.out) > 0 {
		e.drained.Wait()
	}
	e.outMu.Unlock()
}

var _ router.Component = (*Service)(nil)

// New returns the service; Run registers it with the router.
func New(cfg Config, d Deps) (*Service, error) {
	if d.Router == nil || d.Store == nil || d.Log == nil {
		return nil, errors.New("muc: router, store and logger are required")
	}
	if len(cfg.Services) == 0 {
		return nil, errors.New("muc: no service domain")
	}
	switch cfg.Create {
	case CreateAnyone, CreateLocal, CreateAdmins, CreateNobody:
	default:
		return nil, fmt.Errorf("muc: create = %q: want anyone, local, admins or nobody", cfg.Create)
	}
	for svc := range cfg.Services {
		if _, err := jid.New("", svc, ""); err != nil {
			return nil, fmt.Errorf("muc: service domain %q: %w", svc, err)
		}
	}
	s := &Service{cfg: cfg, deps: d, log: d.Log.With("component", "muc"), rooms: map[string]*entry{}, creators: map[string]int{}}
	written := func(int) {}
	if d.Metrics != nil {
		written = d.Metrics.ArchiveWritten
	}
	s.writer = mam.NewWriter(d.Store, written, s.log)
	return s, nil
}

// Domains returns the conference domains served, sorted.
func (s *Service) Domains() []string {
	var out []string
	for d := range s.cfg.Services {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// Register makes the router send the service's domains to it; Run does
// it, and a split service process, whose stanzas come from gateways,
// does not.
func (s *Service) Register() error {
	for _, d := range s.Domains() {
		if err := s.deps.Router.Register(d, s); err != nil {
			return err
		}
	}
	return nil
}

// Run prepares the stored rooms, serves until ctx is done, then tells
// every occupant that the service stops (status 332) and finishes
// writing the archive.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	if err := s.Register(); err != nil {
		return err
	}
	<-ctx.Done()
	for _, d := range s.Domains() {
		s.deps.Router.Unregister(d, s)
	}
	s.Stop()
	return nil
}

// Start removes the temporary rooms a previous run left in storage (a
// temporary room does not outlive the process that held it) and counts
// the rooms of each creator.
func (s *Service) Start(ctx context.Context) error {
	for _, d := range s.Domains() {
		rooms, err := s.deps.Store.MUCRooms(ctx, d)
		if err != nil {
			return fmt.Errorf("muc: list rooms of %s: %w", d, err)
		}
		for _, rec := range rooms {
			st, err := decodeState(rec.Config)
			if err != nil || !st.Config.Persistent || st.Locked {
				if err := s.deps.Store.DeleteMUCRoom(ctx, rec.Room); err != nil && !errors.Is(err, storage.ErrNotFound) {
					s.log.Error("stale room not removed", "room", rec.Room, "err", err)
				}
				continue
			}
			s.mu.Lock()
			s.creators[st.Creator]++
			s.mu.Unlock()
		}
	}
	return nil
}

// Stop ends every loaded room's sessions with status 332 and flushes the
// archive; a split service calls it when its process stops.
func (s *Service) Stop() {
	s.mu.Lock()
	entries := make([]*entry, 0, len(s.rooms))
	for _, e := range s.rooms {
		entries = append(entries, e)
	}
	s.mu.Unlock()
	ctx := context.Background()
	for _, e := range entries {
		e.mu.Lock()
		if e.r != nil && !e.gone {
			e.enqueue(e.r.Shutdown().Out)
		}
		e.mu.Unlock()
		s.flush(ctx, e)
		// Another goroutine may be routing what the room sent before
		// (a join): the notice is out only when that is done.
		e.waitDrained()
	}
	s.writer.Flush()
}

func decodeState(b []byte) (room.State, error) {
	var st room.State
	err := json.Unmarshal(b, &st)
	return st, err
}

// HandleStanza implements router.Component.
func (s *Service) HandleStanza(ctx context.Context, st router.Stanza) {
	if _, ok := s.cfg.Services[st.To.Domain()]; !ok {
		s.deps.Router.Bounce(ctx, st, stanza.ServiceUnavailable, "")
		return
	}
	st.El = clientNS(st.El)
	if st.To.Local() == "" {
		s.serviceStanza(ctx, st)
		return
	}
	if s.deps.Hook != nil && st.El.Local == stanza.Message && st.El.Attr("type") == "groupchat" && st.To.Resource() == "" && !router.WasDecided(ctx) {
		var ok bool
		if ctx, st, ok = s.decide(ctx, st); !ok {
			return
		}
	}
	for {
		e := s.entry(ctx, st)
		if e == nil {
			return
		}
		e.mu.Lock()
		if e.gone {
			e.mu.Unlock()
			continue
		}
		s.handle(ctx, e, st)
		e.mu.Unlock()
		s.flush(ctx, e)
		// The occupants have their copies: only now does the archive's
		// back-pressure hold the sender, if its backlog is full.
		s.writer.Wait()
		return
	}
}

// clientNS returns el in the client namespace. A stanza from another
// server or a component is in jabber:server or jabber:component:accept,
// and so are its body, show, status and other children in the content
// namespace; the rooms copy those children into stanzas of their own,
// which would carry that namespace to clients. A client's stanza is
// returned as it is.
func clientNS(el *xmlstream.Element) *xmlstream.Element {
	if el.Space == xmlstream.NSClient {
		return el
	}
	c, err := xmlstream.ParseStanza(el.AppendXML(nil, xmlstream.NSClient), xmlstream.NSClient)
	if err != nil {
		return el
	}
	return c
}

// handle runs one stanza through a loaded room, e.mu held.
func (s *Service) handle(ctx context.Context, e *entry, st router.Stanza) {
	if st.El.Local == stanza.IQ && st.To.Resource() == "" {
		if q := st.El.Child(mam.NS, "query"); q != nil && stanza.IsRequest(st.El) {
			e.enqueue(s.archiveQuery(ctx, e.r, st, q))
			return
		}
	}
	res := e.r.Handle(st.El, st.From, st.To)
	s.apply(ctx, e, res)
	if !e.r.Exists() {
		// A first join that failed: no room was made.
		s.drop(st.To.BareString(), e)
	}
}

// entry returns the loaded room st is for, loading it or making it for
// a join as the creation policy allows. It answers st itself and returns
// nil when there is no such room.
func (s *Service) entry(ctx context.Context, st router.Stanza) *entry {
	key := st.To.BareString()
	s.mu.Lock()
	if e := s.rooms[key]; e != nil {
		s.mu.Unlock()
		return e
	}
	// Others asking for the room meanwhile wait on its lock for the load.
	e := &entry{}
	e.mu.Lock()
	defer e.mu.Unlock()
	s.rooms[key] = e
	s.mu.Unlock()

	r, cond, text := s.load(ctx, st)
	if r == nil {
		s.drop(key, e)
		if cond != "" && (st.El.Local != stanza.Presence || st.El.Attr("type") == "") {
			s.bounce(ctx, st, cond, text)
		}
		return nil
	}
	e.r = r
	return e
}

// drop forgets a room, e.mu held.
func (s *Service) drop(key string, e *entry) {
	e.gone = true
	s.mu.Lock()
	if s.rooms[key] == e {
		delete(s.rooms, key)
	}
	s.mu.Unlock()
}

// load reads a stored room, or makes a new one for a join the policy
// allows; otherwise it returns the error to answer with.
func (s *Service) load(ctx context.Context, st router.Stanza) (*room.Room, string, string) {
	r, err := s.loadStored(ctx, st.To.Bare())
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return nil, stanza.InternalServerError, ""
	default:
		return r, "", ""
	}
	join := st.El.Local == stanza.Presence && st.El.Attr("type") == "" && st.To.Resource() != ""
	if !join {
		return nil, stanza.ItemNotFound, "No such room."
	}
	if cond, text := s.mayCreate(st.From, st.To.Domain()); cond != "" {
		return nil, cond, text
	}
	return room.New(st.To.Bare(), room.State{}, nil, s.roomDeps(st.To.Bare())), "", ""
}

// loadStored reads a stored room, or returns storage.ErrNotFound; other
// errors are logged.
func (s *Service) loadStored(ctx context.Context, roomJID jid.JID) (*room.Room, error) {
	key := roomJID.String()
	rec, err := s.deps.Store.MUCRoom(ctx, key)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			s.log.Error("room load", "room", key, "err", err)
		}
		return nil, err
	}
	state, err := decodeState(rec.Config)
	if err != nil {
		s.log.Error("room state unreadable", "room", key, "err", err)
		return nil, err
	}
	affs, err := s.deps.Store.MUCAffiliations(ctx, key)
	if err != nil {
		s.log.Error("room affiliations load", "room", key, "err", err)
		return nil, err
	}
	recs := make([]room.Record, 0, len(affs))
	for _, a := range affs {
		aff, _ := room.ParseAffiliation(a.Affiliation)
		recs = append(recs, room.Record{JID: a.JID, Affiliation: aff, Nick: a.Nick, Reason: a.Reason})
	}
	r := room.New(roomJID, state, recs, s.roomDeps(roomJID))
	s.restore(ctx, r)
	return r, nil
}

// mayCreate applies the creation policy (XEP-0045 §10.1.1: not-allowed)
// and the limit of rooms per user.
func (s *Service) mayCreate(from jid.JID, service string) (string, string) {
	bare := from.BareString()
	admin := slices.Contains(s.cfg.Admins, bare)
	switch {
	case admin, s.cfg.Create == CreateAnyone:
	case s.cfg.Create == CreateLocal && from.Domain() == s.cfg.Services[service] && from.Local() != "":
	default:
		return stanza.NotAllowed, "You may not create rooms on this service."
	}
	s.mu.Lock()
	n := s.creators[bare]
	s.mu.Unlock()
	if !admin && s.cfg.MaxRoomsPerUser > 0 && n >= s.cfg.MaxRoomsPerUser {
		return stanza.NotAllowed, fmt.Sprintf("You have created %d rooms, the most allowed.", n)
	}
	return "", ""
}

// restore gives a loaded room its vCard and the tail of its archive as
// discussion history.
func (s *Service) restore(ctx context.Context, r *room.Room) {
	key := r.JID().String()
	if b, err := s.deps.Store.PrivateXML(ctx, key, room.NSVCard); err == nil && len(b) > 0 {
		if el, err := mam.ParseStored(b); err == nil {
			r.SetVCard(el)
		}
	}
	n := r.Config().HistoryLength
	if !s.cfg.Archive || !r.Config().Logging || n <= 0 {
		return
	}
	page, err := s.deps.Store.QueryArchive(ctx, key, storage.ArchiveQuery{Max: min(n, s.cfg.Limits.MaxHistory), Last: true})
	if err != nil {
		s.log.Error("room history load", "room", key, "err", err)
		return
	}
	var els []*xmlstream.Element
	var stamps []time.Time
	var ids []string
	for _, it := range page.Items {
		el, err := mam.ParseStored(it.Stanza)
		if err != nil || el.Child(el.Space, "body") == nil {
			continue
		}
		els, stamps, ids = append(els, el), append(stamps, it.Stamp), append(ids, it.ID)
	}
	r.SeedHistory(els, stamps, ids)
}

// roomDeps are what the engine takes from the service for one room.
func (s *Service) roomDeps(roomJID jid.JID) room.Deps {
	return room.Deps{
		Report:      s.deps.Observer != nil && s.deps.Observer.Watches(roomJID.Bare()),
		Now:         time.Now,
		NewStanzaID: s.ids.Next,
		NewID:       stanza.NewID,
		Archiving:   s.cfg.Archive,
		Limits:      s.cfg.Limits,
		Archived: func(id string) (*xmlstream.Element, bool) {
			return s.archived(roomJID.String(), id)
		},
	}
}

// archived finds a message of a room's archive by id: the id encodes the
// stamp it was archived with, which narrows the query to it.
func (s *Service) archived(roomKey, id string) (*xmlstream.Element, bool) {
	t, ok := mam.StampOf(id)
	if !ok {
		return nil, false
	}
	s.writer.Flush()
	page, err := s.deps.Store.QueryArchive(context.Background(), roomKey, storage.ArchiveQuery{Start: t, End: t, Max: 10})
	if err != nil {
		return nil, false
	}
	for _, it := range page.Items {
		if it.ID == id {
			el, err := mam.ParseStored(it.Stanza)
			return el, err == nil
		}
	}
	return nil, false
}

// apply saves what a room changed and sends what it produced, e.mu held.
func (s *Service) apply(ctx context.Context, e *entry, res *room.Result) {
	defer res.Release()
	r := e.r
	if o := s.deps.Observer; o != nil {
		for _, ev := range res.Events {
			o.RoomEvent(r.JID(), ev)
		}
	}
	key := r.JID().String()
	if res.Created {
		s.mu.Lock()
		s.creators[r.State().Creator]++
		s.mu.Unlock()
	}
	if res.StateChanged && !res.Destroyed {
		b, err := json.Marshal(r.State())
		if err == nil {
			err = s.deps.Store.PutMUCRoom(ctx, storage.MUCRoom{Room: key, Config: b})
		}
		if err != nil {
			s.log.Error("room save", "room", key, "err", err)
		}
	}
	if !res.Destroyed {
		for _, a := range res.Affiliations {
			err := s.deps.Store.SetMUCAffiliation(ctx, key, storage.MUCAffiliation{JID: a.JID, Affiliation: a.Affiliation.String(), Nick: a.Nick, Reason: a.Reason})
			if err != nil {
				s.log.Error("room affiliation save", "room", key, "jid", a.JID, "err", err)
			}
		}
	}
	if res.VCardSet {
		var b []byte
		if res.VCard != nil {
			b = res.VCard.AppendXML(nil, "")
		}
		if err := s.deps.Store.SetPrivateXML(ctx, key, room.NSVCard, b); err != nil {
			s.log.Error("room vCard save", "room", key, "err", err)
		}
	}
	if s.cfg.Archive {
		for _, a := range res.Archive {
			// What acknowledges the message waits for the entry, as for a
			// chat message (mam.Writer.AddFor).
			s.writer.AddFor(ctx, storage.ArchiveEntry{User: key, Message: storage.ArchivedMessage{
				ID: a.ID, Stamp: a.Stamp, With: a.Occupant.String(), Stanza: a.El.AppendXML(nil, xmlstream.NSClient),
			}})
		}
		if len(res.Retract) > 0 {
			s.writer.Flush()
		}
		for _, rt := range res.Retract {
			err := s.deps.Store.ReplaceArchived(ctx, key, rt.ID, rt.Tombstone.AppendXML(nil, xmlstream.NSClient))
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				s.log.Error("archive tombstone", "room", key, "id", rt.ID, "err", err)
			}
		}
	}
	if res.StateChanged || res.Destroyed {
		s.forgetDirectory(r.JID().Domain())
	}
	e.enqueue(res.Out)
	if res.Destroyed {
		s.writer.Flush()
		if err := s.deps.Store.DeleteMUCRoom(ctx, key); err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.log.Error("room delete", "room", key, "err", err)
		}
		s.mu.Lock()
		if c := r.State().Creator; s.creators[c] > 1 {
			s.creators[c]--
		} else {
			delete(s.creators, c)
		}
		s.mu.Unlock()
		s.drop(key, e)
	}
}

// route sends each delivery to each of its recipients, on a copy with
// the recipient's address: the copies share the element's serialized
// children.
func (s *Service) route(ctx context.Context, out []room.Delivery) {
	var b router.Batch
	ctx = router.WithFanout(ctx, &b)
	defer b.Release()
	for _, d := range out {
		from, err := jid.Parse(d.El.Attr("from"))
		if err != nil {
			continue
		}
		for _, to := range d.To {
			c := d.El.ShallowCopy()
			c.SetAttr("to", to.String())
			s.deps.Router.Route(ctx, router.Stanza{El: c, From: from, To: to})
		}
	}
}

// bounce answers st with an error from the address it was sent to.
func (s *Service) bounce(ctx context.Context, st router.Stanza, cond, text string) {
	if !stanza.MayBounce(st.El) {
		return
	}
	r := stanza.ErrorReply(st.El, cond, text)
	r.SetAttr("from", st.To.String())
	r.SetAttr("to", st.From.String())
	s.deps.Router.Route(ctx, router.Stanza{El: r, From: st.To, To: st.From})
}

// reply sends an IQ answer from the address the request went to.
func (s *Service) reply(ctx context.Context, st router.Stanza, r *xmlstream.Element) {
	r.SetAttr("from", st.To.String())
	r.SetAttr("to", st.From.String())
	s.deps.Router.Route(ctx, router.Stanza{El: r, From: st.To, To: st.From})
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// decide asks the hook about a message to a room: it returns the message
// to go on with, or ok false when it was refused (its sender told).
func (s *Service) decide(ctx context.Context, st router.Stanza) (context.Context, router.Stanza, bool) {
	d := s.deps.Hook.Decide(ctx, "room_message", st)
	ctx = router.Decided(ctx)
	if d.Deny {
		cond := d.Condition
		if cond == "" {
			cond = stanza.Forbidden
		}
		s.bounce(ctx, st, cond, d.Text)
		return ctx, st, false
	}
	if d.Replace != nil {
		el := clientNS(d.Replace)
		el.SetAttr("from", st.El.Attr("from"))
		el.SetAttr("to", st.El.Attr("to"))
		st.El = el
	}
	return ctx, st, true
}
