package alert

import (
	"fmt"
	"math"
	"time"

	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/sdk/level"
)

// state is the alert state of one (host, metric path). Its fields are
// guarded by the owning hostState's mutex. The fields every sample reads
// come first, so evaluating one touches few cache lines.
type state struct {
	rule      *rule // nil for heartbeat metrics
	level     level.Level
	lastValue float64
	lastCheck float64   // unix seconds: time of the last sample or heartbeat
	lastSeen  time.Time // evaluator clock at the last data (staleness)
	// Consecutive samples whose candidate level was >= WARNING, >=
	// CRITICAL, <= OK and <= WARNING: the `for` counters.
	geWarn, geCrit, leOK, leWarn int32
	valueDirty                   bool
	stored                       bool // queued for writing at least once (or loaded)
	heartbeat                    bool // heartbeat.host, heartbeat.ipv4 or heartbeat.ipv6
	clock                        bool // heartbeat.clock_offset_ms: a rule on |value|, never stale

	host, metric string
	hs           *hostState  // the owner
	since        float64     // unix seconds: data time of the change
	prevLevel    level.Level // level before this episode ("" after a restart)
	detail       string      // heartbeat state behind lastValue; clockRefused for a refused clock

	// episode is when the metric left OK (unix seconds), 0 while OK;
	// lastEpisode the start of the episode that ended last. worst is the
	// worst level of the current episode.
	episode, lastEpisode float64
	worst                level.Level

	count         int // notifications of this episode
	lastNotified  time.Time
	notifiedLevel level.Level // level of the last notification sent
	// lastKind and lastPrev are the kind and previous level of the last
	// notification, kept (with count, lastNotified and lastEpisode) so
	// that it can be offered again, identical, after a crash (replay.go).
	lastKind string
	lastPrev level.Level
	ack      bool
	ackBy    string

	flapping   bool
	flapLevel  level.Level // level announced by the flapping notification
	changes    []time.Time // level changes within the flap window
	lastChange time.Time

	hb *hbInfo // heartbeat states only
}

// hbInfo is what only heartbeat states keep (not persisted).
type hbInfo struct {
	// What the heartbeat tracker said with its last change: the last
	// accepted heartbeat, the families a host uses ("IPv4"), and a reason
	// beyond silence ("clock 6m12s ahead of hbd").
	// state is the tracker's state behind the level (persisted as the
	// state's detail, restored from it at load).
	state    heartbeat.State
	seen     time.Time
	fams     []string
	reason   string
	observed bool // the tracker reported since Start

	// holdUntil defers the first notification of a family alert, so a
	// host going DOWN one family per sweep is told once, as the host, and
	// with recoverDue the recovery of a host back on one family, which
	// then says "UP again" when the other family follows at once.
	holdUntil  time.Time
	recoverDue bool
}

// held reports whether a deferred notification of st waits until after now.
func (st *state) held(now time.Time) bool { return st.hb != nil && now.Before(st.hb.holdUntil) }

func (st *state) resetStreaks() { st.geWarn, st.geCrit, st.leOK, st.leWarn = 0, 0, 0, 0 }

// observe evaluates one sample value of a metric. The host must be locked.
func (e *Evaluator) observe(rs *ruleset, hs *hostState, st *state, v, ts float64, now time.Time, out *outbox) {
	if st.lastCheck != 0 && ts <= st.lastCheck {
		return // resent or out-of-order sample: already evaluated or superseded
	}
	defer e.episodeValue(st, v, now)
	st.lastValue, st.lastCheck, st.lastSeen = v, ts, now
	st.valueDirty = true
	if st.level == level.Unknown {
		// Data is back: its level applies at once, without `for`.
		st.resetStreaks()
		e.jump(rs, st, ts, now, out)
		return
	}
	// Here cur and c are OK, WARNING or CRITICAL: ranks 0, 2 and 3.
	cur := st.level
	c := st.rule.candidate(cur, st.measure(v)).Rank()
	warn, crit, ok := level.Warning.Rank(), level.Critical.Rank(), level.OK.Rank()
	st.geWarn = streak(st.geWarn, c >= warn)
	st.geCrit = streak(st.geCrit, c >= crit)
	st.leOK = streak(st.leOK, c <= ok)
	st.leWarn = streak(st.leWarn, c <= warn)
	need := int32(st.rule.need())
	target := cur
	switch r := cur.Rank(); {
	case r < crit && st.geCrit >= need:
		target = level.Critical
	case r < warn && st.geWarn >= need:
		target = level.Warning
	case r > ok && st.leOK >= need:
		target = level.OK
	case r > warn && st.leWarn >= need:
		target = level.Warning
	}
	if target != cur {
		e.setLevel(rs, st, target, ts, now, formatValue(v), out)
	}
}

