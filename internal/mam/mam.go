// Package mam holds what the archives of Message Archive Management
// (XEP-0313) share, whoever owns them: a user's archive in the session
// manager or a room's in the conference service. It hands out archive
// ids, writes archive entries in batches, reads queries (data form and
// result set, XEP-0059) and builds the result messages.
package mam

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/storage"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces.
const (
	NS        = "urn:xmpp:mam:2"
	NSRSM     = "http://jabber.org/protocol/rsm"
	NSForward = "urn:xmpp:forward:0"
	NSDelay   = "urn:xmpp:delay"
	nsXData   = "jabber:x:data"
)

// Page sizes of archive queries: a client that names no max gets
// DefaultMax items, and none gets more than MaxMax at once, so that one
// query cannot make the server read a whole archive into memory.
const (
	DefaultMax = 50
	MaxMax     = 250
)

// StampFormat is XEP-0082 with microseconds, the precision archive stamps
// keep, so that a stamp a client read back selects the same message.
const StampFormat = "2006-01-02T15:04:05.000000Z"

// IDs hands out archive ids: microseconds since the epoch, bumped past
// the last id given so that ids stay unique and increasing within the
// process. After a restart the clock has moved on, so ids keep increasing.
type IDs struct{ last atomic.Int64 }

// Next returns a new id and the time it stands for.
func (g *IDs) Next() (string, time.Time) {
	for {
		last := g.last.Load()
		v := max(time.Now().UnixMicro(), last+1)
		if g.last.CompareAndSwap(last, v) {
			return formatID(v), time.UnixMicro(v).UTC()
		}
	}
}

// idWidth is the base-32 length of the largest int64: padding ids to it
// makes their byte order their numeric order.
const idWidth = 13

// IDAt returns the id that stands for t, as Next would have handed out
// at t: for archives brought from elsewhere (ambrosia import), whose
// messages take ids of their own time so that the archive's order stays
// the order of time.
func IDAt(t time.Time) string { return formatID(t.UnixMicro()) }

func formatID(v int64) string {
	s := strconv.FormatInt(v, 32)
	return strings.Repeat("0", idWidth-len(s)) + s
}

// maxBacklog is how many archive entries may wait for the writer before
// senders wait for it: beyond that the database is the bottleneck and
// holding more in memory would only hide it.
const maxBacklog = 20000

// A batch the store refuses is tried again, after a pause that doubles
// from retryFirst to retryMax, for retryFor at most: a database that
// restarts loses nothing; one that refuses a batch for good does not stop
// the archive forever.
const (
	retryFirst = 100 * time.Millisecond
	retryMax   = 2 * time.Second
	retryFor   = 2 * time.Minute
)

// A batch smaller than minBatch waits gather for more.
const (
	minBatch = 64
	gather   = 5 * time.Millisecond
)

// Writer writes archive entries in batches from one goroutine that runs
// only while there is something to write. Archiving each message in its
// own transaction would cost a commit per message, far more than routing
// it; batching makes it one commit per burst.
type Writer struct {
	store   storage.Archive
	written func(n int)
	log     *slog.Logger
	pause   func(time.Duration) // time.Sleep; tests make it instant

	mu      sync.Mutex
	cond    sync.Cond // signalled when a batch is written
	queue   []storage.ArchiveEntry
	dones   []func() // of queued entries (AddDone), run once written
	running bool
}

// NewWriter returns a writer to store; written, if not nil, is told how
// many entries each batch wrote.
func NewWriter(store storage.Archive, written func(n int), log *slog.Logger) *Writer {
	w := &Writer{store: store, written: written, log: log, pause: time.Sleep}
	w.cond.L = &w.mu
	return w
}

// Add queues an entry; the caller does not wait for the database.
func (w *Writer) Add(e storage.ArchiveEntry) { w.AddDone(e, nil) }

