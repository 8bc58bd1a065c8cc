package alert

// Evaluation: samples, heartbeat changes and the passing of time turn into
// level changes, journal lines and notification events.

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/sdk/level"
)

// outbox collects what a locked section wants journaled and notified.
type outbox struct {
	journal []journalLine
	events  []Event
}

type journalLine struct{ host, msg string }

func (o *outbox) empty() bool { return len(o.journal) == 0 && len(o.events) == 0 }

// release unlocks a host after taking the emit lock, then delivers the
// outbox, so what one host produced reaches the journal and the sink in
// order.
func (e *Evaluator) release(hs *hostState, out *outbox) {
	if out.empty() {
		hs.mu.Unlock()
		return
	}
	e.emitMu.Lock()
	hs.mu.Unlock()
	e.deliver(out)
	e.emitMu.Unlock()
}

func (e *Evaluator) deliver(out *outbox) {
	for _, j := range out.journal {
		e.repo.Journal(j.host, j.msg)
	}
	switch {
	case len(out.events) > 0 && e.leader != nil:
		// Clustered: the state changes and the outbox rows of their
		// notifications commit in one fenced transaction (the batch the
		// events carry), or neither does. flushMu is held until the
		// batch is queued, so no later snapshot of these states reaches
		// the writer before it.
		e.flushMu.Lock()
		rows, del := e.takePending()
		e.sendEvents(rows, del, out.events, nil)
		e.flushMu.Unlock()
	default:
		if len(out.events) > 0 {
			// The snapshots of the states these events come from go to
			// the store's writer (first in, first committed) before the
			// sink queues a delivery: after kill -9 a stored delivery
			// never exists without the state change that made it, so a
			// restart cannot fire the same change again.
			e.handOff()
		}
		for _, ev := range out.events {
			e.sink.AlertEvent(ev)
		}
	}
	out.journal, out.events = out.journal[:0], out.events[:0]
}

// ObserveSamples evaluates a committed batch of one host's samples, in
// ingestion order (the daemon's alert queue calls it, fed by the store
// after each commit through store.FeedAlerts). Its events reach the sinks
// on the caller's goroutine, so callers on a hot path must hand off
// first. It must not be called concurrently for one host with batches out
// of order; samples older than a metric's last one are
// ignored. Before Start has loaded the persisted states, and after Stop,
// it does nothing.
func (e *Evaluator) ObserveSamples(host string, samples []Sample) {
	if !e.ready.Load() || e.stopped.Load() || e.follower.Load() {
		return
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	rs := e.rules
	if !rs.watched(host, e.dyn) {
		return
	}
	hs := e.hostState(host, true)
	now := e.now()
	var out outbox
	hs.mu.Lock()
	for i := range samples {
		ps := &samples[i]
		if ps.Plugin == heartbeatPlugin || len(ps.Paths) != len(ps.Values) {
			continue
		}
		pm := hs.plugins[ps.Plugin]
		if pm == nil {
			pm = map[string]*state{}
			hs.plugins[ps.Plugin] = pm
		}
		for j, p := range ps.Paths {
			v := ps.Values[j]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				// Ingestion only accepts finite numbers; never evaluate anything else.
				continue
			}
			st, seen := pm[p]
			if !seen {
				st = e.resolveState(rs, hs, ps.Plugin+"."+p, ps.Timestamp, now)
				if st != nil || len(pm) < maxPathsPerPlugin {
					pm[p] = st
				}
			}
			if st != nil {
				e.observe(rs, hs, st, v, ps.Timestamp, now, &out)
				e.saveNew(st)
			}
		}
	}
	e.release(hs, &out)
}

// resolveState returns the existing state of a metric or creates one at OK
// when a rule matches it; nil when no rule does. hs must be locked.
func (e *Evaluator) resolveState(rs *ruleset, hs *hostState, metric string, ts float64, now time.Time) *state {
	if st := hs.metrics[metric]; st != nil {
		return st
	}
	r := rs.resolve(hs.name, metric)
	if r == nil {
		return nil
	}
	st := &state{host: hs.name, metric: metric, hs: hs, rule: r, level: level.OK, since: ts, lastSeen: now}
	hs.metrics[metric] = st
	return st
}

