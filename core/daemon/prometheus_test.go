package daemon_test

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hbdmon/hbd/core/daemon"
	"github.com/hbdmon/hbd/core/testutil"
)

// scrapeFamilies parses /metrics with the Prometheus text parser.
func scrapeFamilies(t *testing.T, base string) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams, body
}

// value is the value of the series of family name whose labels include
// want; ok is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// /metrics exports each host's newest plugin values (the seed's example:
// per-host cpu_percent and memory percent), host state as 0/1 series with
// DEGRADED its own, alert levels by the documented rank (UNKNOWN below
// CRITICAL), hbd_build_info and last-seen times; it parses with the
// Prometheus text parser and promlint finds no problem.
func TestPrometheusExport(t *testing.T) {
	dir := t.TempDir()
	a := startInProcess(t, writeLivenessConfig(t, dir, testutil.FreePort(t), false))
	now := float64(time.Now().Unix())
	req := testutil.IngestRequest(t, a.base, "web01", []byte(testutil.Key),
		testutil.Sample("cpu_monitor", now, map[string]any{"cpu_percent": 12.5, "load_1min": 0.75}),
		testutil.Sample("memory_monitor", now, map[string]any{"percent": 41.5}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
	var fams map[string]*dto.MetricFamily
	var body []byte
	testutil.Eventually(t, "silent01 DOWN and CRITICAL in /metrics", 20*time.Second, func() bool {
		fams, body = scrapeFamilies(t, a.base)
		v, ok := value(fams, "hbd_alert_level", map[string]string{"host": "silent01", "metric": "heartbeat.host"})
		return ok && v == 3
	})
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"hbd_metric_value", map[string]string{"host": "web01", "plugin": "cpu_monitor", "path": "cpu_percent"}, 12.5},
		{"hbd_metric_value", map[string]string{"host": "web01", "plugin": "cpu_monitor", "path": "load_1min"}, 0.75},
		{"hbd_metric_value", map[string]string{"host": "web01", "plugin": "memory_monitor", "path": "percent"}, 41.5},
		{"hbd_metric_timestamp_seconds", map[string]string{"host": "web01", "plugin": "memory_monitor"}, now},
		{"hbd_metric_values_omitted", nil, 0},
		{"hbd_host_up", map[string]string{"host": "silent01"}, 0},
		{"hbd_host_state", map[string]string{"host": "silent01", "state": "DOWN"}, 1},
		{"hbd_host_state", map[string]string{"host": "silent01", "state": "DEGRADED"}, 0},
		{"hbd_host_state", map[string]string{"host": "silent01", "state": "UP"}, 0},
		{"hbd_build_info", map[string]string{"version": daemon.Version, "goversion": runtime.Version()}, 1},
	}
	for _, c := range checks {
		if v, ok := value(fams, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	for _, f := range fams["hbd_host_up"].GetMetric() {
		if v := f.GetGauge().GetValue(); v != 0 && v != 1 {
			t.Errorf("hbd_host_up %v = %v: only 0 and 1", f.Label, v)
		}
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
