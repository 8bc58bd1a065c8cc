package daemon

import (
	"fmt"
	"net/url"

	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/cluster"
	"github.com/hbdmon/hbd/core/store"
)

// startCluster joins the cluster when cluster.enabled (PostgreSQL only):
// the leader loop runs with the other services, retention becomes a
// leader-only job, and /metrics gains the leader, epoch and failover
// counters. Without it, d.Cluster stays nil and this daemon always leads.
// It must run before startAlerting, which fences the evaluator.
func (d *Daemon) startCluster() error {
	cfg := d.Config()
	if !cfg.Cluster.Enabled {
		d.API.Add(d.API.ClusterRoutes(nil)...)
		return nil
	}
	scheme := "http"
	if d.tls {
		scheme = "https"
	}
	node, err := cluster.New(d.Store, cluster.Options{
		Node:    cfg.Cluster.Node,
		Address: (&url.URL{Scheme: scheme, Host: d.httpLn.Addr().String()}).String(),
		TTL:     cfg.Cluster.LeaseTTL,
		Renew:   cfg.Cluster.RenewInterval,
		Logger:  d.log.Named("cluster"),
	})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	d.Cluster = node
	d.Store.SetRetentionFence(node.Fence())
	d.Metrics.Add(node.Metrics()...)
	d.API.Add(d.API.ClusterRoutes(clusterStatus{Store: d.Store, node: node})...)
	d.OnStart(node.Run)
	d.log.Info("cluster: joining", "node", node.Name(), "holder", node.Holder(), "lease_ttl", cfg.Cluster.LeaseTTL, "renew_interval", cfg.Cluster.RenewInterval)
	return nil
}

// fenceAlerting makes the evaluator decide only while this daemon leads:
// it loads the alert state at each takeover and stops at each step-down.
func (d *Daemon) fenceAlerting(ev *alert.Evaluator) error {
	if d.Cluster == nil {
		return nil
	}
	if err := ev.SetLeader(d.Cluster.Fence()); err != nil {
		return err
	}
	d.Cluster.OnChange(func(leading bool, epoch int64) {
		if !leading {
			ev.StepDown()
			return
		}
		if err := ev.TakeOver(d.svcCtx); err != nil && d.svcCtx.Err() == nil {
			d.log.Error("alerting: cannot load the alert state at takeover; not evaluating", "epoch", epoch, "error", err)
		}
	})
	return nil
}

// clusterStatus serves /api/0/cluster from the store's cluster tables.
type clusterStatus struct {
	*store.Store
	node *cluster.Node
}

// Node is the answering daemon's name.
func (c clusterStatus) Node() string { return c.node.Name() }
