package webui_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hbdmon/hbd/core/agent/collect"
	"github.com/hbdmon/hbd/core/protocol"
	"github.com/hbdmon/hbd/core/testutil"
)

// TestUnitsInBrowser: db02's agent declares its units (the built-ins'
// own declarations) and sends an hour of cpu and network samples through
// the signed ingestion endpoint. /plugins then shows the frequency in MHz,
// a since-boot counter as a rate per second (cards and chart), leaves a
// counter to the rate its agent reports, and folds the idle interface and
// the loopback behind a toggle; web01's agent declared no units, so its
// values are still formatted by guessing from the key.
func TestUnitsInBrowser(t *testing.T) {
	s := newSite(t)
	now := float64(time.Now().Unix())
	var samples []protocol.Sample
	for i := 0; i <= 5; i++ {
		ts := now - 3000 + float64(i*600)
		nic := func(sent, recv, packets, rate float64) map[string]any {
			return map[string]any{"bytes_sent": sent, "bytes_recv": recv, "packets_sent": packets, "packets_recv": packets,
				"errin": 0.0, "errout": 0.0, "dropin": 0.0, "dropout": 0.0, "bytes_sent_per_s": rate, "bytes_recv_per_s": rate}
		}
		grow := float64(i * 600)
		samples = append(samples,
			testutil.Sample("cpu_monitor", ts, map[string]any{"cpu_percent": 12.5, "frequency": 2100.0, "load_1min": 0.25, "cpu_count": 4.0}),
			testutil.Sample("network_monitor", ts, map[string]any{
				"eth0":        nic(5e9+grow*2048, 7e9+grow*4096, 1e6+grow, 2048),
				"eth1":        nic(1234, 1234, 10, 0),
				"lo":          nic(1e6+grow*10, 1e6+grow*10, 5e3+grow, 10),
				"connections": map[string]any{"total": 12.0, "established": 3.0, "listen": 5.0, "time_wait": 0.0},
			}))
	}
	units := protocol.Units{collect.CPU: collect.NewCPU().Units(), collect.Network: collect.NewNetwork().Units()}
	body, err := json.Marshal(protocol.Batch{Samples: samples, Units: units})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(testutil.SignedRequest(t, s.url, "db02", []byte(testutil.Key), body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("batch with units: %d", resp.StatusCode)
	}

	browser := startBrowser(t)
	ctx := tab(t, browser)
	card := func(metric string) string {
		return evalJS[string](t, ctx, `(document.querySelector('#cards .metric[data-metric="`+metric+`"] .mvalue') || {textContent: "(no card)"}).textContent`)
	}

	do(t, ctx, chromedp.Navigate(s.url+"/plugins?host=db02&plugin=cpu_monitor"))
	waitJS(t, ctx, "cpu cards", `document.querySelector('#cards .metric[data-metric="frequency"]') !== null`)
	if got := card("frequency"); got != "2,100 MHz" {
		t.Errorf("frequency card %q, want 2,100 MHz", got)
	}
	if got := card("cpu_percent"); got != "12.5%" {
		t.Errorf("cpu_percent card %q, want 12.5%%", got)
	}
	if got := card("cpu_count"); got != "4" {
		t.Errorf("cpu_count card %q", got)
	}

	do(t, ctx, chromedp.Navigate(s.url+"/plugins?host=db02&plugin=network_monitor&metric=eth0.packets_sent"))
	// The rates need the last hour's samples: the cards are drawn again
	// once they are read.
	// (The loopback folds at once; eth1 once its hour is known.)
	waitJS(t, ctx, "folded interfaces", `document.querySelector('#folded-groups .group[data-group="eth1"]') !== null`)
	if got := card("eth0.packets_sent"); got != "1/s" {
		t.Errorf("packets_sent (a counter since boot, +600 per 600 s) shows %q, want 1/s", got)
	}
	if got := evalJS[string](t, ctx, `document.querySelector('#cards .metric[data-metric="eth0.packets_sent"]').dataset.rate || ""`); got != "true" {
		t.Error("packets_sent card is not marked as a rate")
	}
	if got := card("eth0.bytes_sent_per_s"); !strings.HasSuffix(got, "/s") || !strings.Contains(got, "2 kB") {
		t.Errorf("bytes_sent_per_s card %q, want 2 kB/s", got)
	}
	if got := card("eth0.bytes_sent"); got != "(no card)" {
		t.Errorf("bytes_sent has a card (%q) beside the rate its agent reports", got)
	}
	if got := card("connections.total"); got != "12" {
		t.Errorf("connections.total card %q", got)
	}
	toggle := evalJS[string](t, ctx, `document.querySelector(".fold-toggle").textContent`)
	if toggle != "Show 1 idle and loopback interfaces" {
		t.Errorf("toggle %q", toggle)
	}
	folded := evalJS[string](t, ctx, `[...document.querySelectorAll("#folded-groups .group")].map(g => g.dataset.group + ":" + g.dataset.folded).join(" ")`)
	if folded != "eth1:idle lo:loopback" {
		t.Errorf("folded groups %q, want eth1 (idle) and lo", folded)
	}
	if !evalJS[bool](t, ctx, `document.getElementById("folded-groups").hidden && document.querySelector('#cards > .group[data-group="eth0"]') !== null`) {
		t.Error("folded groups are shown, or eth0 is folded")
	}
	// The chart shows the counter as a rate.
	waitJS(t, ctx, "rate chart", `document.querySelector("#chart")._uplot && document.querySelector("#chart").dataset.unit === "count/s"`)
	if got := evalJS[string](t, ctx, `document.querySelector("#chart [role=img], #chart .uplot").getAttribute("aria-label")`); !strings.Contains(got, "per second") {
		t.Errorf("chart label %q", got)
	}
	audit(t, ctx, "plugins-units")

	do(t, ctx, chromedp.Click(".fold-toggle"))
	waitJS(t, ctx, "unfolded", `!document.getElementById("folded-groups").hidden`)
	if got := evalJS[string](t, ctx, `document.querySelector(".fold-toggle").getAttribute("aria-expanded") + " " + document.querySelector(".fold-toggle").textContent`); got != "true Hide 1 idle and loopback interfaces" {
		t.Errorf("open toggle %q", got)
	}
	audit(t, ctx, "plugins-units-unfolded")

	// web01's agent declared nothing: units are guessed from the keys.
	do(t, ctx, chromedp.Navigate(s.url+"/plugins?host=web01&plugin=memory_monitor"))
	waitJS(t, ctx, "memory cards", `document.querySelector('#cards .metric[data-metric="available_mb"]') !== null`)
	if got := card("available_mb"); got != "4 GB" {
		t.Errorf("available_mb of an agent without units %q, want the guessed 4 GB", got)
	}
	if evalJS[bool](t, ctx, `"unit" in document.querySelector('#cards .metric[data-metric="available_mb"]').dataset`) {
		t.Error("web01's card claims a declared unit")
	}
}
