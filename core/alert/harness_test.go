package alert

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/sdk/level"
)

// recorder is a Sink that keeps every event; events offered again at
// start (Replay, see replay.go) are kept apart in replays, so tests about
// what a restart notifies see only new decisions.
type recorder struct {
	mu      sync.Mutex
	events  []Event
	replays []Event
}

func (r *recorder) AlertEvent(ev Event) {
	r.mu.Lock()
	if ev.Replay {
		r.replays = append(r.replays, ev)
	} else {
		r.events = append(r.events, ev)
	}
	r.mu.Unlock()
}

// take returns the events since the last take as "LEVEL/kind" strings.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []string{}
	for _, ev := range r.events {
		out = append(out, string(ev.Level)+"/"+ev.Kind)
	}
	r.events = nil
	return out
}

// takeOf returns the events of one metric since the last take as
// "LEVEL/kind" strings; the events of other metrics are dropped.
func (r *recorder) takeOf(metric string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []string{}
	for _, ev := range r.events {
		if ev.MetricPath == metric {
			out = append(out, string(ev.Level)+"/"+ev.Kind)
		}
	}
	r.events = nil
	return out
}

func (r *recorder) last() Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return Event{}
	}
	return r.events[len(r.events)-1]
}

func fp(v float64) *float64 { return &v }

// t0 is the test clock's start: a fixed, recent-looking time.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// baseConfig watches web01 and db01 with one cpu rule; tests adjust it.
func baseConfig() *config.Config {
	return &config.Config{
		Watchhosts: map[string]config.WatchHost{"web01": {}, "db01": {}},
		Thresholds: map[string]config.Threshold{
			"cpu_monitor.cpu_percent": {Warning: fp(80), Critical: fp(90)},
		},
		Alerting: config.Alerting{
			StaleAfter: 5 * time.Minute, Renotify: time.Hour,
			HeartbeatLate: string(level.Warning), HeartbeatDown: string(level.Critical),
			FlapCount: 6, FlapWindow: 10 * time.Minute,
		},
	}
}

// harness is a real store in a temporary directory, an evaluator fed by it
// (without the background loop: tests sweep with their own clock) and a
// recording sink.
type harness struct {
	t   *testing.T
	dir string
	st  *store.Store
	ev  *Evaluator
	rec *recorder
	now time.Time
}

func newHarness(t *testing.T, cfg *config.Config) *harness {
	t.Helper()
	h := &harness{t: t, dir: testutil.StorePlace(t), now: t0}
	h.open(cfg)
	return h
}

// open (re)opens the store and a fresh evaluator on h.dir.
func (h *harness) open(cfg *config.Config) {
	h.t.Helper()
	st, err := testutil.OpenStore(context.Background(), h.dir, store.Options{SampleHistory: 10})
	if err != nil {
		h.t.Fatal(err)
	}
	h.st = st
	h.rec = &recorder{}
	ev, err := New(cfg, st, nil, h.rec)
	if err != nil {
		h.t.Fatal(err)
	}
	st.FeedAlerts(ev)
	ev.Now = func() time.Time { return h.now }
	if err := ev.start(context.Background(), false); err != nil {
		h.t.Fatal(err)
	}
	h.ev = ev
	h.t.Cleanup(h.close)
}

// close stops the evaluator (persisting everything) and closes the store.
func (h *harness) close() {
	if h.st == nil {
		return
	}
	if err := h.ev.Stop(context.Background()); err != nil {
		h.t.Error(err)
	}
	if err := h.st.Close(); err != nil {
		h.t.Error(err)
	}
	h.st = nil
}

func (h *harness) restart(cfg *config.Config) {
	h.t.Helper()
	h.close()
	h.open(cfg)
}

// push advances the clock by 10s and ingests one value of metric (plugin
// "." path) for host through the store, stamped with the new time.
func (h *harness) push(host, metric string, v float64) {
	h.t.Helper()
	h.now = h.now.Add(10 * time.Second)
	h.feed(host, metric, v)
}

// feed ingests one value of metric for host stamped with the current time,
// without moving the clock.
func (h *harness) feed(host, metric string, v float64) {
	h.t.Helper()
	plugin, path, _ := strings.Cut(metric, ".")
	ps := store.PluginSample{Plugin: plugin, Sample: store.Sample{Timestamp: toUnix(h.now), Paths: []string{path}, Values: []float64{v}}}
	if err := h.st.AppendSamples(context.Background(), host, []store.PluginSample{ps}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) sweep(d time.Duration) {
	h.now = h.now.Add(d)
	h.ev.Sweep(h.now)
}

// state returns the status of a host's metric, failing when it has none.
func (h *harness) state(host, metric string) Status {
	h.t.Helper()
	s, ok := h.find(host, metric)
	if !ok {
		h.t.Fatalf("%s %s has no alert state; states: %+v", host, metric, h.ev.HostAlerts(host))
	}
	return s
}

func (h *harness) find(host, metric string) (Status, bool) {
	for _, s := range h.ev.HostAlerts(host) {
		if s.MetricPath == metric {
			return s, true
		}
	}
	return Status{}, false
}

func (h *harness) level(host, metric string) level.Level {
	h.t.Helper()
	return h.state(host, metric).Level
}

// journal returns the journal lines of a host, oldest first, once every
// queued write is committed.
func (h *harness) journal(host string) []string {
	h.t.Helper()
	ctx := context.Background()
	if err := h.st.JournalSync(ctx, "", "barrier"); err != nil {
		h.t.Fatal(err)
	}
	msgs, err := h.st.Messages(ctx, store.MessageQuery{Host: host, Limit: 1000})
	if err != nil {
		h.t.Fatal(err)
	}
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[len(msgs)-1-i] = m.Msg
	}
	return out
}

// stored reports whether the store holds an alert state for a host's
// metric once every pending state is written.
func (h *harness) stored(host, metric string) bool {
	h.t.Helper()
	ctx := context.Background()
	if err := h.ev.Flush(ctx); err != nil {
		h.t.Fatal(err)
	}
	rows, err := h.st.AlertStates(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, r := range rows {
		if r.Host == host && r.Metric == metric {
			return true
		}
	}
	return false
}

func eq(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// change is a heartbeat tracker change of host: family "" for the host's
// own state, to the state to at at.
func change(host, family, to string, at time.Time) heartbeat.Change {
	return heartbeat.Change{Host: host, Family: heartbeat.Family(family), To: heartbeat.State(to), Time: at}
}

// The SQLite store is the Repository the evaluator runs on.
var _ Repository = (*store.Store)(nil)
