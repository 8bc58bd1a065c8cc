package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/agent/collect"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/store"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/cputime"
)

// BenchmarkIngestHTTP measures signed ingestion end to end over loopback
// HTTP: 16 concurrent agents posting batches of 20 five-field samples.
func BenchmarkIngestHTTP(b *testing.B) {
	f := newFixture(b)
	base := float64(time.Now().Unix() - 100000)
	var seq atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			samples := make([]protocol.Sample, 20)
			for i := range samples {
				samples[i] = testutil.Sample("cpu_monitor", base+float64(n*20+int64(i))/1000, map[string]any{
					"cpu_percent": 41.5, "load_1min": 2.5, "load_5min": 2.0, "load_15min": 1.1, "cpu_count": 2.0,
				})
			}
			resp, err := client.Do(testutil.IngestRequest(b, f.srv.URL, "web01", f.key, samples...))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatal(fmt.Sprint(resp.StatusCode))
			}
		}
	})
	b.ReportMetric(float64(b.N*20)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkHostPlugins measures GET /api/0/hosts/{h}/plugins over loopback
// from 8 concurrent readers, for a host with the four built-in plugins'
// shapes (29 values), and reports the process's CPU per request.
func BenchmarkHostPlugins(b *testing.B) { benchHostPlugins(b, nil, false) }

// BenchmarkHostPluginsNotModified is BenchmarkHostPlugins for a reader
// that sends the ETag of its last answer, while nothing changes: 304s.
func BenchmarkHostPluginsNotModified(b *testing.B) { benchHostPlugins(b, nil, true) }

// BenchmarkHostPluginsUnits is BenchmarkHostPlugins for an agent that
// declared the built-ins' units: every value's unit is resolved and served.
func BenchmarkHostPluginsUnits(b *testing.B) {
	benchHostPlugins(b, protocol.Units{
		collect.CPU: collect.NewCPU().Units(), collect.Memory: collect.NewMemory().Units(),
		collect.Disk: collect.NewDisk().Units(), collect.Network: collect.NewNetwork().Units(),
	}, false)
}

func benchHostPlugins(b *testing.B, units protocol.Units, revalidate bool) {
	f := newFixture(b)
	ctx := context.Background()
	now := float64(time.Now().Unix())
	batch := []store.PluginSample{
		{Plugin: "cpu_monitor", Sample: store.Sample{Timestamp: now, Paths: []string{"cpu_count", "cpu_percent", "frequency", "load_15min", "load_1min", "load_5min"}, Values: []float64{8, 12.5, 2400, 0.7, 0.52, 0.61}}},
		{Plugin: "memory_monitor", Sample: store.Sample{Timestamp: now, Paths: []string{"available_mb", "percent", "swap_percent", "swap_total_mb", "swap_used_mb", "total_mb", "used_mb"}, Values: []float64{8123.5, 41.2, 1.5, 2048, 30.75, 16000, 6123.25}}},
		{Plugin: "disk_monitor", Sample: store.Sample{Timestamp: now, Paths: []string{"/.free_gb", "/.percent", "/.total_gb", "/.used_gb", "/boot.free_gb", "/boot.percent", "/boot.total_gb", "/boot.used_gb", "io.sda.read_bytes", "io.sda.write_bytes"}, Values: []float64{59.9, 40.5, 100, 40.1, 0.8, 20, 1, 0.2, 123456789, 987654321}}},
		{Plugin: "network_monitor", Sample: store.Sample{Timestamp: now, Paths: []string{"connections.established", "connections.listen", "eth0.bytes_recv", "eth0.bytes_sent", "eth0.errin", "eth0.errout"}, Values: []float64{42, 7, 654321, 123456, 0, 0}}},
	}
	if err := f.store.AppendSamples(ctx, "web01", batch); err != nil {
		b.Fatal(err)
	}
	if err := f.store.SetUnits(ctx, "web01", units); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := f.srv.URL + "/api/0/hosts/web01/plugins"
	want, tag := http.StatusOK, ""
	if revalidate {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		want, tag = http.StatusNotModified, resp.Header.Get("ETag")
	}
	b.SetParallelism(4)
	b.ResetTimer()
	cpu := cputime.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if tag != "" {
				req.Header.Set("If-None-Match", tag)
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Fatal(fmt.Sprint(resp.StatusCode))
			}
		}
	})
	cputime.Report(b, cpu, b.N, "req")
}
