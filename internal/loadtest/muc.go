package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/dataform"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Namespaces of multi-user chat (XEP-0045).
const (
	nsMUC      = "http://jabber.org/protocol/muc"
	nsMUCUser  = nsMUC + "#user"
	nsMUCOwner = nsMUC + "#owner"
	nsRoomConf = nsMUC + "#roomconfig"
	fMaxUsers  = "muc#roomconfig_maxusers"
)

// MaxMUCConnections bounds the sessions of one run: the process may open
// 20,000 files and needs a few for itself.
const MaxMUCConnections = 19000

// MUCConfig configures a multi-user chat run.
type MUCConfig struct {
	Options
	// Prefix names the accounts: occupant j of room r is
	// Prefix+(r*Occupants+j), and its nickname is that local part.
	Prefix string
	// Rooms rooms of Occupants occupants each.
	Rooms, Occupants int
	// Service is the conference domain, e.g. conference.localhost.
	Service string
	// RoomPrefix names the rooms: RoomPrefix+r@Service.
	RoomPrefix string
	// Concurrency bounds the logins in flight, JoinConcurrency the joins.
	Concurrency, JoinConcurrency int
	// Senders occupants send, at an aggregate Rate in messages per second,
	// for Duration per step. Sender k sits in room k mod Rooms.
	Senders  int
	Rate     float64
	Duration time.Duration
	// ServerPID, if not 0, is sampled for RSS around the joins and for
	// CPU time over each step.
	ServerPID int
	// Settle is the pause after the last occupant is seated before the
	// server's RSS is sampled.
	Settle time.Duration
	// FindMax raises the rate by RateStep after each passing step, at most
	// MaxSteps steps, until a step fails.
	FindMax  bool
	RateStep float64
	MaxSteps int
	// A step passes when at most MaxLoss of the expected deliveries are
	// missing, p99 latency is below MaxP99 and 95% of the target rate was
	// sent.
	MaxP99  time.Duration
	MaxLoss float64
	// Drain bounds the wait for the last deliveries of a step.
	Drain time.Duration
	// Progress, if not nil, receives a line per phase and step.
	Progress io.Writer
}

// JoinResult is the joining phase of a run.
type JoinResult struct {
	Seated, Failed int
	FirstErr       error
	// Created counts the rooms this run created (status 201), Raised
	// those whose maximum of occupants it raised through the form.
	Created, Raised int
	// First and Last are when the first and the last occupant were
	// seated, from the first join sent.
	First, Last time.Duration
	// Latency is per occupant, join presence sent to self-presence (status
	// 110) received.
	Latency Histogram
	// Presences counts the presence stanzas received while joining.
	Presences uint64
	// ServerCPU (0 without a server PID) and ClientCPU are spent from the
	// first join sent to the last occupant seated.
	ServerCPU, ClientCPU time.Duration
}

// MUCStep is one rate step.
type MUCStep struct {
	Target float64 // messages sent per second
	// Sent messages; Expected deliveries (Sent × Occupants: every
	// occupant, the sender included, receives each message); Delivered
	// deliveries seen; Errors error messages received.
	Sent, Expected, Delivered, Errors uint64
	Window                            time.Duration // sending
	Span                              time.Duration // first send to last delivery
	Latency                           Histogram
	Measured                          time.Duration // CPU window: sending plus draining
	ServerCPU                         time.Duration // 0 without a server PID
	ServerSysCPU                      time.Duration
	ClientCPU                         time.Duration
}

// Achieved is the send rate actually reached.
func (s *MUCStep) Achieved() float64 { return rate(s.Sent, s.Window) }

// DeliveredPerSecond is the deliveries per second over the sending
// window or, when the last delivery came after it, from the first
// message sent to the last delivery.
func (s *MUCStep) DeliveredPerSecond() float64 { return rate(s.Delivered, max(s.Window, s.Span)) }

