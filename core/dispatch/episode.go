package dispatch

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/hbdmon/hbd/core/dispatch/dispatchrecord"
	"github.com/hbdmon/hbd/sdk"
)

// Delivery status of an alert episode, as EpisodeStatus reports it.
const (
	// EpisodeNotRouted: no notification of the episode was dispatched
	// (nothing was due yet, or it was held back by a silence).
	EpisodeNotRouted = ""
	// EpisodeNoChannel: notifications were due but no channel covers the
	// host and level: nobody was told.
	EpisodeNoChannel = "no channel"
	// EpisodePending: deliveries are queued or being retried.
	EpisodePending = "pending"
	// EpisodeDelivered: at least one delivery succeeded.
	EpisodeDelivered = "delivered"
	// EpisodeFailed: every delivery failed permanently or gave up.
	EpisodeFailed = "failed"
)

// Bounds of the delivery accounting.
const (
	// maxEpisodeRecords bounds the episodes whose delivery counts are held
	// in memory (and loaded at Start); the oldest are forgotten first.
	maxEpisodeRecords = 20000
	// maxSentPairs bounds the (event, channel) pairs held in memory; the
	// store keeps every pair until trimmed, so an older pair is still
	// never queued twice.
	maxSentPairs = 100000
	// DefaultRecordRetention is how long episode counts and queued pairs
	// are kept when the config's retention is 0 (keep everything).
	DefaultRecordRetention = 30 * 24 * time.Hour
	// minRecordRetention is the least they are kept, whatever the
	// retention.
	minRecordRetention = 24 * time.Hour
	// trimEvery is how often old records are trimmed.
	trimEvery = time.Hour
)

// epKey is an episode in memory: host, metric and start in unix ms.
type epKey = dispatchrecord.EpisodeKey

// epCount counts the deliveries of one episode.
type epCount struct {
	queued, delivered, failed int
	noChannel                 bool
	updated                   time.Time
}

func (c *epCount) status() string {
	switch {
	case c.delivered > 0:
		return EpisodeDelivered
	case c.queued > c.delivered+c.failed:
		return EpisodePending
	case c.failed > 0:
		return EpisodeFailed
	case c.noChannel:
		return EpisodeNoChannel
	}
	return EpisodeNotRouted
}

// pairKey is an (event ID, channel) pair.
type pairKey struct{ event, channel string }

// accounting holds the delivery counts per episode and the pairs queued.
type accounting struct {
	mu       sync.Mutex
	episodes map[epKey]*epCount
	pairs    map[pairKey]time.Time
	order    []pairKey // pairs, oldest first (may hold trimmed ones)
}

func newAccounting() *accounting {
	return &accounting{episodes: map[epKey]*epCount{}, pairs: map[pairKey]time.Time{}}
}

// startMs turns an episode start into its key: unix milliseconds, rounded.
// The alert states keep starts as float seconds, so a start read back may
// differ from the one sent by well under a millisecond.
func startMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	ns := t.UnixNano()
	return (ns + 500_000) / 1_000_000
}

// episodeOf returns the episode key of ev (EpisodeStart, or Since for
// events that lack it).
func episodeOf(ev sdk.Event) epKey {
	start := ev.EpisodeStart
	if start.IsZero() {
		start = ev.Since
	}
	return epKey{Host: ev.Host, Metric: ev.MetricPath, StartMs: startMs(start)}
}

// EpisodeStatus reports, for the alert episode of (host, metric) that
// began at episodeStart (alert.Event.EpisodeStart: when the metric left OK),
// how many deliveries succeeded, counting every event of the episode
// (changes, renotifies and the recovery), and the episode's delivery
// status (one of the Episode constants). It is cheap (memory only) and
// safe for concurrent use. The counts survive a restart; episodes last
// updated before the record retention (the config's retention, at least a
// day; 30 days when it is 0) are forgotten.
func (d *Dispatcher) EpisodeStatus(host, metric string, episodeStart time.Time) (delivered int, status string) {
	ms := startMs(episodeStart)
	a := d.acct
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range []int64{ms, ms - 1, ms + 1} {
		if c := a.episodes[epKey{Host: host, Metric: metric, StartMs: m}]; c != nil {
			return c.delivered, c.status()
		}
	}
	return 0, EpisodeNotRouted
}

