package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/dispatch/dispatchrecord"
	"github.com/hbdmon/hbd/sdk"
)

// delivery is one event on its way to one channel.
type delivery struct {
	id       string
	channel  string
	ev       sdk.Event
	ep       epKey // the alert episode it counts for
	attempts int
	next     time.Time
	created  time.Time
	// persisted is closed once the delivery's store transaction is done;
	// dup is set before that when its (event, channel) pair was already
	// stored: it is then never attempted.
	persisted chan struct{}
	dup       bool
	// settled is set by whichever of drop and settle counts the outcome
	// first (a channel deleted while its delivery is in flight).
	settled atomic.Bool
}

// stored is the persisted channel of deliveries read from the store.
var stored = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func decodeDelivery(p dispatchrecord.Delivery) (*delivery, error) {
	var ev sdk.Event
	if err := json.Unmarshal(p.Event, &ev); err != nil {
		return nil, err
	}
	return &delivery{id: p.ID, channel: p.Channel, ev: ev, ep: episodeOf(ev), attempts: p.Attempts, next: p.NextAt,
		created: p.Created, persisted: stored}, nil
}

// queue holds the pending deliveries of one channel, delivered in order by
// one worker goroutine: a channel that fails or is slow holds up only its
// own queue. The worker ends when the queue is empty and its channel no
// longer exists (retire); the next delivery to that name starts a new
// queue.
type queue struct {
	d    *Dispatcher
	name string

	mu    sync.Mutex
	items []*delivery
	wake  chan struct{}
}

// enqueue adds dl to its channel's queue, starting the queue and its
// worker when the channel has none running. The delivery is stored by
// persist (or was read from the store); the worker waits for that before
// attempting it. The push happens under d.mu, so a worker retiring its
// queue (also under d.mu) never misses one.
func (d *Dispatcher) enqueue(dl *delivery) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	q := d.queues[dl.channel]
	if q == nil {
		q = &queue{d: d, name: dl.channel, wake: make(chan struct{}, 1)}
		d.queues[dl.channel] = q
		d.wg.Add(1)
		go q.run()
	}
	old := q.push(dl, d.opts.QueueLimit)
	d.mu.Unlock()
	if old != nil {
		d.dropped.Add(1)
		d.drop(old, fmt.Sprintf("dropped (more than %d notifications pending)", d.opts.QueueLimit))
	}
}

// drop settles a delivery that will not be attempted (queue overflow,
// channel deleted): counted as failed, removed from the store, and, with a
// status, journaled and logged. It waits (in the background when needed)
// for the delivery's store transaction, so the removal follows it.
func (d *Dispatcher) drop(dl *delivery, status string) {
	finish := func() {
		if dl.dup || !dl.settled.CompareAndSwap(false, true) {
			return // never queued, or its attempt counted it
		}
		d.acct.count(dl.ep, func(c *epCount) { c.failed++ })
		d.opts.Store.DropDelivery(dl.id, dl.ep)
		if status != "" {
			ch, ok := d.opts.Channels.Channel(dl.channel)
			d.journal(dl, ch, ok, status, "", "")
			d.log.Warn("notification "+status, "channel", dl.channel, "host", dl.ev.Host, "metric", dl.ev.MetricPath,
				"event_id", dl.ev.ID)
		}
	}
	select {
	case <-dl.persisted:
		finish()
	default:
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.closed {
			return // stays stored: the next start attempts it
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			<-dl.persisted
			finish()
		}()
	}
}

