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
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
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

// formatID writes v in base 32, zero-padded to idWidth, as
// strconv.FormatInt would with padding, in one allocation: it runs twice
// for every message archived.
func formatID(v int64) string {
	const digits = "0123456789abcdefghijklmnopqrstuv"
	if v < 0 {
		s := strconv.FormatInt(v, 32) // not from IDs; kept readable
		return strings.Repeat("0", max(idWidth-len(s), 0)) + s
	}
	var b [idWidth]byte
	for i := idWidth - 1; i >= 0; i-- {
		b[i] = digits[v&31]
		v >>= 5
	}
	return string(b[:])
}

// maxBacklog is how many archive entries may wait for the writer before
// senders wait for it (Writer.Wait): beyond that the database is the
// bottleneck and holding more in memory would only hide it. At the
// rates the writer keeps up with, this is a fraction of a second of
// messages.
const maxBacklog = 20000

// maxBatch bounds the entries written in one transaction: a bigger one
// writes each touched page once for more entries, but holds the
// database's write lock longer, and other writes (offline messages,
// rosters) wait behind it.
const maxBatch = 8192

// A batch the store refuses is tried again, after a pause that doubles
// from retryFirst to retryMax, for as long as it takes: the entries
// belong to messages already delivered and acknowledged, so a database
// that restarts, or stays away for a while, loses none of them; the
// backlog then fills and senders wait (Wait). While it fails, an error
// is logged every retryReport.
const (
	retryFirst  = 100 * time.Millisecond
	retryMax    = 2 * time.Second
	retryReport = time.Minute
)

// Until minBatch entries are queued, the writer waits up to gather for
// more: nobody waits for the write but the acknowledgements
// (AddDone), and a commit per handful of rows is what batching is meant
// to avoid. Queries flush (Flush), so they see their messages at once.
const (
	minBatch = 1024
	gather   = 10 * time.Millisecond
)

// Writer writes archive entries in batches from one goroutine that runs
// only while there is something to write. Archiving each message in its
// own transaction would cost a commit per message, far more than routing
// it; batching makes it one commit per burst.
//
// Entries are written in the order they were added, each exactly once: a
// failed batch is retried until it is written, and the batches after it
// wait. The queue is bounded by back-pressure rather than by dropping:
// Add never blocks, so that the message an entry belongs to is delivered
// without waiting for the archive, and Wait, called once the message is
// delivered, holds the sender (its connection is not read meanwhile)
// while the backlog is full.
type Writer struct {
	store   storage.Archive
	written func(n int)
	log     *slog.Logger
	pause   func(time.Duration) // time.Sleep; tests make it instant

	mu      sync.Mutex
	room    sync.Cond // signalled when entries leave the queue
	done    sync.Cond // signalled when a batch is written
	queue   []storage.ArchiveEntry
	dones   []func() // beside queue, one each (nil for Add): run once written
	added   uint64   // entries ever added
	wrote   uint64   // entries ever written
	flushes int      // Flush calls waiting: write without gathering
	running bool
	// spare and spareDones are the arrays of a batch written, emptied,
	// for the queue to start again in instead of growing a new one from
	// nothing every batch.
	spare      []storage.ArchiveEntry
	spareDones []func()
}

// NewWriter returns a writer to store; written, if not nil, is told how
// many entries each batch wrote.
func NewWriter(store storage.Archive, written func(n int), log *slog.Logger) *Writer {
	w := &Writer{store: store, written: written, log: log, pause: time.Sleep}
	w.room.L = &w.mu
	w.done.L = &w.mu
	return w
}

// Add queues an entry; the caller does not wait for the database.
func (w *Writer) Add(e storage.ArchiveEntry) { w.AddDone(e, nil) }

