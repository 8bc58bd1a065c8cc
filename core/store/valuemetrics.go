package store

import (
	"sort"

	"github.com/hbdmon/hbd/core/metrics"
)

// ValueMetrics returns the families of the newest plugin values for
// /metrics: hbd_metric_value{host,plugin,path} (each metric path of each
// host's newest sample of each plugin, read from memory),
// hbd_metric_timestamp_seconds{host,plugin} (that sample's time) and
// hbd_metric_values_omitted (series left out by the cap). limit is read
// at every scrape: hosts in name order, plugins in name order, until the
// next sample's paths would pass limit; 0 exports none.
func (s *Store) ValueMetrics(limit func() int) []metrics.Family {
	return []metrics.Family{
		{Name: "hbd_metric_value", Help: "Newest value of each metric path a host's plugin reported (cpu_monitor.cpu_percent, memory_monitor.percent, ...); at most metrics_max_values series.", Labels: []string{"host", "plugin", "path"},
			Collect: func(emit func(float64, ...string)) {
				s.eachNewest(limit(), func(host, plugin string, smp Sample) {
					for i, p := range smp.Paths {
						emit(smp.Values[i], host, plugin, p)
					}
				}, nil)
			}},
		{Name: "hbd_metric_timestamp_seconds", Help: "Unix time of the newest sample of each host's plugin (as exported in hbd_metric_value).", Labels: []string{"host", "plugin"},
			Collect: func(emit func(float64, ...string)) {
				s.eachNewest(limit(), func(host, plugin string, smp Sample) { emit(smp.Timestamp, host, plugin) }, nil)
			}},
		{Name: "hbd_metric_values_omitted", Help: "Value series left out of hbd_metric_value by metrics_max_values.",
			Collect: func(emit func(float64, ...string)) {
				omitted := 0
				s.eachNewest(limit(), nil, &omitted)
				emit(float64(omitted))
			}},
	}
}

// eachNewest calls fn with the newest sample of every host's plugin, in
// order, until one would take the count of paths past limit; the paths of
// that sample and of every later one are added to *omitted.
func (s *Store) eachNewest(limit int, fn func(host, plugin string, smp Sample), omitted *int) {
	n, full := 0, false
	for _, host := range s.HostNames() {
		byPlugin := s.Plugins(host)
		plugins := make([]string, 0, len(byPlugin))
		for p := range byPlugin {
			plugins = append(plugins, p)
		}
		sort.Strings(plugins)
		for _, p := range plugins {
			smp := byPlugin[p].Latest
			full = full || n+len(smp.Paths) > limit
			if full {
				if omitted == nil {
					return
				}
				*omitted += len(smp.Paths)
				continue
			}
			n += len(smp.Paths)
			if fn != nil {
				fn(host, p, smp)
			}
		}
	}
}
