package alert

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/dispatch/dispatchrecord"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/sdk/level"
)

// drain returns the events since the last take and forgets them.
func (r *recorder) drain() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// brief says events as "metric LEVEL/kind: text".
func brief(evs []Event) []string {
	out := []string{}
	for _, ev := range evs {
		out = append(out, ev.MetricPath+" "+string(ev.Level)+"/"+ev.Kind+": "+ev.Text)
	}
	return out
}

// liveConfig watches web01, db01 and web02 with the documented heartbeat
// defaults (LATE raises nothing), no staleness, renotify every hour.
func liveConfig() *config.Config {
	cfg := quiet()
	cfg.Watchhosts["web02"] = config.WatchHost{}
	cfg.Alerting.HeartbeatLate = config.HeartbeatLateNone
	return cfg
}

var bothFamilies = []heartbeat.Family{heartbeat.IPv4, heartbeat.IPv6}

// beat reports a tracker change of web02 at the current clock; family ""
// is the host's own state (using both families).
func (h *harness) beat(family, to string, seen time.Time) {
	h.t.Helper()
	ch := change("web02", family, to, h.now)
	ch.LastSeen = seen
	if family == "" {
		ch.Families = bothFamilies
	}
	h.ev.ObserveHeartbeat(ch)
}

// ticks advances the clock n seconds, running the background loop's
// per-second work each second.
func (h *harness) ticks(n int) {
	for range n {
		h.now = h.now.Add(time.Second)
		h.ev.runHeld(h.now)
	}
}

// up reports web02 UP on both families at the current clock.
func (h *harness) up() {
	h.beat("ipv4", "UP", h.now)
	h.beat("ipv6", "UP", h.now)
	h.beat("", "UP", h.now)
}

// TestFullOutageIsOneMessage: the tracker takes IPv4 DOWN in one sweep and
// IPv6 (with the host) in the next; only heartbeat.host is told, once, and
// the return of both families (one sweep apart) is told once.
func TestFullOutageIsOneMessage(t *testing.T) {
	h := newHarness(t, liveConfig())
	h.up()
	seen := h.now
	h.now = h.now.Add(30 * time.Second)
	h.beat("ipv4", "DOWN", seen)
	h.beat("", "DEGRADED", seen)
	h.ticks(1)
	h.beat("ipv6", "DOWN", seen)
	down := h.now
	h.beat("", "DOWN", seen)
	h.ticks(10)
	h.sweep(time.Minute)
	want := []string{"heartbeat.host CRITICAL/change: web02 is DOWN: no heartbeat for 31s (IPv4 and IPv6)"}
	if got := brief(h.rec.drain()); !eq(got, want) {
		t.Fatalf("outage events\n got %q\nwant %q", got, want)
	}
	// The family states are shown, in words, and journaled.
	for _, c := range []struct{ metric, text string }{
		{HeartbeatIPv4, "web02 lost IPv4: no heartbeat over IPv4 for 1m41s (IPv6 DOWN too)"},
		{HeartbeatIPv6, "web02 lost IPv6: no heartbeat over IPv6 for 1m41s (IPv4 DOWN too)"},
		{HeartbeatHost, "web02 is DOWN: no heartbeat for 1m41s (IPv4 and IPv6)"},
	} {
		if s := h.state("web02", c.metric); s.Level != level.Critical || s.Text != c.text || s.NotificationCount != 0 && c.metric != HeartbeatHost {
			t.Errorf("%s: %+v, want text %q", c.metric, s, c.text)
		}
	}
	j := h.journal("web02")
	for _, line := range []string{
		"web02 lost IPv4: no heartbeat over IPv4 for 30s (IPv6 still UP) [heartbeat.ipv4 OK -> CRITICAL]",
		"web02 lost IPv6: no heartbeat over IPv6 for 31s (IPv4 DOWN too) [heartbeat.ipv6 OK -> CRITICAL]",
		"web02 is DOWN: no heartbeat for 31s (IPv4 and IPv6) [heartbeat.host OK -> CRITICAL]",
	} {
		if !slices.Contains(j, line) {
			t.Errorf("journal lacks %q: %q", line, j)
		}
	}

	// Back: IPv4 in one sweep, IPv6 in the next.
	h.now = down.Add(3 * time.Minute)
	h.beat("ipv4", "UP", h.now)
	h.beat("", "DEGRADED", h.now)
	h.ticks(1)
	h.beat("ipv6", "UP", h.now)
	h.beat("", "UP", h.now)
	h.ticks(10)
	h.sweep(2 * time.Hour)
	want = []string{"heartbeat.host OK/recovery: web02 is UP again after 3m0s DOWN"}
	got := h.rec.drain()
	if !eq(brief(got), want) {
		t.Fatalf("recovery events\n got %q\nwant %q", brief(got), want)
	}
	if !got[0].EpisodeStart.Equal(down) {
		t.Errorf("recovery episode start %v, want %v", got[0].EpisodeStart, down)
	}
}

