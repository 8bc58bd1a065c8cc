package alert

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/sdk/level"
)

// bruteActive is the active list computed the way it was before the
// index: every state of every host, non-OK ones sorted most severe first,
// then oldest, then by host and metric.
func bruteActive(e *Evaluator) []Status {
	var out []Status
	for _, hs := range e.hostList() {
		for _, st := range e.HostAlerts(hs.name) {
			if st.Level != level.OK {
				out = append(out, st)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ra, rb := a.Level.Rank(), b.Level.Rank(); ra != rb {
			return ra > rb
		}
		if a.Since != b.Since {
			return a.Since < b.Since
		}
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return a.MetricPath < b.MetricPath
	})
	return out
}

func keys(list []Status) []string {
	out := []string{}
	for _, s := range list {
		out = append(out, fmt.Sprintf("%s %s %s %v", s.Host, s.MetricPath, s.Level, s.Since))
	}
	return out
}

// checkIndex compares the index's answers (whole list, counts, pages,
// filters) with the brute-force walk.
func checkIndex(t *testing.T, h *harness, step string) {
	t.Helper()
	want := bruteActive(h.ev)
	got := h.ev.ActivePage(AlertQuery{})
	if !eq(keys(got.Alerts), keys(want)) {
		t.Fatalf("%s: active list\n%v\nwant\n%v", step, keys(got.Alerts), keys(want))
	}
	var n Counts
	for _, s := range want {
		n.add(s.Level, 1)
	}
	if got.Summary != n || got.Matched != len(want) {
		t.Fatalf("%s: summary %+v matched %d, want %+v %d", step, got.Summary, got.Matched, n, len(want))
	}
	// A visibility rule, a host filter, a level filter and a page.
	visible := func(h string) bool { return !strings.HasSuffix(h, "3") }
	host := func(h string) bool { return strings.HasPrefix(h, "web") }
	var vis, sel []Status
	var vn Counts
	for _, s := range want {
		if visible(s.Host) {
			vn.add(s.Level, 1)
			if host(s.Host) && s.Level != level.Warning {
				sel = append(sel, s)
			}
		}
		vis = append(vis, s)
	}
	for _, off := range []int{0, 1, 3, len(sel), len(sel) + 5} {
		p := h.ev.ActivePage(AlertQuery{Visible: visible, Host: host, Levels: []level.Level{level.Critical, level.Unknown}, Offset: off, Limit: 2})
		page := sel[min(off, len(sel)):]
		page = page[:min(2, len(page))]
		if !eq(keys(p.Alerts), keys(page)) || p.Matched != len(sel) || p.Summary != vn {
			t.Fatalf("%s: page at %d: %v matched %d summary %+v\nwant %v matched %d summary %+v", step, off, keys(p.Alerts), p.Matched, p.Summary, keys(page), len(sel), vn)
		}
	}
	// Unfiltered pages slice the whole list.
	for _, off := range []int{0, 2, len(vis)} {
		p := h.ev.ActivePage(AlertQuery{Offset: off, Limit: 3})
		page := vis[min(off, len(vis)):]
		page = page[:min(3, len(page))]
		if !eq(keys(p.Alerts), keys(page)) || p.Matched != len(vis) {
			t.Fatalf("%s: unfiltered page at %d: %v, want %v", step, off, keys(p.Alerts), keys(page))
		}
	}
}

// The index of non-OK states follows every way a state changes level or
// goes away: samples, heartbeats, staleness, forgetting, a reload that
// drops a rule or a host, and a restart that loads the states.
func TestActiveIndexFollowsEveryChange(t *testing.T) {
	cfg := baseConfig()
	cfg.Alerting.ForgetAfter = time.Hour
	cfg.Watchhosts = map[string]config.WatchHost{}
	for i := range 8 {
		cfg.Watchhosts[fmt.Sprintf("web%02d", i)] = config.WatchHost{}
		cfg.Watchhosts[fmt.Sprintf("db%02d", i)] = config.WatchHost{}
	}
	cfg.Thresholds["disk_monitor.*.percent"] = config.Threshold{Warning: fp(80), Critical: fp(90)}
	h := newHarness(t, cfg)
	checkIndex(t, h, "empty")
	for i := range 8 {
		for _, host := range []string{fmt.Sprintf("web%02d", i), fmt.Sprintf("db%02d", i)} {
			h.push(host, "cpu_monitor.cpu_percent", float64(70+5*i))
			h.push(host, "disk_monitor./.percent", float64(95-5*i))
		}
	}
	checkIndex(t, h, "samples")
	// Recoveries and moves between levels.
	h.push("web07", "cpu_monitor.cpu_percent", 10)
	h.push("web01", "disk_monitor./.percent", 85)
	h.push("db06", "cpu_monitor.cpu_percent", 81)
	checkIndex(t, h, "changes")
	h.now = h.now.Add(time.Second)
	h.ev.ObserveHeartbeat(change("web03", "", "DOWN", h.now))
	h.ev.ObserveHeartbeat(change("db02", "ipv4", "LATE", h.now))
	checkIndex(t, h, "heartbeats")
	// Everything but what keeps reporting goes stale (UNKNOWN)...
	h.sweep(4 * time.Minute)
	for i := range 4 {
		h.push(fmt.Sprintf("web%02d", i), "cpu_monitor.cpu_percent", 95)
	}
	h.sweep(90 * time.Second)
	checkIndex(t, h, "stale")
	// ... and is forgotten an hour later.
	for range 7 {
		h.push("web00", "cpu_monitor.cpu_percent", 95)
		h.sweep(10 * time.Minute)
	}
	checkIndex(t, h, "forgotten")
	if s := h.ev.ActivePage(AlertQuery{}); s.Summary.Total() == 0 {
		t.Fatal("nothing left to check after forgetting")
	}
	// A reload that drops the disk rule and every db host.
	next := baseConfig()
	next.Alerting.ForgetAfter = time.Hour
	next.Watchhosts = map[string]config.WatchHost{}
	for i := range 8 {
		next.Watchhosts[fmt.Sprintf("web%02d", i)] = config.WatchHost{}
	}
	for i := range 8 {
		h.push(fmt.Sprintf("db%02d", i), "disk_monitor./.percent", 99)
		h.push(fmt.Sprintf("web%02d", i), "disk_monitor./.percent", 99)
	}
	checkIndex(t, h, "before reload")
	if err := h.ev.Reload(next); err != nil {
		t.Fatal(err)
	}
	checkIndex(t, h, "reload")
	for _, s := range h.ev.ActiveAlerts() {
		if strings.HasPrefix(s.Host, "db") || strings.HasPrefix(s.MetricPath, "disk") {
			t.Fatalf("dropped state still listed: %+v", s)
		}
	}
	before := keys(h.ev.ActiveAlerts())
	h.restart(next)
	checkIndex(t, h, "restart")
	if got := keys(h.ev.ActiveAlerts()); len(got) == 0 || !slices.Equal(got, before) {
		t.Fatalf("after restart %v, want %v", got, before)
	}
}
