package ircconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// Errors of a registration.
var (
	// ErrNickInUse: every nick tried was taken.
	ErrNickInUse = errors.New("ircconn: nickname in use")
	// ErrBadNick: the server refused the nick as erroneous.
	ErrBadNick = errors.New("ircconn: erroneous nickname")
	// ErrPassword: the server refused the password (PASS).
	ErrPassword = errors.New("ircconn: password refused")
	// ErrBanned: the server refused the client (K-line and the like).
	ErrBanned = errors.New("ircconn: banned from the server")
	// ErrClosed: the connection is closed.
	ErrClosed = errors.New("ircconn: connection closed")
	// ErrBadParam: a parameter cannot go on an IRC line.
	ErrBadParam = errors.New("ircconn: parameter not allowed on an IRC line")
)

// Defaults of Config.
const (
	DefaultKeepAlive = 90 * time.Second
	// motdWait bounds the wait for the end of the message of the day
	// after the welcome.
	motdWait = 10 * time.Second
	// maxNickTries bounds the nicks tried at registration.
	maxNickTries = 6
	// writeTimeout bounds one write.
	writeTimeout = 30 * time.Second
	// maxRead is the longest line read: 8191 bytes of tags and 512 of
	// message (IRCv3 message-tags); longer lines are skipped.
	maxRead = 8191 + MaxLine
)

// Config says how to connect and register.
type Config struct {
	// Addr is the server, host:port.
	Addr string
	// TLS, when not nil, makes the connection TLS from the start with
	// that configuration.
	TLS *tls.Config
	// Password is sent with PASS when not empty.
	Password string
	// Nick is the nick asked for; when taken, '_' is appended (up to
	// five times), and when too long for the server it is cut.
	Nick string
	// User is the user name of USER; empty for one made from the nick.
	User string
	// Realname is the real name of USER; empty for the nick.
	Realname string
	// Caps are the IRCv3 capabilities to enable when the server offers
	// them, negotiated with CAP LS 302 before the registration.
	Caps []string
	// FloodRate is how many lines per second are written after a burst
	// of FloodBurst; 0 does not limit. Answers to the server's PINGs and
	// QUIT are not held back.
	FloodRate  float64
	FloodBurst int
	// KeepAlive is the silence after which the client sends a PING; as
	// long again without anything from the server ends the connection.
	// Zero means DefaultKeepAlive.
	KeepAlive time.Duration
}

// Conn is a registered connection to an IRC server. Its methods may be
// called from any goroutine; Serve runs in one, reading.
type Conn struct {
	nc  net.Conn
	r   lineReader
	cfg Config

	support Support
	caps    map[string]bool
	server  string
	pending []*Message // read during registration after the welcome

	wmu    sync.Mutex // serializes writes, held while writing only
	wbuf   []byte
	bucket bucket

	mu       sync.Mutex
	nick     string
	userhost string // user@host as the server shows it, "" until known
	closing  bool
	done     chan struct{} // closed when Serve returns
	serving  bool
}

// Dial connects to the server and registers: CAP negotiation, PASS,
// NICK (with another nick when it is taken), USER, then the welcome and
// the server's ISUPPORT, until the end of the message of the day. ctx
// bounds all of it.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if cfg.Nick == "" {
		return nil, fmt.Errorf("%w: no nick", ErrBadNick)
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		tc := cfg.TLS.Clone()
		if tc.ServerName == "" {
			host, _, _ := net.SplitHostPort(cfg.Addr)
			tc.ServerName = host
		}
		t := tls.Client(nc, tc)
		if err := t.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("ircconn: tls: %w", err)
		}
		nc = t
	}
	c := newConn(nc, cfg)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	err = c.register(ctx)
	if !stop() || err != nil {
		nc.Close()
		if err == nil || ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			err = ctx.Err()
		}
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

func newConn(nc net.Conn, cfg Config) *Conn {
	c := &Conn{
		nc: nc, r: lineReader{r: bufio.NewReaderSize(nc, 4096)}, cfg: cfg, caps: map[string]bool{},
		done: make(chan struct{}),
	}
	c.bucket = bucket{rate: cfg.FloodRate, burst: float64(max(cfg.FloodBurst, 1)), tokens: float64(max(cfg.FloodBurst, 1)), last: time.Now()}
	return c
}

