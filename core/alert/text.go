package alert

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/sdk/level"
)

// Texts say an alert in words, for people: notifications (Event.Text), the
// API (Status.Text), the journal and the log. Durations are rounded to
// seconds.
//
//	web02 is DOWN: no heartbeat for 2m10s (IPv4 and IPv6)
//	web02 is DOWN: clock 6m12s ahead of hbd
//	web02 is DOWN: never heard from (waiting since hbd started 30s ago)
//	web02 is UP again after 3m12s DOWN
//	web02 is reachable again over IPv4 after 3m12s DOWN (IPv6 still DOWN)
//	web02 lost IPv6: no heartbeat over IPv6 for 45s (IPv4 still UP)
//	web02 IPv6 is LATE: no heartbeat over IPv6 for 15s
//	web02 IPv6 is back after 1m0s
//	web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples
//	web01 cpu_monitor.cpu_percent back to OK at 42.1 (was CRITICAL for 5m3s)
//	web01 cpu_monitor.cpu_percent: no data for 5m0s (UNKNOWN)
//	web01 clock is 6m12s ahead of hbd: its heartbeats and batches are refused
//
// A renotify says "still": "web02 is still DOWN: …", "web01
// cpu_monitor.cpu_percent still 97.2 ≥ 95 (CRITICAL for 1h0m0s)".

// textOf says st in words for an event of kind, or with kind "" for the
// status (the current level). The host must be locked.
func (e *Evaluator) textOf(st *state, kind string, now time.Time) string {
	if kind == KindFlapping || (kind == "" && st.flapping) {
		return flappingText(st, now)
	}
	switch {
	case st.metric == HeartbeatHost:
		return e.hostText(st, kind, now)
	case isFamily(st.metric):
		return e.familyText(st, kind, now)
	case st.clock:
		return clockText(st, kind, now)
	}
	return thresholdText(st, kind, now)
}

// roundDur rounds to seconds, never below 0: "2m10s".
func roundDur(d time.Duration) string {
	return max(d, 0).Round(time.Second).String()
}

// famName is a family as people write it: "IPv4".
func famName(f heartbeat.Family) string {
	switch f {
	case heartbeat.IPv4:
		return "IPv4"
	case heartbeat.IPv6:
		return "IPv6"
	}
	return string(f)
}

func famNames(fs []heartbeat.Family) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, famName(f))
	}
	return out
}

// episodeFor is the start of the episode an event of kind is about.
func (st *state) episodeFor(kind string) float64 {
	if st.episode == 0 && kind == KindRecovery {
		return st.lastEpisode
	}
	return st.episode
}

// episodeLength is how long the episode of a recovery lasted: from its
// start to the recovery.
func (st *state) episodeLength(kind string) string {
	start := st.episodeFor(kind)
	if start == 0 {
		return "?"
	}
	return roundDur(fromUnix(st.since).Sub(fromUnix(start)))
}

// silence says how long no heartbeat came: "for 2m10s", or, when none ever
// came, since when hbd waits for one.
func (e *Evaluator) silence(seen time.Time, now time.Time) string {
	if seen.IsZero() {
		return "never heard from (waiting since hbd started " + roundDur(now.Sub(e.startedAt)) + " ago)"
	}
	return "no heartbeat for " + roundDur(now.Sub(seen))
}

func (e *Evaluator) hostText(st *state, kind string, now time.Time) string {
	h := st.host
	switch {
	case kind == KindRecovery || (kind == "" && st.level == level.OK):
		up, down := familiesByState(st.hs)
		if st.hb.state == heartbeat.StateDegraded && len(up) > 0 && len(down) > 0 {
			if kind == KindRecovery {
				return h + " is reachable again over " + join(up) + " after " + st.episodeLength(kind) + " DOWN (" + join(down) + " still DOWN)"
			}
			return h + " is DEGRADED: " + join(down) + " DOWN (" + join(up) + " UP)"
		}
		if st.hb.state == heartbeat.StateDegraded {
			if kind == KindRecovery {
				return h + " is reachable again after " + st.episodeLength(kind) + " DOWN (DEGRADED)"
			}
			return h + " is DEGRADED"
		}
		if kind == KindRecovery {
			return h + " is UP again after " + st.episodeLength(kind) + " DOWN"
		}
		return h + " is UP"
	}
	is := " is DOWN: "
	if kind == KindRenotify {
		is = " is still DOWN: "
	}
	if st.hb.reason != "" {
		return h + is + st.hb.reason
	}
	if !st.hb.observed {
		// Restored after a restart: the tracker has not reported yet.
		return h + strings.TrimSuffix(is, ": ") + " for " + roundDur(now.Sub(fromUnix(st.since)))
	}
	s := h + is + e.silence(st.hb.seen, now)
	if len(st.hb.fams) > 0 && !st.hb.seen.IsZero() {
		s += " (" + join(st.hb.fams) + ")"
	}
	return s
}

