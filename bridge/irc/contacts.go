package irc

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
	"github.com/ambrosia-xmpp/ambrosia/bridge/irc/ircconn"
)

// maxContacts bounds the contacts of a session: past it, the people the
// user talks with are not made contacts.
const maxContacts = 1000

// listRoom is the most bytes of nicks in one ISON or MONITOR line.
const listRoom = 400

// contact is a nick the user exchanged a one-to-one message with, or
// one the bridge put in the user's roster before (Account.Contacts):
// the session follows whether it is online.
type contact struct {
	nick      string // as the bridge knows it: the contact's id
	online    bool   // as last reported to the bridge
	monitored bool   // the server tells when it comes and goes (MONITOR)
}

// monitorLimit reads MONITOR from the server's ISUPPORT: -1 when the
// server does not offer it, 0 when it gives no limit, else how many
// nicks a client may monitor.
func monitorLimit(sup ircconn.Support) int {
	v, ok := sup.Get("MONITOR")
	if !ok {
		return -1
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return n
	}
	return 0
}

// follow starts following the contacts the bridge put in the user's
// roster before: with MONITOR where the server offers it, else (and for
// those past MONITOR's limit) with ISON at once and then every poll,
// until the connection ends.
func (s *session) follow(ctx context.Context, ids []bridge.UserID, poll time.Duration) {
	var monitor []string
	s.mu.Lock()
	for _, id := range ids {
		if c := s.addContact(string(id)); c != nil && c.monitored {
			monitor = append(monitor, c.nick)
		}
	}
	s.mu.Unlock()
	s.sendMonitor(ctx, monitor)
	go s.poll(poll)
}

// addContact makes nick a contact, offline until told otherwise, if it
// is not one already, is a nick, and there is room; it returns the new
// contact, nil when none was made. s.mu is held.
func (s *session) addContact(nick string) *contact {
	f := s.fold(nick)
	if s.contacts[f] != nil || len(s.contacts) >= maxContacts || !validNick(nick) || s.isSelf(nick) {
		return nil
	}
	c := &contact{nick: nick}
	if s.monitor == 0 || s.monitor > 0 && s.monitored < s.monitor {
		c.monitored = true
		s.monitored++
	}
	s.contacts[f] = c
	return c
}

// exchanged records a one-to-one message with nick, either way: nick is
// online, and a contact, reported to the bridge when it is a new one. It
// returns the events to report and the nick to add to MONITOR, if any.
// s.mu is held.
func (s *session) exchanged(nick string) (out []func(), monitor string) {
	f := s.fold(nick)
	if c := s.contacts[f]; c != nil {
		return s.setOnline(f, c, true), ""
	}
	c := s.addContact(nick)
	if c == nil {
		return nil, ""
	}
	c.online = true
	ct := bridge.Contact{ID: bridge.UserID(nick), Name: nick, Presence: s.presenceOf(f)}
	if c.monitored {
		monitor = nick
	}
	return []func(){func() { s.ev.Contact(ct) }}, monitor
}

// presenceOf is the presence of someone online: away with their message
// when they said they are. s.mu is held.
func (s *session) presenceOf(f string) bridge.Presence {
	if msg := s.away[f]; msg != "" {
		return bridge.Presence{Show: bridge.Away, Status: msg}
	}
	return bridge.Presence{}
}

// setOnline records that a contact (folded nick f) is online or not,
// and returns its presence to report when that changed. s.mu is held.
func (s *session) setOnline(f string, c *contact, online bool) []func() {
	if c.online == online {
		return nil
	}
	c.online = online
	id := bridge.UserID(c.nick)
	p := bridge.Presence{Offline: true}
	if online {
		p = s.presenceOf(f)
	} else if !s.shares(f) {
		delete(s.away, f)
	}
	return []func(){func() { s.ev.Presence(id, p) }}
}

// contactGone records that a contact is not online (a message to it was
// refused: no such nick).
func (s *session) contactGone(nick string) {
	f := s.fold(nick)
	var out []func()
	s.mu.Lock()
	if c := s.contacts[f]; c != nil {
		out = s.setOnline(f, c, false)
	}
	s.mu.Unlock()
	for _, e := range out {
		e()
	}
}

