package alert

import "time"

// HeartbeatClockOffset is the metric path of a host's clock offset against
// the daemon's clock, in milliseconds (positive: the host is ahead).
const HeartbeatClockOffset = "heartbeat.clock_offset_ms"

// ObserveClockOffset evaluates a host's estimated clock offset (positive:
// the host's clock is ahead of the daemon's). refused is true when the
// host's heartbeats or batches are being refused because of it. The
// heartbeat tracker reports an offset at most every few seconds per host,
// and at once when a heartbeat is refused for skew.
func (e *Evaluator) ObserveClockOffset(host string, offset time.Duration, refused bool, at time.Time) {
	// Contract stub: the evaluation lands with the liveness work (issue 9).
}
