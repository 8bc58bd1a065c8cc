package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/testutil/cputime"
)

// fiveFields is the shape of a typical cpu_monitor sample.
func fiveFields(ts float64) PluginSample {
	return sample("cpu_monitor", ts, "cpu_count", 2.0, "cpu_percent", 41.5, "load_15min", 1.1, "load_1min", 2.5, "load_5min", 2.0)
}

// BenchmarkAppendSamples measures durable ingestion through the store:
// 100 hosts each appending batches of 10 samples from parallel goroutines
// (group commit shares transactions between them).
func BenchmarkAppendSamples(b *testing.B) {
	s, err := Open(context.Background(), b.TempDir(), Options{SampleHistory: 100})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.SetParallelism(16)
	var next atomic.Int64
	b.ResetTimer()
	cpu := cputime.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			host := fmt.Sprintf("host%03d", n%100)
			batch := make([]PluginSample, 10)
			for i := range batch {
				batch[i] = fiveFields(float64(n*10 + int64(i)))
			}
			if err := s.AppendSamples(context.Background(), host, batch); err != nil {
				b.Fatal(err)
			}
		}
	})
	cputime.Report(b, cpu, b.N*10, "sample")
	b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkAppendSamplesFleet is BenchmarkAppendSamples at fleet scale:
// 10,000 hosts with five plugins each (50,000 series, seeded before the
// clock starts), 16 parallel writers each storing batches of 20 samples
// (four rounds of the five plugins) of a random host, as agents do. With
// this many series almost every sample lands on a page of its own, so
// the write-ahead log and its checkpoints dominate.
func BenchmarkAppendSamplesFleet(b *testing.B) {
	const hosts, plugins = 10000, 5
	s, err := Open(context.Background(), b.TempDir(), Options{SampleHistory: 10})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batchOf := func(host int, ts float64, rounds int) []PluginSample {
		out := make([]PluginSample, 0, rounds*plugins)
		for r := range rounds {
			for p := range plugins {
				out = append(out, sample(fmt.Sprintf("plugin%d", p), ts+float64(r), "a", float64(host%100), "b", 12.5, "c", float64(r)))
			}
		}
		return out
	}
	seed := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for h := range seed {
				if err := s.AppendSamples(context.Background(), fmt.Sprintf("host%05d", h), batchOf(h, 1e9, 1)); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for h := range hosts {
		seed <- h
	}
	close(seed)
	wg.Wait()
	var next atomic.Int64
	b.SetParallelism(8) // 16 writers on 2 cores
	b.ResetTimer()
	cpu := cputime.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			h := int(n*7919) % hosts
			if err := s.AppendSamples(context.Background(), fmt.Sprintf("host%05d", h), batchOf(h, 1e9+float64(n*4), 4)); err != nil {
				b.Fatal(err)
			}
		}
	})
	cputime.Report(b, cpu, b.N*4*plugins, "sample")
	b.ReportMetric(float64(b.N*4*plugins)/b.Elapsed().Seconds(), "samples/s")
	if fi, err := os.Stat(s.Path() + "-wal"); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "wal-MiB")
	}
}

// BenchmarkLatest measures a recent-sample read (the API's default
// limit=10) from memory.
func BenchmarkLatest(b *testing.B) {
	s, err := Open(context.Background(), b.TempDir(), Options{SampleHistory: 100})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 100; i++ {
		s.ringFor("web01", "cpu_monitor").add(float64(i), fiveFields(0).Paths, fiveFields(0).Values)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got, _ := s.Latest("web01", "cpu_monitor", 10); len(got) != 10 {
			b.Fatal(len(got))
		}
	}
}