// register runs the registration, reading until the end of the MOTD.
func (c *Conn) register(ctx context.Context) error {
	nick := cleanNick(c.cfg.Nick)
	user := c.cfg.User
	if user == "" {
		user = userName(nick)
	}
	realname := c.cfg.Realname
	if realname == "" {
		realname = nick
	}
	if err := c.write("CAP", "LS", "302"); err != nil {
		return err
	}
	if c.cfg.Password != "" {
		if err := c.write("PASS", c.cfg.Password); err != nil {
			return err
		}
	}
	tries, maxLen := 0, 0
	c.nick = nick
	if err := c.write("NICK", nick); err != nil {
		return err
	}
	if err := c.write("USER", user, "0", "*", realname); err != nil {
		return err
	}
	var offered []string
	welcomed := false
	for {
		line, err := c.r.next()
		if err != nil {
			if welcomed && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
				return nil // no end of MOTD: go on without it
			}
			return err
		}
		m, err := Parse(line)
		if err != nil {
			continue
		}
		switch m.Command {
		case "PING":
			if err := c.write("PONG", m.Params...); err != nil {
				return err
			}
		case "CAP":
			switch strings.ToUpper(m.Param(1)) {
			case "LS":
				more := len(m.Params) > 3 && m.Param(2) == "*"
				for _, cp := range strings.Fields(m.Last()) {
					name, _, _ := strings.Cut(cp, "=")
					offered = append(offered, name)
				}
				if more {
					continue
				}
				var req []string
				for _, w := range c.cfg.Caps {
					for _, o := range offered {
						if strings.EqualFold(w, o) {
							req = append(req, o)
						}
					}
				}
				if len(req) == 0 {
					err = c.write("CAP", "END")
				} else {
					err = c.write("CAP", "REQ", strings.Join(req, " "))
				}
			case "ACK":
				for _, cp := range strings.Fields(m.Last()) {
					if name, off := strings.CutPrefix(cp, "-"); off {
						delete(c.caps, name)
					} else {
						c.caps[cp] = true
					}
				}
				err = c.write("CAP", "END")
			case "NAK":
				err = c.write("CAP", "END")
			}
			if err != nil {
				return err
			}
		case "001":
			welcomed = true
			c.nick = m.Param(0)
			c.server = m.Source
			if f := strings.Fields(m.Last()); len(f) > 0 {
				if _, uh, ok := strings.Cut(f[len(f)-1], "!"); ok && strings.Contains(uh, "@") {
					c.userhost = uh
				}
			}
			c.nc.SetReadDeadline(time.Now().Add(motdWait))
		case "005":
			if len(m.Params) > 2 {
				c.support.add(m.Params[1 : len(m.Params)-1])
			}
		case "376", "422":
			if welcomed {
				return nil
			}
		case "432":
			if welcomed {
				continue
			}
			if len(nick) <= 9 || maxLen == 9 {
				return fmt.Errorf("%w: %s: %s", ErrBadNick, nick, m.Last())
			}
			maxLen = 9
			nick = nickTry(c.cfg.Nick, tries, maxLen)
			c.nick = nick
			if err := c.write("NICK", nick); err != nil {
				return err
			}
		case "433", "436", "437":
			if welcomed {
				continue
			}
			tries++
			if tries >= maxNickTries {
				return fmt.Errorf("%w: %s", ErrNickInUse, c.cfg.Nick)
			}
			nick = nickTry(c.cfg.Nick, tries, maxLen)
			c.nick = nick
			if err := c.write("NICK", nick); err != nil {
				return err
			}
		case "464":
			return fmt.Errorf("%w: %s", ErrPassword, m.Last())
		case "465", "463":
			return fmt.Errorf("%w: %s", ErrBanned, m.Last())
		case "ERROR":
			if !welcomed && strings.Contains(strings.ToLower(m.Last()), "password") {
				return fmt.Errorf("%w: %s", ErrPassword, m.Last())
			}
			return fmt.Errorf("ircconn: the server closed the connection: %s", m.Last())
		default:
			if welcomed {
				c.pending = append(c.pending, m)
			}
		}
	}
}

// cfg0 is the nick as configured, without what cannot be in one.
func cleanNick(nick string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == ',' || r == '*' || r == '?' || r == '!' || r == '@' || r == ':' {
			return -1
		}
		return r
	}, nick)
}

