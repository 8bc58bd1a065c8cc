package daemon_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
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
		testutil.Sample("cpu_monitor", now, map[string]any{"cpu_percent": 12.5, "load_1min": 0.75, "load_5min": 0.5}),
		testutil.Sample("memory_monitor", now, map[string]any{"percent": 41.5}),
		testutil.Sample("disk_monitor", now, map[string]any{"/": map[string]any{"percent": 14.8}}))
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
		{"hbd_host_up", map[string]string{"host": "silent01", "family": "any"}, 0},
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
	t.Run("grafana dashboard", func(t *testing.T) { checkDashboards(t, a.d, fams) })
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

var (
	hbdMetricRE = regexp.MustCompile(`\b(hbd_[a-z0-9_]+)(\{[^}]*\})?`)
	matcherRE   = regexp.MustCompile(`([a-z_]+)\s*(=~|!=|!~|=)\s*"([^"]*)"`)
)

// checkDashboards checks every query of every dashboard in
// examples/grafana: each names at least one hbd metric, every metric it
// names is a family /metrics exports, every label it matches on is one of
// that family's, and the plugin values it graphs exist in the scrape.
func checkDashboards(t *testing.T, d *daemon.Daemon, fams map[string]*dto.MetricFamily) {
	files, _ := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "examples", "grafana", "*.json"))
	if len(files) == 0 {
		t.Fatal("no dashboards in examples/grafana")
	}
	for _, file := range files {
		var dash struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
			Templating struct {
				List []struct {
					Definition string `json:"definition"`
				} `json:"list"`
			} `json:"templating"`
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &dash); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var exprs []string
		for _, p := range dash.Panels {
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", filepath.Base(file), p.Title)
			}
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
		}
		for _, v := range dash.Templating.List {
			exprs = append(exprs, v.Definition)
		}
		for _, expr := range exprs {
			uses := hbdMetricRE.FindAllStringSubmatch(expr, -1)
			if len(uses) == 0 {
				t.Errorf("%s: query %q names no hbd metric", filepath.Base(file), expr)
			}
			for _, u := range uses {
				fam, ok := d.Metrics.Lookup(u[1])
				if !ok {
					t.Errorf("%s: query %q: /metrics exports no %s", filepath.Base(file), expr, u[1])
					continue
				}
				want := map[string]string{}
				matchers := matcherRE.FindAllStringSubmatch(u[2], -1)
				if u[1] == "hbd_host_up" && !slices.ContainsFunc(matchers, func(m []string) bool { return m[1] == "family" }) &&
					!strings.HasPrefix(expr, "label_values(") {
					t.Errorf("%s: query %q: hbd_host_up without a family matcher counts a host once per family and once for \"any\"", filepath.Base(file), expr)
				}
				for _, m := range matchers {
					if !slices.Contains(fam.Labels, m[1]) {
						t.Errorf("%s: query %q: %s has no label %s (labels %v)", filepath.Base(file), expr, u[1], m[1], fam.Labels)
					}
					if m[2] == "=" {
						want[m[1]] = m[3]
					}
				}
				if u[1] == "hbd_metric_value" {
					if _, ok := value(fams, u[1], want); !ok {
						t.Errorf("%s: query %q: no series %v in the scrape", filepath.Base(file), expr, want)
					}
				}
			}
		}
	}
}