// AddDone is Add, with done (if not nil) run once the entry's batch is
// written, or failed and was logged: what waits for it (a service's
// acknowledgement of the event that caused the entry) waits no longer
// than the write.
func (w *Writer) AddDone(e storage.ArchiveEntry, done func()) {
	w.mu.Lock()
	for len(w.queue) >= maxBacklog {
		w.cond.Wait()
	}
	w.queue = append(w.queue, e)
	if done != nil {
		w.dones = append(w.dones, done)
	}
	if !w.running {
		w.running = true
		go w.run()
	}
	w.mu.Unlock()
}

func (w *Writer) run() {
	for {
		w.mu.Lock()
		if len(w.queue) < minBatch {
			// Let a burst gather: a commit per handful of rows is what
			// batching is meant to avoid. Queries flush, so nobody waits
			// for this pause to see their messages.
			w.mu.Unlock()
			time.Sleep(gather)
			w.mu.Lock()
		}
		batch, dones := w.queue, w.dones
		w.queue, w.dones = nil, nil
		if len(batch) == 0 {
			w.running = false
			w.cond.Broadcast()
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.write(batch)
		for _, f := range dones {
			f()
		}
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	}
}

// write appends batch, trying again while the store fails (see retryFor).
func (w *Writer) write(batch []storage.ArchiveEntry) {
	delay, waited := retryFirst, time.Duration(0)
	for try := 1; ; try++ {
		// Not tied to a request's context: the stanzas were accepted and
		// their archive entries must be written even if a client left.
		err := w.store.AppendArchiveBatch(context.Background(), batch)
		if err == nil {
			if try > 1 {
				w.log.Info("archive append works again", "entries", len(batch), "tries", try)
			}
			if w.written != nil {
				w.written(len(batch))
			}
			return
		}
		if waited >= retryFor {
			w.log.Error("archive append failed, entries dropped", "entries", len(batch), "tries", try, "err", err)
			return
		}
		if try == 1 {
			w.log.Warn("archive append failed, retrying", "entries", len(batch), "err", err)
		}
		w.pause(delay)
		waited += delay
		delay = min(2*delay, retryMax)
	}
}

// Flush waits until everything queued so far is written, so that a query
// sees the messages just exchanged.
func (w *Writer) Flush() {
	w.mu.Lock()
	for w.running {
		w.cond.Wait()
	}
	w.mu.Unlock()
}

// ParseQuery reads the data form and result set of a query. Anything it
// does not understand is an error rather than ignored, since ignoring a
// filter would return messages the client did not ask for. bareWith
// reduces a 'with' JID to its bare form, for archives that keep bare
// correspondents.
func ParseQuery(q *xmlstream.Element, bareWith bool) (storage.ArchiveQuery, error) {
	aq := storage.ArchiveQuery{Max: DefaultMax}
	if x := q.Child(nsXData, "x"); x != nil {
		if t := x.Attr("type"); t != "" && t != "submit" {
			return aq, errors.New("the query form must be submitted")
		}
		for f := range x.ChildElements {
			if f.Space != nsXData || f.Local != "field" {
				continue
			}
			var v string
			if ve := f.Child(nsXData, "value"); ve != nil {
				v = ve.Text()
			}
			var err error
			switch f.Attr("var") {
			case "FORM_TYPE":
				if v != NS {
					return aq, errors.New("unknown FORM_TYPE")
				}
			case "with":
				var j jid.JID
				j, err = jid.Parse(v)
				aq.With = j.String()
				if bareWith {
					aq.With = j.BareString()
				}
			case "start":
				aq.Start, err = time.Parse(time.RFC3339Nano, v)
			case "end":
				aq.End, err = time.Parse(time.RFC3339Nano, v)
			case "after-id":
				aq.AfterID = v
			case "before-id":
				aq.BeforeID = v
			default:
				return aq, errors.New("unknown field " + strconv.Quote(f.Attr("var")))
			}
			if err != nil {
				return aq, errors.New("bad value of field " + f.Attr("var"))
			}
		}
	}
	if set := q.Child(NSRSM, "set"); set != nil {
		if mx := set.Child(NSRSM, "max"); mx != nil {
			n, err := strconv.Atoi(mx.Text())
			if err != nil || n < 0 {
				return aq, errors.New("bad RSM max")
			}
			aq.Max = min(n, MaxMax)
		}
		if set.Child(NSRSM, "index") != nil {
			return aq, errors.New("RSM index is not supported")
		}
		if a := set.Child(NSRSM, "after"); a != nil {
			if aq.AfterID != "" && aq.AfterID != a.Text() || a.Text() == "" {
				return aq, errors.New("conflicting or empty RSM after")
			}
			aq.AfterID = a.Text()
		}
		if b := set.Child(NSRSM, "before"); b != nil {
			// An empty <before/> asks for the last page.
			aq.Last = true
			if id := b.Text(); id != "" {
				if aq.BeforeID != "" && aq.BeforeID != id {
					return aq, errors.New("conflicting RSM before")
				}
				aq.BeforeID = id
			}
		}
	}
	if !aq.Start.IsZero() && !aq.End.IsZero() && aq.End.Before(aq.Start) {
		return aq, errors.New("end is before start")
	}
	return aq, nil
}

// FormResult answers a request for the query form (XEP-0313 §4.1.4).
func FormResult(iq *xmlstream.Element) *xmlstream.Element {
	r := stanza.Result(iq)
	x := r.AddChild(xmlstream.NewElement(NS, "query")).AddChild(xmlstream.NewElement(nsXData, "x"))
	x.SetAttr("type", "form")
	ft := x.AddChild(xmlstream.NewElement(nsXData, "field"))
	ft.SetAttr("var", "FORM_TYPE")
	ft.SetAttr("type", "hidden")
	ft.AddChild(xmlstream.NewElement(nsXData, "value")).AddText(NS)
	for _, f := range [][2]string{{"with", "jid-single"}, {"start", "text-single"}, {"end", "text-single"}, {"before-id", "text-single"}, {"after-id", "text-single"}} {
		fe := x.AddChild(xmlstream.NewElement(nsXData, "field"))
		fe.SetAttr("var", f[0])
		fe.SetAttr("type", f[1])
	}
	return r
}

// ResultMessage wraps one archived message, already parsed, for the
// asker: a message with <result/> and the forwarded original, stamped.
func ResultMessage(queryID string, it storage.ArchivedMessage, orig *xmlstream.Element) *xmlstream.Element {
	msg := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	res := msg.AddChild(xmlstream.NewElement(NS, "result"))
	if queryID != "" {
		res.SetAttr("queryid", queryID)
	}
	res.SetAttr("id", it.ID)
	fw := res.AddChild(xmlstream.NewElement(NSForward, "forwarded"))
	fw.AddChild(xmlstream.NewElement(NSDelay, "delay")).SetAttr("stamp", it.Stamp.UTC().Format(StampFormat))
	fw.AddChild(orig)
	return msg
}

// Fin is the IQ result that ends a query, with the page's bounds.
func Fin(iq *xmlstream.Element, page storage.ArchivePage) *xmlstream.Element {
	r := stanza.Result(iq)
	fin := r.AddChild(xmlstream.NewElement(NS, "fin"))
	if page.Complete {
		fin.SetAttr("complete", "true")
	}
	set := fin.AddChild(xmlstream.NewElement(NSRSM, "set"))
	if len(page.Items) > 0 {
		set.AddChild(xmlstream.NewElement(NSRSM, "first")).AddText(page.Items[0].ID)
		set.AddChild(xmlstream.NewElement(NSRSM, "last")).AddText(page.Items[len(page.Items)-1].ID)
	}
	set.AddChild(xmlstream.NewElement(NSRSM, "count")).AddText(strconv.Itoa(page.Count))
	return r
}

// ParseStored reads back a stanza the server serialized itself.
func ParseStored(b []byte) (*xmlstream.Element, error) {
	return xmlstream.ParseStanza(b, xmlstream.NSClient)
}

// StampOf returns the time an id of IDs stands for, which is the stamp
// the message was archived with; ok is false for an id IDs did not make.
func StampOf(id string) (t time.Time, ok bool) {
	if len(id) != idWidth {
		return time.Time{}, false
	}
	v, err := strconv.ParseInt(id, 32, 64)
	if err != nil || v < 0 {
		return time.Time{}, false
	}
	return time.UnixMicro(v).UTC(), true
}