func rate(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Loss is the fraction of the expected deliveries that did not arrive.
func (s *MUCStep) Loss() float64 {
	if s.Expected == 0 || s.Delivered >= s.Expected {
		return 0
	}
	return float64(s.Expected-s.Delivered) / float64(s.Expected)
}

// ServerCPUPer1000 is the server CPU time per 1000 deliveries.
func (s *MUCStep) ServerCPUPer1000() time.Duration {
	if s.Delivered == 0 {
		return 0
	}
	return time.Duration(float64(s.ServerCPU) * 1000 / float64(s.Delivered))
}

// Passed reports whether the step met the target: loss within maxLoss,
// p99 below maxP99 and at least 95% of the target rate sent.
func (s *MUCStep) Passed(maxP99 time.Duration, maxLoss float64) bool {
	return s.Sent > 0 && s.Loss() <= maxLoss && s.Latency.Percentile(0.99) < maxP99 &&
		s.Achieved() >= 0.95*s.Target
}

// MUCResult is the outcome of a multi-user chat run.
type MUCResult struct {
	Connected int
	LoginWall time.Duration
	Join      JoinResult
	// RSSBefore is sampled after the logins, RSSAfter once every occupant
	// is seated, each after Settle has passed.
	RSSBefore, RSSAfter RSSSamples
	Steps               []*MUCStep
	// MaxPassing is the highest passing target rate (messages/s) with
	// FindMax, MaxDelivered the deliveries per second of that step; 0 if
	// none passed.
	MaxPassing, MaxDelivered float64
	Unmatched                uint64 // groupchat messages the run did not send
	Closes                   Closes
}

// RSSPerOccupant is the growth of the server's RSS per seated occupant in
// KiB, from the minimum before joining to the minimum after.
func (r *MUCResult) RSSPerOccupant() float64 {
	if r.Join.Seated == 0 {
		return 0
	}
	return float64(r.RSSAfter.Min-r.RSSBefore.Min) / float64(r.Join.Seated)
}

// seatEvent is what the reader saw of a join: the self-presence or an
// error presence.
type seatEvent struct {
	at      time.Time
	created bool  // status 201: a new room, locked until configured
	err     error // the join was refused
}

// occupant is one session of the run.
type occupant struct {
	cn      *Conn
	room    int
	roomJID string
	nick    string
	seat    chan seatEvent          // the next self-presence or join error
	iq      chan *xmlstream.Element // answers to the owner requests
}

// mucState is shared by the readers, the joiners and the pacers.
type mucState struct {
	base      time.Time // timestamps in messages are nanoseconds since base
	steps     [maxSteps]MUCStep
	delivered [maxSteps]atomic.Uint64
	errors    [maxSteps]atomic.Uint64
	last      [maxSteps]atomic.Int64 // latest delivery, nanoseconds since base
	unmatched atomic.Uint64
	presences atomic.Uint64
	meter     *Meter
}

// mucBody is a typical short line of group chat, after the send stamp.
const mucBody = "Hello, room! This is a group chat line of ordinary length, sent by the load client."

// roomJID returns the bare JID of room r.
func (c *MUCConfig) roomJID(r int) string {
	return c.RoomPrefix + strconv.Itoa(r) + "@" + c.Service
}

// senderOf returns the index (r*Occupants+j) of sender k: senders spread
// over the rooms first, then over the occupants of each room.
func (c *MUCConfig) senderOf(k int) int {
	r := k % c.Rooms
	j := (k / c.Rooms) % c.Occupants
	return r*c.Occupants + j
}

// joinOrder lists the occupants in the order they join after the rooms'
// creators (occupant 0 of each room): occupant 1 of every room, then
// occupant 2, and so on, so that rooms fill evenly.
func (c *MUCConfig) joinOrder() []int {
	order := make([]int, 0, c.Rooms*(c.Occupants-1))
	for j := 1; j < c.Occupants; j++ {
		for r := range c.Rooms {
			order = append(order, r*c.Occupants+j)
		}
	}
	return order
}

func (c *MUCConfig) defaults() error {
	c.Options.defaults()
	if c.Rooms < 1 || c.Occupants < 1 {
		return errors.New("muc: need --rooms and --occupants of at least 1")
	}
	if n := c.Rooms * c.Occupants; n > MaxMUCConnections {
		return fmt.Errorf("muc: %d sessions: one process may open at most %d (run several)", n, MaxMUCConnections)
	}
	if c.Senders < 1 || c.Senders > c.Rooms*c.Occupants {
		return fmt.Errorf("muc: --senders must be 1..%d (rooms × occupants)", c.Rooms*c.Occupants)
	}
	if c.Rate <= 0 || c.Duration <= 0 {
		return errors.New("muc: need --rate and --duration")
	}
	if c.Service == "" {
		c.Service = "conference." + c.Domain
	}
	if c.RoomPrefix == "" {
		c.RoomPrefix = "bench"
	}
	if c.JoinConcurrency < 1 {
		c.JoinConcurrency = 100
	}
	if c.MaxSteps < 1 || c.MaxSteps > maxSteps {
		c.MaxSteps = 10
	}
	if !c.FindMax {
		c.MaxSteps = 1
	}
	if c.RateStep <= 0 {
		c.RateStep = c.Rate
	}
	if c.MaxP99 <= 0 {
		c.MaxP99 = 100 * time.Millisecond
	}
	if c.MaxLoss < 0 {
		c.MaxLoss = 0
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	return nil
}

func (c *MUCConfig) progress(format string, a ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format, a...)
	}
}