// familiesByState lists the families of a host whose heartbeat metric is
// UP or LATE, and those that are DOWN. The host must be locked.
func familiesByState(hs *hostState) (up, down []string) {
	for _, f := range [...]heartbeat.Family{heartbeat.IPv4, heartbeat.IPv6} {
		st := hs.metrics["heartbeat."+string(f)]
		if st == nil {
			continue
		}
		switch st.hb.state {
		case heartbeat.StateUp, heartbeat.StateLate:
			up = append(up, famName(f))
		case heartbeat.StateDown:
			down = append(down, famName(f))
		}
	}
	return up, down
}

func join(names []string) string { return strings.Join(names, " and ") }

func (e *Evaluator) familyText(st *state, kind string, now time.Time) string {
	f := familyOf(st.metric)
	fam := famName(f)
	h := st.host
	if kind == KindRecovery {
		return h + " " + fam + " is back after " + st.episodeLength(kind)
	}
	switch st.hb.state {
	case heartbeat.StateLate:
		if !st.hb.observed || st.hb.seen.IsZero() {
			return h + " " + fam + " is LATE"
		}
		return h + " " + fam + " is LATE: no heartbeat over " + fam + " for " + roundDur(now.Sub(st.hb.seen))
	case heartbeat.StateDown:
	default:
		if st.level == level.OK {
			return h + " " + fam + " is UP"
		}
		return h + " " + fam + " is " + string(st.level)
	}
	s := h + " lost " + fam + ": "
	if kind == KindRenotify {
		s = h + " " + fam + " is still DOWN: "
	}
	switch {
	case st.hb.reason != "":
		s += st.hb.reason
	case !st.hb.observed:
		// Restored after a restart: the tracker has not reported yet.
		s += "DOWN for " + roundDur(now.Sub(fromUnix(st.since)))
	case st.hb.seen.IsZero():
		s += "no heartbeat over " + fam + " since hbd started " + roundDur(now.Sub(e.startedAt)) + " ago"
	default:
		s += "no heartbeat over " + fam + " for " + roundDur(now.Sub(st.hb.seen))
	}
	other := heartbeat.IPv6
	if f == heartbeat.IPv6 {
		other = heartbeat.IPv4
	}
	if o := st.hs.metrics["heartbeat."+string(other)]; o != nil {
		switch o.hb.state {
		case heartbeat.StateUp:
			s += " (" + famName(other) + " still UP)"
		case heartbeat.StateLate:
			s += " (" + famName(other) + " LATE)"
		case heartbeat.StateDown:
			s += " (" + famName(other) + " DOWN too)"
		}
	}
	return s
}

