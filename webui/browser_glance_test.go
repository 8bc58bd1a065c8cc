package webui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hbdmon/hbd/core/heartbeat"
	"github.com/hbdmon/hbd/core/testutil"
)

// TestLiveAtAGlance: a host whose heartbeats are UP but whose cpu is
// CRITICAL shows both on /live; the rows carry a 24 h uptime strip from
// the state history; the state and name filters narrow the table (and
// live in the address); message times are relative with the exact time
// on hover. The pages pass axe-core at desktop, 375 px and dark.
func TestLiveAtAGlance(t *testing.T) {
	s := newAlertSite(t)
	now := time.Now()
	s.cpu(t, "web01", now.Add(-5*time.Second), 95)
	s.st.RecordState("web01", "", "UP", float64(now.Add(-3*time.Hour).Unix()))
	s.st.RecordState("web01", "", "DOWN", float64(now.Add(-2*time.Hour).Unix()))
	s.st.RecordState("web01", "", "UP", float64(now.Add(-90*time.Minute).Unix()))
	s.st.Journal("web01", "web01 ipv4 UP")
	testutil.Eventually(t, "web01 CRITICAL", 30*time.Second, func() bool {
		st := s.ev.HostAlerts("web01")
		return len(st) == 1 && st[0].Level == "CRITICAL"
	})

	browser := startBrowser(t)
	ctx := tab(t, browser)
	do(t, ctx, chromedp.Navigate(s.url+"/live"))
	waitJS(t, ctx, "alert level", `(r => r && r.dataset.alert === "CRITICAL")(document.querySelector('tr[data-host="web01"]'))`)
	row := evalJS[string](t, ctx, `document.querySelector('tr[data-host="web01"]').innerText`)
	if !strings.Contains(row, "UP") || !strings.Contains(row, "CRITICAL") {
		t.Errorf("web01 row %q: want UP beside CRITICAL", row)
	}
	if lvl := evalJS[string](t, ctx, `document.querySelector('tr[data-host="db02"]').dataset.alert`); lvl != "OK" {
		t.Errorf("db02 alert level %q", lvl)
	}
	waitJS(t, ctx, "uptime strip", `document.querySelectorAll('tr[data-host="web01"] .strip .cell').length === 24`)
	if n := evalJS[int](t, ctx, `document.querySelectorAll('tr[data-host="web01"] .strip .cell.DOWN').length`); n < 1 || n > 2 {
		t.Errorf("%d DOWN cells for the half hour DOWN, want 1 or 2", n)
	}

	// Filters.
	chooseState := func(v string) {
		t.Helper()
		do(t, ctx, chromedp.SetValue(chromedp.ID("state-filter"), v))
		evalJS[bool](t, ctx, `document.getElementById("state-filter").dispatchEvent(new Event("change"))`)
	}
	chooseState("ALERT")
	waitJS(t, ctx, "alerting only", `[...document.querySelectorAll("#hosts-body tr")].map(r => r.dataset.host).join() === "web01"`)
	if q := evalJS[string](t, ctx, `location.search`); q != "?state=ALERT" {
		t.Errorf("filter not in the address: %q", q)
	}
	chooseState("")
	do(t, ctx, chromedp.SendKeys(chromedp.ID("name-filter"), "db*"))
	waitJS(t, ctx, "name filter", `[...document.querySelectorAll("#hosts-body tr")].map(r => r.dataset.host).join() === "db02"`)
	if txt := evalJS[string](t, ctx, `document.getElementById("hosts-filtered").textContent`); txt != "Showing 1 of 2 hosts." {
		t.Errorf("filter note %q", txt)
	}
	do(t, ctx, chromedp.Navigate(s.url+"/live"))
	waitJS(t, ctx, "messages", `document.querySelector("#messages li time") !== null`)
	tm := evalJS[[]string](t, ctx, `(t => [t.textContent, t.title])(document.querySelector("#messages li time"))`)
	if !strings.Contains(tm[0], "ago") && tm[0] != "just now" || tm[1] == "" {
		t.Errorf("message time %q (title %q): want relative with the exact time on hover", tm[0], tm[1])
	}
	waitJS(t, ctx, "strips", `document.querySelectorAll('tr[data-host="web01"] .strip .cell').length === 24`)
	audit(t, ctx, "live")

	do(t, ctx, chromedp.Navigate(s.url+"/alerts"))
	waitJS(t, ctx, "alerts", `document.querySelector('#alerts-body tr[data-host="web01"]') !== null`)
	audit(t, ctx, "alerts")

	// A heartbeat alert's value reads as a state, not as the number 2.
	s.ev.ObserveHeartbeat(heartbeat.Change{Host: "db02", From: heartbeat.StateUp, To: heartbeat.StateDown, Time: time.Now()})
	testutil.Eventually(t, "db02 heartbeat alert", 30*time.Second, func() bool {
		for _, st := range s.ev.HostAlerts("db02") {
			if st.MetricPath == "heartbeat.host" && st.Level != "OK" {
				return true
			}
		}
		return false
	})
	do(t, ctx, chromedp.Navigate(s.url+"/alerts"))
	waitJS(t, ctx, "heartbeat alert", `document.querySelector('#alerts-body tr[data-host="db02"]') !== null`)
	if v := evalJS[string](t, ctx, `document.querySelector('#alerts-body tr[data-host="db02"] td.num').textContent`); v != "DOWN" {
		t.Errorf("heartbeat alert value %q, want DOWN", v)
	}
}
