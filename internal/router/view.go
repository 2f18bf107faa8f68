package router

import "context"

// View is the membership of a cluster at one revision of the registry
// that keeps it (etcd): the gateways and the service instances that are
// up. Every process that holds the view of a revision holds the same
// sets, so that all of them hash a user to the same instance.
type View struct {
	// Rev is the registry's revision the view was read at; a later view
	// has a higher one.
	Rev int64
	// Gateways are the service listeners of the gateways, host:port, by
	// gateway name.
	Gateways map[string]string
	// Instances are the ids of the instances serving each (kind, domain),
	// keyed by ServiceKey, sorted.
	Instances map[string][]string
}

// ServiceKey is the key of a (kind, domain) in View.Instances.
func ServiceKey(kind, domain string) string { return kind + " " + domain }

// Membership delivers the views of a cluster as they change.
type Membership interface {
	// Next returns the first view newer than rev, waiting for one until
	// ctx is done. Next(ctx, 0) returns the current view.
	Next(ctx context.Context, rev int64) (View, error)
}