// settle records the outcome of an attempted delivery: counted as
// delivered or failed, and removed from the store queue, waiting for the
// commit so a restart does not attempt it again.
func (d *Dispatcher) settle(dl *delivery, delivered bool) {
	if !dl.settled.CompareAndSwap(false, true) {
		return // dropped while in flight (its channel was deleted)
	}
	d.acct.count(dl.ep, func(c *epCount) {
		if delivered {
			c.delivered++
		} else {
			c.failed++
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), persistTimeout)
	defer cancel()
	if err := d.opts.Store.CompleteDelivery(ctx, dl.id, dl.ep, delivered); err != nil {
		d.log.Error("cannot record a notification's outcome; it may be attempted again after a restart",
			"channel", dl.channel, "event_id", dl.ev.ID, "error", err)
	}
}

// push appends dl and returns the oldest delivery when the queue is over
// limit (it is removed). The head is never dropped: it may be in flight.
func (q *queue) push(dl *delivery, limit int) *delivery {
	q.mu.Lock()
	q.items = append(q.items, dl)
	var dropped *delivery
	if len(q.items) > limit && len(q.items) > 1 {
		dropped = q.items[1]
		q.items = append(q.items[:1], q.items[2:]...)
	}
	q.mu.Unlock()
	q.poke()
	return dropped
}

func (q *queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) head() *delivery {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil
	}
	return q.items[0]
}

func (q *queue) remove(dl *delivery) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, it := range q.items {
		if it == dl {
			q.items = append(q.items[:i], q.items[i+1:]...)
			return
		}
	}
}

// clear removes every pending delivery (the channel was deleted) and
// returns them.
func (q *queue) clear() []*delivery {
	q.mu.Lock()
	items := q.items
	q.items = nil
	q.mu.Unlock()
	q.poke()
	return items
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// retire ends the queue when it is empty and its channel no longer
// exists: it is removed from the dispatcher's queues and true is returned
// (the worker then returns).
func (q *queue) retire() bool {
	if _, ok := q.d.opts.Channels.Channel(q.name); ok {
		return false
	}
	q.d.mu.Lock()
	defer q.d.mu.Unlock()
	if q.len() > 0 {
		return false // enqueued since the worker found it empty
	}
	if q.d.queues[q.name] == q {
		delete(q.d.queues, q.name)
	}
	q.d.log.Debug("notification queue ended: its channel no longer exists", "channel", q.name)
	return true
}

// ChannelDeleted drops the pending deliveries of a channel deleted
// through the API (the store no longer holds them) and wakes its queue's
// worker, which ends once an attempt in flight is done. The registry calls
// it (channels.Watcher).
func (d *Dispatcher) ChannelDeleted(name string) {
	d.mu.RLock()
	q := d.queues[name]
	d.mu.RUnlock()
	if q == nil {
		return
	}
	if items := q.clear(); len(items) > 0 {
		for _, dl := range items {
			d.drop(dl, "")
		}
		d.opts.Store.Journal("", fmt.Sprintf("notification channel %s deleted with %d pending notifications", name, len(items)))
		d.log.Warn("notification channel deleted with pending notifications", "channel", name, "count", len(items))
	}
}

// ChannelsReloaded wakes every queue's worker after a config reload: the
// queue of a channel the reload removed ends once its pending deliveries
// are handled (each is dropped when due, as "the channel no longer
// exists"). The registry calls it (channels.Watcher).
func (d *Dispatcher) ChannelsReloaded() {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, q := range d.queues {
		q.poke()
	}
}

// run delivers the queue's head whenever it is due, until Close or until
// the queue retires.
func (q *queue) run() {
	defer q.d.wg.Done()
	for {
		dl := q.head()
		if dl == nil {
			if q.retire() {
				return
			}
			select {
			case <-q.wake:
				continue
			case <-q.d.stopping:
				return
			}
		}
		select {
		case <-dl.persisted:
		case <-q.wake: // the head may have changed
			continue
		case <-q.d.stopping:
			return
		}
		if dl.dup {
			q.remove(dl)
			continue
		}
		if wait := time.Until(dl.next); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-q.wake: // the head may have changed
			case <-q.d.stopping:
				t.Stop()
				return
			}
			t.Stop()
			continue
		}
		select {
		case <-q.d.stopping:
			return
		default:
		}
		q.d.attempt(q, dl)
	}
}

