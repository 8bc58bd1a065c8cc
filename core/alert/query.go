package alert

// Queries: the views of the alert states the API serves.

import (
	"sort"
	"time"

	"github.com/hbdmon/hbd/sdk/level"
)

// Status is the view of one alert state served by the API.
type Status struct {
	Host              string
	MetricPath        string
	Level             level.Level
	Since             float64 // unix seconds
	LastValue         float64
	LastCheck         float64 // unix seconds
	NotificationCount int
	Acknowledged      bool
	AcknowledgedBy    string
	// SilencedUntil is the end of the longest active silence matching the
	// state (unix seconds), 0 when none does.
	SilencedUntil float64
	Flapping      bool
	// EpisodeStart is when the metric left OK (unix seconds); 0 while OK.
	EpisodeStart float64
	// Text says the state in words, like Event.Text.
	Text string
}

// HostAlerts returns every evaluated metric of a host, sorted by metric
// path; empty when the host is not evaluated.
func (e *Evaluator) HostAlerts(host string) []Status {
	hs := e.hostState(host, false)
	out := []Status{}
	if hs == nil {
		return out
	}
	now := e.now()
	hs.mu.Lock()
	for _, st := range hs.metrics {
		out = append(out, e.status(st, now))
	}
	hs.mu.Unlock()
	e.addSilences(out, now)
	sort.Slice(out, func(i, j int) bool { return out[i].MetricPath < out[j].MetricPath })
	return out
}

// ActiveAlerts returns every state that is not OK, most severe first, then
// oldest first (then by host and metric path).
func (e *Evaluator) ActiveAlerts() []Status { return e.ActivePage(AlertQuery{}).Alerts }

// EvaluatedHosts returns the hosts being evaluated: every watchhosts entry,
// plus dynamic hosts the store knows when watch_dynamic is on. Sorted.
func (e *Evaluator) EvaluatedHosts() []string {
	e.mu.RLock()
	cfg := e.rules.cfg
	e.mu.RUnlock()
	var out []string
	for name := range cfg.Watchhosts {
		out = append(out, name)
	}
	if cfg.WatchDynamic {
		for _, name := range e.repo.DynamicHostNames() {
			if _, ok := cfg.Watchhosts[name]; !ok {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// EvaluatedHostCount counts the evaluated hosts (EvaluatedHosts) that
// visible accepts (nil: all), without listing or sorting them. With
// visible nil it costs the watchhosts entries, not the fleet: the dynamic
// hosts are counted by the store, less those also listed in watchhosts.
func (e *Evaluator) EvaluatedHostCount(visible func(host string) bool) int {
	e.mu.RLock()
	cfg := e.rules.cfg
	e.mu.RUnlock()
	n := 0
	if visible == nil {
		n = len(cfg.Watchhosts)
		if cfg.WatchDynamic {
			n += e.repo.DynamicHosts()
			for name := range cfg.Watchhosts {
				if e.repo.IsDynamicHost(name) {
					n--
				}
			}
		}
		return n
	}
	for name := range cfg.Watchhosts {
		if visible(name) {
			n++
		}
	}
	if cfg.WatchDynamic {
		for _, name := range e.repo.DynamicHostNames() {
			if _, ok := cfg.Watchhosts[name]; !ok && (visible == nil || visible(name)) {
				n++
			}
		}
	}
	return n
}

// Evaluated reports whether a host is being evaluated.
func (e *Evaluator) Evaluated(host string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.rules.watched(host, e.dyn)
}

// status is the API view of st; the host must be locked.
func (e *Evaluator) status(st *state, now time.Time) Status {
	return Status{
		Host: st.host, MetricPath: st.metric, Level: st.level, Since: st.since,
		LastValue: st.lastValue, LastCheck: st.lastCheck, NotificationCount: st.count,
		Acknowledged: st.ack, AcknowledgedBy: st.ackBy, Flapping: st.flapping,
		EpisodeStart: st.episode, Text: e.textOf(st, "", now),
	}
}
