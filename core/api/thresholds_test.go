package api_test

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/config"
	"github.com/hbdmon/hbd/core/testutil"
)

// The plugins endpoint serves, per metric, the threshold the evaluator
// applies on that host: a per-host rule over a global one, the most
// specific glob first, and nothing for a metric without a rule.
func TestHostPluginsServeThresholds(t *testing.T) {
	cfg := testutil.Config(t, `
watchhosts:
  web01:
    key: "`+testutil.Key+`"
    thresholds:
      "disk_monitor./.percent": {critical: 95}
thresholds:
  "cpu_monitor.cpu_percent": {warning: 80, critical: 90, for: 3}
  "disk_monitor.**": {warning: 70, critical: 85}
`)
	st := testutil.Store(t, 10)
	now := float64(time.Now().Unix())
	srv := api.New(api.Deps{Config: func() *config.Config { return cfg }, Store: st,
		HostKey: func(h string) ([]byte, bool, bool) { k, ok := cfg.HostKey(h); return k, false, ok }})
	web := httptest.NewServer(srv.Echo)
	t.Cleanup(web.Close)
	code, _, raw := do(t, testutil.IngestRequest(t, web.URL, "web01", []byte(testutil.Key),
		testutil.Sample("cpu_monitor", now, map[string]any{"cpu_percent": 40.0, "load_1min": 2.5}),
		testutil.Sample("disk_monitor", now, map[string]any{"/": map[string]any{"percent": 65.0}, "/home": map[string]any{"percent": 10.0}}),
	))
	if code != 200 {
		t.Fatalf("ingest: %d %s", code, raw)
	}
	code, _, raw = get(t, web.URL+"/api/0/hosts/web01/plugins")
	if code != 200 {
		t.Fatalf("%d %s", code, raw)
	}
	var body struct {
		Thresholds map[string]struct {
			Warning, Critical *float64
			For               int
			Rule              string
		} `json:"thresholds"`
	}
	if err := json.Unmarshal([]byte(raw), &body); err != nil {
		t.Fatal(err)
	}
	th := body.Thresholds
	if cpu := th["cpu_monitor.cpu_percent"]; cpu.Warning == nil || *cpu.Warning != 80 || *cpu.Critical != 90 || cpu.For != 3 || cpu.Rule != "thresholds.cpu_monitor.cpu_percent" {
		t.Errorf("cpu threshold %+v", cpu)
	}
	if root := th["disk_monitor./.percent"]; root.Warning != nil || root.Critical == nil || *root.Critical != 95 || root.Rule != "watchhosts.web01.thresholds.disk_monitor./.percent" {
		t.Errorf("per-host rule did not win: %+v", root)
	}
	if home := th["disk_monitor./home.percent"]; home.Critical == nil || *home.Critical != 85 {
		t.Errorf("/home threshold %+v", home)
	}
	if _, ok := th["cpu_monitor.load_1min"]; ok {
		t.Errorf("load_1min has no rule but got %+v", th["cpu_monitor.load_1min"])
	}
}
