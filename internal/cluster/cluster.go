// Package cluster keeps the membership of a split Ambrosia in etcd:
// gateways and service instances register under leases, and everyone
// watches the same keys, so that all of them compute who owns a user from
// one revision of one membership (router.View) instead of from whom each
// happens to be linked to.
//
// Keys, under /ambrosia/NAME/ for a cluster named NAME:
//
//	gateways/ID            service listener host:port      (leased)
//	services/KIND/ID       the domains served, space-separated (leased)
//	domains/DOMAIN         the kind that serves the domain  (a claim)
//
// A leased key goes when its process stops (the lease is revoked) or
// when the process has not renewed the lease for its TTL (a crash, a
// partition): the instance's users move then, and only then. A domain
// claim is what refuses a service of another kind for a domain: it stays
// after its instances are gone and is taken over only once no instance
// of its kind lists the domain.
//
// Nothing but this package speaks to etcd: the router and the service
// protocol take a router.Membership.
package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/ambrosia-xmpp/ambrosia/internal/router"
)

// Config says where etcd is and how this process registers.
type Config struct {
	// Endpoints are the client URLs of the etcd members.
	Endpoints []string
	// Name names the cluster: its keys live under /ambrosia/Name/.
	Name string
	// TTL is the lease of a registration: how long after a crash its
	// users move (default 10 s; at least 2 s).
	TTL time.Duration
	// DialTimeout bounds the first contact (default 5 s).
	DialTimeout time.Duration
}

// Client is a connection to etcd for one process.
type Client struct {
	cfg    Config
	cli    *clientv3.Client
	log    *slog.Logger
	prefix string

	mu      sync.Mutex
	view    router.View
	changed chan struct{} // closed and replaced when view changes
	err     error         // set once the watch has ended for good
}

var _ router.Membership = (*Client)(nil)

// ErrDomainTaken is returned by Register for a domain that a service of
// another kind serves in the cluster.
var ErrDomainTaken = errors.New("cluster: domain served by another service")

