// Package fakeircd is an IRC server small enough to read, for the tests
// of the IRC bridge: registration (CAP, PASS, NICK, USER), channels with
// keys, limits, bans and invitations, messages, nick changes, topics,
// kicks, member modes, away with away-notify, ISON, and MONITOR when
// asked to offer it; and raw clients (Peer) that stand for other people,
// usable against a real server too.
package fakeircd

import (
	"bufio"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configure a server.
type Options struct {
	// Name is the server's name; "irc.test" when empty.
	Name string
	// Password, when set, is required with PASS.
	Password string
	// NickLen bounds nicks; 30 when zero.
	NickLen int
	// Caps are the IRCv3 capabilities offered; when nil, multi-prefix,
	// away-notify, server-time and message-tags.
	Caps []string
	// NoCAP answers CAP as an old server does, with 421.
	NoCAP bool
	// Monitor, when positive, offers MONITOR (IRCv3) with a list of that
	// many nicks per client; without it, MONITOR is an unknown command,
	// as on ngircd.
	Monitor int
	// MonitorTold is the limit ISUPPORT tells, when not Monitor: more
	// than it takes makes the server refuse nicks with 734.
	MonitorTold int
}

// Channel is what a channel requires, set before anyone joins it.
type Channel struct {
	Key        string
	Limit      int
	InviteOnly bool
	Bans       []string // nicks
	Topic      string
	TopicOps   bool // +t: only operators change the topic
}

// Server is a running fake IRC server.
type Server struct {
	opts Options
	l    net.Listener

	mu      sync.Mutex
	cond    *sync.Cond
	clients map[string]*client // registered clients by folded nick
	conns   map[*client]bool
	chans   map[string]*channel
	seq     int
	log     []string // "nick: line" of every line received
	closed  bool
	wg      sync.WaitGroup
}

type client struct {
	s          *Server
	c          net.Conn
	nick       string
	user, real string
	pass       string
	registered bool
	capNeg     bool
	caps       map[string]bool
	away       string
	chans      map[string]*channel
	monitor    map[string]bool // the folded nicks it monitors
}

type channel struct {
	name     string
	topic    string
	key      string
	limit    int
	invite   bool
	bans     map[string]bool
	invited  map[string]bool
	topicOps bool
	members  map[*client]string // the member's mode symbols, highest first
}

func fold(s string) string { return strings.ToLower(s) }

// Start runs a server on 127.0.0.1 until the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Name == "" {
		opts.Name = "irc.test"
	}
	if opts.NickLen == 0 {
		opts.NickLen = 30
	}
	if opts.Caps == nil {
		opts.Caps = []string{"multi-prefix", "away-notify", "server-time", "message-tags"}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{opts: opts, l: l, clients: map[string]*client{}, conns: map[*client]bool{}, chans: map[string]*channel{}}
	s.cond = sync.NewCond(&s.mu)
	s.wg.Add(1)
	go s.accept()
	tb.Cleanup(s.Close)
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.l.Addr().String() }

