package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkAppendSamplesBackends is BenchmarkAppendSamples on both
// backends: 100 hosts appending batches of 10 five-field samples from
// parallel goroutines, each batch acknowledged once committed. The
// PostgreSQL test server runs with fsync off unless HBD_PGTEST_FSYNC=on
// (use it for figures).
func BenchmarkAppendSamplesBackends(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s, err := be.open(context.Background(), be.place(b), Options{SampleHistory: 100})
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
		})
	}
}
