package dispatch

// Delivery with several daemons on one PostgreSQL database (issue 15,
// item 4): the queue of every channel is the database's outbox, shared by
// the daemons. The leader queues an event's deliveries in one
// transaction fenced by its lease; every daemon's workers claim due
// deliveries (at most one in flight per channel, in order), send them
// outside any transaction and record the outcome. See docs/HA.md for the
// guarantee: at least once per (event, channel), every copy with the
// same key (the event ID, sent by the webhook as X-HBD-Event-Key).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/dispatch/dispatchrecord"
	"github.com/hbdmon/hbd/core/store"
)

// Defaults for the zero fields of Cluster.
const (
	DefaultClaimTTL = 2 * time.Minute
	DefaultPoll     = time.Second
	DefaultWorkers  = 4
)

// Cluster makes the dispatcher deliver through the shared outbox of a
// cluster of daemons (Options.Cluster; nil is a single daemon with its
// queues in memory and in its own store).
type Cluster struct {
	// Node names this daemon in the outbox's claims.
	Node string
	// Fence gives the lease fence for queueing an event's deliveries;
	// when it says this daemon does not lead, the event is not queued.
	// nil: always queued, unfenced.
	Fence store.FenceFunc
	// ClaimTTL is how long a worker's claim of a delivery lasts: a worker
	// killed mid-send leaves it, and another daemon sends the delivery
	// again once it expired. An attempt is bounded by the smaller of
	// Options.AttemptTimeout and three quarters of ClaimTTL, so a live
	// worker finishes before its claim can be taken over.
	ClaimTTL time.Duration
	// Poll is how often an idle worker looks for due deliveries without
	// a wake-up (LISTEN/NOTIFY wakes it when deliveries are queued or one
	// of a channel ends; retries become due on the poll).
	Poll time.Duration
	// Workers is how many deliveries this daemon sends at once (to
	// different channels).
	Workers int
}

// Outbox is the shared delivery queue of a cluster (*store.Store on
// PostgreSQL provides it; see store/outbox.go for the promises relied on).
type Outbox interface {
	// QueueOutbox queues QueueDeliveries' transaction, fenced by fence in
	// the same transaction (store.ErrNotLeader: nothing written), without
	// waiting; the deliveries are due at once, the workers of every daemon
	// are woken, and done gets the outcome (it must not wait on the
	// store). Queued writes commit in queueing order.
	QueueOutbox(fence store.Fence, eventID string, ep dispatchrecord.EpisodeKey, ds []dispatchrecord.Delivery, done func(skipped map[string]bool, err error))
	// QueueOutboxIn is QueueOutbox as a write of b, behind b's fence: the
	// deliveries commit with b's other writes (the alert change) or not
	// at all.
	QueueOutboxIn(b *store.Batch, eventID string, ep dispatchrecord.EpisodeKey, ds []dispatchrecord.Delivery, done func(skipped map[string]bool, err error))
	// ClaimOutbox claims the oldest due, unclaimed delivery to one of
	// channels that heads its channel for node until ttl from now; ok is
	// false when none is due.
	ClaimOutbox(ctx context.Context, node string, ttl time.Duration, channels []string) (c dispatchrecord.Claim, ok bool, err error)
	// CompleteClaim removes the delivery and counts its outcome when c is
	// still its latest claim (held).
	CompleteClaim(ctx context.Context, c dispatchrecord.Claim, ep dispatchrecord.EpisodeKey, delivered bool) (held bool, err error)
	// RetryClaim records a failed attempt and releases the delivery, due
	// after delay, when c is still its latest claim.
	RetryClaim(ctx context.Context, c dispatchrecord.Claim, attempts int, delay time.Duration) (held bool, err error)
	// ReleaseClaim gives the delivery back unattempted.
	ReleaseClaim(ctx context.Context, c dispatchrecord.Claim) error
	// OutboxBacklog counts the pending deliveries and node's claims.
	OutboxBacklog(ctx context.Context, node string) (dispatchrecord.Backlog, error)
	// ListenOutbox calls wake for every wake-up until ctx ends or the
	// connection fails.
	ListenOutbox(ctx context.Context, wake func()) error
}

// clusterState is the dispatcher's part in a cluster.
type clusterState struct {
	Cluster
	outbox  Outbox
	attempt time.Duration // bound of one attempt
	wakeMu  sync.Mutex
	wakes   []chan struct{} // one per worker
}

