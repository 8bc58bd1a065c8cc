package pluginhost

import "github.com/hbdmon/hbd/core/metrics"

// Metrics returns the plugin host's metric families for /metrics: plugin
// processes by binary and type, refused binaries, restarts and failed
// calls.
func (h *Host) Metrics() []metrics.Family {
	counter := func(name, help string, get func() uint64) metrics.Family {
		return metrics.Family{Name: name, Help: help, Counter: true,
			Collect: func(emit func(float64, ...string)) { emit(float64(get())) }}
	}
	return []metrics.Family{
		{Name: "hbd_notifier_plugins", Help: "Notifier plugin processes by binary and type (1 running).", Labels: []string{"binary", "type"},
			Collect: func(emit func(float64, ...string)) {
				for _, p := range h.Stats().Plugins {
					v := 0.0
					if p.Running {
						v = 1
					}
					emit(v, p.Binary, p.Type)
				}
			}},
		{Name: "hbd_notifier_plugins_refused", Help: "Binaries in plugins_dir that are not run.",
			Collect: func(emit func(float64, ...string)) { emit(float64(len(h.Stats().Refused))) }},
		counter("hbd_notifier_plugin_restarts_total", "Plugin restarts after a crash.", func() uint64 { return h.Stats().Restarts }),
		counter("hbd_notifier_plugin_start_failures_total", "Plugin starts that failed (every retry counts).", func() uint64 { return h.Stats().StartFailures }),
		{Name: "hbd_notifier_plugins_failing", Help: "Plugin binaries that currently fail to start.",
			Collect: func(emit func(float64, ...string)) {
				n := 0
				for _, p := range h.Stats().Plugins {
					if p.Failing != "" {
						n++
					}
				}
				emit(float64(n))
			}},
		counter("hbd_notifier_plugin_call_errors_total", "Failed plugin calls.", func() uint64 { return h.Stats().CallErrors }),
	}
}