// num formats a value for people: whole numbers as such, others to two
// decimals, small ones to three significant digits.
func num(v float64) string {
	switch a := math.Abs(v); {
	case v == math.Trunc(v) && a < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1:
		return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// limitOf returns the threshold of a level of r, nil when it has none.
func limitOf(r *rule, lv level.Level) *float64 {
	switch lv {
	case level.Critical:
		return r.th.Critical
	case level.Warning:
		return r.th.Warning
	}
	return nil
}

func (r *rule) cmp() string {
	if r.th.Below {
		return " ≤ "
	}
	return " ≥ "
}

func thresholdText(st *state, kind string, now time.Time) string {
	name := st.host + " " + st.metric
	v := num(st.lastValue)
	switch {
	case kind == KindRecovery:
		return name + " back to OK at " + v + " (was " + string(orLevel(st.worst, st.prevLevel)) + " for " + st.episodeLength(kind) + ")"
	case st.level == level.Unknown:
		s := name + ": no data for " + roundDur(noData(st, now)) + " (UNKNOWN)"
		if kind == KindRenotify {
			s = name + " still has no data after " + roundDur(noData(st, now)) + " (UNKNOWN)"
		}
		return s
	case st.level == level.OK || st.rule == nil:
		return name + " " + v + " (" + string(st.level) + ")"
	}
	lim := limitOf(st.rule, st.level)
	var cmp string
	switch {
	case lim == nil:
		cmp = v
	case st.rule.candidate(level.OK, st.lastValue).Rank() < st.level.Rank():
		// Held by the hysteresis or `for`: the value no longer passes.
		cmp = v + ", level reached at" + st.rule.cmp() + num(*lim)
	default:
		cmp = v + st.rule.cmp() + num(*lim)
	}
	if kind == KindRenotify {
		return name + " still " + cmp + " (" + string(st.level) + " for " + roundDur(now.Sub(fromUnix(st.since))) + ")"
	}
	s := name + " " + cmp + " (" + string(st.level) + ")"
	if n := st.rule.need(); n > 1 {
		s += " for " + strconv.Itoa(n) + " samples"
	}
	return s
}

// orLevel is level, or def when level is empty.
func orLevel(lv, def level.Level) level.Level {
	if lv == "" {
		return def
	}
	return lv
}

// noData is how long a metric has had no data: since its last sample by
// the evaluator's clock or by the sample's own time, whichever is longer
// (after a restart only the latter knows).
func noData(st *state, now time.Time) time.Duration {
	d := now.Sub(st.lastSeen)
	if st.lastCheck > 0 {
		d = max(d, now.Sub(fromUnix(st.lastCheck)))
	}
	return d
}

func flappingText(st *state, now time.Time) string {
	s := st.host + " " + st.metric + " is flapping"
	if n := len(st.changes); n > 0 {
		s += " (" + strconv.Itoa(n) + " level changes in " + roundDur(now.Sub(st.changes[0])) + ")"
	}
	s += ", now " + string(st.level)
	if !st.heartbeat && st.level != level.Unknown {
		s += " at " + num(st.lastValue)
	}
	return s
}

// offsetWords says a clock offset in milliseconds: "6m12s ahead of hbd",
// "1.5s behind hbd", "in sync with hbd".
func offsetWords(ms float64) string {
	d := time.Duration(math.Abs(ms) * float64(time.Millisecond))
	var s string
	switch {
	case d < time.Millisecond:
		return "in sync with hbd"
	case d < time.Second:
		s = d.Round(time.Millisecond).String()
	case d < time.Minute:
		s = d.Round(100 * time.Millisecond).String()
	default:
		s = d.Round(time.Second).String()
	}
	if ms > 0 {
		return s + " ahead of hbd"
	}
	return s + " behind hbd"
}

// msWords says a threshold in milliseconds as a duration: "1s", "1m0s".
func msWords(ms float64) string {
	return time.Duration(ms * float64(time.Millisecond)).String()
}

func clockText(st *state, kind string, now time.Time) string {
	h := st.host + " clock is "
	if kind == KindRenotify {
		h = st.host + " clock is still "
	}
	off := offsetWords(st.lastValue)
	switch {
	case kind == KindRecovery:
		return st.host + " clock is back in sync: " + off + " (was " + string(orLevel(st.worst, st.prevLevel)) + " for " + st.episodeLength(kind) + ")"
	case st.detail == clockRefused:
		return h + off + ": its heartbeats and batches are refused"
	case st.level == level.OK || st.rule == nil:
		return h + off + " (" + string(st.level) + ")"
	}
	if lim := limitOf(st.rule, st.level); lim != nil {
		return h + off + " (" + string(st.level) + ": offset ≥ " + msWords(*lim) + ")"
	}
	return h + off + " (" + string(st.level) + ")"
}