// nickTry is the nick of the try-th attempt: the nick with try '_'
// appended, cut to maxLen bytes (0: no limit) keeping the underscores.
func nickTry(nick string, try, maxLen int) string {
	nick = cleanNick(nick)
	suffix := strings.Repeat("_", try)
	if maxLen > 0 && len(nick)+len(suffix) > maxLen {
		keep := max(maxLen-len(suffix), 1)
		if keep < len(nick) {
			nick = nick[:keep]
		}
	}
	return nick + suffix
}

// userName makes a user name from a nick: its letters and digits, in
// lower case, at most 10.
func userName(nick string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(nick) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
		if b.Len() == 10 {
			break
		}
	}
	if b.Len() == 0 {
		return "irc"
	}
	return b.String()
}

// lineReader reads lines without their CR LF (a lone LF ends one too),
// skipping empty ones and those longer than maxRead. What it read of a
// line before a read failed (a deadline) is kept for the next call.
type lineReader struct {
	r        *bufio.Reader
	partial  []byte
	skipping bool // in a line too long to keep
}

func (lr *lineReader) next() (string, error) {
	for {
		b, err := lr.r.ReadSlice('\n')
		if err == nil || err == bufio.ErrBufferFull {
			if !lr.skipping {
				lr.partial = append(lr.partial, b...)
				if len(lr.partial) > maxRead+2 {
					lr.partial, lr.skipping = lr.partial[:0], true
				}
			}
			if err != nil {
				continue
			}
			if lr.skipping {
				lr.skipping = false
				continue
			}
			line := strings.TrimRight(string(lr.partial), "\r\n")
			lr.partial = lr.partial[:0]
			if line == "" {
				continue
			}
			return line, nil
		}
		if !lr.skipping {
			lr.partial = append(lr.partial, b...)
		}
		if err == io.EOF && len(lr.partial) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
}

// Serve reads from the server until the connection ends, answering its
// PINGs and keeping the connection's own state (nick, user@host), and
// passes every message to h, in order, lines read during registration
// first. It returns nil after Close or Quit, and otherwise why the
// connection ended. Serve may be called once.
func (c *Conn) Serve(h func(*Message)) error {
	c.mu.Lock()
	if c.serving {
		c.mu.Unlock()
		return errors.New("ircconn: Serve called twice")
	}
	c.serving = true
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	defer close(c.done)
	for _, m := range pending {
		c.track(m)
		h(m)
	}
	pinged := false
	var closeReason string
	for {
		c.nc.SetReadDeadline(time.Now().Add(c.cfg.KeepAlive))
		line, err := c.r.next()
		if err != nil {
			c.mu.Lock()
			closing := c.closing
			c.mu.Unlock()
			if closing {
				return nil
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && !pinged {
				pinged = true
				if err := c.writeNow("PING", "keepalive"); err == nil {
					continue
				}
			}
			c.nc.Close()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("ircconn: no answer from %s for %s", c.cfg.Addr, 2*c.cfg.KeepAlive)
			}
			if closeReason != "" {
				return fmt.Errorf("ircconn: closed by the server: %s", closeReason)
			}
			return fmt.Errorf("ircconn: %w", err)
		}
		pinged = false
		m, err := Parse(line)
		if err != nil {
			continue
		}
		switch m.Command {
		case "PING":
			if err := c.writeNow("PONG", m.Params...); err != nil {
				continue // the read fails next
			}
		case "ERROR":
			closeReason = m.Last()
		}
		c.track(m)
		h(m)
	}
}

// track keeps the connection's own nick and address.
func (c *Conn) track(m *Message) {
	if m.Source == "" || m.FromServer() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.support.Fold(m.Nick()) != c.support.Fold(c.nick) {
		return
	}
	if _, uh, ok := strings.Cut(m.Source, "!"); ok {
		c.userhost = uh
	}
	if m.Command == "NICK" && len(m.Params) > 0 {
		c.nick = m.Params[0]
	}
}

// Nick returns the connection's nick now.
func (c *Conn) Nick() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nick
}

// Server returns the server's name, from its welcome.
func (c *Conn) Server() string { return c.server }

// Support returns what the server announced in RPL_ISUPPORT. Its map
// must not be changed.
func (c *Conn) Support() Support { return c.support }

// HasCap reports whether an IRCv3 capability was enabled.
func (c *Conn) HasCap(name string) bool { return c.caps[name] }

// Fold returns a nick or channel in the server's case mapping, for
// comparisons.
func (c *Conn) Fold(name string) string { return c.support.Fold(name) }

// IsChannel reports whether a target names a channel.
func (c *Conn) IsChannel(target string) bool {
	return target != "" && strings.IndexByte(c.support.ChanTypes(), target[0]) >= 0
}

