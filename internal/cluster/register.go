package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Entry is what a process registers.
type Entry struct {
	// Gateway, when set, is this gateway's service listener, host:port,
	// registered under gateways/ID.
	Gateway string
	// Kind and Domains, when Kind is set, register a service instance
	// under services/KIND/ID.
	Kind    string
	Domains []string
	// ID names the gateway or the instance in the cluster.
	ID string
}

func (c *Client) key(e Entry) string {
	if e.Kind != "" {
		return c.prefix + "services/" + e.Kind + "/" + e.ID
	}
	return c.prefix + "gateways/" + e.ID
}

func (c *Client) value(e Entry) string {
	if e.Kind != "" {
		return strings.Join(e.Domains, " ")
	}
	return e.Gateway
}

// Register puts e under a lease and keeps it there until ctx is done,
// then revokes the lease so that its users move at once. The first
// registration is done when Register returns: its error (a domain of
// another kind's, etcd unreachable) is returned. Later, when the lease is
// lost (etcd unreachable for longer than the TTL), the entry is
// registered again once etcd answers; meanwhile the process goes on
// serving. run, once started, returns when ctx is done.
func (c *Client) Register(ctx context.Context, e Entry) (run func(), err error) {
	if e.ID == "" || strings.Contains(e.ID, "/") {
		return nil, fmt.Errorf("cluster: bad id %q", e.ID)
	}
	lease, err := c.register(ctx, e)
	if err != nil {
		return nil, err
	}
	c.log.Info("registered", "key", c.key(e), "value", c.value(e), "ttl", c.cfg.TTL.String())
	return func() { c.keep(ctx, e, lease) }, nil
}

// keep renews the lease until ctx is done.
func (c *Client) keep(ctx context.Context, e Entry, lease clientv3.LeaseID) {
	for {
		c.keepAlive(ctx, lease)
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := c.cli.Revoke(rctx, lease)
			cancel()
			if err != nil {
				c.log.Warn("lease not revoked: it expires after its TTL", "key", c.key(e), "err", err)
			} else {
				c.log.Info("unregistered", "key", c.key(e))
			}
			return
		}
		c.log.Warn("etcd lease lost: registering again once etcd answers; serving on the last membership meanwhile", "key", c.key(e))
		for ctx.Err() == nil {
			l, err := c.register(ctx, e)
			if err == nil {
				lease = l
				c.log.Info("registered again", "key", c.key(e))
				break
			}
			c.log.Debug("registration", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// keepAlive renews lease until it is lost or ctx is done; it says once
// when etcd stops answering, and when it answers again.
func (c *Client) keepAlive(ctx context.Context, lease clientv3.LeaseID) {
	every := c.cfg.TTL / 3
	down := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		kctx, cancel := context.WithTimeout(ctx, every)
		resp, err := c.cli.KeepAliveOnce(clientv3.WithRequireLeader(kctx), lease)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded) || (err != nil && !isLeaseGone(err)):
			if !down {
				c.log.Warn("etcd unreachable: serving on the last membership, new members wait", "endpoints", strings.Join(c.cfg.Endpoints, ", "), "err", err)
				down = true
			}
		case err != nil || resp.TTL <= 0:
			return
		default:
			if down {
				c.log.Info("etcd reachable again")
				down = false
			}
		}
	}
}

func isLeaseGone(err error) bool {
	return strings.Contains(err.Error(), "requested lease not found")
}

// register grants a lease and puts the entry under it; a service claims
// its domains in the same transaction.
func (c *Client) register(ctx context.Context, e Entry) (clientv3.LeaseID, error) {
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), c.cfg.DialTimeout)
	defer cancel()
	g, err := c.cli.Grant(ctx, int64(c.cfg.TTL/time.Second))
	if err != nil {
		return 0, fmt.Errorf("cluster: etcd at %s: lease: %w", strings.Join(c.cfg.Endpoints, ", "), err)
	}
	put := clientv3.OpPut(c.key(e), c.value(e), clientv3.WithLease(g.ID))
	if e.Kind == "" {
		if _, err := c.cli.Put(ctx, c.key(e), c.value(e), clientv3.WithLease(g.ID)); err != nil {
			return 0, fmt.Errorf("cluster: register %s: %w", c.key(e), err)
		}
		return g.ID, nil
	}
	for try := 0; ; try++ {
		cmps, ops, err := c.claims(ctx, e)
		if err != nil {
			_, _ = c.cli.Revoke(ctx, g.ID)
			return 0, err
		}
		resp, err := c.cli.Txn(ctx).If(cmps...).Then(append(ops, put)...).Commit()
		if err != nil {
			return 0, fmt.Errorf("cluster: register %s: %w", c.key(e), err)
		}
		if resp.Succeeded {
			return g.ID, nil
		}
		if try == 10 {
			return 0, fmt.Errorf("cluster: register %s: the domain claims keep changing", c.key(e))
		}
	}
}

// claims reads the domain claims of e and returns the comparisons and
// writes that claim them in a transaction: a domain nobody claims, or
// that e's kind claims, is claimed (again); a domain claimed by another
// kind is an error while an instance of that kind lists it, and taken
// over otherwise (a claim left by a kind no longer run).
func (c *Client) claims(ctx context.Context, e Entry) ([]clientv3.Cmp, []clientv3.Op, error) {
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	for _, d := range e.Domains {
		k := c.prefix + "domains/" + d
		resp, err := c.cli.Get(ctx, k)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: etcd at %s: %w", strings.Join(c.cfg.Endpoints, ", "), err)
		}
		if len(resp.Kvs) == 0 {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		} else {
			kv := resp.Kvs[0]
			if other := string(kv.Value); other != e.Kind {
				ids, err := c.serving(ctx, other, d)
				if err != nil {
					return nil, nil, err
				}
				if len(ids) > 0 {
					return nil, nil, fmt.Errorf("%w: %s is served by %q (instances %s) in cluster %q, not %q", ErrDomainTaken, d, other, strings.Join(ids, ", "), c.cfg.Name, e.Kind)
				}
				c.log.Info("domain claim taken over: no instance of its kind is left", "domain", d, "was", other, "now", e.Kind)
			}
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", kv.ModRevision))
		}
		// Rewritten by every instance that registers, so that a take-over
		// racing with it fails its comparison.
		ops = append(ops, clientv3.OpPut(k, e.Kind))
	}
	return cmps, ops, nil
}

// serving lists the instances of kind that list domain.
func (c *Client) serving(ctx context.Context, kind, domain string) ([]string, error) {
	p := c.prefix + "services/" + kind + "/"
	resp, err := c.cli.Get(ctx, p, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("cluster: etcd at %s: %w", strings.Join(c.cfg.Endpoints, ", "), err)
	}
	var ids []string
	for _, kv := range resp.Kvs {
		if slices.Contains(strings.Fields(string(kv.Value)), domain) {
			ids = append(ids, strings.TrimPrefix(string(kv.Key), p))
		}
	}
	return ids, nil
}
