package alert

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/glob"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/sdk/level"
)

// rule is one compiled threshold.
type rule struct {
	pat glob.Pattern
	th  config.Threshold
	// key is where the rule was configured, e.g. "thresholds.cpu_monitor.*"
	// or "watchhosts.web01.thresholds.cpu_monitor.*".
	key string
}

// ruleset is the compiled threshold configuration of one *config.Config.
type ruleset struct {
	cfg    *config.Config
	global []rule
	host   map[string][]rule
}

func compileRules(cfg *config.Config) (*ruleset, error) {
	rs := &ruleset{cfg: cfg, host: map[string][]rule{}}
	var err error
	if rs.global, err = compileList("thresholds", cfg.Thresholds); err != nil {
		return nil, err
	}
	for name, h := range cfg.Watchhosts {
		if len(h.Thresholds) == 0 {
			continue
		}
		if rs.host[name], err = compileList("watchhosts."+name+".thresholds", h.Thresholds); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

func compileList(prefix string, ts map[string]config.Threshold) ([]rule, error) {
	out := make([]rule, 0, len(ts))
	for src, th := range ts {
		pat, err := glob.Compile(src)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", prefix, src, err)
		}
		out = append(out, rule{pat: pat, th: th, key: prefix + "." + src})
	}
	// Most specific first, so the first match is the winner.
	sort.Slice(out, func(i, j int) bool { return moreSpecific(out[i].pat, out[j].pat) })
	return out, nil
}

// moreSpecific orders patterns by precedence: more literal bytes first,
// then the lexicographically smaller pattern.
func moreSpecific(a, b glob.Pattern) bool {
	if a.Literal() != b.Literal() {
		return a.Literal() > b.Literal()
	}
	return a.String() < b.String()
}

// resolve returns the rule for a host's metric path: the most specific
// matching per-host rule, else the most specific matching global rule, else
// nil.
func (rs *ruleset) resolve(host, path string) *rule {
	if strings.HasPrefix(path, protocol.AgentPlugin+".") {
		return rs.agentRule(host, path)
	}
	if r := firstMatch(rs.host[host], path); r != nil {
		return r
	}
	return firstMatch(rs.global, path)
}

// AgentOldestUnsent is the metric path of the age of the oldest sample
// waiting in a host agent's spool (its health sample, plugin "hbc").
const AgentOldestUnsent = protocol.AgentPlugin + "." + protocol.AgentOldestUnsent

// defaultAgentRule applies to hbc.oldest_unsent_seconds when no configured
// threshold does: a spool holding samples 10 minutes old is WARNING, an
// hour old CRITICAL.
var defaultAgentRule = &rule{
	th:  config.Threshold{Warning: ptr(600.0), Critical: ptr(3600.0)},
	key: "default (" + AgentOldestUnsent + ")",
}

// agentRule returns the rule for one of a host's agent health paths
// ("hbc.*"): the most specific configured threshold (per host, then
// global) whose pattern starts with "hbc." and matches it, else the
// default for hbc.oldest_unsent_seconds and none for the others. A
// catch-all such as "**", written for plugin metrics, does not apply: it
// would alert on hbc.last_send, a unix time.
func (rs *ruleset) agentRule(host, path string) *rule {
	for _, list := range [2][]rule{rs.host[host], rs.global} {
		for i := range list {
			if strings.HasPrefix(list[i].pat.String(), protocol.AgentPlugin+".") && list[i].pat.Match(path) {
				return &list[i]
			}
		}
	}
	if path == AgentOldestUnsent {
		return defaultAgentRule
	}
	return nil
}

func firstMatch(rules []rule, path string) *rule {
	for i := range rules {
		if rules[i].pat.Match(path) {
			return &rules[i]
		}
	}
	return nil
}

// watched reports whether a host is evaluated: configured in watchhosts, or
// dynamic with watch_dynamic on.
func (rs *ruleset) watched(host string, dyn func(string) bool) bool {
	if _, ok := rs.cfg.Watchhosts[host]; ok {
		return true
	}
	return rs.cfg.WatchDynamic && dyn(host)
}

// candidate returns the level (OK, WARNING or CRITICAL; UNKNOWN is never a
// threshold outcome, it only comes from missing data) a value points to
// while the metric is at level cur. A threshold the current level
// has reached is relaxed by the hysteresis, so leaving a level needs the
// value back past its threshold by that much.
func (r *rule) candidate(cur level.Level, v float64) level.Level {
	th := r.th
	past := func(limit *float64, lv level.Level) bool {
		if limit == nil {
			return false
		}
		h := 0.0
		if cur.Rank() >= lv.Rank() {
			h = th.Hysteresis
		}
		if th.Below {
			return v <= *limit+h
		}
		return v >= *limit-h
	}
	switch {
	case past(th.Critical, level.Critical):
		return level.Critical
	case past(th.Warning, level.Warning):
		return level.Warning
	}
	return level.OK
}

// need is how many consecutive samples a level change takes.
func (r *rule) need() int {
	if r.th.For < 1 {
		return 1
	}
	return r.th.For
}

// Heartbeat metric paths.
const (
	HeartbeatHost = "heartbeat.host"
	HeartbeatIPv4 = "heartbeat.ipv4"
	HeartbeatIPv6 = "heartbeat.ipv6"
	// heartbeatPlugin is reserved: samples of a plugin with this name are
	// ignored so they cannot collide with the heartbeat metrics.
	heartbeatPlugin = "heartbeat"
)

// heartbeatLevel maps a heartbeat state to a metric path, a level and the
// value shown as last_value (0 UP, 1 LATE or DEGRADED, 2 DOWN). The host's
// own metric is CRITICAL (alerting.heartbeat_down) only when it is DOWN: a
// DEGRADED host is OK, its lost family carries the alert. A LATE family is
// OK unless alerting.heartbeat_late names a level.
func heartbeatLevel(a config.Alerting, family heartbeat.Family, state heartbeat.State) (path string, lv level.Level, value float64, ok bool) {
	switch family {
	case "":
		path = HeartbeatHost
		switch state {
		case heartbeat.StateUp:
			return path, level.OK, 0, true
		case heartbeat.StateDegraded:
			return path, level.OK, 1, true
		case heartbeat.StateDown:
			return path, orDefault(a.HeartbeatDown, level.Critical), 2, true
		}
	case heartbeat.IPv4, heartbeat.IPv6:
		path = "heartbeat." + string(family)
		switch state {
		case heartbeat.StateUp:
			return path, level.OK, 0, true
		case heartbeat.StateLate:
			return path, orDefault(a.HeartbeatLate, level.OK), 1, true
		case heartbeat.StateDown:
			return path, orDefault(a.HeartbeatDown, level.Critical), 2, true
		}
	}
	return "", "", 0, false
}

// orDefault returns level when it is WARNING or CRITICAL, else def ("none"
// and "" mean the default).
func orDefault(lv string, def level.Level) level.Level {
	if l := level.Level(lv); l == level.Warning || l == level.Critical {
		return l
	}
	return def
}

// isFamily reports whether metric is a per-family heartbeat metric.
func isFamily(metric string) bool { return metric == HeartbeatIPv4 || metric == HeartbeatIPv6 }

// defaultClockRule applies to heartbeat.clock_offset_ms when no configured
// threshold does: WARNING from 1 s, CRITICAL from 60 s of offset either
// way; a level is entered after 3 consecutive estimates and left 250 ms
// inside its threshold, so estimation noise does not flap it.
var defaultClockRule = &rule{
	th:  config.Threshold{Warning: ptr(1000.0), Critical: ptr(60000.0), For: 3, Hysteresis: 250},
	key: "default (heartbeat.clock_offset_ms)",
}

func ptr[T any](v T) *T { return &v }

// clockRule returns the rule for a host's clock offset: the most specific
// configured threshold (per host, then global) whose pattern starts with
// "heartbeat." and matches heartbeat.clock_offset_ms, else the default. A
// catch-all such as "**", written for plugin metrics, does not apply.
func (rs *ruleset) clockRule(host string) *rule {
	for _, list := range [2][]rule{rs.host[host], rs.global} {
		for i := range list {
			if strings.HasPrefix(list[i].pat.String(), heartbeatPlugin+".") && list[i].pat.Match(HeartbeatClockOffset) {
				return &list[i]
			}
		}
	}
	return defaultClockRule
}

// ruleFor returns the rule of a host's metric: the clock rule for the clock
// offset, else what resolve finds (nil when no rule matches).
func (rs *ruleset) ruleFor(host, metric string) *rule {
	if metric == HeartbeatClockOffset {
		return rs.clockRule(host)
	}
	return rs.resolve(host, metric)
}