// MUC logs in Rooms×Occupants sessions, seats them in the rooms
// (creating and configuring each room with its first occupant), samples
// the server's memory, then has Senders occupants send at a rate and
// measures the deliveries, their latency and the server's CPU time.
func MUC(ctx context.Context, c MUCConfig) (*MUCResult, error) {
	if err := c.defaults(); err != nil {
		return nil, err
	}
	n := c.Rooms * c.Occupants
	occs := make([]*occupant, n)
	var firstErr error
	var mu sync.Mutex
	start := time.Now()
	c.Meter.SetPhase("logging in")
	forEach(ctx, n, c.Concurrency, func(i int) {
		cn, _, err := Login(ctx, &c.Options, UserName(c.Prefix, i))
		if err == nil {
			err = cn.Write(Presence)
		}
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
			return
		}
		occs[i] = &occupant{cn: cn, room: i / c.Occupants, roomJID: c.roomJID(i / c.Occupants), nick: UserName(c.Prefix, i),
			seat: make(chan seatEvent, 1), iq: make(chan *xmlstream.Element, 2)}
	})
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		forEach(context.WithoutCancel(ctx), n, 100, func(i int) {
			if occs[i] != nil {
				occs[i].cn.Close(c.Timeout)
			}
		})
		return nil, fmt.Errorf("muc: login: %w", firstErr)
	}
	res := &MUCResult{Connected: n, LoginWall: time.Since(start)}
	c.progress("  %d sessions logged in (%.1fs)\n", n, res.LoginWall.Seconds())

	st := &mucState{base: time.Now(), meter: c.Meter}
	// One reading goroutine per connection, as in the other modes; it
	// also owns the end of the stream.
	var readers sync.WaitGroup
	for _, o := range occs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			res.Closes.Add(st.read(o))
			o.cn.raw.Close()
		}()
	}
	defer func() {
		c.Meter.SetPhase("closing")
		for _, o := range occs {
			_ = o.cn.raw.SetWriteDeadline(time.Now().Add(time.Second))
			_ = o.cn.Write(StreamEnd)
		}
		waitTimeout(&readers, c.Timeout)
		for _, o := range occs {
			o.cn.raw.Close()
		}
		waitTimeout(&readers, time.Second)
		res.Unmatched = st.unmatched.Load()
	}()

	if c.ServerPID != 0 {
		// The logins' garbage is not the occupants' memory.
		sleep(ctx, c.Settle)
		s, err := SampleRSS(c.ServerPID, 3, time.Second)
		if err != nil {
			return res, err
		}
		res.RSSBefore = s
	}
	c.Meter.SetPhase("seating occupants")
	if err := st.joinAll(ctx, &c, occs, &res.Join); err != nil {
		return res, err
	}
	if c.ServerPID != 0 {
		sleep(ctx, c.Settle)
		s, err := SampleRSS(c.ServerPID, 3, time.Second)
		if err != nil {
			return res, err
		}
		res.RSSAfter = s
	}

	// The senders' messages, rendered once up to the stamp.
	senders := make([]*occupant, c.Senders)
	prefixes := make([][]byte, c.Senders)
	for k := range senders {
		o := occs[c.senderOf(k)]
		senders[k] = o
		prefixes[k] = []byte("<message type='groupchat' to='" + c.roomJID(o.room) + "' id='")
	}
	rate := c.Rate
	for s := 0; s < c.MaxSteps && ctx.Err() == nil; s++ {
		sr := &st.steps[s]
		sr.Target = rate
		c.Meter.SetPhase(fmt.Sprintf("step %d at %.0f msg/s", s+1, rate))
		if err := st.runStep(ctx, &c, s, senders, prefixes, sr); err != nil {
			return res, err
		}
		res.Steps = append(res.Steps, sr)
		c.progress("  step %d: target %.0f msg/s sent %d delivered %d of %d p99 %v\n",
			s+1, rate, sr.Sent, sr.Delivered, sr.Expected, sr.Latency.Percentile(0.99))
		if !sr.Passed(c.MaxP99, c.MaxLoss) {
			break
		}
		res.MaxPassing, res.MaxDelivered = rate, sr.DeliveredPerSecond()
		rate += c.RateStep
		sleep(ctx, time.Second)
	}
	return res, nil
}

