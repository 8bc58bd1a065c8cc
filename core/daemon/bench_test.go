package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/testutil/cputime"
)

// BenchmarkIngestDaemon posts signed batches of 20 samples from 8 hosts
// to a real in-process daemon with every subscriber of a sample active:
// alerting (a threshold on the samples' metric, so every value is
// evaluated), dispatch (journal without channels) and the live feed. It
// reports samples/s answered 200; unlike core/api's BenchmarkIngestHTTP it
// includes the work that follows the commit.
func BenchmarkIngestDaemon(b *testing.B) {
	dir := b.TempDir()
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	hosts := []string{"h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7"}
	cfg := fmt.Sprintf(`hbd_host: 127.0.0.1
hbd_port: %d
ws_port: 0
hb_port: %d
hb_listen4: 127.0.0.1
hb_listen6: ""
data_dir: %s
plugins_dir: %s
thresholds:
  cpu_monitor.cpu_percent: {warning: 80, critical: 90}
  cpu_monitor.load_1min: {warning: 8, critical: 16}
watchhosts:
`, testutil.FreePort(b), testutil.FreePort(b), filepath.Join(dir, "data"), filepath.Join(dir, "plugins"))
	for _, h := range hosts {
		cfg += fmt.Sprintf("  %s:\n    key: %q\n", h, testutil.Key)
	}
	path := filepath.Join(dir, "hbd.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	p := startInProcess(b, path)
	base := float64(time.Now().Unix() - 100000)
	var seq atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	// The signed requests are built before the clock starts, so the
	// figures (and cpu-µs/sample, the process's CPU) leave out the
	// client's JSON encoding and signing.
	reqs := make([]*http.Request, b.N)
	for n := range reqs {
		host := hosts[n%len(hosts)]
		samples := make([]protocol.Sample, 20)
		for i := range samples {
			cpu := 41.5
			if (n/8)%10 == 0 {
				cpu = 95 // a CRITICAL now and then, so events reach the sinks
			}
			samples[i] = testutil.Sample("cpu_monitor", base+float64(n*20+i)/1000, map[string]any{
				"cpu_percent": cpu, "load_1min": 2.5, "load_5min": 2.0, "load_15min": 1.1, "cpu_count": 2.0,
			})
		}
		reqs[n] = testutil.IngestRequest(b, p.base, host, []byte(testutil.Key), samples...)
	}
	b.SetParallelism(8)
	b.ResetTimer()
	cpu := cputime.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := reqs[seq.Add(1)-1]
			resp, err := client.Do(req)
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
	cputime.Report(b, cpu, b.N*20, "sample")
	b.ReportMetric(float64(b.N*20)/b.Elapsed().Seconds(), "samples/s")
}
