package alert

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/sdk/level"
)

// A silence scheduled for later holds nothing back before its start,
// holds back from its start until its end (counted from the start), is
// listed in between and survives a restart with its start.
func TestScheduledSilenceHoldsOnlyFromItsStart(t *testing.T) {
	h := newHarness(t, quiet())
	ctx := context.Background()
	sl, err := h.ev.AddSilence(ctx, SilenceSpec{Host: "web01", Duration: time.Hour, Starts: h.now.Add(30 * time.Minute), By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if sl.Starts != toUnix(t0.Add(30*time.Minute)) || sl.Until != toUnix(t0.Add(90*time.Minute)) {
		t.Fatalf("scheduled silence %+v", sl)
	}
	if got := h.ev.Silences(); len(got) != 1 || got[0].ID != sl.ID {
		t.Fatalf("scheduled silence not listed: %+v", got)
	}
	h.push("web01", cpu, 95) // before the start: told
	if got := h.rec.take(); !eq(got, []string{"CRITICAL/change"}) {
		t.Fatalf("before the start: events %v", got)
	}
	if s := h.state("web01", cpu); s.SilencedUntil != 0 {
		t.Fatalf("silenced before its start: %+v", s)
	}
	h.push("web01", cpu, 10)
	if got := h.rec.take(); !eq(got, []string{"OK/recovery"}) {
		t.Fatalf("recovery: events %v", got)
	}
	h.restart(quiet())
	if got := h.ev.Silences(); len(got) != 1 || got[0].Starts != sl.Starts || got[0].Until != sl.Until {
		t.Fatalf("after restart: %+v, want %+v", got, sl)
	}
	h.sweep(31 * time.Minute) // inside the silence
	h.push("web01", cpu, 95)
	if got := h.rec.take(); len(got) != 0 {
		t.Fatalf("silenced: events %v", got)
	}
	if s := h.state("web01", cpu); s.Level != level.Critical || s.SilencedUntil != sl.Until {
		t.Fatalf("silenced state %+v", s)
	}
	h.sweep(time.Hour) // ended: the held-back change goes out
	if got := h.rec.take(); !eq(got, []string{"CRITICAL/change"}) {
		t.Fatalf("after the silence: events %v", got)
	}
	if !strings.Contains(strings.Join(h.journal("web01"), "\n"), "silence "+sl.ID+" by bob: host web01 metric ** from 2026-03-01T12:30:00Z until 2026-03-01T13:30:00Z") {
		t.Fatalf("journal %q", h.journal("web01"))
	}
}

// A recurring maintenance window in a time zone holds back the
// notifications of matching hosts while it lasts; the held-back change
// goes out when it ends; other hosts are told at once.
func TestMaintenanceWindowHoldsNotificationsWhileItLasts(t *testing.T) {
	cfg := quiet()
	// t0 is Sunday 2026-03-01 12:00 UTC, 13:00 in Berlin (CET).
	cfg.Maintenance = []config.Maintenance{{Name: "patching", Host: "web*", Days: []string{"sunday"}, Start: "13:00", End: "14:00", TimeZone: "Europe/Berlin"}}
	h := newHarness(t, cfg)
	ws := h.ev.Windows()
	if len(ws) != 1 || !ws[0].Active || !ws[0].NextEnd.Equal(t0.Add(time.Hour)) || !ws[0].NextStart.Equal(t0) {
		t.Fatalf("windows %+v", ws)
	}
	h.push("web01", cpu, 95)
	h.push("db01", cpu, 95)
	if ev := h.rec.last(); ev.Host != "db01" {
		t.Fatalf("host in maintenance notified: %+v", ev)
	}
	if got := h.rec.take(); !eq(got, []string{"CRITICAL/change"}) {
		t.Fatalf("events during the window %v", got)
	}
	if s := h.state("web01", cpu); s.SilencedUntil != toUnix(t0.Add(time.Hour)) {
		t.Fatalf("state in the window %+v", s)
	}
	h.sweep(61 * time.Minute)
	h.rec.mu.Lock()
	var web []string
	for _, ev := range h.rec.events {
		if ev.Host == "web01" {
			web = append(web, string(ev.Level)+"/"+ev.Kind)
		}
	}
	h.rec.events = nil
	h.rec.mu.Unlock()
	if !eq(web, []string{"CRITICAL/change"}) {
		t.Fatalf("after the window: web01 events %v", web)
	}
	ws = h.ev.Windows()
	if ws[0].Active || !ws[0].NextStart.Equal(t0.AddDate(0, 0, 7)) {
		t.Fatalf("next occurrence %+v", ws[0])
	}
	// A reload without the window lifts it.
	cfg2 := quiet()
	cfg2.Maintenance = []config.Maintenance{{Host: "db*", Start: "00:00", End: "00:00"}}
	if err := h.ev.Reload(cfg2); err != nil {
		t.Fatal(err)
	}
	if ws := h.ev.Windows(); len(ws) != 1 || ws[0].Host != "db*" || !ws[0].Active {
		t.Fatalf("after reload %+v", ws)
	}
}

func TestMaintenanceScheduleAcrossMidnightAndDST(t *testing.T) {
	m := config.Maintenance{Host: "x", Days: []string{"sat"}, Start: "23:00", End: "01:30", TimeZone: "America/New_York"}
	s, err := m.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	for _, c := range []struct {
		at     time.Time
		active bool
		end    time.Time
	}{
		{time.Date(2026, 3, 7, 22, 59, 0, 0, ny), false, time.Time{}},
		{time.Date(2026, 3, 7, 23, 0, 0, 0, ny), true, time.Date(2026, 3, 8, 1, 30, 0, 0, ny)},
		{time.Date(2026, 3, 8, 1, 29, 0, 0, ny), true, time.Date(2026, 3, 8, 1, 30, 0, 0, ny)},
		{time.Date(2026, 3, 8, 1, 30, 0, 0, ny), false, time.Time{}},
		{time.Date(2026, 3, 8, 23, 30, 0, 0, ny), false, time.Time{}}, // Sunday
	} {
		end, ok := s.Active(c.at)
		if ok != c.active || !end.Equal(c.end) {
			t.Errorf("at %v: active %v until %v, want %v until %v", c.at, ok, end, c.active, c.end)
		}
	}
	// 2026-03-08 is the DST switch in New York: the window still ends at
	// 01:30 local, 06:30 UTC.
	if end, _ := s.Active(time.Date(2026, 3, 8, 0, 0, 0, 0, ny)); !end.Equal(time.Date(2026, 3, 8, 6, 30, 0, 0, time.UTC)) {
		t.Errorf("end across DST %v", end.UTC())
	}
}
