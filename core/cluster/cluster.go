// Package cluster runs the leader election of several daemons sharing one
// PostgreSQL database (issue 15, docs/HA.md).
//
// A Node takes or renews the leader lease (store.TakeLease, decided on
// PostgreSQL's clock) every renew interval. While it holds the lease it is
// the leader: Fence gives the leader-only jobs (alert evaluation,
// staleness and heartbeat-timeout decisions, renotify, retention) the
// store.Fence their writes check in their own transaction. It stops
// leading
//
//   - when a renewal or check fails (an error, or another holder),
//   - and on its own monotonic timer, at the last successful renewal's
//     send time + TTL − margin (the self-fence), before the lease can
//     expire for the others, whatever the database says: a paused or
//     cut-off leader stops acting before anyone else may start.
//
// Fence answers from that timer too, so a leader whose loop is stalled
// still stops. Every takeover and step-down is logged, journaled and
// handed to the OnChange callbacks (see OnChange; Fence opens only after
// the takeover callbacks returned); each attempt is recorded in
// cluster_nodes, each new epoch in cluster_epochs.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hbdmon/hbd/core/metrics"
	"github.com/hbdmon/hbd/core/store"
)

// Store is what a Node needs of the store (*store.Store implements it).
type Store interface {
	TakeLease(ctx context.Context, holder string, ttl, margin time.Duration) (store.LeaseGrant, error)
	ReleaseLease(ctx context.Context, holder string, epoch int64) error
	NodeSeen(ctx context.Context, n store.ClusterNode) error
	RecordEpoch(ctx context.Context, e store.ClusterEpoch) error
	Journal(host, msg string)
}

// Options configure a Node.
type Options struct {
	// Node is this daemon's name (cluster.node), unique in the cluster.
	Node string
	// Address is where this daemon's API listens, for /api/0/cluster.
	Address string
	// TTL is the lease's duration (cluster.lease_ttl), Renew how often it
	// is taken or renewed (cluster.renew_interval, < TTL/2).
	TTL, Renew time.Duration
	// Margin is taken off the self-fence deadline for clock rate
	// differences and the time a fenced check takes; default TTL/5.
	Margin time.Duration
	Logger hclog.Logger
	// Report, when set, gives this node's last heartbeat flush and
	// delivery backlog for its cluster_nodes row at each lease attempt
	// (nil values keep the recorded ones).
	Report func(ctx context.Context) (heartbeatFlush *time.Time, deliveryBacklog *int64)
}

// Node is one daemon's side of the election. Build it with New, register
// OnChange callbacks, then Run it; the accessors are safe for concurrent
// use.
type Node struct {
	st     Store
	opts   Options
	holder string // the lease's holder: node name and a per-start suffix
	log    hclog.Logger

	mu        sync.Mutex
	leading   bool      // Fence is open (with safeUntil)
	told      bool      // the OnChange callbacks were told of a takeover, not yet of its end
	epoch     int64     // the epoch led, or last led
	since     time.Time // when the current epoch began (database clock)
	safeUntil time.Time // self-fence deadline (local monotonic clock)
	started   time.Time

	onChange []func(leading bool, epoch int64)

	failovers, stepdowns atomic.Int64
}

// New returns a Node for opts; nothing runs until Run.
func New(st Store, opts Options) (*Node, error) {
	if opts.Node == "" {
		return nil, errors.New("cluster: a node name is required")
	}
	if opts.TTL <= 0 || opts.Renew <= 0 || opts.Renew >= opts.TTL/2 {
		return nil, fmt.Errorf("cluster: renew interval %s must be positive and below half the lease TTL %s", opts.Renew, opts.TTL)
	}
	if opts.Margin <= 0 {
		opts.Margin = opts.TTL / 5
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	var b [4]byte
	rand.Read(b[:])
	return &Node{
		st: st, opts: opts, log: opts.Logger,
		// A restarted daemon must never take its old lease for its own:
		// that process may still be running (paused), so each start holds
		// under a name of its own.
		holder:  opts.Node + "#" + hex.EncodeToString(b[:]),
		started: time.Now(),
	}, nil
}

// Name returns the node's name (cluster.node).
func (n *Node) Name() string { return n.opts.Node }

// Holder returns the name this start holds the lease under: the node
// name, "#" and a random suffix.
func (n *Node) Holder() string { return n.holder }

// OnChange registers fn to run at every takeover (true, with the new
// epoch) and step-down (false, with the epoch given up). Callbacks run in
// registration order on the loop's goroutine, one change at a time; a
// takeover's callbacks run before the next renewal, so a callback that
// loads state from the database (the alert evaluator) is done before its
// service acts. Register before Run.
func (n *Node) OnChange(fn func(leading bool, epoch int64)) {
	n.onChange = append(n.onChange, fn)
}

// Leading reports whether this daemon leads now: it holds the lease and
// its self-fence deadline has not passed.
func (n *Node) Leading() bool {
	_, ok := n.current()
	return ok
}

// Epoch returns the epoch this daemon leads, or last led; 0 if never.
func (n *Node) Epoch() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.epoch
}