// sent records a message the user sent to nick one to one.
func (s *session) sent(ctx context.Context, nick string) {
	s.mu.Lock()
	out, monitor := s.exchanged(nick)
	s.mu.Unlock()
	for _, e := range out {
		e()
	}
	if monitor != "" {
		s.sendMonitor(ctx, []string{monitor})
	}
}

// monitorLater adds a nick to MONITOR from a goroutine of its own: the
// connection's reader, which finds new contacts, must not wait for the
// flood control.
func (s *session) monitorLater(nick string) {
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	s.sendMonitor(ctx, []string{nick})
}

// sendMonitor adds nicks to the server's MONITOR list, which answers
// with their state (730, 731) and tells when it changes.
func (s *session) sendMonitor(ctx context.Context, nicks []string) {
	for _, b := range batches(nicks, listRoom) {
		if err := s.c.Send(ctx, "MONITOR", "+", strings.Join(b, ",")); err != nil {
			return
		}
	}
}

// batches cuts words into lists that fit in room bytes, a separator
// after each word.
func batches(words []string, room int) [][]string {
	var out [][]string
	var cur []string
	n := 0
	for _, w := range words {
		if len(cur) > 0 && n+len(w)+1 > room {
			out = append(out, cur)
			cur, n = nil, 0
		}
		cur = append(cur, w)
		n += len(w) + 1
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// poll asks the server with ISON which of the contacts MONITOR does not
// cover are online, at once and then every interval, until the
// connection ends.
func (s *session) poll(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.askISON()
		select {
		case <-s.done:
			return
		case <-t.C:
		}
	}
}

// askISON sends one round of ISONs, unless the last one is still
// awaited. The server answers each with RPL_ISON (303), in order.
func (s *session) askISON() {
	s.mu.Lock()
	if s.loggedOut || len(s.ison) > 0 && time.Since(s.isonAt) < replyTimeout {
		s.mu.Unlock()
		return
	}
	var nicks []string
	for _, c := range s.contacts {
		if !c.monitored {
			nicks = append(nicks, c.nick)
		}
	}
	slices.Sort(nicks)
	round := batches(nicks, listRoom)
	s.ison = s.ison[:0]
	for _, b := range round {
		folded := make([]string, len(b))
		for i, n := range b {
			folded[i] = s.fold(n)
		}
		s.ison = append(s.ison, folded)
	}
	s.isonAt = time.Now()
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	for _, b := range round {
		if err := s.c.Send(ctx, "ISON", strings.Join(b, " ")); err != nil {
			return
		}
	}
}

// onISON reads RPL_ISON: which nicks of the oldest ISON awaited are
// online; the others are not.
func (s *session) onISON(m *ircconn.Message) []func() {
	if len(s.ison) == 0 {
		return nil
	}
	asked := s.ison[0]
	s.ison = s.ison[1:]
	on := map[string]bool{}
	for _, n := range strings.Fields(m.Param(1)) {
		on[s.fold(n)] = true
	}
	var out []func()
	for _, f := range asked {
		if c := s.contacts[f]; c != nil && !c.monitored {
			out = append(out, s.setOnline(f, c, on[f])...)
		}
	}
	return out
}

// onMonitor reads RPL_MONONLINE (730, nick!user@host,…) and
// RPL_MONOFFLINE (731, nick,…).
func (s *session) onMonitor(m *ircconn.Message, online bool) []func() {
	var out []func()
	for t := range strings.SplitSeq(m.Param(1), ",") {
		nick, _, _ := strings.Cut(t, "!")
		f := s.fold(nick)
		if c := s.contacts[f]; c != nil {
			out = append(out, s.setOnline(f, c, online)...)
		}
	}
	return out
}

// onMonitorFull reads ERR_MONLISTFULL (734): the nicks the server would
// not monitor are asked with ISON instead.
func (s *session) onMonitorFull(m *ircconn.Message) {
	for t := range strings.SplitSeq(m.Param(2), ",") {
		if c := s.contacts[s.fold(t)]; c != nil && c.monitored {
			c.monitored = false
			s.monitored--
		}
	}
}
