package alert

import (
	"sync/atomic"

	"github.com/hbdmon/hbd/core/config"
)

// Threshold is the threshold rule that applies to one metric of a host, as
// the API serves it to the charts.
type Threshold struct {
	Warning  *float64 `json:"warning"`
	Critical *float64 `json:"critical"`
	// Below is true when the level rises as the value falls.
	Below bool `json:"below"`
	// For is how many consecutive samples a level change takes.
	For int `json:"for"`
	// Rule is where it is configured, e.g. "thresholds.cpu_monitor.*".
	Rule string `json:"rule"`
}

// lookupRules is the ruleset ThresholdsFor compiled last (read-only once
// compiled, like the evaluator's).
var lookupRules atomic.Pointer[ruleset]

// ThresholdsFor resolves, for each metric path ("plugin.key...") of host,
// the rule the evaluator applies to it (the most specific per-host rule,
// else the most specific global one). Paths without a rule are left out.
// The rules are compiled once per config (a reload makes a new one), not
// per call: the plugin pages call this on every read.
func ThresholdsFor(cfg *config.Config, host string, paths []string) (map[string]Threshold, error) {
	rs := lookupRules.Load()
	if rs == nil || rs.cfg != cfg {
		var err error
		if rs, err = compileRules(cfg); err != nil {
			return nil, err
		}
		lookupRules.Store(rs)
	}
	out := map[string]Threshold{}
	for _, p := range paths {
		if r := rs.resolve(host, p); r != nil {
			out[p] = Threshold{Warning: r.th.Warning, Critical: r.th.Critical, Below: r.th.Below, For: r.need(), Rule: r.key}
		}
	}
	return out, nil
}
