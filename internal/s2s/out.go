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

	wake  chan struct{} // a stanza was queued
	quit  chan struct{} // closed by stop
	once  sync.Once
	mu    sync.Mutex
	queue []router.Stanza
	ended bool // no more stanzas are taken
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

func (o *outStream) enqueue(st router.Stanza) enqueueResult {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return streamEnded
	}
	if len(o.queue) >= o.svc.cfg.MaxQueued {
		return queueFull
	}
	o.queue = append(o.queue, st)
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return enqueued
}

// take removes up to n queued stanzas.
func (o *outStream) take(n int) []router.Stanza {
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
func (o *outStream) end() []router.Stanza {
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
		for _, st := range o.end() {
			o.svc.router.Bounce(ctx, st, cond, "")
		}
		return
	}
	log.Info("outgoing stream up", "auth", method)
	o.serve(ctx, c)
	log.Info("outgoing stream closed")
}

// serve writes queued stanzas until the stream is idle, broken or stopped.
func (o *outStream) serve(ctx context.Context, c *xconn) {
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			// The peer sends nothing on our stream but keepalives and its
			// end; reading notices that end.
			if _, err := c.nextElement(); err != nil {
				return
			}
		}
	}()
	idle := time.NewTimer(o.svc.cfg.IdleTimeout)
	defer idle.Stop()
	bufs := make(net.Buffers, 0, maxBatch)
	broken := false
loop:
	for {
		select {
		case <-o.wake:
			for {
				batch := o.take(maxBatch)
				if len(batch) == 0 {
					break
				}
				bufs = bufs[:0]
				for _, st := range batch {
					bufs = append(bufs, st.El.AppendXML(nil, xmlstream.NSServer))
				}
				if err := c.writeBuffers(bufs); err != nil {
					o.svc.log.Info("outgoing stream write", "remote", o.key.remote, "err", err)
					broken = true
					break loop
				}
			}
			idle.Reset(o.svc.cfg.IdleTimeout)
		case <-idle.C:
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
		c.fail(nil, "", "")
	} else {
		c.nc.Close()
	}
	<-readerDone
	shutting := ctx.Err() != nil
	select {
	case <-o.quit:
		shutting = true
	default:
	}
	for _, st := range rest {
		if shutting {
			o.svc.router.Bounce(ctx, st, stanza.RemoteServerNotFound, "The server is shutting down.")
			continue
		}
		// Queued after the stream ended: a new stream takes them.
		o.svc.HandleStanza(ctx, st)
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
	ts, err := targets(ctx, s.cfg.Resolver, s.cfg.Hosts, remote)
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
	authed, triedExternal := false, false
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
		if authed {
			return c, MethodSASLExternal, nil
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
				return c, MethodDialback, nil
			}
			return nil, "", fmt.Errorf("%w: dialback %s", errAuth, d.Type)
		}
	}
	return nil, "", errors.New("too many stream restarts")
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
