package s2s

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// maxBatch bounds how many queued stanzas one write takes.
const maxBatch = 64

// outStream is the outgoing stream of one (local, remote) domain pair and
// the queue of stanzas for it. Its goroutine brings the stream up, writes
// the queue, and ends it when idle, broken or shut down.
type outStream struct {
	svc *Service
	key pair

	wake   chan struct{} // a stanza was queued
	quit   chan struct{} // closed by stop
	once   sync.Once
	mu     sync.Mutex
	queue  []queued
	ended  bool   // no more stanzas are taken
	method string // how the stream authenticated, while it is up
}

// queued is a stanza waiting for an outgoing stream.
type queued struct {
	st router.Stanza
	// tries counts the streams it was written to that broke before the
	// peer acknowledged it.
	tries int
}

type enqueueResult int

const (
	enqueued enqueueResult = iota
	queueFull
	streamEnded
)

func newOutStream(s *Service, k pair) *outStream {
	return &outStream{svc: s, key: k, wake: make(chan struct{}, 1), quit: make(chan struct{})}
}

func (o *outStream) enqueue(q queued) enqueueResult {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return streamEnded
	}
	if len(o.queue) >= o.svc.cfg.MaxQueued {
		return queueFull
	}
	o.queue = append(o.queue, q)
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return enqueued
}

// take removes up to n queued stanzas.
func (o *outStream) take(n int) []queued {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.queue) < n {
		n = len(o.queue)
	}
	out := o.queue[:n:n]
	o.queue = o.queue[n:]
	if len(o.queue) == 0 {
		o.queue = nil
	}
	return out
}

// end stops taking stanzas and returns those still queued.
func (o *outStream) end() []queued {
	o.svc.forget(o)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended = true
	q := o.queue
	o.queue = nil
	return q
}

func (o *outStream) stop() { o.once.Do(func() { close(o.quit) }) }

// run brings the stream up and serves it until it ends.
func (o *outStream) run(ctx context.Context) {
	log := o.svc.log.With("local", o.key.local, "remote", o.key.remote)
	cctx, cancel := context.WithTimeout(ctx, o.svc.cfg.ConnectTimeout)
	go func() {
		select {
		case <-o.quit:
			cancel()
		case <-cctx.Done():
		}
	}()
	c, method, err := o.svc.connect(cctx, o.key.local, o.key.remote, false)
	cancel()
	if err != nil {
		cond := classify(err)
		log.Info("federation failed", "err", err, "bounce", cond)
		if errors.Is(err, errAuth) {
			o.svc.metrics.S2SAuth(MethodDialback, false, false)
		}
		for _, q := range o.end() {
			o.svc.router.Bounce(ctx, q.st, cond, "")
		}
		return
	}
	log.Info("outgoing stream up", "auth", method, "sm", c.sm)
	o.svc.metrics.S2SAuth(method, false, true)
	o.svc.metrics.S2SStreamUp(false)
	o.mu.Lock()
	o.method = method
	o.mu.Unlock()
	o.serve(ctx, c)
	o.mu.Lock()
	o.method = ""
	o.mu.Unlock()
	o.svc.metrics.S2SStreamDown(false)
	log.Info("outgoing stream closed")
}

