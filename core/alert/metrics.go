package alert

import (
	"github.com/hbdmon/hbd/core/metrics"
	"github.com/hbdmon/hbd/sdk/level"
)

// Metrics returns the evaluator's metric families for /metrics: evaluated
// metrics by level, and the level of each non-OK alert.
func (e *Evaluator) Metrics() []metrics.Family {
	return []metrics.Family{
		{Name: "hbd_alerts", Help: "Evaluated metrics by alert level.", Labels: []string{"level"},
			Collect: func(emit func(float64, ...string)) {
				counts := map[level.Level]float64{level.OK: 0, level.Warning: 0, level.Critical: 0, level.Unknown: 0}
				for _, h := range e.EvaluatedHosts() {
					for _, st := range e.HostAlerts(h) {
						counts[st.Level]++
					}
				}
				for lv, n := range counts {
					emit(n, string(lv))
				}
			}},
		{Name: "hbd_alert_level", Help: "Level of each non-OK alert by severity rank (sdk/level): 1 UNKNOWN, 2 WARNING, 3 CRITICAL.", Labels: []string{"host", "metric"},
			Collect: func(emit func(float64, ...string)) {
				for _, st := range e.ActiveAlerts() {
					emit(float64(st.Level.Rank()), st.Host, st.MetricPath)
				}
			}},
	}
}
