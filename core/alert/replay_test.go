package alert

import (
	"slices"
	"testing"
	"time"
)

// A crash between saving a level change and queueing its notification
// lost the notification (the restarted daemon saw the change as told). At
// start every notification decided within ReplayWindow is offered again,
// as the identical event, marked Replay; older ones are not.
func TestRecentNotificationsAreOfferedAgainAfterARestart(t *testing.T) {
	cfg := quiet()
	h := newHarness(t, cfg)
	h.push("db01", cpu, 95) // CRITICAL, told long before the restart
	h.now = h.now.Add(ReplayWindow + time.Minute)
	h.push("web01", cpu, 85) // WARNING
	h.push("web01", cpu, 95) // CRITICAL
	h.push("web01", cpu, 10) // recovery
	h.push("web01", cpu, 97) // CRITICAL again: a new episode
	h.rec.mu.Lock()
	var told []Event
	for _, ev := range h.rec.events {
		if ev.Host == "web01" {
			told = append(told, ev)
		}
	}
	h.rec.mu.Unlock()
	if len(told) != 4 {
		t.Fatalf("web01 was told %d times before the restart, want 4", len(told))
	}
	last := told[len(told)-1]

	h.now = h.now.Add(time.Minute)
	h.restart(cfg)
	h.rec.mu.Lock()
	replays, fresh := slices.Clone(h.rec.replays), len(h.rec.events)
	h.rec.mu.Unlock()
	if fresh != 0 {
		t.Fatalf("the restart decided %d new notifications", fresh)
	}
	// One state, one last notification: web01's CRITICAL change, again.
	if len(replays) != 1 {
		t.Fatalf("replayed %d events, want 1 (web01's last): %+v", len(replays), replays)
	}
	r := replays[0]
	if r.ID != last.ID || r.Kind != last.Kind || r.Level != last.Level || r.PreviousLevel != last.PreviousLevel ||
		!r.EpisodeStart.Equal(last.EpisodeStart) || !r.Replay {
		t.Errorf("replayed %+v\nwant the same event as %+v", r, last)
	}

	// A recovery is offered again as a recovery of the level it ended.
	h.push("web01", cpu, 10)
	h.rec.take()
	h.restart(cfg)
	h.rec.mu.Lock()
	replays = slices.Clone(h.rec.replays)
	h.rec.mu.Unlock()
	if len(replays) != 1 || replays[0].Kind != KindRecovery || replays[0].PreviousLevel != "CRITICAL" || replays[0].EpisodeStart.IsZero() {
		t.Fatalf("replayed recovery %+v", replays)
	}
}