// measure is what the rule compares: the value, or for the clock offset
// its size (a host is as wrong ahead as behind).
func (st *state) measure(v float64) float64 {
	if st.clock {
		return math.Abs(v)
	}
	return v
}

func streak(n int32, hit bool) int32 {
	if hit {
		return n + 1
	}
	return 0
}

// jump moves st straight to the level its last value points to (reload,
// return from UNKNOWN, a state created from a stored sample).
func (e *Evaluator) jump(rs *ruleset, st *state, at float64, now time.Time, out *outbox) {
	// UNKNOWN ranks below WARNING, so candidate treats it like OK.
	c := st.rule.candidate(st.level, st.measure(st.lastValue))
	if st.clock && st.detail == clockRefused {
		c = level.Critical
	}
	if c != st.level {
		e.setLevel(rs, st, c, at, now, formatValue(st.lastValue), out)
	}
}

// setLevel changes the level of st, keeps its episode, journals and logs
// the change and decides what to notify. The host must be locked.
func (e *Evaluator) setLevel(rs *ruleset, st *state, lv level.Level, at float64, now time.Time, cause string, out *outbox) {
	prev := st.level
	if prev == lv {
		return
	}
	st.level, st.since, st.prevLevel = lv, at, prev
	e.active.update(st)
	st.count, st.lastNotified = 0, time.Time{}
	st.ack, st.ackBy = false, ""
	if st.hb != nil {
		st.hb.holdUntil, st.hb.recoverDue = time.Time{}, false
	}
	switch {
	case lv == level.OK:
	case prev == level.OK || st.episode == 0:
		// A new episode: nothing of it has been told yet.
		st.episode, st.worst, st.notifiedLevel = at, lv, ""
	case lv.Rank() > st.worst.Rank():
		st.worst = lv
	}
	kind := KindChange
	if lv == level.OK {
		kind = KindRecovery
	}
	text := e.textOf(st, kind, now)
	out.journal = append(out.journal, journalLine{st.host, fmt.Sprintf("%s [%s %s -> %s]", text, st.metric, prev, lv)})
	lg := e.log.Info
	if lv == level.Critical {
		lg = e.log.Warn
	}
	lg("alert level changed", "host", st.host, "metric", st.metric, "from", prev, "to", lv, "text", text, "cause", cause)

	e.decide(rs, st, prev, now, out)
	if lv == level.OK {
		st.lastEpisode, st.episode, st.worst = st.episode, 0, ""
		if st.metric == HeartbeatHost {
			e.uninhibit(rs, st.hs, now, out)
		}
	}
	e.episodeChanged(st, text, now)
	e.save(st)
}

// decide notifies (or holds back) the level change of st from prev. The
// host must be locked.
func (e *Evaluator) decide(rs *ruleset, st *state, prev level.Level, now time.Time, out *outbox) {
	lv := st.level
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
			st.flapping, st.flapLevel = true, lv
			out.journal = append(out.journal, journalLine{st.host, e.textOf(st, KindFlapping, now)})
			if !e.silenced(st, now) && !inhibited(st) {
				e.notify(st, KindFlapping, prev, now, out)
			}
			return
		}
	}
	if st.flapping {
		return
	}
	switch {
	case lv == level.OK:
		// A recovery is told only to whoever was told of the problem; a
		// return from UNKNOWN is never a recovery.
		if (prev == level.Warning || prev == level.Critical) &&
			(st.notifiedLevel == level.Warning || st.notifiedLevel == level.Critical) &&
			!e.silenced(st, now) {
			if st.metric == HeartbeatHost && st.hb.state == heartbeat.StateDegraded && e.FamilySettle > 0 {
				st.hb.recoverDue = true
				e.hold(st, now)
				return
			}
			e.notify(st, KindRecovery, prev, now, out)
		}
	case isFamily(st.metric):
		e.holdOrNotify(rs, st, now, out)
	case !e.silenced(st, now):
		e.notify(st, KindChange, prev, now, out)
	}
}

// inhibited reports whether the notifications of st are held back by a
// non-OK heartbeat.host of the same host: a host DOWN is told once, as
// the host, not once per family. The host must be locked.
func inhibited(st *state) bool {
	if !isFamily(st.metric) {
		return false
	}
	h := st.hs.metrics[HeartbeatHost]
	return h != nil && h.level != level.OK
}

// holdOrNotify defers the first notification of a family alert by
// FamilySettle (the tracker may take the other family DOWN in the next
// sweep, and then only the host is told); without a settle delay it is
// decided at once. The host must be locked.
func (e *Evaluator) holdOrNotify(rs *ruleset, st *state, now time.Time, out *outbox) {
	if e.FamilySettle <= 0 {
		e.due(rs, st, now, out)
		return
	}
	e.hold(st, now)
}

