package webui_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/testutil"
	"github.com/hbdmon/hbd/core/ws"
)

// TestHostPage drives /hosts/{name}: state per family, uptime from the
// recorded state history, cards with sparklines and the chart with its
// threshold lines, the journal, access, a DOWN pushed by the live feed
// without a reload, the agent's health report, and the agent's hbc.yaml
// for a host without data. The
// site serves no alert routes, so the alerts request answers 404.
func TestHostPage(t *testing.T) {
	s := newSite(t)
	now := float64(time.Now().Unix())
	s.store.RecordState("web01", "", "UP", now-20*3600)
	s.store.RecordState("web01", "", "DOWN", now-2*3600)
	s.store.RecordState("web01", "", "UP", now-3600)
	// web01's agent reports a backlog and a plugin failure (whose text
	// must stay text).
	health := fmt.Sprintf(`{"samples":[{"plugin":"hbc","timestamp":%v,"data":{"spool_bytes":2048,"spool_batches":1,`+
		`"oldest_unsent_seconds":930,"last_send":%v,"plugin_errors":4,"spool_dropped":0}}],`+
		`"agent":{"last_plugin_error":"app_probe: <img src=x onerror=window.pwned=1> exit status 2"}}`, now, now-930)
	resp, err := http.DefaultClient.Do(testutil.SignedRequest(t, s.url, "web01", []byte(testutil.Key), []byte(health)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("agent health batch: %d", resp.StatusCode)
	}
	browser := startBrowser(t)
	ctx := tab(t, browser, "/alerts)", noAlertRoutes)

	do(t, ctx, chromedp.Navigate(s.url+"/live"))
	waitJS(t, ctx, "host link", `document.querySelector('tr[data-host="web01"] a[href="/hosts/web01"]') !== null`)
	do(t, ctx, chromedp.Navigate(s.url+evalJS[string](t, ctx, `document.querySelector('tr[data-host="web01"] a').getAttribute("href")`)))
	waitJS(t, ctx, "host page", `location.pathname === "/hosts/web01" && document.querySelector("h1").textContent === "web01"`)
	waitJS(t, ctx, "families", `document.querySelectorAll("#families-body tr").length === 2`)
	waitJS(t, ctx, "agent card", `!document.getElementById("agent").hidden`)
	agent := evalJS[string](t, ctx, `document.getElementById("agent").innerText`)
	for _, want := range []string{"2 KB · 1 batch", "15m 30s", "Plugin errors\n4", "app_probe: <img src=x onerror=window.pwned=1> exit status 2"} {
		if !strings.Contains(agent, want) {
			t.Errorf("agent card %q lacks %q", agent, want)
		}
	}
	if evalJS[bool](t, ctx, `document.querySelector("#agent img") !== null || window.pwned === 1`) {
		t.Error("the agent's plugin error was rendered as HTML")
	}
	if row := evalJS[string](t, ctx, `document.querySelector('#families-body tr[data-family="ipv6"]').innerText`); !strings.Contains(row, "1.8 ms") || !strings.Contains(row, "2 %") {
		t.Errorf("ipv6 row %q", row)
	}
	// 20 h of history, 1 h of it DOWN: 95 % over 24 h, and a red cell.
	testutil.Eventually(t, "uptime figures", 30*time.Second, func() bool {
		do(t, ctx, chromedp.Navigate(s.url+"/hosts/web01?plugin=cpu_monitor&metric=cpu_percent"))
		waitJS(t, ctx, "uptime", `document.querySelector('#uptime-figures dd[data-window="24h"]') !== null`)
		return evalJS[string](t, ctx, `document.querySelector('#uptime-figures dd[data-window="24h"]').textContent`) == "95 %"
	})
	if n := evalJS[int](t, ctx, `document.querySelectorAll("#uptime-strip .cell.DOWN").length`); n < 2 || n > 3 {
		t.Errorf("%d DOWN cells in the strip, want the hour's 2 or 3", n)
	}
	if n := evalJS[int](t, ctx, `document.querySelectorAll("#uptime-strip .cell.NONE").length`); n < 7 {
		t.Errorf("%d cells without data, want the 4 h before the history's start", n)
	}
	waitJS(t, ctx, "cpu chart", `document.querySelector("#chart")._uplot && document.querySelector("#chart").drawnThresholds.length === 2`)
	waitJS(t, ctx, "sparklines", `document.querySelectorAll("#cards .spark canvas").length === 2`)
	waitJS(t, ctx, "journal", `document.getElementById("journal").innerText.includes("bold")`)
	if evalJS[bool](t, ctx, `document.querySelector("#journal b, #journal img") !== null || window.pwned === 1`) {
		t.Error("a journal line was rendered as HTML")
	}
	if acc := evalJS[string](t, ctx, `document.getElementById("access").innerText`); !strings.Contains(acc, "Owner") {
		t.Errorf("access %q", acc)
	}
	if !evalJS[bool](t, ctx, `document.getElementById("connect").hidden`) {
		t.Error("a reporting host shows the connect instructions")
	}
	audit(t, ctx, "host")

	// DOWN without a reload; latency and loss go blank.
	waitJS(t, ctx, "live feed", `document.getElementById("feed-status").classList.contains("live")`)
	s.hub.PublishHost(ws.Host{Name: "web01", State: "DOWN", Connections: []heartbeat.ConnectionStatus{
		{Family: heartbeat.IPv4, State: heartbeat.StateDown, LatencyMS: 1.25}, {Family: heartbeat.IPv6, State: heartbeat.StateDown, LatencyMS: 1.75, LossPercent: 100},
	}})
	waitJS(t, ctx, "DOWN", `document.querySelector("main").dataset.state === "DOWN"`)
	if row := evalJS[string](t, ctx, `document.querySelector('#families-body tr[data-family="ipv6"]').innerText`); strings.Contains(row, "ms") || strings.Contains(row, "%") {
		t.Errorf("DOWN row shows stale figures: %q", row)
	}

	// db02 never sent samples: the page shows the hbc.yaml with its key.
	do(t, ctx, chromedp.Navigate(s.url+"/hosts/db02"))
	waitJS(t, ctx, "connect", `!document.getElementById("connect").hidden && document.getElementById("connect-yaml").textContent.includes("key:")`)
	yaml := evalJS[string](t, ctx, `document.getElementById("connect-yaml").textContent`)
	if !strings.Contains(yaml, `host: "db02"`) || !strings.Contains(yaml, testutil.Key) {
		t.Errorf("hbc.yaml %q", yaml)
	}
	audit(t, ctx, "host-new")
}
