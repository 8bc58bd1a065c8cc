package config

import (
	"fmt"
	"os"
	"time"
)

// Cluster defaults (the cluster key).
const (
	DefaultLeaseTTL      = 10 * time.Second
	DefaultRenewInterval = 3 * time.Second
	// MinLeaseTTL bounds cluster.lease_ttl from below: a lease shorter
	// than this would be lost to one slow round trip.
	MinLeaseTTL = time.Second
)

// Cluster runs several daemons on one PostgreSQL database with one leader
// (the cluster key, docs/HA.md):
//
//	cluster:
//	  enabled: true
//	  node: hbd-a          # unique per daemon; default: the host name
//	  lease_ttl: 10s       # how long a lease lasts without renewal
//	  renew_interval: 3s   # how often the leader renews it (< lease_ttl/2)
//
// Only with store.driver postgres. Without it a daemon is always its own
// leader, as before.
type Cluster struct {
	Enabled       bool          `koanf:"enabled"`
	Node          string        `koanf:"node"`
	LeaseTTL      time.Duration `koanf:"lease_ttl"`
	RenewInterval time.Duration `koanf:"renew_interval"`
}

// validateCluster checks the cluster key and fills its defaults.
func (c *Config) validateCluster() error {
	cl := &c.Cluster
	bad := func(key, format string, a ...any) error {
		return &Error{Key: key, Msg: fmt.Sprintf(format, a...)}
	}
	if !cl.Enabled {
		return nil
	}
	if !c.Store.Postgres() {
		return bad("cluster.enabled", "needs store.driver postgres (several daemons share one PostgreSQL database)")
	}
	if cl.Node == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return bad("cluster.node", "required: the host name is unknown (%v)", err)
		}
		cl.Node = h
	}
	if len(cl.Node) > 128 {
		return bad("cluster.node", "longer than 128 bytes")
	}
	for _, r := range cl.Node {
		if r < 0x20 || r == 0x7f {
			return bad("cluster.node", "must not hold control characters")
		}
	}
	if cl.LeaseTTL == 0 {
		cl.LeaseTTL = DefaultLeaseTTL
	}
	if cl.RenewInterval == 0 {
		cl.RenewInterval = DefaultRenewInterval
	}
	switch {
	case cl.LeaseTTL < MinLeaseTTL:
		return bad("cluster.lease_ttl", "must be at least %s, got %s", MinLeaseTTL, cl.LeaseTTL)
	case cl.RenewInterval < 0:
		return bad("cluster.renew_interval", "must be positive, got %s", cl.RenewInterval)
	case cl.RenewInterval >= cl.LeaseTTL/2:
		return bad("cluster.renew_interval", "must be less than half of cluster.lease_ttl (%s), got %s", cl.LeaseTTL, cl.RenewInterval)
	}
	return nil
}