// label starts every journal line about a delivery, e.g.
// "notify ops_webhook web01 cpu_monitor.cpu_percent CRITICAL"; channel
// is the channel's name or what stands for it.
func label(dl *delivery, channel string) string {
	return fmt.Sprintf("notify %s %s %s %s", channel, dl.ev.Host, dl.ev.MetricPath, dl.ev.Level)
}

// What a host's journal shows instead of a channel name it must not tell.
const (
	privateLabel = "private channel"
	removedLabel = "removed channel"
)

// journal records one line about dl: label, then ": " and status, then
// detail (the failure's generic reason, ": …"; never the plugin's
// message), then tail ("; retrying in 2s").
// The line goes to the journal of the alert's host, which every user who
// can see the host reads — so for a private channel (ok false: a channel
// that no longer exists, whose privacy is unknown) the host's line names
// no channel and leaves detail out, and the full line goes to the
// daemon-wide journal, which only admins read.
func (d *Dispatcher) journal(dl *delivery, ch channels.Channel, ok bool, status, detail, tail string) {
	full := label(dl, dl.channel) + ": " + status + detail + tail
	if ok && !ch.Private {
		d.opts.Store.Journal(dl.ev.Host, full)
		return
	}
	stand := privateLabel
	if !ok {
		stand = removedLabel
	}
	d.opts.Store.Journal(dl.ev.Host, label(dl, stand)+": "+status+tail)
	d.opts.Store.Journal("", full)
}

// keeper records the outcome of an attempt where its delivery is kept:
// the channel's queue in memory (the local store), or the cluster's
// outbox. Each is called before the attempt is journaled.
type keeper interface {
	// done ends the delivery: delivered, or failed for good.
	done(dl *delivery, delivered bool)
	// retry records a failed attempt; dl.attempts and dl.next are set.
	retry(dl *delivery, delay time.Duration)
	// abandon leaves the delivery to a later attempt: the dispatcher is
	// closing and the attempt was cancelled.
	abandon(dl *delivery)
}

// local keeps the deliveries of one channel's queue (single daemon).
type local struct{ q *queue }

func (k local) done(dl *delivery, delivered bool) {
	k.q.remove(dl)
	k.q.d.settle(dl, delivered)
}

func (k local) retry(dl *delivery, _ time.Duration) {
	k.q.d.opts.Store.UpdateDelivery(dl.id, dl.attempts, dl.next)
}

func (local) abandon(*delivery) {} // stays queued for the next start

// attempt tries dl of q once; see try.
func (d *Dispatcher) attempt(q *queue, dl *delivery) {
	d.try(local{q}, dl, d.opts.AttemptTimeout)
}

