package daemon

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/hbdmon/hbd/core/alert"
	"github.com/hbdmon/hbd/core/cluster"
	"github.com/hbdmon/hbd/core/dispatch"
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
		Report:  d.clusterReport,
	})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	d.Cluster = node
	// Every daemon receives heartbeats; the leader alone declares DOWN,
	// and waits a heartbeat timeout after a takeover before it does.
	if err := d.shareHeartbeats(node.Name(), node.Fence(), 0); err != nil {
		return fmt.Errorf("cluster: heartbeats: %w", err)
	}
	node.OnChange(d.heartbeatLeaderChanged)
	d.Store.SetRetentionFence(node.Fence())
	d.Metrics.Add(node.Metrics()...)
	d.API.Add(d.API.ClusterRoutes(clusterStatus{Store: d.Store, node: node})...)
	d.OnStart(node.Run)
	d.OnStart(d.tailSamples)
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
	// A follower mirrors the leader's alert states and silences, and
	// hands acknowledgements and silences to the leader.
	if err := ev.SetMirror(d.Store, d.Hub); err != nil {
		return err
	}
	d.OnStart(func(ctx context.Context) { d.mirrorAlerts(ctx, ev) })
	d.OnStart(func(ctx context.Context) { d.applyAlertCommands(ctx, ev) })
	d.Cluster.OnChange(func(leading bool, epoch int64) {
		if !leading {
			ev.StepDown()
			return
		}
		if err := ev.TakeOver(d.svcCtx); err != nil {
			if d.svcCtx.Err() == nil {
				d.log.Error("alerting: cannot load the alert state at takeover; not evaluating", "epoch", epoch, "error", err)
			}
			return
		}
		d.catchUp(ev, max(2*d.Config().Cluster.LeaseTTL, catchUpWindow))
	})
	return nil
}

// catchUpWindow is the least a new leader looks back at takeover.
const catchUpWindow = 30 * time.Second

// catchUp evaluates, right after a takeover, the samples in memory of
// the last window (two lease TTLs, at least catchUpWindow). Samples that
// arrived while no daemon led (the old leader gone, its lease not yet
// expired) were stored and every daemon holds them, but no evaluator
// decided on them; without this a metric's next sample would be the
// first to count. Samples the old leader already decided on are older
// than the states loaded at takeover and are ignored by the evaluator.
// Each plugin's samples come oldest first, which is all the evaluator
// needs: a metric belongs to one plugin.
func (d *Daemon) catchUp(ev *alert.Evaluator, window time.Duration) {
	from := time.Now().Add(-window)
	n := 0
	for host, samples := range d.Store.SamplesSince(float64(from.UnixMicro()) / 1e6) {
		ev.ObserveSamples(host, samples)
		n += len(samples)
	}
	d.log.Info("alerting: evaluated the samples of the takeover gap", "samples", n, "since", from.UTC().Format(time.RFC3339))
}

// mirrorAlerts keeps a follower's evaluator in step with the alert
// states and silences the leader committed (alert.Evaluator.SyncMirror).
func (d *Daemon) mirrorAlerts(ctx context.Context, ev *alert.Evaluator) {
	t := time.NewTicker(alert.MirrorEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if d.Cluster.Leading() {
			continue
		}
		if err := ev.SyncMirror(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("cluster: cannot read the leader's alert states", "error", err)
		}
	}
}

// Alert commands: how often the leader looks for acknowledgements and
// silences a follower handed over, how many it applies a round, and how
// often it trims the done ones.
const (
	commandEvery     = 250 * time.Millisecond
	commandLimit     = 50
	commandTrimEvery = time.Minute
)

// applyAlertCommands applies, while this daemon leads, the
// acknowledgements and silences followers handed over
// (store.ApplyAlertCommands), through its evaluator.
func (d *Daemon) applyAlertCommands(ctx context.Context, ev *alert.Evaluator) {
	t := time.NewTicker(commandEvery)
	defer t.Stop()
	var trimmed time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f, ok := d.Cluster.Fence().Leading()
		if !ok || !ev.Leading() {
			continue
		}
		if _, err := d.Store.ApplyAlertCommands(ctx, f, alert.CommandWait, commandLimit, ev.ApplyCommand); err != nil && ctx.Err() == nil {
			d.log.Warn("cluster: applying alert commands failed", "error", err)
		}
		if time.Since(trimmed) >= commandTrimEvery {
			trimmed = time.Now()
			if err := d.Store.TrimAlertCommands(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("cluster: trimming alert commands failed", "error", err)
			}
		}
	}
}

// clusterStatus serves /api/0/cluster from the store's cluster tables.
type clusterStatus struct {
	*store.Store
	node *cluster.Node
}

// Node is the answering daemon's name.
func (c clusterStatus) Node() string { return c.node.Name() }

// Sample tailing: how often every daemon reads the sample rows the
// others stored, and how many rows one read takes at most.
const (
	tailEvery = 500 * time.Millisecond
	tailLimit = 5000
)

// tailSamples makes every daemon hold the whole fleet's samples, wherever
// an agent sent them: it reads the rows committed since this daemon's
// store loaded its recent samples (store.TailFromOpen, TailSamples) and adopts the ones it did not store itself
// (store.AdoptSamples): they join its in-memory recent samples (the
// plugin endpoints and pages), its live feed and, through the same alert
// queue as its own, the evaluation, which only the leader does. A
// sample reaches another daemon within about half a second of its
// commit.
func (d *Daemon) tailSamples(ctx context.Context) {
	t := time.NewTicker(tailEvery)
	defer t.Stop()
	cur := d.Store.TailFromOpen()
	d.log.Debug("cluster: reading new sample rows", "from", cur)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for range 20 { // at most 20 reads a tick, then the next tick
			batch, next, err := d.Store.TailSamples(ctx, cur, tailLimit)
			if err != nil {
				if ctx.Err() == nil {
					d.log.Warn("cluster: cannot read new samples", "error", err)
				}
				break
			}
			cur = next
			n, adopted := 0, 0
			for _, h := range batch {
				n += len(h.Samples)
				k, err := d.Store.AdoptSamples(ctx, h)
				if err != nil && ctx.Err() == nil {
					d.log.Warn("cluster: cannot take in samples stored by another daemon", "host", h.Host, "error", err)
				}
				adopted += k
			}
			if n > 0 {
				d.log.Trace("cluster: read new sample rows", "samples", n, "adopted", adopted, "next", cur)
			}
			if n < tailLimit {
				break
			}
		}
	}
}

// clusterReport gives the leader loop this daemon's last heartbeat flush
// and delivery backlog for /api/0/cluster.
func (d *Daemon) clusterReport(ctx context.Context) (*time.Time, *int64) {
	var flush *time.Time
	if d.shared != nil {
		if t := d.shared.LastFlush(); !t.IsZero() {
			flush = &t
		}
	}
	var backlog *int64
	if disp, ok := d.Notify.(*dispatch.Dispatcher); ok && disp != nil {
		if b, err := disp.Backlog(ctx); err == nil {
			n := int64(b.Pending)
			backlog = &n
		}
	}
	return flush, backlog
}
