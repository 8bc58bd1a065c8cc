package dispatch

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/hbdmon/hbd/core/channels"
	"github.com/hbdmon/hbd/core/metrics"
)

// outcome is what one delivery attempt ended in, for the counters.
type outcome int

const (
	outcomeDelivered outcome = iota
	outcomeFailed            // one failed attempt (retried or not)
	outcomeGaveUp
	numOutcomes
)

// MaxCountedChannels bounds the channel label sets of the notification
// counters: past it, further channels are counted under channel="_other"
// (channels deleted since start keep their series until a restart).
const MaxCountedChannels = 1000

type channelKey struct{ channel, typ string }

// channelCounters counts outcomes per (channel, type).
type channelCounters struct {
	mu     sync.Mutex
	counts map[channelKey]*[numOutcomes]atomic.Uint64
}

func (c *channelCounters) add(channel, typ string, o outcome) {
	k := channelKey{channel, typ}
	c.mu.Lock()
	if c.counts == nil {
		c.counts = map[channelKey]*[numOutcomes]atomic.Uint64{}
	}
	n := c.counts[k]
	if n == nil {
		if len(c.counts) >= MaxCountedChannels {
			k = channelKey{"_other", ""}
			n = c.counts[k]
		}
		if n == nil {
			n = new([numOutcomes]atomic.Uint64)
			c.counts[k] = n
		}
	}
	c.mu.Unlock()
	n[o].Add(1)
}

// each emits the count of outcome o of every counted channel, and 0 for
// every current channel not counted yet, so a channel's series exist from
// the start (a rate over a series that appears late misses its first
// increments).
func (c *channelCounters) each(current []channels.Channel, o outcome, emit func(float64, ...string)) {
	c.mu.Lock()
	vals := make(map[channelKey]float64, len(c.counts)+len(current))
	for k, n := range c.counts {
		vals[k] = float64(n[o].Load())
	}
	c.mu.Unlock()
	for _, ch := range current {
		k := channelKey{ch.Name, ch.Type}
		if _, ok := vals[k]; !ok && len(vals) < MaxCountedChannels {
			vals[k] = 0
		}
	}
	keys := make([]channelKey, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].channel != keys[j].channel {
			return keys[i].channel < keys[j].channel
		}
		return keys[i].typ < keys[j].typ
	})
	for _, k := range keys {
		emit(vals[k], k.channel, k.typ)
	}
}

// count records an attempt's outcome in the totals and per channel. typ
// is "" when the channel no longer exists.
func (d *Dispatcher) count(channel, typ string, o outcome) {
	switch o {
	case outcomeDelivered:
		d.delivered.Add(1)
	case outcomeFailed:
		d.failed.Add(1)
	case outcomeGaveUp:
		d.gaveUp.Add(1)
	}
	d.perChannel.add(channel, typ, o)
}

// Metrics returns the dispatcher's metric families for /metrics:
// deliveries made, failed attempts and notifications given up by channel
// and channel type, and the queued deliveries of each channel.
func (d *Dispatcher) Metrics() []metrics.Family {
	perChannel := func(name, help string, o outcome) metrics.Family {
		return metrics.Family{Name: name, Help: help, Counter: true, Labels: []string{"channel", "type"},
			Collect: func(emit func(float64, ...string)) { d.perChannel.each(d.opts.Channels.Channels(), o, emit) }}
	}
	return []metrics.Family{
		perChannel("hbd_notifications_delivered_total", "Notifications delivered, by channel and channel type.", outcomeDelivered),
		perChannel("hbd_notification_attempts_failed_total", "Failed delivery attempts, by channel and channel type.", outcomeFailed),
		perChannel("hbd_notifications_given_up_total", "Notifications abandoned after their retries (or for a channel that no longer exists: type \"\"), by channel and channel type.", outcomeGaveUp),
		{Name: "hbd_notification_queues", Help: "Channel delivery queues whose worker runs.",
			Collect: func(emit func(float64, ...string)) { emit(float64(d.Stats().Queues)) }},
		{Name: "hbd_notifications_pending", Help: "Queued deliveries per channel.", Labels: []string{"channel"},
			Collect: func(emit func(float64, ...string)) {
				for ch, n := range d.Stats().Pending {
					emit(float64(n), ch)
				}
			}},
	}
}