// Open connects to etcd and checks that it answers: an unreachable
// cluster is an error naming the endpoints.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("cluster: no etcd endpoint")
	}
	if cfg.Name == "" {
		cfg.Name = "default"
	}
	if strings.ContainsAny(cfg.Name, "/ \t\r\n") {
		return nil, fmt.Errorf("cluster: bad cluster name %q", cfg.Name)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.TTL < 2*time.Second {
		return nil, fmt.Errorf("cluster: lease TTL %v is below 2s", cfg.TTL)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	cc := clientv3.Config{
		Endpoints: cfg.Endpoints, DialTimeout: cfg.DialTimeout, Logger: zap.NewNop(),
		DialKeepAliveTime: 2 * time.Second, DialKeepAliveTimeout: 2 * time.Second,
	}
	for _, e := range cfg.Endpoints {
		if strings.HasPrefix(e, "https://") {
			// The system's roots verify the members' certificates.
			cc.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("cluster: etcd at %s: %w", strings.Join(cfg.Endpoints, ", "), err)
	}
	c := &Client{cfg: cfg, cli: cli, log: log.With("component", "cluster", "cluster", cfg.Name), prefix: "/ambrosia/" + cfg.Name + "/",
		changed: make(chan struct{})}
	cctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := cli.Get(clientv3.WithRequireLeader(cctx), c.prefix, clientv3.WithCountOnly()); err != nil {
		cli.Close()
		return nil, fmt.Errorf("cluster: etcd unreachable at %s: %w", strings.Join(cfg.Endpoints, ", "), err)
	}
	return c, nil
}

// Close ends the connection.
func (c *Client) Close() error { return c.cli.Close() }

// TTL is the lease of registrations.
func (c *Client) TTL() time.Duration { return c.cfg.TTL }

// Watch keeps the view up to date until ctx is done; Next serves it.
// It returns once the first view is read, or with the error that kept it
// from being read.
func (c *Client) Watch(ctx context.Context) error {
	st, rev, err := c.load(ctx)
	if err != nil {
		return fmt.Errorf("cluster: read membership from %s: %w", strings.Join(c.cfg.Endpoints, ", "), err)
	}
	c.publish(st.view(rev))
	go c.watch(ctx, st, rev)
	return nil
}

// state is the membership keys as last read.
type state struct {
	prefix   string
	gateways map[string]string
	services map[string]string // "kind/id" to its domains
}

func (st *state) apply(key string, value []byte, deleted bool) {
	rest := strings.TrimPrefix(key, st.prefix)
	switch {
	case strings.HasPrefix(rest, "gateways/"):
		id := strings.TrimPrefix(rest, "gateways/")
		if deleted {
			delete(st.gateways, id)
		} else {
			st.gateways[id] = string(value)
		}
	case strings.HasPrefix(rest, "services/"):
		ki := strings.TrimPrefix(rest, "services/")
		if deleted {
			delete(st.services, ki)
		} else {
			st.services[ki] = string(value)
		}
	}
}

func (st *state) view(rev int64) router.View {
	v := router.View{Rev: rev, Gateways: map[string]string{}, Instances: map[string][]string{}}
	for id, a := range st.gateways {
		v.Gateways[id] = a
	}
	for ki, doms := range st.services {
		kind, id, ok := strings.Cut(ki, "/")
		if !ok {
			continue
		}
		for _, d := range strings.Fields(doms) {
			k := router.ServiceKey(kind, d)
			v.Instances[k] = append(v.Instances[k], id)
		}
	}
	for _, ids := range v.Instances {
		slices.Sort(ids)
	}
	return v
}

func (c *Client) load(ctx context.Context) (*state, int64, error) {
	st := &state{prefix: c.prefix, gateways: map[string]string{}, services: map[string]string{}}
	gctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	resp, err := c.cli.Get(clientv3.WithRequireLeader(gctx), c.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, err
	}
	for _, kv := range resp.Kvs {
		st.apply(string(kv.Key), kv.Value, false)
	}
	return st, resp.Header.Revision, nil
}

// watch follows the keys from rev on. A view is published once every
// event of a revision is applied, so that it is the membership at exactly
// that revision. When etcd is unreachable the last view stays in force.
func (c *Client) watch(ctx context.Context, st *state, rev int64) {
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wc := c.cli.Watch(wctx, c.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
		for resp := range wc {
			if err := resp.Err(); err != nil {
				c.log.Warn("etcd watch interrupted: serving on the last membership", "revision", rev, "err", err)
				break
			}
			if len(resp.Events) == 0 {
				continue
			}
			for _, ev := range resp.Events {
				st.apply(string(ev.Kv.Key), ev.Kv.Value, ev.Type == clientv3.EventTypeDelete)
				rev = ev.Kv.ModRevision
			}
			c.publish(st.view(rev))
		}
		cancel()
		if ctx.Err() != nil {
			break
		}
		// Compacted past rev, or the member lost its leader: read the keys
		// again (once etcd answers) and go on from there.
		for ctx.Err() == nil {
			nst, nrev, err := c.load(ctx)
			if err == nil {
				if nrev > rev {
					c.publish(nst.view(nrev))
				}
				st, rev = nst, nrev
				break
			}
			c.log.Debug("etcd unreachable", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	c.mu.Lock()
	c.err = ctx.Err()
	close(c.changed)
	c.changed = nil
	c.mu.Unlock()
}

func (c *Client) publish(v router.View) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v.Rev <= c.view.Rev {
		return
	}
	c.view = v
	c.log.Debug("membership", "revision", v.Rev, "gateways", len(v.Gateways), "services", v.Instances)
	close(c.changed)
	c.changed = make(chan struct{})
}

// Next implements router.Membership.
func (c *Client) Next(ctx context.Context, rev int64) (router.View, error) {
	for {
		c.mu.Lock()
		v, ch, err := c.view, c.changed, c.err
		c.mu.Unlock()
		if v.Rev > rev {
			return v, nil
		}
		if ch == nil {
			return router.View{}, fmt.Errorf("cluster: watch ended: %w", err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return router.View{}, ctx.Err()
		}
	}
}