// Send writes one command, after the flood control lets it through or
// ctx ends. The last parameter may hold spaces; no parameter may hold CR,
// LF or NUL, and the others no space nor a leading ':'.
func (c *Conn) Send(ctx context.Context, command string, params ...string) error {
	if err := checkParams(params); err != nil {
		return err
	}
	if err := c.bucket.take(ctx); err != nil {
		return err
	}
	return c.write(command, params...)
}

// Privmsg sends text to a nick or channel, in as many PRIVMSGs as its
// lines and length need.
func (c *Conn) Privmsg(ctx context.Context, target, text string) error {
	return c.say(ctx, "PRIVMSG", target, text, false)
}

// Notice sends text as NOTICEs, which nobody is to answer automatically.
func (c *Conn) Notice(ctx context.Context, target, text string) error {
	return c.say(ctx, "NOTICE", target, text, false)
}

// Action sends an emote ("/me waves" is Action(ctx, target, "waves")) as
// CTCP ACTION.
func (c *Conn) Action(ctx context.Context, target, text string) error {
	return c.say(ctx, "PRIVMSG", target, text, true)
}

func (c *Conn) say(ctx context.Context, command, target, text string, action bool) error {
	room := c.textRoom(command, target)
	if action {
		room -= len("\x01ACTION \x01")
	}
	for _, piece := range Split(text, room) {
		if action {
			piece = FormatCTCP("ACTION", piece)
		}
		if err := c.Send(ctx, command, target, piece); err != nil {
			return err
		}
	}
	return nil
}

// textRoom returns how many bytes of text fit in one command to target,
// as the server relays it with the connection's full address in front:
// the address as the server showed it, else the longest it is likely to
// be (a 10-byte user name and a 63-byte host).
func (c *Conn) textRoom(command, target string) int {
	c.mu.Lock()
	prefix := len(c.nick) + 1
	if c.userhost != "" {
		prefix += len(c.userhost)
	} else {
		prefix += 10 + 1 + 63
	}
	c.mu.Unlock()
	// ":" prefix " " command " " target " :" text CR LF
	return MaxLine - (1 + prefix + 1) - len(command) - 1 - len(target) - 2 - 2
}

// Quit says goodbye with a reason and closes the connection once the
// server did, or after two seconds.
func (c *Conn) Quit(ctx context.Context, reason string) error {
	c.mu.Lock()
	c.closing = true
	serving := c.serving
	c.mu.Unlock()
	err := c.writeNow("QUIT", reason)
	if serving && err == nil {
		t := time.NewTimer(2 * time.Second)
		select {
		case <-c.done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	c.nc.Close()
	return err
}

// Close closes the connection at once.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	return c.nc.Close()
}

func checkParams(params []string) error {
	for i, p := range params {
		if strings.ContainsAny(p, "\r\n\x00") {
			return fmt.Errorf("%w: %q", ErrBadParam, p)
		}
		if i < len(params)-1 && (p == "" || p[0] == ':' || strings.IndexByte(p, ' ') >= 0) {
			return fmt.Errorf("%w: %q", ErrBadParam, p)
		}
	}
	return nil
}

// writeNow writes a command without waiting for the flood control.
func (c *Conn) writeNow(command string, params ...string) error {
	return c.write(command, params...)
}

// write writes one line.
func (c *Conn) write(command string, params ...string) error {
	if err := checkParams(params); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], command...)
	for i, p := range params {
		b = append(b, ' ')
		if i == len(params)-1 && (p == "" || p[0] == ':' || strings.IndexByte(p, ' ') >= 0) {
			b = append(b, ':')
		}
		b = append(b, p...)
	}
	if len(b) > MaxLine-2 {
		return fmt.Errorf("%w: line of %d bytes", ErrBadParam, len(b)+2)
	}
	b = append(b, '\r', '\n')
	c.wbuf = b
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("ircconn: %w", err)
	}
	return nil
}

// bucket is the flood control: a token bucket whose tokens may go below
// zero, each taker waiting its turn.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func (b *bucket) take(ctx context.Context) error {
	if b.rate <= 0 {
		return nil
	}
	b.mu.Lock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens--
	wait := time.Duration(0)
	if b.tokens < 0 {
		wait = time.Duration(-b.tokens / b.rate * float64(time.Second))
	}
	b.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		b.tokens++
		b.mu.Unlock()
		return ctx.Err()
	}
}
