package alert

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/access"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/sdk/level"
)

const cpu = "cpu_monitor.cpu_percent"

func TestLevelTransitions(t *testing.T) {
	type step struct {
		v      float64
		level  level.Level
		events []string // notifications this sample causes
	}
	W, C, O := level.Warning, level.Critical, level.OK
	none := []string{}
	cases := []struct {
		name  string
		th    config.Threshold
		steps []step
	}{
		{"EnterWarningThenCriticalThenRecover", config.Threshold{Warning: fp(80), Critical: fp(90)}, []step{
			{50, O, none},
			{85, W, []string{"WARNING/change"}},
			{95, C, []string{"CRITICAL/change"}},
			{85, W, []string{"WARNING/change"}},
			{50, O, []string{"OK/recovery"}},
		}},
		{"ThresholdValueItselfCounts", config.Threshold{Warning: fp(80), Critical: fp(90)}, []step{
			{80, W, []string{"WARNING/change"}},
			{90, C, []string{"CRITICAL/change"}},
		}},
		{"HoldDoesNotRenotifyPerSample", config.Threshold{Warning: fp(80), Critical: fp(90)}, []step{
			{85, W, []string{"WARNING/change"}},
			{86, W, none},
			{89.9, W, none},
		}},
		{"HysteresisDelaysExit", config.Threshold{Warning: fp(80), Critical: fp(90), Hysteresis: 5}, []step{
			{85, W, []string{"WARNING/change"}},
			{78, W, none}, // below 80 but not below 75
			{75, W, none},
			{74.9, O, []string{"OK/recovery"}},
			{79, O, none}, // entering is not relaxed
			{92, C, []string{"CRITICAL/change"}},
			{86, C, none},
			{84, W, []string{"WARNING/change"}},
		}},
		{"ForNeedsConsecutiveSamples", config.Threshold{Warning: fp(80), For: 3}, []step{
			{85, O, none},
			{85, O, none},
			{50, O, none}, // streak broken
			{85, O, none},
			{85, O, none},
			{85, W, []string{"WARNING/change"}},
			{50, W, none},
			{50, W, none},
			{50, O, []string{"OK/recovery"}},
		}},
		{"ForCountsSamplesAtLeastThatBad", config.Threshold{Warning: fp(80), Critical: fp(90), For: 2}, []step{
			{85, O, none},
			{95, W, []string{"WARNING/change"}}, // two samples >= warning
			{95, C, []string{"CRITICAL/change"}},
		}},
		{"ForZeroIsImmediate", config.Threshold{Warning: fp(80), For: 0}, []step{
			{85, W, []string{"WARNING/change"}},
		}},
		{"BelowWithHysteresis", config.Threshold{Warning: fp(20), Critical: fp(10), Below: true, Hysteresis: 2}, []step{
			{50, O, none},
			{15, W, []string{"WARNING/change"}},
			{5, C, []string{"CRITICAL/change"}},
			{11, C, none}, // not above 12 yet
			{13, W, []string{"WARNING/change"}},
			{21, W, none},
			{23, O, []string{"OK/recovery"}},
		}},
		{"CriticalOnly", config.Threshold{Critical: fp(90)}, []step{
			{85, O, none},
			{95, C, []string{"CRITICAL/change"}},
			{85, O, []string{"OK/recovery"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Thresholds = map[string]config.Threshold{cpu: tc.th}
			h := newHarness(t, cfg)
			for i, s := range tc.steps {
				h.push("web01", cpu, s.v)
				if got := h.level("web01", cpu); got != s.level {
					t.Fatalf("step %d (%v): level %s, want %s", i, s.v, got, s.level)
				}
				if got := h.rec.take(); !eq(got, s.events) {
					t.Fatalf("step %d (%v): events %v, want %v", i, s.v, got, s.events)
				}
			}
		})
	}
}

func TestLevelChangeIsJournaledAndSinceSet(t *testing.T) {
	h := newHarness(t, baseConfig())
	h.push("web01", cpu, 50)
	h.push("web01", cpu, 85.5)
	changed := h.now
	h.push("web01", cpu, 86)
	s := h.state("web01", cpu)
	if s.Since != toUnix(changed) || s.LastValue != 86 || s.LastCheck != toUnix(h.now) || s.NotificationCount != 1 {
		t.Fatalf("state %+v", s)
	}
	want := []string{"web01 cpu_monitor.cpu_percent 85.5 ≥ 80 (WARNING) [cpu_monitor.cpu_percent OK -> WARNING]"}
	if got := h.journal("web01"); !eq(got, want) {
		t.Fatalf("journal %q, want %q", got, want)
	}
	ev := h.rec.last()
	if ev.Host != "web01" || ev.MetricPath != cpu || ev.PreviousLevel != "OK" || ev.Value != 85.5 || !ev.Since.Equal(changed) || ev.ID == "" ||
		!ev.EpisodeStart.Equal(changed) || ev.Text != "web01 cpu_monitor.cpu_percent 85.5 ≥ 80 (WARNING)" {
		t.Fatalf("event %+v", ev)
	}
	if s.EpisodeStart != toUnix(changed) || s.Text != "web01 cpu_monitor.cpu_percent 86 ≥ 80 (WARNING)" {
		t.Fatalf("state %+v", s)
	}
}

func TestResentAndNonFiniteSamplesAreNotEvaluated(t *testing.T) {
	cfg := baseConfig()
	cfg.Thresholds[cpu] = config.Threshold{Warning: fp(80), For: 2}
	h := newHarness(t, cfg)
	h.push("web01", cpu, 85)
	// The agent resends the same batch: it must not count as a second sample.
	ps := store.PluginSample{Plugin: "cpu_monitor", Sample: store.Sample{Timestamp: toUnix(h.now), Paths: []string{"cpu_percent"}, Values: []float64{85}}}
	if err := h.st.AppendSamples(context.Background(), "web01", []store.PluginSample{ps}); err != nil {
		t.Fatal(err)
	}
	if got := h.level("web01", cpu); got != level.OK {
		t.Fatalf("resent sample counted: %s", got)
	}
	h.push("web01", cpu, math.NaN())
	h.push("web01", cpu, math.Inf(1))
	if s := h.state("web01", cpu); s.Level != level.OK || s.LastValue != 85 {
		t.Fatalf("non-finite value evaluated: %+v", s)
	}
	h.push("web01", cpu, 85)
	if got := h.level("web01", cpu); got != level.Warning {
		t.Fatalf("level %s", got)
	}
}

func TestUnmatchedAndReservedPathsHaveNoState(t *testing.T) {
	cfg := baseConfig()
	cfg.Thresholds["**"] = config.Threshold{Warning: fp(1e9)}
	h := newHarness(t, cfg)
	h.push("web01", "memory_monitor.percent", 10)
	h.push("web01", "heartbeat.ipv4", 99) // a plugin may not pose as a heartbeat metric
	if _, ok := h.find("web01", "memory_monitor.percent"); !ok {
		t.Fatal("** did not match")
	}
	if _, ok := h.find("web01", "heartbeat.ipv4"); ok {
		t.Fatal("heartbeat plugin sample evaluated")
	}
	cfg = baseConfig()
	h2 := newHarness(t, cfg)
	h2.push("web01", "memory_monitor.percent", 10)
	if got := h2.ev.HostAlerts("web01"); len(got) != 0 {
		t.Fatalf("unmatched metric has a state: %+v", got)
	}
}

func TestStaleBecomesUnknownAndReturnsWithoutRecovery(t *testing.T) {
	for _, tc := range []struct {
		name        string
		before      float64
		back        float64
		wantBack    level.Level
		wantEvents  []string
		wantJournal string
	}{
		{"BackToOK", 85, 50, level.OK, []string{}, "web01 cpu_monitor.cpu_percent back to OK at 50 (was WARNING for 5m10s) [cpu_monitor.cpu_percent UNKNOWN -> OK]"},
		{"BackToWarning", 85, 85, level.Warning, []string{"WARNING/change"}, "web01 cpu_monitor.cpu_percent 85 ≥ 80 (WARNING) [cpu_monitor.cpu_percent UNKNOWN -> WARNING]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, baseConfig())
			h.push("web01", cpu, tc.before)
			h.rec.take()
			h.sweep(4 * time.Minute)
			if got := h.level("web01", cpu); got != level.Warning {
				t.Fatalf("stale too early: %s", got)
			}
			h.sweep(time.Minute)
			s := h.state("web01", cpu)
			if s.Level != level.Unknown || s.Since != toUnix(h.now) || s.LastValue != tc.before {
				t.Fatalf("after stale_after: %+v", s)
			}
			if got := h.rec.take(); !eq(got, []string{"UNKNOWN/change"}) {
				t.Fatalf("stale events %v", got)
			}
			h.push("web01", cpu, tc.back)
			if got := h.level("web01", cpu); got != tc.wantBack {
				t.Fatalf("back: %s", got)
			}
			if got := h.rec.take(); !eq(got, tc.wantEvents) {
				t.Fatalf("back events %v, want %v", got, tc.wantEvents)
			}
			j := h.journal("web01")
			if j[len(j)-2] != "web01 cpu_monitor.cpu_percent: no data for 5m0s (UNKNOWN) [cpu_monitor.cpu_percent WARNING -> UNKNOWN]" || j[len(j)-1] != tc.wantJournal {
				t.Fatalf("journal %q", j)
			}
		})
	}
}

func TestHeartbeatsMapToLevelsAndNeverGoStale(t *testing.T) {
	cfg := baseConfig()
	cfg.Alerting.HeartbeatLate = string(level.Critical) // operators may make LATE critical
	h := newHarness(t, cfg)
	h.ev.FamilySettle = 0 // family alerts decided at once
	at := func() time.Time { h.now = h.now.Add(time.Second); return h.now }
	steps := []struct {
		family, state, metric string
		level                 level.Level
		events                []string
	}{
		{"ipv6", "UP", HeartbeatIPv6, "OK", []string{}},
		{"ipv6", "LATE", HeartbeatIPv6, "CRITICAL", []string{"CRITICAL/change"}},
		{"ipv6", "DOWN", HeartbeatIPv6, "CRITICAL", []string{}},
		{"", "DEGRADED", HeartbeatHost, "OK", []string{}}, // told through the lost family
		{"ipv4", "DOWN", HeartbeatIPv4, "CRITICAL", []string{"CRITICAL/change"}},
		{"", "DOWN", HeartbeatHost, "CRITICAL", []string{"CRITICAL/change"}},
		{"", "BOGUS", HeartbeatHost, "CRITICAL", []string{}},
		{"ipv4", "UP", HeartbeatIPv4, "OK", []string{"OK/recovery"}},
		{"", "UP", HeartbeatHost, "OK", []string{"OK/recovery"}},
	}
	for i, s := range steps {
		h.ev.ObserveHeartbeat(change("web01", s.family, s.state, at()))
		if got := h.level("web01", s.metric); got != s.level {
			t.Fatalf("step %d: %s = %s, want %s", i, s.metric, got, s.level)
		}
		if got := h.rec.take(); !eq(got, s.events) {
			t.Fatalf("step %d: events %v, want %v", i, got, s.events)
		}
	}
	h.sweep(time.Hour) // far past stale_after; ipv6 renotifies, nothing goes UNKNOWN
	for _, m := range []string{HeartbeatIPv4, HeartbeatIPv6, HeartbeatHost} {
		if l := h.level("web01", m); l == level.Unknown {
			t.Fatalf("%s went stale", m)
		}
	}
	if s := h.state("web01", HeartbeatIPv6); s.LastValue != 2 {
		t.Fatalf("DOWN shown as %v", s.LastValue)
	}
	j := h.journal("web01")
	if j[0] != "web01 IPv6 is LATE [heartbeat.ipv6 OK -> CRITICAL]" {
		t.Fatalf("journal %q", j)
	}
	h.ev.ObserveHeartbeat(change("stranger", "ipv4", "DOWN", at()))
	if got := h.ev.HostAlerts("stranger"); len(got) != 0 {
		t.Fatalf("unwatched host evaluated: %+v", got)
	}
}

func TestRenotifyEveryIntervalUntilAcknowledged(t *testing.T) {
	h := newHarness(t, quiet())
	h.push("web01", cpu, 95)
	h.rec.take()
	h.sweep(59 * time.Minute)
	if got := h.rec.take(); len(got) != 0 {
		t.Fatalf("renotified early: %v", got)
	}
	h.sweep(time.Minute)
	if got := h.rec.take(); !eq(got, []string{"CRITICAL/renotify"}) {
		t.Fatalf("events %v", got)
	}
	if n := h.state("web01", cpu).NotificationCount; n != 2 {
		t.Fatalf("notification_count %d, want 2", n)
	}
	h.sweep(time.Hour)
	if got := h.rec.take(); !eq(got, []string{"CRITICAL/renotify"}) {
		t.Fatalf("second renotify: %v", got)
	}

	ctx := context.Background()
	if _, err := h.ev.Ack(ctx, "web01", "nope.metric", "alice"); !errors.Is(err, ErrUnknownMetric) {
		t.Fatalf("ack of unknown metric: %v", err)
	}
	s, err := h.ev.Ack(ctx, "web01", cpu, "alice")
	if err != nil || !s.Acknowledged || s.AcknowledgedBy != "alice" {
		t.Fatalf("ack: %+v %v", s, err)
	}
	// The channels hear once that someone handles it.
	if ev := h.rec.last(); ev.Kind != KindAcknowledged || ev.AckBy != "alice" || !ev.Acknowledged ||
		ev.Threshold != 90 || ev.Comparison != ">=" || ev.NotificationCount != 4 {
		t.Fatalf("acknowledgement event %+v", ev)
	}
	if got := h.rec.take(); !eq(got, []string{"CRITICAL/acknowledged"}) {
		t.Fatalf("events of the acknowledgement %v", got)
	}
	if _, err := h.ev.Ack(ctx, "web01", cpu, "bob"); err != nil {
		t.Fatal(err)
	}
	h.sweep(3 * time.Hour)
	if got := h.rec.take(); len(got) != 0 {
		t.Fatalf("acknowledged alert renotified (or acknowledged twice): %v", got)
	}
	// A level change clears the acknowledgement.
	h.push("web01", cpu, 85)
	if s := h.state("web01", cpu); s.Acknowledged || s.Level != level.Warning {
		t.Fatalf("after change: %+v", s)
	}
	if ev := h.rec.last(); ev.Threshold != 80 || ev.Comparison != ">=" {
		t.Fatalf("WARNING event threshold %v %q, want >= 80", ev.Threshold, ev.Comparison)
	}
	h.sweep(time.Hour)
	if got := h.rec.take(); !eq(got, []string{"WARNING/change", "WARNING/renotify"}) {
		t.Fatalf("events %v", got)
	}
	h.push("web01", cpu, 10)
	if ev := h.rec.last(); ev.Kind != KindRecovery || ev.Threshold != 80 || ev.Comparison != ">=" {
		t.Fatalf("recovery event %+v, want the WARNING limit >= 80", ev)
	}
	if _, err := h.ev.Ack(ctx, "web01", cpu, "alice"); !errors.Is(err, ErrNotAlerting) {
		t.Fatalf("ack of OK: %v", err)
	}
	if j := h.journal("web01"); !slices.Contains(j, "web01 cpu_monitor.cpu_percent CRITICAL acknowledged by alice") {
		t.Fatalf("ack not journaled: %q", j)
	}
}

func TestRenotifyZeroDisables(t *testing.T) {
	cfg := quiet()
	cfg.Alerting.Renotify = 0
	h := newHarness(t, cfg)
	h.push("web01", cpu, 95)
	h.sweep(24 * time.Hour)
	if got := h.rec.take(); !eq(got, []string{"CRITICAL/change"}) {
		t.Fatalf("events %v", got)
	}
}

func TestSilenceHoldsNotificationsUntilItEnds(t *testing.T) {
	h := newHarness(t, quiet())
	ctx := context.Background()
	sl, err := h.ev.AddSilence(ctx, SilenceSpec{Host: "web*", Metric: "cpu_monitor.*", Duration: 2 * time.Hour, Comment: "kernel upgrade", By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	h.push("web01", cpu, 95)
	h.push("db01", cpu, 95) // not matched by the silence
	if ev := h.rec.last(); ev.Host != "db01" {
		t.Fatalf("silenced host notified: %+v", ev)
	}
	if got := h.rec.take(); !eq(got, []string{"CRITICAL/change"}) {
		t.Fatalf("events %v", got)
	}
	s := h.state("web01", cpu)
	if s.Level != level.Critical || s.NotificationCount != 0 || s.SilencedUntil != sl.Until {
		t.Fatalf("silenced state %+v (silence until %v)", s, sl.Until)
	}
	h.sweep(90 * time.Minute) // renotify due for db01 only
	if got := h.rec.take(); !eq(got, []string{"CRITICAL/renotify"}) {
		t.Fatalf("events %v", got)
	}
	h.sweep(31 * time.Minute) // the silence has ended: the held-back change goes out
	if got := h.rec.take(); !eq(got, []string{"CRITICAL/change"}) {
		t.Fatalf("events after silence %v", got)
	}
	if got := h.ev.Silences(); len(got) != 0 {
		t.Fatalf("expired silence still listed: %+v", got)
	}
	if s := h.state("web01", cpu); s.SilencedUntil != 0 || s.NotificationCount != 1 {
		t.Fatalf("state %+v", s)
	}
	j := strings.Join(h.journal(""), "\n")
	if !strings.Contains(j, "silence "+sl.ID+" by bob: host web* metric cpu_monitor.* until") || !strings.Contains(j, "(kernel upgrade)") ||
		!strings.Contains(j, "silence "+sl.ID+" (host web* metric cpu_monitor.*) expired") {
		t.Fatalf("journal %q", j)
	}
}

func TestSilenceRemovedEarlyAndRecoveryWhileSilenced(t *testing.T) {
	h := newHarness(t, baseConfig())
	ctx := context.Background()
	h.push("web01", cpu, 95) // notified
	sl, err := h.ev.AddSilence(ctx, SilenceSpec{Host: "web01", Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	h.push("web01", cpu, 50) // recovery is silenced
	if got := h.rec.take(); !eq(got, []string{"CRITICAL/change"}) {
		t.Fatalf("events %v", got)
	}
	h.push("web01", cpu, 85)
	if err := h.ev.RemoveSilence(ctx, sl.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	if err := h.ev.RemoveSilence(ctx, sl.ID, "carol"); !errors.Is(err, ErrUnknownSilence) {
		t.Fatalf("second removal: %v", err)
	}
	h.sweep(time.Second)
	if got := h.rec.take(); !eq(got, []string{"WARNING/change"}) {
		t.Fatalf("events after removal %v", got)
	}
	for _, bad := range []SilenceSpec{{Metric: "x", Duration: time.Hour}, {Host: "a", Duration: 0}, {Host: "a***", Duration: time.Hour}, {Host: "a", Duration: 400 * 24 * time.Hour}} {
		if _, err := h.ev.AddSilence(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
}

func TestFlappingNotifiesOnceThenSettles(t *testing.T) {
	cfg := quiet()
	cfg.Alerting.FlapCount = 4
	h := newHarness(t, cfg)
	vals := []float64{85, 50, 85, 50, 85, 50, 85}
	var got []string
	for _, v := range vals {
		h.push("web01", cpu, v)
		got = append(got, h.rec.take()...)
	}
	// Changes 1-4 are notified, the 5th within the window marks flapping,
	// the rest are quiet.
	want := []string{"WARNING/change", "OK/recovery", "WARNING/change", "OK/recovery", "WARNING/flapping"}
	if !eq(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if s := h.state("web01", cpu); !s.Flapping || s.Level != level.Warning {
		t.Fatalf("state %+v", s)
	}
	h.sweep(2 * time.Hour) // quiet for a flap window: settles (no renotify while flapping)
	if got := h.rec.take(); !eq(got, []string{"WARNING/change"}) {
		t.Fatalf("settle events %v", got)
	}
	if s := h.state("web01", cpu); s.Flapping {
		t.Fatalf("still flapping %+v", s)
	}
	j := h.journal("web01")
	if !slices.Contains(j, "web01 cpu_monitor.cpu_percent is flapping (5 level changes in 40s), now WARNING at 85") || !slices.Contains(j, "web01 cpu_monitor.cpu_percent stopped flapping at WARNING") {
		t.Fatalf("journal %q", j)
	}
}

func TestFlappingSettlesAtOKWithRecovery(t *testing.T) {
	cfg := quiet()
	cfg.Alerting.FlapCount = 2
	h := newHarness(t, cfg)
	for _, v := range []float64{85, 50, 85, 50} {
		h.push("web01", cpu, v)
	}
	if got := h.rec.take(); !eq(got, []string{"WARNING/change", "OK/recovery", "WARNING/flapping"}) {
		t.Fatalf("events %v", got)
	}
	h.sweep(9 * time.Minute)
	if got := h.rec.take(); len(got) != 0 {
		t.Fatalf("settled too early: %v", got)
	}
	h.sweep(time.Minute)
	if got := h.rec.take(); !eq(got, []string{"OK/recovery"}) {
		t.Fatalf("events %v", got)
	}
}

func TestRestartRestoresStatesAcksAndSilences(t *testing.T) {
	cfg := quiet()
	h := newHarness(t, cfg)
	ctx := context.Background()
	h.push("web01", cpu, 95)
	since := h.now
	h.sweep(time.Hour) // renotify: count 2
	h.push("db01", cpu, 85)
	if _, err := h.ev.Ack(ctx, "db01", cpu, "alice"); err != nil {
		t.Fatal(err)
	}
	sl, err := h.ev.AddSilence(ctx, SilenceSpec{Host: "web01", Metric: "cpu_monitor.*", Duration: 3 * time.Hour, By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	h.ev.FamilySettle = 0
	h.ev.ObserveHeartbeat(change("web01", "ipv6", "DOWN", h.now))
	h.rec.take()
	before := h.ev.ActiveAlerts()

	h.restart(cfg)
	after := h.ev.ActiveAlerts()
	// The tracker's words (when the last heartbeat came) are not kept: a
	// restored heartbeat alert says how long it has been DOWN.
	if len(after) != 3 || after[1].Text != "web01 lost IPv6: DOWN for 0s" {
		t.Fatalf("after restart: %+v", after)
	}
	for i := range after {
		before[i].Text, after[i].Text = "", ""
	}
	if !slices.Equal(before, after) {
		t.Fatalf("after restart:\n got %+v\nwant %+v", after, before)
	}
	w := h.state("web01", cpu)
	if w.Level != level.Critical || w.Since != toUnix(since) || w.NotificationCount != 2 || w.SilencedUntil != sl.Until {
		t.Fatalf("web01 %+v", w)
	}
	if d := h.state("db01", cpu); !d.Acknowledged || d.AcknowledgedBy != "alice" {
		t.Fatalf("db01 %+v", d)
	}
	if got := h.ev.Silences(); len(got) != 1 || got[0].ID != sl.ID {
		t.Fatalf("silences %+v", got)
	}
	// Samples keep their history across the restart: the same value holds
	// the level without a new notification.
	h.push("web01", cpu, 96)
	if got := h.rec.take(); len(got) != 0 {
		t.Fatalf("restart re-notified: %v", got)
	}
	// The renotify schedule survived too: web01 is silenced, db01 acked,
	// heartbeat.ipv6 renotifies an hour after its change.
	h.sweep(59 * time.Minute)
	if got := h.rec.take(); len(got) != 0 {
		t.Fatalf("events %v", got)
	}
	h.sweep(time.Minute)
	if got := h.rec.take(); !eq(got, []string{"CRITICAL/renotify"}) || h.state("web01", HeartbeatIPv6).NotificationCount != 2 {
		t.Fatalf("events %v", got)
	}
}

func TestReloadReevaluatesAtOnceAndDropsUnmatched(t *testing.T) {
	cfg := baseConfig()
	cfg.Thresholds["memory_monitor.percent"] = config.Threshold{Warning: fp(90)}
	h := newHarness(t, cfg)
	h.push("web01", cpu, 85)
	h.push("web01", "memory_monitor.percent", 70)
	h.push("web01", "disk_monitor./.percent", 95)
	h.rec.take()
	if _, ok := h.find("web01", "disk_monitor./.percent"); ok {
		t.Fatal("disk has no rule yet")
	}

	next := baseConfig()
	next.Thresholds = map[string]config.Threshold{
		cpu:                      {Warning: fp(90), Critical: fp(95)}, // 85 is now OK
		"disk_monitor.*.percent": {Warning: fp(80), Critical: fp(90)}, // new: 95 is CRITICAL
	} // memory rule removed
	if err := h.ev.Reload(next); err != nil {
		t.Fatal(err)
	}
	if got := h.level("web01", cpu); got != level.OK {
		t.Fatalf("cpu after reload: %s", got)
	}
	if got := h.level("web01", "disk_monitor./.percent"); got != level.Critical {
		t.Fatalf("disk after reload: %s", got)
	}
	if _, ok := h.find("web01", "memory_monitor.percent"); ok {
		t.Fatal("memory state not dropped")
	}
	if got := h.rec.take(); !eq(got, []string{"OK/recovery", "CRITICAL/change"}) && !eq(got, []string{"CRITICAL/change", "OK/recovery"}) {
		t.Fatalf("events %v", got)
	}
	// Per-host rules: an override for web01 beats the global rule.
	over := baseConfig()
	over.Thresholds = next.Thresholds
	over.Watchhosts["web01"] = config.WatchHost{Thresholds: map[string]config.Threshold{"cpu_monitor.*": {Warning: fp(50)}}}
	if err := h.ev.Reload(over); err != nil {
		t.Fatal(err)
	}
	if got := h.level("web01", cpu); got != level.Warning {
		t.Fatalf("override not applied: %s", got)
	}
	// Removing the host from watchhosts drops its states, also in the store.
	gone := baseConfig()
	delete(gone.Watchhosts, "web01")
	if err := h.ev.Reload(gone); err != nil {
		t.Fatal(err)
	}
	if got := h.ev.HostAlerts("web01"); len(got) != 0 {
		t.Fatalf("unwatched host keeps states %+v", got)
	}
	if err := h.ev.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := h.st.AlertStates(context.Background())
	if err != nil || len(rows) != 0 {
		t.Fatalf("stored states %+v %v", rows, err)
	}
}

func TestDynamicHostsNeedWatchDynamic(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, baseConfig())
	if _, err := h.st.EnsureHost(ctx, "dyn01", true); err != nil {
		t.Fatal(err)
	}
	h.push("dyn01", cpu, 95)
	h.ev.ObserveHeartbeat(change("dyn01", "ipv4", "DOWN", h.now))
	if got := h.ev.HostAlerts("dyn01"); len(got) != 0 || len(h.rec.take()) != 0 {
		t.Fatalf("unwatched dynamic host evaluated: %+v", got)
	}
	if h.ev.Evaluated("dyn01") || slices.Contains(h.ev.EvaluatedHosts(), "dyn01") {
		t.Fatal("dyn01 reported as evaluated")
	}
	cfg := baseConfig()
	cfg.WatchDynamic = true
	if err := h.ev.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	// Reload picks up the latest stored sample of a newly watched host.
	if got := h.level("dyn01", cpu); got != level.Critical {
		t.Fatalf("dyn01 after watch_dynamic: %s", got)
	}
	if got := h.ev.EvaluatedHosts(); !eq(got, []string{"db01", "dyn01", "web01"}) {
		t.Fatalf("evaluated hosts %v", got)
	}
}

func TestJournalSinkWritesNotifications(t *testing.T) {
	h := newHarness(t, baseConfig())
	h.ev.sink = JournalSink(h.st)
	h.push("web01", cpu, 85.5)
	j := h.journal("web01")
	if !slices.Contains(j, "notify web01 cpu_monitor.cpu_percent WARNING (change #1): web01 cpu_monitor.cpu_percent 85.5 ≥ 80 (WARNING)") {
		t.Fatalf("journal %q", j)
	}
}

// quiet is baseConfig without staleness, for tests that let hours pass
// without samples.
func quiet() *config.Config {
	cfg := baseConfig()
	cfg.Alerting.StaleAfter = 0
	return cfg
}

func TestConcurrentUseWithBackgroundLoop(t *testing.T) {
	ctx := context.Background()
	st, err := testutil.OpenStore(ctx, testutil.StorePlace(t), store.Options{SampleHistory: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := &recorder{}
	ev, err := New(baseConfig(), st, nil, rec)
	if err != nil {
		t.Fatal(err)
	}
	st.FeedAlerts(ev)
	if err := ev.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	for _, host := range []string{"web01", "db01"} {
		go func() {
			defer func() { done <- struct{}{} }()
			base := float64(time.Now().Unix())
			for i := 0; i < 200; i++ {
				v := float64(i % 100)
				ps := store.PluginSample{Plugin: "cpu_monitor", Sample: store.Sample{Timestamp: base + float64(i), Paths: []string{"cpu_percent"}, Values: []float64{v}}}
				if err := st.AppendSamples(ctx, host, []store.PluginSample{ps}); err != nil {
					t.Error(err)
					return
				}
				if i%20 == 0 {
					ev.ObserveHeartbeat(change(host, "ipv4", []string{"UP", "LATE", "DOWN"}[i%3], time.Now()))
				}
			}
		}()
	}
	go func() {
		defer func() { done <- struct{}{} }()
		for i := 0; i < 50; i++ {
			ev.ActiveAlerts()
			ev.HostAlerts("web01")
			ev.Sweep(time.Now())
			if i%10 == 0 {
				if err := ev.Reload(baseConfig()); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	for i := 0; i < 3; i++ {
		<-done
	}
	if err := ev.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := st.AlertStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Status{}
	for _, h := range []string{"web01", "db01"} {
		for _, s := range ev.HostAlerts(h) {
			want[h+" "+s.MetricPath] = s
		}
	}
	if len(rows) != len(want) {
		t.Fatalf("stored %d states, have %d", len(rows), len(want))
	}
	for _, r := range rows {
		s := want[r.Host+" "+r.Metric]
		if r.Level != s.Level || r.LastValue != s.LastValue || r.NotificationCount != s.NotificationCount {
			t.Fatalf("stored %+v, have %+v", r, s)
		}
	}
}

// TestUserSilenceOnlyCoversHostsTheCreatorManages: a glob silence made by a
// manager of web01 does not hold back db01, a host matching the glob that
// the creator does not manage (for instance one added later).
func TestUserSilenceOnlyCoversHostsTheCreatorManages(t *testing.T) {
	h := newHarness(t, quiet())
	cfg := &config.Config{
		Users:      map[string]config.User{"bob": {}},
		Watchhosts: map[string]config.WatchHost{"web01": {Managers: []string{"bob"}}},
	}
	h.ev.MayManage = access.NewPolicy(func() *config.Config { return cfg }, access.NewHosts(cfg))
	if _, err := h.ev.AddSilence(context.Background(), SilenceSpec{Host: "*", Duration: time.Hour, By: "bob"}); err != nil {
		t.Fatal(err)
	}
	h.push("web01", cpu, 95)
	if got := h.rec.take(); len(got) != 0 {
		t.Fatalf("web01 should be silenced, got %v", got)
	}
	h.push("db01", cpu, 95)
	if ev := h.rec.last(); ev.Host != "db01" {
		t.Fatalf("db01 not notified: %+v", ev)
	}
	if s := h.state("db01", cpu); s.SilencedUntil != 0 {
		t.Fatalf("db01 shown silenced: %+v", s)
	}
}