// Close stops the server and drops every client.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.l.Close()
	for c := range s.conns {
		c.c.Close()
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.l.Accept()
		if err != nil {
			return
		}
		c := &client{s: s, c: nc, caps: map[string]bool{}, chans: map[string]*channel{}, monitor: map[string]bool{}}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

// SetChannel makes a channel with its requirements, before anyone joins.
func (s *Server) SetChannel(name string, ch Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channel(name)
	c.key, c.limit, c.invite, c.topic, c.topicOps = ch.Key, ch.Limit, ch.InviteOnly, ch.Topic, ch.TopicOps
	for _, b := range ch.Bans {
		c.bans[fold(b)] = true
	}
}

func (s *Server) channel(name string) *channel {
	c := s.chans[fold(name)]
	if c == nil {
		c = &channel{name: name, bans: map[string]bool{}, invited: map[string]bool{}, members: map[*client]string{}}
		s.chans[fold(name)] = c
	}
	return c
}

// Drop closes a client's connection without a word, as a failing
// network would.
func (s *Server) Drop(nick string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clients[fold(nick)]; c != nil {
		c.c.Close()
	}
}

// Notice sends a client a notice from the server.
func (s *Server) Notice(nick, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clients[fold(nick)]; c != nil {
		c.sendf(":%s NOTICE %s :%s", s.opts.Name, c.nick, text)
	}
}

// Mode sets or unsets a member mode ("+o", "-v") on behalf of the
// server, as services do.
func (s *Server) Mode(channel, mode, nick string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.chans[fold(channel)]
	t := s.clients[fold(nick)]
	if ch == nil || t == nil {
		return
	}
	if _, in := ch.members[t]; !in {
		return
	}
	ch.members[t] = applyMode(ch.members[t], mode)
	ch.broadcast(nil, ":%s MODE %s %s %s", s.opts.Name, ch.name, mode, t.nick)
}

// Received returns every line the server got, as "nick: line".
func (s *Server) Received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// Expect waits up to five seconds for a line the server got that
// matches the regular expression, as "nick: line", and returns it.
func (s *Server) Expect(tb testing.TB, pattern string) string {
	tb.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(5 * time.Second)
	t := time.AfterFunc(5*time.Second, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer t.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; ; i++ {
		for ; i < len(s.log); i++ {
			if re.MatchString(s.log[i]) {
				return s.log[i]
			}
		}
		if time.Now().After(deadline) || s.closed {
			tb.Fatalf("the server got no line matching %q; it got:\n%s", pattern, strings.Join(s.log, "\n"))
		}
		s.cond.Wait()
		i--
	}
}

func (s *Server) serve(c *client) {
	defer s.wg.Done()
	r := bufio.NewReader(c.c)
	for {
		line, err := r.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			s.mu.Lock()
			s.log = append(s.log, c.nickOr("*")+": "+line)
			s.cond.Broadcast()
			quit := s.handle(c, line)
			s.mu.Unlock()
			if quit {
				c.c.Close()
			}
		}
		if err != nil {
			break
		}
	}
	s.mu.Lock()
	s.quit(c, "Connection closed")
	delete(s.conns, c)
	s.mu.Unlock()
	c.c.Close()
}

func (c *client) nickOr(def string) string {
	if c.nick == "" {
		return def
	}
	return c.nick
}

func (c *client) prefix() string { return c.nick + "!" + c.user + "@127.0.0.1" }

// sendf writes a line to the client; s.mu is held.
func (c *client) sendf(format string, args ...any) {
	c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c.c, format+"\r\n", args...)
}

// numeric sends a numeric reply.
func (c *client) numeric(code string, params ...string) {
	s := ":" + c.s.opts.Name + " " + code + " " + c.nickOr("*")
	for i, p := range params {
		if i == len(params)-1 {
			s += " :" + p
		} else {
			s += " " + p
		}
	}
	c.sendf("%s", s)
}

