package store

import (
	"context"
	"database/sql"
	"math"
	"testing"
)

// One batch that repeats a (series, timestamp) pair among many rows: the
// rows share one multi-row statement, and the later value wins on both
// backends (PostgreSQL refuses an upsert that touches a row twice).
func TestBatchRepeatingATimestampKeepsTheLastValue(t *testing.T) {
	forBackends(t, testBatchRepeatingATimestampKeepsTheLastValue)
}

func testBatchRepeatingATimestampKeepsTheLastValue(t *testing.T, be backend) {
	s := be.openAt(t, be.place(t), 200)
	ctx := context.Background()
	var batch []PluginSample
	for i := 0; i < 70; i++ {
		batch = append(batch, sample("cpu_monitor", float64(1000+i), "cpu_percent", float64(i)))
	}
	// The repeat sits among the first 64 rows, inside one statement.
	batch = append(batch[:10], append([]PluginSample{sample("cpu_monitor", 1005, "cpu_percent", 99.0)}, batch[10:]...)...)
	if err := s.AppendSamples(ctx, "h", batch); err != nil {
		t.Fatalf("append: %v", err)
	}
	hist, err := s.History(ctx, "h", "cpu_monitor", 0, math.MaxFloat64, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 70 {
		t.Fatalf("stored %d rows, want 70", len(hist))
	}
	for _, h := range hist {
		if h.Timestamp == 1005 && h.Values[0] != 99 {
			t.Fatalf("repeated timestamp kept %v, want the later 99", h.Values)
		}
	}
}

// The heartbeat state history (host pages' uptime) on both backends.
func TestStateHistory(t *testing.T) { forBackends(t, testStateHistory) }

func testStateHistory(t *testing.T, be backend) {
	place := be.place(t)
	s := be.openAt(t, place, 10)
	ctx := context.Background()
	s.RecordState("web01", "", "UP", 100)
	s.RecordState("web01", "", "DOWN", 200)
	s.RecordState("web01", "ipv4", "UP", 150)
	s.RecordState("web02", "", "UP", 300)
	// Writes are queued in order: this one commits after the four above.
	if err := s.Write(ctx, func(*sql.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.States(ctx, "web01", "", 150)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].State != "UP" || got[0].Time != 100 || got[1].State != "DOWN" || got[1].Time != 200 {
		t.Fatalf("states since 150: %+v", got)
	}
	s.Close()
	s2 := be.openAt(t, place, 10)
	again, err := s2.States(ctx, "web01", "ipv4", 0)
	if err != nil || len(again) != 1 || again[0].State != "UP" {
		t.Fatalf("after reopen: %+v %v", again, err)
	}
}
