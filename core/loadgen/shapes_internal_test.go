package loadgen

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/protocol"
)

// The batches carry the four built-in plugins' shapes, valid by the
// daemon's rules, with the NonOK hosts' cpu_percent above the thresholds.
func TestBatchShapes(t *testing.T) {
	body := appendBatch(nil, 8, 1700000000.5, 42, true)
	var b protocol.Batch
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if len(b.Samples) != 8 {
		t.Fatalf("%d samples, want 8", len(b.Samples))
	}
	wantFields := map[string]int{"cpu_monitor": 6, "memory_monitor": 7, "disk_monitor": 14, "network_monitor": 24}
	for i, s := range b.Samples {
		if s.Plugin != plugins[i%4] {
			t.Errorf("sample %d is %s, want %s", i, s.Plugin, plugins[i%4])
		}
		if err := protocol.ValidatePlugin(s.Plugin); err != nil {
			t.Error(err)
		}
		m, err := protocol.Flatten(s.Data)
		if err != nil {
			t.Errorf("%s: %v", s.Plugin, err)
		}
		if len(m) != wantFields[s.Plugin] {
			t.Errorf("%s has %d fields, want %d", s.Plugin, len(m), wantFields[s.Plugin])
		}
		if i > 0 && s.Timestamp <= b.Samples[i-1].Timestamp {
			t.Errorf("sample %d stamped %v, not after %v", i, s.Timestamp, b.Samples[i-1].Timestamp)
		}
	}
	if cpu := b.Samples[0].Data["cpu_percent"]; cpu != 97.0 {
		t.Errorf("a non-OK host's cpu_percent = %v, want 97", cpu)
	}
	ok := appendBatch(nil, 1, 1700000000.5, 42, false)
	if err := json.Unmarshal(ok, &b); err != nil || b.Samples[0].Data["cpu_percent"].(float64) >= 80 {
		t.Errorf("an OK host's cpu_percent = %v (%v)", b.Samples[0].Data["cpu_percent"], err)
	}
}

func TestHistPercentiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	p := h.Percentiles()
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", p.P50, 500}, {"p90", p.P90, 900}, {"p99", p.P99, 990}, {"max", p.Max, 1000}} {
		if c.got < c.want || c.got > c.want*1.011 {
			t.Errorf("%s = %v ms, want %v within 1.1 %%", c.name, c.got, c.want)
		}
	}
	if p.Count != 1000 {
		t.Errorf("count %d", p.Count)
	}
}
