// Package pipeline holds the bounded hand-offs between hbd's hot paths (a
// UDP reader applying a heartbeat, an ingest request answering 200) and the
// work that follows them (disk writes, alert evaluation, routing, the live
// feed). A producer never waits: Put only appends under a short lock. One
// consumer goroutine (Run) hands each host's items to a typed Consumer, in
// the order they were put.
package pipeline

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/hbdmon/hbd/core/metrics"
)

// Consumer handles the queued items of one host, oldest first. It runs on
// the queue's one goroutine, so calls never overlap; it may block (the
// queue then fills and overflows, its producers do not wait).
type Consumer[T any] interface {
	Consume(host string, items []T)
}

// Queue is a bounded queue of items per host with one consumer. Items of
// one host reach the consumer in the order Put was called for them (calls
// for one host must be ordered by their caller, as the store and the
// tracker do); hosts are served in the order they got their first pending
// item. At most Limit items are pending (waiting or being consumed);
// beyond that an item is dropped, or, with a key, replaces the host's
// pending item with the same key (see Coalesce). Either is counted in
// Dropped.
type Queue[T any] struct {
	name  string
	limit int
	key   func(T) string
	c     Consumer[T]
	wake  chan struct{}

	mu      sync.Mutex
	pending map[string][]T // host -> items not yet taken by Run
	hosts   []string       // hosts of pending, in order of their first item
	depth   int            // items pending or being consumed

	dropped  atomic.Uint64
	consumed atomic.Uint64
}

// Option tunes a Queue.
type Option[T any] func(*Queue[T])

// Coalesce makes a full queue keep the newest item per (host, key(item)):
// a new item replaces the host's oldest pending item with the same key
// (the replaced one is counted as dropped) and goes to the end of the
// host's items, so their order is kept. An item whose key has no pending
// item is queued over the limit: what a queue holds is then bounded by
// the distinct keys per host, not by the limit.
func Coalesce[T any](key func(T) string) Option[T] {
	return func(q *Queue[T]) { q.key = key }
}

// New returns a queue named name (its label in /metrics) holding at most
// limit items for c. Start its consumer with Run.
func New[T any](name string, limit int, c Consumer[T], opts ...Option[T]) *Queue[T] {
	if limit < 1 {
		limit = 1
	}
	q := &Queue[T]{name: name, limit: limit, c: c, wake: make(chan struct{}, 1), pending: map[string][]T{}}
	for _, o := range opts {
		o(q)
	}
	return q
}

// Put queues items of host for the consumer without waiting. Items beyond
// the limit are dropped or coalesced (see Queue) and counted.
func (q *Queue[T]) Put(host string, items ...T) {
	if len(items) == 0 {
		return
	}
	q.mu.Lock()
	list, had := q.pending[host]
	for _, it := range items {
		if q.depth >= q.limit {
			if q.key == nil {
				q.dropped.Add(1)
				continue
			}
			if i := indexKey(list, q.key, q.key(it)); i >= 0 {
				list = append(list[:i], list[i+1:]...)
				list = append(list, it)
				q.dropped.Add(1)
				continue
			}
			// Nothing of this key pending: queued over the limit.
		}
		list = append(list, it)
		q.depth++
	}
	if len(list) > 0 {
		if !had {
			q.hosts = append(q.hosts, host)
		}
		q.pending[host] = list
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func indexKey[T any](list []T, key func(T) string, k string) int {
	for i := range list {
		if key(list[i]) == k {
			return i
		}
	}
	return -1
}

// Run consumes until ctx ends, then hands the consumer what is still
// pending and returns. It must be called once.
func (q *Queue[T]) Run(ctx context.Context) {
	for {
		select {
		case <-q.wake:
			q.drain()
		case <-ctx.Done():
			q.drain()
			return
		}
	}
}

// drain takes the pending items, host by host in order, until none are
// left. Items put for a host while its earlier items are being consumed
// wait for the next round, so they come after them.
func (q *Queue[T]) drain() {
	for {
		q.mu.Lock()
		hosts, pending := q.hosts, q.pending
		q.hosts, q.pending = nil, make(map[string][]T, len(pending))
		q.mu.Unlock()
		if len(hosts) == 0 {
			return
		}
		for _, h := range hosts {
			items := pending[h]
			q.c.Consume(h, items)
			q.consumed.Add(uint64(len(items)))
			q.mu.Lock()
			q.depth -= len(items)
			q.mu.Unlock()
		}
	}
}

// Name returns the queue's name, its label in /metrics.
func (q *Queue[T]) Name() string { return q.name }

// Depth returns how many items are pending or being consumed.
func (q *Queue[T]) Depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.depth
}

// Dropped returns how many items overflowed since start: discarded, or
// replaced by a newer item with the same key.
func (q *Queue[T]) Dropped() uint64 { return q.dropped.Load() }

// Consumed returns how many items the consumer was handed since start.
func (q *Queue[T]) Consumed() uint64 { return q.consumed.Load() }

// Gauge is what /metrics reads of a queue (*Queue is one).
type Gauge interface {
	Name() string
	Depth() int
	Dropped() uint64
	Consumed() uint64
}

// Metrics returns the metric families of the queues, labelled by name:
// hbd_pipeline_queue_depth, hbd_pipeline_dropped_total and
// hbd_pipeline_consumed_total.
func Metrics(qs ...Gauge) []metrics.Family {
	each := func(v func(Gauge) float64) func(emit func(float64, ...string)) {
		return func(emit func(float64, ...string)) {
			for _, q := range qs {
				emit(v(q), q.Name())
			}
		}
	}
	return []metrics.Family{
		{Name: "hbd_pipeline_queue_depth", Help: "Items waiting in a hand-off queue or being handled.", Labels: []string{"queue"},
			Collect: each(func(q Gauge) float64 { return float64(q.Depth()) })},
		{Name: "hbd_pipeline_dropped_total", Help: "Items a full hand-off queue dropped or replaced by a newer one of the same host and key.", Counter: true, Labels: []string{"queue"},
			Collect: each(func(q Gauge) float64 { return float64(q.Dropped()) })},
		{Name: "hbd_pipeline_consumed_total", Help: "Items a hand-off queue passed on.", Counter: true, Labels: []string{"queue"},
			Collect: each(func(q Gauge) float64 { return float64(q.Consumed()) })},
	}
}
