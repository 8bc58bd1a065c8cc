package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
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
	b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "samples/s")
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
// and reports the bytes per stored value in memory and on disk.
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
				batch[j] = fiveFields(float64(j + 1))
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
