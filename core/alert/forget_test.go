package alert

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/sdk/level"
)

const (
	mntX    = "disk_monitor./mnt/x.percent" // the mount that disappears
	rootDir = "disk_monitor./.percent"      // a mount that keeps reporting
	// forgotX is the journal line of mntX last seen at t0+10s.
	forgotX = "web01 disk_monitor./mnt/x.percent forgotten (no data since 2026-03-01T12:00:10Z)"
)

// forgetConfig is baseConfig with a disk rule and forget_after set
// (stale_after 5m, renotify 1h).
func forgetConfig(forget time.Duration) *config.Config {
	cfg := baseConfig()
	cfg.Thresholds["disk_monitor.*.percent"] = config.Threshold{Warning: fp(80), Critical: fp(90)}
	cfg.Alerting.ForgetAfter = forget
	return cfg
}

// step sweeps d later and then feeds the mount that keeps reporting, so
// with d under stale_after it never goes stale.
func (h *harness) step(d time.Duration) {
	h.t.Helper()
	h.sweep(d)
	h.feed("web01", rootDir, 50)
}

// stepUntil steps 4 minutes at a time up to exactly at.
func (h *harness) stepUntil(at time.Time) {
	h.t.Helper()
	for h.now.Before(at) {
		h.step(min(4*time.Minute, at.Sub(h.now)))
	}
}

func countLines(lines []string, want string) int {
	n := 0
	for _, l := range lines {
		if l == want {
			n++
		}
	}
	return n
}

func TestForgetAfter(t *testing.T) {
	const window = 3 * time.Hour // how long the watched state has been UNKNOWN at the check
	for _, tc := range []struct {
		name      string
		forget    time.Duration
		heartbeat bool // watch an UNKNOWN heartbeat.ipv4 instead of mntX
		gone      bool // forgotten once UNKNOWN for window
	}{
		{"forgotten after forget_after", window, false, true},
		{"forget_after 0 keeps forever", 0, false, false},
		{"heartbeat kept", window, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := forgetConfig(tc.forget)
			h := newHarness(t, cfg)
			metric := mntX
			var unknownAt time.Time
			if tc.heartbeat {
				// Heartbeat states never go stale; an UNKNOWN one (as the
				// store may hold) is the only kind forget_after could catch.
				metric = HeartbeatIPv4
				unknownAt = h.now
				row := SavedState{Host: "web01", Metric: HeartbeatIPv4, Level: level.Unknown, Since: toUnix(unknownAt), LastCheck: toUnix(unknownAt)}
				if err := h.st.SaveAlertStatesSync(ctx, []SavedState{row}, nil); err != nil {
					t.Fatal(err)
				}
				h.restart(cfg)
				h.ev.ObserveHeartbeat(change("web01", "ipv6", "DOWN", h.now)) // alerting for days, never forgotten
				h.feed("web01", rootDir, 50)
			} else {
				h.push("web01", mntX, 85)
				h.feed("web01", rootDir, 50)
				for h.level("web01", mntX) != level.Unknown {
					h.step(time.Minute)
				}
				unknownAt = h.now
				if got := h.rec.takeOf(mntX); !eq(got, []string{"WARNING/change", "UNKNOWN/change"}) {
					t.Fatalf("events before UNKNOWN %v", got)
				}
			}
			h.rec.take()

			// Just before forget_after: kept, renotifying.
			h.stepUntil(unknownAt.Add(window - time.Second))
			if s := h.state("web01", metric); s.Level != level.Unknown {
				t.Fatalf("before forget_after: %+v", s)
			}
			if got := h.rec.takeOf(metric); tc.gone && !eq(got, []string{"UNKNOWN/renotify", "UNKNOWN/renotify"}) {
				t.Fatalf("events before forget_after %v", got)
			}

			// At forget_after.
			h.step(time.Second)
			_, found := h.find("web01", metric)
			if found == tc.gone {
				t.Fatalf("at forget_after: found %v, want %v", found, !tc.gone)
			}
			if got := h.rec.takeOf(metric); tc.gone && len(got) != 0 {
				t.Fatalf("forgetting notified %v", got)
			}
			if stored := h.stored("web01", metric); stored == tc.gone {
				t.Fatalf("at forget_after: stored %v, want %v", stored, !tc.gone)
			}

			// A day later: no renotify of a forgotten state, and one journal
			// line for it.
			h.stepUntil(h.now.Add(25 * time.Hour))
			got := h.rec.takeOf(metric)
			switch {
			case tc.gone && len(got) != 0:
				t.Fatalf("forgotten state notified %v", got)
			case !tc.gone && countLines(got, "UNKNOWN/renotify") < 23: // hourly, sweeps 4m apart
				t.Fatalf("kept state renotifies %v", got)
			}
			if _, found := h.find("web01", metric); found == tc.gone {
				t.Fatalf("a day later: found %v", found)
			}
			want := 0
			if tc.gone {
				want = 1
			}
			if n := countLines(h.journal("web01"), forgotX); n != want {
				t.Fatalf("%d journal lines %q, want %d", n, forgotX, want)
			}

			// The other mount and the DOWN heartbeat are untouched.
			if s := h.state("web01", rootDir); s.Level != level.OK {
				t.Fatalf("%s %+v", rootDir, s)
			}
			if tc.heartbeat && h.level("web01", HeartbeatIPv6) != level.Critical {
				t.Fatal("DOWN heartbeat lost")
			}

			// After a restart the store agrees.
			h.restart(cfg)
			if _, found := h.find("web01", metric); found == tc.gone {
				t.Fatalf("after restart: found %v, want %v", found, !tc.gone)
			}
			if _, found := h.find("web01", rootDir); !found {
				t.Fatalf("after restart: %s lost", rootDir)
			}
			h.sweep(time.Hour)
			if got := h.rec.takeOf(metric); tc.gone && len(got) != 0 {
				t.Fatalf("after restart: forgotten state notified %v", got)
			}
		})
	}
}