// serve writes queued stanzas until the stream is idle, broken or stopped.
// With stream management, written stanzas stay in unacked until the peer
// acknowledges them; those left when the stream breaks are sent again on
// a new stream.
func (o *outStream) serve(ctx context.Context, c *xconn) {
	acks := make(chan uint32, 16)
	stopReader := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			// The peer sends nothing on our stream but acknowledgements,
			// keepalives and its end; reading notices that end.
			el, err := c.nextElement()
			if err != nil {
				return
			}
			if el.Space != NSSM {
				continue
			}
			switch el.Local {
			case "a":
				h, err := parseAck(el)
				if err != nil {
					o.svc.log.Info("outgoing stream: bad acknowledgement", "remote", o.key.remote, "err", err)
					c.nc.Close()
					return
				}
				select {
				case acks <- h:
				case <-stopReader:
					return
				}
			case "r":
				// Nothing is received on an outgoing stream.
				_ = c.write(ackXML(0))
			}
		}
	}()
	idle := time.NewTimer(o.svc.cfg.IdleTimeout)
	defer idle.Stop()
	var (
		unacked   []queued // written, not yet acknowledged (or the failed batch without SM)
		acked     uint32   // the peer's last h
		requested bool     // an <r/> is unanswered
		broken    bool
	)
	// ack applies the peer's count h; false is a count beyond what was sent.
	ack := func(h uint32) bool {
		n := h - acked
		if int64(n) > int64(len(unacked)) {
			return false
		}
		clear(unacked[:n])
		unacked = unacked[n:]
		acked, requested = h, false
		return true
	}
	bufs := make(net.Buffers, 0, maxBatch+1)
	// flush writes what is queued, as far as the window of unacknowledged
	// stanzas allows; false means the stream broke.
	flush := func() bool {
		for {
			room := maxBatch
			if c.sm {
				room = min(room, o.svc.cfg.MaxQueued-len(unacked))
			}
			var batch []queued
			if room > 0 {
				batch = o.take(room)
			}
			if len(batch) == 0 {
				if c.sm && len(unacked) > 0 && !requested {
					requested = true
					return c.write(smRequest) == nil
				}
				return true
			}
			bufs = bufs[:0]
			for _, q := range batch {
				bufs = append(bufs, q.st.El.AppendXML(nil, xmlstream.NSServer))
			}
			if c.sm {
				unacked = append(unacked, batch...)
				// One request at a time: each answer covers everything
				// written before it.
				if !requested {
					requested = true
					bufs = append(bufs, smRequest)
				}
			}
			if err := c.writeBuffers(bufs); err != nil {
				o.svc.log.Info("outgoing stream write", "remote", o.key.remote, "err", err)
				if !c.sm {
					// The batch may not have left: it goes out again.
					unacked = batch
				}
				return false
			}
		}
	}
loop:
	for {
		select {
		case <-o.wake:
			if !flush() {
				broken = true
				break loop
			}
			idle.Reset(o.svc.cfg.IdleTimeout)
		case h := <-acks:
			if !ack(h) {
				o.svc.log.Warn("outgoing stream: peer acknowledged more than was sent", "remote", o.key.remote, "h", h)
				broken = true
				break loop
			}
			if !flush() {
				broken = true
				break loop
			}
		case <-idle.C:
			if len(unacked) > 0 {
				// Not idle while the peer owes an acknowledgement.
				idle.Reset(o.svc.cfg.IdleTimeout)
				continue
			}
			break loop
		case <-readerDone:
			broken = true
			break loop
		case <-o.quit:
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	rest := o.end()
	if !broken {
		_ = c.writeWithin([]byte("</stream:stream>"), 2*time.Second)
		// The last acknowledgements may be on their way; the peer's
		// stream end follows them.
		grace := time.NewTimer(2 * time.Second)
	drain:
		for c.sm && len(unacked) > 0 {
			select {
			case h := <-acks:
				if !ack(h) {
					break drain
				}
			case <-readerDone:
				break drain
			case <-grace.C:
				break drain
			}
		}
		grace.Stop()
	}
	c.nc.Close()
	close(stopReader)
	<-readerDone
	// A last <a/> may sit in the channel.
	for len(acks) > 0 {
		ack(<-acks)
	}
	shutting := ctx.Err() != nil
	select {
	case <-o.quit:
		shutting = true
	default:
	}
	if len(unacked) > 0 {
		o.svc.log.Info("outgoing stream ended with unacknowledged stanzas", "remote", o.key.remote, "count", len(unacked), "shutdown", shutting)
	}
	for _, q := range unacked {
		q.tries++
		switch {
		case shutting:
			o.svc.router.Bounce(ctx, q.st, stanza.RemoteServerTimeout, "The server shut down before the remote server confirmed receipt.")
		case q.tries >= maxTries:
			o.svc.router.Bounce(ctx, q.st, stanza.RemoteServerTimeout, "The connection to the remote server broke before it confirmed receipt.")
		default:
			o.svc.send(ctx, q)
		}
	}
	for _, q := range rest {
		if shutting {
			o.svc.router.Bounce(ctx, q.st, stanza.RemoteServerNotFound, "The server is shutting down.")
			continue
		}
		// Queued after the stream ended: a new stream takes them.
		o.svc.send(ctx, q)
	}
}

// classify picks the stanza error for a failed connection.
func classify(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return stanza.RemoteServerTimeout
	}
	return stanza.RemoteServerNotFound
}

