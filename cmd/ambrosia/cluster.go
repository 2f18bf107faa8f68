package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/ambrosia-xmpp/ambrosia/internal/cluster"
	"github.com/ambrosia-xmpp/ambrosia/internal/config"
)

// clusterFlags configure the optional cluster membership in etcd shared
// by `gateway` and `service` (docs/cluster.md).
type clusterFlags struct {
	etcd      string
	name      string
	ttl       time.Duration
	id        string // gateway only: its name in the cluster
	advertise string // gateway only: the service listener services dial
}

func (f *clusterFlags) register(fs *flag.FlagSet, gateway bool) {
	fs.StringVar(&f.etcd, "etcd", "", "etcd client `URLS`, comma-separated: cluster membership from etcd instead of static --gateway lists (docs/cluster.md; cluster.etcd)")
	fs.StringVar(&f.name, "cluster", "", "cluster `NAME`: its keys in etcd are under /ambrosia/NAME/ (cluster.name, default \"default\")")
	fs.DurationVar(&f.ttl, "lease-ttl", 0, "etcd lease `TTL` of this process's registration: how long after a crash its users move (cluster.lease_ttl, default 10s)")
	if gateway {
		fs.StringVar(&f.id, "name", "", "this gateway's `ID` in the cluster (default: the --advertise address)")
		fs.StringVar(&f.advertise, "advertise", "", "`HOST:PORT` of the service listener that services dial, registered in etcd (default: --service-addr)")
	}
}

// apply takes from the configuration what no flag set.
func (f *clusterFlags) apply(c config.Cluster) {
	if f.etcd == "" {
		f.etcd = strings.Join(c.Etcd, ",")
	}
	if f.name == "" {
		f.name = c.Name
	}
	if f.ttl == 0 {
		f.ttl = time.Duration(c.LeaseTTL)
	}
}

// open connects to etcd and starts watching the membership; nil without
// --etcd.
func (f *clusterFlags) open(ctx context.Context, log *slog.Logger) (*cluster.Client, error) {
	if f.etcd == "" {
		return nil, nil
	}
	var eps []string
	for _, e := range strings.Split(f.etcd, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	c, err := cluster.Open(ctx, cluster.Config{Endpoints: eps, Name: f.name, TTL: f.ttl}, log)
	if err != nil {
		return nil, fmt.Errorf("--etcd: %w", err)
	}
	if err := c.Watch(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("--etcd: %w", err)
	}
	return c, nil
}

// advertised is the service listener a gateway registers: --advertise,
// or --service-addr when it names a host services can dial.
func (f *clusterFlags) advertised(serviceAddr string) (string, error) {
	a := f.advertise
	if a == "" {
		a = serviceAddr
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || port == "" {
		return "", fmt.Errorf("--advertise: %q is not HOST:PORT", a)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "", fmt.Errorf("--advertise: services cannot dial %q: give the address they reach this gateway at", a)
	}
	return a, nil
}

// registrar runs a cluster registration as one of a command's parts.
type registrar struct{ run func() }

func (r registrar) Run(ctx context.Context) error {
	r.run()
	return nil
}
