package api_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/testutil"
)

func unitsOf(t *testing.T, body map[string]any, raw string) map[string]any {
	t.Helper()
	u, ok := body["units"].(map[string]any)
	if !ok {
		t.Fatalf("no units object: %s", raw)
	}
	return u
}

// An agent without units (an old one) is served "units": {}; a new one's
// declared units are stored and served per metric path on both plugin
// endpoints, resolved by path, then by last segment; an unknown unit is
// left out; a malformed units object refuses the batch; a change is
// served at once.
func TestIngestedUnitsAreServed(t *testing.T) {
	f := newFixture(t)
	now := float64(time.Now().Unix())
	cpu := map[string]any{"cpu_percent": 40.0, "frequency": 2100.0, "load_1min": 0.5, "cpu_count": 4.0}
	nic := map[string]any{"eth0": map[string]any{"bytes_sent": 5e9, "bytes_sent_per_s": 501.0, "packets_sent": 7.0},
		"connections": map[string]any{"total": 12.0}}

	// Old agent: no units object at all.
	code, body, raw := do(t, testutil.IngestRequest(t, f.srv.URL, "web01", f.key, testutil.Sample("cpu_monitor", now, cpu)))
	if code != 200 || body["units"] != true {
		t.Fatalf("old agent's batch: %d %s (want the units announcement)", code, raw)
	}
	_, body, raw = get(t, f.srv.URL+"/api/0/hosts/web01/plugins")
	if u := unitsOf(t, body, raw); len(u) != 0 {
		t.Fatalf("units of an agent that declared none: %v", u)
	}

	// New agent.
	units := protocol.Units{
		"cpu_monitor":     {"cpu_percent": "percent", "frequency": "MHz", "load_1min": "", "cpu_count": "furlongs"},
		"network_monitor": {"bytes_sent": "bytes_total", "bytes_sent_per_s": "bytes/s", "connections.total": "count"},
		"not_reporting":   {"x": "count"},
	}
	batch, _ := json.Marshal(protocol.Batch{Samples: []protocol.Sample{
		testutil.Sample("cpu_monitor", now+1, cpu), testutil.Sample("network_monitor", now+1, nic)}, Units: units})
	code, body, raw = do(t, testutil.SignedRequest(t, f.srv.URL, "web01", f.key, batch))
	if code != 200 || body["accepted"] != 2.0 {
		t.Fatalf("new agent's batch: %d %s", code, raw)
	}
	_, body, raw = get(t, f.srv.URL+"/api/0/hosts/web01/plugins")
	want := map[string]any{
		"cpu_monitor.cpu_percent": "percent", "cpu_monitor.frequency": "MHz", "cpu_monitor.load_1min": "",
		"network_monitor.eth0.bytes_sent": "bytes_total", "network_monitor.eth0.bytes_sent_per_s": "bytes/s",
		"network_monitor.connections.total": "count",
	}
	if got := unitsOf(t, body, raw); !reflect.DeepEqual(got, want) {
		t.Fatalf("plugins units\n got %v\nwant %v", got, want)
	}
	if th, ok := body["thresholds"].(map[string]any); !ok || th == nil {
		t.Fatalf("thresholds lost: %s", raw)
	}
	_, body, raw = get(t, f.srv.URL+"/api/0/hosts/web01/plugins/network_monitor?since=0")
	wantNet := map[string]any{"network_monitor.eth0.bytes_sent": "bytes_total", "network_monitor.eth0.bytes_sent_per_s": "bytes/s",
		"network_monitor.connections.total": "count"}
	if got := unitsOf(t, body, raw); !reflect.DeepEqual(got, wantNet) || body["sample_count"] != 1.0 {
		t.Fatalf("history units\n got %v\nwant %v (%s)", got, wantNet, raw)
	}
	_, body, raw = get(t, f.srv.URL+"/api/0/hosts/web01/plugins/cpu_monitor?limit=5")
	if got := unitsOf(t, body, raw); got["cpu_monitor.frequency"] != "MHz" || len(got) != 3 {
		t.Fatalf("recent samples units %v", got)
	}

	// Malformed: refused whole, nothing stored.
	bad, _ := json.Marshal(protocol.Batch{Samples: []protocol.Sample{testutil.Sample("cpu_monitor", now+2, cpu)},
		Units: protocol.Units{"cpu_monitor": {"a..b": "count"}}})
	code, _, raw = do(t, testutil.SignedRequest(t, f.srv.URL, "web01", f.key, bad))
	if code != 400 {
		t.Fatalf("bad units: %d %s", code, raw)
	}
	_, body, _ = get(t, f.srv.URL+"/api/0/hosts/web01/plugins/cpu_monitor?limit=5")
	if body["sample_count"] != 2.0 {
		t.Fatalf("a refused batch stored samples: %v", body["sample_count"])
	}

	// A change is served at once.
	changed, _ := json.Marshal(protocol.Batch{Samples: []protocol.Sample{testutil.Sample("cpu_monitor", now+3, cpu)},
		Units: protocol.Units{"cpu_monitor": {"frequency": "MHz", "cpu_percent": "count"}}})
	if code, _, raw := do(t, testutil.SignedRequest(t, f.srv.URL, "web01", f.key, changed)); code != 200 {
		t.Fatalf("%d %s", code, raw)
	}
	_, body, raw = get(t, f.srv.URL+"/api/0/hosts/web01/plugins")
	if got := unitsOf(t, body, raw); got["cpu_monitor.cpu_percent"] != "count" || got["cpu_monitor.load_1min"] != nil {
		t.Fatalf("changed units not served: %v", got)
	}
}
