package alert

import (
	"context"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/sdk/level"
)

// history returns a host's episodes, newest first, once every queued
// write is committed.
func (h *harness) history(host string) []Episode {
	h.t.Helper()
	ctx := context.Background()
	if err := h.st.JournalSync(ctx, "", "barrier"); err != nil {
		h.t.Fatal(err)
	}
	eps, err := h.st.Episodes(ctx, EpisodeQuery{Host: host, Limit: 100})
	if err != nil {
		h.t.Fatal(err)
	}
	return eps
}

// only returns the one episode of a host's metric, failing otherwise.
func (h *harness) only(host, metric string) Episode {
	h.t.Helper()
	var found []Episode
	for _, ep := range h.history(host) {
		if ep.Metric == metric {
			found = append(found, ep)
		}
	}
	if len(found) != 1 {
		h.t.Fatalf("%s %s: %d episodes, want 1: %+v", host, metric, len(found), found)
	}
	return found[0]
}

func TestOneEpisodeFromWarningThroughCriticalToOK(t *testing.T) {
	h := newHarness(t, baseConfig())
	h.push("web01", cpu, 50)
	h.push("web01", cpu, 85) // WARNING: the episode starts
	start := h.now
	if eps := h.history("web01"); len(eps) != 1 || !eps[0].Open() || eps[0].WorstLevel != level.Warning || eps[0].Peak != 85 {
		t.Fatalf("open row at the start: %+v", eps)
	}
	h.push("web01", cpu, 95) // CRITICAL
	h.push("web01", cpu, 97.5)
	h.push("web01", cpu, 92)
	h.push("web01", cpu, 85) // WARNING again: the same episode
	if _, err := h.ev.Ack(context.Background(), "web01", cpu, "alice"); err != nil {
		t.Fatal(err)
	}
	h.push("web01", cpu, 40) // OK: the episode ends
	end := h.now
	h.push("web01", cpu, 45)

	ep := h.only("web01", cpu)
	want := Episode{ID: ep.ID, Host: "web01", Metric: cpu, Start: toUnix(start), End: toUnix(end),
		WorstLevel: level.Critical, Peak: 97.5, HasPeak: true, AckBy: "alice", Text: ep.Text}
	if ep != want {
		t.Fatalf("episode\n got %+v\nwant %+v", ep, want)
	}
	if s := h.state("web01", cpu); s.EpisodeStart != 0 {
		t.Errorf("state still in an episode: %+v", s)
	}
	if ep.Text == "" {
		t.Error("the episode has no text")
	}

	// A second excursion is a second episode.
	h.push("web01", cpu, 99)
	if eps := h.history("web01"); len(eps) != 2 || eps[0].Start != toUnix(h.now) || !eps[0].Open() || eps[0].WorstLevel != level.Critical || eps[1].ID != ep.ID {
		t.Fatalf("second episode: %+v", eps)
	}
}

func TestEpisodeContinuesAcrossRestart(t *testing.T) {
	cfg := baseConfig()
	h := newHarness(t, cfg)
	h.push("web01", cpu, 95)
	start := h.now
	h.push("web01", cpu, 98)
	h.restart(cfg)
	// After the restart the loaded state continues its episode: no second
	// row, and the peak before the restart still counts.
	h.push("web01", cpu, 91)
	if eps := h.history("web01"); len(eps) != 1 || !eps[0].Open() || eps[0].Start != toUnix(start) {
		t.Fatalf("after restart: %+v", eps)
	}
	h.push("web01", cpu, 20)
	ep := h.only("web01", cpu)
	if ep.Start != toUnix(start) || ep.End != toUnix(h.now) || ep.Peak != 98 || ep.WorstLevel != level.Critical {
		t.Fatalf("episode across restart: %+v", ep)
	}
}

func TestRestartEndsEpisodesWhoseStateIsGone(t *testing.T) {
	cfg := baseConfig()
	h := newHarness(t, cfg)
	h.push("web01", cpu, 85)
	h.push("db01", cpu, 85)
	// db01 is no longer watched after the restart: its episode ends then.
	cfg2 := baseConfig()
	delete(cfg2.Watchhosts, "db01")
	h.now = h.now.Add(time.Minute)
	h.restart(cfg2)
	if ep := h.only("db01", cpu); ep.Open() || ep.End != toUnix(h.now) {
		t.Fatalf("db01 episode: %+v", ep)
	}
	if ep := h.only("web01", cpu); !ep.Open() {
		t.Fatalf("web01 episode: %+v", ep)
	}
}

