package alert

import (
	"math"
	"time"

	"github.com/hbdmon/hbd/sdk/level"
)

// HeartbeatClockOffset is the metric path of a host's clock offset against
// the daemon's clock, in milliseconds (positive: the host is ahead).
const HeartbeatClockOffset = "heartbeat.clock_offset_ms"

// clockRefused is the detail of a clock offset state whose host's
// heartbeats or batches are refused for it.
const clockRefused = "refused"

// ObserveClockOffset evaluates a host's estimated clock offset (positive:
// the host's clock is ahead of the daemon's). refused is true when the
// host's heartbeats or batches are being refused because of it. The
// heartbeat tracker reports an offset at most every few seconds per host,
// and at once when a heartbeat is refused for skew.
//
// The offset is the value of heartbeat.clock_offset_ms (milliseconds,
// signed); its size is compared with the threshold configured for that
// path (a pattern starting with "heartbeat."), by default WARNING from
// 1000 and CRITICAL from 60000, with the rule's `for` and hysteresis. A
// refused offset is CRITICAL at once. The state never goes stale and is
// never forgotten. Only watched hosts are evaluated.
func (e *Evaluator) ObserveClockOffset(host string, offset time.Duration, refused bool, at time.Time) {
	if e.stopped.Load() {
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
	if at.IsZero() {
		at = now
	}
	ts := toUnix(at)
	v := math.Round(float64(offset) / float64(time.Millisecond))
	var out outbox
	hs.mu.Lock()
	st := hs.metrics[HeartbeatClockOffset]
	if st == nil {
		st = &state{host: host, metric: HeartbeatClockOffset, hs: hs, clock: true, rule: rs.clockRule(host),
			level: level.OK, since: ts, lastSeen: now}
		hs.metrics[HeartbeatClockOffset] = st
	}
	switch {
	case st.lastCheck != 0 && ts <= st.lastCheck:
		// An older estimate than the one evaluated: superseded.
	case refused:
		st.detail = clockRefused
		st.lastValue, st.lastCheck, st.lastSeen = v, ts, now
		st.valueDirty = true
		st.resetStreaks()
		e.setLevel(rs, st, level.Critical, ts, now, "refused", &out)
	default:
		st.detail = ""
		e.observe(rs, hs, st, v, ts, now, &out)
	}
	e.release(hs, &out)
}