// hold defers what is due for st by FamilySettle and indexes it for
// runHeld. The host must be locked.
func (e *Evaluator) hold(st *state, now time.Time) {
	st.hb.holdUntil = now.Add(e.FamilySettle)
	e.heldMu.Lock()
	e.held[Key{Host: st.host, Metric: st.metric}] = st.hb.holdUntil
	e.heldMu.Unlock()
}

// uninhibit holds (then notifies) the family alerts nobody was told about
// when heartbeat.host is OK again: a host back on IPv4 with IPv6 still
// DOWN is now a lost family. The host must be locked.
func (e *Evaluator) uninhibit(rs *ruleset, hs *hostState, now time.Time, out *outbox) {
	for _, m := range [...]string{HeartbeatIPv4, HeartbeatIPv6} {
		if st := hs.metrics[m]; st != nil && st.level != level.OK && st.count == 0 && !st.flapping {
			e.holdOrNotify(rs, st, now, out)
		}
	}
}

// settle ends flapping after a quiet flap window and notifies the level
// the metric settled at. The host must be locked.
func (e *Evaluator) settle(rs *ruleset, st *state, now time.Time, out *outbox) {
	st.flapping, st.changes = false, nil
	out.journal = append(out.journal, journalLine{st.host, fmt.Sprintf("%s %s stopped flapping at %s", st.host, st.metric, st.level)})
	st.count, st.lastNotified = 0, time.Time{}
	defer e.save(st)
	if st.level != level.OK && isFamily(st.metric) {
		e.holdOrNotify(rs, st, now, out)
		return
	}
	if e.silenced(st, now) {
		return
	}
	kind := KindChange
	if st.level == level.OK {
		kind = KindRecovery
	}
	e.notify(st, kind, st.flapLevel, now, out)
}

// due sends what the passing of time makes due for st: the held-back
// change notification of a non-OK level nobody was told about (its silence
// ended, its family settle delay passed, or its host alert ended), the
// held-back recovery of a host back on one family, or a renotify. Nothing
// is sent for a family alert while its host is not OK. The host must be
// locked.
func (e *Evaluator) due(rs *ruleset, st *state, now time.Time, out *outbox) {
	if st.hb != nil && st.hb.recoverDue {
		if st.held(now) {
			return
		}
		st.hb.recoverDue = false
		if st.level == level.OK && !e.silenced(st, now) {
			e.notify(st, KindRecovery, st.prevLevel, now, out)
			e.save(st)
		}
		return
	}
	if st.level == level.OK || st.flapping || st.ack || inhibited(st) {
		return
	}
	renotify := rs.cfg.Alerting.Renotify
	switch {
	case st.count == 0:
		if st.held(now) {
			return
		}
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
func (e *Evaluator) notify(st *state, kind string, prev level.Level, now time.Time, out *outbox) {
	st.count++
	st.lastNotified = now
	st.notifiedLevel = st.level
	st.lastKind, st.lastPrev = kind, prev
	out.events = append(out.events, e.eventOf(st, kind, prev, now))
}

// eventOf builds the event of st's notification number st.count. The same
// state gives the same event (and id) again: replay relies on it.
func (e *Evaluator) eventOf(st *state, kind string, prev level.Level, now time.Time) Event {
	detail := formatValue(st.lastValue)
	switch {
	case st.heartbeat || (st.clock && st.detail != ""):
		detail = st.detail
	case st.level == level.Unknown:
		detail = "no data since " + fromUnix(st.lastCheck).UTC().Format(time.RFC3339)
	}
	episode := st.episode
	if episode == 0 && kind == KindRecovery {
		episode = st.lastEpisode
	}
	since := fromUnix(st.since)
	limit, cmp := thresholdOf(st)
	return Event{
		Threshold:         limit,
		Comparison:        cmp,
		AckBy:             st.ackBy,
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
		EpisodeStart:      timeOf(episode),
		Text:              e.textOf(st, kind, now),
		NotificationCount: st.count,
		Acknowledged:      st.ack,
	}
}

// thresholdOf returns the limit an event of st reports and its operator
// (">=" or "<="): the limit of the current level, for OK the WARNING limit
// (else the CRITICAL one). The operator is "" without a rule, for heartbeat
// metrics and for UNKNOWN.
func thresholdOf(st *state) (float64, string) {
	if st.rule == nil || st.heartbeat || st.level == level.Unknown {
		return 0, ""
	}
	lim := limitOf(st.rule, st.level)
	if st.level == level.OK {
		if lim = st.rule.th.Warning; lim == nil {
			lim = st.rule.th.Critical
		}
	}
	if lim == nil {
		return 0, ""
	}
	if st.rule.th.Below {
		return *lim, "<="
	}
	return *lim, ">="
}

// timeOf is fromUnix with 0 as the zero time.
func timeOf(f float64) time.Time {
	if f == 0 {
		return time.Time{}
	}
	return fromUnix(f)
}