// Since returns when the current (or last) epoch of this daemon began.
func (n *Node) Since() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.since
}

// Fence returns the fence of this daemon's leader-only writes: ok false
// when it does not lead, or when its self-fence deadline passed (even if
// the loop has not noticed yet).
func (n *Node) Fence() store.FenceFunc {
	return func() (store.Fence, bool) { return n.current() }
}

func (n *Node) current() (store.Fence, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.leading || !time.Now().Before(n.safeUntil) {
		return store.Fence{}, false
	}
	return store.Fence{Holder: n.holder, Epoch: n.epoch}, true
}

// Failovers counts the takeovers by this daemon; Stepdowns its
// step-downs.
func (n *Node) Failovers() int64 { return n.failovers.Load() }

// Stepdowns counts the step-downs of this daemon.
func (n *Node) Stepdowns() int64 { return n.stepdowns.Load() }

// Run takes and renews the lease until ctx ends, then steps down and
// releases the lease (when it still holds it), so another daemon takes
// over at once instead of after the TTL.
func (n *Node) Run(ctx context.Context) {
	tick := time.NewTicker(n.opts.Renew)
	defer tick.Stop()
	fence := time.NewTimer(time.Hour)
	fence.Stop()
	defer fence.Stop()
	for {
		n.attempt(ctx, fence)
		select {
		case <-ctx.Done():
			n.stop()
			return
		case <-tick.C:
		case <-fence.C:
			n.stepDown("lease not renewed in time (self-fence)")
		}
	}
}

// attempt takes or renews the lease once.
func (n *Node) attempt(ctx context.Context, fence *time.Timer) {
	actx, cancel := context.WithTimeout(ctx, n.opts.Renew)
	g, err := n.st.TakeLease(actx, n.holder, n.opts.TTL, n.opts.Margin)
	cancel()
	if ctx.Err() != nil {
		return
	}
	switch {
	case err != nil:
		n.log.Warn("leader lease: renewal failed", "node", n.opts.Node, "error", err)
		n.stepDown("lease renewal failed: " + err.Error())
	case !g.Held:
		n.stepDown(fmt.Sprintf("lease held by %s (epoch %d)", g.Holder, g.Epoch))
	default:
		n.mu.Lock()
		isNew := !n.told || n.epoch != g.Epoch
		n.safeUntil = g.SafeUntil
		n.mu.Unlock()
		fence.Reset(time.Until(g.SafeUntil))
		if isNew && n.takeOver(ctx, g) {
			// The callbacks may have outlasted the first grant: the
			// renewals during them moved the deadline.
			n.mu.Lock()
			until := n.safeUntil
			n.mu.Unlock()
			fence.Reset(time.Until(until))
		}
	}
	n.seen(ctx)
}

// seen records this attempt in cluster_nodes.
func (n *Node) seen(ctx context.Context) {
	f, leading := n.current()
	epoch := f.Epoch
	if !leading {
		epoch = 0 // keeps the recorded last epoch
	}
	sctx, cancel := context.WithTimeout(ctx, n.opts.Renew)
	defer cancel()
	row := store.ClusterNode{Node: n.opts.Node, Address: n.opts.Address, Started: n.started, Leading: leading, Epoch: epoch}
	if n.opts.Report != nil {
		row.HeartbeatFlush, row.DeliveryBacklog = n.opts.Report(sctx)
	}
	if err := n.st.NodeSeen(sctx, row); err != nil && ctx.Err() == nil {
		n.log.Debug("cluster: cannot record this node", "error", err)
	}
}