// TestHostBackOnOneFamily: after a full outage the host returns on IPv4
// only; the host's recovery and the still lost IPv6 are each told once.
func TestHostBackOnOneFamily(t *testing.T) {
	h := newHarness(t, liveConfig())
	h.up()
	seen := h.now
	h.now = h.now.Add(30 * time.Second)
	h.beat("ipv4", "DOWN", seen)
	h.beat("ipv6", "DOWN", seen)
	h.beat("", "DOWN", seen)
	h.ticks(5)
	if got := h.rec.takeOf(HeartbeatHost); !eq(got, []string{"CRITICAL/change"}) {
		t.Fatalf("events %v", got)
	}
	h.now = h.now.Add(time.Minute)
	h.beat("ipv4", "UP", h.now)
	h.beat("", "DEGRADED", h.now)
	h.ticks(2)
	if got := h.rec.drain(); len(got) != 0 {
		t.Fatalf("told before the settle delay: %q", brief(got))
	}
	h.ticks(1)
	got := brief(h.rec.drain())
	slices.Sort(got)
	want := []string{
		"heartbeat.host OK/recovery: web02 is reachable again over IPv4 after 1m5s DOWN (IPv6 still DOWN)",
		"heartbeat.ipv6 CRITICAL/change: web02 lost IPv6: no heartbeat over IPv6 for 1m38s (IPv4 still UP)",
	}
	if !eq(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
	if s := h.state("web02", HeartbeatHost); s.Level != level.OK || s.Text != "web02 is DEGRADED: IPv6 DOWN (IPv4 UP)" {
		t.Fatalf("host %+v", s)
	}
	h.ticks(30)
	if got := h.rec.drain(); len(got) != 0 {
		t.Fatalf("told twice: %q", brief(got))
	}
	h.beat("ipv6", "UP", h.now)
	h.beat("", "UP", h.now)
	if got := brief(h.rec.drain()); !eq(got, []string{"heartbeat.ipv6 OK/recovery: web02 IPv6 is back after 1m38s"}) {
		t.Fatalf("events %q", got)
	}
}

// TestLosingIPv6OnlyIsOneMessage: a DEGRADED host is told through its lost
// family, once, after the settle delay, and its return once.
func TestLosingIPv6OnlyIsOneMessage(t *testing.T) {
	h := newHarness(t, liveConfig())
	h.up()
	seen := h.now
	h.now = h.now.Add(45 * time.Second)
	h.beat("ipv6", "DOWN", seen)
	h.beat("", "DEGRADED", h.now)
	lost := h.now
	h.ticks(2)
	if got := h.rec.drain(); len(got) != 0 {
		t.Fatalf("told before the settle delay: %q", brief(got))
	}
	h.ticks(1)
	want := []string{"heartbeat.ipv6 CRITICAL/change: web02 lost IPv6: no heartbeat over IPv6 for 48s (IPv4 still UP)"}
	if got := brief(h.rec.drain()); !eq(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
	if l := h.level("web02", HeartbeatHost); l != level.OK {
		t.Fatalf("a DEGRADED host is %s", l)
	}
	h.sweep(10 * time.Minute)
	h.now = lost.Add(time.Minute)
	h.beat("ipv6", "UP", h.now)
	h.beat("", "UP", h.now)
	h.sweep(time.Minute)
	if got := brief(h.rec.drain()); !eq(got, []string{"heartbeat.ipv6 OK/recovery: web02 IPv6 is back after 1m0s"}) {
		t.Fatalf("events %q", got)
	}
}

// TestLateIsShownNotNotifiedByDefault: with heartbeat_late "none" (the
// default, also when unset) LATE keeps the family OK; with WARNING it
// raises a WARNING that is told after the settle delay.
func TestLateIsShownNotNotifiedByDefault(t *testing.T) {
	for _, tc := range []struct {
		late   string
		level  level.Level
		events []string
	}{
		{config.HeartbeatLateNone, level.OK, []string{}},
		{"", level.OK, []string{}},
		{string(level.Warning), level.Warning, []string{"heartbeat.ipv4 WARNING/change: web02 IPv4 is LATE: no heartbeat over IPv4 for 18s"}},
	} {
		t.Run("late="+tc.late, func(t *testing.T) {
			cfg := liveConfig()
			cfg.Alerting.HeartbeatLate = tc.late
			h := newHarness(t, cfg)
			h.up()
			seen := h.now
			h.now = h.now.Add(15 * time.Second)
			h.beat("ipv4", "LATE", seen)
			s := h.state("web02", HeartbeatIPv4)
			if s.Level != tc.level || s.LastValue != 1 || s.Text != "web02 IPv4 is LATE: no heartbeat over IPv4 for 15s" {
				t.Fatalf("state %+v", s)
			}
			h.ticks(10)
			if got := brief(h.rec.drain()); !eq(got, tc.events) {
				t.Fatalf("events\n got %q\nwant %q", got, tc.events)
			}
		})
	}
}

// TestLateThenDownTellsTheHostOnly: with heartbeat_late WARNING, LATE
// families are told, but their escalation to DOWN is inhibited by the
// host.
func TestLateThenDownTellsTheHostOnly(t *testing.T) {
	cfg := liveConfig()
	cfg.Alerting.HeartbeatLate = string(level.Warning)
	h := newHarness(t, cfg)
	h.up()
	seen := h.now
	h.now = h.now.Add(15 * time.Second)
	h.beat("ipv4", "LATE", seen)
	h.beat("ipv6", "LATE", seen)
	h.ticks(1) // DOWN before the LATE settle delay passed: LATE is never told
	h.now = h.now.Add(15 * time.Second)
	h.beat("ipv4", "DOWN", seen)
	h.beat("ipv6", "DOWN", seen)
	h.beat("", "DOWN", seen)
	h.ticks(10)
	if got := brief(h.rec.drain()); !eq(got, []string{"heartbeat.host CRITICAL/change: web02 is DOWN: no heartbeat for 31s (IPv4 and IPv6)"}) {
		t.Fatalf("events %q", got)
	}
}

// TestInhibitionHoldsRenotify: a lost family that was told is not reminded
// while its host is DOWN; the host is.
func TestInhibitionHoldsRenotify(t *testing.T) {
	h := newHarness(t, liveConfig())
	h.up()
	seen := h.now
	h.now = h.now.Add(30 * time.Second)
	h.beat("ipv6", "DOWN", seen)
	h.beat("", "DEGRADED", h.now)
	h.ticks(3)
	if got := h.rec.takeOf(HeartbeatIPv6); !eq(got, []string{"CRITICAL/change"}) {
		t.Fatalf("events %v", got)
	}
	h.now = h.now.Add(10 * time.Minute)
	h.beat("ipv4", "DOWN", h.now.Add(-30*time.Second))
	h.beat("", "DOWN", h.now.Add(-30*time.Second))
	h.ticks(5)
	if got := h.rec.take(); !eq(got, []string{"CRITICAL/change"}) || h.state("web02", HeartbeatHost).NotificationCount != 1 {
		t.Fatalf("events %v", got)
	}
	h.sweep(time.Hour)
	got := brief(h.rec.drain())
	if !eq(got, []string{"heartbeat.host CRITICAL/renotify: web02 is still DOWN: no heartbeat for 1h0m35s (IPv4 and IPv6)"}) {
		t.Fatalf("renotify %q", got)
	}
	for _, m := range []string{HeartbeatIPv4, HeartbeatIPv6} {
		if s := h.state("web02", m); s.Level != level.Critical {
			t.Fatalf("%s %+v", m, s)
		}
	}
	if n := h.state("web02", HeartbeatIPv6).NotificationCount; n != 1 {
		t.Fatalf("ipv6 told %d times", n)
	}
}

// TestDownTexts: a DOWN host says why when the tracker knows (clock skew)
// and when it was never heard from.
func TestDownTexts(t *testing.T) {
	h := newHarness(t, liveConfig())
	h.now = h.now.Add(30 * time.Second)
	h.ev.ObserveHeartbeat(change("web02", "", "DOWN", h.now))
	ch := change("web01", "", "DOWN", h.now)
	ch.LastSeen, ch.Reason = h.now.Add(-time.Minute), "clock 6m12s ahead of hbd"
	h.ev.ObserveHeartbeat(ch)
	got := brief(h.rec.drain())
	want := []string{
		"heartbeat.host CRITICAL/change: web02 is DOWN: never heard from (waiting since hbd started 30s ago)",
		"heartbeat.host CRITICAL/change: web01 is DOWN: clock 6m12s ahead of hbd",
	}
	if !eq(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
}

// TestThresholdTexts: value, threshold, level and for how long, in words.
func TestThresholdTexts(t *testing.T) {
	cfg := quiet()
	cfg.Thresholds = map[string]config.Threshold{
		cpu:                           {Warning: fp(80), Critical: fp(95), For: 3},
		"memory_monitor.available_mb": {Warning: fp(500), Critical: fp(100), Below: true},
	}
	h := newHarness(t, cfg)
	for _, v := range []float64{97.2, 97.2, 97.2} {
		h.push("web01", cpu, v)
	}
	start := h.now
	h.push("web01", "memory_monitor.available_mb", 90.456)
	h.sweep(time.Hour) // renotify both
	for range 3 {
		h.push("web01", cpu, 42.1)
	}
	h.push("web01", "memory_monitor.available_mb", 4096)
	got := brief(h.rec.drain())
	want := []string{
		"cpu_monitor.cpu_percent CRITICAL/change: web01 cpu_monitor.cpu_percent 97.2 ≥ 95 (CRITICAL) for 3 samples",
		"memory_monitor.available_mb CRITICAL/change: web01 memory_monitor.available_mb 90.46 ≤ 100 (CRITICAL)",
		"cpu_monitor.cpu_percent CRITICAL/renotify: web01 cpu_monitor.cpu_percent still 97.2 ≥ 95 (CRITICAL for 1h0m10s)",
		"memory_monitor.available_mb CRITICAL/renotify: web01 memory_monitor.available_mb still 90.46 ≤ 100 (CRITICAL for 1h0m0s)",
		"cpu_monitor.cpu_percent OK/recovery: web01 cpu_monitor.cpu_percent back to OK at 42.1 (was CRITICAL for 1h0m40s)",
		"memory_monitor.available_mb OK/recovery: web01 memory_monitor.available_mb back to OK at 4096 (was CRITICAL for 1h0m40s)",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !eq(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
	_ = start
	cfg.Alerting.StaleAfter = 5 * time.Minute
	if err := h.ev.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	h.sweep(5 * time.Minute)
	if s := h.state("web01", cpu); s.Level != level.Unknown || s.Text != "web01 cpu_monitor.cpu_percent: no data for 5m10s (UNKNOWN)" {
		t.Fatalf("stale %+v", s)
	}
	if got := brief(h.rec.drain()); !slices.Contains(got, "cpu_monitor.cpu_percent UNKNOWN/change: web01 cpu_monitor.cpu_percent: no data for 5m10s (UNKNOWN)") {
		t.Fatalf("events %q", got)
	}
}

// TestEpisodeStartAcrossLevels: one episode from leaving OK to OK again,
// carried by every event of it (the recovery too) and kept across a
// restart.
func TestEpisodeStartAcrossLevels(t *testing.T) {
	cfg := quiet()
	h := newHarness(t, cfg)
	h.push("web01", cpu, 50)
	h.push("web01", cpu, 85)
	start := h.now
	h.push("web01", cpu, 95)
	h.restart(cfg)
	if s := h.state("web01", cpu); s.EpisodeStart != toUnix(start) || s.Level != level.Critical {
		t.Fatalf("after restart %+v", s)
	}
	h.push("web01", cpu, 85)
	h.push("web01", cpu, 50)
	evs := h.rec.drain()
	if len(evs) != 2 || evs[1].Kind != KindRecovery {
		t.Fatalf("events %q", brief(evs))
	}
	for _, ev := range evs {
		if !ev.EpisodeStart.Equal(start) {
			t.Errorf("%s/%s episode start %v, want %v", ev.Level, ev.Kind, ev.EpisodeStart, start)
		}
	}
	if want := "web01 cpu_monitor.cpu_percent back to OK at 50 (was CRITICAL for 30s)"; evs[1].Text != want {
		t.Errorf("recovery text %q, want %q", evs[1].Text, want)
	}
	if s := h.state("web01", cpu); s.EpisodeStart != 0 || s.Text != "web01 cpu_monitor.cpu_percent 50 (OK)" {
		t.Fatalf("after recovery %+v", s)
	}
	// UNKNOWN is not OK: OK -> UNKNOWN -> WARNING is one episode.
	cfg.Alerting.StaleAfter = 5 * time.Minute
	h.restart(cfg)
	h.sweep(5 * time.Minute)
	unknown := h.now
	h.push("web01", cpu, 85)
	if s := h.state("web01", cpu); s.EpisodeStart != toUnix(unknown) {
		t.Fatalf("UNKNOWN -> WARNING: %+v (episode began %v)", s, unknown)
	}
}

// TestClockOffset: the offset's size against the default thresholds, with
// `for` and hysteresis; refused is CRITICAL at once; never stale.
func TestClockOffset(t *testing.T) {
	cfg := baseConfig() // stale_after 5m
	h := newHarness(t, cfg)
	report := func(host string, off time.Duration, refused bool) {
		h.now = h.now.Add(5 * time.Second)
		h.ev.ObserveClockOffset(host, off, refused, h.now)
	}
	steps := []struct {
		off    time.Duration
		level  level.Level
		events []string
	}{
		{12 * time.Millisecond, "OK", nil},
		{1500 * time.Millisecond, "OK", nil},
		{1500 * time.Millisecond, "OK", nil},
		{1500 * time.Millisecond, "WARNING", []string{"heartbeat.clock_offset_ms WARNING/change: web01 clock is 1.5s ahead of hbd (WARNING: offset ≥ 1s)"}},
		{800 * time.Millisecond, "WARNING", nil}, // inside the hysteresis
		{800 * time.Millisecond, "WARNING", nil},
		{800 * time.Millisecond, "WARNING", nil},
		{-2 * time.Minute, "WARNING", nil},
		{-2 * time.Minute, "WARNING", nil},
		{-2 * time.Minute, "CRITICAL", []string{"heartbeat.clock_offset_ms CRITICAL/change: web01 clock is 2m0s behind hbd (CRITICAL: offset ≥ 1m0s)"}},
		{100 * time.Millisecond, "CRITICAL", nil},
		{100 * time.Millisecond, "CRITICAL", nil},
		{100 * time.Millisecond, "OK", []string{"heartbeat.clock_offset_ms OK/recovery: web01 clock is back in sync: 100ms ahead of hbd (was CRITICAL for 45s)"}},
	}
	for i, s := range steps {
		report("web01", s.off, false)
		st := h.state("web01", HeartbeatClockOffset)
		if st.Level != s.level || st.LastValue != float64(s.off.Milliseconds()) {
			t.Fatalf("step %d (%v): %+v, want %s", i, s.off, st, s.level)
		}
		if got := brief(h.rec.drain()); !eq(got, s.events) && !(len(got) == 0 && s.events == nil) {
			t.Fatalf("step %d (%v): events\n got %q\nwant %q", i, s.off, got, s.events)
		}
	}
	// Refused: CRITICAL at once, saying why.
	report("db01", 6*time.Minute+12*time.Second, true)
	want := "web01 clock is 6m12s ahead of hbd: its heartbeats and batches are refused"
	want = strings.Replace(want, "web01", "db01", 1)
	if got := brief(h.rec.drain()); !eq(got, []string{"heartbeat.clock_offset_ms CRITICAL/change: " + want}) {
		t.Fatalf("refused events %q", got)
	}
	// Never stale, never forgotten; kept across a restart with its reason.
	h.sweep(time.Hour)
	if s := h.state("db01", HeartbeatClockOffset); s.Level != level.Critical || s.Text != want {
		t.Fatalf("after an hour %+v", s)
	}
	h.restart(cfg)
	if s := h.state("db01", HeartbeatClockOffset); s.Level != level.Critical || s.Text != want || s.LastValue != 372000 {
		t.Fatalf("after restart %+v", s)
	}
	if s := h.state("web01", HeartbeatClockOffset); s.Level != level.OK {
		t.Fatalf("after restart %+v", s)
	}
	// Unwatched hosts have no clock state.
	report("stranger", time.Hour, true)
	if got := h.ev.HostAlerts("stranger"); len(got) != 0 {
		t.Fatalf("stranger %+v", got)
	}
}

// TestClockOffsetThresholdFromConfig: a threshold under
// heartbeat.clock_offset_ms (or another heartbeat.* pattern matching it)
// replaces the default; a catch-all for plugin metrics does not.
func TestClockOffsetThresholdFromConfig(t *testing.T) {
	cfg, err := config.Parse("hbd.yaml", []byte(`
watchhosts:
  web01: {key: 0123456789abcdef0123456789abcdef}
  db01:
    key: 0123456789abcdef0123456789abcdef
    thresholds:
      heartbeat.*: {warning: 50}
thresholds:
  "**": {warning: 1000000000}
  heartbeat.clock_offset_ms: {warning: 200, critical: 500}
`), []string{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, cfg)
	h.ev.ObserveClockOffset("web01", 300*time.Millisecond, false, h.now)
	h.ev.ObserveClockOffset("db01", -60*time.Millisecond, false, h.now)
	if l := h.level("web01", HeartbeatClockOffset); l != level.Warning {
		t.Fatalf("web01 %s", l)
	}
	if s := h.state("db01", HeartbeatClockOffset); s.Level != level.Warning || s.Text != "db01 clock is 60ms behind hbd (WARNING: offset ≥ 50ms)" {
		t.Fatalf("db01 %+v", s)
	}
	for _, bad := range []struct{ yaml, msg string }{
		{"thresholds:\n  heartbeat.clock_offset_ms: {warning: 200, critical: 100, below: true}\n", "below is not supported"},
		{"thresholds:\n  heartbeat.ipv4: {warning: 1}\n", "heartbeat metrics take no thresholds except heartbeat.clock_offset_ms"},
		{"thresholds:\n  heartbeat.clock_offset_ms: {warning: -5}\n", "must not be negative"},
	} {
		_, err := config.Parse("hbd.yaml", []byte("watchhosts: {web01: {key: 0123456789abcdef0123456789abcdef}}\n"+bad.yaml), []string{})
		if err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%q: %v, want %q", bad.yaml, err, bad.msg)
		}
	}
}

// TestDynamicHostsWatchedByDefault: with the configuration's defaults a
// host registered through enroll_key is evaluated.
func TestDynamicHostsWatchedByDefault(t *testing.T) {
	cfg, err := config.Parse("hbd.yaml", []byte("watchhosts: {web01: {key: 0123456789abcdef0123456789abcdef}}\nthresholds:\n  cpu_monitor.cpu_percent: {warning: 80, critical: 90}\n"), []string{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, cfg)
	if _, err := h.st.EnsureHost(context.Background(), "dyn01", true); err != nil {
		t.Fatal(err)
	}
	h.push("dyn01", cpu, 95)
	h.ev.ObserveHeartbeat(change("dyn01", "", "DOWN", h.now))
	if !h.ev.Evaluated("dyn01") || h.level("dyn01", cpu) != level.Critical || h.level("dyn01", HeartbeatHost) != level.Critical {
		t.Fatalf("dyn01 not evaluated: %+v", h.ev.HostAlerts("dyn01"))
	}
}

// TestStateIsStoredBeforeTheSinkSeesItsEvent proves the kill -9 order from
// the store's contents: a sink that, like the dispatcher, queues a
// delivery row with the store's writer finds, in the same write order,
// the state row that produced the event already written with the event's
// level and count. Without that order a restart after kill -9 would find
// the delivery but not the change, and fire the change again.
func TestStateIsStoredBeforeTheSinkSeesItsEvent(t *testing.T) {
	h := newHarness(t, liveConfig())
	h.ev.FamilySettle = 0
	type check struct {
		ev           Event
		found        bool
		level        level.Level
		count        int
		episodeStart float64
	}
	var mu sync.Mutex
	var checks []check
	h.ev.sink = SinkFunc(func(ev Event) {
		h.st.Go(func(tx *sql.Tx) error {
			c := check{ev: ev}
			err := tx.QueryRow(`SELECT level, notification_count, episode_start FROM alert_states WHERE host = ? AND metric = ?`,
				ev.Host, ev.MetricPath).Scan(&c.level, &c.count, &c.episodeStart)
			c.found = err == nil
			mu.Lock()
			checks = append(checks, c)
			mu.Unlock()
			return nil
		})
		h.st.QueueDelivery(dispatchrecord.Delivery{ID: ev.ID, Channel: "ops", Event: []byte(`{}`), NextAt: ev.Time, Created: ev.Time})
	})
	h.push("web01", cpu, 85)
	h.push("web01", cpu, 95)
	h.sweep(time.Hour) // renotify
	h.push("web01", cpu, 10)
	h.ev.ObserveHeartbeat(change("web02", "ipv6", "DOWN", h.now))
	h.ev.ObserveClockOffset("db01", 10*time.Minute, true, h.now)
	if err := h.st.JournalSync(context.Background(), "", "barrier"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(checks) != 6 {
		t.Fatalf("%d events", len(checks))
	}
	for _, c := range checks {
		wantEp := toUnix(c.ev.EpisodeStart)
		if !c.found || c.level != c.ev.Level || c.count != c.ev.NotificationCount || c.episodeStart != wantEp && c.ev.Kind != KindRecovery {
			t.Errorf("%s %s %s/%s #%d: stored before the delivery: found %v level %s count %d episode %v",
				c.ev.Host, c.ev.MetricPath, c.ev.Level, c.ev.Kind, c.ev.NotificationCount, c.found, c.level, c.count, c.episodeStart)
		}
	}
	dl, err := h.st.PendingDeliveries(context.Background())
	if err != nil || len(dl) != 6 {
		t.Fatalf("deliveries %d %v", len(dl), err)
	}
}

// TestNewestSnapshotWins: snapshots handed to the store early (for an
// event) and late (values of quiet states) never let an older one
// overwrite a newer one.
func TestNewestSnapshotWins(t *testing.T) {
	cfg := quiet()
	h := newHarness(t, cfg)
	ctx := context.Background()
	h.push("web01", cpu, 85) // level change: handed off at once
	h.push("web01", cpu, 86) // value only: pending until a flush
	if err := h.ev.flush(ctx, true, false); err != nil {
		t.Fatal(err)
	}
	h.push("web01", cpu, 95) // handed off at once, after the value
	h.push("web01", cpu, 96)
	if err := h.ev.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := h.st.AlertStates(ctx)
	if err != nil || len(rows) != 1 {
		t.Fatalf("%+v %v", rows, err)
	}
	if r := rows[0]; r.Level != level.Critical || r.LastValue != 96 || r.NotificationCount != 1 {
		t.Fatalf("stored %+v", r)
	}
	_ = fmt.Sprint
}

// TestRestoredHeartbeatTexts: after a restart, until the tracker reports,
// heartbeat alerts say how long they have been DOWN.
func TestRestoredHeartbeatTexts(t *testing.T) {
	cfg := liveConfig()
	h := newHarness(t, cfg)
	h.beat("ipv4", "DOWN", time.Time{})
	h.beat("ipv6", "DOWN", time.Time{})
	h.beat("", "DOWN", time.Time{})
	h.restart(cfg)
	h.now = h.now.Add(5 * time.Minute)
	if s := h.state("web02", HeartbeatHost); s.Text != "web02 is DOWN for 5m0s" {
		t.Fatalf("host %+v", s)
	}
	if s := h.state("web02", HeartbeatIPv6); s.Text != "web02 lost IPv6: DOWN for 5m0s (IPv4 DOWN too)" {
		t.Fatalf("ipv6 %+v", s)
	}
	// The tracker's report brings the words back.
	ch := change("web02", "", "DOWN", h.now)
	ch.LastSeen, ch.Families = h.now.Add(-time.Hour), bothFamilies
	h.ev.ObserveHeartbeat(ch)
	if s := h.state("web02", HeartbeatHost); s.Text != "web02 is DOWN: no heartbeat for 1h0m0s (IPv4 and IPv6)" || s.NotificationCount != 1 {
		t.Fatalf("host %+v", s)
	}
	if got := h.rec.drain(); len(got) != 0 {
		t.Fatalf("restart told again: %q", brief(got))
	}
}
