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
// host's state and each connection's smoothed latency. A host awaiting its
// first heartbeat is neither up nor down and is left out.
func (t *Tracker) Metrics() []metrics.Family {
	return []metrics.Family{
		{Name: "hbd_host_up", Help: "1 when the host's heartbeat state is UP, 0.5 DEGRADED, 0 DOWN.", Labels: []string{"host"},
			Collect: func(emit func(float64, ...string)) {
				for _, h := range t.Hosts() {
					if h.State == "" {
						continue
					}
					v := 0.0
					switch h.State {
					case StateUp:
						v = 1
					case StateDegraded:
						v = 0.5
					}
					emit(v, h.Name)
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
