package api

import "github.com/hbdmon/hbd/core/metrics"

// Metrics returns the API's metric families for /metrics: how many hosts
// hbd knows (configured or reported).
func (s *Server) Metrics() []metrics.Family {
	return []metrics.Family{
		{Name: "hbd_hosts_known", Help: "Hosts configured or reported.",
			Collect: func(emit func(float64, ...string)) { emit(float64(len(s.HostNames()))) }},
	}
}
