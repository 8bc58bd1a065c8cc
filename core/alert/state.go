package alert

import (
	"fmt"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/store"
)

// state is the alert state of one (host, metric path). Its fields are
// guarded by the owning hostState's mutex.
type state struct {
	host, metric string
	rule         *rule // nil for heartbeat metrics
	heartbeat    bool

	level     string
	since     float64 // unix seconds: data time of the change
	prevLevel string  // level before this episode ("" after a restart)
	lastValue float64
	lastCheck float64   // unix seconds: time of the last sample or heartbeat
	lastSeen  time.Time // evaluator clock at the last data (staleness)
	detail    string    // heartbeat state behind lastValue

	count         int // notifications of this episode
	lastNotified  time.Time
	notifiedLevel string // level of the last notification sent
	ack           bool
	ackBy         string

	flapping   bool
	flapLevel  string      // level announced by the flapping notification
	changes    []time.Time // level changes within the flap window
	lastChange time.Time

	// Consecutive samples whose candidate level was >= WARNING, >=
	// CRITICAL, <= OK and <= WARNING: the `for` counters.
	geWarn, geCrit, leOK, leWarn int

	valueDirty bool
}

func (st *state) resetStreaks() { st.geWarn, st.geCrit, st.leOK, st.leWarn = 0, 0, 0, 0 }

func (st *state) row() store.AlertState {
	r := store.AlertState{
		Host: st.host, Metric: st.metric, Level: st.level, Since: st.since,
		LastValue: st.lastValue, LastCheck: st.lastCheck, NotificationCount: st.count,
		NotifiedLevel: st.notifiedLevel, Acknowledged: st.ack, AckBy: st.ackBy,
		Flapping: st.flapping, Detail: st.detail,
	}
	if !st.lastNotified.IsZero() {
		r.LastNotified = toUnix(st.lastNotified)
	}
	return r
}

func (st *state) status() Status {
	return Status{
		Host: st.host, MetricPath: st.metric, Level: st.level, Since: st.since,
		LastValue: st.lastValue, LastCheck: st.lastCheck, NotificationCount: st.count,
		Acknowledged: st.ack, AcknowledgedBy: st.ackBy, Flapping: st.flapping,
	}
}

// save queues a snapshot of st for the next flush. The host must be locked.
func (e *Evaluator) save(st *state) {
	row := st.row()
	st.valueDirty = false
	e.pendMu.Lock()
	e.pending = append(e.pending, pendingOp{row: row})
	e.pendMu.Unlock()
}

// observe evaluates one sample value of a metric. The host must be locked.
func (e *Evaluator) observe(rs *ruleset, hs *hostState, st *state, v, ts float64, now time.Time, out *outbox) {
	if st.lastCheck != 0 && ts <= st.lastCheck {
		return // resent or out-of-order sample: already evaluated or superseded
	}
	st.lastValue, st.lastCheck, st.lastSeen = v, ts, now
	st.valueDirty = true
	if st.level == config.LevelUnknown {
		// Data is back: its level applies at once, without `for`.
		st.resetStreaks()
		e.jump(rs, st, ts, now, out)
		return
	}
	cur := rankOf(st.level)
	c := st.rule.candidate(cur, v)
	st.geWarn = streak(st.geWarn, c >= rankWarning)
	st.geCrit = streak(st.geCrit, c >= rankCritical)
	st.leOK = streak(st.leOK, c <= rankOK)
	st.leWarn = streak(st.leWarn, c <= rankWarning)
	need := st.rule.need()
	target := cur
	switch {
	case cur < rankCritical && st.geCrit >= need:
		target = rankCritical
	case cur < rankWarning && st.geWarn >= need:
		target = rankWarning
	case cur > rankOK && st.leOK >= need:
		target = rankOK
	case cur > rankWarning && st.leWarn >= need:
		target = rankWarning
	}
	if target != cur {
		e.setLevel(rs, st, levelNames[target], ts, now, formatValue(v), out)
	}
}

func streak(n int, hit bool) int {
	if hit {
		return n + 1
	}
	return 0
}

// jump moves st straight to the level its last value points to (reload,
// return from UNKNOWN, a state created from a stored sample).
func (e *Evaluator) jump(rs *ruleset, st *state, at float64, now time.Time, out *outbox) {
	cur := rankOf(st.level)
	c := st.rule.candidate(max(cur, rankOK), st.lastValue)
	if c != cur {
		e.setLevel(rs, st, levelNames[c], at, now, formatValue(st.lastValue), out)
	}
}