func TestStateWithoutRowOpensEpisodeOnLoad(t *testing.T) {
	// A state stored before the history existed.
	cfg := baseConfig()
	h := newHarness(t, cfg)
	since := toUnix(t0.Add(-time.Hour))
	row := SavedState{Host: "web01", Metric: cpu, Level: level.Critical, Since: since, LastValue: 93, LastCheck: toUnix(t0), AckBy: "bob", Acknowledged: true}
	if err := h.st.SaveAlertStatesSync(context.Background(), []SavedState{row}, nil); err != nil {
		t.Fatal(err)
	}
	h.restart(cfg)
	ep := h.only("web01", cpu)
	if !ep.Open() || ep.Start != since || ep.WorstLevel != level.Critical || ep.Peak != 93 || ep.AckBy != "bob" {
		t.Fatalf("episode of a loaded state: %+v", ep)
	}
}

func TestEpisodePeakOfBelowRuleIsTheLowest(t *testing.T) {
	cfg := baseConfig()
	cfg.Thresholds["memory_monitor.available_mb"] = config.Threshold{Warning: fp(500), Critical: fp(100), Below: true}
	h := newHarness(t, cfg)
	const mem = "memory_monitor.available_mb"
	for _, v := range []float64{2000, 400, 80, 150, 300, 1000} {
		h.push("web01", mem, v)
	}
	ep := h.only("web01", mem)
	if ep.Peak != 80 || ep.WorstLevel != level.Critical || ep.Open() {
		t.Fatalf("below episode: %+v", ep)
	}
}

func TestUnknownEpisodeHasNoPeakAndEndsWhenForgotten(t *testing.T) {
	cfg := baseConfig()
	cfg.Alerting.ForgetAfter = time.Hour
	h := newHarness(t, cfg)
	h.push("web01", cpu, 50)
	h.sweep(cfg.Alerting.StaleAfter) // no data: UNKNOWN
	ep := h.only("web01", cpu)
	if !ep.Open() || ep.WorstLevel != level.Unknown || ep.HasPeak {
		t.Fatalf("stale episode: %+v", ep)
	}
	h.sweep(cfg.Alerting.ForgetAfter)
	if _, ok := h.find("web01", cpu); ok {
		t.Fatal("state not forgotten")
	}
	if ep := h.only("web01", cpu); ep.Open() || ep.End != toUnix(h.now) {
		t.Fatalf("forgotten episode: %+v", ep)
	}
}

func TestHeartbeatEpisodePeakIsTheState(t *testing.T) {
	h := newHarness(t, baseConfig())
	hb := func(to string) {
		h.now = h.now.Add(10 * time.Second)
		h.ev.ObserveHeartbeat(heartbeat.Change{Host: "web01", Family: heartbeat.IPv6, To: heartbeat.State(to), Time: h.now})
	}
	hb("UP")
	hb("DOWN")
	down := h.now
	hb("UP")
	ep := h.only("web01", HeartbeatIPv6)
	if ep.Start != toUnix(down) || ep.End != toUnix(h.now) || ep.Peak != 2 || ep.WorstLevel != level.Critical {
		t.Fatalf("heartbeat episode: %+v", ep)
	}
}

func TestPeakAloneIsSavedAtMostOncePerInterval(t *testing.T) {
	h := newHarness(t, baseConfig())
	h.push("web01", cpu, 95)
	h.push("web01", cpu, 96) // 10s later: kept in memory only
	if ep := h.only("web01", cpu); ep.Peak != 95 {
		t.Fatalf("peak written early: %+v", ep)
	}
	h.now = h.now.Add(episodeSaveEvery)
	h.push("web01", cpu, 97)
	if ep := h.only("web01", cpu); ep.Peak != 97 {
		t.Fatalf("peak not written after %s: %+v", episodeSaveEvery, ep)
	}
}
