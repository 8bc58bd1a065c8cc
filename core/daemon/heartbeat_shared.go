package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/store"
)

// shareHeartbeats makes the daemon one of a cluster's heartbeat receivers
// (PostgreSQL store only): its tracker shares liveness and agent sessions
// with the other daemons through the store (heartbeat.Shared, flushed
// every flush interval; 0 means heartbeat.DefaultFlushInterval), shows
// theirs, and declares hosts DOWN only while leader says it leads. node is
// the daemon's unique name in the cluster (cluster.node). Call it in New,
// after startHeartbeats and before Run; wire heartbeatLeaderChanged to the
// cluster's leadership changes.
func (d *Daemon) shareHeartbeats(node string, leader store.FenceFunc, flush time.Duration) error {
	sh, err := heartbeat.NewShared(heartbeat.SharedConfig{
		Node:          node,
		Store:         d.Store,
		FlushInterval: flush,
		Logger:        d.log.Named("heartbeat"),
	})
	if err != nil {
		return err
	}
	d.Tracker.SetLeader(leader)
	d.Tracker.Share(sh)
	d.shared = sh
	d.OnStart(sh.Run)
	d.Metrics.Add(sh.Metrics()...)
	return nil
}

// heartbeatLeaderChanged is the heartbeat side of a leadership change: a
// daemon that just took over waits the longest host timeout before it
// declares anything DOWN, so hosts it had only seen through the shared
// liveness are not declared DOWN by the failover itself.
func (d *Daemon) heartbeatLeaderChanged(leading bool, _ int64) {
	if leading {
		d.Tracker.HoldTimeouts(longestHostTimeout(d.Config().Watchhosts, d.Config().HostTimeout))
	}
}

func longestHostTimeout[V any](hosts map[string]V, timeout func(string) time.Duration) time.Duration {
	longest := timeout("")
	for h := range hosts {
		longest = max(longest, timeout(h))
	}
	return longest
}

// record writes a state change the daemon is responsible for (not a
// follower's): the journal line and the state history. A clustered
// leader's state write checks its fence in the same transaction; when the
// lease moved on, nothing is written (the new leader decides).
func (p *heartbeatPath) record(ch heartbeat.Change) {
	p.store.Journal(ch.Host, ch.JournalLine())
	ts := float64(ch.Time.UnixNano()) / 1e9
	if !ch.Fence.Clustered() {
		p.store.RecordState(ch.Host, string(ch.Family), string(ch.To), ts)
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	err := p.store.RecordStateFenced(ctx, ch.Fence, ch.Host, string(ch.Family), string(ch.To), ts)
	switch {
	case errors.Is(err, store.ErrNotLeader):
		p.log.Warn("state change not recorded: no longer the leader", "host", ch.Host, "family", ch.Family, "state", ch.To)
	case err != nil:
		p.log.Error("record state change", "host", ch.Host, "error", err)
	}
}
