package alert

// Reconciliation: a new configuration re-evaluates every state.

import (
	"math"
	"strings"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/sdk/level"
)

// Reload swaps in a new configuration: every metric's last value is
// re-evaluated against the new rules at once (ignoring `for`), states no
// rule matches any more and states of hosts no longer watched are dropped,
// and metrics newly matched get a state from their latest stored sample.
func (e *Evaluator) Reload(cfg *config.Config) error {
	rs, err := compileRules(cfg)
	if err != nil {
		return err
	}
	if err := e.setWindows(cfg); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules = rs
	if e.leader != nil && e.follower.Load() && !e.taking.Load() {
		// A follower decides nothing: its mirror is read again, with
		// the new rules (the leader reconciles the states).
		e.leadGen.Add(1)
		return nil
	}
	e.reconcile(rs, e.now())
	return nil
}

// reconcile re-evaluates every state against rs. e.mu must be held for
// writing.
func (e *Evaluator) reconcile(rs *ruleset, now time.Time) {
	var out outbox
	var dropped []Key
	e.hmu.Lock()
	for name, hs := range e.hosts {
		if !rs.watched(name, e.dyn) {
			for m, st := range hs.metrics {
				dropped = append(dropped, Key{Host: name, Metric: m})
				e.active.remove(st)
			}
			delete(e.hosts, name)
		}
	}
	e.hmu.Unlock()
	watched := map[string]bool{}
	for name := range rs.cfg.Watchhosts {
		watched[name] = true
	}
	if rs.cfg.WatchDynamic {
		for _, name := range e.repo.DynamicHostNames() {
			watched[name] = true
		}
	}
	for name := range watched {
		hs := e.hostState(name, true)
		hs.mu.Lock()
		plugins := hs.pluginNames()
		hs.plugins = map[string]map[string]*state{}
		for m, st := range hs.metrics {
			if st.heartbeat {
				if _, lv, _, ok := heartbeatLevel(rs.cfg.Alerting, familyOf(m), st.hb.state); ok && lv != st.level {
					e.setLevel(rs, st, lv, toUnix(now), now, st.detail, &out)
				}
				continue
			}
			r := rs.ruleFor(name, m)
			if r == nil {
				delete(hs.metrics, m)
				e.active.remove(st)
				dropped = append(dropped, Key{Host: name, Metric: m})
				continue
			}
			st.rule = r
			st.resetStreaks()
			if st.level != level.Unknown {
				e.jump(rs, st, toUnix(now), now, &out)
			}
		}
		// Metrics the new rules match for the first time start from the
		// latest sample the store holds, unless it is already stale.
		for _, smp := range e.latest(name, plugins) {
			if a := rs.cfg.Alerting.StaleAfter; a > 0 && now.Sub(fromUnix(smp.Timestamp)) >= a {
				continue
			}
			for i, p := range smp.Paths {
				m := smp.Plugin + "." + p
				v := smp.Values[i]
				if hs.metrics[m] != nil || math.IsNaN(v) || math.IsInf(v, 0) {
					continue
				}
				st := e.resolveState(rs, hs, m, smp.Timestamp, now)
				if st == nil {
					continue
				}
				st.lastValue, st.lastCheck = v, smp.Timestamp
				st.valueDirty = true
				e.jump(rs, st, smp.Timestamp, now, &out)
			}
		}
		if len(hs.metrics) == 0 {
			e.hmu.Lock()
			delete(e.hosts, name)
			e.hmu.Unlock()
		}
		e.release(hs, &out)
	}
	if len(dropped) > 0 {
		e.episodesGone(dropped, toUnix(now))
		e.pendMu.Lock()
		for _, k := range dropped {
			e.pending = append(e.pending, pendingOp{row: SavedState{Host: k.Host, Metric: k.Metric}, del: true})
		}
		e.pendMu.Unlock()
		e.log.Info("dropped alert states no rule matches any more", "count", len(dropped))
	}
}

// pluginNames returns the plugins a host is known to report, from the
// path cache and the metric paths of its states. hs must be locked.
func (hs *hostState) pluginNames() []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if p != heartbeatPlugin && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for p := range hs.plugins {
		add(p)
	}
	for m := range hs.metrics {
		p, _, _ := strings.Cut(m, ".")
		add(p)
	}
	return out
}

// latest returns the newest stored sample of each plugin of a host: of the
// given plugins, or, when none are known (a host the evaluator has not
// seen since it started), of every plugin the store has for it.
func (e *Evaluator) latest(host string, plugins []string) []Sample {
	out := e.repo.LatestSamples(host, plugins)
	if len(plugins) == 0 {
		// The heartbeat plugin is reserved (ObserveSamples ignores it).
		keep := out[:0]
		for _, smp := range out {
			if smp.Plugin != heartbeatPlugin {
				keep = append(keep, smp)
			}
		}
		out = keep
	}
	return out
}

// familyOf is the family of a family heartbeat metric, "" for others.
func familyOf(metric string) heartbeat.Family {
	switch metric {
	case HeartbeatIPv4:
		return heartbeat.IPv4
	case HeartbeatIPv6:
		return heartbeat.IPv6
	}
	return ""
}