// setupCluster checks and completes opts.Cluster.
func setupCluster(opts *Options) (*clusterState, error) {
	c := opts.Cluster
	if c == nil {
		return nil, nil
	}
	ob, ok := opts.Store.(Outbox)
	if !ok {
		return nil, errors.New("dispatch: Cluster needs a Store with the outbox (the PostgreSQL store)")
	}
	if c.Node == "" {
		return nil, errors.New("dispatch: Cluster.Node is required")
	}
	cs := &clusterState{Cluster: *c, outbox: ob}
	if cs.ClaimTTL <= 0 {
		cs.ClaimTTL = DefaultClaimTTL
	}
	if cs.Poll <= 0 {
		cs.Poll = DefaultPoll
	}
	if cs.Workers <= 0 {
		cs.Workers = DefaultWorkers
	}
	cs.attempt = min(opts.AttemptTimeout, cs.ClaimTTL*3/4)
	return cs, nil
}

// startCluster starts the workers and the listener.
func (d *Dispatcher) startCluster() {
	c := d.cluster
	for i := 0; i < c.Workers; i++ {
		w := make(chan struct{}, 1)
		c.wakes = append(c.wakes, w)
	}
	d.wg.Add(1 + c.Workers)
	go d.listen()
	for _, w := range c.wakes {
		go d.work(w)
	}
}

