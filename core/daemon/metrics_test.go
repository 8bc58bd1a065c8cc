package daemon_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/testutil"
)

// TestEveryServiceRegistersItsMetrics scrapes /metrics of a real daemon:
// the families each service registers for itself (store, API, heartbeat
// listener and tracker, alerting, notifications, live feed) are all
// served, with values from what the test did: one sample batch sent, one
// silent host timed out.
func TestEveryServiceRegistersItsMetrics(t *testing.T) {
	dir := t.TempDir()
	a := startInProcess(t, writeLivenessConfig(t, dir, testutil.FreePort(t), false))
	req := testutil.IngestRequest(t, a.base, "web01", []byte(testutil.Key),
		testutil.Sample("cpu_monitor", float64(time.Now().Unix()), map[string]any{"cpu_percent": 12.5}))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest: %d", resp.StatusCode)
	}
	scrape := func() string {
		resp, err := http.Get(a.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// The heartbeat timeout (1 s) runs out after the batch's answer and
	// its alert follows: wait for both, then check every family.
	var body string
	testutil.Eventually(t, "silent01 DOWN and CRITICAL in /metrics", 10*time.Second, func() bool {
		body = scrape()
		return strings.Contains(body, "hbd_host_up{family=\"any\",host=\"silent01\"} 0\n") && // tracker
			strings.Contains(body, "hbd_alert_level{host=\"silent01\",metric=\"heartbeat.host\"} 3\n") // alerting
	})
	for _, want := range []string{
		"hbd_samples_ingested_total 1\n",    // store
		"hbd_store_write_queue ",            // store
		"hbd_hosts_known 3\n",               // api: three configured hosts
		"hbd_heartbeats_received_total 0\n", // heartbeat listener
		"hbd_notifier_plugins_refused 0\n",  // plugin host
		"hbd_notification_queues 0\n",       // dispatcher
		"hbd_ws_clients 0\n",                // live feed
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The daemon's hand-off queues (core/daemon/paths.go).
	for _, want := range []string{
		"hbd_pipeline_dropped_total{queue=\"heartbeats\"} 0\n",
		"hbd_pipeline_queue_depth{queue=\"feed\"} 0\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