// tags are the tags of a relayed message for a client that asked for
// them.
func (s *Server) tags(to *client) string {
	var t []string
	if to.caps["message-tags"] {
		s.seq++
		t = append(t, "msgid=fake-"+strconv.Itoa(s.seq))
	}
	if to.caps["server-time"] {
		t = append(t, "time="+time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	if len(t) == 0 {
		return ""
	}
	return "@" + strings.Join(t, ";") + " "
}

func (ch *channel) broadcast(except *client, format string, args ...any) {
	for m := range ch.members {
		if m != except {
			m.sendf(format, args...)
		}
	}
}

// peers are the clients that share a channel with c, c excluded.
func (s *Server) peers(c *client) map[*client]bool {
	out := map[*client]bool{}
	for _, ch := range c.chans {
		for m := range ch.members {
			if m != c {
				out[m] = true
			}
		}
	}
	return out
}

func validNick(n string, max int) bool {
	if n == "" || len(n) > max || n[0] >= '0' && n[0] <= '9' || n[0] == '-' {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-[]\\`^_{|}", r)) {
			return false
		}
	}
	return true
}

type msg struct {
	cmd    string
	params []string
}

func parse(line string) msg {
	if strings.HasPrefix(line, "@") {
		_, line, _ = strings.Cut(line, " ")
	}
	if strings.HasPrefix(line, ":") {
		_, line, _ = strings.Cut(line, " ")
	}
	var m msg
	for line != "" {
		line = strings.TrimLeft(line, " ")
		if strings.HasPrefix(line, ":") {
			m.params = append(m.params, line[1:])
			break
		}
		w, rest, _ := strings.Cut(line, " ")
		if m.cmd == "" {
			m.cmd = strings.ToUpper(w)
		} else if w != "" {
			m.params = append(m.params, w)
		}
		line = rest
	}
	return m
}

func (m msg) p(i int) string {
	if i < len(m.params) {
		return m.params[i]
	}
	return ""
}

// handle runs one command; it reports whether to close the connection.
func (s *Server) handle(c *client, line string) bool {
	m := parse(line)
	switch m.cmd {
	case "CAP":
		if s.opts.NoCAP {
			c.numeric("421", "CAP", "Unknown command")
			return false
		}
		switch strings.ToUpper(m.p(0)) {
		case "LS":
			if !c.registered {
				c.capNeg = true
			}
			c.sendf(":%s CAP %s LS :%s", s.opts.Name, c.nickOr("*"), strings.Join(s.opts.Caps, " "))
		case "REQ":
			want := strings.Fields(m.p(1))
			for _, w := range want {
				if !slices.Contains(s.opts.Caps, w) {
					c.sendf(":%s CAP %s NAK :%s", s.opts.Name, c.nickOr("*"), m.p(1))
					return false
				}
			}
			for _, w := range want {
				c.caps[w] = true
			}
			c.sendf(":%s CAP %s ACK :%s", s.opts.Name, c.nickOr("*"), m.p(1))
		case "END":
			c.capNeg = false
			return s.tryRegister(c)
		}
		return false
	case "PASS":
		c.pass = m.p(0)
		return false
	case "NICK":
		return s.nick(c, m.p(0))
	case "USER":
		if c.registered {
			c.numeric("462", "You may not reregister")
			return false
		}
		c.user, c.real = m.p(0), m.p(3)
		return s.tryRegister(c)
	case "PING":
		c.sendf(":%s PONG %s :%s", s.opts.Name, s.opts.Name, m.p(0))
		return false
	case "PONG":
		return false
	case "QUIT":
		s.quit(c, "Quit: "+m.p(0))
		c.sendf("ERROR :Closing link (%s)", m.p(0))
		return true
	}
	if !c.registered {
		c.numeric("451", "You have not registered")
		return false
	}
	switch m.cmd {
	case "JOIN":
		keys := strings.Split(m.p(1), ",")
		for i, name := range strings.Split(m.p(0), ",") {
			key := ""
			if i < len(keys) {
				key = keys[i]
			}
			s.join(c, name, key)
		}
	case "PART":
		for name := range strings.SplitSeq(m.p(0), ",") {
			ch := c.chans[fold(name)]
			if ch == nil {
				c.numeric("442", name, "You're not on that channel")
				continue
			}
			ch.broadcast(nil, ":%s PART %s :%s", c.prefix(), ch.name, m.p(1))
			s.leave(c, ch)
		}
	case "PRIVMSG", "NOTICE":
		s.privmsg(c, m)
	case "TOPIC":
		ch := c.chans[fold(m.p(0))]
		switch {
		case ch == nil:
			c.numeric("442", m.p(0), "You're not on that channel")
		case len(m.params) < 2:
			if ch.topic == "" {
				c.numeric("331", ch.name, "No topic is set")
			} else {
				c.numeric("332", ch.name, ch.topic)
			}
		case ch.topicOps && !strings.ContainsAny(ch.members[c], "~&@%"):
			c.numeric("482", ch.name, "You're not channel operator")
		default:
			ch.topic = m.p(1)
			ch.broadcast(nil, ":%s TOPIC %s :%s", c.prefix(), ch.name, ch.topic)
		}
	case "KICK":
		ch := c.chans[fold(m.p(0))]
		reason := m.p(2)
		if reason == "" {
			reason = c.nick
		}
		switch {
		case ch == nil:
			c.numeric("442", m.p(0), "You're not on that channel")
		case !strings.ContainsAny(ch.members[c], "~&@%"):
			c.numeric("482", ch.name, "You're not channel operator")
		default:
			for n := range strings.SplitSeq(m.p(1), ",") {
				t := s.clients[fold(n)]
				if _, in := ch.members[t]; t == nil || !in {
					c.numeric("441", n, ch.name, "They aren't on that channel")
					continue
				}
				ch.broadcast(nil, ":%s KICK %s %s :%s", c.prefix(), ch.name, t.nick, reason)
				s.leave(t, ch)
			}
		}
	case "MODE":
		s.mode(c, m)
	case "AWAY":
		c.away = m.p(0)
		if c.away == "" {
			c.numeric("305", "You are no longer marked as being away")
		} else {
			c.numeric("306", "You have been marked as being away")
		}
		for p := range s.peers(c) {
			if !p.caps["away-notify"] {
				continue
			}
			if c.away == "" {
				p.sendf(":%s AWAY", c.prefix())
			} else {
				p.sendf(":%s AWAY :%s", c.prefix(), c.away)
			}
		}
	case "NAMES":
		if ch := s.chans[fold(m.p(0))]; ch != nil {
			s.names(c, ch)
		}
	case "ISON":
		var on []string
		for _, p := range m.params {
			for _, n := range strings.Fields(p) {
				if t := s.clients[fold(n)]; t != nil {
					on = append(on, t.nick)
				}
			}
		}
		c.numeric("303", strings.Join(on, " "))
	case "MONITOR":
		if s.opts.Monitor <= 0 {
			c.numeric("421", m.cmd, "Unknown command")
			return false
		}
		s.monitor(c, m)
	case "INVITE":
		t := s.clients[fold(m.p(0))]
		ch := s.chans[fold(m.p(1))]
		if t == nil {
			c.numeric("401", m.p(0), "No such nick/channel")
			return false
		}
		if ch != nil {
			ch.invited[fold(t.nick)] = true
		}
		c.numeric("341", t.nick, m.p(1))
		t.sendf(":%s INVITE %s :%s", c.prefix(), t.nick, m.p(1))
	default:
		c.numeric("421", m.cmd, "Unknown command")
	}
	return false
}

func (s *Server) tryRegister(c *client) bool {
	if c.registered || c.nick == "" || c.user == "" || c.capNeg {
		return false
	}
	if s.opts.Password != "" && c.pass != s.opts.Password {
		c.numeric("464", "Password incorrect")
		c.sendf("ERROR :Closing link: %s (Bad password)", c.nick)
		return true
	}
	c.registered = true
	s.clients[fold(c.nick)] = c
	c.sendf(":%s NOTICE * :*** Looking up your hostname", s.opts.Name)
	c.numeric("001", "Welcome to the Fake IRC Network "+c.prefix())
	c.sendf(":%s NOTICE %s :*** Welcome aboard", s.opts.Name, c.nick)
	c.numeric("002", "Your host is "+s.opts.Name)
	c.numeric("003", "This server was created today")
	c.numeric("004", s.opts.Name, "fake-1", "iow", "beIiklmnopstv")
	support := []string{"PREFIX=(qaohv)~&@%+", "CHANTYPES=#&", "NICKLEN=" + strconv.Itoa(s.opts.NickLen),
		"CASEMAPPING=ascii", "CHANMODES=beI,k,l,imnpst", "STATUSMSG=" + rankSymbols, "NETWORK=Fake"}
	if s.opts.Monitor > 0 {
		told := s.opts.Monitor
		if s.opts.MonitorTold > 0 {
			told = s.opts.MonitorTold
		}
		support = append(support, "MONITOR="+strconv.Itoa(told))
	}
	c.numeric("005", append(support, "are supported by this server")...)
	c.numeric("375", "- "+s.opts.Name+" Message of the day -")
	c.numeric("372", "- Be nice")
	c.numeric("376", "End of /MOTD command")
	s.tellMonitors(c.nick, c.prefix(), true)
	return false
}

func (s *Server) nick(c *client, n string) bool {
	if n == "" {
		c.numeric("431", "No nickname given")
		return false
	}
	if !validNick(n, s.opts.NickLen) {
		c.numeric("432", n, "Erroneous nickname")
		return false
	}
	if o := s.clients[fold(n)]; o != nil && o != c {
		c.numeric("433", n, "Nickname is already in use")
		return false
	}
	if !c.registered {
		c.nick = n
		return s.tryRegister(c)
	}
	old := c.prefix()
	delete(s.clients, fold(c.nick))
	c.sendf(":%s NICK :%s", old, n)
	for p := range s.peers(c) {
		p.sendf(":%s NICK :%s", old, n)
	}
	c.nick = n
	s.clients[fold(n)] = c
	s.tellMonitors(strings.SplitN(old, "!", 2)[0], "", false)
	s.tellMonitors(n, c.prefix(), true)
	return false
}

func (s *Server) join(c *client, name, key string) {
	if len(name) < 2 || !strings.ContainsRune("#&", rune(name[0])) || strings.ContainsAny(name, " ,\x07") {
		c.numeric("403", name, "No such channel")
		return
	}
	if c.chans[fold(name)] != nil {
		return
	}
	ch := s.channel(name)
	switch {
	case ch.bans[fold(c.nick)]:
		c.numeric("474", ch.name, "Cannot join channel (+b)")
		return
	case ch.invite && !ch.invited[fold(c.nick)]:
		c.numeric("473", ch.name, "Cannot join channel (+i)")
		return
	case ch.key != "" && key != ch.key:
		c.numeric("475", ch.name, "Cannot join channel (+k)")
		return
	case ch.limit > 0 && len(ch.members) >= ch.limit:
		c.numeric("471", ch.name, "Cannot join channel (+l)")
		return
	}
	modes := ""
	if len(ch.members) == 0 {
		modes = "@"
	}
	ch.members[c] = modes
	c.chans[fold(ch.name)] = ch
	ch.broadcast(nil, ":%s JOIN %s", c.prefix(), ch.name)
	if ch.topic != "" {
		c.numeric("332", ch.name, ch.topic)
		c.numeric("333", ch.name, "someone", "1700000000")
	}
	s.names(c, ch)
}

func (s *Server) names(c *client, ch *channel) {
	var names []string
	for m, modes := range ch.members {
		if !c.caps["multi-prefix"] && len(modes) > 1 {
			modes = modes[:1]
		}
		names = append(names, modes+m.nick)
	}
	slices.Sort(names)
	// Two lines when there are many, as real servers do.
	for len(names) > 0 {
		n := min(len(names), 3)
		c.numeric("353", "=", ch.name, strings.Join(names[:n], " "))
		names = names[n:]
	}
	c.numeric("366", ch.name, "End of /NAMES list")
}

// leave takes c out of ch, dropping an empty channel's members state.
func (s *Server) leave(c *client, ch *channel) {
	delete(ch.members, c)
	delete(c.chans, fold(ch.name))
}

// quit takes c out of everything, telling its peers.
func (s *Server) quit(c *client, reason string) {
	if !c.registered {
		return
	}
	for p := range s.peers(c) {
		p.sendf(":%s QUIT :%s", c.prefix(), reason)
	}
	for _, ch := range c.chans {
		s.leave(c, ch)
	}
	if s.clients[fold(c.nick)] == c {
		delete(s.clients, fold(c.nick))
		s.tellMonitors(c.nick, "", false)
	}
	c.registered = false
}

// monitor runs MONITOR: + adds nicks to the client's list (answered
// with their state, 730 and 731, or 734 past the limit), - takes them
// off, C clears the list.
func (s *Server) monitor(c *client, m msg) {
	var targets []string
	for t := range strings.SplitSeq(m.p(1), ",") {
		if t != "" {
			targets = append(targets, t)
		}
	}
	switch m.p(0) {
	case "+":
		var on, off, full []string
		for _, t := range targets {
			if !c.monitor[fold(t)] && len(c.monitor) >= s.opts.Monitor {
				full = append(full, t)
				continue
			}
			c.monitor[fold(t)] = true
			if o := s.clients[fold(t)]; o != nil {
				on = append(on, o.prefix())
			} else {
				off = append(off, t)
			}
		}
		if len(on) > 0 {
			c.numeric("730", strings.Join(on, ","))
		}
		if len(off) > 0 {
			c.numeric("731", strings.Join(off, ","))
		}
		if len(full) > 0 {
			c.numeric("734", strconv.Itoa(s.opts.Monitor), strings.Join(full, ","), "Monitor list is full")
		}
	case "-":
		for _, t := range targets {
			delete(c.monitor, fold(t))
		}
	case "C":
		clear(c.monitor)
	}
}

// tellMonitors tells the clients that monitor nick that it came online
// (with its full address) or went.
func (s *Server) tellMonitors(nick, prefix string, online bool) {
	for o := range s.conns {
		if !o.registered || !o.monitor[fold(nick)] {
			continue
		}
		if online {
			o.numeric("730", prefix)
		} else {
			o.numeric("731", nick)
		}
	}
}

// rankSymbols are the membership prefixes, highest first.
const rankSymbols = "~&@%+"

func (s *Server) privmsg(c *client, m msg) {
	target, text := m.p(0), m.p(1)
	if text == "" {
		c.numeric("412", "No text to send")
		return
	}
	name, rank := target, len(rankSymbols)
	if i := strings.IndexByte(rankSymbols, target[0]); i >= 0 && len(target) > 1 {
		name, rank = target[1:], i // STATUSMSG: to the members of that rank and above
	}
	if strings.ContainsRune("#&", rune(name[0])) {
		ch := s.chans[fold(name)]
		if ch == nil {
			c.numeric("403", name, "No such channel")
			return
		}
		if _, in := ch.members[c]; !in {
			c.numeric("404", ch.name, "Cannot send to channel")
			return
		}
		for mem, modes := range ch.members {
			if mem != c && (rank == len(rankSymbols) || strings.ContainsAny(modes, rankSymbols[:rank+1])) {
				mem.sendf("%s:%s %s %s :%s", s.tags(mem), c.prefix(), m.cmd, target[:len(target)-len(name)]+ch.name, text)
			}
		}
		return
	}
	t := s.clients[fold(target)]
	if t == nil {
		if m.cmd == "PRIVMSG" {
			c.numeric("401", target, "No such nick/channel")
		}
		return
	}
	t.sendf("%s:%s %s %s :%s", s.tags(t), c.prefix(), m.cmd, t.nick, text)
	if t.away != "" && m.cmd == "PRIVMSG" {
		c.numeric("301", t.nick, t.away)
	}
}

func (s *Server) mode(c *client, m msg) {
	ch := s.chans[fold(m.p(0))]
	if ch == nil {
		if s.clients[fold(m.p(0))] == c {
			c.numeric("221", "+i")
		} else {
			c.numeric("403", m.p(0), "No such channel")
		}
		return
	}
	if len(m.params) < 2 {
		c.numeric("324", ch.name, "+nt")
		return
	}
	if !strings.ContainsAny(ch.members[c], "~&@%") {
		c.numeric("482", ch.name, "You're not channel operator")
		return
	}
	t := s.clients[fold(m.p(2))]
	if _, in := ch.members[t]; t == nil || !in {
		c.numeric("441", m.p(2), ch.name, "They aren't on that channel")
		return
	}
	ch.members[t] = applyMode(ch.members[t], m.p(1))
	ch.broadcast(nil, ":%s MODE %s %s %s", c.prefix(), ch.name, m.p(1), t.nick)
}

// applyMode sets or unsets one member mode ("+o") in a set of symbols
// kept in rank order.
func applyMode(symbols, mode string) string {
	const modes, syms = "qaohv", rankSymbols
	if len(mode) != 2 {
		return symbols
	}
	i := strings.IndexByte(modes, mode[1])
	if i < 0 {
		return symbols
	}
	sym := syms[i]
	symbols = strings.ReplaceAll(symbols, string(sym), "")
	if mode[0] == '+' {
		symbols += string(sym)
	}
	out := []byte{}
	for j := range len(syms) {
		if strings.IndexByte(symbols, syms[j]) >= 0 {
			out = append(out, syms[j])
		}
	}
	return string(out)
}
