package store

import (
	"context"
	"fmt"
	"testing"
)

// A sample that arrives late (older than the newest held) was shown as
// the newest in /plugins and first in the "newest first" list (issue 9).
// The in-memory history keeps timestamp order; a full ring keeps the
// newest samples.
func TestLateSampleTakesItsPlaceInTheHistory(t *testing.T) {
	forBackends(t, testLateSampleTakesItsPlaceInTheHistory)
}

func testLateSampleTakesItsPlaceInTheHistory(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 4)
	ctx := context.Background()
	put := func(ts float64) {
		t.Helper()
		if err := s.AppendSamples(ctx, "web01", []PluginSample{sample("cpu_monitor", ts, "cpu_percent", ts*10)}); err != nil {
			t.Fatal(err)
		}
	}
	order := func() string {
		got, err := s.Latest("web01", "cpu_monitor", 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []float64
		for _, smp := range got {
			if smp.Values[0] != smp.Timestamp*10 {
				t.Fatalf("sample %v holds the value %v of another", smp.Timestamp, smp.Values[0])
			}
			out = append(out, smp.Timestamp)
		}
		return fmt.Sprint(out)
	}
	put(10)
	put(20)
	put(40)
	put(30) // late
	if got := order(); got != "[40 30 20 10]" {
		t.Fatalf("after a late sample: %s", got)
	}
	put(5) // older than everything a full ring holds: not kept in memory
	if got := order(); got != "[40 30 20 10]" {
		t.Fatalf("after a sample older than the ring: %s", got)
	}
	put(25) // late into a full ring: the oldest goes
	if got := order(); got != "[40 30 25 20]" {
		t.Fatalf("after a late sample into a full ring: %s", got)
	}
	put(50)
	put(45)
	if got := order(); got != "[50 45 40 30]" {
		t.Fatalf("after more samples: %s", got)
	}
	if l, _ := s.Latest("web01", "cpu_monitor", 1); l[0].Timestamp != 50 {
		t.Fatalf("latest = %v, want the newest timestamp", l[0].Timestamp)
	}
}
