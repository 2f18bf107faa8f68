package componentclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Config is the configuration of one component connection.
type Config struct {
	// Addr is the server's component listener, host:port.
	Addr string
	// Domain is the domain the component serves, as the server knows it
	// (Prosody's Component name, ejabberd's ejabberd_service host).
	Domain string
	// Secret is the shared secret of the handshake.
	Secret string
	// Limits bound what the server may send in one stanza.
	Limits xmlstream.Limits
	// ReconnectMin and ReconnectMax bound the delay before dialing again
	// after a connection ended or could not be made; it doubles from the
	// one to the other, with jitter.
	ReconnectMin, ReconnectMax time.Duration
	// MaxQueued and MaxQueuedBytes bound the stanzas waiting to be
	// written, while disconnected or behind a slow server; past either,
	// stanzas are bounced to their senders.
	MaxQueued      int
	MaxQueuedBytes int
	// DialTimeout bounds connecting; HandshakeTimeout bounds the time from
	// connect to the server's <handshake/>.
	DialTimeout      time.Duration
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one write; a server that does not read for that
	// long is taken for dead. On Linux it is also the socket's
	// TCP_USER_TIMEOUT.
	WriteTimeout time.Duration
	// KeepAlive is how long the connection may stay without a write before
	// a whitespace keepalive is sent.
	KeepAlive time.Duration
	// CloseGrace is how long closing waits for the queue to be written and
	// for the server's stream end.
	CloseGrace time.Duration
	// StopWhenRefused makes Run return the *StreamError at once when the
	// server refuses the handshake, instead of logging it and retrying.
	StopWhenRefused bool
}

// DefaultConfig returns the defaults: the component port Prosody and
// ejabberd use, on loopback, since the stream is not encrypted. The
// stanza size limit is larger than a server's for its clients, since the
// server is trusted and relays what its users send.
func DefaultConfig() Config {
	l := xmlstream.DefaultLimits()
	l.MaxStanzaBytes = 1 << 20
	return Config{
		Addr:             "127.0.0.1:5347",
		Limits:           l,
		ReconnectMin:     time.Second,
		ReconnectMax:     time.Minute,
		MaxQueued:        10000,
		MaxQueuedBytes:   16 << 20,
		DialTimeout:      10 * time.Second,
		HandshakeTimeout: 30 * time.Second,
		WriteTimeout:     30 * time.Second,
		KeepAlive:        time.Minute,
		CloseGrace:       2 * time.Second,
	}
}

// Deps are the services the client uses.
type Deps struct {
	// Router is the component's private router: stanzas from the server
	// are routed into it.
	Router *router.Router
	Log    *slog.Logger
}

// stableAfter is how long a connection must have been up for the next
// reconnection delay to start from ReconnectMin again.
const stableAfter = 30 * time.Second

// maxBatch bounds how many queued stanzas one vectored write takes.
const maxBatch = 64

// Client is one component's connection to a server, reconnecting as
// needed.
type Client struct {
	cfg    Config
	domain string // normalized
	router *router.Router
	log    *slog.Logger

	running atomic.Bool // Run was called
	wake    chan struct{}

	mu          sync.Mutex
	q           [][]byte // serialized stanzas waiting for the writer, from head on
	head        int
	queuedBytes int
	overflowing bool  // a bound was hit and not yet logged as cleared
	cur         *conn // the connection whose handshake succeeded, nil if none
	done        bool  // Run has returned: nothing is queued any more
	lastErr     error
}