// wakeWorkers wakes every idle worker.
func (c *clusterState) wakeWorkers() {
	for _, w := range c.wakes {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// listen wakes the workers on every outbox notification, listening again
// after a pause when the connection fails (the workers poll meanwhile).
func (d *Dispatcher) listen() {
	defer d.wg.Done()
	// Close does not wait for the listener: it stops at once.
	ctx, cancel := context.WithCancel(d.attemptC)
	defer cancel()
	go func() {
		select {
		case <-d.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		err := d.cluster.outbox.ListenOutbox(ctx, d.cluster.wakeWorkers)
		select {
		case <-d.stopping:
			return
		default:
		}
		d.log.Warn("not listening for queued notifications; polling until listening again", "every", d.cluster.Poll, "error", err)
		t := time.NewTimer(d.cluster.Poll)
		select {
		case <-t.C:
		case <-d.stopping:
			t.Stop()
			return
		}
	}
}

// work claims and sends due deliveries until none is due, then waits for
// a wake-up or the poll.
func (d *Dispatcher) work(wake chan struct{}) {
	defer d.wg.Done()
	poll := time.NewTicker(d.cluster.Poll)
	defer poll.Stop()
	for {
		for d.claimOne() {
			select {
			case <-d.stopping:
				return
			default:
			}
		}
		select {
		case <-wake:
		case <-poll.C:
		case <-d.stopping:
			return
		}
	}
}

// claimOne claims one due delivery and attempts it; false when none was
// due (or the claim failed).
func (d *Dispatcher) claimOne() bool {
	ctx, cancel := context.WithTimeout(d.attemptC, persistTimeout)
	defer cancel()
	// Only channels this daemon knows: a user channel created through
	// another daemon is not known here until the registry follows the
	// change (within about a second), and its deliveries are left to the
	// daemons that know it meanwhile rather than dropped.
	chans := d.opts.Channels.Channels()
	names := make([]string, len(chans))
	for i, ch := range chans {
		names[i] = ch.Name
	}
	c, ok, err := d.cluster.outbox.ClaimOutbox(ctx, d.cluster.Node, d.cluster.ClaimTTL, names)
	if err != nil {
		if d.attemptC.Err() == nil {
			d.log.Warn("cannot claim a notification; trying again on the next poll", "error", err)
		}
		return false
	}
	if !ok {
		return false
	}
	dl, err := decodeDelivery(c.Delivery)
	k := claimed{d: d, c: c}
	if err != nil {
		d.log.Error("dropping unreadable pending delivery", "id", c.ID, "channel", c.Channel, "error", err)
		k.done(&delivery{id: c.ID, channel: c.Channel}, false)
		return true
	}
	d.try(k, dl, d.cluster.attempt)
	return true
}

// claimed keeps a delivery claimed from the outbox.
type claimed struct {
	d *Dispatcher
	c dispatchrecord.Claim
}

func (k claimed) done(dl *delivery, delivered bool) {
	ctx, cancel := context.WithTimeout(context.Background(), persistTimeout)
	defer cancel()
	held, err := k.d.cluster.outbox.CompleteClaim(ctx, k.c, dl.ep, delivered)
	switch {
	case err != nil:
		k.d.log.Error("cannot record a notification's outcome; it will be attempted again once its claim expires",
			"channel", dl.channel, "event_id", dl.ev.ID, "error", err)
	case !held:
		k.d.log.Warn("a notification's claim expired during its attempt and another worker took it over (same key), or its channel was deleted",
			"channel", dl.channel, "event_id", dl.ev.ID)
	default:
		k.d.acct.count(dl.ep, func(c *epCount) {
			if delivered {
				c.delivered++
			} else {
				c.failed++
			}
		})
	}
}

func (k claimed) retry(dl *delivery, delay time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), persistTimeout)
	defer cancel()
	if _, err := k.d.cluster.outbox.RetryClaim(ctx, k.c, dl.attempts, delay); err != nil {
		k.d.log.Error("cannot reschedule a notification; it will be attempted again once its claim expires",
			"channel", dl.channel, "event_id", dl.ev.ID, "error", err)
	}
}

func (k claimed) abandon(dl *delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := k.d.cluster.outbox.ReleaseClaim(ctx, k.c); err != nil {
		k.d.log.Warn("cannot release a notification; another daemon attempts it once its claim expires",
			"channel", dl.channel, "event_id", dl.ev.ID, "error", err)
	}
}

// queueCluster queues the deliveries of one event in the outbox, fenced,
// without waiting for the commit (the sink must not block): in b, the
// evaluator's fenced transaction of the alert change, when the event
// carries one, else in a transaction of their own. It returns false when
// this daemon does not lead (nothing is queued) or the dispatcher is
// closed.
func (d *Dispatcher) queueCluster(b *store.Batch, eventID string, ep epKey, dls []*delivery) bool {
	unclaim := func() {
		for _, dl := range dls {
			d.acct.release(eventID, dl.channel)
		}
	}
	fence, ok := d.cluster.Fence.Leading()
	if b != nil {
		// The batch's fence decides, in its transaction, with the change.
		fence, ok = b.Fence(), true
	}
	if !ok {
		d.refused.Add(1)
		unclaim()
		d.log.Debug("alert event not queued: this daemon is not the leader", "event_id", eventID)
		return false
	}
	rows := make([]dispatchrecord.Delivery, 0, len(dls))
	for _, dl := range dls {
		b, err := json.Marshal(dl.ev)
		if err != nil {
			// A NaN value, say: the outbox cannot hold it, and no other
			// way leads to a worker.
			d.log.Error("cannot encode notification; not sent", "channel", dl.channel, "event_id", eventID, "error", err)
			continue
		}
		ch, ok := d.opts.Channels.Channel(dl.channel)
		rows = append(rows, dispatchrecord.Delivery{ID: dl.id, Channel: dl.channel, Event: b, Created: dl.created,
			UserChannel: ok && ch.Source == channels.SourceUser})
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		unclaim()
		return false
	}
	d.wg.Add(1)
	d.mu.Unlock()
	// Queued on the caller's goroutine: the store commits in queueing
	// order, so the events of a channel reach the outbox in order.
	queue := func(done func(skipped map[string]bool, err error)) {
		d.cluster.outbox.QueueOutbox(fence, eventID, ep, rows, done)
	}
	if b != nil {
		queue = func(done func(skipped map[string]bool, err error)) {
			d.cluster.outbox.QueueOutboxIn(b, eventID, ep, rows, done)
		}
	}
	queue(func(skipped map[string]bool, err error) {
		defer d.wg.Done()
		if err != nil {
			if errors.Is(err, store.ErrNotLeader) {
				d.refused.Add(1)
				d.log.Warn("alert event not queued: the leader lease moved on", "event_id", eventID)
			} else {
				d.log.Error("cannot queue notifications; they are not sent", "event_id", eventID, "error", err)
			}
			unclaim()
			d.acct.count(ep, func(c *epCount) { c.queued -= len(dls) })
			return
		}
		if len(skipped) > 0 {
			d.acct.count(ep, func(c *epCount) { c.queued -= len(skipped) })
		}
	})
	return true
}

// Backlog is the delivery backlog: with a Cluster, the outbox's pending
// deliveries (whole cluster) and those this daemon's workers are sending;
// otherwise this daemon's queued deliveries.
func (d *Dispatcher) Backlog(ctx context.Context) (dispatchrecord.Backlog, error) {
	if d.cluster != nil {
		b, err := d.cluster.outbox.OutboxBacklog(ctx, d.cluster.Node)
		if err != nil {
			return b, fmt.Errorf("delivery backlog: %w", err)
		}
		return b, nil
	}
	var b dispatchrecord.Backlog
	d.mu.RLock()
	qs := make([]*queue, 0, len(d.queues))
	for _, q := range d.queues {
		qs = append(qs, q)
	}
	d.mu.RUnlock()
	for _, q := range qs {
		q.mu.Lock()
		b.Pending += len(q.items)
		if len(q.items) > 0 && (b.Oldest.IsZero() || q.items[0].created.Before(b.Oldest)) {
			b.Oldest = q.items[0].created
		}
		q.mu.Unlock()
	}
	return b, nil
}
