package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// The ring memory that /metrics reports is a running total (no ring is
// locked on a scrape); it must stay exactly what counting every ring
// gives, through new series, columns widening, paths appearing, rings
// starting over past MaxRingColumns, duplicates, late samples and a
// restart.
func TestRunningRingMemoryIsExact(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 8)
	ctx := context.Background()
	check := func(step string) {
		t.Helper()
		b, v := s.MemoryStats()
		wb, wv := s.memoryByScan()
		if b != wb || v != wv {
			t.Fatalf("%s: running total %d bytes / %d values, counted %d / %d", step, b, v, wb, wv)
		}
	}
	check("empty")
	rng := rand.New(rand.NewPCG(1, 2))
	values := []float64{0, 1, 42.5, 300.25, 70000.5, 1.0 / 3, -2}
	for i := 0; i < 400; i++ {
		host := fmt.Sprintf("h%d", rng.IntN(4))
		plugin := fmt.Sprintf("p%d", rng.IntN(3))
		ts := float64(i)
		if rng.IntN(10) == 0 {
			ts = float64(rng.IntN(i + 1)) // late or repeated
		}
		var kv []any
		for _, p := range []string{"a", "b", "c", "d"} {
			if rng.IntN(3) > 0 {
				kv = append(kv, p, values[rng.IntN(len(values))])
			}
		}
		if i%97 == 0 {
			// A burst of new paths: past MaxRingColumns the ring starts over.
			for k := 0; k < MaxRingColumns/2+1; k++ {
				kv = append(kv, fmt.Sprintf("wide/%d/%03d", i, k), float64(k))
			}
		}
		ps := sample(plugin, ts, kv...)
		sortSample(&ps)
		if err := s.AppendSamples(ctx, host, []PluginSample{ps}); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("sample %d", i))
	}
	if b, _ := s.MemoryStats(); b == 0 {
		t.Fatal("no ring memory counted")
	}
	s.Close()

	s = open(t, dir, 8)
	check("after restart")
	if b, _ := s.MemoryStats(); b == 0 {
		t.Fatal("no ring memory counted after restart")
	}
}

// sortSample sorts a sample's paths (with their values), as decoded
// batches are.
func sortSample(ps *PluginSample) {
	for i := 1; i < len(ps.Paths); i++ {
		for j := i; j > 0 && ps.Paths[j] < ps.Paths[j-1]; j-- {
			ps.Paths[j], ps.Paths[j-1] = ps.Paths[j-1], ps.Paths[j]
			ps.Values[j], ps.Values[j-1] = ps.Values[j-1], ps.Values[j]
		}
	}
}