// setLevel changes the level of st, journals the change and decides what
// to notify. The host must be locked.
func (e *Evaluator) setLevel(rs *ruleset, st *state, level string, at float64, now time.Time, cause string, out *outbox) {
	prev := st.level
	if prev == level {
		return
	}
	st.level, st.since, st.prevLevel = level, at, prev
	st.count, st.lastNotified = 0, time.Time{}
	st.ack, st.ackBy = false, ""
	out.journal = append(out.journal, journalLine{st.host, fmt.Sprintf("%s %s %s -> %s (%s)", st.host, st.metric, prev, level, cause)})
	e.log.Debug("alert level changed", "host", st.host, "metric", st.metric, "from", prev, "to", level, "cause", cause)
	defer e.save(st)

	a := rs.cfg.Alerting
	if a.FlapWindow > 0 && a.FlapCount > 0 {
		keep := st.changes[:0]
		for _, t := range st.changes {
			if now.Sub(t) < a.FlapWindow {
				keep = append(keep, t)
			}
		}
		st.changes = append(keep, now)
		st.lastChange = now
		if !st.flapping && len(st.changes) > a.FlapCount {
			st.flapping, st.flapLevel = true, level
			out.journal = append(out.journal, journalLine{st.host, fmt.Sprintf("%s %s is flapping (%d level changes within %s)", st.host, st.metric, len(st.changes), a.FlapWindow)})
			if !e.silenced(st, now) {
				e.notify(st, KindFlapping, prev, now, out)
			}
			return
		}
	}
	if st.flapping {
		return
	}
	switch {
	case level == config.LevelOK:
		// A recovery is told only to whoever was told of the problem; a
		// return from UNKNOWN is never a recovery.
		if (prev == config.LevelWarning || prev == config.LevelCritical) &&
			(st.notifiedLevel == config.LevelWarning || st.notifiedLevel == config.LevelCritical) &&
			!e.silenced(st, now) {
			e.notify(st, KindRecovery, prev, now, out)
		}
	case !e.silenced(st, now):
		e.notify(st, KindChange, prev, now, out)
	}
}

// settle ends flapping after a quiet flap window and notifies the level
// the metric settled at. The host must be locked.
func (e *Evaluator) settle(st *state, now time.Time, out *outbox) {
	st.flapping, st.changes = false, nil
	out.journal = append(out.journal, journalLine{st.host, fmt.Sprintf("%s %s stopped flapping at %s", st.host, st.metric, st.level)})
	st.count, st.lastNotified = 0, time.Time{}
	defer e.save(st)
	if e.silenced(st, now) {
		return
	}
	kind := KindChange
	if st.level == config.LevelOK {
		kind = KindRecovery
	}
	e.notify(st, kind, st.flapLevel, now, out)
}

// due sends what the passing of time makes due for st: the held-back
// change notification of a non-OK level nobody was told about (its silence
// ended), or a renotify. The host must be locked.
func (e *Evaluator) due(rs *ruleset, st *state, now time.Time, out *outbox) {
	if st.level == config.LevelOK || st.flapping || st.ack {
		return
	}
	renotify := rs.cfg.Alerting.Renotify
	switch {
	case st.count == 0:
		if !e.silenced(st, now) {
			e.notify(st, KindChange, st.prevLevel, now, out)
			e.save(st)
		}
	case renotify > 0 && now.Sub(st.lastNotified) >= renotify:
		if !e.silenced(st, now) {
			e.notify(st, KindRenotify, st.prevLevel, now, out)
			e.save(st)
		}
	}
}

// notify counts a notification of st and queues its event.
func (e *Evaluator) notify(st *state, kind, prev string, now time.Time, out *outbox) {
	st.count++
	st.lastNotified = now
	st.notifiedLevel = st.level
	detail := formatValue(st.lastValue)
	switch {
	case st.heartbeat:
		detail = st.detail
	case st.level == config.LevelUnknown:
		detail = "no data since " + fromUnix(st.lastCheck).UTC().Format(time.RFC3339)
	}
	since := fromUnix(st.since)
	out.events = append(out.events, Event{
		ID:                fmt.Sprintf("%s/%s/%d/%d", st.host, st.metric, since.UnixNano(), st.count),
		Host:              st.host,
		MetricPath:        st.metric,
		Level:             st.level,
		PreviousLevel:     prev,
		Value:             st.lastValue,
		Detail:            detail,
		Since:             since,
		Time:              now,
		Kind:              kind,
		NotificationCount: st.count,
		Acknowledged:      st.ack,
	})
}