// BenchmarkBytesPerValue fills 1,000 host rings with 100 five-field samples
// (four varying two-decimal values, one constant) and reports the bytes
// per stored value in memory and on disk.
func BenchmarkBytesPerValue(b *testing.B) {
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		s, err := Open(context.Background(), dir, Options{SampleHistory: 100})
		if err != nil {
			b.Fatal(err)
		}
		const hosts, perHost = 1000, 100
		for h := 0; h < hosts; h++ {
			batch := make([]PluginSample, perHost)
			for j := range batch {
				// Values vary as an agent's do (two decimals); cpu_count
				// stays constant.
				k := h*perHost + j
				batch[j] = sample("cpu_monitor", float64(j+1), "cpu_count", 2.0, "cpu_percent", float64(k*37%10000)/100,
					"load_15min", float64(k%300)/100, "load_1min", float64(k*7%800)/100, "load_5min", float64(k*3%500)/100)
			}
			if err := s.AppendSamples(context.Background(), fmt.Sprintf("host%04d", h), batch); err != nil {
				b.Fatal(err)
			}
		}
		mem, values := s.MemoryStats()
		s.Close()
		var disk int64
		for _, f := range []string{FileName, FileName + "-wal"} {
			if st, err := os.Stat(filepath.Join(dir, f)); err == nil {
				disk += st.Size()
			}
		}
		b.ReportMetric(float64(mem)/float64(values), "mem-B/value")
		b.ReportMetric(float64(disk)/float64(values), "disk-B/value")
	}
}

// BenchmarkPluginsFleet measures Store.Plugins (GET /hosts/{h}/plugins)
// with 10,000 hosts of 5 plugins each in memory: its cost must not grow
// with the fleet.
func BenchmarkPluginsFleet(b *testing.B) {
	s, err := Open(context.Background(), b.TempDir(), Options{SampleHistory: 100})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const hosts, plugins = 10_000, 5
	smp := fiveFields(1)
	for h := 0; h < hosts; h++ {
		for p := 0; p < plugins; p++ {
			s.ringFor(fmt.Sprintf("host%05d", h), fmt.Sprintf("plugin%d", p)).add(1, smp.Paths, smp.Values)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got := s.Plugins(fmt.Sprintf("host%05d", i%hosts)); len(got) != plugins {
			b.Fatal(len(got))
		}
	}
}

// BenchmarkRestart measures Open on a database of 1,000,000 stored
// samples (2,000 hosts × 5 plugins × 100 five-field samples, all of which
// fit the rings): samples loaded per second and the peak live heap while
// loading (sampled with runtime.ReadMemStats).
func BenchmarkRestart(b *testing.B) {
	const hosts, plugins, perSeries = 2_000, 5, 100
	dir := b.TempDir()
	s, err := Open(context.Background(), dir, Options{SampleHistory: perSeries})
	if err != nil {
		b.Fatal(err)
	}
	smp := fiveFields(0)
	vals := encodeValues(smp.Values)
	err = s.Write(context.Background(), func(tx *sql.Tx) error {
		ins, err := tx.Prepare(`INSERT INTO samples (series, ts, vals) VALUES (?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for h := 0; h < hosts; h++ {
			host := fmt.Sprintf("host%05d", h)
			if _, err := tx.Exec(`INSERT INTO hosts (name, dyn, first_seen, last_seen) VALUES (?, 1, 1, 1)`, host); err != nil {
				return err
			}
			for p := 0; p < plugins; p++ {
				res, err := tx.Exec(`INSERT INTO series (host, plugin, paths) VALUES (?, ?, ?)`, host, fmt.Sprintf("plugin%d", p), strings.Join(smp.Paths, "\n"))
				if err != nil {
					return err
				}
				id, _ := res.LastInsertId()
				for t := 0; t < perSeries; t++ {
					if _, err := ins.Exec(id, float64(1000+t), vals); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	b.ResetTimer()
	var peak uint64
	var opening, cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
		stop := make(chan struct{})
		done := make(chan uint64)
		go func() {
			var max uint64
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > max {
					max = ms.HeapAlloc
				}
				select {
				case <-stop:
					done <- max
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		began, cpu0 := time.Now(), cputime.Now()
		s, err := Open(context.Background(), dir, Options{SampleHistory: perSeries})
		if err != nil {
			b.Fatal(err)
		}
		opening += time.Since(began)
		cpu += cputime.Now() - cpu0
		close(stop)
		if m := <-done; m > peak {
			peak = m
		}
		if got, _ := s.Latest("host01999", "plugin4", 0); len(got) != perSeries {
			b.Fatalf("loaded %d samples of the last series", len(got))
		}
		s.Close()
	}
	b.ReportMetric(float64(hosts*plugins*perSeries*b.N)/opening.Seconds(), "samples/s")
	b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(hosts*plugins*perSeries*b.N), "cpu-µs/sample")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}
