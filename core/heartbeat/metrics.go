package heartbeat

import "github.com/hbdmon/hbd/core/metrics"

// Metrics returns the heartbeat listener's metric families for /metrics:
// datagrams received, accepted, acked and dropped by reason.
func (s *Server) Metrics() []metrics.Family {
	return []metrics.Family{
		{Name: "hbd_heartbeats_received_total", Help: "Heartbeat datagrams received.", Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(s.Stats().Received)) }},
		{Name: "hbd_heartbeats_accepted_total", Help: "Heartbeats verified and applied.", Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(s.Stats().Accepted)) }},
		{Name: "hbd_heartbeats_acked_total", Help: "Heartbeat acks sent.", Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(s.Stats().Acked)) }},
		{Name: "hbd_heartbeats_dropped_total", Help: "Heartbeats dropped, by reason.", Counter: true, Labels: []string{"reason"},
			Collect: func(emit func(float64, ...string)) {
				for r, n := range s.Stats().Dropped {
					emit(float64(n), string(r))
				}
			}},
	}
}

// Metrics returns the tracker's metric families for /metrics: each heard
// host's state (hbd_host_up 0/1 per address family and for any family,
// hbd_host_state one 0/1 series per state, so DEGRADED is its own signal),
// each connection's smoothed latency, and when each host was last heard. A host awaiting its first
// heartbeat is neither up nor down and is left out.
func (t *Tracker) Metrics() []metrics.Family {
	states := []State{StateUp, StateDegraded, StateDown}
	return []metrics.Family{
		{Name: "hbd_host_up", Help: "1 while heartbeats of the host arrive over the address family (ipv4, ipv6: UP or LATE; any: some family up, host UP or DEGRADED), 0 when DOWN.", Labels: []string{"host", "family"},
			Collect: func(emit func(float64, ...string)) {
				for _, h := range t.Hosts() {
					if h.State == "" {
						continue
					}
					emit(b2f(h.State != StateDown), h.Name, familyAny)
					for _, c := range h.Connections {
						emit(b2f(c.State != StateDown), h.Name, string(c.Family))
					}
				}
			}},
		{Name: "hbd_host_state", Help: "1 for the host's heartbeat state (UP, DEGRADED: some family DOWN, another up; DOWN), 0 for the others.", Labels: []string{"host", "state"},
			Collect: func(emit func(float64, ...string)) {
				for _, h := range t.Hosts() {
					if h.State == "" {
						continue
					}
					for _, s := range states {
						emit(b2f(h.State == s), h.Name, string(s))
					}
				}
			}},
		{Name: "hbd_host_last_seen_timestamp_seconds", Help: "Unix time of the host's newest accepted heartbeat, over any address family.", Labels: []string{"host"},
			Collect: func(emit func(float64, ...string)) {
				for _, h := range t.Hosts() {
					if h.LastSeen > 0 {
						emit(h.LastSeen, h.Name)
					}
				}
			}},
		{Name: "hbd_connection_latency_seconds", Help: "Smoothed heartbeat round-trip time per address family.", Labels: []string{"host", "family"},
			Collect: func(emit func(float64, ...string)) {
				for _, h := range t.Hosts() {
					for _, c := range h.Connections {
						emit(c.LatencyAvgMS/1000, h.Name, string(c.Family))
					}
				}
			}},
	}
}

// familyAny is the family label of hbd_host_up for the host as a whole:
// up while heartbeats arrive over some address family.
const familyAny = "any"

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Metrics returns the shared liveness's metric families for /metrics:
// flushes and the rows they carried, claims by result, the other daemons'
// rows merged, and the rows waiting for the next flush.
func (s *Shared) Metrics() []metrics.Family {
	counter := func(name, help string, v func(SharedStats) uint64) metrics.Family {
		return metrics.Family{Name: name, Help: help, Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(v(s.Stats()))) }}
	}
	return []metrics.Family{
		counter("hbd_heartbeat_shared_flushes_total", "Flushes of heartbeat liveness to the shared store (one statement each).",
			func(st SharedStats) uint64 { return st.Flushes }),
		counter("hbd_heartbeat_shared_rows_total", "Liveness rows flushed (at most one per host and family per flush).",
			func(st SharedStats) uint64 { return st.Rows }),
		counter("hbd_heartbeat_shared_flush_errors_total", "Failed flushes of heartbeat liveness (their rows wait for the next).",
			func(st SharedStats) uint64 { return st.FlushErrors }),
		counter("hbd_heartbeat_shared_overflow_total", "Liveness rows and session claims dropped because the shared queue was full.",
			func(st SharedStats) uint64 { return st.Overflow }),
		counter("hbd_heartbeat_shared_merged_total", "Liveness rows of other daemons read from the shared store.",
			func(st SharedStats) uint64 { return st.Merged }),
		{Name: "hbd_heartbeat_session_claims_total", Help: "Agent session claims asked of the shared store, by result.", Counter: true, Labels: []string{"result"},
			Collect: func(emit func(float64, ...string)) {
				st := s.Stats()
				emit(float64(st.Granted), "granted")
				emit(float64(st.Refused), "refused")
				emit(float64(st.ClaimErrors), "error")
			}},
		{Name: "hbd_heartbeat_shared_pending", Help: "Liveness rows waiting for the next flush.",
			Collect: func(emit func(float64, ...string)) { emit(float64(s.Pending())) }},
	}
}
