package api

import "github.com/hbdmon/hbd/core/metrics"

// Metrics returns the API's metric families for /metrics: how many hosts
// hbd knows (configured or reported), and each agent's newest health
// (hbd_agent_*, one series per host and field).
func (s *Server) Metrics() []metrics.Family {
	return append([]metrics.Family{
		{Name: "hbd_hosts_known", Help: "Hosts configured or reported.",
			Collect: func(emit func(float64, ...string)) { emit(float64(len(s.HostNames()))) }},
	}, s.agentMetrics()...)
}
