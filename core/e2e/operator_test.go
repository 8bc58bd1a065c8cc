package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
)

// TestOperatorSeesFailingPluginsAndRichEvents runs the real daemon with
// the webhook plugin and a binary that dies at start: the failure is in
// the API (state, first useful line), in /metrics and journaled once; a
// real alert and its recovery reach the webhook receiver with the kind,
// the threshold and the link to the host page under public_url.
func TestOperatorSeesFailingPluginsAndRichEvents(t *testing.T) {
	plugins := pht.Dir(t, pht.Webhook)
	script := "#!/bin/sh\necho 'panic: missing libfoo' >&2\nexit 2\n"
	if err := os.WriteFile(filepath.Join(plugins, ".tmp"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(plugins, ".tmp"), filepath.Join(plugins, "hbd-notifier-broken")); err != nil {
		t.Fatal(err)
	}
	hook := pht.NewReceiver(t)
	d, _ := daemon(t, plugins, fmt.Sprintf(`public_url: https://hbd.example.com/
channel_destinations: {allow: [127.0.0.0/8]}
notification_channels:
  ops_webhook: {type: webhook, url: "%s/hook", hosts: ["*"]}
`, hook.URL))

	// The failing binary, as the API shows it.
	var list []map[string]any
	pht.Eventually(t, "two failed starts", 30*time.Second, func() bool {
		getJSON(t, d.BaseURL+"/api/0/notifier_plugins", &list)
		for _, p := range list {
			if p["binary"] == "hbd-notifier-broken" && p["failures"].(float64) >= 2 {
				return true
			}
		}
		return false
	})
	byName := map[string]map[string]any{}
	for _, p := range list {
		byName[p["binary"].(string)] = p
	}
	if b := byName["hbd-notifier-broken"]; b["state"] != "failing" || !strings.Contains(b["error"].(string), "panic: missing libfoo") || b["failing_since"] == nil {
		t.Errorf("broken plugin = %v", b)
	}
	if w := byName["hbd-notifier-webhook"]; w["state"] != "running" || w["type"] != "webhook" || w["protocol"] != 2.0 {
		t.Errorf("webhook plugin = %v", w)
	}
	// Counted in /metrics.
	resp, err := http.Get(d.BaseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "hbd_notifier_plugins_failing 1") || !strings.Contains(string(metrics), "hbd_notifier_plugin_start_failures_total ") {
		t.Errorf("/metrics lacks the failing plugin:\n%s", grepLines(string(metrics), "hbd_notifier"))
	}
	// Journaled once, although it failed more than once.
	if n := countJournal(t, d.BaseURL, "notifier plugin hbd-notifier-broken failed to start"); n != 1 {
		t.Errorf("failure journaled %d times, want once", n)
	}

	ingest(t, d, 97)
	hook.Wait(t, 1, 15*time.Second)
	ingest(t, d, 12)
	reqs := hook.Wait(t, 2, 15*time.Second)
	var fire, resolve map[string]any
	json.Unmarshal(reqs[0].Body, &fire)
	json.Unmarshal(reqs[1].Body, &resolve)
	link := "https://hbd.example.com/hosts/web01?metric=cpu_percent&plugin=cpu_monitor#history"
	if fire["kind"] != "firing" || fire["threshold"] != 90.0 || fire["comparison"] != ">=" || fire["url"] != link ||
		!strings.Contains(fire["summary"].(string), "97 ≥ 90") || !strings.HasPrefix(fire["title"].(string), "[CRITICAL] web01") {
		t.Errorf("firing payload %s", reqs[0].Body)
	}
	if resolve["kind"] != "resolved" || resolve["url"] != link || !strings.HasPrefix(resolve["title"].(string), "[RECOVERED] ") {
		t.Errorf("resolved payload %s", reqs[1].Body)
	}
}

func countJournal(t *testing.T, base, s string) int {
	t.Helper()
	var msgs []map[string]any
	getJSON(t, base+"/api/0/messages?limit=500", &msgs)
	n := 0
	for _, m := range msgs {
		if strings.Contains(fmt.Sprint(m["msg"]), s) {
			n++
		}
	}
	return n
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