// try tries dl once, bounded by timeout, and records the outcome through
// k: delivered, retried later with backoff, or given up (permanent error,
// too many attempts, channel gone, or now a user channel whose owner may
// not see the host). Every attempt is journaled (see journal) and logged
// (delivered at info, failures at warn, giving up at error); no line
// holds a secret.
func (d *Dispatcher) try(k keeper, dl *delivery, timeout time.Duration) {
	ch, ok := d.opts.Channels.Channel(dl.channel)
	// A queued delivery names its channel; if the channel was removed and
	// its name taken by a user channel while the delivery waited (a config
	// channel dropped by a reload keeps its queue), the new channel must
	// not receive alerts of a host its owner cannot see.
	if !ok || !d.ownerSees(ch, dl.ev.Host) {
		k.done(dl, false)
		d.count(dl.channel, "", outcomeGaveUp)
		status := "dropped: the channel no longer exists"
		if ok {
			status = "dropped: the channel's owner may not see the host"
		}
		d.journal(dl, ch, ok, status, "", "")
		d.log.Warn("notification "+status, "channel", dl.channel, "host", dl.ev.Host, "metric", dl.ev.MetricPath, "event_id", dl.ev.ID)
		return
	}
	ctx, cancel := context.WithTimeout(d.attemptC, timeout)
	err := d.opts.Plugins.Notify(ctx, ch.Type, d.opts.Channels.PluginConfig(ch), dl.ev)
	cancel()
	if err != nil && d.attemptC.Err() != nil {
		k.abandon(dl) // shutting down
		return
	}
	dl.attempts++
	if err == nil {
		k.done(dl, true)
		d.count(dl.channel, ch.Type, outcomeDelivered)
		status := "delivered"
		if dl.attempts > 1 {
			status += fmt.Sprintf(" (attempt %d)", dl.attempts)
		}
		d.journal(dl, ch, true, status, "", "")
		d.log.Info("notification delivered", "channel", dl.channel, "host", dl.ev.Host, "metric", dl.ev.MetricPath,
			"level", dl.ev.Level, "event_id", dl.ev.ID, "attempt", dl.attempts)
		return
	}
	d.count(dl.channel, ch.Type, outcomeFailed)
	// The journal tells the generic reason only; the plugin's message,
	// which may quote the remote side, goes to the daemon log.
	emsg := d.opts.Channels.Redact(err.Error(), ch)
	status, detail := fmt.Sprintf("failed (attempt %d)", dl.attempts), ": "+channels.PublicReason(err)
	var tail, reason string
	switch {
	case sdk.IsPermanent(err):
		tail, reason = "; not retried (permanent error)", "permanent error"
	case dl.attempts >= d.opts.MaxAttempts:
		tail, reason = fmt.Sprintf("; giving up after %d attempts", dl.attempts), "too many attempts"
	default:
		delay, asked := d.retryDelay(dl.attempts, err)
		dl.next = time.Now().Add(delay)
		k.retry(dl, delay)
		tail := fmt.Sprintf("; retrying in %s", delay.Round(100*time.Millisecond))
		if asked > 0 {
			tail += fmt.Sprintf(" (the service asked to wait %s)", asked.Round(100*time.Millisecond))
		}
		d.journal(dl, ch, true, status, detail, tail)
		d.log.Warn("notification failed; will retry", "channel", dl.channel, "host", dl.ev.Host, "metric", dl.ev.MetricPath,
			"event_id", dl.ev.ID, "attempt", dl.attempts, "in", delay, "retry_after", asked, "error", emsg)
		return
	}
	k.done(dl, false)
	d.count(dl.channel, ch.Type, outcomeGaveUp)
	d.journal(dl, ch, true, status, detail, tail)
	d.log.Error("notification given up", "channel", dl.channel, "host", dl.ev.Host, "metric", dl.ev.MetricPath,
		"event_id", dl.ev.ID, "attempts", dl.attempts, "reason", reason, "error", emsg)
}

// retryDelay is the delay after the n-th failed attempt, which failed
// with err: the backoff, or the wait the service asked for through
// sdk.RetryAfter when that is longer, bounded by RetryAfterMax. asked is
// that wait (0 when none).
func (d *Dispatcher) retryDelay(n int, err error) (delay, asked time.Duration) {
	delay = d.backoff(n)
	if ra, ok := sdk.RetryAfterOf(err); ok {
		asked = ra
		if ra = min(ra, d.opts.RetryAfterMax); ra > delay {
			delay = ra
		}
	}
	return delay, asked
}

// backoff is the delay after the n-th failed attempt: RetryBase doubled
// n-1 times, capped at RetryMax, plus up to 10% jitter so channels that
// failed together do not retry in lockstep.
func (d *Dispatcher) backoff(n int) time.Duration {
	delay := d.opts.RetryBase
	for i := 1; i < n && delay < d.opts.RetryMax; i++ {
		delay *= 2
	}
	if delay > d.opts.RetryMax {
		delay = d.opts.RetryMax
	}
	return delay + time.Duration(rand.Int64N(int64(delay)/10+1))
}
