package e2e_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	pht "github.com/hbdmon/hbd/core/pluginhost/pluginhosttest"
)

// TestAlertAndRecoveryReachEveryChatAndIncidentService runs the daemon
// with every built-in notifier as a real plugin process, one channel of
// each chat, push and incident type pointed at a local receiver under its
// own path, and checks that a real threshold alert and its recovery reach
// each with the readable text, the kind and the link to the host's page.
func TestAlertAndRecoveryReachEveryChatAndIncidentService(t *testing.T) {
	rcv := pht.NewReceiver(t)
	rcv.Respond(http.StatusOK, `{"ok":true}`) // Telegram reads "ok"; the others only the status
	u := rcv.URL
	d, _ := daemon(t, pht.Dir(t, pht.BuiltIn(t)...), fmt.Sprintf(`public_url: https://hbd.example.com/
notification_channels:
  c_slack: {type: slack, webhook_url: "%[1]s/slack/services/T1/B1/X1"}
  c_discord: {type: discord, webhook_url: "%[1]s/discord/api/webhooks/1/tok"}
  c_teams: {type: teams, webhook_url: "%[1]s/teams/workflows/1/triggers/manual/paths/invoke?api-version=1&sig=s1"}
  c_telegram: {type: telegram, api_url: "%[1]s/telegram", bot_token: "123:abcDEF", chat_id: "-100123"}
  c_matrix: {type: matrix, homeserver_url: "%[1]s/matrix", access_token: "syt_x", room_id: "!r:example.org"}
  c_ntfy: {type: ntfy, server_url: "%[1]s/ntfy", topic: hbd}
  c_gotify: {type: gotify, server_url: "%[1]s/gotify", token: "gtok"}
  c_pagerduty: {type: pagerduty, api_url: "%[1]s/pagerduty", routing_key: "rkey"}
  c_opsgenie: {type: opsgenie, api_url: "%[1]s/opsgenie", api_key: "okey"}
`, u))
	services := []string{"slack", "discord", "teams", "telegram", "matrix", "ntfy", "gotify", "pagerduty", "opsgenie"}
	const link = "https://hbd.example.com/hosts/web01"

	byService := func(reqs []pht.Request) map[string][]pht.Request {
		out := map[string][]pht.Request{}
		for _, r := range reqs {
			svc, _, _ := strings.Cut(strings.TrimPrefix(r.Path, "/"), "/")
			out[svc] = append(out[svc], r)
		}
		return out
	}

	ingest(t, d, 97)
	alerts := byService(rcv.Wait(t, len(services), 60*time.Second))
	for _, svc := range services {
		if len(alerts[svc]) != 1 {
			t.Errorf("%s got %d requests for the alert", svc, len(alerts[svc]))
			continue
		}
		body := string(alerts[svc][0].Body)
		// The readable text: "web01 cpu_monitor.cpu_percent 97 ≥ 90 (CRITICAL)…".
		if !strings.Contains(body, "cpu_percent 97 ≥ 90") || !strings.Contains(body, link) {
			t.Errorf("%s alert lacks the text or the link: %s", svc, body)
		}
		kind := map[string]string{"pagerduty": `"class":"firing"`, "opsgenie": `"kind":"firing"`}[svc]
		if kind == "" {
			kind = "[CRITICAL]"
		}
		if !strings.Contains(body, kind) {
			t.Errorf("%s alert lacks %s: %s", svc, kind, body)
		}
	}

	ingest(t, d, 12)
	recoveries := byService(rcv.Wait(t, 2*len(services), 60*time.Second)[len(services):])
	for _, svc := range services {
		if len(recoveries[svc]) != 1 {
			t.Errorf("%s got %d requests for the recovery", svc, len(recoveries[svc]))
			continue
		}
		r := recoveries[svc][0]
		switch body := string(r.Body); svc {
		case "pagerduty":
			if !strings.Contains(body, `"event_action":"resolve"`) || !strings.Contains(body, `"dedup_key":"hbd/web01/cpu_monitor.cpu_percent"`) {
				t.Errorf("pagerduty recovery %s", body)
			}
		case "opsgenie":
			if !strings.HasSuffix(r.Path, "/close") || !strings.HasPrefix(r.Path, "/opsgenie/v2/alerts/hbd-") {
				t.Errorf("opsgenie recovery %s %s", r.Path, body)
			}
		default:
			if !strings.Contains(body, "[RECOVERED]") || !strings.Contains(body, link) {
				t.Errorf("%s recovery %s", svc, body)
			}
		}
	}
	time.Sleep(300 * time.Millisecond)
	if n := rcv.Count(); n != 2*len(services) {
		t.Errorf("receiver got %d requests, want %d", n, 2*len(services))
	}
}
