package api_test

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/testutil"
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