// AddDone is Add, with done (if not nil) run once the entry is written:
// what waits for it (the acknowledgement of the stanza that caused the
// entry, to its sender or to a gateway) waits for the durable write, not
// for the delivery. It never blocks, however long the backlog: see Wait.
func (w *Writer) AddDone(e storage.ArchiveEntry, done func()) {
	w.mu.Lock()
	if w.queue == nil && w.spare != nil {
		w.queue, w.dones, w.spare, w.spareDones = w.spare, w.spareDones, nil, nil
	}
	w.queue = append(w.queue, e)
	w.dones = append(w.dones, done)
	w.added++
	if !w.running {
		w.running = true
		go w.run()
	}
	w.mu.Unlock()
}

// AddFor is AddDone with what waits for the entry taken from ctx, the
// processing of the stanza that caused it: the sender's Stream
// Management counter (router.Accept) and, in a split server, the
// acknowledgement of the event to the gateway (storage.Pending). A
// stanza acknowledged is then archived, even if the process dies the
// moment after.
func (w *Writer) AddFor(ctx context.Context, e storage.ArchiveEntry) {
	pending, accept := storage.Pending(ctx), router.Accept(ctx)
	done := pending
	switch {
	case pending == nil:
		done = accept
	case accept != nil:
		done = func() { pending(); accept() }
	}
	w.AddDone(e, done)
}

// Wait blocks while the backlog is full. Whoever adds entries calls it
// once the stanza that caused them is delivered, from the goroutine that
// reads the sender: a sender that outruns the database is slowed down
// there, behind its own delivered message, and nothing is dropped.
func (w *Writer) Wait() {
	w.mu.Lock()
	for len(w.queue) >= maxBacklog {
		w.room.Wait()
	}
	w.mu.Unlock()
}

func (w *Writer) run() {
	w.mu.Lock()
	for {
		if len(w.queue) < minBatch && w.flushes == 0 {
			w.mu.Unlock()
			time.Sleep(gather)
			w.mu.Lock()
		}
		if len(w.queue) == 0 {
			w.running = false
			w.done.Broadcast()
			w.mu.Unlock()
			return
		}
		n := min(len(w.queue), maxBatch)
		batch, dones := w.queue[:n:n], w.dones[:n:n]
		w.queue, w.dones = w.queue[n:], w.dones[n:]
		if len(w.queue) == 0 {
			w.queue, w.dones = nil, nil // let the backing arrays go
		}
		w.room.Broadcast()
		w.mu.Unlock()
		w.write(batch)
		for _, f := range dones {
			if f != nil {
				f()
			}
		}
		clear(batch) // the stanzas may go
		clear(dones)
		w.mu.Lock()
		if cap(batch) > cap(w.spare) {
			w.spare, w.spareDones = batch[:0], dones[:0]
		}
		w.wrote += uint64(n)
		w.done.Broadcast()
	}
}

// write appends batch, trying again while the store fails.
func (w *Writer) write(batch []storage.ArchiveEntry) {
	delay := retryFirst
	var failing time.Time
	var reported time.Time
	for try := 1; ; try++ {
		// Not tied to a request's context: the stanzas were accepted and
		// their archive entries must be written even if a client left.
		err := w.store.AppendArchiveBatch(context.Background(), batch)
		if err == nil {
			if try > 1 {
				w.log.Info("archive append works again", "entries", len(batch), "tries", try, "after", time.Since(failing).Round(time.Millisecond))
			}
			if w.written != nil {
				w.written(len(batch))
			}
			return
		}
		switch {
		case try == 1:
			failing, reported = time.Now(), time.Now()
			w.log.Warn("archive append failed, retrying", "entries", len(batch), "err", err)
		case time.Since(reported) >= retryReport:
			reported = time.Now()
			w.log.Error("archive append still failing, retrying; senders wait once the backlog is full", "entries", len(batch), "tries", try, "for", time.Since(failing).Round(time.Second), "err", err)
		}
		w.pause(delay)
		delay = min(2*delay, retryMax)
	}
}

// Flush waits until everything queued so far is written, so that a query
// sees the messages just exchanged. It does not wait for entries added
// after it was called, so a busy archive does not hold it forever.
func (w *Writer) Flush() {
	w.mu.Lock()
	target := w.added
	w.flushes++
	for w.wrote < target {
		w.done.Wait()
	}
	w.flushes--
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
