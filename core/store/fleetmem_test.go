package store

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/testutil/cputime"
)

// rssKiB reads VmRSS or VmHWM (the peak) of this process, in KiB.
func rssKiB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// fleetValues are five fields of mixed forms (two decimals, a counter, a
// float with many decimals, a constant), varying by host, plugin and time.
func fleetValues(h, p, t int) []float64 {
	return []float64{
		float64((h*7+p*13+t*31)%10000) / 100,
		float64(1_000_000 + h*1000 + t),
		float64(h+t) / 3,
		float64(t%100) + 0.5,
		4,
	}
}

var fleetPaths = []string{"a_percent", "b_counter", "c_ratio", "d_load", "e_count"}

// BenchmarkFleetMemory is issue 12's memory scenario: 10,000 hosts × 5
// plugins × 100 samples (5 M samples of 5 values) stored, then a restart
// that loads them into the rings, then ingestion of 400,000 more samples
// through the writer. It reports the process's peak RSS during the
// restart and during ingestion, RSS and live heap at the end, and CPU per
// ingested sample. RSS is per process, so run each setting alone, e.g.
//
//	go test -run '^$' -bench FleetMemory -benchtime 1x ./core/store/
//	GOMEMLIMIT=600MiB go test -run '^$' -bench FleetMemory -benchtime 1x ./core/store/
func BenchmarkFleetMemory(b *testing.B) {
	const hosts, plugins, perSeries = 10_000, 5, 100
	dir := b.TempDir()
	s, err := Open(context.Background(), dir, Options{SampleHistory: perSeries})
	if err != nil {
		b.Fatal(err)
	}
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
				res, err := tx.Exec(`INSERT INTO series (host, plugin, paths) VALUES (?, ?, ?)`, host, fmt.Sprintf("plugin%d", p), strings.Join(fleetPaths, "\n"))
				if err != nil {
					return err
				}
				id, _ := res.LastInsertId()
				for t := 0; t < perSeries; t++ {
					if _, err := ins.Exec(id, float64(1000+t), encodeValues(fleetValues(h, p, t))); err != nil {
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
	runtime.GC()
	debug.FreeOSMemory()

	// peak samples VmRSS every 20 ms; VmHWM would also count the bulk
	// insert above.
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if v := rssKiB("VmRSS"); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); <-sampled }()

	b.ResetTimer()
	peak.Store(0)
	began := time.Now()
	s, err = Open(context.Background(), dir, Options{SampleHistory: perSeries})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	restart := time.Since(began)
	restartPeak := peak.Load()
	if got, _ := s.Latest("host09999", "plugin4", 0); len(got) != perSeries {
		b.Fatalf("loaded %d samples of the last series", len(got))
	}

	peak.Store(0)
	const rounds, perBatch = 2, 4
	cpu0 := cputime.Now()
	ctx := context.Background()
	for r := 0; r < rounds; r++ {
		for h := 0; h < hosts; h++ {
			host := fmt.Sprintf("host%05d", h)
			batch := make([]PluginSample, 0, plugins*perBatch)
			for p := 0; p < plugins; p++ {
				for k := 0; k < perBatch; k++ {
					t := perSeries + r*perBatch + k
					batch = append(batch, PluginSample{Plugin: fmt.Sprintf("plugin%d", p),
						Sample: Sample{Timestamp: float64(1000 + t), Paths: fleetPaths, Values: fleetValues(h, p, t)}})
				}
			}
			if err := s.AppendSamples(ctx, host, batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	ingested := rounds * hosts * plugins * perBatch
	cpu := cputime.Now() - cpu0
	ingestPeak := peak.Load()
	b.StopTimer()

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	ring, _ := s.MemoryStats()
	limit := debug.SetMemoryLimit(-1)
	b.ReportMetric(restart.Seconds(), "restart-s")
	b.ReportMetric(float64(restartPeak)/1024, "restart-peak-rss-MiB")
	b.ReportMetric(float64(ingestPeak)/1024, "ingest-peak-rss-MiB")
	b.ReportMetric(float64(rssKiB("VmRSS"))/1024, "end-rss-MiB")
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-heap-MiB")
	b.ReportMetric(float64(ring)/(1<<20), "ring-MiB")
	b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(ingested), "cpu-µs/sample")
	if limit != 1<<63-1 {
		b.Logf("memory limit %d MiB", limit>>20)
	}
}
