package alert

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/store"
)

const (
	benchHosts   = 10000
	benchPerHost = 20
)

// benchPlugins are the 20 metric paths every benchmark host reports.
var benchPlugins = map[string][]string{
	"cpu_monitor":     {"cpu_percent", "iowait", "load_15min", "load_1min", "load_5min"},
	"disk_monitor":    {"/.inodes_percent", "/.percent", "/home.percent", "/tmp.percent", "/var.percent"},
	"memory_monitor":  {"available_mb", "percent", "swap_percent", "total_mb", "used_mb"},
	"network_monitor": {"eth0.drops", "eth0.errors_in", "eth0.errors_out", "eth1.drops", "eth1.errors_in"},
}

// benchSetup builds an evaluator watching benchHosts hosts whose rules
// match every path, and one prepared sample event per host.
func benchSetup(b *testing.B) (*Evaluator, []sampleBatch) {
	b.Helper()
	st, err := store.Open(context.Background(), b.TempDir(), store.Options{SampleHistory: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	cfg := baseConfig()
	cfg.Alerting.StaleAfter = 0
	cfg.Watchhosts = map[string]config.WatchHost{}
	cfg.Thresholds = map[string]config.Threshold{
		"**":                         {Warning: fp(1e12)},
		"cpu_monitor.cpu_percent":    {Warning: fp(80), Critical: fp(95), For: 3, Hysteresis: 5},
		"cpu_monitor.load_*":         {Warning: fp(8), Critical: fp(16)},
		"disk_monitor.*.percent":     {Warning: fp(80), Critical: fp(90)},
		"memory_monitor.percent":     {Warning: fp(85), Critical: fp(95), For: 2},
		"memory_monitor.available*":  {Warning: fp(100), Critical: fp(20), Below: true},
		"network_monitor.*.errors_*": {Warning: fp(10), Critical: fp(100)},
	}
	events := make([]sampleBatch, benchHosts)
	for i := range events {
		host := fmt.Sprintf("host%05d", i)
		if i%50 == 0 {
			// Some hosts carry their own overrides.
			cfg.Watchhosts[host] = config.WatchHost{Thresholds: map[string]config.Threshold{"cpu_monitor.*": {Warning: fp(60)}}}
		} else {
			cfg.Watchhosts[host] = config.WatchHost{}
		}
		ev := sampleBatch{Host: host}
		for _, plugin := range []string{"cpu_monitor", "disk_monitor", "memory_monitor", "network_monitor"} {
			paths := benchPlugins[plugin]
			vals := make([]float64, len(paths))
			for j := range vals {
				vals[j] = float64((i + j) % 7) // all OK
			}
			if plugin == "memory_monitor" {
				vals[0] = 4096 // available_mb, alerting when low
			}
			ev.Samples = append(ev.Samples, Sample{Plugin: plugin, Timestamp: 1, Paths: paths, Values: vals})
		}
		events[i] = ev
	}
	e, err := New(cfg, st, nil, SinkFunc(func(Event) {}))
	if err != nil {
		b.Fatal(err)
	}
	if err := e.start(context.Background(), false); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Stop(context.Background()) })
	for _, ev := range events { // create every state before timing
		e.ObserveSamples(ev.Host, ev.Samples)
	}
	if n := countStates(e); n != benchHosts*benchPerHost {
		b.Fatalf("%d states, want %d", n, benchHosts*benchPerHost)
	}
	return e, events
}

func countStates(e *Evaluator) int {
	n := 0
	for _, hs := range e.hostList() {
		n += len(hs.metrics)
	}
	return n
}

// BenchmarkEvaluate measures the evaluator alone (the store's SQLite write
// is not part of it): one op is one host's batch of 20 metric values, as
// the store publishes it; the evals/s metric counts metric evaluations.
func BenchmarkEvaluate(b *testing.B) {
	e, events := benchSetup(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := events[i%benchHosts]
		stamp(ev, float64(2+i/benchHosts))
		e.ObserveSamples(ev.Host, ev.Samples)
	}
	b.ReportMetric(float64(b.N)*benchPerHost/b.Elapsed().Seconds(), "evals/s")
}

// BenchmarkEvaluateParallel is BenchmarkEvaluate with every CPU ingesting
// (different hosts, as concurrent agent batches would be).
func BenchmarkEvaluateParallel(b *testing.B) {
	e, events := benchSetup(b)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			// Copy the event so goroutines never write a shared timestamp.
			src := events[i%benchHosts]
			ev := sampleBatch{Host: src.Host, Samples: make([]Sample, len(src.Samples))}
			copy(ev.Samples, src.Samples)
			stamp(ev, float64(2+i/benchHosts))
			e.ObserveSamples(ev.Host, ev.Samples)
		}
	})
	b.ReportMetric(float64(b.N)*benchPerHost/b.Elapsed().Seconds(), "evals/s")
}

// sampleBatch is one host's batch of samples, as the store hands it over.
type sampleBatch struct {
	Host    string
	Samples []Sample
}

func stamp(ev sampleBatch, ts float64) {
	for j := range ev.Samples {
		ev.Samples[j].Timestamp = ts
	}
}

// BenchmarkReload measures a SIGHUP: one op re-resolves and re-evaluates
// all 200,000 states against a changed rule set.
func BenchmarkReload(b *testing.B) {
	e, _ := benchSetup(b)
	cfgs := [2]*config.Config{e.rules.cfg, nil}
	next := *e.rules.cfg
	next.Thresholds = map[string]config.Threshold{}
	for k, v := range e.rules.cfg.Thresholds {
		next.Thresholds[k] = v
	}
	next.Thresholds["cpu_monitor.cpu_percent"] = config.Threshold{Warning: fp(70)}
	cfgs[1] = &next
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := e.Reload(cfgs[(i+1)%2]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*benchHosts*benchPerHost/b.Elapsed().Seconds(), "states/s")
}