// count applies fn to ep's counts, creating them when needed.
func (a *accounting) count(ep epKey, fn func(*epCount)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.episodes[ep]
	if c == nil {
		if len(a.episodes) >= maxEpisodeRecords {
			a.evictLocked()
		}
		c = &epCount{}
		a.episodes[ep] = c
	}
	fn(c)
	c.updated = time.Now()
}

// evictLocked forgets the older half of the settled episodes (nothing
// pending), or of all episodes when every one is pending.
func (a *accounting) evictLocked() {
	type aged struct {
		k epKey
		t time.Time
	}
	var settled, all []aged
	for k, c := range a.episodes {
		all = append(all, aged{k, c.updated})
		if c.queued <= c.delivered+c.failed {
			settled = append(settled, aged{k, c.updated})
		}
	}
	list := settled
	if len(list) < len(all)/4 {
		list = all
	}
	sort.Slice(list, func(i, j int) bool { return list[i].t.Before(list[j].t) })
	for _, x := range list[:len(list)/2+1] {
		delete(a.episodes, x.k)
	}
}

// claim records the pair (event, channel) and reports whether it is new:
// false when it was queued before.
func (a *accounting) claim(event, channel string, now time.Time) bool {
	k := pairKey{event, channel}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.pairs[k]; ok {
		return false
	}
	a.addPairLocked(k, now)
	return true
}

// release forgets a claimed pair that was not queued after all (the
// cluster outbox refused it), so the same event may be queued later.
func (a *accounting) release(event, channel string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pairs, pairKey{event, channel})
}

func (a *accounting) addPairLocked(k pairKey, t time.Time) {
	a.pairs[k] = t
	a.order = append(a.order, k)
	for len(a.pairs) > maxSentPairs && len(a.order) > 0 {
		delete(a.pairs, a.order[0])
		a.order = a.order[1:]
	}
	if len(a.order) > 2*maxSentPairs { // trimmed pairs left in order
		a.compactLocked()
	}
}

func (a *accounting) compactLocked() {
	out := make([]pairKey, 0, len(a.pairs))
	for _, k := range a.order {
		if _, ok := a.pairs[k]; ok {
			out = append(out, k)
		}
	}
	a.order = out
}

// trim forgets settled episodes and pairs older than before.
func (a *accounting) trim(before time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, c := range a.episodes {
		if c.updated.Before(before) && c.queued <= c.delivered+c.failed {
			delete(a.episodes, k)
		}
	}
	for k, t := range a.pairs {
		if t.Before(before) {
			delete(a.pairs, k)
		}
	}
	a.compactLocked()
}

// loadAccounting reads the persisted counts and pairs (Start).
func (d *Dispatcher) loadAccounting(ctx context.Context) error {
	eps, err := d.opts.Store.EpisodeDeliveryCounts(ctx, maxEpisodeRecords)
	if err != nil {
		return err
	}
	pairs, err := d.opts.Store.SentPairs(ctx, maxSentPairs)
	if err != nil {
		return err
	}
	a := d.acct
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range eps {
		a.episodes[e.EpisodeKey] = &epCount{queued: e.Queued, delivered: e.Delivered, failed: e.Failed,
			noChannel: e.NoChannel, updated: e.Updated}
	}
	for i := len(pairs) - 1; i >= 0; i-- { // oldest first
		a.addPairLocked(pairKey{pairs[i].EventID, pairs[i].Channel}, pairs[i].Created)
	}
	return nil
}

// recordRetention is how long delivery records are kept.
func (d *Dispatcher) recordRetention() time.Duration {
	keep := d.opts.Config().Retention
	if keep <= 0 {
		return DefaultRecordRetention
	}
	return max(keep, minRecordRetention)
}

// trimLoop trims old delivery records every trimEvery until Close.
func (d *Dispatcher) trimLoop() {
	defer d.wg.Done()
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		select {
		case <-d.stopping:
			return
		case now := <-t.C:
			d.TrimRecords(now)
		}
	}
}

// TrimRecords forgets the delivery records (episode counts, queued
// pairs) older than the record retention before now, in memory and in the
// store. The dispatcher runs it every hour.
func (d *Dispatcher) TrimRecords(now time.Time) {
	before := now.Add(-d.recordRetention())
	d.acct.trim(before)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n, err := d.opts.Store.TrimDeliveryRecords(ctx, before); err != nil {
		d.log.Error("trimming notification records failed", "error", err)
	} else if n > 0 {
		d.log.Debug("trimmed notification records", "rows", n)
	}
}
