package alert

import "github.com/hbdmon/hbd/core/config"

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

// ThresholdsFor resolves, for each metric path ("plugin.key...") of host,
// the rule the evaluator applies to it (the most specific per-host rule,
// else the most specific global one). Paths without a rule are left out.
func ThresholdsFor(cfg *config.Config, host string, paths []string) (map[string]Threshold, error) {
	rs, err := compileRules(cfg)
	if err != nil {
		return nil, err
	}
	out := map[string]Threshold{}
	for _, p := range paths {
		if r := rs.resolve(host, p); r != nil {
			out[p] = Threshold{Warning: r.th.Warning, Critical: r.th.Critical, Below: r.th.Below, For: r.need(), Rule: r.key}
		}
	}
	return out, nil
}
