package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hbdmon/hbd/core/api"
	"github.com/hbdmon/hbd/core/testutil"
)

// A maintenance window from the config and a silence scheduled for later
// run through the real pipeline (evaluator, dispatcher, webhook plugin,
// receiver): the alert inside the window reaches nobody, the one the
// scheduled silence will cover only later is delivered now.
func TestMaintenanceWindowAndScheduledSilenceAgainstARealReceiver(t *testing.T) {
	f := newAlertFixtureWith(t, alertsYAML+`
notification_channels:
  hook: {type: webhook, url: "RCV", hosts: ["web01"]}
maintenance:
  - name: always
    host: web01
    metric: "disk_monitor.**"
    start: "00:00"
    end: "00:00"
    time_zone: Europe/Berlin
    comment: "disk swap"
`, true)
	startsAt := time.Now().Add(time.Hour).Unix()
	for _, bad := range []string{`"tomorrow"`, `-5`, `"2026-13-01T00:00:00Z"`, fmt.Sprint(time.Now().Add(400 * 24 * time.Hour).Unix())} {
		if code, body := f.call(t, "alice", http.MethodPost, "/api/0/silences", `{"host":"web01","duration":"1h","starts_at":`+bad+`}`); code != 400 || !strings.Contains(body, "starts_at") {
			t.Fatalf("starts_at %s: %d %s", bad, code, body)
		}
	}
	code, body := f.call(t, "alice", http.MethodPost, "/api/0/silences", fmt.Sprintf(`{"host":"web01","metric":"cpu_monitor.*","duration":"1h","starts_at":%d}`, startsAt))
	var created struct {
		Silence api.SilenceJSON `json:"silence"`
	}
	if err := json.Unmarshal([]byte(body), &created); code != 200 || err != nil || created.Silence.StartsAt != float64(startsAt) || created.Silence.Until != float64(startsAt+3600) {
		t.Fatalf("scheduled silence: %d %s", code, body)
	}
	if _, body := f.call(t, "alice", http.MethodGet, "/api/0/silences", ""); !strings.Contains(body, fmt.Sprintf(`"starts_at":%d`, startsAt)) {
		t.Fatalf("listed: %s", body)
	}

	f.ingest(t, "web01", "disk_monitor", map[string]any{"/": map[string]any{"percent": 95.0}}) // in the window
	f.ingest(t, "web01", "cpu_monitor", map[string]any{"cpu_percent": 95.0})                   // silence not started
	reqs := f.rcv.Wait(t, 1, 10*time.Second)
	if !strings.Contains(string(reqs[0].Body), "cpu_monitor.cpu_percent") {
		t.Fatalf("delivered %s", reqs[0].Body)
	}
	type alerts struct {
		Alerts []api.ActiveAlertJSON `json:"alerts"`
	}
	var got alerts
	testutil.Eventually(t, "both alerts listed, cpu delivered", 10*time.Second, func() bool {
		_, body := f.call(t, "admin", http.MethodGet, "/api/0/alerts", "")
		got = alerts{}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		for _, a := range got.Alerts {
			if a.MetricPath == "cpu_monitor.cpu_percent" && a.Delivery == "delivered" {
				return len(got.Alerts) == 2
			}
		}
		return false
	})
	for _, a := range got.Alerts {
		switch a.MetricPath {
		case "disk_monitor./.percent":
			if a.SilencedUntil == nil || *a.SilencedUntil <= float64(time.Now().Unix()) || a.NotificationCount != 0 {
				t.Errorf("disk alert in maintenance: %+v", a)
			}
		case "cpu_monitor.cpu_percent":
			if a.SilencedUntil != nil || a.NotificationCount != 1 {
				t.Errorf("cpu alert: %+v", a)
			}
		default:
			t.Errorf("unexpected alert %+v", a)
		}
	}
	if n := f.rcv.Count(); n != 1 {
		t.Fatalf("the receiver got %d requests, want only the cpu alert", n)
	}

	// The window is listed, read-only, to those who see its hosts.
	_, body = f.call(t, "alice", http.MethodGet, "/api/0/maintenance", "")
	var ws []api.WindowJSON
	if err := json.Unmarshal([]byte(body), &ws); err != nil || len(ws) != 1 {
		t.Fatalf("windows %s", body)
	}
	w := ws[0]
	if w.Name != "always" || w.Host != "web01" || w.Metric != "disk_monitor.**" || !w.Active || w.TimeZone != "Europe/Berlin" ||
		w.Start != "00:00" || w.End != "00:00" || len(w.Days) != 0 || w.Comment != "disk swap" || w.NextEnd <= float64(time.Now().Unix()) {
		t.Fatalf("window %s", body)
	}
	if _, body := f.call(t, "bob", http.MethodGet, "/api/0/maintenance", ""); body != "[]" {
		t.Fatalf("bob sees %s", body)
	}
	if code, _ := f.call(t, "", http.MethodGet, "/api/0/maintenance", ""); code != 401 {
		t.Fatalf("anonymous: %d", code)
	}
}
