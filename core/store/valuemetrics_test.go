package store

import (
	"context"
	"strings"
	"testing"
)

// hbd_metric_value exports at most metrics_max_values series (hosts and
// plugins in name order) and counts the rest; 0 exports none.
func TestValueMetricsAreCapped(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, h := range []string{"web02", "web01"} {
		if _, err := st.EnsureHost(ctx, h, false); err != nil {
			t.Fatal(err)
		}
		batch := []PluginSample{
			{Plugin: "cpu_monitor", Sample: Sample{Timestamp: 100, Paths: []string{"cpu_percent", "load_1min"}, Values: []float64{10, 1}}},
			{Plugin: "memory_monitor", Sample: Sample{Timestamp: 101, Paths: []string{"percent"}, Values: []float64{50}}},
		}
		if err := st.AppendSamples(ctx, h, batch); err != nil {
			t.Fatal(err)
		}
	}
	collect := func(limit int) (values []string, omitted float64) {
		for _, f := range st.ValueMetrics(func() int { return limit }) {
			f.Collect(func(v float64, lv ...string) {
				switch f.Name {
				case "hbd_metric_value":
					values = append(values, strings.Join(lv, "/"))
				case "hbd_metric_values_omitted":
					omitted = v
				}
			})
		}
		return values, omitted
	}
	if v, o := collect(1000); len(v) != 6 || o != 0 {
		t.Errorf("uncapped: %v, omitted %v", v, o)
	}
	// web01's three fit in four; web02's cpu_monitor (two) does not, and
	// nothing after it is exported.
	if v, o := collect(4); strings.Join(v, " ") != "web01/cpu_monitor/cpu_percent web01/cpu_monitor/load_1min web01/memory_monitor/percent" || o != 3 {
		t.Errorf("capped at 4: %v, omitted %v", v, o)
	}
	if v, o := collect(0); len(v) != 0 || o != 6 {
		t.Errorf("off: %v, omitted %v", v, o)
	}
}