// Auth methods reported by connect.
const (
	MethodSASLExternal = "sasl-external"
	MethodDialback     = "dialback"
	MethodNone         = "none" // verification-only streams
)

// connect finds remote's server, opens a stream from local, secures it
// with TLS and, unless verifyOnly, authenticates. ctx bounds it all.
func (s *Service) connect(ctx context.Context, local, remote string, verifyOnly bool) (*xconn, string, error) {
	ts, err := targets(ctx, s.cfg.Resolver, *s.hosts.Load(), remote)
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		return nil, "", err
	}
	var errs []error
	var d net.Dialer
	for _, t := range ts {
		nc, err := d.DialContext(ctx, "tcp", t.addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.addr, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = nc.SetDeadline(dl)
		}
		stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
		c, method, err := s.negotiate(nc, t.directTLS, local, remote, verifyOnly)
		if !stop() || err != nil {
			nc.Close()
			if err == nil {
				err = ctx.Err()
			}
			errs = append(errs, fmt.Errorf("%s: %w", t.addr, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		_ = c.nc.SetDeadline(time.Time{})
		return c, method, nil
	}
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return nil, "", errors.Join(errs...)
}

// errAuth is a peer that refused to authenticate us.
var errAuth = errors.New("authentication refused")

// negotiate runs the initiating side of a server stream on nc.
func (s *Service) negotiate(nc net.Conn, directTLS bool, local, remote string, verifyOnly bool) (*xconn, string, error) {
	c := newXConn(nc, s.cfg.Limits)
	s.shape(c)
	peerValid := false
	startTLS := func() error {
		t := tls.Client(c.nc, &tls.Config{
			ServerName: remote,
			MinVersion: tls.VersionTLS12,
			// Checked below against remote: a peer without a valid
			// certificate can still be authenticated by dialback.
			InsecureSkipVerify: true,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return s.cert(local), nil
			},
			NextProtos: alpnFor(directTLS),
		})
		if err := t.Handshake(); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		c.upgrade(t)
		peerValid = s.validFor(t.ConnectionState().PeerCertificates, remote)
		return nil
	}
	if directTLS {
		if err := startTLS(); err != nil {
			return nil, "", err
		}
	}
	authed, triedExternal, smOffered := false, false, false
	for restarts := 0; restarts < 4; restarts++ {
		if err := c.write(streamHeader(local, remote, "")); err != nil {
			return nil, "", err
		}
		ev, err := c.next()
		if err != nil {
			return nil, "", err
		}
		if ev.Kind != xmlstream.EventStreamStart || ev.Elem.Space != xmlstream.NSStream || c.p.DefaultNS() != xmlstream.NSServer {
			return nil, "", errors.New("not a server stream")
		}
		id := ev.Elem.Attr("id")
		feats, err := c.nextElement()
		if err != nil {
			return nil, "", err
		}
		if feats.Space != xmlstream.NSStream || feats.Local != "features" {
			return nil, "", fmt.Errorf("expected stream features, got %s", feats.Local)
		}
		smOffered = feats.Child(NSSM, "sm") != nil
		if authed {
			return c, MethodSASLExternal, c.enableSM(smOffered)
		}
		if c.tls == nil {
			if feats.Child(stanza.NSTLS, "starttls") == nil {
				return nil, "", errors.New("the peer does not offer TLS")
			}
			if err := c.write([]byte("<starttls xmlns='" + stanza.NSTLS + "'/>")); err != nil {
				return nil, "", err
			}
			el, err := c.nextElement()
			if err != nil {
				return nil, "", err
			}
			if el.Space != stanza.NSTLS || el.Local != "proceed" {
				return nil, "", errors.New("starttls refused")
			}
			if err := startTLS(); err != nil {
				return nil, "", err
			}
			continue
		}
		if verifyOnly {
			c.streamID = id
			return c, MethodNone, nil
		}
		if peerValid && !triedExternal && offersExternal(feats) {
			triedExternal = true
			if err := c.write([]byte("<auth xmlns='" + stanza.NSSASL + "' mechanism='EXTERNAL'>" + base64.StdEncoding.EncodeToString([]byte(local)) + "</auth>")); err != nil {
				return nil, "", err
			}
			el, err := c.nextElement()
			if err != nil {
				return nil, "", err
			}
			if el.Space == stanza.NSSASL && el.Local == "success" {
				authed = true
				c.p.Reset()
				continue
			}
			// A failure leaves the stream usable: dialback may still work.
		}
		if id == "" {
			return nil, "", errors.New("the peer's stream has no id")
		}
		key := dialbackKey(s.cfg.Secret, remote, local, id)
		if err := c.write(dbXML(false, local, remote, "", "", key)); err != nil {
			return nil, "", err
		}
		for {
			el, err := c.nextElement()
			if err != nil {
				return nil, "", err
			}
			if el.Space != NSDialback || el.Local != "result" {
				continue
			}
			d, err := parseDialback(el)
			if err != nil || d.From != remote || d.To != local {
				continue
			}
			if d.Type == "valid" {
				return c, MethodDialback, c.enableSM(smOffered)
			}
			return nil, "", fmt.Errorf("%w: dialback %s", errAuth, d.Type)
		}
	}
	return nil, "", errors.New("too many stream restarts")
}

// enableSM turns on stream management acknowledgements when the peer
// offers them; a peer that refuses leaves the stream without them.
func (c *xconn) enableSM(offered bool) error {
	if !offered {
		return nil
	}
	if err := c.write(smEnable); err != nil {
		return err
	}
	for {
		el, err := c.nextElement()
		if err != nil {
			return err
		}
		if el.Space != NSSM {
			continue
		}
		switch el.Local {
		case "enabled":
			c.sm = true
			return nil
		case "failed":
			return nil
		case "r":
			if err := c.write(ackXML(0)); err != nil {
				return err
			}
		}
	}
}

// alpnFor names the protocol on direct TLS connections (XEP-0368).
func alpnFor(direct bool) []string {
	if direct {
		return []string{"xmpp-server"}
	}
	return nil
}

// offersExternal reports whether features offer SASL EXTERNAL.
func offersExternal(feats *xmlstream.Element) bool {
	m := feats.Child(stanza.NSSASL, "mechanisms")
	if m == nil {
		return false
	}
	for c := range m.ChildElements {
		if c.Local == "mechanism" && c.Text() == "EXTERNAL" {
			return true
		}
	}
	return false
}

// verifyKey asks the authoritative server of originating whether key is
// the one it made for a stream to receiving with id (db:verify).
func (s *Service) verifyKey(ctx context.Context, receiving, originating, id, key string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	c, _, err := s.connect(ctx, receiving, originating, true)
	if err != nil {
		return false, err
	}
	defer c.fail(nil, "", "")
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetDeadline(dl)
	}
	if err := c.write(dbXML(true, receiving, originating, id, "", key)); err != nil {
		return false, err
	}
	for {
		el, err := c.nextElement()
		if err != nil {
			return false, err
		}
		if el.Space != NSDialback || el.Local != "verify" {
			continue
		}
		d, err := parseDialback(el)
		if err != nil || d.ID != id || d.From != originating || d.To != receiving {
			continue
		}
		return d.Type == "valid", nil
	}
}

// Check connects from local to remote and authenticates as the outgoing
// stream would, then closes; it returns the method that worked.
func (s *Service) Check(ctx context.Context, local, remote string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout)
	defer cancel()
	c, method, err := s.connect(ctx, local, remote, false)
	if err != nil {
		return "", err
	}
	c.fail(nil, "", "")
	return method, nil
}