// New validates cfg, fills in defaults for zero fields and returns a
// Client.
func New(cfg Config, d Deps) (*Client, error) {
	if d.Router == nil || d.Log == nil {
		return nil, errors.New("componentclient: router and logger are required")
	}
	j, err := jid.Parse(cfg.Domain)
	if err != nil || j.Local() != "" || j.Resource() != "" {
		return nil, fmt.Errorf("componentclient: %q is not a domain", cfg.Domain)
	}
	if cfg.Secret == "" {
		return nil, errors.New("componentclient: empty secret")
	}
	def := DefaultConfig()
	if cfg.Addr == "" {
		cfg.Addr = def.Addr
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("componentclient: address %q: %w", cfg.Addr, err)
	}
	if cfg.Limits.MaxStanzaBytes <= 0 {
		cfg.Limits.MaxStanzaBytes = def.Limits.MaxStanzaBytes
	}
	for _, f := range []struct {
		v *time.Duration
		d time.Duration
	}{
		{&cfg.ReconnectMin, def.ReconnectMin},
		{&cfg.DialTimeout, def.DialTimeout},
		{&cfg.HandshakeTimeout, def.HandshakeTimeout},
		{&cfg.WriteTimeout, def.WriteTimeout},
		{&cfg.KeepAlive, def.KeepAlive},
		{&cfg.CloseGrace, def.CloseGrace},
	} {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = max(def.ReconnectMax, cfg.ReconnectMin)
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		return nil, fmt.Errorf("componentclient: ReconnectMax %v is less than ReconnectMin %v", cfg.ReconnectMax, cfg.ReconnectMin)
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = def.MaxQueued
	}
	if cfg.MaxQueuedBytes <= 0 {
		cfg.MaxQueuedBytes = def.MaxQueuedBytes
	}
	return &Client{
		cfg:    cfg,
		domain: j.Domain(),
		router: d.Router,
		log:    d.Log.With("component", "componentclient", "domain", j.Domain(), "addr", cfg.Addr),
		wake:   make(chan struct{}, 1),
	}, nil
}

// Forwarder returns the router.Component that sends stanzas out through
// the server; set it as the fallback of the component's router.
func (c *Client) Forwarder() router.Component { return forwarder{c} }

// Connected reports whether a stream is up now, its handshake done.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil
}

// LastError returns why the last connection ended or could not be made
// (a *StreamError when the server sent one), nil while connected and
// before the first attempt.
func (c *Client) LastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Run connects and serves until ctx is done, reconnecting whenever the
// connection ends. It returns nil once ctx is done and its goroutines have
// ended, after closing the stream and bouncing what could not be sent; with
// StopWhenRefused it returns a refused handshake's *StreamError at once.
// Run may be called once.
func (c *Client) Run(ctx context.Context) error {
	if c.running.Swap(true) {
		return errors.New("componentclient: Run called twice")
	}
	defer c.stop(ctx)
	attempt := 0
	for {
		up, err := c.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		c.mu.Lock()
		c.lastErr = err
		c.mu.Unlock()
		var se *StreamError
		switch {
		case errors.As(err, &se) && se.Handshake:
			c.log.Error("server refused the component", "condition", se.Condition, "text", se.Text)
			if c.cfg.StopWhenRefused {
				return err
			}
		case up > 0:
			c.log.Warn("disconnected", "err", err, "up", up.Round(time.Millisecond).String())
		default:
			c.log.Warn("cannot connect", "err", err)
		}
		if up >= stableAfter {
			attempt = 0
		}
		d := backoff(attempt, c.cfg.ReconnectMin, c.cfg.ReconnectMax)
		attempt++
		c.log.Info("reconnecting", "in", d.Round(time.Millisecond).String())
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff returns the delay before reconnection attempt n (from 0): min
// doubled n times, at most max, with jitter over its upper half, never
// below min.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	j := d/2 + rand.N(d/2+1)
	return max(j, lo)
}

// connect makes one connection and serves it until it ends; it returns how
// long the stream was up after the handshake (0 if it never was) and why
// it ended.
func (c *Client) connect(ctx context.Context) (time.Duration, error) {
	d := net.Dialer{Timeout: c.cfg.DialTimeout, Control: dialControl(c.cfg.WriteTimeout)}
	nc, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return 0, err
	}
	return newConn(c, nc).serve(ctx)
}

// up records cn as the current connection.
func (c *Client) up(cn *conn) {
	c.mu.Lock()
	c.cur, c.lastErr = cn, nil
	c.mu.Unlock()
}

// down records that cn is no longer usable.
func (c *Client) down(cn *conn) {
	c.mu.Lock()
	if c.cur == cn {
		c.cur = nil
	}
	c.mu.Unlock()
}

// stop ends queueing once Run returns and bounces what is left.
func (c *Client) stop(ctx context.Context) {
	c.mu.Lock()
	c.done = true
	left := c.q[c.head:]
	c.q, c.head, c.queuedBytes = nil, 0, 0
	c.mu.Unlock()
	if len(left) > 0 {
		c.log.Warn("stanzas not sent", "count", len(left))
	}
	for _, b := range left {
		c.bounceBytes(context.WithoutCancel(ctx), b)
	}
}
