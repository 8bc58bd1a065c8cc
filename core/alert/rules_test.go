package alert

import (
	"testing"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/sdk/level"
)

// precedenceYAML is the worked example of docs/ALERTING.md.
const precedenceYAML = `
watchhosts:
  web01:
    key: 0123456789abcdef0123456789abcdef
    thresholds:
      "cpu_monitor.**": {warning: 95}
  db01:
    key: 0123456789abcdef0123456789abcdef
thresholds:
  "**": {warning: 1000}
  "cpu_monitor.*": {warning: 70}
  "cpu_monitor.cpu_percent": {warning: 80}
  "disk_monitor.*.percent": {warning: 85}
  "disk_monitor./.percent": {warning: 90}
  "net_monitor.e*.bytes": {warning: 1}
  "net_monitor.*0.bytes": {warning: 2}
`

func TestMostSpecificRuleWinsAndHostRulesBeatGlobal(t *testing.T) {
	cfg, err := config.Parse("precedence.yaml", []byte(precedenceYAML), []string{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := compileRules(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, path, want string }{
		{"db01", "cpu_monitor.cpu_percent", "thresholds.cpu_monitor.cpu_percent"}, // literal beats glob
		{"db01", "cpu_monitor.load_1min", "thresholds.cpu_monitor.*"},
		{"web01", "cpu_monitor.cpu_percent", "watchhosts.web01.thresholds.cpu_monitor.**"}, // host rule beats any global
		{"web01", "memory_monitor.percent", "thresholds.**"},                               // no host rule matches: global
		{"db01", "disk_monitor./.percent", "thresholds.disk_monitor./.percent"},
		{"db01", "disk_monitor./home.percent", "thresholds.disk_monitor.*.percent"},
		{"db01", "net_monitor.eth0.bytes", "thresholds.net_monitor.*0.bytes"}, // tie on 19 literal bytes: "*" < "e"
		{"db01", "net_monitor.eth1.bytes", "thresholds.net_monitor.e*.bytes"},
	} {
		r := rs.resolve(tc.host, tc.path)
		if r == nil || r.key != tc.want {
			got := "<nil>"
			if r != nil {
				got = r.key
			}
			t.Errorf("%s %s: rule %s, want %s", tc.host, tc.path, got, tc.want)
		}
	}
	noCatchAll := *cfg
	noCatchAll.Thresholds = map[string]config.Threshold{"cpu_monitor.*": {Warning: fp(1)}}
	rs, _ = compileRules(&noCatchAll)
	if r := rs.resolve("db01", "memory_monitor.percent"); r != nil {
		t.Errorf("unmatched path got %s", r.key)
	}
}

func TestCandidateAppliesHysteresisOnlyWhenLeaving(t *testing.T) {
	above := rule{th: config.Threshold{Warning: fp(80), Critical: fp(90), Hysteresis: 5}}
	below := rule{th: config.Threshold{Warning: fp(20), Critical: fp(10), Below: true, Hysteresis: 5}}
	for _, tc := range []struct {
		name string
		r    rule
		cur  level.Level
		v    float64
		want level.Level
	}{
		{"AboveEnterWarning", above, level.OK, 80, level.Warning},
		{"AboveNotYet", above, level.OK, 79.9, level.OK},
		{"AboveHoldWarning", above, level.Warning, 75, level.Warning},
		{"AboveLeaveWarning", above, level.Warning, 74.9, level.OK},
		{"AboveHoldCritical", above, level.Critical, 85, level.Critical},
		{"AboveCriticalToWarning", above, level.Critical, 84.9, level.Warning},
		{"AboveCriticalToOK", above, level.Critical, 70, level.OK},
		{"BelowEnterWarning", below, level.OK, 20, level.Warning},
		{"BelowHoldWarning", below, level.Warning, 25, level.Warning},
		{"BelowLeaveWarning", below, level.Warning, 25.1, level.OK},
		{"BelowEnterCritical", below, level.Warning, 10, level.Critical},
		{"BelowHoldCritical", below, level.Critical, 15, level.Critical},
	} {
		if got := tc.r.candidate(tc.cur, tc.v); got != tc.want {
			t.Errorf("%s: candidate(%s, %v) = %s, want %s", tc.name, tc.cur, tc.v, got, tc.want)
		}
	}
}

// hbc.oldest_unsent_seconds has a default rule; a threshold whose pattern
// starts with "hbc." replaces it (per host before global), a catch-all
// written for plugin metrics does not, and does not reach the agent's
// other paths either.
func TestAgentSpoolAgeHasADefaultRule(t *testing.T) {
	cfg, err := config.Parse("agent.yaml", []byte(`
watchhosts:
  web01:
    key: 0123456789abcdef0123456789abcdef
  laptop01:
    key: 0123456789abcdef0123456789abcdef
    thresholds:
      "hbc.oldest_*": {critical: 86400}
thresholds:
  "**": {warning: 1000}
`), []string{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := compileRules(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, path, want string }{
		{"web01", AgentOldestUnsent, "default (hbc.oldest_unsent_seconds)"},
		{"laptop01", AgentOldestUnsent, "watchhosts.laptop01.thresholds.hbc.oldest_*"},
		{"web01", "hbc.spool_bytes", ""}, // "**" is for plugin metrics
	} {
		if tc.want == "" {
			if r := rs.resolve(tc.host, tc.path); r != nil {
				t.Errorf("%s %s: rule %s, want none", tc.host, tc.path, r.key)
			}
			continue
		}
		if r := rs.resolve(tc.host, tc.path); r == nil || r.key != tc.want {
			t.Errorf("%s %s: rule %v, want %s", tc.host, tc.path, r, tc.want)
		}
	}
	r := rs.resolve("web01", AgentOldestUnsent)
	if got := r.candidate(level.OK, 599); got != level.OK {
		t.Errorf("599 s: %s, want OK", got)
	}
	if got := r.candidate(level.OK, 600); got != level.Warning {
		t.Errorf("600 s: %s, want WARNING", got)
	}
	if got := r.candidate(level.OK, 3600); got != level.Critical {
		t.Errorf("3600 s: %s, want CRITICAL", got)
	}
	cfg.Thresholds["hbc.oldest_unsent_seconds"] = config.Threshold{Warning: fp(60)}
	rs, _ = compileRules(cfg)
	if r := rs.resolve("web01", AgentOldestUnsent); r.key != "thresholds.hbc.oldest_unsent_seconds" {
		t.Errorf("global hbc. rule not applied: %s", r.key)
	}
}