// takeOver runs the takeover callbacks for g's epoch and opens the fence;
// false when the lease was lost meanwhile (the node stepped down).
func (n *Node) takeOver(ctx context.Context, g store.LeaseGrant) bool {
	n.mu.Lock()
	told, old := n.told, n.epoch
	// Fence stays closed until the takeover callbacks ran (the evaluator
	// loads alert state, the tracker holds timeouts).
	n.leading, n.epoch, n.since = false, g.Epoch, g.Since
	n.mu.Unlock()
	if told {
		// Held on, but under a new epoch (our lease had expired): what
		// we did under the old one is over.
		n.stepdowns.Add(1)
		n.notify(false, old)
	}
	n.failovers.Add(1)
	if err := n.st.RecordEpoch(ctx, store.ClusterEpoch{Epoch: g.Epoch, Holder: n.holder, Since: g.Since}); err != nil {
		n.log.Warn("cluster: cannot record the epoch", "epoch", g.Epoch, "error", err)
	}
	n.log.Info("leader: took over", "node", n.opts.Node, "holder", n.holder, "epoch", g.Epoch)
	n.st.Journal("", fmt.Sprintf("cluster: %s took over as leader (epoch %d)", n.opts.Node, g.Epoch))
	n.mu.Lock()
	n.told = true
	n.mu.Unlock()
	// The callbacks may take long (the evaluator loads the alert state):
	// the lease is renewed meanwhile, with the fence still closed, so a
	// slow load does not cost the lease it was for.
	kctx, stop := context.WithCancel(ctx)
	kept := make(chan bool, 1)
	go func() { kept <- n.keepDuring(kctx, g.Epoch) }()
	n.notify(true, g.Epoch)
	stop()
	if !<-kept {
		n.stepDown("lease lost during the takeover")
		return false
	}
	n.mu.Lock()
	n.leading = n.epoch == g.Epoch && n.told
	ok := n.leading
	n.mu.Unlock()
	return ok
}

// keepDuring renews the lease every renew interval until ctx ends, moving
// the self-fence deadline; false when a renewal found the lease gone or
// under another epoch, or the deadline passed without a renewal.
func (n *Node) keepDuring(ctx context.Context, epoch int64) bool {
	t := time.NewTicker(n.opts.Renew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			n.mu.Lock()
			defer n.mu.Unlock()
			return time.Now().Before(n.safeUntil)
		case <-t.C:
		}
		actx, cancel := context.WithTimeout(ctx, n.opts.Renew)
		g, err := n.st.TakeLease(actx, n.holder, n.opts.TTL, n.opts.Margin)
		cancel()
		switch {
		case ctx.Err() != nil:
			// The callbacks returned meanwhile: judged by the deadline.
		case err != nil:
			n.log.Warn("leader lease: renewal during the takeover failed", "node", n.opts.Node, "error", err)
		case !g.Held || g.Epoch != epoch:
			return false
		default:
			n.mu.Lock()
			n.safeUntil = g.SafeUntil
			n.mu.Unlock()
		}
	}
}

// stepDown stops leading (when it did) and says why.
func (n *Node) stepDown(why string) {
	n.mu.Lock()
	told, epoch := n.told, n.epoch
	n.leading, n.told, n.safeUntil = false, false, time.Time{}
	n.mu.Unlock()
	if !told {
		return
	}
	n.stepdowns.Add(1)
	n.log.Warn("leader: stepped down", "node", n.opts.Node, "epoch", epoch, "reason", why)
	n.st.Journal("", fmt.Sprintf("cluster: %s stepped down as leader (epoch %d): %s", n.opts.Node, epoch, why))
	n.notify(false, epoch)
}

// stop steps down at shutdown and releases the lease.
func (n *Node) stop() {
	n.mu.Lock()
	was, epoch := n.told, n.epoch
	n.mu.Unlock()
	n.stepDown("shutting down")
	if !was {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.Renew)
	defer cancel()
	if err := n.st.ReleaseLease(ctx, n.holder, epoch); err != nil {
		n.log.Warn("leader lease: release failed", "error", err)
	}
	n.st.NodeSeen(ctx, store.ClusterNode{Node: n.opts.Node, Address: n.opts.Address, Started: n.started})
}

func (n *Node) notify(leading bool, epoch int64) {
	for _, fn := range n.onChange {
		fn(leading, epoch)
	}
}

// Metrics returns the node's families for /metrics.
func (n *Node) Metrics() []metrics.Family {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	return []metrics.Family{
		{Name: "hbd_cluster_leader", Help: "1 while this daemon leads the cluster, else 0.",
			Collect: func(emit func(float64, ...string)) { emit(b(n.Leading())) }},
		{Name: "hbd_cluster_epoch", Help: "The lease epoch this daemon leads, or last led (0: never).",
			Collect: func(emit func(float64, ...string)) { emit(float64(n.Epoch())) }},
		{Name: "hbd_cluster_failovers_total", Help: "Takeovers of the leader lease by this daemon.", Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(n.Failovers())) }},
		{Name: "hbd_cluster_stepdowns_total", Help: "Step-downs of this daemon as leader (lease lost, renewal failed, self-fence, shutdown).", Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(n.Stepdowns())) }},
	}
}

// Interface guards.
var _ Store = (*store.Store)(nil)