func TestForgottenMetricStartsFresh(t *testing.T) {
	cfg := forgetConfig(time.Hour)
	h := newHarness(t, cfg)
	h.push("web01", mntX, 85)
	h.sweep(5 * time.Minute)
	h.sweep(time.Hour)
	if _, found := h.find("web01", mntX); found {
		t.Fatal("not forgotten")
	}
	h.rec.take()
	// Mounted again: a new state from OK, not the old UNKNOWN episode.
	h.push("web01", mntX, 95)
	s := h.state("web01", mntX)
	if s.Level != level.Critical || s.Since != toUnix(h.now) || s.NotificationCount != 1 || s.LastValue != 95 {
		t.Fatalf("back after forgetting: %+v", s)
	}
	if ev := h.rec.last(); ev.Kind != KindChange || ev.PreviousLevel != level.OK {
		t.Fatalf("event %+v", ev)
	}
	if !h.stored("web01", mntX) {
		t.Fatal("new state not stored (deletion written after it?)")
	}
	j := h.journal("web01")
	if got := j[len(j)-2:]; !eq(got, []string{forgotX, "web01 disk_monitor./mnt/x.percent 95 ≥ 90 (CRITICAL) [disk_monitor./mnt/x.percent OK -> CRITICAL]"}) {
		t.Fatalf("journal %q", got)
	}
	h.restart(cfg)
	if s := h.state("web01", mntX); s.Level != level.Critical || s.NotificationCount != 1 {
		t.Fatalf("after restart: %+v", s)
	}
}

func TestForgetAfterCountsAcrossRestart(t *testing.T) {
	cfg := forgetConfig(2 * time.Hour)
	h := newHarness(t, cfg)
	h.push("web01", mntX, 85)
	h.sweep(5 * time.Minute)
	unknownAt := h.now
	h.sweep(time.Hour)
	h.restart(cfg) // the UNKNOWN since survives; the count does not restart
	h.sweep(time.Hour - time.Second)
	if h.level("web01", mntX) != level.Unknown {
		t.Fatal("lost UNKNOWN across restart")
	}
	h.sweep(time.Second)
	if h.now != unknownAt.Add(2*time.Hour) {
		t.Fatalf("clock %v", h.now)
	}
	if _, found := h.find("web01", mntX); found {
		t.Fatal("not forgotten forget_after after it went UNKNOWN")
	}
	if j := h.journal("web01"); !strings.HasSuffix(j[len(j)-1], "forgotten (no data since 2026-03-01T12:00:10Z)") {
		t.Fatalf("journal %q", j)
	}
}