// ObserveHeartbeat evaluates a heartbeat state change of a watched host.
// A change of family "ipv4" or "ipv6" to UP, LATE or DOWN sets
// heartbeat.ipv4 / heartbeat.ipv6: OK, alerting.heartbeat_late (OK when
// "none") or alerting.heartbeat_down. A change of the host (Family "") to
// UP, DEGRADED or DOWN sets heartbeat.host: OK, OK or
// alerting.heartbeat_down; a DEGRADED host is told through its lost family.
// A family alert is not notified while heartbeat.host is not OK
// (inhibition), and its first notification waits FamilySettle. Other
// states are ignored. Heartbeat metrics change level at once and never go
// stale. A dynamic host must already be known to the store (EnsureHost) to
// be recognised as dynamic.
func (e *Evaluator) ObserveHeartbeat(ch heartbeat.Change) {
	if e.stopped.Load() || e.follower.Load() {
		return
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	rs := e.rules
	path, lv, value, ok := heartbeatLevel(rs.cfg.Alerting, ch.Family, ch.To)
	if !ok {
		e.log.Debug("ignoring heartbeat state", "host", ch.Host, "family", ch.Family, "state", ch.To)
		return
	}
	if !rs.watched(ch.Host, e.dyn) {
		return
	}
	hs := e.hostState(ch.Host, true)
	now := e.now()
	at := ch.Time
	if at.IsZero() {
		at = now
	}
	ts := toUnix(at)
	var out outbox
	hs.mu.Lock()
	st := hs.metrics[path]
	if st == nil {
		st = &state{host: ch.Host, metric: path, hs: hs, heartbeat: true, hb: &hbInfo{}, level: level.OK, since: ts}
		hs.metrics[path] = st
	}
	st.lastValue, st.lastCheck, st.lastSeen, st.detail = value, ts, now, string(ch.To)
	st.hb.state, st.hb.seen, st.hb.reason, st.hb.observed = ch.To, ch.LastSeen, ch.Reason, true
	if ch.Family == "" {
		st.hb.fams = famNames(ch.Families)
	}
	st.valueDirty = true
	if lv != st.level {
		e.setLevel(rs, st, lv, ts, now, string(ch.To), &out)
	}
	e.saveNew(st)
	e.release(hs, &out)
}

// saveNew queues a new state's first snapshot for the next flush (about a
// second), as a level change is: without it a metric that starts at OK
// and stays there reached the database (and the followers' view of it)
// only with the values flush, up to a minute later. The host must be
// locked.
func (e *Evaluator) saveNew(st *state) {
	if !st.stored && st.valueDirty {
		e.save(st)
	}
}

// runHeld decides the family alerts whose settle delay has passed (see
// FamilySettle). The background loop calls it every second.
func (e *Evaluator) runHeld(now time.Time) {
	e.heldMu.Lock()
	var due []Key
	for k, t := range e.held {
		if !now.Before(t) {
			due = append(due, k)
			delete(e.held, k)
		}
	}
	e.heldMu.Unlock()
	if len(due) == 0 {
		return
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	rs := e.rules
	var out outbox
	for _, k := range due {
		hs := e.hostState(k.Host, false)
		if hs == nil {
			continue
		}
		hs.mu.Lock()
		if st := hs.metrics[k.Metric]; st != nil {
			if inhibited(st) {
				e.log.Debug("family alert inhibited by heartbeat.host", "host", st.host, "metric", st.metric)
			}
			e.due(rs, st, now, &out)
		}
		e.release(hs, &out)
	}
}

// Sweep applies the time-driven rules as of now: expired silences end,
// metrics without data for alerting.stale_after become UNKNOWN, metrics
// UNKNOWN for alerting.forget_after are forgotten, flapping metrics stable
// for a flap window settle, and notifications that are due (renotify, or a
// change held back by a silence that ended) are sent. The background loop
// calls it; tests call it with their own clock.
func (e *Evaluator) Sweep(now time.Time) {
	if e.follower.Load() {
		return // the leader sweeps
	}
	e.expireSilences(now)
	e.runHeld(now)
	e.mu.RLock()
	defer e.mu.RUnlock()
	rs := e.rules
	a := rs.cfg.Alerting
	var out outbox
	forgotten := 0
	for _, hs := range e.hostList() {
		hs.mu.Lock()
		for _, st := range hs.metrics {
			if !st.heartbeat && !st.clock && a.StaleAfter > 0 && st.level != level.Unknown && now.Sub(st.lastSeen) >= a.StaleAfter {
				st.resetStreaks()
				e.setLevel(rs, st, level.Unknown, toUnix(now), now, "no data for "+a.StaleAfter.String(), &out)
			}
			if forgettable(a, st, now) {
				e.forget(hs, st, &out)
				forgotten++
				continue
			}
			if st.flapping && now.Sub(st.lastChange) >= a.FlapWindow {
				e.settle(rs, st, now, &out)
			}
			e.due(rs, st, now, &out)
		}
		e.release(hs, &out)
	}
	if forgotten > 0 {
		e.log.Info("forgot alert states without data", "count", forgotten, "forget_after", a.ForgetAfter)
	}
}

// forgettable reports whether st has been UNKNOWN for alerting.forget_after
// (counted from the level change, which is persisted, so a restart does not
// restart the count). Heartbeat metrics and the clock offset are never
// forgotten.
func forgettable(a config.Alerting, st *state, now time.Time) bool {
	return !st.heartbeat && !st.clock && a.ForgetAfter > 0 && st.level == level.Unknown &&
		now.Sub(fromUnix(st.since)) >= a.ForgetAfter
}

// forget drops a state from memory (its metrics and its path cache entry,
// so a later sample starts a fresh state) and, through the pending queue,
// from the store. It is journaled, never notified. hs must be locked.
func (e *Evaluator) forget(hs *hostState, st *state, out *outbox) {
	delete(hs.metrics, st.metric)
	e.active.remove(st)
	for plugin, pm := range hs.plugins {
		if path, ok := strings.CutPrefix(st.metric, plugin+"."); ok && pm[path] == st {
			delete(pm, path)
		}
	}
	last := st.lastCheck
	if last == 0 {
		last = st.since
	}
	out.journal = append(out.journal, journalLine{st.host, fmt.Sprintf("%s %s forgotten (no data since %s)",
		st.host, st.metric, fromUnix(last).UTC().Format(time.RFC3339))})
	e.log.Debug("alert state forgotten", "host", st.host, "metric", st.metric)
	e.episodesGone([]Key{{Host: st.host, Metric: st.metric}}, toUnix(e.now()))
	e.pendMu.Lock()
	e.pending = append(e.pending, pendingOp{row: SavedState{Host: st.host, Metric: st.metric}, del: true})
	e.pendMu.Unlock()
}