// joinAll seats every occupant: first the creator of each room, who
// configures it, then the others, c.JoinConcurrency at a time. It fails
// unless every occupant is seated, since the deliveries expected later
// assume full rooms.
func (st *mucState) joinAll(ctx context.Context, c *MUCConfig, occs []*occupant, jr *JoinResult) error {
	var (
		mu          sync.Mutex
		first, last time.Time
	)
	st.presences.Store(0)
	var srv0 time.Duration
	if c.ServerPID != 0 {
		srv0, _ = CPUTime(c.ServerPID)
	}
	self0, _ := CPUTime(os.Getpid())
	start := time.Now()
	seat := func(o *occupant) {
		t0 := time.Now()
		ev, err := o.join(c)
		var raised bool
		if err == nil && ev.created {
			raised, err = o.configure(c)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			jr.Failed++
			if jr.FirstErr == nil {
				jr.FirstErr = fmt.Errorf("%s in %s: %w", o.nick, c.roomJID(o.room), err)
			}
			return
		}
		jr.Seated++
		c.Meter.seat()
		jr.Latency.Record(ev.at.Sub(t0))
		if first.IsZero() || ev.at.Before(first) {
			first = ev.at
		}
		if ev.at.After(last) {
			last = ev.at
		}
		if ev.created {
			jr.Created++
		}
		if raised {
			jr.Raised++
		}
	}
	forEach(ctx, c.Rooms, c.JoinConcurrency, func(r int) { seat(occs[r*c.Occupants]) })
	c.progress("  %d rooms ready (%d created, %d raised) in %.2fs\n", c.Rooms, jr.Created, jr.Raised, time.Since(start).Seconds())
	if jr.Failed == 0 {
		order := c.joinOrder()
		forEach(ctx, len(order), c.JoinConcurrency, func(i int) { seat(occs[order[i]]) })
	}
	if !first.IsZero() {
		jr.First, jr.Last = first.Sub(start), last.Sub(start)
	}
	jr.Presences = st.presences.Load()
	if c.ServerPID != 0 {
		srv1, _ := CPUTime(c.ServerPID)
		jr.ServerCPU = srv1 - srv0
	}
	self1, _ := CPUTime(os.Getpid())
	jr.ClientCPU = self1 - self0
	c.progress("  %d seated, %d failed, last at %.2fs\n", jr.Seated, jr.Failed, jr.Last.Seconds())
	if jr.Failed > 0 {
		return fmt.Errorf("muc: %d of %d occupants not seated: %w", jr.Failed, len(occs), jr.FirstErr)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}

// joinPresence is the join request: no history, since the run measures
// the messages it sends itself.
func joinPresence(room, nick string) []byte {
	return []byte("<presence to='" + room + "/" + nick + "'><x xmlns='" + nsMUC + "'><history maxstanzas='0'/></x></presence>")
}

// join sends the join presence and waits for the self-presence.
func (o *occupant) join(c *MUCConfig) (seatEvent, error) {
	if err := o.cn.Write(joinPresence(c.roomJID(o.room), o.nick)); err != nil {
		return seatEvent{}, err
	}
	t := time.NewTimer(c.Timeout)
	defer t.Stop()
	select {
	case ev := <-o.seat:
		return ev, ev.err
	case <-t.C:
		return seatEvent{}, fmt.Errorf("no self-presence within %v", c.Timeout)
	}
}

// configure opens a room this occupant created (XEP-0045 §10.1). It asks
// for the configuration form and, if the room would hold fewer than
// c.Occupants, submits the smallest maximum the form offers that is
// enough; otherwise it accepts the default configuration (an instant
// room). It reports whether it raised the maximum.
func (o *occupant) configure(c *MUCConfig) (bool, error) {
	room := c.roomJID(o.room)
	q := "<query xmlns='" + nsMUCOwner + "'"
	form, err := o.request(c, []byte("<iq type='get' id='cfg-get' to='"+room+"'>"+q+"/></iq>"))
	if err != nil {
		return false, fmt.Errorf("configuration form: %w", err)
	}
	value, raise, err := chooseMaxUsers(form, c.Occupants)
	if err != nil {
		return false, err
	}
	submit := "<x xmlns='" + dataform.NS + "' type='submit'/>"
	if raise {
		submit = "<x xmlns='" + dataform.NS + "' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + nsRoomConf +
			"</value></field><field var='" + fMaxUsers + "'><value>" + value + "</value></field></x>"
	}
	if _, err := o.request(c, []byte("<iq type='set' id='cfg-set' to='"+room+"'>"+q+">"+submit+"</query></iq>")); err != nil {
		return false, fmt.Errorf("configuration: %w", err)
	}
	return raise, nil
}

// request sends an owner IQ and returns the form of its result, if any.
func (o *occupant) request(c *MUCConfig, iq []byte) (*dataform.Form, error) {
	if err := o.cn.Write(iq); err != nil {
		return nil, err
	}
	t := time.NewTimer(c.Timeout)
	defer t.Stop()
	select {
	case el := <-o.iq:
		if el.Attr("type") != "result" {
			return nil, errors.New(stanzaError(el))
		}
		if q := el.Child(nsMUCOwner, "query"); q != nil {
			if f, ok := dataform.Find(q, ""); ok {
				return &f, nil
			}
		}
		return nil, nil
	case <-t.C:
		return nil, fmt.Errorf("no answer within %v", c.Timeout)
	}
}

// chooseMaxUsers reads the room's maximum of occupants from its
// configuration form and returns the value to submit when it is below
// want: the smallest option at or above want for a list (or "none", no
// limit but the service's, if that is all it offers), want itself for a
// text field. A form without the field, or with no limit, needs
// nothing. When the form offers no value large enough the server's own
// limit must be raised, which the error says.
func chooseMaxUsers(form *dataform.Form, want int) (value string, raise bool, err error) {
	if form == nil {
		return "", false, nil
	}
	f := form.Field(fMaxUsers)
	if f == nil {
		return "", false, nil
	}
	cur, err := strconv.Atoi(strings.TrimSpace(f.Value()))
	if err != nil || cur <= 0 || cur >= want {
		// "none", empty or large enough.
		return "", false, nil
	}
	if len(f.Options) == 0 {
		return strconv.Itoa(want), true, nil
	}
	best, largest, unlimited := 0, 0, false
	for _, opt := range f.Options {
		v, err := strconv.Atoi(strings.TrimSpace(opt.Value))
		if err != nil {
			unlimited = unlimited || opt.Value == "none"
			continue
		}
		largest = max(largest, v)
		if v >= want && (best == 0 || v < best) {
			best = v
		}
	}
	if best == 0 && unlimited {
		return "none", true, nil
	}
	if best == 0 {
		return "", false, fmt.Errorf("the room allows %d occupants and its form at most %d, fewer than %d: raise the server's limit on room occupants", cur, largest, want)
	}
	return strconv.Itoa(best), true, nil
}

// runStep sends at sr.Target for c.Duration, then waits for the
// stragglers; like the messages mode, a few pacers each own a fixed share
// of the senders.
func (st *mucState) runStep(ctx context.Context, c *MUCConfig, step int, senders []*occupant, prefixes [][]byte, sr *MUCStep) error {
	pacers := min(4, len(senders))
	var sent atomic.Uint64
	var wg sync.WaitGroup
	var usr0, sys0 time.Duration
	var err error
	if c.ServerPID != 0 {
		if usr0, sys0, err = CPUTimes(c.ServerPID); err != nil {
			return err
		}
	}
	self0, _ := CPUTime(os.Getpid())
	start := time.Now()
	startNS := int64(start.Sub(st.base))
	end := start.Add(c.Duration)
	tag := "s" + strconv.Itoa(step) + "-"
	for p := range pacers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			share := sr.Target / float64(pacers)
			buf := make([]byte, 0, 512)
			next := p
			var mine uint64
			for {
				now := time.Now()
				if !now.Before(end) || ctx.Err() != nil {
					break
				}
				// Message i of the pacer is due at i/share seconds, the
				// first at once, so that a low rate still reaches its
				// target within the window.
				due := uint64(share*now.Sub(start).Seconds()) + 1
				for ; mine < due; mine++ {
					ts := int64(time.Since(st.base))
					buf = append(buf[:0], prefixes[next]...)
					buf = appendStamp(buf, tag, ts)
					buf = append(buf, "'><body>"...)
					buf = appendStamp(buf, tag, ts)
					buf = append(buf, ' ')
					buf = append(buf, mucBody...)
					buf = append(buf, "</body></message>"...)
					if senders[next].cn.Write(buf) != nil {
						break
					}
					sent.Add(1)
					c.Meter.send()
					if next += pacers; next >= len(senders) {
						next = p
					}
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	sr.Window = time.Since(start)
	sr.Sent = sent.Load()
	sr.Expected = sr.Sent * uint64(c.Occupants)
	occ := uint64(c.Occupants)
	deadline := time.Now().Add(c.Drain)
	for time.Now().Before(deadline) && st.delivered[step].Load()+occ*st.errors[step].Load() < sr.Expected {
		time.Sleep(5 * time.Millisecond)
	}
	if c.ServerPID != 0 {
		usr1, sys1, err := CPUTimes(c.ServerPID)
		if err != nil {
			return err
		}
		sr.ServerCPU = usr1 + sys1 - usr0 - sys0
		sr.ServerSysCPU = sys1 - sys0
	}
	sr.Measured = time.Since(start)
	self1, _ := CPUTime(os.Getpid())
	sr.ClientCPU = self1 - self0
	sr.Delivered = st.delivered[step].Load()
	sr.Errors = st.errors[step].Load()
	if last := st.last[step].Load(); last > startNS {
		sr.Span = time.Duration(last - startNS)
	}
	return nil
}

// appendStamp appends "s<step>-<nanoseconds since base>".
func appendStamp(b []byte, tag string, ts int64) []byte {
	return strconv.AppendInt(append(b, tag...), ts, 10)
}

// read consumes one connection's stanzas until the stream ends; it
// reports how it ended.
func (st *mucState) read(o *occupant) CloseOutcome {
	for {
		el, err := o.cn.Next()
		if err != nil {
			return closeOutcome(err)
		}
		switch el.Local {
		case "message":
			st.message(el)
		case "presence":
			st.presences.Add(1)
			if ev, ok := seatOf(el, o.roomJID); ok {
				ev.at = time.Now()
				select {
				case o.seat <- ev:
				default:
				}
			}
		case "iq":
			switch el.Attr("type") {
			case "result", "error":
				if strings.HasPrefix(el.Attr("id"), "cfg-") {
					select {
					case o.iq <- el:
					default:
					}
				}
			}
		}
	}
}

// message counts a groupchat delivery, or an error bounce, of a message
// this run sent.
func (st *mucState) message(el *xmlstream.Element) {
	typ := el.Attr("type")
	if typ != "groupchat" && typ != "error" {
		return
	}
	step, ts, ok := stampOf(el)
	if !ok {
		if el.Child(xmlstream.NSClient, "body") != nil {
			st.unmatched.Add(1)
		}
		return
	}
	if typ == "error" {
		st.errors[step].Add(1)
		st.meter.bounce()
		return
	}
	now := int64(time.Since(st.base))
	st.steps[step].Latency.Record(time.Duration(now - ts))
	st.delivered[step].Add(1)
	st.meter.deliver()
	for {
		l := st.last[step].Load()
		if now <= l || st.last[step].CompareAndSwap(l, now) {
			break
		}
	}
}

// stampOf finds the send stamp of a message: the first word of its body,
// where servers leave it untouched, or else its id.
func stampOf(el *xmlstream.Element) (step int, ts int64, ok bool) {
	if b := el.Child(xmlstream.NSClient, "body"); b != nil {
		word, _, _ := strings.Cut(b.Text(), " ")
		if step, ts, ok = parseMsgID(word); ok && step >= 0 && step < maxSteps {
			return step, ts, true
		}
	}
	step, ts, ok = parseMsgID(el.Attr("id"))
	if !ok || step < 0 || step >= maxSteps {
		return 0, 0, false
	}
	return step, ts, true
}

// seatOf reads a presence from room as the answer to a join: a
// self-presence (status 110, XEP-0045 §7.2.3), with status 201 when the
// join created the room, or an error.
func seatOf(el *xmlstream.Element, room string) (seatEvent, bool) {
	bare, _, _ := strings.Cut(el.Attr("from"), "/")
	if !strings.EqualFold(bare, room) {
		return seatEvent{}, false
	}
	if el.Attr("type") == "error" {
		return seatEvent{err: errors.New(stanzaError(el))}, true
	}
	if el.Attr("type") != "" {
		return seatEvent{}, false
	}
	x := el.Child(nsMUCUser, "x")
	if x == nil {
		return seatEvent{}, false
	}
	var codes []string
	for s := range x.ChildElements {
		if s.Space == nsMUCUser && s.Local == "status" {
			codes = append(codes, s.Attr("code"))
		}
	}
	if !slices.Contains(codes, "110") {
		return seatEvent{}, false
	}
	return seatEvent{created: slices.Contains(codes, "201")}, true
}

// stanzaError names the condition of an error stanza, and its text if
// the server gave one.
func stanzaError(el *xmlstream.Element) string {
	e := el.Child(el.Space, "error")
	if e == nil {
		return condition(el)
	}
	s := el.Local + " error"
	var text string
	for c := range e.ChildElements {
		if c.Local == "text" {
			text = c.Text()
		} else if !strings.Contains(s, ":") {
			s += ": " + c.Local
		}
	}
	if text != "" {
		s += " (" + text + ")"
	}
	return s
}
